"""GuestClient against a small stand-in of the guest's HTTP API (the real guest is tested in the
docker tests): auth header, error messages, timeouts, readiness, multipart upload, 404 mapping."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from aiohttp import web

from harness.base.errors import SandboxError
from vm.client import PNG_MAGIC, GuestClient

TOKEN = "s3cret-token-value"


def _app(seen: dict) -> web.Application:
    async def guard(request: web.Request, handler):
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        return await handler(request)

    async def health(_):
        return web.json_response({"status": "ok"})

    async def screenshot(_):
        return web.Response(body=b"GIF89a" if seen.get("bad_png") else PNG_MAGIC + b"rest")

    async def accessibility(_):
        return web.json_response({"AT": seen.get("AT")})

    async def execute(request):
        body = await request.json()
        seen["execute"] = body
        if body["command"] == ["hang"]:
            await anyio.sleep(30)
        if body["command"] == ["missing"]:
            return web.json_response({"status": "error", "message": "No such file: missing"}, status=500)
        return web.json_response({"status": "success", "output": "hi\n", "error": "", "returncode": 3})

    async def upload(request):
        form = await request.post()
        seen["upload"] = (form["file_path"], form["file_data"].file.read(), form["file_data"].filename)
        return web.Response(text="ok")

    async def file(request):
        form = await request.post()
        if form["file_path"] == "/missing":
            return web.json_response({"error": "File not found"}, status=404)
        return web.Response(body=b"\x00\x01data")

    async def screen_size(_):
        return web.json_response({"width": 1280, "height": 720})

    async def boom(_):
        return web.Response(text="Traceback: something\nbroke", status=500)

    app = web.Application(middlewares=[web.middleware(guard)])
    app.add_routes(
        [
            web.get("/health", health),
            web.get("/screenshot", screenshot),
            web.get("/accessibility", accessibility),
            web.post("/execute", execute),
            web.post("/setup/upload", upload),
            web.post("/file", file),
            web.post("/screen_size", screen_size),
            web.get("/cursor_position", boom),
        ]
    )
    return app


async def _serve_unix(path: Path, seen: dict) -> web.AppRunner:
    runner = web.AppRunner(_app(seen), handler_cancellation=True)
    await runner.setup()
    await web.UnixSite(runner, str(path)).start()
    return runner


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[GuestClient, dict]]:
    seen: dict = {}
    runner = await _serve_unix(tmp_path / "g.sock", seen)
    client = GuestClient(socket_path=str(tmp_path / "g.sock"), token=TOKEN, name="box-1", timeout_margin=0.5)
    try:
        yield client, seen
    finally:
        await client.aclose()
        await runner.cleanup()


async def test_typed_calls_send_the_token_and_decode_results(served):
    client, seen = served
    assert await client.health()
    assert (await client.screenshot()).startswith(PNG_MAGIC)
    assert await client.screen_size() == (1280, 720)
    result = await client.execute(["echo", "hi"], timeout=7)
    assert (result.returncode, result.output, result.status) == (3, "hi\n", "success")
    assert seen["execute"] == {"command": ["echo", "hi"], "shell": False, "timeout": 7}
    seen["AT"] = None
    assert await client.accessibility() is None
    seen["AT"] = "<desktop-frame/>"
    assert await client.accessibility() == "<desktop-frame/>"


async def test_upload_sends_multipart_file_path_and_file_data(served):
    client, seen = served
    data = bytes(range(256)) * 100
    await client.upload("/home/user/Desktop/a b.bin", data)
    assert seen["upload"][:2] == ("/home/user/Desktop/a b.bin", data)


async def test_download_returns_bytes_or_none_on_404(served):
    client, _ = served
    assert await client.download("/etc/hostname") == b"\x00\x01data"
    assert await client.download("/missing") is None


async def test_execute_that_cannot_run_is_an_error_result_not_an_exception(served):
    client, _ = served
    result = await client.execute(["missing"])
    assert not result.ok
    assert result.status == "error" and "No such file" in result.error


async def test_wrong_token_gives_401_error_naming_sandbox_and_path_without_the_token(tmp_path: Path):
    runner = await _serve_unix(tmp_path / "g.sock", {})
    client = GuestClient(socket_path=str(tmp_path / "g.sock"), token="wrong-" + TOKEN, name="box-7")
    try:
        with pytest.raises(SandboxError) as err:
            await client.screenshot()
        msg = str(err.value)
        assert "box-7" in msg and "GET /screenshot" in msg and "401" in msg
        assert TOKEN not in msg and TOKEN not in repr(client)
        assert not await client.health()
    finally:
        await client.aclose()
        await runner.cleanup()


async def test_server_error_and_bad_payload_are_one_line_sandbox_errors(served):
    client, seen = served
    with pytest.raises(SandboxError, match=r"box-1: GET /cursor_position -> HTTP 500: Traceback: something broke$"):
        await client.cursor_position()
    seen["bad_png"] = True
    with pytest.raises(SandboxError, match="not a PNG"):
        await client.screenshot()


async def test_execute_waits_server_timeout_plus_margin_then_fails_clearly(served):
    client, _ = served
    t0 = anyio.current_time()
    with pytest.raises(SandboxError, match=r"box-1: POST /execute got no answer within 1\.5s"):
        await client.execute(["hang"], timeout=1.0)
    assert 1.4 < anyio.current_time() - t0 < 5


async def test_wait_ready_polls_until_the_guest_socket_appears(tmp_path: Path):
    sock = tmp_path / "late.sock"
    client = GuestClient(socket_path=str(sock), token=TOKEN, name="late")
    runners = []

    async def start_late():
        await anyio.sleep(0.4)  # the "container" boots
        runners.append(await _serve_unix(sock, {}))

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(start_late)
            waited = await client.wait_ready(10)
        assert 0.3 < waited < 5
    finally:
        await client.aclose()
        for r in runners:
            await r.cleanup()


async def test_wait_ready_gives_up_at_the_deadline_with_the_last_error(tmp_path: Path):
    client = GuestClient(socket_path=str(tmp_path / "never.sock"), token=TOKEN, name="ghost")
    t0 = anyio.current_time()
    with pytest.raises(SandboxError, match=r"ghost: guest not ready after 0\.5s; last error: .*GET /health"):
        await client.wait_ready(0.5)
    assert anyio.current_time() - t0 < 2
    await client.aclose()


async def test_wait_ready_stops_early_when_the_check_fails(tmp_path: Path):
    client = GuestClient(socket_path=str(tmp_path / "never.sock"), name="dead")

    async def container_gone():
        raise SandboxError("dead: container exited (exit code 1)")

    with pytest.raises(SandboxError, match="container exited"):
        await client.wait_ready(30, check=container_gone, check_every_s=0.1)
    await client.aclose()


async def test_tcp_base_url_works_for_osworld_style_guests():
    seen: dict = {}
    runner = web.AppRunner(_app(seen), handler_cancellation=True)
    await runner.setup()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    client = GuestClient(base_url=f"http://127.0.0.1:{port}/", token=TOKEN, name="tcp")
    try:
        await client.wait_ready(5)
        assert await client.screen_size() == (1280, 720)
    finally:
        await client.aclose()
        await runner.cleanup()


async def test_closed_client_refuses_requests(served):
    client, _ = served
    await client.aclose()
    with pytest.raises(SandboxError, match="closed"):
        await client.screenshot()


async def test_observe_failure_is_the_sandbox_error_itself(served):
    from vm.docker import DockerSandbox

    client, seen = served
    box = DockerSandbox.__new__(DockerSandbox)  # the observe path only; the guest is the stand-in server
    box.guest, box._screen = client, None
    seen["AT"] = "<desktop-frame/>"
    obs = await box.observe()
    assert obs.screen_size == (1280, 720) and obs.accessibility_tree == "<desktop-frame/>"
    seen["bad_png"] = True
    with pytest.raises(SandboxError, match="not a PNG"):  # not an ExceptionGroup
        await box.observe()
