"""`validate --benchmark PATH` on an OSWorld-layout suite (tasks without `solution`).

Without reference solutions we can prove less, but still the part that breaks silently: for
every ready task (`tasks check`'s verdict; only offline-ready ones run, since sandboxes have no
network) a fresh sandbox runs the setup, then the evaluator on the untouched desktop:
- setup must succeed, and none of its commands may be missing from the image;
- a feasible task must score 0 after DONE, with no evaluation error and no evaluator command
  missing from the image (scoring/probe.py's notion of "missing": that 0 would be ours);
- an infeasible task must score 1 after FAIL.
Tasks not ready are rows with `status: "skipped"` and the reason; files that do not load are
`status: "error"` and fail the run.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from vm.types import ExecResult

SETUP_TIMEOUT = 600.0


class _Recorder:
    """The guest, with each command's result kept (to spot commands the image lacks)."""

    def __init__(self, guest: Any) -> None:
        self._guest = guest
        self.results: list[tuple[Any, ExecResult]] = []

    async def execute(self, command: Any, *, shell: bool = False, timeout: float = 120.0) -> ExecResult:
        result = await self._guest.execute(command, shell=shell, timeout=timeout)
        self.results.append((command, result))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._guest, name)


def _missing(results: list[tuple[Any, ExecResult]], phase: str, *, output_is_value: bool) -> list[str]:
    from scoring.probe import missing_tool

    out = []
    for command, result in results:
        gap = missing_tool(result, output_is_value=output_is_value)
        if gap:
            text = command if isinstance(command, str) else " ".join(map(str, command))
            out.append(f"{phase} command `{' '.join(text.split())[:80]}`: {gap}")
    return out


async def check_task(task: Any, guest: Any, run: Any) -> dict[str, Any]:
    """Setup + noop evaluation of one task on a fresh guest: {ok, score, problems}."""
    from benchmarks.setup_steps import run_setup
    from harness.base.errors import HarnessError, SandboxError
    from scoring import evaluate

    recorder = _Recorder(guest)
    problems: list[str] = []
    try:
        await run_setup(task.config, recorder, run.for_setup(task, recorder), phase="config")  # type: ignore[arg-type]
    except SandboxError:
        raise
    except HarnessError as e:
        problems.append(f"setup failed: {e}"[:300])
    problems += _missing(recorder.results, "setup", output_is_value=False)
    if problems:
        return {"ok": False, "score": None, "problems": problems}
    infeasible = task.evaluator.func == "infeasible"
    recorder.results.clear()
    result = await evaluate(task, recorder, ["FAIL" if infeasible else "DONE"], run)
    problems += _missing(recorder.results, "evaluator", output_is_value=True)
    if result.eval_error:
        problems.append(f"evaluation error: {result.eval_error}")
    want = 1.0 if infeasible else 0.0
    if result.score != want:
        problems.append(f"{'FAIL' if infeasible else 'no action'} scored {result.score:g}, expected {want:g}")
    return {"ok": not problems, "score": result.score, "problems": problems}


async def validate_suite(path: str | Path, *, test_list: str | None, domains: list[str] | None,
                         tasks: list[str] | None, concurrency: int, desktop: str = "osworld",
                         warm_start: bool | None = None) -> list[dict[str, Any]]:
    """One row per selected task: {domain, id, status: ok|failed|skipped|error, ready, score, problems}."""
    import functools

    from benchmarks.loader import load_suite
    from scoring.coverage import check_suite
    from scoring.probe import probe_context, probe_pool

    verdicts = await anyio.to_thread.run_sync(functools.partial(check_suite, path, test_list=test_list, domains=domains))
    suite = await anyio.to_thread.run_sync(functools.partial(load_suite, path, test_list=test_list, domains=domains,
                                                             errors="collect"))
    wanted = set(tasks) if tasks else None
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for v in verdicts:
        if wanted is not None and v["id"] not in wanted:
            continue
        loaded = not any(str(r).startswith("error:") for r in v["reasons"])
        status = "pending" if v["ready"] == "offline" else "skipped" if loaded else "error"
        rows[v["domain"], v["id"]] = {"domain": v["domain"], "id": v["id"], "status": status, "ready": v["ready"],
                                      "score": None, "problems": [] if status == "pending" else list(v["reasons"])}
    runnable = [t for t in suite.tasks if rows.get((t.domain, t.id), {}).get("status") == "pending"]
    if runnable:
        with tempfile.TemporaryDirectory(prefix="cua-validate-") as work:
            run = probe_context(Path(work))
            slots = anyio.Semaphore(concurrency)
            async with probe_pool(concurrency, purpose="validate", desktop=desktop,
                                  warm_start=warm_start) as pool, \
                    anyio.create_task_group() as tg:
                for task in runnable:
                    tg.start_soon(_one, task, pool, run, slots, rows[task.domain, task.id])
    return list(rows.values())


async def _one(task: Any, pool: Any, run: Any, slots: anyio.Semaphore, row: dict[str, Any]) -> None:
    from harness.base.errors import SandboxError
    from vm.pool import on_fresh_sandbox

    async with slots:
        started = time.monotonic()
        try:  # a sandbox that fails is infrastructure: one retry on a fresh one
            outcome = await on_fresh_sandbox(pool, lambda box: check_task(task, box.guest, run),
                                             timeout=SETUP_TIMEOUT, what=f"validate {task.domain}/{task.id}")
        except SandboxError as e:
            outcome = {"ok": False, "score": None, "problems": [f"sandbox failed: {e}"[:300]]}
        await run.discard(task)
        row.update(status="ok" if outcome["ok"] else "failed", score=outcome["score"], problems=outcome["problems"],
                   seconds=round(time.monotonic() - started, 1))
        print(f"validate {task.domain}/{task.id}: {row['status']}"
              + (f" ({'; '.join(row['problems'])})" if row["problems"] else ""), file=sys.stderr, flush=True)


def is_osworld_layout(path: str | Path) -> bool:
    """True when no task of the suite carries a reference `solution` (OSWorld's own files)."""
    from benchmarks.loader import load_suite

    try:
        suite = load_suite(path, errors="collect")
    except Exception:
        return False
    return bool(suite.tasks) and all(t.solution is None for t in suite.tasks)
