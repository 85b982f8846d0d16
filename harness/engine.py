"""The run engine: N workers on one event loop pull pending tasks and run attempts.

An attempt = sandbox from the pool -> setup steps -> agent.solve -> evaluate -> record.
Infrastructure failures (SandboxError) retry on a fresh sandbox up to `infra_retries`; any other
failure (setup, agent, evaluation, our own bug) ends that task with score 0, the reason and who
is at fault (harness/base/faults.py), never the run. Only the host failing to write (disk full)
stops the run, with one line (RunStopped).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio

from harness.base.errors import SandboxError
from harness.base.faults import AGENT, ENVIRONMENT, RunStopped, run_fatal, short, task_failure
from harness.config import RunConfig
from harness.task_env import SandboxTaskEnv
from search.agent import Agent, Outcome
from search.mcts.state_restore import PoolSource

log = logging.getLogger("harness.engine")


@dataclass
class EngineStats:
    total: int = 0
    done: int = 0
    score_sum: float = 0.0
    in_flight: int = 0
    infra_failures: int = 0
    errors: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def success_rate(self) -> float:
        return self.score_sum / self.done if self.done else 0.0


_short = short  # the name harness.cluster imports


def _passes(e: BaseException) -> bool:
    """Not this task's failure: infrastructure (the engine retries), the deadline, cancellation,
    or the host unable to write (the run stops)."""
    return isinstance(e, SandboxError | TimeoutError | anyio.get_cancelled_exc_class()) or run_fatal(e) is not None


class AttemptRunner(Protocol):
    """The body of one attempt: sandbox, setup, agent.solve, evaluate -> the result dict.

    Writes steps and files through `attempt` (a results.attempt.Attempt). Raises SandboxError for
    infrastructure failures (the engine retries), TimeoutError never on its own: the engine holds
    the task deadline and cancels the call. Every other failure is returned as the task's result
    (`faults.task_failure`), so a cluster worker and this machine record the same thing. `LocalAttemptRunner` runs it on this event loop;
    harness.cluster.dispatch.RayAttemptRunner runs it on a cluster worker and streams it back.
    """

    async def run(self, task: Any, attempt: Any) -> dict[str, Any]: ...


class LocalAttemptRunner:
    """One attempt on this machine's sandbox pool (the engine's default runner)."""

    def __init__(self, config: RunConfig, pool: Any, agent: Agent, *, setup: Any, evaluate: Any, context: Any,
                 run_dir: Path | None = None) -> None:
        self.config = config
        self.pool = pool
        self.agent = agent
        self.run_dir = run_dir
        self._setup = setup
        self._evaluate = evaluate
        self._ctx = context

    async def run(self, task: Any, attempt: Any) -> dict[str, Any]:
        box = await self.pool.acquire()
        # The env owns the sandbox from here: a search agent may swap it for a fresh one (final
        # replay) and fork more from the pool; aclose gives all of them back, on every path.
        env = SandboxTaskEnv(
            task, box, attempt, max_steps=self.config.max_steps,
            observe_accessibility=self.config.observation_type != "screenshot",
            sandboxes=PoolSource(self.pool, lambda b: self._setup(task, b.guest, self._ctx)),
            evaluator=lambda guest, actions: self._evaluate(task, guest, actions, self._ctx),
            run_dir=self.run_dir)
        try:
            try:
                await self._setup(task, box.guest, self._ctx)
            except Exception as e:
                if _passes(e):
                    raise
                log.info("task %s/%s: setup failed: %s", task.domain, task.id, short(e))
                return {**task_failure(e, "setup"), "steps": 0}
            # The starting screen, for the report (step_1.png is the screen after action 1).
            start = await box.observe(accessibility=False)
            await attempt.write_file("step_0.png", start.screenshot, durable=False)
            return await self._solve_and_score(task, env)
        finally:
            await env.aclose()

    async def _solve_and_score(self, task: Any, env: SandboxTaskEnv) -> dict[str, Any]:
        failure: dict[str, Any] | None = None
        try:
            outcome = await self.agent.solve(task, env)
        except Exception as e:  # the agent's or the model's fault: this task scores 0
            if _passes(e):
                raise
            log.exception("task %s/%s: agent error", task.domain, task.id)
            failure = task_failure(e, "agent")
            outcome = Outcome(actions=list(env.actions), steps=env.step_count, error=failure["error"])
        base = {
            "steps": outcome.steps or env.step_count,
            "tokens": {"prompt": outcome.prompt_tokens, "completion": outcome.completion_tokens},
            "cost_usd": outcome.cost_usd,
            "last_action": outcome.last_action if isinstance(outcome.last_action, str | None) else str(outcome.last_action),
        }
        if failure is not None:
            return {**base, **failure}
        if outcome.error:  # the agent ended itself with an error
            return {**base, "score": 0.0, "error": outcome.error, "fault": AGENT, "phase": "agent"}
        try:
            # An agent that already scored the final state (re-replay rule) is not scored twice:
            # postconfig steps may change the desktop.
            evaluation = env.current_evaluation()
            if evaluation is None:
                evaluation = await self._evaluate(task, env.sandbox.guest, outcome.actions, self._ctx)
        except Exception as e:  # a task-file error (postconfig, a gold file's URL) or our bug: this task
            if _passes(e):
                raise
            log.warning("task %s/%s: evaluation failed: %s", task.domain, task.id, short(e), exc_info=True)
            return {**base, **task_failure(e, "evaluation")}
        result = {**base, "score": float(evaluation.score), "evaluation": evaluation.details,
                  "eval_error": getattr(evaluation, "eval_error", None)}  # our bug, not the agent's 0
        if result["eval_error"]:
            result.update(fault=getattr(evaluation, "eval_fault", None), phase="evaluation")
        if getattr(evaluation, "notes", None):
            result["notes"] = list(evaluation.notes)
        return result


class Engine:
    def __init__(self, config: RunConfig, tasks: list[Any], store: Any, pool: Any, agent: Agent, *,
                 setup: Any, evaluate: Any, unsupported: Any, context: Any, llm: Any = None,
                 runner: AttemptRunner | None = None) -> None:
        self.config = config
        self.tasks = tasks
        self.store = store
        self.pool = pool
        self.agent = agent
        self.llm = llm
        self._unsupported = unsupported
        self._ctx = context
        self.runner: AttemptRunner = runner or LocalAttemptRunner(
            config, pool, agent, setup=setup, evaluate=evaluate, context=context,
            run_dir=getattr(store, "run_dir", None))
        self.stats = EngineStats()
        self._run_dir = getattr(store, "run_dir", None)

    async def run(self) -> EngineStats:
        keys = [(t.domain, t.id) for t in self.tasks]
        pending_keys = set(self.store.pending(keys))
        pending = [t for t in self.tasks if (t.domain, t.id) in pending_keys]
        self.stats.total = len(self.tasks)
        self.stats.done = len(self.tasks) - len(pending)
        queue: Iterator[Any] = iter(pending)
        async with anyio.create_task_group() as tg:
            for _ in range(min(self.config.concurrency, len(pending))):
                tg.start_soon(self._worker, queue)
        return self.stats

    async def _worker(self, queue: Iterator[Any]) -> None:
        for task in queue:  # shared iterator: each task is taken by exactly one worker
            self.stats.in_flight += 1
            try:
                await self._run_task(task)
            except OSError as e:  # the run store could not write: no later task could be recorded
                if (why := run_fatal(e, self._run_dir)) is None:
                    raise
                raise RunStopped(why) from e
            finally:
                self.stats.in_flight -= 1

    async def _run_task(self, task: Any) -> None:
        blocked = self._unsupported(task)
        if blocked:
            await self._finish(task, {"score": 0.0, "error": "unsupported: " + ", ".join(blocked),
                                      "fault": ENVIRONMENT, "phase": "unsupported", "unsupported": blocked, "attempts": 0, "steps": 0, "seconds": 0.0})
            return
        attempts = 0
        while True:
            attempts += 1
            started = time.monotonic()
            attempt = await self.store.begin_attempt(task.domain, task.id)
            try:
                result = await self._attempt(task, attempt)
            except SandboxError as e:
                self.stats.infra_failures += 1
                await self.store.record_infra_failure(task.domain, task.id, attempts, _short(e))
                log.warning("task %s/%s attempt %d: infrastructure failure: %s", task.domain, task.id, attempts, _short(e))
                if attempts <= self.config.infra_retries:
                    continue
                result = {"score": 0.0, "error": f"infrastructure failure after {attempts} attempts: {_short(e)}",
                          "fault": ENVIRONMENT, "phase": "infrastructure"}
            except TimeoutError:
                result = {"score": 0.0, "error": f"task timeout after {self.config.task_timeout:g} s",
                          "fault": AGENT, "phase": "timeout"}
            except RunStopped:
                raise
            except Exception as e:  # a bug outside the runner's phases (pool, env): this task only
                if (why := run_fatal(e, self._run_dir)) is not None:
                    raise RunStopped(why) from e
                log.exception("task %s/%s: attempt failed", task.domain, task.id)
                result = task_failure(e, "attempt")
            result.update(attempts=attempts, seconds=round(time.monotonic() - started, 3))
            await self._finish(task, result)
            return

    async def _attempt(self, task: Any, attempt: Any) -> dict[str, Any]:
        # The deadline covers everything the runner waits for (sandbox, setup, agent, evaluator, or
        # a cluster worker and its stream); a runner needs no timeout of its own for the attempt.
        with anyio.fail_after(self.config.task_timeout):
            return await self.runner.run(task, attempt)

    async def _finish(self, task: Any, result: dict[str, Any]) -> None:
        result.setdefault("error", None)
        result.setdefault("instruction", getattr(task, "instruction", None))
        # Shielded: a task whose result is known must be recorded even while the run is cancelled.
        with anyio.CancelScope(shield=True):
            await self.store.record_result(task.domain, task.id, result)
            discard = getattr(self._ctx, "discard", None)
            if discard is not None and float(result["score"]) >= 1.0 and not result.get("error"):
                # A solved task's fetched files answer no question; a failed one keeps them for
                # debugging (`<run>/.work/<domain>/<task>/`).
                await discard(task)
        self.stats.done += 1
        self.stats.score_sum += float(result["score"])
        if result.get("error"):
            self.stats.errors += 1
        log.info("task %s/%s: score %.2f%s", task.domain, task.id, result["score"],
                 f" ({result['error']})" if result.get("error") else "")
