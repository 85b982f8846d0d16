"""vm.devtools against a real headless Chromium on the host, reached only through the guest's tunnel:
GuestClient -> the real guest server app (in-process, unix socket) -> Chromium's DevTools port on
127.0.0.1. Test pages come from a local aiohttp server on 127.0.0.1 (Chromium has no other network:
background networking off). Chromium is Debian's, installed by scripts/setup.sh."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from aiohttp import web
from anyio.abc import Process

from harness.base.aio import stop_process
from vm.client import GuestClient
from vm.devtools import DevToolsError, connect_devtools
from vm.guest import server

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "devtools-test-token"
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent: run scripts/setup.sh")

PAGE = """<!DOCTYPE html><html><head><title>Hello page</title></head>
<body><h1>Hi</h1><a id="next" href="/second">next</a></body></html>"""
SECOND = "<!DOCTYPE html><html><head><title>Second</title></head><body><p>two</p></body></html>"
# The fetch starts only after the load event, so "load" returns before it ends and "networkidle" after.
LATE_FETCH = """<!DOCTYPE html><html><head><title>Late</title></head><body><script>
window.fetched = false;
window.addEventListener('load', () => setTimeout(
  () => fetch('/slow').then(r => r.text()).then(t => { window.fetched = t; }), 50));
</script></body></html>"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Rig:
    guest: GuestClient
    chrome: Process
    port: int
    web: str  # base URL of the page server

    def url(self, path: str) -> str:
        return self.web + path


def _pages_app(release: anyio.Event) -> web.Application:
    async def html(text: str) -> web.Response:
        return web.Response(text=text, content_type="text/html")

    async def slow(_: web.Request) -> web.Response:
        await anyio.sleep(1.5)
        return web.Response(text="done")

    async def hang(_: web.Request) -> web.Response:
        await release.wait()  # accepts, never answers (until teardown)
        return web.Response(text="released")

    async def page(_: web.Request) -> web.Response:
        return await html(PAGE)

    async def second(_: web.Request) -> web.Response:
        return await html(SECOND)

    async def late(_: web.Request) -> web.Response:
        return await html(LATE_FETCH)

    app = web.Application()
    app.add_routes([web.get("/", page), web.get("/second", second), web.get("/late", late),
                    web.get("/slow", slow), web.get("/hang", hang)])
    return app


async def _launch_chromium(tmp: Path, port: int) -> Process:
    profile = tmp / "profile"
    profile.mkdir(parents=True, exist_ok=True)
    args = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
            f"--remote-debugging-port={port}", f"--user-data-dir={profile}", "about:blank"]
    return await anyio.open_process(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, env={**os.environ, "HOME": str(tmp)})


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    release = anyio.Event()
    pages = web.AppRunner(_pages_app(release), shutdown_timeout=1)
    await pages.setup()
    site = web.TCPSite(pages, "127.0.0.1", 0)
    await site.start()
    web_port = site._server.sockets[0].getsockname()[1]
    sock = tmp_path / "guest.sock"
    guest_runner = web.AppRunner(server.make_app(TOKEN), shutdown_timeout=1)
    await guest_runner.setup()
    await web.UnixSite(guest_runner, str(sock)).start()
    guest = GuestClient(socket_path=str(sock), token=TOKEN, name="box-d", timeout_margin=2.0)
    port = _free_port()
    chrome = await _launch_chromium(tmp_path, port)
    try:
        yield Rig(guest, chrome, port, f"http://127.0.0.1:{web_port}")
    finally:
        await stop_process(chrome)
        release.set()
        await guest.aclose()
        await guest_runner.cleanup()
        await pages.cleanup()


async def test_connect_waits_for_chromium_to_listen_then_reports_its_version(rig: Rig):
    # The fixture launched Chromium a moment ago: its port is very likely not open yet.
    async with connect_devtools(rig.guest, port=rig.port, timeout=30) as browser:
        version = await browser.version()
    assert version["Browser"].startswith(("Chrome/", "HeadlessChrome/"))
    assert version["webSocketDebuggerUrl"].startswith(f"ws://127.0.0.1:{rig.port}/devtools/browser/")


async def test_connect_to_a_port_nothing_listens_on_fails_within_its_timeout(rig: Rig):
    t0 = time.monotonic()
    with pytest.raises(DevToolsError, match=r"did not answer within 1.5 s .*nothing listens"):
        async with connect_devtools(rig.guest, port=_free_port(), timeout=1.5):
            pass
    assert time.monotonic() - t0 < 5
    with pytest.raises(DevToolsError, match="1-65535"):
        connect_devtools(rig.guest, port=0)


async def test_new_page_loads_and_reads_title_html_url_and_values(rig: Rig):
    async with connect_devtools(rig.guest, port=rig.port, timeout=30) as browser:
        page = await browser.new_page(rig.url("/"), wait="load", timeout=30)
        assert page.url == rig.url("/")
        assert await page.title() == "Hello page"
        html = await page.content()
        assert html.startswith("<!DOCTYPE html><html>") and "<h1>Hi</h1>" in html
        assert await page.evaluate("1 + 2") == 3
        assert await page.evaluate("Promise.resolve({a: [1, 'x'], b: null})") == {"a": [1, "x"], "b": None}
        assert await page.evaluate("undefined") is None
        assert math.isnan(await page.evaluate("NaN"))
        assert await page.evaluate("2n ** 70n") == 2**70
        assert (await page.pdf()).startswith(b"%PDF-")


async def test_goto_and_clicks_keep_the_page_url_current(rig: Rig):
    async with connect_devtools(rig.guest, port=rig.port, timeout=30) as browser:
        page = await browser.new_page(rig.url("/"))
        await page.goto(rig.url("/second"), wait="load", timeout=30)
        assert page.url == rig.url("/second") and await page.title() == "Second"
        await page.evaluate("history.pushState({}, '', '/pushed#frag')")
        assert page.url == rig.url("/pushed#frag")
        await page.goto(rig.url("/"))
        await page.evaluate("document.getElementById('next').click()")
        deadline = time.monotonic() + 30  # the click navigates asynchronously: wait for the commit
        while page.url != rig.url("/second") and time.monotonic() < deadline:  # noqa: ASYNC110 (plain state)
            await anyio.sleep(0.02)
        await page.wait_for_load("load", timeout=30)
        assert page.url == rig.url("/second") and await page.title() == "Second"


async def test_networkidle_waits_for_requests_made_after_load(rig: Rig):
    async with connect_devtools(rig.guest, port=rig.port, timeout=30) as browser:
        loaded = await browser.new_page(rig.url("/late"), wait="load", timeout=30)
        assert await loaded.evaluate("window.fetched") is False  # the 1.5 s fetch is still running
        idle = await browser.new_page(rig.url("/late"), wait="networkidle", timeout=30)
        assert await idle.evaluate("window.fetched") == "done"
        await loaded.wait_for_load("networkidle", timeout=30)
        assert await loaded.evaluate("window.fetched") == "done"


async def test_pages_lists_tabs_in_opening_order_and_closing_removes_them(rig: Rig):
    async with connect_devtools(rig.guest, port=rig.port, timeout=30) as browser:
        first = [p.target_id for p in await browser.pages()]
        a = await browser.new_page(rig.url("/"))
        b = await browser.new_page(rig.url("/second"))
        c = await browser.new_page("about:blank")
        listed = await browser.pages()
        assert [p.target_id for p in listed] == [*first, a.target_id, b.target_id, c.target_id]
        assert [p.title for p in listed[-3:-1]] == ["Hello page", "Second"]
        assert listed[-2].url == rig.url("/second")
        await browser.activate(a.target_id)
        await browser.close_page(b.target_id)
        await c.close()
        assert [p.target_id for p in await browser.pages()] == [*first, a.target_id]
        with pytest.raises(DevToolsError, match="closed"):
            await b.title()
        again = await browser.attach(a.target_id)
        assert await again.title() == "Hello page"


async def test_unknown_target_ids_and_bad_arguments_are_devtools_errors(rig: Rig):
    async with connect_devtools(rig.guest, port=rig.port, timeout=30) as browser:
        for call in (browser.attach, browser.close_page, browser.activate):
            with pytest.raises(DevToolsError, match="no tab with target id 'NOPE'"):
                await call("NOPE")
        page = await browser.new_page("about:blank")
        with pytest.raises(DevToolsError, match="JavaScript error in about:blank: Error: boom"):
            await page.evaluate("(() => { throw new Error('boom'); })()")
        with pytest.raises(DevToolsError, match="wait must be one of"):
            await page.goto(rig.url("/"), wait="idle")  # type: ignore[arg-type]
        with pytest.raises(DevToolsError, match=r"navigation to http://127\.0\.0\.1:1/ failed: net::ERR"):
            await page.goto("http://127.0.0.1:1/", timeout=30)
        assert await page.evaluate("'still usable'") == "still usable"


async def test_a_tab_that_never_loads_fails_within_its_deadline_and_the_browser_stays_usable(rig: Rig):
    async with connect_devtools(rig.guest, port=rig.port, timeout=30) as browser:
        t0 = time.monotonic()
        with pytest.raises(DevToolsError, match=r"/hang did not load within 2 s"):
            await browser.new_page(rig.url("/hang"), wait="load", timeout=2)
        assert time.monotonic() - t0 < 5
        page = await browser.new_page(rig.url("/"), timeout=30)
        assert await page.title() == "Hello page"
        with pytest.raises(DevToolsError, match="did not finish within 1 s"):
            await page.evaluate("new Promise(() => {})", timeout=1)


async def test_chromium_killed_mid_call_fails_the_call_promptly(rig: Rig):
    async with connect_devtools(rig.guest, port=rig.port, timeout=30) as browser:
        page = await browser.new_page(rig.url("/"))
        failed: list[BaseException] = []

        async def never_settles() -> None:
            try:
                await page.evaluate("new Promise(() => {})", timeout=60)
            except DevToolsError as e:
                failed.append(e)

        t0 = time.monotonic()
        with anyio.fail_after(15):
            async with anyio.create_task_group() as tg:
                tg.start_soon(never_settles)
                assert await page.evaluate("1") == 1  # a round trip: the never-settling call is out
                os.kill(rig.chrome.pid, signal.SIGKILL)
        assert time.monotonic() - t0 < 10
        assert len(failed) == 1 and "went away during Runtime.evaluate" in str(failed[0])
        with pytest.raises(DevToolsError, match="gone"):
            await browser.pages()
