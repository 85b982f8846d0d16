"""Coalesced step writes: every attempt's `step_<n>.png` + traj line go through one writer.

A step write is small (a screenshot, one JSON line) and frequent (hundreds per second at scale);
the worker-thread hop and its wake-ups cost the event loop more than the write itself. Writes
that arrive while a batch is on disk are collected and written together by the next worker
call, in arrival order. A few lanes write in parallel (file creation is slow on some disks);
a task folder always uses the same lane, so each attempt's traj lines keep their order and each
PNG lands before the line naming it.

Write-behind: while the run store's background driver runs (`RunStore.run_flusher`), a step is
handed over and the agent goes on; the attempt waits for its steps only before its result is
written (`Attempt.flush`), so a finished task always has its whole trajectory on disk. A write
error surfaces at the attempt's next step or at its result. Without the driver every caller waits
for its own step, as before.

Durability: step files are written without fsync. They survive a crash of the harness process
(atomic rename for the PNG, one O_APPEND write per line), not a power loss; the task's
`result.json` and the journal's durable events are fsynced (docs/design/run-directory.md and
performance.md say why).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from harness.base.group_commit import Batch, GroupCommit
from results.atomic import append_bytes, write_atomic
from results.task_folder import create_task_dir, write_marker, write_result


@dataclass(slots=True)
class StepJob:
    png_path: Path | None
    png: bytes | None
    traj_path: Path | None
    line: bytes | None
    error: BaseException | None = None
    new_folder: Path | None = None  # a fresh attempt: create the task folder, write its marker
    marker: bytes | None = None
    result: tuple[Path, dict[str, Any]] | None = None  # after every earlier job of the folder


def write_jobs(jobs: list[StepJob]) -> None:
    """Blocking: each job's folder, PNG (atomic), line, result; a failure stays with its own job."""
    for job in jobs:
        try:
            if job.new_folder is not None:
                create_task_dir(job.new_folder)
                if job.marker is not None:
                    write_marker(job.new_folder, job.marker)
            if job.png_path is not None and job.png is not None:
                write_atomic(job.png_path, job.png, durable=False)
            if job.traj_path is not None and job.line is not None:
                append_bytes(job.traj_path, job.line, durable=False)
            if job.result is not None:
                write_result(*job.result)
        except OSError as e:
            job.error = e


class StepWriter:
    """One per run store. `submit` hands a step over and returns a `PendingStep` at once when a
    background driver (`run`) is writing; `write` = submit + wait. Without a driver, waiters write
    the batches themselves (tests, tools that never start `run`)."""

    def __init__(self, limiter: anyio.CapacityLimiter | None = None, *, lanes: int = 4) -> None:
        async def write(jobs: list[StepJob]) -> None:
            await anyio.to_thread.run_sync(write_jobs, jobs, limiter=limiter)

        self._lanes: list[GroupCommit[StepJob]] = [GroupCommit(write) for _ in range(max(1, lanes))]

    @property
    def batches(self) -> int:
        """Worker calls so far (far below the number of steps under load)."""
        return sum(lane.batches for lane in self._lanes)

    @property
    def steps(self) -> int:
        return sum(lane.items for lane in self._lanes)

    @property
    def driven(self) -> bool:
        return all(lane.driven for lane in self._lanes)

    def submit(self, png_path: Path | None, png: bytes | None, traj_path: Path | None = None,
               line: bytes | None = None) -> PendingStep:
        folder = (png_path or traj_path or Path()).parent
        return self.submit_job(folder, StepJob(png_path, png, traj_path, line))

    def submit_job(self, folder: Path, job: StepJob) -> PendingStep:
        """Queue any job for a task folder; jobs of one folder run in submission order."""
        lane = self._lanes[hash(folder) % len(self._lanes)]
        return PendingStep(lane, lane.submit(job), job)

    async def write(self, png_path: Path | None, png: bytes | None, traj_path: Path | None = None,
                    line: bytes | None = None) -> None:
        await self.submit(png_path, png, traj_path, line).wait()

    async def run(self) -> None:
        """Write every lane's batches in the background until cancelled, then drain (shielded)."""
        async with anyio.create_task_group() as tg:
            for lane in self._lanes:
                tg.start_soon(lane.run)

    async def drain(self) -> None:
        """Write whatever is still queued (used on close when no driver runs)."""
        for lane in self._lanes:
            await lane.drain()


@dataclass(slots=True)
class PendingStep:
    lane: GroupCommit[StepJob]
    batch: Batch[StepJob]
    job: StepJob

    @property
    def done(self) -> bool:
        return self.batch.done.is_set()

    @property
    def backlog(self) -> int:
        """Steps queued in this step's batch (the caller waits when it grows too long)."""
        return len(self.batch.items)

    @property
    def error(self) -> BaseException | None:
        """This step's write error, or the failure of its whole batch's worker call."""
        return self.job.error or self.batch.error

    async def wait(self) -> None:
        """Until this step is on disk (page cache); raises its write error."""
        await self.lane.wait(self.batch)
        if self.error is not None:
            raise self.error
