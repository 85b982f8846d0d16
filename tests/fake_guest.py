"""FakeGuest: an in-memory stand-in for the guest (vm.types.Guest) that setup steps, getters and
metrics run against without a sandbox; shared by the benchmarks and scoring tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.base.errors import SandboxError
from vm.types import ExecResult

Handler = Callable[[Any, bool], ExecResult]


class FakeGuest:
    def __init__(self, *, files: dict[str, bytes] | None = None, handler: Handler | None = None,
                 screen: tuple[int, int] = (1920, 1080)) -> None:
        self.files: dict[str, bytes] = dict(files or {})
        self.handler = handler or (lambda command, shell: ExecResult(returncode=0, output=""))
        self.screen = screen
        self.calls: list[tuple[str, Any]] = []
        self.a11y: str | None = None
        self.tree: dict[str, Any] | None = None
        self.windows: dict[str, tuple[int, int]] = {}

    async def health(self) -> bool:
        return True

    async def screenshot(self) -> bytes:
        return b"\x89PNG\r\n\x1a\n"

    async def accessibility(self) -> str | None:
        self.calls.append(("accessibility", None))
        return self.a11y

    async def execute(self, command: Any, *, shell: bool = False, timeout: float = 120.0) -> ExecResult:
        self.calls.append(("execute", command))
        return self.handler(command, shell)

    async def launch(self, command: Any, *, shell: bool = False) -> None:
        self.calls.append(("launch", command))

    async def upload(self, path: str, data: bytes) -> None:
        self.calls.append(("upload", path))
        self.files[path] = data

    async def download(self, path: str) -> bytes | None:
        self.calls.append(("download", path))
        return self.files.get(path)

    async def screen_size(self) -> tuple[int, int]:
        return self.screen

    async def window_size(self, app_class_name: str) -> tuple[int, int] | None:
        return self.windows.get(app_class_name)

    async def cursor_position(self) -> tuple[int, int]:
        return (0, 0)

    async def platform(self) -> str:
        return "Linux"

    async def list_directory(self, path: str) -> dict[str, Any] | None:
        self.calls.append(("list_directory", path))
        return self.tree

    async def desktop_path(self) -> str:
        return "/home/user/Desktop"

    async def open_file(self, path: str, *, timeout: float = 60.0) -> None:
        self.calls.append(("open", path))

    async def activate_window(self, window_name: str, *, strict: bool = False, by_class: bool = False) -> None:
        self.calls.append(("activate_window", window_name))

    async def close_window(self, window_name: str, *, strict: bool = False, by_class: bool = False) -> None:
        self.calls.append(("close_window", window_name))

    async def terminal(self) -> str | None:
        return None

    async def run_python(self, code: str, *, timeout: float = 30.0) -> dict[str, Any]:
        return {}

    async def run_bash_script(self, script: str, *, timeout: float = 100.0, working_dir: str | None = None) -> ExecResult:
        return ExecResult(returncode=0)

    async def tunnel_request(self, port: int, method: str, path: str, body: bytes | None = None,
                             headers: dict[str, str] | None = None, timeout: float = 30.0) -> tuple[int, bytes]:
        raise SandboxError("the fake guest has no tunnel")

    def tunnel_websocket(self, port: int, path: str, *, timeout: float = 30.0) -> Any:
        raise SandboxError("the fake guest has no tunnel")
