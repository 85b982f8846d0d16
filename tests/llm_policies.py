"""Scripted llm-sim policies for tests that run the harness in a subprocess (`--policy tests.llm_policies:NAME`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from benchmarks.loader import load_suite, resolve_benchmark


@lru_cache(maxsize=1)
def _solutions() -> dict[str, list[Any]]:
    suite = load_suite(resolve_benchmark("desktop-basics"))
    return {task.instruction: list(task.solution or []) for task in suite.tasks}


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


def desktop_basics_solver(request: dict[str, Any]) -> str:
    """Answers with the built-in task's reference solution, one action per call.

    Stateless: the task is found by its instruction in the prompt, the step by the number of
    earlier assistant turns in the (last-3) history, so it serves solutions of up to 4 actions.
    """
    messages = request["messages"]
    prompt = "\n".join(_text(m) for m in messages if m.get("role") != "assistant")
    solution = next((sol for instr, sol in _solutions().items() if instr in prompt), None)
    if solution is None:
        return "I cannot tell which task this is.\n```FAIL```"
    step = sum(1 for m in messages if m.get("role") == "assistant")
    action = solution[min(step, len(solution) - 1)]
    if isinstance(action, str) and action.strip().upper() in ("DONE", "FAIL", "WAIT"):
        return f"Step {step + 1}: nothing left to do.\n```{action.strip().upper()}```"
    return f"Step {step + 1} of the plan.\n```python\n{action}\n```"
