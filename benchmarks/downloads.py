"""Host-side files for tasks: URLs fetched once into a cache, `file://` URLs and suite assets.

Sandboxes have no network, so OSWorld's `download` steps and `cloud_file` getters fetch on the
host and push bytes into the guest. A URL is cached under `<cache>/<sha256(url)[:32]>/<name>`
and written atomically (temp file + rename), so concurrent tasks and crashed runs never see a
half-written file; concurrent fetches of one URL share one download. Retries, resume and the
refusal of private hosts are benchmarks/http_fetch.py's, the same as `tasks fetch`.

Task files are untrusted: `file://` URLs and relative paths resolve inside the suite's assets
folder only, never elsewhere on the host.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import aiohttp
import anyio

from benchmarks import http_fetch
from benchmarks.http_fetch import short_url
from harness.base.errors import SandboxError, TaskError

log = logging.getLogger("benchmarks.downloads")

ATTEMPTS = 4


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cua-harness" / "downloads"


_short_url = short_url


def resolve_asset(ref: str, assets_dir: Path | None) -> Path:
    """A path inside `assets_dir` for a relative path, an absolute path or a file:// URL (blocking)."""
    parts = urlsplit(ref)
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise TaskError(f"{ref}: file:// URLs must not name a host")
        raw = url2pathname(unquote(parts.path))
    elif parts.scheme == "":
        raw = ref
    else:
        raise TaskError(f"{_short_url(ref)}: unsupported URL scheme {parts.scheme!r} (expected http, https, file or an asset path)")
    if assets_dir is None:
        raise TaskError(f"{ref}: names a host file but the suite has no assets/ folder")
    base = assets_dir.resolve()
    target = (base / raw).resolve()  # an absolute `raw` replaces base; checked below
    if not target.is_relative_to(base):
        raise TaskError(f"{ref}: escapes the suite's assets folder {assets_dir}")
    if not target.is_file():
        raise TaskError(f"{ref}: not found in the suite's assets folder {assets_dir}")
    return target


class HostFiles:
    """Fetches task files to the host: http(s) URLs through a shared cache, assets in place."""

    def __init__(self, cache_dir: Path | None = None, *, timeout: float = 300.0, max_bytes: int = 1 << 30,
                 offline: bool = False, allow_private: bool = False, backoff: float = 1.0) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.offline = offline  # never download: an uncached URL is a TaskError (probes, offline runs)
        self.allow_private = allow_private  # `--allow-private-urls`: loopback/private hosts too (local mirrors, tests)
        self.backoff = backoff  # seconds before the first retry, doubling
        self._locks: dict[str, anyio.Lock] = {}

    def cache_path(self, url: str) -> Path:
        key = hashlib.sha256(url.encode()).hexdigest()[:32]
        name = posixpath.basename(urlsplit(url).path) or "download"
        return self.cache_dir / key / name

    async def fetch(self, ref: str, *, assets_dir: Path | None = None) -> Path:
        """Local path of `ref`: an http(s) URL (cached), a file:// URL or a path in `assets_dir`."""
        scheme = urlsplit(ref).scheme.lower()
        if scheme in ("http", "https"):
            return await self._fetch_url(ref)
        return await anyio.to_thread.run_sync(resolve_asset, ref, assets_dir)

    async def _fetch_url(self, url: str) -> Path:
        target = self.cache_path(url)
        if await anyio.Path(target).is_file():
            return target
        if self.offline:
            raise TaskError(f"{_short_url(url)} is not in the download cache and downloads are off here "
                            "(python -m harness tasks fetch)")
        lock = self._locks.setdefault(str(target), anyio.Lock())
        async with lock:
            if await anyio.Path(target).is_file():
                return target
            short = _short_url(url)
            timeout = aiohttp.ClientTimeout(total=self.timeout, sock_connect=min(30.0, self.timeout))
            try:
                async with http_fetch.session(allow_private=self.allow_private, timeout=timeout) as http:
                    got = await http_fetch.fetch_to(http, url, target, max_bytes=self.max_bytes,
                                                    allow_private=self.allow_private, attempts=ATTEMPTS,
                                                    backoff=self.backoff)
            except http_fetch.FetchError as e:
                if e.retry:  # the network or the server, not the task: the attempt may be retried
                    raise SandboxError(f"{short}: download failed: {e}") from e
                gone = " (the task's URL is wrong or gone)" if str(e).startswith("HTTP 4") else ""
                raise TaskError(f"{short}: {e}{gone}") from e
            log.info("downloaded %s (%d bytes)", short, got.size)
            return target
