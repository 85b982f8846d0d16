"""Value functions: how good is the state a node reached? A number in [-1, 1].

- Single-agent debate (ExACT, OSWorld): one request with n samples (T=0.7); each sample reasons
  and ends with "EVALUATION: A-E"; A=1, B=0.5, C=0.2, D=-0.2, E=-1; unparsable samples are dropped;
  no parsable sample -> -1.
- Multi-agent debate (ExACT, VWA): a supporting and an opposing debater (n=1, T=0.1) run
  concurrently; then the judge sees both opinions in both orders, the two requests concurrently,
  n=3 each (T=1.0) -> 6 verdicts "STATUS CODE: A-E"; mean of A=1.0, B=0.7, C=0.5, D=-0.2,
  E=-1.0, an unparsable verdict counts 0.

Both see the task, the last `value_context` (observation, action) pairs of the node's path with
the actions as parsed code, and the node's state. Values are cached per (instruction, action path,
observation hash), so a state reached again (root advance, rebuilt trees) is never paid twice.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from search.mcts import prompts as P
from search.mcts.llm_calls import CallMeter

Message = dict[str, Any]


def single_debate_value(letters: Sequence[str | None]) -> float:
    """Mean of the parsable letters under A=1, B=0.5, C=0.2, D=-0.2, E=-1; none parsable -> -1."""
    scores = [P.SINGLE_SCORES[x] for x in letters if x in P.SINGLE_SCORES]
    return sum(scores) / len(scores) if scores else -1.0


def multi_debate_value(letters: Sequence[str | None]) -> float:
    """Mean over every verdict under A=1, B=0.7, C=0.5, D=-0.2, E=-1; unparsable = 0."""
    if not letters:
        return 0.0
    return sum(P.MULTI_SCORES.get(x or "", 0.0) for x in letters) / len(letters)


@dataclass
class Judgement:
    value: float
    details: dict[str, Any] = field(default_factory=dict)
    cached: bool = False


def obs_hash(image_b64: str | None, table: str | None) -> str:
    h = hashlib.sha256()
    h.update((image_b64 or "").encode())
    h.update(b"\0")
    h.update((table or "").encode())
    return h.hexdigest()[:32]


def _code(actions: Sequence[Any]) -> str:
    return "\n".join(a if isinstance(a, str) else str(a) for a in actions)


def context_content(instruction: str, steps: Sequence[tuple[Any, list[Any]]], current: Any, *,
                    images: bool, detail: str) -> list[dict[str, Any]]:
    """User content: the task, recent (observation, actions) pairs, the current observation.

    `steps` are (PreparedObservation before the step, the step's actions); previous observations
    show their screenshot only, the current one also its accessibility table.
    """
    parts: list[dict[str, Any]] = [{"type": "text", "text": f"TASK: {instruction}"}]

    def image(prepared: Any) -> None:
        if images and prepared is not None and prepared.image_b64:
            parts.append({"type": "image_url",
                          "image_url": {"url": prepared.data_url(), "detail": detail}})

    for i, (prepared, actions) in enumerate(steps, 1):
        parts.append({"type": "text", "text": f"OBSERVATION {i} (before action {i}):"})
        image(prepared)
        parts.append({"type": "text", "text": f"ACTION {i}:\n```python\n{_code(actions)}\n```"})
    parts.append({"type": "text", "text": "CURRENT OBSERVATION (the state to judge):"})
    image(current)
    if current is not None and current.table:
        parts.append({"type": "text", "text": f"Accessibility tree of the current screen:\n{current.table}"})
    return parts


class ValueFunction:
    """Base: the context, the cache and the accounting; subclasses make the calls."""

    kind = "value"

    def __init__(self, llm: Any, meter: CallMeter, *, model: str | None, max_tokens: int, context: int,
                 images: bool, detail: str, cache_size: int = 4096) -> None:
        self.llm = llm
        self.meter = meter
        self.model = model
        self.max_tokens = max_tokens
        self.context = context
        self.images = images
        self.detail = detail
        self._cache: OrderedDict[tuple[str, str, str], Judgement] = OrderedDict()
        self._cache_size = cache_size
        self.wall_s = 0.0  # time spent judging (for the concurrency measurement)
        self.calls_s = 0.0  # sum of the individual calls' times

    def key(self, instruction: str, path_key: str, current: Any) -> tuple[str, str, str]:
        return (instruction, path_key, obs_hash(getattr(current, "image_b64", None), getattr(current, "table", None)))

    async def evaluate(self, instruction: str, path_key: str, steps: Sequence[tuple[Any, list[Any]]], current: Any,
                       *, task_id: str | None) -> Judgement:
        key = self.key(instruction, path_key, current)
        if key in self._cache:
            self._cache.move_to_end(key)
            hit = self._cache[key]
            return Judgement(hit.value, {**hit.details, "from_value_cache": True}, cached=True)
        steps = list(steps)[-self.context:] if self.context else []
        content = context_content(instruction, steps, current, images=self.images, detail=self.detail)
        t0 = time.monotonic()
        judgement = await self._judge(content, task_id)
        wall = time.monotonic() - t0
        self.wall_s += wall
        judgement.details["wall_s"] = round(wall, 4)
        self._cache[key] = judgement
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return judgement

    async def _timed(self, messages: list[Message], *, n: int, temperature: float, max_tokens: int,
                     task_id: str | None, purpose: str) -> tuple[Any, float]:
        t0 = time.monotonic()
        completion = await self.meter.complete(self.llm, messages, model=self.model, n=n, temperature=temperature,
                                               max_tokens=max_tokens, task_id=task_id, purpose=purpose)
        took = time.monotonic() - t0
        self.calls_s += took
        return completion, took

    async def _judge(self, content: list[dict[str, Any]], task_id: str | None) -> Judgement:
        raise NotImplementedError


class SingleDebate(ValueFunction):
    kind = "single_debate"

    def __init__(self, *args: Any, n: int = 10, temperature: float = 0.7, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.n, self.temperature = n, temperature

    async def _judge(self, content: list[dict[str, Any]], task_id: str | None) -> Judgement:
        messages = [{"role": "system", "content": [{"type": "text", "text": P.SINGLE_SYSTEM}]},
                    {"role": "user", "content": [*content, {"type": "text", "text": P.SINGLE_ASK}]}]
        completion, took = await self._timed(messages, n=self.n, temperature=self.temperature,
                                             max_tokens=self.max_tokens, task_id=task_id, purpose="value")
        letters = [P.parse_evaluation(c) for c in completion.choices]
        return Judgement(single_debate_value(letters), {
            "kind": self.kind, "letters": letters, "request": completion.request_hash,
            "replies": [c[-600:] for c in completion.choices], "calls_s": round(took, 4)})


class MultiDebate(ValueFunction):
    kind = "multi_debate"

    def __init__(self, *args: Any, debater_temperature: float = 0.1, debater_max_tokens: int = 256,
                 judge_n: int = 3, judge_temperature: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.debater_temperature = debater_temperature
        self.debater_max_tokens = debater_max_tokens
        self.judge_n = judge_n
        self.judge_temperature = judge_temperature

    async def _judge(self, content: list[dict[str, Any]], task_id: str | None) -> Judgement:
        def debater(ask: str) -> list[Message]:
            return [{"role": "system", "content": [{"type": "text", "text": P.DEBATER_SYSTEM}]},
                    {"role": "user", "content": [*content, {"type": "text", "text": ask}]}]

        said: dict[str, str] = {}
        took: dict[str, float] = {}

        async def debate(side: str, ask: str) -> None:
            completion, took[side] = await self._timed(
                debater(ask), n=1, temperature=self.debater_temperature, max_tokens=self.debater_max_tokens,
                task_id=task_id, purpose=f"debate_{side}")
            said[side] = completion.text

        async with anyio.create_task_group() as tg:
            tg.start_soon(debate, "support", P.SUPPORT_ASK)
            tg.start_soon(debate, "oppose", P.OPPOSE_ASK)

        support, oppose = ("supporting", said["support"]), ("opposing", said["oppose"])
        orders = {"oppose_first": P.opinions(oppose, support), "support_first": P.opinions(support, oppose)}
        verdicts: dict[str, list[str]] = {}

        async def judge(order: str, text: str) -> None:
            messages = [{"role": "system", "content": [{"type": "text", "text": P.JUDGE_SYSTEM}]},
                        {"role": "user", "content": [*content, {"type": "text", "text": text},
                                                     {"type": "text", "text": P.JUDGE_ASK}]}]
            completion, took[order] = await self._timed(
                messages, n=self.judge_n, temperature=self.judge_temperature, max_tokens=self.max_tokens,
                task_id=task_id, purpose="judge")
            verdicts[order] = completion.choices

        async with anyio.create_task_group() as tg:
            for order, text in orders.items():
                tg.start_soon(judge, order, text)

        letters = [P.parse_status(v) for order in orders for v in verdicts[order]]
        return Judgement(multi_debate_value(letters), {
            "kind": self.kind, "letters": letters,
            "debaters": {"support": said["support"][-800:], "oppose": said["oppose"][-800:]},
            "verdicts": {o: [v[-400:] for v in verdicts[o]] for o in orders},
            "calls_s": {k: round(v, 4) for k, v in took.items()}})


def make_value_function(options: Any, llm: Any, meter: CallMeter) -> ValueFunction:
    common = dict(model=options.value_model or options.model, max_tokens=options.value_max_tokens,
                  context=options.value_context, images=options.observation_type != "a11y_tree",
                  detail=options.image_detail)
    if options.value_function == "multi_debate":
        return MultiDebate(llm, meter, debater_temperature=options.debater_temperature,
                           debater_max_tokens=options.debater_max_tokens, judge_n=options.judge_n,
                           judge_temperature=options.judge_temperature, **common)
    return SingleDebate(llm, meter, n=options.single_n, temperature=options.single_temperature, **common)
