"""In-process simulated sandboxes (`--provider sim`) for engine tests and throughput benchmarks.

They honor the same Sandbox/Guest Protocols as Docker sandboxes, with configurable latencies, so
the engine, agents and LLM layer run exactly as in production. A sandbox plays a *scenario*, a
small state machine chosen by the task's setup step `execute ["sim", "scenario", NAME]`:

  chain-K[-trap][-sSEED]   K correct actions lead from state 0 to "goal". With `-trap`, state 0
                           also offers a tempting action that leads to a dead end ("trap") from
                           which nothing progresses: only backtracking solves it.

The current state is readable as the file /sim/state (so `vm_command_line: cat /sim/state` with
`exact_match` is a real evaluator over it); actions are pyautogui code strings. Every window
exists for `activate_window`/`close_window` until `execute ["sim", "close-window", NAME]` (or
`close_window`) closes it; then the guest answers as a real one does (WindowNotFound).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import anyio

from harness.base.errors import SandboxError
from vm.types import ExecResult, GuestBacked, Observation, SandboxInfo, Snapshot, WindowNotFound

_SPECIAL = {"WAIT", "DONE", "FAIL"}


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: int
    trap: bool
    seed: int

    @staticmethod
    def parse(name: str) -> Scenario:
        m = re.fullmatch(r"chain-(\d+)(-trap)?(?:-s(\d+))?", name)
        if not m or not 1 <= int(m.group(1)) <= 100:
            raise SandboxError(f"sim: unknown scenario {name!r}; expected chain-K[-trap][-sSEED] with 1 <= K <= 100")
        return Scenario(name, int(m.group(1)), bool(m.group(2)), int(m.group(3) or 0))

    def correct_action(self, state: int) -> str:
        x, y = self._point(state, "ok")
        return f"pyautogui.click({x}, {y})"

    def trap_action(self) -> str:
        x, y = self._point(0, "trap")
        return f"pyautogui.click({x}, {y})"

    def _point(self, state: int, kind: str) -> tuple[int, int]:
        h = hashlib.sha256(f"{self.seed}:{state}:{kind}".encode()).digest()
        return 100 + h[0] * 6, 100 + h[1] * 3

    def solution(self) -> list[str]:
        return [self.correct_action(i) for i in range(self.steps)] + ["DONE"]

    def next_state(self, state: str, action: str) -> str:
        if state in ("goal", "trap"):
            return state
        i = int(state)
        if canonical(action) == canonical(self.correct_action(i)):
            return "goal" if i + 1 == self.steps else str(i + 1)
        if self.trap and i == 0 and canonical(action) == canonical(self.trap_action()):
            return "trap"
        return state


def canonical(code: str) -> str:
    return re.sub(r"\s+", "", code.strip())


_SHOTS: dict[tuple[int, int, str], bytes] = {}
_SHOT_LOCKS: dict[tuple[int, int, str], anyio.Lock] = {}


async def _screenshot_for(width: int, height: int, label: str) -> bytes:
    """The PNG for (size, label), rendered once in a worker thread (~20 ms of encode at 1080p).

    Labels name the state, not the scenario, so a run of thousands of tasks renders a handful of
    images: the screenshot stands in for bytes a guest would send, which cost the harness no CPU.
    """
    key = (width, height, label)
    shot = _SHOTS.get(key)
    if shot is None:
        # One render per key: hundreds of sandboxes observing the same state at start wait for it.
        async with _SHOT_LOCKS.setdefault(key, anyio.Lock()):
            shot = _SHOTS.get(key)
            if shot is None:
                shot = await anyio.to_thread.run_sync(_screenshot, width, height, label)
                if len(_SHOTS) < 1024:
                    _SHOTS[key] = shot
    return shot


@lru_cache(maxsize=256)
def _screenshot(width: int, height: int, label: str) -> bytes:
    """A synthetic PNG per (size, label). Blocking: see `_screenshot_for`."""
    from PIL import Image, ImageDraw

    shade = int(hashlib.sha256(label.encode()).hexdigest()[:2], 16)
    img = Image.new("RGB", (width, height), (40, 60 + shade // 2, 90))
    ImageDraw.Draw(img).text((40, 40), label, fill=(255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _a11y(scenario: Scenario | None, state: str, width: int, height: int) -> str:
    title = f"{scenario.name} state {state}" if scenario else "idle desktop"
    return (
        '<desktop-frame xmlns:st="https://accessibility.ubuntu.example.org/ns/state" '
        'xmlns:cp="https://accessibility.ubuntu.example.org/ns/component">'
        f'<frame name="sim" st:showing="true" st:visible="true" cp:screencoord="(0, 0)" cp:size="({width}, {height})">'
        f'<label name="{title}" st:showing="true" st:visible="true" st:enabled="true" '
        'cp:screencoord="(40, 40)" cp:size="(400, 20)">' + title + "</label></frame></desktop-frame>"
    )


@dataclass
class SimLatency:
    """Seconds spent per operation (0 = as fast as the loop allows)."""

    start: float = 0.0
    observe: float = 0.0
    execute: float = 0.0
    snapshot: float = 0.0
    fork: float = 0.0


@dataclass
class SimCounters:
    """Process-wide tallies of simulated operations. `bench engine` reads them to compute the bound
    its utilization is measured against (simulated latency seconds per task)."""

    starts: int = 0
    observes: int = 0
    executes: int = 0
    loaded: int = 0  # sandboxes that got a scenario (served a task; warm leftovers did not)
    latency_s: float = 0.0  # simulated latency slept, summed over all sandboxes
    task_latency_s: float = 0.0  # the part tasks waited for: their sandboxes' starts, observes, executes

    def reset(self) -> None:
        self.starts = self.observes = self.executes = self.loaded = 0
        self.latency_s = self.task_latency_s = 0.0


COUNTERS = SimCounters()


async def _delay(seconds: float, *, task: bool = True) -> None:
    if seconds:
        COUNTERS.latency_s += seconds
        if task:
            COUNTERS.task_latency_s += seconds
        await anyio.sleep(seconds)


class SimGuest:
    """The Guest Protocol over an in-memory filesystem and the scenario's state."""

    def __init__(self, box: SimSandbox) -> None:
        self._box = box

    async def health(self) -> bool:
        return not self._box.closed

    async def screenshot(self) -> bytes:
        return (await self._box.observe(accessibility=False)).screenshot

    async def accessibility(self) -> str | None:
        return (await self._box.observe()).accessibility_tree

    async def execute(self, command: str | list[str], *, shell: bool = False, timeout: float = 120.0) -> ExecResult:
        self._box.check()
        argv = command.split() if isinstance(command, str) else list(command)
        if argv[:2] == ["sim", "scenario"] and len(argv) == 3:
            self._box.load(Scenario.parse(argv[2]))
            return ExecResult(0)
        if argv[:2] == ["sim", "close-window"] and len(argv) == 3:
            self._box.closed_windows.add(argv[2])
            return ExecResult(0)
        if argv and argv[0] == "cat" and len(argv) == 2:
            data = self._box.files.get(argv[1])
            if data is None:
                return ExecResult(1, error=f"cat: {argv[1]}: No such file or directory")
            return ExecResult(0, output=data.decode())
        if argv and argv[0] in ("true", "echo"):
            return ExecResult(0, output=" ".join(argv[1:]) + "\n" if argv[0] == "echo" else "")
        return ExecResult(127, error=f"sim: command not available: {argv[:1]}", status="error")

    async def launch(self, command: str | list[str], *, shell: bool = False) -> None:
        self._box.check()

    async def upload(self, path: str, data: bytes) -> None:
        self._box.check()
        self._box.files[path] = data

    async def download(self, path: str) -> bytes | None:
        self._box.check()
        return self._box.files.get(path)

    async def screen_size(self) -> tuple[int, int]:
        return self._box.size

    async def window_size(self, app_class_name: str) -> tuple[int, int] | None:
        return None

    async def cursor_position(self) -> tuple[int, int]:
        return (0, 0)

    async def platform(self) -> str:
        return "Linux"

    async def list_directory(self, path: str) -> dict[str, Any] | None:
        prefix = path.rstrip("/") + "/"
        children = [{"type": "file", "name": p[len(prefix):]} for p in self._box.files if p.startswith(prefix)]
        return {"type": "directory", "name": path, "children": children} if children else None

    async def desktop_path(self) -> str:
        return "/home/user/Desktop"

    async def open_file(self, path: str, *, timeout: float = 60.0) -> None:
        self._box.check()

    async def activate_window(self, window_name: str, *, strict: bool = False, by_class: bool = False) -> None:
        self._box.check()
        self._window(window_name, "activate_window")

    async def close_window(self, window_name: str, *, strict: bool = False, by_class: bool = False) -> None:
        self._box.check()
        self._window(window_name, "close_window")
        self._box.closed_windows.add(window_name)

    def _window(self, name: str, path: str) -> None:
        if name in self._box.closed_windows:
            raise WindowNotFound(f"sim: POST /setup/{path} -> HTTP 404: no window matches {name!r}")

    async def terminal(self) -> str | None:
        return None

    async def run_python(self, code: str, *, timeout: float = 30.0) -> dict[str, Any]:
        return {"status": "error", "message": "sim: python not available", "output": "", "error": "", "return_code": 1}

    async def run_bash_script(self, script: str, *, timeout: float = 100.0, working_dir: str | None = None) -> ExecResult:
        return await self.execute(script, shell=True, timeout=timeout)

    async def tunnel_request(self, port: int, method: str, path: str, body: bytes | None = None,
                             headers: Any = None, timeout: float = 30.0) -> tuple[int, bytes]:
        raise SandboxError(f"sim sandbox: no services run inside it (tunnel to port {port} requested)")

    def tunnel_websocket(self, port: int, path: str, *, timeout: float = 30.0) -> Any:
        raise SandboxError(f"sim sandbox: no services run inside it (WebSocket to port {port} requested)")


@dataclass(eq=False)  # identity semantics: pools keep sandboxes in sets
class SimSandbox(GuestBacked):
    info: SandboxInfo
    size: tuple[int, int]
    latency: SimLatency
    scenario: Scenario | None = None
    state: str = "0"
    files: dict[str, bytes] = field(default_factory=dict)
    closed: bool = False
    killed: bool = False
    closed_windows: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.guest = SimGuest(self)
        self.files["/sim/state"] = b"none"

    def check(self) -> None:
        if self.killed or self.closed:
            raise SandboxError(f"sim sandbox {self.info.id}: not running")

    def load(self, scenario: Scenario) -> None:
        if self.scenario is None:  # its start was on a task's path
            COUNTERS.loaded += 1
            COUNTERS.task_latency_s += self.latency.start
        self.scenario, self.state = scenario, "0"
        self.closed_windows.clear()
        self.files["/sim/state"] = b"0"

    def kill(self) -> None:
        """Simulate a sandbox dying from outside (tests of the engine's infrastructure retries)."""
        self.killed = True

    async def observe(self, *, accessibility: bool = True) -> Observation:
        self.check()
        COUNTERS.observes += 1
        await _delay(self.latency.observe)
        w, h = self.size
        label = f"state {self.state}" if self.scenario else "idle"
        shot = await _screenshot_for(w, h, label)
        return Observation(shot, _a11y(self.scenario, self.state, w, h) if accessibility else None, self.size)

    async def execute(self, action: Any) -> ExecResult:
        self.check()
        code = action if isinstance(action, str) else str(action)
        if code.strip().upper() in _SPECIAL:
            return ExecResult(0)
        COUNTERS.executes += 1
        await _delay(self.latency.execute)
        if self.scenario is not None:
            self.state = self.scenario.next_state(self.state, code)
            self.files["/sim/state"] = self.state.encode()
        return ExecResult(0)

    async def alive(self) -> bool:
        return not (self.killed or self.closed)

    async def close(self) -> None:
        self.closed = True


class SimProvider:
    name = "sim"
    # Simulated starts cost no host CPU: the pool need not hold them to a few at a time (Docker's do).
    max_starting = 1024

    def __init__(self, *, run_id: str = "sim", screen_size: tuple[int, int] = (1920, 1080),
                 latency: SimLatency | None = None, forks: bool = True) -> None:
        self.run_id = run_id
        self.forks = forks  # False: behaves like a provider without snapshots
        self._snapshots: dict[str, tuple[Scenario | None, str, dict[str, bytes]]] = {}
        self.screen_size = screen_size
        self.latency = latency or SimLatency()
        self._ids = itertools.count(1)
        self.live: dict[str, SimSandbox] = {}
        self.started = 0

    async def start(self) -> SimSandbox:
        COUNTERS.starts += 1
        await _delay(self.latency.start, task=False)  # counted for tasks when a scenario loads
        sid = f"sim-{next(self._ids)}"
        box = SimSandbox(SandboxInfo(id=sid, provider="sim", run_id=self.run_id), self.screen_size, self.latency)
        self.live[sid] = box
        self.started += 1
        return box

    async def stop(self, sandbox: Any) -> None:
        await sandbox.close()
        self.live.pop(sandbox.info.id, None)

    async def gc(self, *, run_id: str | None = None, stale_only: bool = False) -> int:
        return 0

    # -- vm.types.Forking: a snapshot is a copy of the scenario's state and the files ----------------
    async def fork_unavailable(self) -> str | None:
        return None if self.forks else "sim provider started with forks=False"

    async def snapshot(self, sandbox: Any) -> Snapshot:
        if not self.forks:
            raise SandboxError("sim: snapshots are off")
        sandbox.check()
        await _delay(self.latency.snapshot)
        sid = f"snap-{next(self._ids)}"
        self._snapshots[sid] = (sandbox.scenario, sandbox.state, dict(sandbox.files))
        size = sum(len(v) for v in sandbox.files.values())
        return Snapshot(id=sid, provider="sim", source=sandbox.info.id, size_bytes=size, seconds=self.latency.snapshot)

    async def fork(self, snapshot: Snapshot) -> SimSandbox:
        held = self._snapshots.get(snapshot.id)
        if held is None:
            raise SandboxError(f"sim: snapshot {snapshot.id} was dropped")
        box = await self.start()
        await _delay(max(0.0, self.latency.fork - self.latency.start))
        box.scenario, box.state, box.files = held[0], held[1], dict(held[2])
        return box

    async def drop(self, snapshot: Snapshot) -> None:
        self._snapshots.pop(snapshot.id, None)
