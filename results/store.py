"""RunStore: the one writer of a run directory (layout in docs/design/run-directory.md).

Every write is an atomic replace (results/atomic.py) or a journal append (results/journal.py),
so a SIGKILL at any instant leaves a directory `RunStore.open` accepts. Blocking file work runs
in worker threads behind named limiters: `io_threads` for attempt and result files, one thread
for journal flushes and `step_lanes` for step screenshots and traj lines (so a durable journal
flush never queues behind step writes); only dict/set bookkeeping and the journal's in-memory
buffer are touched on the event loop.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from results.atomic import dump_json, write_atomic
from results.attempt import Attempt
from results.journal import Journal
from results.layout import EVENTS, SUMMARY, TaskKey, check_component, task_dir
from results.redact import redact, redact_text
from results.resume import DuplicateResultError, prepare_attempt, scan_results
from results.rundir import Opened, open_run_dir
from results.runinfo import harness_version
from results.stepwriter import StepJob, StepWriter
from results.summary import summarize
from results.task_folder import attempt_marker_bytes, read_result

__all__ = ["DuplicateResultError", "RunStore"]
log = logging.getLogger(__name__)

_STEP_LANES = 4


def _as_score(value: Any, key: TaskKey) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise ValueError(f"task {key[0]}/{key[1]}: result 'score' must be a number in [0, 1], got {value!r}")
    return float(value)


class RunStore:
    """The run directory's single writer. Create with `await RunStore.open(...)`."""

    def __init__(
        self, run_dir: Path, opened: Opened, journal: Journal, limiter: anyio.CapacityLimiter
    ) -> None:
        self.run_dir = run_dir
        self.run_info = opened.run
        self.session = journal.session
        self.journal = journal
        self._io = limiter
        self._lock_fd: int | None = opened.lock_fd
        self._results = opened.results
        self._planned: list[TaskKey] | None = opened.scan.planned
        self._past_wall = sum(span.wall_s() for span in opened.scan.sessions.values())
        self._past_infra = opened.scan.counts.get("infra_failure", 0)
        self._infra = 0
        self._started = time.time()
        self._active: dict[TaskKey, Attempt] = {}
        self._numbers: dict[TaskKey, int] = {}
        self._busy: set[TaskKey] = set()  # keys with a begin_attempt or record_result in flight
        self._dirs: set[TaskKey] = set(opened.dirs)  # task folders on disk or queued for creation
        # Step PNGs + traj lines of every attempt, batched, on their own threads.
        self._steps = StepWriter(anyio.CapacityLimiter(_STEP_LANES), lanes=_STEP_LANES)
        self._closed = False

    # ---- lifecycle ---------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        run_dir: str | os.PathLike[str],
        config: dict[str, Any],
        *,
        result_keys: Sequence[str],
        flush_interval: float = 0.25,
        io_threads: int = 8,
        agent_info: dict[str, Any] | None = None,
    ) -> RunStore:
        """Create `run_dir` or reopen it for resume.

        Raises ConfigError if another process holds it, if it is a non-empty foreign folder, or
        if `run.json` differs from `config` in any of `result_keys` (dotted paths). `agent_info`
        (the agent's resolved behaviour) is written into a new run.json as `agent`.
        """
        path = Path(run_dir)
        limiter = anyio.CapacityLimiter(io_threads)  # named limit: results file I/O threads
        keys = list(result_keys)
        opened = await anyio.to_thread.run_sync(open_run_dir, path, config, keys, agent_info, limiter=limiter)
        try:
            journal = await Journal.open(
                path / EVENTS,
                session=opened.scan.last_session + 1,
                flush_interval=flush_interval,
                limiter=anyio.CapacityLimiter(1),  # flushes are serial anyway (journal lock)
            )
            store = cls(path, opened, journal, limiter)
            journal.emit(
                "run_started",
                pid=os.getpid(),
                resumed=not opened.created,
                finished_tasks=len(opened.results),
                harness_version=harness_version(),
                git_commit=opened.commit,
            )
            if opened.changes:
                journal.emit("config_changed", changes=opened.changes)
            if opened.temps_removed:
                journal.emit("temp_files_removed", files=opened.temps_removed)
            if opened.scan.unreadable:
                journal.emit("journal_lines_skipped", count=opened.scan.unreadable)
            # A kill between result.json and its journal line leaves a finished task the journal
            # never saw finish: record it now, so the journal names every finished task once.
            for domain, task_id in sorted(set(opened.results) - opened.scan.finished):
                record = opened.results[(domain, task_id)]
                journal.emit("task_finished", domain=domain, task_id=task_id, score=record.get("score"),
                             attempt=record.get("attempts"), seconds=record.get("seconds"),
                             error=record.get("error"), recovered=True)
            await journal.flush()
        except BaseException:
            os.close(opened.lock_fd)
            raise
        return store

    async def aclose(self, reason: str = "finished") -> None:
        """Log run_stopped, flush the journal, write summary.json, release the lock. Idempotent."""
        if self._closed:
            return
        with anyio.CancelScope(shield=True):
            try:
                for attempt in self._active.values():
                    attempt.close()
                await self._steps.drain()
                self.journal.emit("run_stopped", reason=reason, wall_s=round(time.time() - self._started, 3))
                await self.journal.flush()
                await self.write_summary()
                await self.journal.aclose()
            finally:
                self._closed = True
                if self._lock_fd is not None:
                    os.close(self._lock_fd)
                    self._lock_fd = None

    async def __aenter__(self) -> RunStore:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        await self.aclose("finished" if exc_type is None else "interrupted")

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"run store {self.run_dir} is closed")

    # ---- tasks -------------------------------------------------------------------------------

    def pending(self, tasks: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """The tasks (in the given order) that have no finished record; remembers them as the plan."""
        self._check_open()
        keys = [
            (check_component(d, "domain", (d, t)), check_component(t, "task id", (d, t))) for d, t in tasks
        ]
        self._planned = list(dict.fromkeys(keys))
        self.journal.emit("tasks_planned", count=len(self._planned), tasks=[list(k) for k in self._planned])
        return [task for task, key in zip(tasks, keys, strict=True) if key not in self._results]

    def result(self, domain: str, task_id: str) -> dict[str, Any] | None:
        return self._results.get((domain, task_id))

    async def begin_attempt(self, domain: str, task_id: str) -> Attempt:
        """Start the next attempt; files of an unfinished earlier one go to `attempts/<n>/` first."""
        self._check_open()
        key = (domain, task_id)
        directory = task_dir(self.run_dir, domain, task_id)
        if key in self._results:
            raise DuplicateResultError(
                f"task {domain}/{task_id} already has a result in {self.run_dir}; not starting it again"
            )
        if key in self._busy:
            raise RuntimeError(
                f"task {domain}/{task_id}: another begin_attempt or record_result is in flight"
            )
        previous = self._active.pop(key, None)
        if previous is not None:
            previous.close()  # a straggler of the old attempt must not write into the new one
        if key not in self._dirs:
            # A fresh task (the common case): nothing to move aside, number 1. The folder and its
            # attempt.json are made by the step writer, ahead of the attempt's steps in its queue.
            self._dirs.add(key)
            attempt = Attempt(domain, task_id, directory, 1, self._io, self._steps)
            self._active[key] = attempt
            self._numbers[key] = 1
            job = StepJob(None, None, None, None, new_folder=directory, marker=attempt_marker_bytes(1, self.session))
            await attempt.create_folder(self._steps.submit_job(directory, job))
            self.journal.emit("attempt_started", domain=domain, task_id=task_id, attempt=1)
            return attempt
        self._busy.add(key)
        try:
            if previous is not None:
                # Its queued steps land before its files are moved aside; a failed one is moot now.
                with anyio.CancelScope(shield=True), contextlib.suppress(OSError):
                    await previous.flush()
            # Shielded: once files start moving, memory must learn the outcome even under Ctrl-C.
            with anyio.CancelScope(shield=True):
                number, moved = await anyio.to_thread.run_sync(
                    prepare_attempt, directory, self.session, limiter=self._io
                )
        finally:
            self._busy.discard(key)
        attempt = Attempt(domain, task_id, directory, number, self._io, self._steps)
        self._active[key] = attempt
        self._numbers[key] = number
        if moved is not None:
            self.journal.emit(
                "attempt_moved_aside", domain=domain, task_id=task_id, attempt=moved[0],
                to=f"{domain}/{task_id}/attempts/{moved[0]}", files=len(moved[1]),
            )  # fmt: skip
        self.journal.emit("attempt_started", domain=domain, task_id=task_id, attempt=number)
        return attempt

    async def record_infra_failure(
        self, domain: str, task_id: str, attempt: int | Attempt, error: str
    ) -> None:
        """Journal an infrastructure failure of an attempt; the engine retries with begin_attempt."""
        self._check_open()
        number = attempt.number if isinstance(attempt, Attempt) else int(attempt)
        active = self._active.get((domain, task_id))
        if active is not None and active.number == number:
            active.close()
        self._infra += 1
        await self.journal.append(
            "infra_failure",
            durable=True,
            domain=domain,
            task_id=task_id,
            attempt=number,
            error=redact_text(str(error)),
        )

    async def record_result(self, domain: str, task_id: str, result: dict[str, Any]) -> dict[str, Any]:
        """Write result.txt then result.json (atomically) and journal task_finished; once per task.

        `result` needs `score` in [0, 1]; `steps`, `tokens` {prompt, completion}, `cost_usd`,
        `seconds`, `attempts` and `error` default to empty values; other keys are kept as given.
        Returns the record as written.
        """
        self._check_open()
        key = (domain, task_id)
        directory = task_dir(self.run_dir, domain, task_id)
        if key in self._results or key in self._busy:
            raise DuplicateResultError(
                f"task {domain}/{task_id} is already recorded in {self.run_dir}; tasks are recorded once"
            )
        score = _as_score(result.get("score"), key)
        tokens = result.get("tokens") or {}
        if not isinstance(tokens, dict):
            raise ValueError(
                f"task {domain}/{task_id}: result 'tokens' must be {{'prompt': n, 'completion': n}}"
            )
        error = result.get("error")
        record: dict[str, Any] = {
            "domain": domain,
            "task_id": task_id,
            "score": score,
            "steps": int(result.get("steps") or 0),
            "tokens": {
                "prompt": int(tokens.get("prompt") or 0),
                "completion": int(tokens.get("completion") or 0),
            },
            "cost_usd": float(result.get("cost_usd") or 0.0),
            "seconds": float(result.get("seconds") or 0.0),
            "attempts": int(result.get("attempts") or self._numbers.get(key, 0)) or None,
            "error": None if error is None else redact_text(str(error)),
            # Our evaluator failed (a bug, a broken gold file): not the agent's 0 (scoring/evaluate.py).
            "eval_error": redact_text(str(result["eval_error"])) if result.get("eval_error") else None,
            "session": self.session,
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        }
        extras = redact({k: v for k, v in result.items() if k not in record}, by_name=False)
        record.update(extras)
        self._busy.add(key)
        try:
            with anyio.CancelScope(shield=True):  # a computed score is persisted even under Ctrl-C
                self._dirs.add(key)
                active = self._active.get(key)
                try:
                    # Queued behind the attempt's steps in the same folder's lane, so a finished task
                    # has its whole trajectory on disk; one worker call writes steps and result.
                    await self._steps.submit_job(
                        directory, StepJob(None, None, None, None, result=(directory, record))).wait()
                except BaseException:
                    # If result.json made it to disk, the task is finished whatever failed after.
                    on_disk = await anyio.to_thread.run_sync(read_result, directory, limiter=self._io)
                    if on_disk is not None:
                        self._results[key] = on_disk
                    raise
                self._results[key] = record
                self._active.pop(key, None)
                if active is not None:
                    active.close()
                    try:
                        await active.flush()  # done already (same lane): only its write errors are left
                    except OSError as e:
                        # The score stands; a lost screenshot or traj line is reported, not fatal.
                        log.warning("task %s/%s: a step file was not written: %s", domain, task_id, e)
                        self.journal.emit("step_write_failed", domain=domain, task_id=task_id, error=str(e))
                await self.journal.append(
                    "task_finished", durable=True, domain=domain, task_id=task_id, score=score,
                    attempt=record["attempts"], seconds=record["seconds"], error=record["error"],
                )  # fmt: skip
        finally:
            self._busy.discard(key)
        return record

    # ---- journal and summary -----------------------------------------------------------------

    def log(self, event: str, **fields: Any) -> None:
        """Buffer an engine event in the journal (flushed within `flush_interval` by run_flusher)."""
        self.journal.emit(event, **fields)

    async def run_flusher(self) -> None:
        """Flush the journal periodically and write queued steps in the background; start it in the
        engine's task group and cancel it at the end (both drain what is left)."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.journal.run_flusher)
            tg.start_soon(self._steps.run)

    def wall_s(self) -> float:
        return self._past_wall + (time.time() - self._started)

    def summary(self) -> dict[str, Any]:
        """Summary from the result records (loaded from disk at open, added as each is written)."""
        return summarize(
            self._results,
            planned=self._planned,
            wall_s=self.wall_s(),
            infra_failures=self._past_infra + self._infra,
            sessions=self.session,
        )

    async def write_summary(self) -> dict[str, Any]:
        """Re-read every result.json (the source of truth), then write summary.json atomically."""
        on_disk = await anyio.to_thread.run_sync(scan_results, self.run_dir, limiter=self._io)
        self._results.update(on_disk)  # merge: a record written during the scan stays known
        summary = self.summary()
        await anyio.to_thread.run_sync(
            write_atomic, self.run_dir / SUMMARY, dump_json(summary), limiter=self._io
        )
        return summary
