"""One Chrome DevTools Protocol WebSocket: commands out, replies matched by id, events to their tab.

The plumbing under vm/devtools.py. A reader task owns the socket's receiving side; when the
socket ends (Chrome killed, sandbox gone) it fails every call in flight and every attached tab
with the reason, so nothing waits on a browser that is no longer there.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import anyio
import orjson

from harness.base.errors import HarnessError


class DevToolsError(HarnessError):
    """Chrome's DevTools endpoint failed, refused, or did not answer in time (one-line message)."""


class Session(Protocol):
    """What the connection needs of an attached tab (vm.devtools.Page)."""

    def _on_event(self, method: str, params: dict[str, Any]) -> None: ...

    def _set_gone(self, reason: str) -> None: ...


@dataclass(slots=True)
class _Call:
    method: str
    session: str | None
    done: anyio.Event
    result: Any = None
    error: str | None = None


class Connection:
    """One CDP WebSocket: sends commands, matches replies by id, hands events to their session."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, port: int) -> None:
        self._ws = ws
        self.port = port
        self._ids = itertools.count(1)
        self._pending: dict[int, _Call] = {}
        self._send_lock = anyio.Lock()
        self.sessions: dict[str, Session] = {}
        self.on_browser_event: Any = None
        self.gone: str | None = None

    async def read(self) -> None:
        reason = "closed"
        try:
            while True:
                msg = await self._ws.receive()
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._dispatch(orjson.loads(msg.data))
                elif msg.type != aiohttp.WSMsgType.BINARY:
                    code = self._ws.close_code
                    why = f": {msg.data}" if msg.type == aiohttp.WSMsgType.ERROR else ""  # e.g. a message over the cap
                    reason = f"the connection closed ({msg.type.name.lower()}{f', code {code}' if code else ''}{why})"
                    return
        except anyio.get_cancelled_exc_class():
            reason = "the DevTools client was closed"
            raise
        except Exception as e:  # a broken stream: every waiter learns why
            reason = f"the connection failed ({type(e).__name__}: {e})"
        finally:
            self._fail_all(reason)

    def _fail_all(self, reason: str) -> None:
        self.gone = reason
        for call in self._pending.values():
            call.error = f"DevTools on port {self.port} went away during {call.method}: {reason}"
            call.done.set()
        self._pending.clear()
        for page in list(self.sessions.values()):
            page._set_gone(f"DevTools on port {self.port} went away: {reason}")

    def fail_session(self, session: str, reason: str) -> None:
        for ident, call in list(self._pending.items()):
            if call.session == session:
                call.error = reason
                call.done.set()
                del self._pending[ident]
        page = self.sessions.pop(session, None)
        if page is not None:
            page._set_gone(reason)

    def _dispatch(self, msg: dict[str, Any]) -> None:
        if "id" in msg:
            call = self._pending.pop(msg["id"], None)
            if call is not None:  # late replies to calls that timed out are dropped
                if "error" in msg:
                    err = msg["error"]
                    call.error = f"{call.method}: {err.get('message', err) if isinstance(err, dict) else err}"
                else:
                    call.result = msg.get("result", {})
                call.done.set()
            return
        method, params = msg.get("method", ""), msg.get("params") or {}
        session = msg.get("sessionId")
        if session:
            page = self.sessions.get(session)
            if page is not None:
                page._on_event(method, params)
        elif self.on_browser_event is not None:
            self.on_browser_event(method, params)

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None,
        timeout: float = 30.0, on_timeout: str | None = None,
    ) -> dict[str, Any]:
        if self.gone is not None:
            raise DevToolsError(f"DevTools on port {self.port} is gone ({self.gone}); cannot send {method}")
        ident = next(self._ids)
        call = _Call(method, session, anyio.Event())
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        self._pending[ident] = call
        try:
            with anyio.fail_after(max(0.0, timeout)):
                async with self._send_lock:
                    await self._ws.send_str(orjson.dumps(message).decode())
                await call.done.wait()
        except TimeoutError:
            raise DevToolsError(on_timeout or f"DevTools {method} got no answer within {timeout:g} s") from None
        except (ConnectionError, aiohttp.ClientError, RuntimeError) as e:
            raise DevToolsError(f"DevTools on port {self.port}: sending {method} failed: {type(e).__name__}: {e}") from e
        finally:
            self._pending.pop(ident, None)
        if call.error is not None:
            raise DevToolsError(call.error)
        return call.result if isinstance(call.result, dict) else {}
