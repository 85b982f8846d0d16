"""DevTools in a real sandbox, the way OSWorld's Chrome tasks start it: `google-chrome
--remote-debugging-port=1337` plus `socat tcp-listen:9222,fork tcp:localhost:1337`, a page served
inside the sandbox on its own loopback, and the host reaching both only through the guest's socket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import orjson
import pytest
import pytest_asyncio

from vm.devtools import DevToolsError, connect_devtools
from vm.docker import DockerProvider, DockerSandbox
from vm.types import WindowNotFound

pytestmark = pytest.mark.docker

MARKER = "sandbox-served-7f3a"
INDEX = f"<!DOCTYPE html><html><head><title>Sandbox page</title></head><body><p id=m>{MARKER}</p></body></html>"


@pytest_asyncio.fixture
async def chrome_box(docker_provider: DockerProvider) -> AsyncIterator[DockerSandbox]:
    """A fresh sandbox (Chrome must not leak into the shared one) with Chrome and a page server up."""
    box = await docker_provider.start()
    try:
        if not (await box.run(["sh", "-c", "command -v google-chrome && command -v socat"])).ok:
            pytest.skip("this image has no google-chrome/socat (vm/image adds Chromium as google-chrome)")
        await box.upload("/home/user/site/index.html", INDEX.encode())
        await box.guest.launch(["python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                                "/home/user/site", "8000"])
        await box.guest.launch(["google-chrome", "--remote-debugging-port=1337"])
        await box.guest.launch(["socat", "tcp-listen:9222,fork", "tcp:localhost:1337"])
        yield box
    finally:
        with anyio.CancelScope(shield=True):
            await docker_provider.stop(box)


async def test_osworld_style_chrome_is_driven_through_the_guest_socket(chrome_box: DockerSandbox):
    guest = chrome_box.guest
    async with connect_devtools(guest, port=9222, timeout=90) as browser:
        version = await browser.version()
        assert "Chrome/" in version["Browser"] and "/devtools/browser/" in version["webSocketDebuggerUrl"]
        before = await browser.pages()
        assert before, "Chrome opens with one tab"
        page = await browser.new_page("http://127.0.0.1:8000/", wait="load", timeout=60)
        assert await page.title() == "Sandbox page"
        assert MARKER in await page.content()
        assert await page.evaluate("document.getElementById('m').textContent") == MARKER
        listed = await browser.pages()
        assert [p.target_id for p in listed] == [*(p.target_id for p in before), page.target_id]
        assert listed[-1].url == "http://127.0.0.1:8000/"
        await browser.close_page(before[0].target_id)
        assert [p.target_id for p in await browser.pages()] == [page.target_id]
        with pytest.raises(DevToolsError, match="no tab with target id 'NOPE'"):
            await browser.attach("NOPE")

    # OSWorld's setup step names the window "Google Chrome"; the guest finds Chromium's by alias.
    await guest.activate_window("Google Chrome")
    await guest.activate_window("google-chrome.Google-chrome", strict=True, by_class=True)
    windows = await chrome_box.run(["wmctrl", "-lx"])
    assert "Sandbox page - Chromium" in windows.output, windows.output
    # A window that is not there is the guest's typed answer, not a failed guest (infrastructure).
    with pytest.raises(WindowNotFound, match="HTTP 404: no window matches 'No such window'"):
        await guest.activate_window("No such window")

    # Plain HTTP through the same tunnel (as VLC's status page would be read).
    status, body = await guest.tunnel_request(8000, "GET", "/index.html")
    assert status == 200 and MARKER.encode() in body
    status, body = await guest.tunnel_request(8001, "GET", "/")
    assert status == 502 and "nothing listens on 127.0.0.1:8001" in orjson.loads(body)["message"]

    await guest.close_window("Sandbox page - Google Chrome", strict=True)
    with anyio.fail_after(30):  # Chrome exits once its last window is closed
        while True:
            status, _body = await guest.tunnel_request(9222, "GET", "/json/version", timeout=5)
            if status == 502:
                break
            await anyio.sleep(0.2)
