"""`tasks fetch` against a local HTTP server on 127.0.0.1 (never the internet): a cut connection
resumes with a Range request, a 404 is reported with its URL, a cached file is skipped."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest_asyncio
from aiohttp import web

from benchmarks.downloads import HostFiles
from benchmarks.prefetch import fetch_all

REPO = Path(__file__).resolve().parents[1]
DATA = bytes(range(256)) * 4096  # 1 MiB
CUT = 300_000


class Server:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        self.cut_next = 0  # how many full-body requests to cut mid-way
        self.change_after_cut = False  # the file changes on the server after the first cut
        self.data = DATA
        self.busy = 0  # how many requests to answer 429 first
        self.url = ""

    def etag(self) -> str:
        return f'"v{hash(self.data) & 0xFFFF}"'

    async def big(self, request: web.Request) -> web.StreamResponse:
        rng = request.headers.get("Range")
        self.requests.append((request.path, rng))
        if self.busy:
            self.busy -= 1
            return web.Response(status=429, headers={"Retry-After": "0"})
        data, etag = self.data, self.etag()
        if rng and request.headers.get("If-Range") == etag:
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            return web.Response(status=206, body=data[start:], headers={
                "ETag": etag, "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
        resp = web.StreamResponse(headers={"Content-Length": str(len(data)), "ETag": etag})
        await resp.prepare(request)
        if self.cut_next:
            self.cut_next -= 1
            await resp.write(DATA[:CUT])
            await anyio.sleep(0.05)  # let the bytes leave before the cut
            assert request.transport is not None
            request.transport.close()  # the connection drops mid-body
            if self.change_after_cut:
                self.data = DATA[::-1]
            return resp
        await resp.write(data)
        await resp.write_eof()
        return resp

    async def missing(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, None))
        return web.Response(status=404, text="nope")

    async def nothing(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, None))
        return web.Response(status=204 if request.path.endswith("204") else 200, body=b"")


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    app = web.Application()
    app.router.add_get("/files/big.bin", srv.big)
    app.router.add_get("/files/missing.xlsx", srv.missing)
    app.router.add_get("/files/empty-{kind}", srv.nothing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    srv.url = f"http://127.0.0.1:{port}"
    try:
        yield srv
    finally:
        await runner.cleanup()


def _files(tmp_path: Path) -> HostFiles:
    return HostFiles(tmp_path / "cache", allow_private=True)  # the test server is on 127.0.0.1


def _partials(files: HostFiles) -> list[Path]:
    return list(files.cache_dir.rglob("*.partial"))


async def test_a_cut_connection_resumes_with_a_range_request(server: Server, tmp_path: Path) -> None:
    files = _files(tmp_path)
    url = f"{server.url}/files/big.bin"
    server.cut_next = 1
    [result] = await fetch_all([url], files, attempts=3, backoff=0.01)
    assert result.status == "fetched", result.error
    assert files.cache_path(url).read_bytes() == DATA
    assert 0 < result.resumed_from <= CUT and result.attempts == 2
    assert server.requests == [("/files/big.bin", None), ("/files/big.bin", f"bytes={result.resumed_from}-")]
    assert not _partials(files)


async def test_a_file_changed_between_attempts_is_fetched_whole_not_spliced(server: Server, tmp_path: Path) -> None:
    files = _files(tmp_path)
    url = f"{server.url}/files/big.bin"
    server.cut_next, server.change_after_cut = 1, True
    [result] = await fetch_all([url], files, attempts=3, backoff=0.01)
    assert result.status == "fetched" and result.resumed_from == 0 and result.attempts == 2
    assert files.cache_path(url).read_bytes() == DATA[::-1]  # If-Range did not match: the new file, whole


async def test_a_failed_fetch_leaves_no_partial_file(server: Server, tmp_path: Path) -> None:
    files = _files(tmp_path)
    url = f"{server.url}/files/big.bin"
    server.cut_next = 1
    [first] = await fetch_all([url], files, attempts=1, backoff=0.01)
    assert first.status == "failed" and "after 1 attempts" in first.error
    assert not _partials(files) and not files.cache_path(url).exists()


async def test_429_is_retried_and_204_or_an_empty_body_is_an_error(server: Server, tmp_path: Path) -> None:
    files = _files(tmp_path)
    server.busy = 2
    [ok, no_content, empty] = await fetch_all(
        [f"{server.url}/files/big.bin", f"{server.url}/files/empty-204", f"{server.url}/files/empty-200"],
        files, attempts=4, backoff=0.01, concurrency=1)
    assert ok.status == "fetched" and ok.attempts == 3
    assert no_content.status == "failed" and "HTTP 204" in no_content.error
    assert empty.status == "failed" and "empty body" in empty.error
    assert not no_content.path.exists() and not empty.path.exists() and not _partials(files)


async def test_concurrent_fetches_of_one_url_write_separate_partials_and_one_whole_file(
        server: Server, tmp_path: Path) -> None:
    first, second = _files(tmp_path), _files(tmp_path)  # two processes' worth: no shared lock
    url = f"{server.url}/files/big.bin"
    results: list = []

    async def one(files: HostFiles) -> None:
        results.extend(await fetch_all([url], files, attempts=2, backoff=0.01))

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, first)
        tg.start_soon(one, second)
    assert all(r.status in ("fetched", "skipped") for r in results)
    assert first.cache_path(url).read_bytes() == DATA and not _partials(first)


async def test_private_hosts_are_refused_unless_allowed(server: Server, tmp_path: Path) -> None:
    files = HostFiles(tmp_path / "cache")
    urls = [f"{server.url}/files/big.bin", "http://169.254.169.254/latest/meta-data/",
            f"http://localhost:{server.url.rsplit(':', 1)[1]}/files/big.bin", "http://10.1.2.3/x", "http://[::1]/x"]
    results = await fetch_all(urls, files, attempts=2, backoff=0.01)
    assert [r.status for r in results] == ["failed"] * 5
    assert all("--allow-private-urls" in r.error for r in results), [r.error for r in results]
    assert "link-local" in results[1].error and "loopback" in results[2].error and "private" in results[3].error
    assert server.requests == []  # refused before connecting


async def test_a_name_that_resolves_to_a_private_address_at_connect_time_is_refused(server: Server) -> None:
    import aiohttp
    import pytest

    from benchmarks.http_fetch import FetchError, PublicResolver, _attempt, _Partial

    with pytest.raises(OSError, match=r"localhost .*loopback"):
        await PublicResolver().resolve("localhost", 80)
    # As if the name had passed check_url and been re-pointed since (DNS rebinding): the connector refuses.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=PublicResolver())) as http:
        with pytest.raises(FetchError, match="loopback") as e:
            await _attempt(http, f"http://localhost:{server.url.rsplit(':', 1)[1]}/files/big.bin",
                           _Partial(Path("/nonexistent")), 1 << 20, allow_private=True)
    assert not e.value.retry and server.requests == []


def _suite(root: Path, base: str) -> Path:
    task = {
        "id": "fetch-1", "instruction": "i", "related_apps": ["os"],
        "config": [{"type": "download", "parameters": {"files": [{"url": f"{base}/files/big.bin", "path": "/tmp/b"}]}}],
        "evaluator": {"func": "compare_table", "result": {"type": "vm_file", "path": "/tmp/r.xlsx", "dest": "r.xlsx"},
                      "expected": {"type": "cloud_file", "path": f"{base}/files/missing.xlsx", "dest": "e.xlsx"},
                      "options": {"rules": [{"type": "sheet_data", "sheet_idx0": 0, "sheet_idx1": "EI0"}]}},
    }
    (root / "examples" / "os").mkdir(parents=True)
    (root / "examples" / "os" / "fetch-1.json").write_text(json.dumps(task))
    return root


async def _cli(*args: str, cache: Path) -> anyio.abc.Process:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    return await anyio.run_process([sys.executable, "-m", "harness", "tasks", *args], cwd=REPO, env=env, check=False)


async def test_cli_reports_a_404_with_its_url_skips_cached_files_and_exits_1(server: Server, tmp_path: Path) -> None:
    suite = _suite(tmp_path / "suite", server.url)
    cache = tmp_path / "xdg"
    with anyio.fail_after(120):
        refused = await _cli("fetch", str(suite), "--backoff", "0.01", cache=cache)
    assert refused.returncode == 1 and "--allow-private-urls" in refused.stdout.decode() and not server.requests
    with anyio.fail_after(120):
        first = await _cli("fetch", str(suite), "--backoff", "0.01", "--allow-private-urls", cache=cache)
    out = first.stdout.decode()
    assert first.returncode == 1, first.stderr.decode()
    assert "fetched 1" in out and "failed 1" in out
    assert f"failed: {server.url}/files/missing.xlsx: HTTP 404" in out
    assert "[2/2]" in first.stderr.decode()  # progress lines
    assert server.requests.count(("/files/missing.xlsx", None)) == 1  # a 404 is final, not retried
    cached = HostFiles(cache / "cua-harness" / "downloads").cache_path(f"{server.url}/files/big.bin")
    assert cached.read_bytes() == DATA  # the same cache the run reads

    big_requests = sum(p == "/files/big.bin" for p, _ in server.requests)
    with anyio.fail_after(120):
        second = await _cli("fetch", str(suite), "--backoff", "0.01", "--allow-private-urls", cache=cache)
    assert "skipped 1 (already cached)" in second.stdout.decode()
    assert sum(p == "/files/big.bin" for p, _ in server.requests) == big_requests

    # Loopback URLs are never a network need, cached or not.
    with anyio.fail_after(120):
        check = await _cli("check", str(suite), "--json", str(tmp_path / "c.json"), cache=cache)
    assert check.returncode == 0, check.stderr.decode()
    [row] = json.loads((tmp_path / "c.json").read_text())
    assert row["ready"] == "offline" and row["reasons"] == []


async def test_bad_cli_arguments_are_one_line_errors(tmp_path: Path) -> None:
    proc = await _cli("fetch", str(tmp_path), "--concurrency", "0", cache=tmp_path)
    assert proc.returncode == 2 and "expected a whole number >= 1, got '0'" in proc.stderr.decode()


async def test_an_offline_cache_serves_cached_files_and_never_downloads(server: Server, tmp_path: Path) -> None:
    import pytest

    from harness.base.errors import TaskError

    online = _files(tmp_path)
    cached = await online.fetch(f"{server.url}/files/big.bin")
    offline = HostFiles(tmp_path / "cache", offline=True)
    assert await offline.fetch(f"{server.url}/files/big.bin") == cached  # in the cache: served
    seen = len(server.requests)
    with pytest.raises(TaskError, match="not in the download cache"):
        await offline.fetch(f"{server.url}/files/missing.xlsx")
    assert len(server.requests) == seen  # not one request left the host
