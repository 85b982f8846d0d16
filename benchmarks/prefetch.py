"""Fill the download cache ahead of a run (`python -m harness tasks fetch`): every `download` and
`cloud_file` URL of a suite, into the same `<cache>/<sha256(url)[:32]>/<name>` files the run
reads (benchmarks/downloads.py), so the run needs no internet for them.

A file already in the cache is skipped. The download itself is benchmarks/http_fetch.py's, as
in a run: a cut connection is resumed by the next attempt with Range + If-Range, transient
failures (connection errors, 5xx, 408/429) are retried with exponential backoff, other 4xx, a
204 or an empty body are final, private hosts are refused unless `--allow-private-urls`, and
no partial file outlives the fetch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import anyio

from benchmarks.downloads import HostFiles
from benchmarks.http_fetch import FetchError, fetch_to
from benchmarks.http_fetch import session as session_for

log = logging.getLogger("benchmarks.prefetch")


@dataclass
class FetchResult:
    url: str
    status: str  # "fetched" | "skipped" | "failed"
    path: Path
    size: int = 0
    resumed_from: int = 0  # bytes already on disk when the successful attempt began
    attempts: int = 0
    error: str = ""


async def fetch_one(session: object, files: HostFiles, url: str, *, attempts: int = 4, backoff: float = 1.0) -> FetchResult:
    """Fetch `url` into the cache unless it is there; never raises for the URL's own failures."""
    target = files.cache_path(url)
    if await anyio.Path(target).is_file():
        return FetchResult(url, "skipped", target, size=(await anyio.Path(target).stat()).st_size)
    try:
        got = await fetch_to(session, url, target, max_bytes=files.max_bytes,  # type: ignore[arg-type]
                             allow_private=files.allow_private, attempts=attempts, backoff=backoff)
    except FetchError as e:
        return FetchResult(url, "failed", target, attempts=attempts if e.retry else 0, error=str(e))
    return FetchResult(url, "fetched", target, size=got.size, resumed_from=got.resumed_from, attempts=got.attempts)


async def fetch_all(urls: Iterable[str], files: HostFiles, *, concurrency: int = 4, attempts: int = 4,
                    backoff: float = 1.0, timeout: float = 600.0,
                    on_result: Callable[[FetchResult], None] | None = None) -> list[FetchResult]:
    """Fetch every URL (deduplicated, `concurrency` at once); results in input order."""
    import aiohttp

    todo = list(dict.fromkeys(urls))
    results: dict[str, FetchResult] = {}
    slots = anyio.Semaphore(max(1, concurrency))
    # No total deadline for a large file; a stalled connection is caught by the read timeout.
    client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=min(30.0, timeout), sock_read=min(60.0, timeout))

    async with session_for(allow_private=files.allow_private, timeout=client_timeout) as session:

        async def one(url: str) -> None:
            async with slots:
                result = await fetch_one(session, files, url, attempts=attempts, backoff=backoff)
            results[url] = result
            if on_result is not None:
                on_result(result)

        async with anyio.create_task_group() as tg:
            for url in todo:
                tg.start_soon(one, url)
    return [results[u] for u in todo]
