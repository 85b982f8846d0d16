"""Tunnel: reach services on the sandbox's own loopback (Chrome DevTools, VLC's HTTP interface).

`* /tunnel/{port}/{path}` forwards the request to `http://127.0.0.1:{port}/{path}?{query}` and
answers with the service's status, headers and body. A WebSocket upgrade is forwarded to
`ws://127.0.0.1:{port}/{path}` and frames are pumped both ways until either side closes.
Only 127.0.0.1 is ever dialed: the route cannot reach other hosts.

Headers: `Authorization` carries the guest's bearer token and is never forwarded; a service's own
credentials (VLC's basic auth) travel as `X-Tunnel-Authorization`. `X-Tunnel-Timeout` (seconds,
default 60) bounds the forwarded exchange (the handshake only, for a WebSocket). Every answer
says who made it in `X-Tunnel`: `upstream` (the service) or `error` (the tunnel itself: 502 when
nothing listens or the service hung up, 504 when it did not answer in time).

Written for Debian's aiohttp 3.8 (the image's python3-aiohttp) as well as current releases.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from aiohttp import web

from .protocol import BadRequest, error

log = logging.getLogger("guest.tunnel")

HOST = "127.0.0.1"
DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 3600.0
CONNECT_TIMEOUT_S = 10.0
MAX_WS_MESSAGE = 256 * 1024 * 1024  # CDP screenshots and DOM snapshots run to tens of MB
CLOSE_TIMEOUT_S = 5.0

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones the tunnel owns; never forwarded either way.
_DROP_REQUEST = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "authorization", "content-length", "accept-encoding",
    "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol",
}
_DROP_RESPONSE = {
    "connection", "keep-alive", "proxy-authenticate", "trailer", "transfer-encoding", "upgrade",
    "content-length", "content-encoding",
}


def _port(request: web.Request) -> int:
    raw = request.match_info["port"]
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise BadRequest(f"tunnel port must be an integer in 1-65535, got {raw!r}")
    return int(raw)


def _timeout(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(raw)
    except ValueError:
        raise BadRequest(f"header X-Tunnel-Timeout must be a number of seconds, got {raw!r}") from None
    if not 0 < seconds <= MAX_TIMEOUT_S:
        raise BadRequest(f"header X-Tunnel-Timeout must be in (0, {MAX_TIMEOUT_S:g}] seconds, got {raw!r}")
    return seconds


def _target(request: web.Request, port: int, scheme: str) -> Any:
    """The loopback URL: the raw (still percent-encoded) path after /tunnel/PORT, and the query."""
    prefix = f"/tunnel/{request.match_info['port']}"
    rest = request.raw_path[len(prefix):] if request.raw_path.startswith(prefix) else "/"
    if not rest.startswith("/"):
        rest = "/" + rest
    # aiohttp's own URL class (yarl), built pre-encoded so "%2F" and friends reach the service as sent.
    url_class = type(request.url)
    return url_class(f"{scheme}://{HOST}:{port}{rest}", encoded=True)


def _forward_headers(request: web.Request) -> list[tuple[str, str]]:
    headers = [(name, value) for name, value in request.headers.items()
               if name.lower() not in _DROP_REQUEST and not name.lower().startswith("x-tunnel-")]
    service_auth = request.headers.get("X-Tunnel-Authorization")
    if service_auth:
        headers.append(("Authorization", service_auth))
    return headers


def _tunnel_error(status: int, message: str) -> web.Response:
    response = error(status, message)
    response.headers["X-Tunnel"] = "error"
    return response


class Tunnel:
    """The /tunnel routes, one client session for the loopback side, and the open WebSockets."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._sockets: set[web.WebSocketResponse] = set()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.route("*", "/tunnel/{port}", self.handle),
            web.route("*", "/tunnel/{port}/{path:.*}", self.handle),
        ]

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # force_close: a service that restarted (Chrome relaunched) never meets a stale pooled
            # connection; a dummy jar: the tunnel is transparent, it keeps no cookies of its own.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True,
            )
        return self._session

    async def close(self) -> None:
        """Close open tunneled WebSockets and the loopback session (server shutdown)."""
        for ws in list(self._sockets):
            try:
                await asyncio.wait_for(ws.close(code=aiohttp.WSCloseCode.GOING_AWAY), CLOSE_TIMEOUT_S)
            except (TimeoutError, ConnectionError, RuntimeError):
                pass
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        port = _port(request)
        timeout = _timeout(request.headers.get("X-Tunnel-Timeout"))
        if request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, port, timeout)
        return await self._http(request, port, timeout)

    async def _http(self, request: web.Request, port: int, timeout: float) -> web.StreamResponse:
        """Forward one request; the answer is streamed through (a service's 2 GB file is never held
        here, and the host stops reading at its own cap)."""
        url = _target(request, port, "http")
        body = await request.read()
        where = f"{HOST}:{port}"
        response: web.StreamResponse | None = None
        try:
            async with self._client().request(
                request.method,
                url,
                data=body if body else None,
                headers=_forward_headers(request),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, CONNECT_TIMEOUT_S)),
            ) as upstream:
                headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in _DROP_RESPONSE]
                headers.append(("X-Tunnel", "upstream"))
                response = web.StreamResponse(status=upstream.status, headers=headers)
                if upstream.content_length is not None and "Content-Encoding" not in upstream.headers:
                    response.content_length = upstream.content_length  # the host can refuse it unread
                await response.prepare(request)
                async for chunk in upstream.content.iter_chunked(1 << 16):
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as e:
            if response is not None:  # mid-body (or the host hung up: it read enough): the status is sent; cutting the connection says it failed
                log.info("tunnel %s %s cut mid-body: %s", request.method, url.path, _reason(e))
                if request.transport is not None:
                    request.transport.close()
                return response
            if isinstance(e, TimeoutError):
                return _tunnel_error(504, f"{where} in the sandbox did not answer {request.method} {url.path} within {timeout:g} s")
            if isinstance(e, aiohttp.ClientConnectorError | ConnectionError):
                return _tunnel_error(502, f"nothing listens on {where} in the sandbox ({_reason(e)})")
            return _tunnel_error(502, f"{where} in the sandbox failed {request.method} {url.path}: {_reason(e)}")

    async def _websocket(self, request: web.Request, port: int, timeout: float) -> web.StreamResponse:
        url = _target(request, port, "ws")
        where = f"{HOST}:{port}"
        protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        headers = {}
        if request.headers.get("X-Tunnel-Authorization"):
            headers["Authorization"] = request.headers["X-Tunnel-Authorization"]
        # Connect to the service first, so a closed port is still an HTTP answer (502), not a socket
        # that opens and dies.
        try:
            upstream = await asyncio.wait_for(
                self._client().ws_connect(
                    url, headers=headers, protocols=protocols, max_msg_size=MAX_WS_MESSAGE, autoping=True
                ),
                min(timeout, CONNECT_TIMEOUT_S * 3),
            )
        except TimeoutError:
            return _tunnel_error(504, f"{where} in the sandbox did not accept a WebSocket on {url.path} in time")
        except aiohttp.WSServerHandshakeError as e:
            return _tunnel_error(502, f"{where} in the sandbox refused a WebSocket on {url.path}: HTTP {e.status} {e.message}")
        except aiohttp.ClientConnectorError as e:
            return _tunnel_error(502, f"nothing listens on {where} in the sandbox ({_reason(e)})")
        except aiohttp.ClientError as e:
            return _tunnel_error(502, f"{where} in the sandbox failed a WebSocket on {url.path}: {_reason(e)}")
        downstream = web.WebSocketResponse(
            max_msg_size=MAX_WS_MESSAGE, autoping=True, protocols=[upstream.protocol] if upstream.protocol else ()
        )
        downstream.headers["X-Tunnel"] = "upstream"
        self._sockets.add(downstream)
        try:
            await downstream.prepare(request)
            await _pump_both(downstream, upstream)
        finally:
            self._sockets.discard(downstream)
            # Either side ended: close the other too (bounded, and even when cancelled).
            await asyncio.shield(_close_both(downstream, upstream))
        return downstream


async def _pump(src: Any, dst: Any) -> None:
    """Copy data frames from src to dst until src closes or errs (pings are answered by aiohttp)."""
    while True:
        msg = await src.receive()
        if msg.type == aiohttp.WSMsgType.TEXT:
            await dst.send_str(msg.data)
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await dst.send_bytes(msg.data)
        elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                          aiohttp.WSMsgType.ERROR):
            return


async def _pump_both(downstream: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    tasks = [asyncio.ensure_future(_pump(downstream, upstream)), asyncio.ensure_future(_pump(upstream, downstream))]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.info("tunnel websocket ended: %s", _reason(task.exception()))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _close_both(downstream: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    code = upstream.close_code if upstream.close_code and 1000 <= upstream.close_code < 5000 else 1000
    for ws, close_code in ((downstream, code), (upstream, 1000)):
        try:
            await asyncio.wait_for(ws.close(code=close_code), CLOSE_TIMEOUT_S)
        except (TimeoutError, ConnectionError, RuntimeError, aiohttp.ClientError):
            pass


def _reason(e: BaseException | None) -> str:
    text = " ".join(str(e).split()) if e is not None else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
