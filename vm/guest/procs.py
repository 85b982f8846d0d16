"""Commands in the desktop session: run-to-completion with a deadline, and fire-and-forget launches.

asyncio subprocesses keep the server responsive while commands run. Each command starts in its
own session (process group); on timeout or cancellation the whole group is killed, so a
`sleep 500 &`-style grandchild does not outlive its request. Children run as the desktop's user
when the server runs as root (see user.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import tempfile
from typing import Any

from . import user
from .protocol import BadRequest

log = logging.getLogger("guest.procs")

OUTPUT_CAP = 16 * 1024 * 1024  # bytes kept per stream; the rest is read and dropped
DRAIN_GRACE_S = 2.0  # after the process exits, how long to wait for pipes held by escaped children
HOME = os.path.expanduser("~")


def _expand(arg: str) -> str:
    return os.path.expanduser(arg) if arg.startswith("~") else arg


def argv_for(command: str | list[str], shell: bool) -> list[str]:
    """The argv to exec: OSWorld semantics (`~` expanded; a string without shell is split)."""
    if shell:
        script = command if isinstance(command, str) else " ".join(command)
        return ["/bin/sh", "-c", script]
    parts = shlex.split(command) if isinstance(command, str) else list(command)
    if not parts:
        raise BadRequest("field 'command' is empty")
    return [_expand(p) for p in parts]


async def _read_capped(stream: asyncio.StreamReader | None) -> bytes:
    if stream is None:
        return b""
    chunks: list[bytes] = []
    kept = 0
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return b"".join(chunks)
        if kept < OUTPUT_CAP:
            chunks.append(chunk[: OUTPUT_CAP - kept])
            kept += len(chunks[-1])


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def run(argv: list[str], *, timeout: float, cwd: str | None = None) -> dict[str, Any]:
    """Run to completion; OSWorld's /execute answer. Never raises for the command's own failures."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            cwd=cwd or HOME,
            **user.spawn_kwargs(),
        )
    except OSError as e:
        message = f"cannot run {argv[0]!r}: {e.strerror or e}"
        return {"status": "error", "output": "", "error": message, "returncode": -1, "message": message}

    out_task = asyncio.ensure_future(_read_capped(proc.stdout))
    err_task = asyncio.ensure_future(_read_capped(proc.stderr))
    timed_out = False
    try:
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            timed_out = True
            _kill_group(proc)
            await proc.wait()
        # Children that left the group may hold the pipes open; do not wait for them forever.
        await asyncio.wait({out_task, err_task}, timeout=DRAIN_GRACE_S)
    finally:
        if proc.returncode is None:  # cancelled: the client went away
            _kill_group(proc)
        for task in (out_task, err_task):
            if not task.done():
                task.cancel()
        for task in (out_task, err_task):
            with contextlib.suppress(BaseException):
                await task
        _close_transport(proc)

    stdout = _decode(out_task)
    stderr = _decode(err_task)
    if timed_out:
        message = f"command timed out after {timeout:g} s and was killed"
        return {
            "status": "error",
            "output": stdout,
            "error": (stderr + "\n" + message).lstrip("\n"),
            "returncode": -1,
            "message": message,
        }
    return {"status": "success", "output": stdout, "error": stderr, "returncode": proc.returncode}


def _decode(task: asyncio.Future) -> str:
    if task.cancelled() or task.exception() is not None:
        return ""
    return task.result().decode("utf-8", "replace")


def _close_transport(proc: asyncio.subprocess.Process) -> None:
    transport = getattr(proc, "_transport", None)
    if transport is not None:
        transport.close()


class Launcher:
    """Fire-and-forget programs (OSWorld's /setup/launch); reaps them and logs how they ended."""

    def __init__(self) -> None:
        self._watchers: set[asyncio.Task] = set()

    async def launch(self, argv: list[str]) -> asyncio.subprocess.Process:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
                cwd=HOME,
                **user.spawn_kwargs(),
            )
        except OSError as e:
            raise BadRequest(f"cannot launch {argv[0]!r}: {e.strerror or e}") from e
        task = asyncio.ensure_future(self._reap(proc, argv[0]))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        return proc

    @staticmethod
    async def _reap(proc: asyncio.subprocess.Process, name: str) -> None:
        code = await proc.wait()
        log.info("launched %s (pid %d) exited with %s", name, proc.pid, code)
        _close_transport(proc)

    async def close(self) -> None:
        for task in list(self._watchers):
            task.cancel()


async def run_script(interpreter: str, source: str, suffix: str, *, timeout: float, cwd: str | None) -> dict[str, Any]:
    """Write `source` to a temp file and run it with `interpreter` (for /run_python, /run_bash_script)."""
    # Written as the user (user.as_user): the interpreter runs as the user and must read it.
    path = await user.as_user(_write_temp, source, suffix)
    try:
        return await run([interpreter, path], timeout=timeout, cwd=cwd)
    finally:
        with contextlib.suppress(OSError):
            await user.as_user(os.unlink, path)


def _write_temp(source: str, suffix: str) -> str:
    fd, path = tempfile.mkstemp(prefix="guest-", suffix=suffix)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(source)
    return path
