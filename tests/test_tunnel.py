"""The guest's /tunnel route, end to end on the host: GuestClient -> the real guest server app
(in-process, on a unix socket) -> a small aiohttp service on 127.0.0.1. HTTP (method, query, body,
status, headers, basic auth kept apart from the guest token), WebSockets both ways, and the
failures: closed port, a service that never answers, bad ports, a wrong token."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import anyio
import orjson
import pytest
from aiohttp import web

from harness.base.errors import SandboxError
from vm.client import GuestClient
from vm.guest import server
from vm.types import TooLarge

TOKEN = "tunnel-test-token"
VLC_AUTH = "Basic OnBhc3N3b3Jk"  # user "" password "password", as OSWorld's VLC getter sends


@dataclass
class Service:
    port: int
    seen: list[dict] = field(default_factory=list)
    ws_closed: anyio.Event = field(default_factory=anyio.Event)


def _service_app(svc: Service) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        svc.seen.append({"method": request.method, "path": request.raw_path, "headers": dict(request.headers)})
        reply = {"method": request.method, "path": request.path, "query": dict(request.query),
                 "body": body.decode(), "content_type": request.headers.get("Content-Type"),
                 "authorization": request.headers.get("Authorization"), "host": request.headers.get("Host")}
        return web.json_response(reply, status=int(request.query.get("status", "200")),
                                 headers={"X-Service": "yes"})

    async def status_xml(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != VLC_AUTH:
            return web.Response(status=401, text="need auth")
        return web.Response(text="<root><state>playing</state></root>", content_type="text/xml")

    async def hang(request: web.Request) -> web.Response:
        await anyio.sleep(60)
        return web.Response(text="late")

    async def ws_echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                if msg.data == "close-please":
                    await ws.close(code=4001, message=b"bye")
                    break
                await ws.send_str("echo:" + msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(msg.data[::-1])
        svc.ws_closed.set()
        return ws

    app = web.Application(client_max_size=64 * 2**20)
    app.add_routes([web.route("*", "/echo/{tail:.*}", echo), web.get("/requests/status.xml", status_xml),
                    web.get("/hang", hang), web.get("/ws", ws_echo)])
    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[GuestClient, Service, Path]]:
    svc = Service(port=0)
    service = web.AppRunner(_service_app(svc), handler_cancellation=True, shutdown_timeout=1)
    await service.setup()
    site = web.TCPSite(service, "127.0.0.1", 0)
    await site.start()
    svc.port = site._server.sockets[0].getsockname()[1]
    sock = tmp_path / "guest.sock"
    guest = web.AppRunner(server.make_app(TOKEN), handler_cancellation=True, shutdown_timeout=1)
    await guest.setup()
    await web.UnixSite(guest, str(sock)).start()
    client = GuestClient(socket_path=str(sock), token=TOKEN, name="box-t", timeout_margin=2.0)
    try:
        yield client, svc, sock
    finally:
        await client.aclose()
        await guest.cleanup()
        await service.cleanup()


async def test_http_request_reaches_the_loopback_service_with_method_query_body_and_status(rig):
    client, svc, _ = rig
    status, body = await client.tunnel_request(svc.port, "GET", "/echo/a%20b?x=1&y=two")
    got = orjson.loads(body)
    assert status == 200
    assert (got["method"], got["path"], got["query"]) == ("GET", "/echo/a b", {"x": "1", "y": "two"})
    assert got["host"] == f"127.0.0.1:{svc.port}"  # Chrome's DevTools endpoint insists on an IP Host
    await client.tunnel_request(svc.port, "GET", "/echo/c%2Fd?u=http%3A%2F%2Fx%2F&p=a+b")
    assert svc.seen[-1]["path"] == "/echo/c%2Fd?u=http%3A%2F%2Fx%2F&p=a+b"  # byte for byte

    status, body = await client.tunnel_request(svc.port, "PUT", "echo/p?status=201", body=b'{"k": 1}',
                                               headers={"Content-Type": "application/json"})
    got = orjson.loads(body)
    assert status == 201
    assert (got["method"], got["body"], got["content_type"]) == ("PUT", '{"k": 1}', "application/json")

    status, body = await client.tunnel_request(svc.port, "post", "/echo/q?status=418", body=b"raw")
    assert status == 418 and orjson.loads(body)["body"] == "raw"


async def test_response_headers_come_back_and_guest_token_never_reaches_the_service(rig):
    _, svc, sock = rig
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock))) as raw:
        async with raw.get(f"http://guest/tunnel/{svc.port}/echo/h",
                           headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("application/json")
            assert r.headers["X-Service"] == "yes" and r.headers["X-Tunnel"] == "upstream"
    assert all(TOKEN not in str(seen["headers"]) for seen in svc.seen)
    assert all("X-Tunnel-Timeout" not in seen["headers"] for seen in svc.seen)


async def test_vlc_style_basic_auth_passes_through_and_a_401_from_the_service_is_returned(rig):
    client, svc, _ = rig
    status, body = await client.tunnel_request(svc.port, "GET", "/requests/status.xml",
                                               headers={"Authorization": VLC_AUTH})
    assert (status, body) == (200, b"<root><state>playing</state></root>")
    status, body = await client.tunnel_request(svc.port, "GET", "/requests/status.xml")
    assert (status, body) == (401, b"need auth")  # the service's 401: a status, not an exception


async def test_closed_port_answers_502_with_a_one_line_message(rig):
    client, _, _ = rig
    port = _free_port()
    status, body = await client.tunnel_request(port, "GET", "/json/version")
    message = orjson.loads(body)["message"]
    assert status == 502
    assert f"nothing listens on 127.0.0.1:{port}" in message and "\n" not in message


async def test_service_that_never_answers_is_504_within_the_timeout(rig):
    client, svc, _ = rig
    t0 = time.monotonic()
    status, body = await client.tunnel_request(svc.port, "GET", "/hang", timeout=1.0)
    assert status == 504 and "did not answer" in orjson.loads(body)["message"]
    assert time.monotonic() - t0 < 4.0


async def test_bad_ports_and_a_wrong_token_are_clear_errors(rig, tmp_path):
    client, svc, sock = rig
    for port in (0, 65536, "9222", True):
        with pytest.raises(ValueError, match="tunnel port must be an integer in 1-65535"):
            await client.tunnel_request(port, "GET", "/")  # type: ignore[arg-type]
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock))) as raw:
        for bad in ("abc", "0", "70000"):
            async with raw.get(f"http://guest/tunnel/{bad}/x", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                assert r.status == 400
                assert (await r.json())["message"] == f"tunnel port must be an integer in 1-65535, got {bad!r}"
    wrong = GuestClient(socket_path=str(sock), token="nope", name="box-w")
    try:
        with pytest.raises(SandboxError, match=r"box-w: GET /tunnel/.*401.*token"):
            await wrong.tunnel_request(svc.port, "GET", "/echo/x")
        with pytest.raises(SandboxError, match="401"):
            async with wrong.tunnel_websocket(svc.port, "/ws", timeout=5):
                pass
    finally:
        await wrong.aclose()
    assert not svc.seen


async def test_websocket_pumps_text_and_large_binary_frames_both_ways(rig):
    client, svc, _ = rig
    big = bytes(range(256)) * (80 * 1024)  # 20 MB, a CDP screenshot's order of size
    with anyio.fail_after(30):
        async with client.tunnel_websocket(svc.port, "/ws", timeout=5) as ws:
            await ws.send_str("hello")
            assert (await ws.receive()).data == "echo:hello"
            await ws.send_bytes(big)
            reply = await ws.receive()
            assert reply.type == aiohttp.WSMsgType.BINARY and reply.data == big[::-1]
        await svc.ws_closed.wait()  # leaving the context closed the service's end too


async def test_service_closing_the_websocket_closes_the_client_end(rig):
    client, svc, _ = rig
    with anyio.fail_after(10):
        async with client.tunnel_websocket(svc.port, "/ws", timeout=5) as ws:
            await ws.send_str("close-please")
            msg = await ws.receive()
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == 4001


async def test_responses_and_websocket_messages_over_the_clients_cap_are_refused(rig):
    _, svc, sock = rig
    small = GuestClient(socket_path=str(sock), token=TOKEN, name="box-s", max_message_bytes=1 << 20)
    try:
        status, _ = await small.tunnel_request(svc.port, "POST", "/echo/x", body=b"y" * (900 << 10))
        assert status == 200  # under the cap: answered as usual
        with pytest.raises(TooLarge, match=r"box-s: POST /tunnel/\d+/echo/x: the sandbox sent \d+ bytes; the limit is 1048576"):
            await small.tunnel_request(svc.port, "POST", "/echo/x", body=b"y" * (2 << 20))
        with anyio.fail_after(30):
            async with small.tunnel_websocket(svc.port, "/ws", timeout=5) as ws:
                await ws.send_bytes(b"z" * (2 << 20))  # echoed back reversed: 2 MiB, over the cap
                msg = await ws.receive()
                assert msg.type == aiohttp.WSMsgType.ERROR and "exceeds limit" in str(msg.data)
    finally:
        await small.aclose()


async def test_websocket_to_a_closed_port_is_a_sandbox_error_naming_the_port(rig):
    client, _, _ = rig
    port = _free_port()
    with anyio.fail_after(10), pytest.raises(SandboxError, match=f"HTTP 502: nothing listens on port {port}"):
        async with client.tunnel_websocket(port, "/devtools/browser/x", timeout=5):
            pass


async def test_a_sim_sandbox_says_it_has_no_tunnel():
    from vm.sim import SimProvider

    box = await SimProvider(run_id="tunnel-test").start()
    with pytest.raises(SandboxError, match="sim sandbox: no services run inside it"):
        await box.tunnel_request(9222, "GET", "/json/version")
    with pytest.raises(SandboxError, match="sim sandbox"):
        box.tunnel_websocket(9222, "/devtools/browser/x")
