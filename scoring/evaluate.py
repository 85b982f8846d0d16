"""OSWorld's `DesktopEnv.evaluate`, asynchronously.

Order and rules, as upstream: postconfig steps run first; `func: "infeasible"` scores 1 only
when the last action was FAIL; any other task whose last action was FAIL scores 0; otherwise
each metric gets `result` (and `expected` when given) from its getters. `and`: 0 at the first
metric scoring 0, else the mean; `or`: 1 at the first metric scoring 1, else the max.

Differences on purpose: a getter that finds nothing (None, a missing file, `NothingFound`) or
cannot parse the state it reads (`is_bad_input`) makes its metric score 0 with the reason recorded
(upstream crashes or, under `or`, reuses the previous metric's state); so does a metric handed an
unreadable file (`BadInput`). Anything else a getter raises (ValueError, TypeError, a host
OSError such as PermissionError), a metric raising anything but BadInput or a parse error, or a
broken gold file scores 0 too but is an *evaluation error*, never a silent 0:
`MetricDetail.eval_error` (and `eval_fault`: `environment` for a host OSError, else `harness`),
`result.json`'s `eval_error`, `summary.json`'s `eval_errors`. A TaskError (a getter `dest` that
leaves the work folder, a gold file's URL that is gone, a postconfig step that is wrong) ends the
evaluation: the engine records it as the task file's fault (harness/base/faults.py).
A getter that times out while the guest still answers is the agent's state (0 with reason);
a guest that no longer answers is infrastructure (SandboxError: the engine retries the attempt).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

import anyio

from benchmarks.context import RunContext, TaskContext
from benchmarks.schema import GetterSpec, MetricSpec, Task
from benchmarks.setup_steps import run_setup
from harness.base.errors import HarnessError, SandboxError, TaskError
from harness.base.faults import ENVIRONMENT, HARNESS, run_fatal
from scoring.badinput import BadInput, NothingFound, as_paths, describe, is_bad_input
from scoring.registry import get_getter, get_metric
from scoring.result import EvalResult, MetricDetail, as_score, preview
from vm.types import Guest

log = logging.getLogger("scoring.evaluate")


class EvaluatorBug(Exception):
    """Our getter or metric code failed, or the host did (an evaluation error, not the agent's 0)."""

    def __init__(self, message: str, fault: str = HARNESS) -> None:
        super().__init__(message)
        self.fault = fault


GUEST_ALIVE_TIMEOUT = 15.0


def is_fail(action: Any) -> bool:
    if isinstance(action, str):
        return action.strip().upper() == "FAIL"
    if isinstance(action, dict):
        return str(action.get("action_type", "")).upper() == "FAIL"
    return False


async def fetch_state(spec: GetterSpec, guest: Guest, ctx: TaskContext) -> Any:
    """Run one getter; NothingFound when it finds nothing, SandboxError on infrastructure trouble."""
    entry = get_getter(spec.type)
    try:
        with anyio.fail_after(ctx.run.getter_timeout):
            value = await entry.fn(guest, spec, ctx)
    except TimeoutError as e:
        why = f"getter {spec.type}: no result within {ctx.run.getter_timeout:g} s"
        if not await _guest_answers(guest):
            raise SandboxError(f"{why}; the guest does not answer") from e
        raise NothingFound(f"{why} (the guest answers: the state the agent left blocks it)") from e
    except HarnessError:
        raise
    except Exception as e:
        if type(e) is NothingFound:
            raise
        if is_bad_input(e) or isinstance(e, NothingFound):  # the state is not what the getter expects (missing file, bad XML)
            raise NothingFound(f"getter {spec.type} failed: {describe(e)}") from e
        if run_fatal(e):
            raise  # the host cannot write: the run stops
        # Host I/O (PermissionError, ...) is the environment's; anything else is our getter's bug.
        raise EvaluatorBug(f"getter {spec.type} raised {describe(e)}",
                           ENVIRONMENT if isinstance(e, OSError) else HARNESS) from e
    if value is None or (isinstance(value, list) and value and all(v is None for v in value)):
        raise NothingFound(f"getter {spec.type} found nothing")
    return value


async def _guest_answers(guest: Guest) -> bool:
    """Whether the guest still runs a trivial command (decides: stuck app vs. dead sandbox)."""
    try:
        with anyio.fail_after(GUEST_ALIVE_TIMEOUT):
            result = await guest.execute("true", shell=True, timeout=GUEST_ALIVE_TIMEOUT)
    except (HarnessError, TimeoutError, OSError):
        return False
    return getattr(result, "returncode", 1) == 0


async def score_metric(spec: MetricSpec, guest: Guest, ctx: TaskContext) -> MetricDetail:
    entry = get_metric(spec.func)
    if entry.check is not None and (problems := entry.check(spec.options)):
        raise TaskError(f"metric {spec.func}: unsupported options: {', '.join(problems)}")
    detail = MetricDetail(index=spec.index, func=spec.func, score=0.0,
                          result_getter=spec.result.type if spec.result else None,
                          expected_getter=spec.expected.type if spec.expected else None)
    if spec.result is None:
        raise TaskError(f"metric {spec.func}: no result getter")
    expected: Any = None
    try:
        result = await fetch_state(spec.result, guest, ctx)
        detail.result_preview = preview(result)
        args: tuple[Any, ...] = (result,)
        if spec.expected is not None:
            expected = await fetch_state(spec.expected, guest, ctx)
            args = (result, expected)
    except NothingFound as e:
        detail.note = str(e)
        return detail
    except EvaluatorBug as e:
        log.warning("task %s: metric %s: %s", getattr(ctx.task, "id", "?"), spec.func, e, exc_info=True)
        detail.eval_error = str(e)[:500]
        detail.eval_fault = e.fault
        return detail
    call = functools.partial(entry.fn, *args, **spec.options)
    try:
        raw = await anyio.to_thread.run_sync(call, limiter=ctx.run.cpu)
    except HarnessError:
        raise
    except Exception as e:
        gold = isinstance(e, BadInput) and e.path is not None and e.path in as_paths(expected)
        if is_bad_input(e) and not gold:  # the agent's file is absent or corrupt: a plain 0
            detail.error = describe(e)
            detail.note = f"unreadable input: {describe(e)}"[:500]
            return detail
        # A bug in our metric, or a gold file we cannot read: never a silent 0.
        if run_fatal(e):
            raise
        log.warning("metric %s raised", spec.func, exc_info=True)
        detail.eval_error = f"metric {spec.func} raised {describe(e)}"[:500]
        detail.eval_fault = HARNESS
        return detail
    detail.score = as_score(raw)
    return detail


async def evaluate(task: Task, guest: Guest, actions: Sequence[Any], ctx: RunContext | TaskContext) -> EvalResult:
    """Score the final state of `guest` for `task` after the agent's `actions` (0..1 plus details)."""
    tctx = ctx.for_evaluation(task, guest) if isinstance(ctx, RunContext) else ctx  # folder made on use
    ev = task.evaluator
    if ev.postconfig:
        await run_setup(ev.postconfig, guest, tctx, phase="postconfig")
    result = await _score(task, guest, actions, tctx)
    result.notes = list(getattr(tctx, "notes", None) or [])  # no context: infeasible-only callers
    return result


async def _score(task: Task, guest: Guest, actions: Sequence[Any], tctx: TaskContext) -> EvalResult:
    ev = task.evaluator
    gave_up = bool(actions) and is_fail(actions[-1])
    if ev.func == "infeasible":
        score = 1.0 if gave_up else 0.0
        note = "last action FAIL" if gave_up else "infeasible task: only a final FAIL scores"
        return EvalResult(score=score, conj=ev.conj, reason=note,
                          metrics=[MetricDetail(index=0, func="infeasible", score=score, note=note)])
    if gave_up:
        return EvalResult(score=0.0, conj=ev.conj, reason="last action FAIL on a feasible task")

    specs = ev.metric_specs()
    details: list[MetricDetail] = []
    scores: list[float] = []
    for spec in specs:
        detail = await score_metric(spec, guest, tctx)
        details.append(detail)
        s = detail.score or 0.0
        decided = (ev.conj == "and" and s == 0.0) or (ev.conj == "or" and s == 1.0)
        if decided and len(specs) > 1:
            details += [MetricDetail(index=rest.index, func=rest.func, score=None, note=f"skipped: {ev.conj} decided")
                        for rest in specs[spec.index + 1:]]
            return EvalResult(score=s, conj=ev.conj, reason=f"metric {spec.index} ({spec.func}) decided", metrics=details)
        scores.append(s)
    final = sum(scores) / len(scores) if ev.conj == "and" else max(scores)
    return EvalResult(score=final, conj=ev.conj, metrics=details)


__all__ = ["BadInput", "EvaluatorBug", "NothingFound", "evaluate", "fetch_state", "is_fail", "score_metric"]
