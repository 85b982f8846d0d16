"""GuestClient: OSWorld's in-VM HTTP API as typed async calls, over a unix socket or TCP.

One aiohttp session per sandbox. Every request has a deadline; for calls that carry a
server-side timeout (/execute, /run_python, /run_bash_script, /setup/open_file) the client waits
that long plus a margin, so the server's answer ("timed out") arrives before the client gives up.
Errors are SandboxError with the sandbox name, method, path and status; the bearer token never
appears in a message.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import orjson
from yarl import URL

from harness.base.errors import SandboxError
from vm.types import MAX_FILE_BYTES, MAX_MESSAGE_BYTES, ExecResult, TooLarge, WindowNotFound

log = logging.getLogger(__name__)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TUNNEL_MAX_MESSAGE = 256 * 1024 * 1024  # the guest's own limit (vm/guest/tunnel.py)
_METHOD = re.compile(r"^[A-Z]+$")


class GuestClient:
    """Client for one guest server. Implements `vm.types.Guest`.

    Give `socket_path` (unix socket, the default for our image) or `base_url`
    (`http://127.0.0.1:PORT`, e.g. OSWorld's own VM image). `token=None` sends no
    Authorization header (the guest's open mode / upstream's server).
    """

    def __init__(
        self,
        *,
        socket_path: str | None = None,
        base_url: str | None = None,
        token: str | None = None,
        name: str = "guest",
        request_timeout: float = 30.0,
        timeout_margin: float = 10.0,
        health_path: str = "/health",
        max_file_bytes: int = MAX_FILE_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        if (socket_path is None) == (base_url is None):
            raise ValueError("GuestClient needs exactly one of socket_path or base_url")
        self.name = name
        self.socket_path = socket_path
        self.base_url = (base_url or "http://localhost").rstrip("/")
        self.request_timeout = request_timeout
        self.timeout_margin = timeout_margin
        self.health_path = health_path
        self.max_file_bytes = max_file_bytes  # download()/download_to(): more is a TooLarge task error
        self.max_message_bytes = max_message_bytes  # any other response, tunnel bodies, WebSocket messages
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._pinned_fd: int | None = None  # see _pin_socket

    def __repr__(self) -> str:  # never show the token
        where = self.socket_path or self.base_url
        return f"GuestClient(name={self.name!r}, at={where!r})"

    # --- plumbing ---------------------------------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise SandboxError(f"{self.name}: guest client is closed")
        if self._session is None:
            connector: aiohttp.BaseConnector
            if self.socket_path is not None:
                path = self.socket_path if self._pinned_fd is None else f"/proc/self/fd/{self._pinned_fd}"
                connector = aiohttp.UnixConnector(path=path)
            else:
                connector = aiohttp.TCPConnector()
            # Per-request deadlines are passed on every call; the session has none of its own.
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self._headers, timeout=aiohttp.ClientTimeout(total=None)
            )
        return self._session

    async def disconnect(self) -> None:
        """Close every connection to the guest but stay usable: the next request dials again.

        Before a checkpoint (vm/docker_fork.py): CRIU cannot dump a socket whose peer is outside."""
        session, self._session = self._session, None
        if session is not None:
            with anyio.CancelScope(shield=True):
                await session.close()

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            with anyio.CancelScope(shield=True):
                await session.close()
        fd, self._pinned_fd = self._pinned_fd, None
        if fd is not None:
            os.close(fd)

    async def _pin_socket(self) -> None:
        """From now on connect to the socket file the ready guest made, not to whatever bears its
        name later: code in the sandbox that became root (OSWorld's `user` has sudo) could
        otherwise put a server of its own at that path. The file is held by an O_PATH descriptor
        and reached through /proc/self/fd (Linux)."""
        if self.socket_path is None or self._pinned_fd is not None or sys.platform != "linux":
            return
        try:
            self._pinned_fd = os.open(self.socket_path, os.O_PATH | os.O_CLOEXEC)
        except OSError as e:
            raise SandboxError(f"{self.name}: cannot hold the guest socket {self.socket_path}: {e.strerror}") from e
        session, self._session = self._session, None  # its pooled connections go to the same guest
        if session is not None:
            await session.close()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        timeout: float | None = None,
        json: Any = None,
        data: Any = None,
        expect: tuple[int, ...] = (200,),
        max_bytes: int | None = None,
    ) -> tuple[int, bytes]:
        """Send one request; return (status, body) when status is in `expect`, else SandboxError.
        A body over `max_bytes` (default `max_message_bytes`) is TooLarge, read no further."""
        session = self._get_session()
        total = self.request_timeout if timeout is None else timeout
        body = orjson.dumps(json) if json is not None else data
        headers = {"Content-Type": "application/json"} if json is not None else None
        try:
            async with session.request(
                method,
                self.base_url + path,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=total),
            ) as resp:
                status = resp.status
                payload = await self._read_capped(resp, max_bytes or self.max_message_bytes, f"{method} {path}")
        except TimeoutError as e:
            raise SandboxError(f"{self.name}: {method} {path} got no answer within {total:.1f}s") from e
        except aiohttp.ClientError as e:
            raise SandboxError(f"{self.name}: {method} {path} failed: {type(e).__name__}: {_one_line(str(e))}") from e
        if status in expect:
            return status, payload
        if status == 401:
            raise SandboxError(f"{self.name}: {method} {path} -> HTTP 401: the guest rejected the sandbox token")
        raise SandboxError(f"{self.name}: {method} {path} -> HTTP {status}: {_error_text(payload)}")

    def _too_large(self, where: str, size: int | None, cap: int) -> TooLarge:
        got = f"{size} bytes" if size is not None else f"more than {cap} bytes"
        return TooLarge(f"{self.name}: {where}: the sandbox sent {got}; the limit is {cap} bytes")

    async def _read_capped(self, resp: aiohttp.ClientResponse, cap: int, where: str) -> bytes:
        """The body, refused by its Content-Length when it says too much, else cut at `cap`."""
        if resp.method == "HEAD":  # a length without a body
            return b""
        if resp.content_length is not None and resp.content_length > cap:
            raise self._too_large(where, resp.content_length, cap)
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > cap:
                raise self._too_large(where, None, cap)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        _, payload = await self._request(method, path, **kwargs)
        return self._decode(method, path, payload)

    def _decode(self, method: str, path: str, payload: bytes) -> Any:
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError as e:
            raise SandboxError(f"{self.name}: {method} {path} returned non-JSON: {_error_text(payload)}") from e

    # --- readiness --------------------------------------------------------------------------------

    async def health(self) -> bool:
        """True when the guest answers its health path with 200 within a few seconds."""
        try:
            await self._request("GET", self.health_path, timeout=min(5.0, self.request_timeout))
        except SandboxError:
            return False
        return True

    async def wait_ready(
        self, deadline_s: float, *, check: Callable[[], Awaitable[None]] | None = None, check_every_s: float = 1.0
    ) -> float:
        """Poll the health path until it answers 200; return the seconds waited.

        `check` (e.g. "is the container still running?") is awaited about every `check_every_s`
        and may raise to stop waiting early. Raises SandboxError after `deadline_s`.
        """
        start = anyio.current_time()
        deadline = start + deadline_s
        next_check = start + check_every_s
        interval = 0.02
        last = "no answer yet"
        while True:
            now = anyio.current_time()
            try:
                await self._request("GET", self.health_path, timeout=max(0.1, min(2.0, deadline - now)))
                await self._pin_socket()
                return anyio.current_time() - start
            except SandboxError as e:
                last = str(e)
            now = anyio.current_time()
            if now >= deadline:
                raise SandboxError(f"{self.name}: guest not ready after {deadline_s:.1f}s; last error: {last}")
            if check is not None and now >= next_check:
                await check()
                next_check = now + check_every_s
            await anyio.sleep(min(interval, max(0.0, deadline - now)))
            interval = min(interval * 1.5, 0.25)

    # --- observation ------------------------------------------------------------------------------

    async def screenshot(self) -> bytes:
        _, payload = await self._request("GET", "/screenshot")
        if not payload.startswith(PNG_MAGIC):
            raise SandboxError(f"{self.name}: GET /screenshot returned {len(payload)} bytes that are not a PNG")
        return payload

    async def accessibility(self) -> str | None:
        """The OSWorld-format accessibility XML, or None when the guest has no tree to give."""
        data = await self._json("GET", "/accessibility", timeout=max(self.request_timeout, 60.0))
        tree = data.get("AT") if isinstance(data, dict) else None
        return tree if isinstance(tree, str) and tree else None

    async def screen_size(self) -> tuple[int, int]:
        data = await self._json("POST", "/screen_size")
        return int(data["width"]), int(data["height"])

    async def window_size(self, app_class_name: str) -> tuple[int, int] | None:
        status, payload = await self._request(
            "POST", "/window_size", data={"app_class_name": app_class_name}, expect=(200, 404)
        )
        if status == 404:
            return None
        data = self._decode("POST", "/window_size", payload)
        if not isinstance(data, dict) or "width" not in data:
            return None
        return int(data["width"]), int(data["height"])

    async def cursor_position(self) -> tuple[int, int]:
        data = await self._json("GET", "/cursor_position")
        return int(data[0]), int(data[1])

    async def platform(self) -> str:
        _, payload = await self._request("GET", "/platform")
        return payload.decode(errors="replace").strip()

    async def terminal(self) -> str | None:
        data = await self._json("GET", "/terminal")
        out = data.get("output") if isinstance(data, dict) else None
        return out if isinstance(out, str) else None

    async def desktop_path(self) -> str:
        data = await self._json("POST", "/desktop_path")
        return str(data["desktop_path"])

    async def list_directory(self, path: str) -> dict[str, Any] | None:
        status, payload = await self._request("POST", "/list_directory", json={"path": path}, expect=(200, 404))
        if status == 404:
            return None
        data = self._decode("POST", "/list_directory", payload)
        return data.get("directory_tree") if isinstance(data, dict) else None

    # --- commands ---------------------------------------------------------------------------------

    async def execute(self, command: str | list[str], *, shell: bool = False, timeout: float = 120.0) -> ExecResult:
        """Run a command (list, or string with shell=True) and wait for it (server-side `timeout`).

        A command that cannot run or times out inside the guest is an ExecResult with
        status "error" (the guest answered); a guest that does not answer is a SandboxError.
        """
        return await self._exec_like("/execute", {"command": command, "shell": shell, "timeout": timeout}, timeout)

    async def setup_execute(self, command: str | list[str], *, shell: bool = False, timeout: float = 120.0) -> ExecResult:
        return await self._exec_like(
            "/setup/execute", {"command": command, "shell": shell, "timeout": timeout}, timeout
        )

    async def run_bash_script(self, script: str, *, timeout: float = 100.0, working_dir: str | None = None) -> ExecResult:
        body: dict[str, Any] = {"script": script, "timeout": timeout}
        if working_dir is not None:
            body["working_dir"] = working_dir
        return await self._exec_like("/run_bash_script", body, timeout)

    async def run_python(self, code: str, *, timeout: float = 30.0) -> dict[str, Any]:
        status, payload = await self._request(
            "POST",
            "/run_python",
            json={"code": code, "timeout": timeout},
            timeout=timeout + self.timeout_margin,
            expect=(200, 400, 500),
        )
        data = self._decode("POST", "/run_python", payload)
        if not isinstance(data, dict):
            raise SandboxError(f"{self.name}: POST /run_python -> HTTP {status}: expected a JSON object")
        return data

    async def _exec_like(self, path: str, body: dict[str, Any], timeout: float) -> ExecResult:
        status, payload = await self._request(
            "POST", path, json=body, timeout=timeout + self.timeout_margin, expect=(200, 500)
        )
        data = self._decode("POST", path, payload)
        if not isinstance(data, dict):
            raise SandboxError(f"{self.name}: POST {path} -> HTTP {status}: expected a JSON object")
        if status == 500 and "returncode" not in data:
            # Upstream's shape for "could not run it" (not found, timed out): {status, message}.
            message = str(data.get("message") or data.get("error") or "command failed in the guest")
            return ExecResult(returncode=-1, output="", error=message, status="error")
        rc = data.get("returncode", data.get("return_code"))
        return ExecResult(
            returncode=rc if isinstance(rc, int) and not isinstance(rc, bool) else -1,
            output=str(data.get("output") or ""),
            error=str(data.get("error") or data.get("message") or ""),
            status=str(data.get("status") or ("success" if status == 200 else "error")),
        )

    async def launch(self, command: str | list[str], *, shell: bool = False) -> None:
        await self._request("POST", "/setup/launch", json={"command": command, "shell": shell})

    async def open_file(self, path: str, *, timeout: float = 60.0) -> None:
        await self._request(
            "POST", "/setup/open_file", json={"path": path, "timeout": timeout}, timeout=timeout + self.timeout_margin
        )

    async def activate_window(self, window_name: str, *, strict: bool = False, by_class: bool = False) -> None:
        await self._window("activate_window", window_name, strict=strict, by_class=by_class)

    async def close_window(self, window_name: str, *, strict: bool = False, by_class: bool = False) -> None:
        await self._window("close_window", window_name, strict=strict, by_class=by_class)

    async def _window(self, action: str, window_name: str, *, strict: bool, by_class: bool) -> None:
        path = f"/setup/{action}"
        status, payload = await self._request(
            "POST", path, json={"window_name": window_name, "strict": strict, "by_class": by_class}, expect=(200, 404)
        )
        if status == 404:
            raise WindowNotFound(f"{self.name}: POST {path} -> HTTP 404: {_error_text(payload)}")

    # --- files ------------------------------------------------------------------------------------

    async def upload(self, path: str, data: bytes) -> None:
        """Write `data` to `path` in the guest (multipart `file_path` + `file_data`; parents created)."""
        form = aiohttp.FormData()
        form.add_field("file_path", path)
        form.add_field(
            "file_data", data, filename=posixpath.basename(path) or "file", content_type="application/octet-stream"
        )
        # Budget at least 1 MB/s on top of the base deadline: large assets must not time out.
        await self._request("POST", "/setup/upload", data=form, timeout=self.request_timeout + len(data) / 1e6)

    async def upload_from(self, path: str, local: Path) -> None:
        """Stream the host file `local` to `path` in the guest (held in memory one chunk at a time)."""
        size = (await anyio.Path(local).stat()).st_size
        with open(local, "rb") as f:  # noqa: ASYNC230 - opening is instant; aiohttp reads it in chunks
            form = aiohttp.FormData()
            form.add_field("file_path", path)
            form.add_field("file_data", f, filename=posixpath.basename(path) or "file",
                           content_type="application/octet-stream")
            await self._request("POST", "/setup/upload", data=form, timeout=self.request_timeout + size / 1e6)

    async def download(self, path: str) -> bytes | None:
        """File bytes, or None when the guest answers 404 (no such file); TooLarge past `max_file_bytes`
        (prefer `download_to` for files that may be large: it holds none of them in memory)."""
        status, payload = await self._request(
            "POST", "/file", data={"file_path": path}, timeout=max(self.request_timeout, 120.0), expect=(200, 404),
            max_bytes=self.max_file_bytes,
        )
        return None if status == 404 else payload

    async def download_to(self, path: str, dest: Path) -> bool:
        """Stream the guest file `path` into `dest` (False when it does not exist). Past
        `max_file_bytes` it is TooLarge and `dest` is removed; memory use stays one chunk."""
        where = "POST /file"
        total = max(self.request_timeout, 120.0) + self.max_file_bytes / 20e6  # at least 20 MB/s for big files
        try:
            async with self._get_session().post(self.base_url + "/file", data={"file_path": path},
                                                timeout=aiohttp.ClientTimeout(total=total)) as resp:
                if resp.status == 404:
                    return False
                if resp.status != 200:
                    raise SandboxError(f"{self.name}: {where} -> HTTP {resp.status}: "
                                       f"{_error_text(await self._read_capped(resp, 1 << 16, where))}")
                cap = self.max_file_bytes
                if resp.content_length is not None and resp.content_length > cap:
                    raise self._too_large(f"{where} {path}", resp.content_length, cap)
                size = 0
                try:
                    async with await anyio.open_file(dest, "wb") as f:
                        async for chunk in resp.content.iter_chunked(1 << 20):
                            size += len(chunk)
                            if size > cap:
                                raise self._too_large(f"{where} {path}", None, cap)
                            await f.write(chunk)
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        await anyio.Path(dest).unlink(missing_ok=True)
                    raise
                return True
        except TimeoutError as e:
            raise SandboxError(f"{self.name}: {where} got no answer within {total:.1f}s") from e
        except aiohttp.ClientError as e:
            raise SandboxError(f"{self.name}: {where} failed: {type(e).__name__}: {_one_line(str(e))}") from e

    # --- tunnel to services on the sandbox's loopback (vm/guest/tunnel.py) -----------------------

    async def tunnel_request(
        self,
        port: int,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, bytes]:
        """Send one HTTP request to 127.0.0.1:`port` inside the sandbox; return (status, body).

        The service's status comes back as is, and so do the tunnel's 502 (nothing listens on the
        port, or it hung up) and 504 (no answer within `timeout`), like a reverse proxy's. An
        `Authorization` header is the service's (VLC's basic auth); the guest's token is separate.
        SandboxError when the guest itself fails (no answer, bad token, no /tunnel route).
        """
        tunnel_path = _tunnel_path(port, path)
        method = method.upper()
        if not _METHOD.match(method):
            raise ValueError(f"tunnel_request: HTTP method must be a word like GET, got {method!r}")
        send = {"X-Tunnel-Timeout": f"{timeout:g}"}
        for name, value in (headers or {}).items():
            send["X-Tunnel-Authorization" if name.lower() == "authorization" else name] = value
        session = self._get_session()
        total = timeout + self.timeout_margin
        where = f"{method} {tunnel_path}"
        try:
            async with session.request(
                method,
                URL(self.base_url + tunnel_path, encoded=True),
                data=body,
                headers=send,
                timeout=aiohttp.ClientTimeout(total=total),
            ) as resp:
                status, payload = resp.status, await self._read_capped(resp, self.max_message_bytes, where)
                made_by = resp.headers.get("X-Tunnel", "")
        except TimeoutError as e:
            raise SandboxError(f"{self.name}: {where} got no answer within {total:.1f}s") from e
        except aiohttp.ClientError as e:
            raise SandboxError(f"{self.name}: {where} failed: {type(e).__name__}: {_one_line(str(e))}") from e
        if made_by == "upstream" or (made_by == "error" and status in (502, 504)):
            return status, payload
        if status == 401:
            raise SandboxError(f"{self.name}: {where} -> HTTP 401: the guest rejected the sandbox token")
        if status in (404, 405) and not made_by:
            raise SandboxError(f"{self.name}: {where} -> HTTP {status}: this guest server has no /tunnel route")
        raise SandboxError(f"{self.name}: {where} -> HTTP {status}: {_error_text(payload)}")

    @asynccontextmanager
    async def tunnel_websocket(
        self, port: int, path: str, *, timeout: float = 30.0
    ) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        """A WebSocket to ws://127.0.0.1:`port``path` inside the sandbox, over the guest's socket.

        `timeout` bounds the handshake; the socket is closed on exit, cancellation included.
        """
        tunnel_path = _tunnel_path(port, path)
        session = self._get_session()
        where = f"WebSocket {tunnel_path}"
        try:
            with anyio.fail_after(timeout):
                ws = await session.ws_connect(
                    URL(self.base_url + tunnel_path, encoded=True),
                    headers={"X-Tunnel-Timeout": f"{timeout:g}"},
                    max_msg_size=min(TUNNEL_MAX_MESSAGE, self.max_message_bytes),
                    autoping=True,
                )
        except TimeoutError as e:
            raise SandboxError(f"{self.name}: {where} was not accepted within {timeout:g}s") from e
        except aiohttp.WSServerHandshakeError as e:
            why = {
                401: "the guest rejected the sandbox token",
                502: f"nothing listens on port {port} in the sandbox, or it refused the upgrade",
                504: f"port {port} in the sandbox did not answer in time",
            }.get(e.status, e.message)
            raise SandboxError(f"{self.name}: {where} -> HTTP {e.status}: {why}") from e
        except aiohttp.ClientError as e:
            raise SandboxError(f"{self.name}: {where} failed: {type(e).__name__}: {_one_line(str(e))}") from e
        try:
            yield ws
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await ws.close()


def _tunnel_path(port: int, path: str) -> str:
    """`/tunnel/PORT/PATH`; `path` is sent as given (already percent-encoded, may carry a query)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"tunnel port must be an integer in 1-65535, got {port!r}")
    if not isinstance(path, str) or any(c.isspace() for c in path):
        raise ValueError(f"tunnel path must be a string without whitespace, got {path!r}")
    return f"/tunnel/{port}/{path.lstrip('/')}"


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_text(payload: bytes) -> str:
    """The guest's error message from a JSON body ({message}/{error}) or the raw text, one line."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return _one_line(payload.decode(errors="replace")) or "(empty body)"
    if isinstance(data, dict):
        for key in ("message", "error", "detail"):
            if data.get(key):
                return _one_line(str(data[key]))
    return _one_line(payload.decode(errors="replace"))
