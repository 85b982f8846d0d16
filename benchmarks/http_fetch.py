"""One HTTP download, retried and resumed, refusing private hosts: shared by a run's downloads
(benchmarks/downloads.py) and `tasks fetch` (benchmarks/prefetch.py), so both treat a 429 the same.

- Transient failures (connection errors, 408/425/429/5xx, a body cut short) are retried with
  exponential backoff; other 4xx, a 204 or an empty body, and a file over the size cap are final.
- Bytes arrive in a partial file with a name of its own (two fetches of one URL never share one)
  beside the target. A retry asks for the rest with `Range` + `If-Range` (the ETag or
  Last-Modified of the bytes we hold), so a file changed on the server is sent whole, never
  spliced. The partial file is removed whatever happens; the finished file is renamed into place.
- Task URLs are untrusted: unless `allow_private`, a host that is (or resolves to) a loopback,
  link-local (169.254/16, cloud metadata), private or otherwise non-public address is refused,
  on every redirect hop and again when the connection resolves the name (no DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import anyio
from aiohttp.abc import AbstractResolver, ResolveResult

log = logging.getLogger("benchmarks.http_fetch")

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
PRIVATE_HINT = "pass --allow-private-urls to permit it"


class FetchError(Exception):
    """A failed download; `retry` says whether another attempt could succeed."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def short_url(url: str) -> str:
    """scheme://host/path of a URL: query strings can carry tokens (drive links), so logs and
    errors never show them."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def address_kind(address: str) -> str | None:
    """None for a public address, else what it is ("loopback", "link-local", "private", ...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-public"


def _refuse(host: str, address: str, kind: str) -> FetchError:
    where = host if host == address else f"{host} ({address})"
    return FetchError(f"host {where} is a {kind} address; task downloads reach public hosts only ({PRIVATE_HINT})",
                      retry=False)


async def check_url(url: str, *, allow_private: bool, timeout: float = 30.0) -> None:
    """FetchError unless `url` is http(s) with a host whose every address is public (or allowed)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise FetchError(f"{short_url(url)}: expected an http(s) URL with a host", retry=False)
    if allow_private:
        return
    host = parts.hostname
    try:
        addresses = [host] if _is_ip(host) else [
            info[4][0] for info in await _getaddrinfo(host, parts.port or 443, timeout)]
    except (OSError, TimeoutError) as e:
        raise FetchError(f"{short_url(url)}: cannot resolve {host}: {e}", retry=True) from e
    for address in addresses:
        kind = address_kind(str(address))
        if kind:
            raise _refuse(host, str(address), kind)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _getaddrinfo(host: str, port: int, timeout: float) -> list[Any]:
    with anyio.fail_after(timeout):
        return await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)


class PublicResolver(AbstractResolver):
    """The connector's resolver: refuses names that resolve to non-public addresses, so a name
    checked by `check_url` cannot point elsewhere by the time the connection is made."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for r in results:
            kind = address_kind(r["host"])
            if kind:
                raise OSError(str(_refuse(host, r["host"], kind)))
        return results

    async def close(self) -> None:
        await self._inner.close()


def session(*, allow_private: bool, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
    """A client session for task downloads (its connector re-checks every resolved address)."""
    connector = aiohttp.TCPConnector() if allow_private else aiohttp.TCPConnector(resolver=PublicResolver())
    return aiohttp.ClientSession(timeout=timeout, connector=connector)


@dataclass
class _Partial:
    path: Path
    have: int = 0
    validator: str | None = None  # ETag or Last-Modified of the bytes on disk (for If-Range)


def _validator(headers: Any) -> str | None:
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):  # If-Range takes strong validators only
        return str(etag)
    return headers.get("Last-Modified")


async def _get(http: aiohttp.ClientSession, url: str, headers: dict[str, str], allow_private: bool) -> aiohttp.ClientResponse:
    """GET following redirects ourselves, each hop checked like the first."""
    for _ in range(MAX_REDIRECTS + 1):
        await check_url(url, allow_private=allow_private)
        resp = await http.get(url, headers=headers, allow_redirects=False)
        if resp.status not in REDIRECTS or "Location" not in resp.headers:
            return resp
        url = urljoin(url, resp.headers["Location"])
        resp.release()
    raise FetchError(f"more than {MAX_REDIRECTS} redirects", retry=False)


async def _attempt(http: aiohttp.ClientSession, url: str, part: _Partial, max_bytes: int, allow_private: bool) -> int:
    """One GET into `part` (resuming when it holds bytes we can validate); returns the offset resumed from."""
    headers = {"Range": f"bytes={part.have}-", "If-Range": part.validator} if part.have and part.validator else {}
    try:
        resp = await _get(http, url, headers, allow_private)
        async with resp:
            if resp.status == 416 and headers:  # our bytes are no prefix the server knows: start over
                part.have, part.validator = 0, None
                raise FetchError("HTTP 416 for the partial file; starting over", retry=True)
            if resp.status in RETRY_STATUS:
                raise FetchError(f"HTTP {resp.status}", retry=True)
            if resp.status >= 400 or resp.status == 204 or resp.status not in (200, 206):
                raise FetchError(f"HTTP {resp.status}" + (" (no content)" if resp.status == 204 else ""), retry=False)
            resume = (resp.status == 206 and bool(headers)
                      and resp.headers.get("Content-Range", "").startswith(f"bytes {part.have}-"))
            if resp.status == 206 and not resume:
                raise FetchError("HTTP 206 for a range we did not ask for", retry=True)
            if not resume:  # the whole file: from its start, with its own validator
                part.have, part.validator = 0, _validator(resp.headers)
            start, expected = part.have, resp.content_length
            async with await anyio.open_file(part.path, "ab" if resume else "wb") as f:
                async for chunk in resp.content.iter_chunked(1 << 16):
                    if part.have + len(chunk) > max_bytes:
                        raise FetchError(f"larger than the {max_bytes}-byte download limit", retry=False)
                    await f.write(chunk)
                    part.have += len(chunk)
            if expected is not None and part.have - start != expected:
                raise FetchError(f"connection closed after {part.have - start} of {expected} bytes", retry=True)
            if part.have == 0:
                raise FetchError("empty body", retry=False)
            return start
    except (aiohttp.ClientError, TimeoutError, OSError) as e:
        refused = _refusal(e)  # the resolver's: a name that now points at a private address
        raise FetchError(refused or f"{type(e).__name__}: {e}", retry=refused is None) from e


def _refusal(e: BaseException | None) -> str | None:
    """PublicResolver's message, wherever aiohttp wrapped it."""
    while e is not None:
        for text in (str(e), str(getattr(e, "os_error", "") or "")):
            if PRIVATE_HINT in text:
                return text
        e = e.__cause__ or e.__context__
    return None


@dataclass
class Fetched:
    size: int
    resumed_from: int  # bytes already held when the successful attempt began
    attempts: int


async def fetch_to(http: aiohttp.ClientSession, url: str, target: Path, *, max_bytes: int, allow_private: bool,
                   attempts: int = 4, backoff: float = 1.0) -> Fetched:
    """Download `url` into `target` (atomically); FetchError when it cannot, `retry` set if transient."""
    part = _Partial(target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial"))
    await anyio.Path(target.parent).mkdir(parents=True, exist_ok=True)
    error: FetchError | None = None
    try:
        for attempt in range(1, attempts + 1):
            try:
                start = await _attempt(http, url, part, max_bytes, allow_private)
                await anyio.Path(part.path).rename(target)
                return Fetched(part.have, start, attempt)
            except FetchError as e:
                if not e.retry:
                    raise
                error = e
                log.warning("download %s failed (attempt %d/%d): %s", short_url(url), attempt, attempts, e)
                if attempt < attempts:
                    await anyio.sleep(backoff * 2 ** (attempt - 1))
        assert error is not None
        raise FetchError(f"{error} (after {attempts} attempts)", retry=True) from error
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.Path(part.path).unlink(missing_ok=True)
