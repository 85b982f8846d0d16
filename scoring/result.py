"""The outcome of one evaluation: a score in [0, 1] plus what each metric saw, for reports."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.base.faults import ENVIRONMENT, HARNESS


@dataclass
class MetricDetail:
    index: int
    func: str
    score: float | None  # None: not run (an earlier metric decided the and/or outcome)
    result_getter: str | None = None
    expected_getter: str | None = None
    result_preview: str | None = None  # short text of what the result getter returned
    note: str = ""
    error: str | None = None  # the agent's input was unreadable (a plain 0; kept for the report)
    eval_error: str | None = None  # our getter/metric failed: an evaluation error, not a task failure
    eval_fault: str | None = None  # who: "harness" (our code) or "environment" (the host), harness/base/faults.py


@dataclass
class EvalResult:
    score: float
    conj: str = "and"
    reason: str = ""
    metrics: list[MetricDetail] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what did not stop the evaluation (a postconfig window gone)

    @property
    def details(self) -> list[dict[str, Any]]:
        """JSON-ready per-metric details (the run store writes these)."""
        return [asdict(m) for m in self.metrics]

    @property
    def eval_error(self) -> str | None:
        """The evaluation errors of this result's metrics, joined; None when the evaluator worked."""
        errors = [f"metric {m.index} ({m.func}): {m.eval_error}" for m in self.metrics if m.eval_error]
        return "; ".join(errors)[:1000] if errors else None

    @property
    def eval_fault(self) -> str | None:
        """Who is at fault for the evaluation errors: the host ("environment") only when every one
        was the host's, else our code ("harness"); None when the evaluator worked."""
        faults = {m.eval_fault or HARNESS for m in self.metrics if m.eval_error}
        if not faults:
            return None
        return ENVIRONMENT if faults == {ENVIRONMENT} else HARNESS

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "conj": self.conj, "reason": self.reason, "metrics": self.details,
                "eval_error": self.eval_error, "notes": self.notes}


def as_score(value: Any) -> float:
    """A metric's return value as a float in [0, 1] (bools and ints too; NaN and None are 0)."""
    if value is None:
        return 0.0
    try:
        x = float(value)
    except (TypeError, ValueError):
        return 0.0
    if math.isnan(x):
        return 0.0
    return min(1.0, max(0.0, x))


def preview(value: Any, limit: int = 200) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
