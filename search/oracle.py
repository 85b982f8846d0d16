"""Agents that need no model: `oracle` replays a task's reference solution, `noop` does nothing.

They prove the plumbing (sandboxes, setup, evaluators, run store) before any LLM is involved.
"""

from __future__ import annotations

from typing import Any

from search.agent import Outcome, TaskEnv, register_agent
from vm.actions import is_special


class OracleAgent:
    name = "oracle"

    async def solve(self, task: Any, env: TaskEnv) -> Outcome:
        solution = getattr(task, "solution", None)
        if not solution:
            return Outcome(error=f"task {task.id}: no reference solution (field 'solution')")
        outcome = Outcome()
        for action in solution:
            await env.step(action, response="reference solution")
            outcome.actions.append(action)
            outcome.steps += 1
            if is_special(action) and str(action).upper() in ("DONE", "FAIL"):
                break
        return outcome


class NoopAgent:
    name = "noop"

    async def solve(self, task: Any, env: TaskEnv) -> Outcome:
        return Outcome()


@register_agent("oracle", "replays the task's reference solution (extension field 'solution')")
def make_oracle(options: dict[str, Any]) -> OracleAgent:
    return OracleAgent()


@register_agent("noop", "takes no action (an evaluator that passes it does not discriminate)")
def make_noop(options: dict[str, Any]) -> NoopAgent:
    return NoopAgent()


class DoneAgent:
    name = "done"

    async def solve(self, task: Any, env: TaskEnv) -> Outcome:
        await env.step("DONE", response="claims the task is done without acting")
        return Outcome(actions=["DONE"], steps=1)


@register_agent("done", "says DONE at once (an infeasible task must score 0 with it)")
def make_done(options: dict[str, Any]) -> DoneAgent:
    return DoneAgent()
