"""CallMeter: every LLM call of one task goes through it, so budgets and the log see all of them.

It counts calls by purpose (policy, value, debate, judge, reflection, embed), tokens and cost.
Two totals matter: what this attempt *paid* (cached replays cost nothing; that goes into the
Outcome) and what the search *used* (cached replays included, priced as when paid). Budgets use
the second, so a resumed task makes the same decisions as the original run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CallMeter:
    calls: Counter[str] = field(default_factory=Counter)
    cached_calls: int = 0
    prompt_tokens: int = 0  # paid by this attempt
    completion_tokens: int = 0
    cost_usd: float = 0.0
    used_tokens: int = 0  # paid or replayed: what the budget counts
    used_cost_usd: float = 0.0

    async def complete(self, llm: Any, messages: Sequence[dict[str, Any]], *, purpose: str, **kwargs: Any) -> Any:
        completion = await llm.complete(messages, **kwargs)
        self.record(llm, completion, purpose)
        return completion

    def record(self, llm: Any, completion: Any, purpose: str) -> None:
        self.calls[purpose] += 1
        usage = completion.usage
        self.used_tokens += usage.total_tokens
        if completion.cached:
            self.cached_calls += 1
            self.used_cost_usd += _priced(llm, completion)
        else:
            self.prompt_tokens += usage.prompt_tokens
            self.completion_tokens += usage.completion_tokens
            self.cost_usd += completion.cost_usd
            self.used_cost_usd += completion.cost_usd

    def restore_used(self, tokens: int, cost_usd: float) -> None:
        """Carry the budget use of an earlier attempt's logged iterations."""
        self.used_tokens += int(tokens)
        self.used_cost_usd += float(cost_usd)

    def snapshot(self) -> dict[str, Any]:
        return {"calls": dict(self.calls), "cached_calls": self.cached_calls, "used_tokens": self.used_tokens,
                "used_cost_usd": round(self.used_cost_usd, 6), "paid_cost_usd": round(self.cost_usd, 6)}


def _priced(llm: Any, completion: Any) -> float:
    """What a replayed completion cost when it was paid (0 when the client has no price table)."""
    prices = getattr(getattr(llm, "accountant", None), "prices", None)
    if prices is None:
        return 0.0
    try:
        return float(prices.cost(completion.model, completion.usage))
    except Exception:  # an unknown model has no price: budgets then count tokens only
        return 0.0
