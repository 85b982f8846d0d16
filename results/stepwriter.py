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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from results.atomic import append_bytes, write_atomic
from results.resume import create_task_dir, write_marker, write_result


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


@dataclass
class _Batch:
    jobs: list[StepJob] = field(default_factory=list)
    done: anyio.Event = field(default_factory=anyio.Event)


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
        self._lanes = [_Lane(limiter) for _ in range(max(1, lanes))]

    @property
    def batches(self) -> int:
        """Worker calls so far (far below the number of steps under load)."""
        return sum(lane.batches for lane in self._lanes)

    @property
    def steps(self) -> int:
        return sum(lane.steps for lane in self._lanes)

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
    lane: _Lane
    batch: _Batch
    job: StepJob

    @property
    def done(self) -> bool:
        return self.batch.done.is_set()

    @property
    def backlog(self) -> int:
        """Steps queued in this step's batch (the caller waits when it grows too long)."""
        return len(self.batch.jobs)

    async def wait(self) -> None:
        """Until this step is on disk (page cache); raises its write error."""
        await self.lane.wait(self.batch)
        if self.job.error is not None:
            raise self.job.error


class _Lane:
    """Sequential batches: each worker call writes everything collected while the last one ran."""

    def __init__(self, limiter: anyio.CapacityLimiter | None) -> None:
        self._limiter = limiter
        self._collecting: _Batch | None = None
        self._writing = False
        self._write_ended: anyio.Event | None = None
        self._wake: anyio.Event | None = None
        self.driven = False
        self.batches = 0
        self.steps = 0

    def submit(self, job: StepJob) -> _Batch:
        batch = self._collecting
        if batch is None:
            batch = self._collecting = _Batch()
        batch.jobs.append(job)
        if self._wake is not None:
            self._wake.set()
        return batch

    async def wait(self, batch: _Batch) -> None:
        # Shielded like the single write it replaces: a step handed over is written, cancel or not.
        with anyio.CancelScope(shield=True):
            while not batch.done.is_set():
                if self.driven:
                    await batch.done.wait()
                elif self._writing:
                    await self._wait_write_end()
                else:
                    await self._write_collected()

    async def drain(self) -> None:
        with anyio.CancelScope(shield=True):
            while self._collecting is not None or self._writing:
                if self._writing:
                    await self._wait_write_end()
                else:
                    await self._write_collected()

    async def run(self) -> None:
        self.driven = True
        try:
            while True:
                if self._writing:  # a waiter started this write before the driver ran
                    await self._wait_write_end()
                elif self._collecting is None:
                    self._wake = anyio.Event()
                    try:
                        await self._wake.wait()
                    finally:
                        self._wake = None
                else:
                    try:
                        await self._write_collected()
                    except Exception:  # recorded on every job of the batch: their attempts raise it
                        pass
        finally:
            self.driven = False
            await self.drain()

    async def _wait_write_end(self) -> None:
        if self._write_ended is None:
            self._write_ended = anyio.Event()
        await self._write_ended.wait()

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
