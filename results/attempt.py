"""One attempt at one task: writes into `<domain>/<task_id>/` in OSWorld's layout."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import orjson

from results.atomic import append_bytes, write_atomic
from results.layout import TRAJ, check_file_name
from results.redact import redact
from results.stepwriter import PendingStep, StepWriter

# traj.jsonl keys in OSWorld's order; anything else the caller passes follows them.
OSWORLD_STEP_KEYS = (
    "step_num",
    "action_timestamp",
    "action",
    "response",
    "reward",
    "done",
    "info",
    "screenshot_file",
)


def _jsonl(obj: Any) -> bytes:
    return orjson.dumps(redact(obj, by_name=False), default=str) + b"\n"


_MAX_BACKLOG = 512  # steps queued in one lane batch before writers wait (bounds the PNGs held in memory)


class Attempt:
    """Handle the engine gets from `RunStore.begin_attempt`; closed by the next attempt or the result."""

    def __init__(
        self, domain: str, task_id: str, directory: Path, number: int, limiter: anyio.CapacityLimiter,
        steps: StepWriter | None = None,
    ) -> None:
        self.domain = domain
        self.task_id = task_id
        self.dir = directory
        self.number = number
        self.steps = 0  # highest step number recorded so far
        self._limiter = limiter
        self._steps = steps or StepWriter(limiter)  # the run store shares one across attempts
        self._locks: dict[str, anyio.Lock] = {}
        self._pending: list[PendingStep] = []  # handed to the step writer, not yet seen written
        self._folder: PendingStep | None = None  # the queued creation of a fresh task folder
        self._closed = False

    def __repr__(self) -> str:
        return f"Attempt({self.domain}/{self.task_id} #{self.number}{' closed' if self._closed else ''})"

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise RuntimeError(
                f"attempt {self.number} of task {self.domain}/{self.task_id} is closed (a newer attempt "
                f"started or the result was recorded); refusing to {what}"
            )

    async def record_step(self, step: dict[str, Any], screenshot_png: bytes | None = None) -> int:
        """Write `step_<n>.png` (atomic) and then append the step's line to traj.jsonl.

        The step number is `step["step_num"]` if given, else the next one; it is taken before the
        first await, so concurrent calls never share a number. Returns the number.
        """
        self._check_open("record a step")
        n = step.get("step_num")
        if n is None:
            n = self.steps + 1
        elif not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"task {self.domain}/{self.task_id}: step_num must be a positive int, got {n!r}")
        self.steps = max(self.steps, n)
        now = time.time()
        shot = None
        if screenshot_png is not None:  # a caller may name it as OSWorld's runner does (step_<n>_<time>.png)
            shot = check_file_name(step["screenshot_file"]) if step.get("screenshot_file") else f"step_{n}.png"
        line: dict[str, Any] = {
            "step_num": n,
            "action_timestamp": step.get("action_timestamp") or dt.datetime.fromtimestamp(now).strftime("%Y%m%d@%H%M%S"),
            "action": step.get("action"),
            "response": step.get("response"),
            "reward": step.get("reward", 0),
            "done": step.get("done", False),
            "info": step.get("info", {}),
            "screenshot_file": shot,
        }
        line.update({k: v for k, v in step.items() if k not in OSWORLD_STEP_KEYS})
        line.setdefault("ts", now)
        line.setdefault("attempt", self.number)
        # PNG first, so a traj line never names a missing file; the step writer batches the steps
        # of all attempts into few worker-thread calls and keeps each file's lines in call order.
        await self.hand_over(self._steps.submit(self.dir / shot if shot else None, screenshot_png,
                                                 self.dir / TRAJ, _jsonl(line)))
        return n

    async def create_folder(self, pending: PendingStep) -> None:
        """Hand over the job that makes this attempt's (fresh) folder; direct writes wait for it."""
        self._folder = pending
        await self.hand_over(pending)

    async def folder_ready(self) -> None:
        """Until this attempt's folder exists (it is made write-behind, by the step writer), for
        callers that write into it by themselves (a logging.FileHandler, ...)."""
        await self._folder_ready()

    async def _folder_ready(self) -> None:
        if self._folder is not None:
            await self._folder.wait()  # raises if the folder could not be made
            self._folder = None

    async def hand_over(self, pending: PendingStep) -> None:
        """Queue a step write; wait for it only without a background writer or on a long backlog."""
        self._raise_write_errors()
        self._pending.append(pending)
        if not self._steps.driven or pending.backlog > _MAX_BACKLOG:
            await self.flush()
        else:
            # Yield once anyway: hundreds of agents woken together would otherwise run whole steps
            # back to back in one loop iteration and stall timers (loop lag).
            await anyio.lowlevel.checkpoint()

    def _raise_write_errors(self) -> None:
        done = [p for p in self._pending if p.done]
        if done:
            self._pending = [p for p in self._pending if not p.done]
            for p in done:
                if p.error is not None:
                    raise p.error

    async def flush(self) -> None:
        """Until every step handed over so far is on disk (page cache); raises a write error."""
        pending, self._pending = self._pending, []
        for p in pending:
            await p.lane.wait(p.batch)
        for p in pending:
            if p.error is not None:
                raise p.error

    async def write_file(self, name: str, data: bytes, *, durable: bool = True) -> Path:
        """Atomically write one file (tree.json, recording, ...) into the task folder.

        `durable=False` (screenshots): batched with the step writes, no fsync (see stepwriter.py).
        """
        self._check_open(f"write {name}")
        path = self.dir / check_file_name(name)
        if not durable:
            await self.hand_over(self._steps.submit(path, bytes(data)))
            return path
        await self._folder_ready()
        await anyio.to_thread.run_sync(write_atomic, path, bytes(data), limiter=self._limiter)
        return path

    async def append_jsonl(self, name: str, obj: Any) -> None:
        """Append one JSON line to a file in the task folder (serialised per file, fsynced)."""
        self._check_open(f"append to {name}")
        await self._append(check_file_name(name), _jsonl(obj))

    async def _append(self, name: str, line: bytes) -> None:
        # One lock per file: concurrent appends from this loop never interleave within a line.
        await self._folder_ready()
        lock = self._locks.setdefault(name, anyio.Lock())
        async with lock:
            await anyio.to_thread.run_sync(append_bytes, self.dir / name, line, limiter=self._limiter)
