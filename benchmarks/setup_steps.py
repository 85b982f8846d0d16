"""OSWorld setup steps over the guest protocol, in order.

Semantics follow OSWorld's SetupController: `download` fetches on the host (cached) and uploads;
`execute`/`command` substitute placeholders and, with `until`, re-run until the condition holds;
a command's non-zero exit is logged, not fatal (as upstream); so is a window step whose window is
gone after the agent acted (postconfig `activate_window`/`close_window`, and `close_window`
anywhere: upstream logs the guest's 404 and goes on; the note lands in the evaluation's `notes`).
Differences on purpose: every wait
has a deadline (upstream polls `until` forever), host paths cannot leave the suite's assets
folder, and a failing step says which step it was.

Errors: SandboxError = infrastructure (the guest or the network failed; retry on a fresh
sandbox), TaskError = the step itself is wrong (bad path, unknown type, missing asset).
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio

from benchmarks.context import RunContext, TaskContext
from benchmarks.proxy import proxy_for, with_proxy
from benchmarks.schema import (
    DownloadParams,
    ExecuteParams,
    LaunchParams,
    OpenParams,
    SetupStep,
    SleepParams,
    Task,
    UploadFileParams,
    WindowParams,
)
from harness.base.errors import HarnessError, SandboxError, TaskError
from vm.types import ExecResult, Guest, WindowNotFound

log = logging.getLogger("benchmarks.setup")

StepHandler = Callable[[Any, Guest, TaskContext], Awaitable[None]]
STEP_HANDLERS: dict[str, StepHandler] = {}

# Setup types OSWorld defines that this build cannot run, with the reason shown by `tasks check`.
KNOWN_UNSUPPORTED = {
    "googledrive": "needs Google Drive credentials",
    "login": "needs website credentials and Chrome DevTools",
    "change_wallpaper": "no wallpaper endpoint in the guest protocol",
    "execute_with_verification": "no verification endpoint in the guest protocol",
    "tidy_desktop": "not implemented upstream either",
    "act": "replays agent actions",
    "replay": "replays a trajectory",
    "proxy": "needs a proxy pool",
}

UNTIL_POLL_S = 0.5


def step(name: str) -> Callable[[StepHandler], StepHandler]:
    def register(fn: StepHandler) -> StepHandler:
        STEP_HANDLERS[name] = fn
        return fn

    return register


def supported_setup_types() -> list[str]:
    return sorted(STEP_HANDLERS)


# --- placeholders ----------------------------------------------------------------------------------


def substitute(command: str | list[str], *, password: str, screen: tuple[int, int]) -> str | list[str]:
    """OSWorld's host-side placeholders; _HALF before the full names, as upstream."""
    width, height = screen
    table = [
        ("{CLIENT_PASSWORD}", password),
        ("{SCREEN_WIDTH_HALF}", str(width // 2)),
        ("{SCREEN_HEIGHT_HALF}", str(height // 2)),
        ("{SCREEN_WIDTH}", str(width)),
        ("{SCREEN_HEIGHT}", str(height)),
    ]

    def one(text: str) -> str:
        for key, value in table:
            text = text.replace(key, value)
        return text

    return one(command) if isinstance(command, str) else [one(c) for c in command]


def _needs_screen(command: str | list[str]) -> bool:
    text = command if isinstance(command, str) else " ".join(command)
    return "{SCREEN_" in text


# --- steps -----------------------------------------------------------------------------------------


async def _push(guest: Guest, local: Path, path: str) -> None:
    """A host file into the guest: streamed when the guest can (a download may be a gigabyte)."""
    upload_from = getattr(guest, "upload_from", None)
    if upload_from is not None:
        await upload_from(path, local)
    else:
        await guest.upload(path, await anyio.Path(local).read_bytes())


@step("download")
async def _download(p: DownloadParams, guest: Guest, ctx: TaskContext) -> None:
    for f in p.files:
        await _push(guest, await ctx.fetch(f.url), ctx.guest_path(f.path))  # size capped by HostFiles.max_bytes


@step("upload_file")
async def _upload_file(p: UploadFileParams, guest: Guest, ctx: TaskContext) -> None:
    for f in p.files:
        local = await ctx.fetch(f.local_path)  # confined to the suite's assets folder
        await _push(guest, local, ctx.guest_path(f.path))


@step("open")
async def _open(p: OpenParams, guest: Guest, ctx: TaskContext) -> None:
    await guest.open_file(ctx.guest_path(p.path), timeout=p.timeout)


@step("launch")
async def _launch(p: LaunchParams, guest: Guest, ctx: TaskContext) -> None:
    command = p.command
    if not command:
        raise TaskError("command: empty")
    if not p.shell and isinstance(command, str):
        try:
            command = shlex.split(command)  # upstream splits on spaces; shlex also honours quotes
        except ValueError as e:
            raise TaskError(f"command: {e}") from e
    if proxy := proxy_for(ctx.task, ctx.run.proxy):
        command = with_proxy(command, shell=p.shell, proxy=proxy)
    await guest.launch(command, shell=p.shell)


def until_met(until: Any, result: ExecResult) -> bool:
    """OSWorld: any one of returncode / stdout substring / stderr substring."""
    return (
        (until.returncode is not None and result.returncode == until.returncode)
        or (until.stdout is not None and until.stdout in result.output)
        or (until.stderr is not None and until.stderr in result.error)
    )


@step("execute")
@step("command")
async def _execute(p: ExecuteParams, guest: Guest, ctx: TaskContext) -> None:
    if not p.command:
        raise TaskError("command: empty")
    screen = await ctx.screen(guest) if _needs_screen(p.command) else (0, 0)
    command = substitute(p.command, password=ctx.run.client_password, screen=screen)
    if proxy := proxy_for(ctx.task, ctx.run.proxy):
        command = with_proxy(command, shell=p.shell, proxy=proxy)
    until = p.until if p.until is not None and p.until.model_fields_set & {"returncode", "stdout", "stderr"} else None
    with anyio.move_on_after(p.until_timeout) as scope:
        while True:
            result = await guest.execute(command, shell=p.shell, timeout=p.timeout)
            for name, text in ((p.stdout, result.output), (p.stderr, result.error)):
                if name:
                    target = anyio.Path(ctx.work_path(name))
                    await target.parent.mkdir(parents=True, exist_ok=True)  # folders are made on use
                    await target.write_text(text)
            if until is None:
                if not result.ok:
                    # Upstream logs and carries on; so do we (tasks rely on it, e.g. mkdir of an existing dir).
                    log.info("setup command exited %d: %s", result.returncode, (result.error or result.output)[-300:])
                return
            if until_met(until, result):
                return
            await anyio.sleep(UNTIL_POLL_S)
    if scope.cancelled_caught:
        raise SandboxError(f"`until` condition {until.model_dump(exclude_none=True)} not met within {p.until_timeout:g} s")


# How long a window step waits for its window. In setup, a window launched by the step before may
# still be on its way, and some apps take long to draw their first window (VS Code: code-server
# starts, then a browser app window; 20-60 s on a loaded 2-core host). After the agent acted, a
# missing window usually means the agent closed it: waiting long there only delays the score.
WINDOW_WAIT_S = {"config": 90.0, "postconfig": 10.0}


class WindowMissing(TaskError):
    """A window step found no window (in setup: the task's fault; in postconfig: a note)."""


@step("activate_window")
async def _activate(p: WindowParams, guest: Guest, ctx: TaskContext) -> None:
    # OSWorld's VMs are slow enough that a window started just before is up by now; ours may not
    # be (Ctrl+Alt+T then activate "Terminal" 0.5 s later), so wait for it before giving up.
    # Each attempt keeps the guest request's own deadline: a guest that does not answer stays
    # infrastructure (SandboxError), whatever this wait has left.
    wait_s = WINDOW_WAIT_S.get(ctx.phase, WINDOW_WAIT_S["postconfig"])
    deadline = anyio.current_time() + wait_s
    while True:
        try:
            await guest.activate_window(p.window_name, strict=p.strict, by_class=p.by_class)
            return
        except WindowNotFound as e:  # any other SandboxError: the guest itself failed (infrastructure)
            if anyio.current_time() >= deadline:
                # Not infrastructure: a fresh sandbox would fail the same way.
                raise WindowMissing(f"activate_window {p.window_name!r}: no such window within "
                                    f"{wait_s:g} s ({e})") from e
        await anyio.sleep(0.25)


@step("close_window")
async def _close(p: WindowParams, guest: Guest, ctx: TaskContext) -> None:
    try:
        await guest.close_window(p.window_name, strict=p.strict, by_class=p.by_class)
    except WindowNotFound as e:  # nothing to close: upstream logs the 404 and goes on
        raise WindowMissing(f"close_window {p.window_name!r}: no such window ({e})") from e


@step("sleep")
async def _sleep(p: SleepParams, guest: Guest, ctx: TaskContext) -> None:
    await anyio.sleep(p.seconds)


# --- running ---------------------------------------------------------------------------------------


def _as_step(raw: SetupStep | Mapping[str, Any]) -> SetupStep:
    return raw if isinstance(raw, SetupStep) else SetupStep.model_validate(dict(raw))


async def run_setup(steps: Sequence[SetupStep | Mapping[str, Any]], guest: Guest, ctx: TaskContext, *,
                    phase: str = "config") -> None:
    """Run steps in order. A failure raises SandboxError or TaskError naming the step index and type.

    The task's folder is made by the first step that writes into it (most tasks never do: two
    directory creations per task saved, which cost ~0.1-1 ms of CPU each on a slow disk)."""
    ctx.phase = phase
    for index, raw in enumerate(steps):
        kind = raw.type if isinstance(raw, SetupStep) else str(dict(raw).get("type"))
        where = f"{phase} step {index} ({kind})"
        try:
            s = _as_step(raw)
            handler = STEP_HANDLERS.get(s.type)
            if handler is None:
                reason = KNOWN_UNSUPPORTED.get(s.type, "unknown setup type")
                raise TaskError(f"setup type {s.type!r} is not supported: {reason}")
            with anyio.fail_after(ctx.run.step_timeout):
                await handler(s.params(), guest, ctx)
        except WindowMissing as e:
            if phase == "config" and kind != "close_window":
                raise TaskError(f"{where}: {e}") from e
            # The agent may have closed the window (it saved and quit): OSWorld logs and scores the
            # state as it is, so do we, with a note on the result.
            log.info("%s: %s (going on, as OSWorld does)", where, e)
            ctx.notes.append(f"{where}: {e}; went on, as OSWorld does")
        except TaskError as e:
            raise TaskError(f"{where}: {e}") from e
        except SandboxError as e:
            raise SandboxError(f"{where}: {e}") from e
        except TimeoutError as e:
            raise SandboxError(f"{where}: no result within {ctx.run.step_timeout:g} s") from e
        except HarnessError:
            raise
        except OSError as e:  # host or guest I/O
            raise SandboxError(f"{where}: {type(e).__name__}: {e}") from e
        except Exception as e:  # anything else fails this task, never the run
            raise TaskError(f"{where}: {type(e).__name__}: {e}") from e


async def run_task_setup(task: Task, guest: Guest, ctx: RunContext | TaskContext) -> TaskContext:
    """The engine's hook: a fresh per-setup folder, then the task's `config` steps."""
    tctx = ctx.for_setup(task, guest) if isinstance(ctx, RunContext) else ctx
    await run_setup(task.config, guest, tctx, phase="config")
    return tctx


# Steps for one application live in their own modules; importing them here registers them
# wherever STEP_HANDLERS is used. Last, so they can import `step` from this module.
from benchmarks import steps_chrome  # noqa: E402, F401
