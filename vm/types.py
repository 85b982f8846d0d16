"""The sandbox seam: what every provider (docker, sim) hands to the rest of the harness."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from harness.base.errors import SandboxError, TaskError

MAX_FILE_BYTES = 1 << 30  # a file fetched from a sandbox (vm_file & co.), streamed to disk
MAX_MESSAGE_BYTES = 128 << 20  # one response or WebSocket message held in memory (tunnel, API)


class TooLarge(TaskError):
    """A sandbox sent more than the host takes (a file, a response, a message): the task's fault
    (what its agent or setup made), never a reason to hold it all in memory."""


class WindowNotFound(SandboxError):
    """The guest answered that no window matches (HTTP 404 from activate/close_window).

    A SandboxError so callers that do not care keep treating it as before; a setup step that waits
    for a window catches this type instead of reading the guest's message text."""

@dataclass(frozen=True, slots=True)
class Observation:
    """One look at the desktop: PNG bytes, OSWorld-format accessibility XML (or None), screen size."""

    screenshot: bytes
    accessibility_tree: str | None
    screen_size: tuple[int, int]


@dataclass(frozen=True, slots=True)
class ExecResult:
    """Outcome of a command or an action run inside the sandbox (OSWorld's /execute keys)."""

    returncode: int
    output: str = ""
    error: str = ""
    status: str = "success"

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.status == "success"


@dataclass(frozen=True, slots=True)
class SandboxInfo:
    """Identity and addressing of one sandbox; providers fill what applies."""

    id: str
    provider: str
    run_id: str
    socket_path: str | None = None
    base_url: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Sandbox(Protocol):
    """A running desktop the harness can look at and act in."""

    info: SandboxInfo
    guest: Guest

    async def observe(self, *, accessibility: bool = True) -> Observation: ...

    async def execute(self, action: Any) -> ExecResult:
        """Run one agent action: a pyautogui code string or a computer_13 dict.

        WAIT/FAIL/DONE are special actions: they never reach the guest.
        """
        ...

    async def run(self, command: str | list[str], *, shell: bool = False, timeout: float = 120.0) -> ExecResult: ...

    async def upload(self, path: str, data: bytes) -> None: ...

    async def download(self, path: str) -> bytes | None:
        """File bytes, or None when the file does not exist."""
        ...

    async def alive(self) -> bool: ...

    async def close(self) -> None: ...


class GuestBacked:
    """The Sandbox methods that are plain calls to the sandbox's guest, shared by providers."""

    guest: Guest

    async def run(self, command: str | list[str], *, shell: bool = False, timeout: float = 120.0) -> ExecResult:
        return await self.guest.execute(command, shell=shell, timeout=timeout)

    async def upload(self, path: str, data: bytes) -> None:
        await self.guest.upload(path, data)

    async def download(self, path: str) -> bytes | None:
        return await self.guest.download(path)

    async def tunnel_request(self, port: int, method: str, path: str, body: bytes | None = None,
                             headers: Mapping[str, str] | None = None, timeout: float = 30.0) -> tuple[int, bytes]:
        return await _tunnel_of(self.guest).tunnel_request(port, method, path, body, headers, timeout)

    def tunnel_websocket(self, port: int, path: str, *, timeout: float = 30.0) -> AbstractAsyncContextManager[Any]:
        return _tunnel_of(self.guest).tunnel_websocket(port, path, timeout=timeout)


def _tunnel_of(guest: Any) -> Tunnel:
    if not hasattr(guest, "tunnel_request") or not hasattr(guest, "tunnel_websocket"):
        raise SandboxError(f"{type(guest).__name__} cannot reach services inside the sandbox (no tunnel)")
    return guest


@runtime_checkable
class Provider(Protocol):
    """Starts and stops sandboxes of one kind (made by name: vm/providers.py).

    `max_starting`: starts the pool may have in flight, or None for one per host core (starts
    that cost host CPU, like containers'). `gc` removes leftovers of `run_id` (None: of any run);
    `stale_only` spares those whose owner process is alive (a concurrent run's). `aclose` stops
    every sandbox this provider started and frees its clients; it runs on every path.
    """

    name: str

    @property
    def max_starting(self) -> int | None: ...

    async def start(self) -> Sandbox: ...

    async def stop(self, sandbox: Sandbox) -> None: ...

    async def gc(self, *, run_id: str | None = None, stale_only: bool = False) -> int: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Tunnel(Protocol):
    """HTTP and WebSockets to services on the sandbox's own loopback (DevTools, VLC's HTTP API).

    `tunnel_request` returns the service's (status, body); 502 = nothing listens on the port,
    504 = no answer in time. `tunnel_websocket` is an async context manager yielding an aiohttp
    ClientWebSocketResponse. Implemented by vm/client.py over the guest's socket.
    """

    async def tunnel_request(self, port: int, method: str, path: str, body: bytes | None = None,
                             headers: Mapping[str, str] | None = None, timeout: float = 30.0) -> tuple[int, bytes]: ...

    def tunnel_websocket(self, port: int, path: str, *, timeout: float = 30.0) -> AbstractAsyncContextManager[Any]: ...


@runtime_checkable
class Guest(Tunnel, Protocol):
    """OSWorld's in-VM HTTP API as typed async calls (see vm/client.py for the real one).

    Setup steps and evaluator getters use this; agents use `Sandbox.observe/execute`.
    """

    async def health(self) -> bool: ...
    async def screenshot(self) -> bytes: ...
    async def accessibility(self) -> str | None: ...
    async def execute(self, command: str | list[str], *, shell: bool = False, timeout: float = 120.0) -> ExecResult: ...
    async def launch(self, command: str | list[str], *, shell: bool = False) -> None: ...
    async def upload(self, path: str, data: bytes) -> None: ...
    async def download(self, path: str) -> bytes | None: ...
    async def screen_size(self) -> tuple[int, int]: ...
    async def window_size(self, app_class_name: str) -> tuple[int, int] | None: ...
    async def cursor_position(self) -> tuple[int, int]: ...
    async def platform(self) -> str: ...
    async def list_directory(self, path: str) -> dict[str, Any] | None: ...
    async def desktop_path(self) -> str: ...
    async def open_file(self, path: str, *, timeout: float = 60.0) -> None: ...
    async def activate_window(self, window_name: str, *, strict: bool = False, by_class: bool = False) -> None: ...
    async def close_window(self, window_name: str, *, strict: bool = False, by_class: bool = False) -> None: ...
    async def terminal(self) -> str | None: ...
    async def run_python(self, code: str, *, timeout: float = 30.0) -> dict[str, Any]: ...
    async def run_bash_script(self, script: str, *, timeout: float = 100.0, working_dir: str | None = None) -> ExecResult: ...


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A sandbox's processes and files at one moment, from which `fork` makes new sandboxes.

    `size_bytes` counts what the snapshot holds on disk (process images + changed files)."""

    id: str
    provider: str
    source: str  # the name of the sandbox it was taken from
    size_bytes: int
    seconds: float  # time the snapshot took
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Forking(Protocol):
    """A provider that can snapshot a live sandbox and start copies of it (docs/design/fork.md).

    `fork_unavailable()` says why forks cannot work here (None when they can); callers check it
    once and replay instead. A fork is independent of its snapshot's source and of other forks;
    `drop` frees a snapshot (forks made from it live on)."""

    async def fork_unavailable(self) -> str | None: ...

    async def snapshot(self, sandbox: Sandbox) -> Snapshot: ...

    async def fork(self, snapshot: Snapshot) -> Sandbox: ...

    async def drop(self, snapshot: Snapshot) -> None: ...


async def fork_unavailable(provider: Any) -> str | None:
    """Why `provider` cannot fork sandboxes, or None when it can."""
    if not isinstance(provider, Forking):
        return f"the {getattr(provider, 'name', type(provider).__name__)} provider has no snapshots"
    return await provider.fork_unavailable()
