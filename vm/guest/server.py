"""Routes of the guest server (OSWorld's in-VM API) and its startup.

Environment: GUEST_LISTEN (`unix:/path`, default unix:/run/guest/guest.sock, or `tcp:HOST:PORT`),
GUEST_TOKEN (bearer token required on every path) or GUEST_OPEN=1 (no token: OSWorld's own
clients), DISPLAY, GUEST_RUN_AS (the desktop's user, when the server runs as root: user.py). Additions to OSWorld's API: GET /health, bearer auth, JSON errors, an
optional `timeout` (seconds) on /execute, /setup/execute, /run_python and /setup/open_file, and
`/tunnel/{port}/{path}` to services on the sandbox's loopback (see tunnel.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import signal
import sys
import time
from typing import Any

from aiohttp import web

from . import files, procs, user, windows
from .a11y import Accessibility
from .protocol import (
    BadRequest,
    Unavailable,
    auth_middleware,
    bool_field,
    command_field,
    error,
    error_middleware,
    fields,
    seconds_field,
    text_field,
)
from .screen import Screen
from .tunnel import Tunnel

log = logging.getLogger("guest")

DEFAULT_LISTEN = "unix:/run/guest/guest.sock"
EXECUTE_TIMEOUT_S = 120.0
MAX_BODY = 1024 * 1024 * 1024  # form/JSON bodies; uploads stream and are not bounded by this


class Guest:
    def __init__(self) -> None:
        self.screen = Screen()
        self.a11y = Accessibility()
        self.launcher = procs.Launcher()
        self.started = time.monotonic()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/health", self.health),
            web.get("/platform", self.platform),
            web.get("/screenshot", self.screenshot),
            web.get("/accessibility", self.accessibility),
            web.get("/terminal", self.terminal),
            web.get("/cursor_position", self.cursor_position),
            web.route("*", "/screen_size", self.screen_size),
            web.post("/window_size", self.window_size),
            web.route("*", "/desktop_path", self.desktop_path),
            web.post("/list_directory", self.list_directory),
            web.post("/file", self.file),
            web.post("/execute", self.execute),
            web.post("/setup/execute", self.execute),
            web.post("/setup/launch", self.launch),
            web.post("/setup/upload", self.upload),
            web.post("/setup/open_file", self.open_file),
            web.post("/setup/activate_window", self.activate_window),
            web.post("/setup/close_window", self.close_window),
            web.post("/run_python", self.run_python),
            web.post("/run_bash_script", self.run_bash_script),
        ]

    # -- liveness --

    async def health(self, request: web.Request) -> web.Response:
        """200 only when X answers; says whether the AT-SPI bus is up (its launcher sets AT_SPI_BUS)
        and whether the osworld desktop has drawn its bar and dock (CUA_DESKTOP_READY, set by
        /opt/gnome/mark-ready.py). `?desktop=1` also waits for the latter: 503 until then."""
        try:
            width, height = await self.screen.size()
        except Unavailable as e:
            return error(503, str(e), x=False, atspi=False)
        try:
            atspi = await self.screen.root_property("AT_SPI_BUS") is not None
        except Unavailable:
            atspi = False
        try:
            desktop = await self.screen.root_property("CUA_DESKTOP_READY") is not None
        except Unavailable:
            desktop = False
        if request.query.get("desktop") == "1" and not desktop:
            return error(503, "the desktop has not drawn its bar and dock yet", x=True, atspi=atspi, desktop=False)
        return web.json_response(
            {
                "status": "ok",
                "x": True,
                "atspi": atspi,
                "desktop": desktop,
                "display": self.screen.display_name,
                "screen": {"width": width, "height": height},
                "uptime_s": round(time.monotonic() - self.started, 3),
                "build": os.environ.get("GUEST_BUILD", ""),
            }
        )

    async def platform(self, request: web.Request) -> web.Response:
        return web.Response(text=platform.system())

    # -- looking --

    async def screenshot(self, request: web.Request) -> web.Response:
        png = await self.screen.screenshot_png()
        return web.Response(body=png, content_type="image/png")

    async def accessibility(self, request: web.Request) -> web.Response:
        full = request.query.get("full", "") in ("1", "true")
        return web.json_response({"AT": await self.a11y.tree_xml(full=full)})

    async def terminal(self, request: web.Request) -> web.Response:
        # OSWorld's SetupController polls this as a liveness probe: answer 200 even without AT-SPI.
        try:
            output = await self.a11y.terminal_text()
        except Unavailable:
            output = None
        return web.json_response({"output": output, "status": "success"})

    async def cursor_position(self, request: web.Request) -> web.Response:
        x, y = await self.screen.pointer()
        return web.json_response([x, y])

    async def screen_size(self, request: web.Request) -> web.Response:
        width, height = await self.screen.size()
        return web.json_response({"width": width, "height": height})

    async def window_size(self, request: web.Request) -> web.Response:
        name = text_field(await fields(request), "app_class_name")
        size = await self.screen.window_size(name)
        if size is None:
            return error(404, f"no window with WM_CLASS {name!r}")
        return web.json_response({"width": size[0], "height": size[1]})

    # -- files --

    async def desktop_path(self, request: web.Request) -> web.Response:
        return web.json_response({"desktop_path": files.desktop_path()})

    async def list_directory(self, request: web.Request) -> web.Response:
        path = text_field(await fields(request), "path")
        tree = await user.as_user(files.directory_tree, path)
        return web.json_response({"directory_tree": tree})

    async def file(self, request: web.Request) -> web.StreamResponse:
        path = text_field(await fields(request), "file_path")
        return await files.send_file(request, path)

    async def upload(self, request: web.Request) -> web.Response:
        path = await files.receive_upload(request)
        return web.Response(text=f"File uploaded to {path}")

    # -- commands --

    async def execute(self, request: web.Request) -> web.Response:
        data = await fields(request)
        argv = procs.argv_for(command_field(data), bool_field(data, "shell"))
        timeout = seconds_field(data, "timeout", EXECUTE_TIMEOUT_S)
        return web.json_response(await procs.run(argv, timeout=timeout))

    async def launch(self, request: web.Request) -> web.Response:
        data = await fields(request)
        command = command_field(data)
        proc = await self.launcher.launch(procs.argv_for(command, bool_field(data, "shell")))
        return web.Response(text=f"{command} launched successfully (pid {proc.pid})")

    async def run_python(self, request: web.Request) -> web.Response:
        data = await fields(request)
        code = text_field(data, "code")
        timeout = seconds_field(data, "timeout", 30.0)
        result = await procs.run_script(sys.executable, code, ".py", timeout=timeout, cwd=None)
        ok = result["status"] == "success" and result["returncode"] == 0
        return web.json_response(
            {
                "status": "success" if ok else "error",
                "message": "executed" if ok else (result.get("message") or f"exit code {result['returncode']}"),
                "output": result["output"],
                "error": result["error"],
                "return_code": result["returncode"],
            }
        )

    async def run_bash_script(self, request: web.Request) -> web.Response:
        data = await fields(request)
        script = text_field(data, "script")
        timeout = seconds_field(data, "timeout", 100.0)
        cwd = text_field(data, "working_dir", required=False)
        if cwd is not None:
            cwd = files.resolve(cwd)
            if not await user.as_user(os.path.isdir, cwd):
                raise BadRequest(f"working_dir {cwd!r} is not a directory")
        result = await procs.run_script("/bin/bash", script, ".sh", timeout=timeout, cwd=cwd)
        if result["status"] == "success" and result["returncode"] != 0:
            result["status"] = "error"
        return web.json_response(result)

    # -- windows --

    async def open_file(self, request: web.Request) -> web.Response:
        data = await fields(request)
        path = text_field(data, "path")
        timeout = seconds_field(data, "timeout", 60.0, maximum=1800.0)
        try:
            name = await windows.open_file(path, timeout=timeout, screen=self.screen, launcher=self.launcher)
        except windows.WindowTimeout as e:
            return error(504, str(e))
        return web.Response(text=f"File opened: window for {name} is up")

    async def activate_window(self, request: web.Request) -> web.Response:
        return await self._wmctrl(request, "a", "activated")

    async def close_window(self, request: web.Request) -> web.Response:
        return await self._wmctrl(request, "c", "closed")

    async def _wmctrl(self, request: web.Request, action: str, done: str) -> web.Response:
        data = await fields(request)
        name = text_field(data, "window_name")
        await windows.wmctrl(action, name, strict=bool_field(data, "strict"), by_class=bool_field(data, "by_class"))
        return web.Response(text=f"Window {name} {done} successfully")


def listen_address(value: str) -> tuple[str, Any]:
    """('unix', path) or ('tcp', (host, port)) from GUEST_LISTEN."""
    kind, _, rest = value.partition(":")
    if kind == "unix" and rest.startswith("/"):
        return "unix", rest
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        if host and port.isdigit():
            return "tcp", (host.strip("[]"), int(port))
    raise SystemExit(f"guest: GUEST_LISTEN={value!r}: expected unix:/absolute/path or tcp:HOST:PORT")


def make_app(token: str | None) -> web.Application:
    guest = Guest()
    tunnel = Tunnel()
    app = web.Application(middlewares=[error_middleware, auth_middleware(token)], client_max_size=MAX_BODY)
    app.add_routes(guest.routes())
    app.add_routes(tunnel.routes())

    async def on_shutdown(_app: web.Application) -> None:
        await tunnel.close()  # open tunneled WebSockets would otherwise hold shutdown for a minute

    app.on_shutdown.append(on_shutdown)

    async def on_cleanup(_app: web.Application) -> None:
        await guest.launcher.close()

    app.on_cleanup.append(on_cleanup)
    return app


def _token_from_env() -> str | None:
    token = os.environ.pop("GUEST_TOKEN", "") or None
    open_mode = os.environ.pop("GUEST_OPEN", "") == "1"
    if token is None and not open_mode:
        raise SystemExit("guest: set GUEST_TOKEN (bearer token for every request) or GUEST_OPEN=1 (no auth)")
    return None if open_mode and token is None else token


async def serve(listen: str, token: str | None) -> None:
    app = make_app(token)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    kind, where = listen_address(listen)
    if kind == "unix":
        os.makedirs(os.path.dirname(where), exist_ok=True)
        site: web.BaseSite = web.UnixSite(runner, where)
    else:
        site = web.TCPSite(runner, where[0], where[1])
    await site.start()
    if kind == "unix":
        # The host side connects as root or as this uid; the token is the access control.
        os.chmod(where, 0o666)
    log.info("guest server listening on %s (auth %s)", listen, "bearer token" if token else "OPEN")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        if kind == "unix":
            try:
                os.unlink(where)
            except OSError:
                pass


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="guest %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    token = _token_from_env()
    listen = os.environ.get("GUEST_LISTEN") or DEFAULT_LISTEN
    user.configure(os.environ.pop("GUEST_RUN_AS", "") or None)
    # Programs the agent runs must not inherit the server's own module path.
    os.environ.pop("PYTHONPATH", None)
    asyncio.run(serve(listen, token))
