"""Coalesced step writes: every attempt's `step_<n>.png` + traj line go through one writer.

A step write is small (a screenshot, one JSON line) and frequent (hundreds per second at scale);
the worker-thread hop and its wake-ups cost the event loop more than the write itself. Writes
that arrive while a batch is on disk are collected and written together by the next worker
call, in arrival order. A few lanes write in parallel (file creation is slow on some disks);
a task folder always uses the same lane, so each attempt's traj lines keep their order and each
PNG lands before the line naming it. Callers return only after their own step is written.

Durability: step files are written without fsync. They survive a crash of the harness process
(atomic rename for the PNG, one O_APPEND write per line), not a power loss; the task's
`result.json` and the journal's durable events are fsynced (docs/design/run-directory.md and
performance.md say why).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread

from results.atomic import append_bytes, write_atomic


@dataclass(slots=True)
class StepJob:
    png_path: Path | None
    png: bytes | None
    traj_path: Path | None
    line: bytes | None
    error: BaseException | None = None


@dataclass
class _Batch:
    jobs: list[StepJob] = field(default_factory=list)
    done: anyio.Event = field(default_factory=anyio.Event)


def write_jobs(jobs: list[StepJob]) -> None:
    """Blocking: each job's PNG (atomic), then its line; a failure stays with its own job."""
    for job in jobs:
        try:
            if job.png_path is not None and job.png is not None:
                write_atomic(job.png_path, job.png, durable=False)
            if job.traj_path is not None and job.line is not None:
                append_bytes(job.traj_path, job.line, durable=False)
        except OSError as e:
            job.error = e


class StepWriter:
    """One per run store; `await write(...)` returns once that step is on disk (page cache)."""

    def __init__(self, limiter: anyio.CapacityLimiter | None = None, *, lanes: int = 4) -> None:
        self._lanes = [_Lane(limiter) for _ in range(max(1, lanes))]

    @property
    def batches(self) -> int:
        """Worker calls so far (far below the number of steps under load)."""
        return sum(lane.batches for lane in self._lanes)

    @property
    def steps(self) -> int:
        return sum(lane.steps for lane in self._lanes)

    async def write(self, png_path: Path | None, png: bytes | None, traj_path: Path | None = None,
                    line: bytes | None = None) -> None:
        folder = (png_path or traj_path or Path()).parent
        lane = self._lanes[hash(folder) % len(self._lanes)]
        await lane.write(StepJob(png_path, png, traj_path, line))


class _Lane:
    """Sequential batches: each worker call writes everything collected while the last one ran."""

    def __init__(self, limiter: anyio.CapacityLimiter | None) -> None:
        self._limiter = limiter
        self._collecting: _Batch | None = None
        self._writing = False
        self._write_ended: anyio.Event | None = None
        self.batches = 0
        self.steps = 0

    async def write(self, job: StepJob) -> None:
        batch = self._collecting
        if batch is None:
            batch = self._collecting = _Batch()
        batch.jobs.append(job)
        # Shielded like the single write it replaces: a step handed over is written, cancel or not.
        with anyio.CancelScope(shield=True):
            while not batch.done.is_set():
                if self._writing:
                    if self._write_ended is None:
                        self._write_ended = anyio.Event()
                    await self._write_ended.wait()
                else:
                    await self._write_collected()
        if job.error is not None:
            raise job.error

    async def _write_collected(self) -> None:
        batch, self._collecting = self._collecting, None
        if batch is None:
            return
        self._writing = True
        try:
            await anyio.to_thread.run_sync(write_jobs, batch.jobs, limiter=self._limiter)
        except BaseException as e:  # the worker call itself failed: every job of the batch did
            for job in batch.jobs:
                job.error = job.error or e
            raise
        finally:
            self.batches += 1
            self.steps += len(batch.jobs)
            self._writing = False
            batch.done.set()
            ended, self._write_ended = self._write_ended, None
            if ended is not None:
                ended.set()
