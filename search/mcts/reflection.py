"""Contrastive reflection at task end (ExACT): learn from the steps the search misjudged most.

For the executed trajectory, each step has Q(s, a) and the value of the state it reached; the
last step's value is replaced by +1 / -1 (the task's outcome: the evaluator's score when allowed,
else mean(Q) > 0.7). A step's surprise is |V_next - Q| (+ |Q| in the OSWorld config). The most
surprising steps, up to `max_reflections` while surprise >= threshold, each get two calls: "what
do you expect after this action?", then, shown what happened and the outcome, "is this what you
expected? ...". Reflections of different steps run concurrently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from search.mcts import prompts as P
from search.mcts.memory import Reflection, now
from search.mcts.tree import Node


@dataclass
class StepStats:
    q: float
    visits: int
    prior: float
    v_next: float


def surprises(steps: Sequence[StepStats], success: bool, *, plus_abs_q: bool) -> list[float]:
    """|V_next - Q| (+|Q|) per step, with the last step's V_next replaced by the outcome (+1/-1)."""
    out = []
    for i, s in enumerate(steps):
        v = (1.0 if success else -1.0) if i == len(steps) - 1 else s.v_next
        out.append(abs(v - s.q) + (abs(s.q) if plus_abs_q else 0.0))
    return out


def most_surprising(values: Sequence[float], *, threshold: float, limit: int) -> list[int]:
    """Indices of the most surprising steps, most surprising first, while >= threshold, at most `limit`."""
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    return [i for i in order if values[i] >= threshold][:limit]


def estimated_success(steps: Sequence[StepStats], q_floor: float) -> bool:
    return bool(steps) and sum(s.q for s in steps) / len(steps) > q_floor


def _code(actions: Sequence[Any]) -> str:
    return "\n".join(a if isinstance(a, str) else str(a) for a in actions)


def _observation(prepared: Any, *, images: bool, detail: str, label: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": label}]
    if images and prepared is not None and prepared.image_b64:
        parts.append({"type": "image_url",
                      "image_url": {"url": prepared.data_url(), "detail": detail}})
    if prepared is not None and prepared.table:
        parts.append({"type": "text", "text": f"Accessibility tree:\n{prepared.table}"})
    return parts


async def reflect(path: Sequence[Node], *, instruction: str, task_id: str, success: bool, options: Any, llm: Any,
                  meter: Any) -> list[Reflection]:
    """Reflections for the most surprising steps of `path` (the trajectory's nodes, root excluded)."""
    if not path or options.max_reflections <= 0:
        return []
    stats = [StepStats(n.q, n.visits, n.prior, n.value if n.value is not None else 0.0) for n in path]
    values = surprises(stats, success, plus_abs_q=options.surprise_plus_abs_q)
    chosen = most_surprising(values, threshold=options.surprise_threshold, limit=options.max_reflections)
    images = options.observation_type != "a11y_tree"
    outcome = "completed the task in the end" if success else "did not complete the task in the end"
    made: dict[int, Reflection] = {}

    async def one(i: int) -> None:
        node = path[i]
        before = node.parent.obs if node.parent is not None else None
        user = [{"type": "text", "text": f"TASK: {instruction}"},
                *_observation(before, images=images, detail=options.image_detail, label="STATE:"),
                {"type": "text", "text": f"ACTION:\n```python\n{_code(node.actions)}\n```"},
                {"type": "text", "text": P.EXPECT_ASK}]
        messages: list[dict[str, Any]] = [{"role": "system", "content": [{"type": "text", "text": P.REFLECT_SYSTEM}]},
                                          {"role": "user", "content": user}]
        kwargs = dict(model=options.model, n=1, temperature=options.reflection_temperature, max_tokens=options.reflection_max_tokens,
                      task_id=task_id)
        expected = await meter.complete(llm, messages, purpose="reflection", **kwargs)
        messages += [{"role": "assistant", "content": [{"type": "text", "text": expected.text}]},
                     {"role": "user", "content": [
                         *_observation(node.obs, images=images, detail=options.image_detail, label="STATE AFTER THE ACTION:"),
                         {"type": "text", "text": P.REFLECT_ASK.format(outcome=outcome)}]}]
        lesson = await meter.complete(llm, messages, purpose="reflection", **kwargs)
        made[i] = Reflection(
            id=0, created_at=0.0, task_id=task_id, instruction=instruction,
            state_text=node.parent.a11y_text if node.parent is not None else "", action=_code(node.actions),
            next_state_text=node.a11y_text, reflection=lesson.text.strip(), success=success, surprise=values[i])

    async with anyio.create_task_group() as tg:
        for i in chosen:
            tg.start_soon(one, i)
    stamp = now()
    out = [made[i] for i in chosen]
    for r in out:
        r.created_at = stamp
    return out
