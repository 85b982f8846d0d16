"""Claims on real containers of the desktop image, through DockerProvider and GuestClient.

Most claims share one sandbox (`desktop`, session-scoped) and one mousepad window in it; the
lifecycle claims (failed / cancelled starts) start their own containers.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import aiodocker
import aiohttp
import anyio
import pytest
import pytest_asyncio
from PIL import Image

from harness.base.errors import SandboxError
from vm.docker import LABEL_PROVIDER, DockerProvider, DockerSandbox, DockerSettings

pytestmark = pytest.mark.docker

CP = "{https://accessibility.ubuntu.example.org/ns/component}"
T = TypeVar("T")


async def poll(fetch: Callable[[], Awaitable[T]], ok: Callable[[T], bool], *, deadline_s: float, what: str) -> T:
    """Fetch until `ok(value)`; fail with the last value after the deadline."""
    last: T | None = None
    with anyio.move_on_after(deadline_s):
        while True:
            last = await fetch()
            if ok(last):
                return last
            await anyio.sleep(0.2)
    raise AssertionError(f"{what} not seen within {deadline_s}s; last value: {str(last)[:500]}")


def _texts(xml: str) -> list[str]:
    root = ET.fromstring(xml)
    return [t for el in root.iter() for t in (el.text, el.get("name")) if t]


def _mousepad_frame(xml: str | None) -> ET.Element | None:
    if not xml:
        return None
    for el in ET.fromstring(xml).iter():
        if el.tag == "frame" and "Mousepad" in (el.get("name") or ""):
            return el
    return None


@pytest_asyncio.fixture(scope="session")
async def mousepad(desktop: DockerSandbox) -> DockerSandbox:
    """Mousepad open (and focused) in the shared sandbox, its window visible in the accessibility tree."""
    await desktop.guest.launch(["mousepad"])
    await poll(desktop.guest.accessibility, lambda x: _mousepad_frame(x) is not None, deadline_s=60, what="mousepad window")
    return desktop


async def test_screenshot_is_a_png_of_the_configured_size_and_not_blank(mousepad, docker_settings):
    obs = await mousepad.observe(accessibility=False)
    image = Image.open(io.BytesIO(obs.screenshot))
    assert image.format == "PNG"
    assert image.size == (docker_settings.screen_width, docker_settings.screen_height) == obs.screen_size
    colors = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colors is not None and len(colors) > 20  # background, window frame, text, cursor


async def test_app_window_appears_in_the_accessibility_xml_with_coordinates(mousepad, docker_settings):
    obs = await mousepad.observe()
    frame = _mousepad_frame(obs.accessibility_tree)
    assert frame is not None
    x, y = (int(v) for v in frame.get(f"{CP}screencoord").strip("()").split(","))
    w, h = (int(v) for v in frame.get(f"{CP}size").strip("()").split(","))
    assert 0 <= x < docker_settings.screen_width and 0 <= y < docker_settings.screen_height
    assert w > 100 and h > 100


async def test_typing_into_mousepad_through_pyautogui_shows_in_the_accessibility_tree(mousepad):
    typed = "hello from pyautogui <3"
    result = await mousepad.execute(f"pyautogui.typewrite({typed!r}, interval=0.005)")
    assert result.ok, result.error
    result = await mousepad.execute({"action_type": "TYPING", "parameters": {"text": " & computer_13"}})
    assert result.ok, result.error
    want = typed + " & computer_13"
    await poll(
        mousepad.guest.accessibility,
        lambda xml: any(want in t for t in _texts(xml or "<x/>")),
        deadline_s=30,
        what=f"typed text {want!r} in the accessibility tree",
    )


async def test_five_megabyte_binary_upload_download_round_trip_is_byte_exact(desktop):
    data = os.urandom(5 * 2**20)
    path = "/home/user/round/trip/blob.bin"  # parents do not exist yet
    await desktop.upload(path, data)
    assert await desktop.download(path) == data
    remote = await desktop.run(["sha256sum", path])
    assert remote.output.split()[0] == hashlib.sha256(data).hexdigest()


async def test_download_of_a_missing_file_is_none(desktop):
    assert await desktop.download("/home/user/no/such/file") is None


async def test_execute_returns_stdout_stderr_and_return_code(desktop):
    result = await desktop.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.returncode, result.output, result.error) == (3, "out\n", "err\n")
    shell = await desktop.run("echo $((6 * 7))", shell=True)
    assert shell.ok and shell.output == "42\n"
    code = await desktop.execute("print(pyautogui.size())")  # OSWorld's python -c preamble in the guest
    assert code.ok and code.output.strip() == "Size(width=1280, height=800)"


async def test_execute_that_times_out_in_the_guest_is_an_error_result(desktop):
    result = await desktop.run(["sleep", "30"], timeout=1)
    assert result.returncode != 0 and result.status == "error" and "timed out" in result.error
    assert (await desktop.run(["true"])).ok  # the guest is not wedged


async def test_request_without_the_token_gets_401(desktop):
    assert desktop.guest.socket_path is not None
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=desktop.guest.socket_path)) as raw:
        for headers in ({}, {"Authorization": "Bearer not-the-token"}):
            async with raw.get("http://localhost/screenshot", headers=headers) as resp:
                assert resp.status == 401
        async with raw.post("http://localhost/execute", json={"command": ["touch", "/tmp/pwned"]}) as resp:
            assert resp.status == 401
    assert (await desktop.run(["test", "-e", "/tmp/pwned"])).returncode == 1
    assert await desktop.guest.health()


async def test_sandbox_has_no_network_and_resource_limits(desktop, docker_provider):
    links = await desktop.run(["cat", "/proc/net/dev"])
    interfaces = [line.split(":")[0].strip() for line in links.output.splitlines()[2:]]
    assert interfaces == ["lo"]
    async with aiodocker.Docker() as docker:
        info = await docker.containers.container(desktop.container_id).show()
    host = info["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["Memory"] == 2048 * 2**20 and host["NanoCpus"] == 10**9 and host["PidsLimit"] == 512
    assert host["ShmSize"] == 512 * 2**20


async def _provider_containers(provider: DockerProvider) -> list[str]:
    async with aiodocker.Docker() as docker:
        found = await docker.containers.list(all=True, filters={"label": [f"{LABEL_PROVIDER}={provider.provider_id}"]})
    return [c.id for c in found]


async def test_start_that_misses_its_deadline_removes_the_container(desktop_image, test_run_id):
    # Xvfb refuses depth 7, so the guest answers /health with 503 for ever: never ready.
    # A runtime folder of its own: other runs on the machine add and remove theirs in the shared one.
    runtime = Path(tempfile.mkdtemp(prefix="cua-t-", dir="/tmp"))
    settings = DockerSettings(image=desktop_image, start_timeout_s=2, env={"SCREEN_DEPTH": "7"}, runtime_dir=runtime)
    try:
        async with DockerProvider(settings, run_id=test_run_id) as p:
            with pytest.raises(SandboxError, match=r"cua-\w+: guest not ready after \d\.\ds; last error: .*HTTP 503"):
                await p.start()
            assert await _provider_containers(p) == []
            assert os.listdir(runtime) == []  # the sandbox's socket folder is gone
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


async def test_container_that_exits_during_start_fails_fast_with_its_log(desktop_image, test_run_id):
    settings = DockerSettings(image=desktop_image, env={"GUEST_LISTEN": "carrier-pigeon:1"})
    async with DockerProvider(settings, run_id=test_run_id) as p:
        t0 = anyio.current_time()
        with pytest.raises(SandboxError, match=r"exit code \d+\) before the guest was ready; last log lines: .+"):
            await p.start()
        assert anyio.current_time() - t0 < 20  # not the 60 s start deadline
        assert await _provider_containers(p) == []


async def test_cancelled_start_leaves_no_container(desktop_image, test_run_id):
    # A guest that never gets ready (bad screen depth answers 503) keeps start() in its readiness
    # wait however fast the machine is, so the second cancel always lands there.
    settings = DockerSettings(image=desktop_image, start_timeout_s=60, env={"SCREEN_DEPTH": "7"})
    async with DockerProvider(settings, run_id=test_run_id) as p:
        for delay in (0.05, 1.0):  # cancelled during create, then during the readiness wait
            with anyio.move_on_after(delay) as scope:
                await p.start()
            assert scope.cancelled_caught
            assert await _provider_containers(p) == []
            assert p.live() == []


async def test_missing_image_is_a_clear_error(test_run_id, docker_engine):
    async with DockerProvider(DockerSettings(image="cua-harness/desktop:does-not-exist"), run_id=test_run_id) as p:
        with pytest.raises(SandboxError, match=r"image cua-harness/desktop:does-not-exist not found; build it with"):
            await p.start()
