"""`tasks check --probe`: run a ready task's setup in a fresh sandbox, then every command its
evaluator will run, and say what the image lacks. It never scores the task.

What demotes a task (a `probe: ...` reason): its setup fails (a step raises, e.g. activating a
window the image never opens), a setup or evaluator command is missing from the image (exit 127,
"command not found", gsettings' "No such schema", ModuleNotFoundError, a daemon the command needs
is absent), a program a `launch` step starts is not installed, or a system file an evaluator
reads (/etc/timezone) does not exist.

What does not: a command failing for a reason that depends on the agent's work (a script the
agent should write, a window it should open); postconfig window steps and sleeps are skipped;
`vm_command_error` output is the measured value, so only a missing program counts there.
"""

from __future__ import annotations

import logging
import re
import shlex
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from benchmarks.context import RunContext, TaskContext
from benchmarks.downloads import HostFiles
from benchmarks.schema import Task
from benchmarks.setup_steps import run_setup, substitute
from benchmarks.task_apps import command_words
from harness.base.errors import HarnessError, SandboxError
from vm.pool import SandboxPool, on_fresh_sandbox
from vm.types import ExecResult, Guest

log = logging.getLogger("scoring.probe")

# (pattern over the command's output+error, whether it counts when the output is the measured value)
_MISSING: list[tuple[re.Pattern[str], bool]] = [
    (re.compile(r"[^\n]*\bcommand not found[^\n]*"), True),
    (re.compile(r"[^\n]*: \d+: [^\n:]+: not found"), True),  # dash: `sh: 1: foo: not found`
    (re.compile(r"cannot run '[^']+': No such file or directory"), True),  # the guest, shell=False
    (re.compile(r"[^\n]*No such schema[^\n]*"), False),
    (re.compile(r"[^\n]*No such key[^\n]*"), False),
    (re.compile(r"ModuleNotFoundError: [^\n]*"), False),
    (re.compile(r"[^\n]*System has not been booted with systemd[^\n]*"), False),
    (re.compile(r"[^\n]*Failed to connect to bus[^\n]*"), False),
    (re.compile(r"Connection failure: [^\n]*"), False),  # pactl without a PulseAudio server
    (re.compile(r"[^\n]*(Mixer attach|cannot open mixer)[^\n]*"), False),  # amixer without ALSA/Pulse
]
_SYSTEM_DIRS = ("/etc/", "/usr/", "/var/lib/", "/opt/", "/lib/")
SETUP_STEP_TIMEOUT = 120.0


def missing_tool(result: ExecResult, *, output_is_value: bool = False) -> str | None:
    """What the image lacks according to a command's result, or None."""
    text = f"{result.error}\n{result.output}"
    for pattern, counts_for_values in _MISSING:
        if output_is_value and not counts_for_values:
            continue
        m = pattern.search(text)
        if m:
            return m.group(0).strip()[:200]
    if result.returncode == 127 and "No such file" not in text:
        return f"exit 127: {(result.error or result.output).strip()[-160:] or 'command not found'}"
    return None


@dataclass
class ProbeOutcome:
    ok: bool | None  # None: the sandbox failed, the task was not judged
    reasons: list[str] = field(default_factory=list)
    checked: int = 0  # commands run besides setup
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reasons": self.reasons, "checked": self.checked, "seconds": round(self.seconds, 2)}


class _RecordingGuest:
    """The guest, with every command result of the setup kept for inspection."""

    def __init__(self, guest: Guest) -> None:
        self._guest = guest
        self.results: list[tuple[Any, ExecResult]] = []

    async def execute(self, command: str | list[str], *, shell: bool = False, timeout: float = 120.0) -> ExecResult:
        result = await self._guest.execute(command, shell=shell, timeout=timeout)
        self.results.append((command, result))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._guest, name)


def _show(command: Any) -> str:
    text = command if isinstance(command, str) else " ".join(map(str, command))
    return " ".join(text.split())[:80]


async def _substituted(command: str | list[str], guest: Guest, ctx: TaskContext) -> str | list[str]:
    text = command if isinstance(command, str) else " ".join(command)
    screen = await ctx.screen(guest) if "{SCREEN_" in text else (0, 0)
    return substitute(command, password=ctx.run.client_password, screen=screen)


def _launched_programs(task: Task) -> list[str]:
    out: list[str] = []
    for step in [*task.config, *task.evaluator.postconfig]:
        command = step.parameters.get("command") if step.type == "launch" else None
        if isinstance(command, str | list) and command:
            words = command_words(command, shell=isinstance(command, str) or bool(step.parameters.get("shell")))
            if words:
                out.append(words[0][0])
    return list(dict.fromkeys(out))


def _system_files(task: Task) -> list[str]:
    out: list[str] = []
    for metric in task.evaluator.metric_specs():
        for spec in (metric.result, metric.expected):
            if spec is not None and spec.type == "vm_file":
                paths = spec.path if isinstance(spec.path, list) else [spec.path]
                out += [p for p in paths if isinstance(p, str) and p.startswith(_SYSTEM_DIRS)]
    return list(dict.fromkeys(out))


async def _absent(guest: Guest, names: Sequence[str], test: str, timeout: float) -> list[str]:
    """The subset of `names` for which the shell test fails in the guest (one command for all)."""
    if not names:
        return []
    script = f'for x in {" ".join(shlex.quote(n) for n in names)}; do {test} "$x" >/dev/null 2>&1 || echo "$x"; done'
    result = await guest.execute(script, shell=True, timeout=timeout)
    if result.status != "success":
        raise SandboxError(f"probe check failed in the guest: {result.error[:200]}")
    return [line for line in result.output.splitlines() if line]


async def probe_task(task: Task, guest: Guest, run: RunContext) -> ProbeOutcome:
    """Set `task` up on `guest`, then run its evaluator's commands; demote on what is missing."""
    started = time.monotonic()
    outcome = ProbeOutcome(ok=True)
    reasons = outcome.reasons
    recorder = _RecordingGuest(guest)
    ctx = run.for_setup(task, guest)
    try:
        await run_setup(task.config, recorder, ctx, phase="config")  # type: ignore[arg-type]
    except HarnessError as e:
        reasons.append(f"probe: setup failed: {e}"[:300])
    for command, result in recorder.results:
        gap = missing_tool(result)
        if gap:
            reasons.append(f"probe: setup command `{_show(command)}`: {gap}")
    timeout = run.command_timeout
    for program in await _absent(guest, _launched_programs(task), "command -v", timeout):
        reasons.append(f"probe: launch: {program} is not installed")
    for path in await _absent(guest, _system_files(task), "test -e", timeout):
        reasons.append(f"probe: evaluator reads {path}, which the image does not have")
    # The evaluator's own commands: postconfig commands, then vm_command_line/_error getters.
    commands: list[tuple[str | list[str], bool, bool]] = []
    for step in task.evaluator.postconfig:
        if step.type in ("execute", "command") and step.parameters.get("command"):
            commands.append((step.parameters["command"], bool(step.parameters.get("shell")), False))
    for metric in task.evaluator.metric_specs():
        for spec in (metric.result, metric.expected):
            if spec is not None and spec.type in ("vm_command_line", "vm_command_error") and spec.command:
                commands.append((spec.command, spec.shell, spec.type == "vm_command_error"))
    for command, shell, output_is_value in commands:
        result = await guest.execute(await _substituted(command, guest, ctx), shell=shell, timeout=timeout)
        outcome.checked += 1
        gap = missing_tool(result, output_is_value=output_is_value)
        if gap:
            reasons.append(f"probe: evaluator command `{_show(command)}`: {gap}")
    outcome.reasons = list(dict.fromkeys(reasons))
    outcome.ok = not outcome.reasons
    outcome.seconds = time.monotonic() - started
    return outcome


async def probe_tasks(tasks: Sequence[Task], pool: Any, run: RunContext, *, concurrency: int = 2,
                      task_timeout: float = 600.0, attempts: int = 2,
                      on_result: Callable[[Task, ProbeOutcome], None] | None = None) -> dict[str, ProbeOutcome]:
    """Probe each task in a fresh sandbox of `pool` (at most `concurrency` at once). A sandbox that
    fails (start, guest silent) is retried on a fresh one; after `attempts` the outcome is ok=None."""
    results: dict[str, ProbeOutcome] = {}
    slots = anyio.Semaphore(max(1, concurrency))

    async def one(task: Task) -> None:
        async with slots:
            started = time.monotonic()
            try:
                outcome = await on_fresh_sandbox(pool, lambda box: probe_task(task, box.guest, run),
                                                 timeout=task_timeout, attempts=attempts, what=f"probe of {task.id}")
            except SandboxError as e:
                outcome = ProbeOutcome(ok=None, reasons=[f"probe: sandbox failed: {e}"[:300]],
                                       seconds=time.monotonic() - started)
            await run.discard(task)
            results[task.id] = outcome
            if on_result is not None:
                on_result(task, outcome)

    async with anyio.create_task_group() as tg:
        for task in tasks:
            tg.start_soon(one, task)
    return results


def probe_context(work_root: Any, *, screen_size: tuple[int, int] | None = None) -> RunContext:
    """A RunContext for probing: shorter step deadlines than a run (a probe waits on no agent)."""
    # A probe never downloads: only offline-ready tasks are probed, and this makes sure of it.
    return RunContext(work_root=work_root, screen_size=screen_size, step_timeout=SETUP_STEP_TIMEOUT, command_timeout=60.0,
                      downloads=HostFiles(offline=True))


@asynccontextmanager
async def probe_pool(concurrency: int, *, purpose: str, desktop: str = "osworld",
                     warm_start: bool | None = None) -> AsyncIterator[SandboxPool]:
    """Fresh sandboxes of the built image (network "none": a probe never reaches the internet),
    at most `concurrency` alive; `purpose` names the run id's prefix (`vm gc` shows it)."""
    import secrets

    from vm import providers
    from vm.image.build import ensure_image

    settings = providers.SandboxSettings(image=await ensure_image(), desktop=desktop, warm_start=warm_start)
    provider = providers.make("docker", settings, f"{purpose}-{secrets.token_hex(3)}")
    try:
        async with SandboxPool(provider, capacity=concurrency, warm=0) as pool:
            yield pool
    finally:
        await provider.aclose()
