"""summary.json: computed from the result.json records (the source of truth) and session spans."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from results.layout import TaskKey


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _rate(scores: list[float]) -> float:
    return sum(scores) / len(scores) if scores else 0.0


def summarize(
    results: Mapping[TaskKey, Mapping[str, Any]],
    *,
    planned: Iterable[TaskKey] | None,
    wall_s: float,
    infra_failures: int = 0,
    sessions: int = 0,
) -> dict[str, Any]:
    """The run's summary.

    `success_rate` is the mean score over finished tasks, as OSWorld reports it (partial scores
    count); `solved` counts tasks with score >= 1; `eval_errors` counts tasks whose evaluator failed;
    `faults` counts failed tasks by who is at fault (task, environment, agent, harness). `total` is the planned tasks plus any finished
    task outside the plan.
    """
    tasks = set(planned or ()) | set(results)
    by_domain: dict[str, dict[str, Any]] = {}
    for domain, _ in sorted(tasks):
        by_domain.setdefault(domain, {"total": 0, "done": 0, "solved": 0, "success_rate": 0.0, "_s": []})
        by_domain[domain]["total"] += 1
    scores: list[float] = []
    prompt = completion = 0
    cost = 0.0
    errors = eval_errors = 0
    faults: dict[str, int] = {}
    for (domain, _), record in sorted(results.items()):
        score = _num(record.get("score"))
        scores.append(score)
        entry = by_domain[domain]
        entry["done"] += 1
        entry["solved"] += score >= 1.0
        entry["_s"].append(score)
        tokens = record.get("tokens")
        if isinstance(tokens, Mapping):
            prompt += int(_num(tokens.get("prompt")))
            completion += int(_num(tokens.get("completion")))
        cost += _num(record.get("cost_usd"))
        errors += bool(record.get("error"))
        eval_errors += bool(record.get("eval_error"))
        if isinstance(fault := record.get("fault"), str):
            faults[fault] = faults.get(fault, 0) + 1
    for entry in by_domain.values():
        entry["success_rate"] = _rate(entry.pop("_s"))
    done = len(scores)
    return {
        "total": len(tasks),
        "done": done,
        "success_rate": _rate(scores),
        "solved": sum(s >= 1.0 for s in scores),
        "by_domain": by_domain,
        "tokens": {"prompt": prompt, "completion": completion},
        "cost_usd": round(cost, 6),
        "wall_s": round(wall_s, 3),
        "tasks_per_hour": round(done * 3600.0 / wall_s, 3) if wall_s > 0 else 0.0,
        "errors": errors,
        "eval_errors": eval_errors,  # tasks whose evaluator failed (our bug): their 0 says nothing
        "faults": dict(sorted(faults.items())),  # failed tasks by who is at fault (harness/base/faults.py)
        "infra_failures": infra_failures,
        "sessions": sessions,
        "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
