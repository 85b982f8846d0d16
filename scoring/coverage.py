"""What of a task this build cannot run, and whether it is ready: decided from the task file, the
image's app inventory and the host's download cache, before any sandbox (`scoring/probe.py`
then checks ready tasks in a real sandbox).

- `unsupported_features`: steps without a handler, getters and metrics (or their options)
  without an implementation. The engine skips tasks that have any.
- `assess`: ready "offline" (implemented and every app present), "network" (the same, but the
  task needs the internet) or False, with one-line reasons.
- `check_suite`: `assess` over a suite folder, one row per task (`tasks check`, `validate`);
  `probe_rows` then runs the offline-ready ones' setup and evaluator commands in sandboxes.

`proxy: true` is not a blocker: OSWorld ignores the flag unless a proxy is configured, and so do
we (`run --proxy URL`).

It lives in `scoring` because it needs both layers below the run: the step handlers of
`benchmarks` and the evaluator registry of `scoring`.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio

from benchmarks.downloads import HostFiles
from benchmarks.loader import load_suite
from benchmarks.schema import Task
from benchmarks.setup_steps import STEP_HANDLERS
from benchmarks.task_apps import apps_of
from benchmarks.task_network import network_needs
from scoring.app_inventory import AppInventory, load_inventory
from scoring.registry import check_getter, check_metric

log = logging.getLogger("scoring.coverage")
Ready = Literal["offline", "network", False]


def unsupported_features(task: Task) -> list[str]:
    """Everything in `task` this build cannot run, e.g. `setup:chrome_open_tabs`,
    `getter:active_tab_html_parse`, `metric:compare_pptx_files`, `metric:compare_table[chart]`.
    Empty list: the task can run. Decided from the task file alone, before any sandbox."""
    out: list[str] = []
    for s in [*task.config, *task.evaluator.postconfig]:
        if s.type not in STEP_HANDLERS:
            out.append(f"setup:{s.type}")
    for spec in task.evaluator.metric_specs():
        if spec.func == "infeasible":
            if isinstance(task.evaluator.func, list):
                out.append("metric:infeasible[inside a list]")
            continue
        out.extend(check_metric(spec.func, spec.options))
        for g in (spec.result, spec.expected):
            if g is not None:
                out.extend(check_getter(g))
    return list(dict.fromkeys(out))


@dataclass
class Verdict:
    ready: Ready
    reasons: list[str] = field(default_factory=list)  # why not offline-ready, one line each
    unsupported: list[str] = field(default_factory=list)
    apps: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"ready": self.ready, "reasons": self.reasons, "unsupported": self.unsupported, "apps": self.apps}


def assess(task: Task, inventory: AppInventory, is_cached: Callable[[str], bool]) -> Verdict:
    """Ready offline, ready with the network, or not ready (with reasons) for `task`."""
    blocked = unsupported_features(task)
    use = apps_of(task)
    reasons = [f"unsupported: {b}" for b in blocked]
    reasons += [f"app: unknown app {name!r} in related_apps" for name in use.unknown]
    reasons += [inventory.missing_reason(key) for key in use.apps if not inventory.has(key)]
    apps = [a or "desktop" for a in use.apps]
    if reasons:
        return Verdict(ready=False, reasons=reasons, unsupported=blocked, apps=apps)
    needs = network_needs(task, is_cached)
    return Verdict(ready="network" if needs else "offline", reasons=needs, unsupported=[], apps=apps)


def check_suite(path: str | Path, *, test_list: str | Path | None = None, domains: list[str] | None = None,
                inventory: Any = None) -> list[dict[str, Any]]:
    """Per task: {id, domain, ready, reasons, unsupported, apps} (malformed files: `error: ...`)."""
    inventory = inventory or load_inventory()
    cache = HostFiles()
    suite = load_suite(path, test_list=test_list, domains=domains, errors="collect")
    rows: list[dict[str, Any]] = []
    for task in suite.tasks:
        try:
            verdict = assess(task, inventory, lambda url: cache.cache_path(url).is_file()).as_dict()
        except Exception as e:  # a task that trips the checker is reported, never fatal
            error = f"error: {type(e).__name__}: {e}"
            verdict = {"ready": False, "reasons": [error], "unsupported": [error], "apps": []}
        rows.append({"id": task.id, "domain": task.domain, **verdict})
    for issue in suite.errors:
        error = f"error: {issue.message}"
        rows.append({"id": issue.id, "domain": issue.domain, "ready": False, "reasons": [error],
                     "unsupported": [error], "apps": []})
    order = {d: i for i, d in enumerate(suite.domains())}
    rows.sort(key=lambda r: order.get(r["domain"], len(order)))
    return rows


async def probe_rows(path: str | Path, rows: list[dict[str, Any]], *, test_list: str | Path | None,
                     domains: list[str] | None, concurrency: int, say: Callable[[str], None] = log.info) -> None:
    """Probe every offline-ready row in a fresh sandbox; add `probe` and demote on failure.
    `say` gets one progress line per probed task."""
    from scoring.probe import probe_context, probe_pool, probe_tasks

    suite = await anyio.to_thread.run_sync(functools.partial(load_suite, path, test_list=test_list, domains=domains,
                                                             errors="collect"))
    # OSWorld reuses some ids across domains: a row is its (domain, id).
    wanted = {(r["domain"], r["id"]) for r in rows if r["ready"] == "offline"}
    tasks = [t for t in suite.tasks if (t.domain, t.id) in wanted]
    for r in rows:
        if r["ready"] == "network":
            r["probe"] = {"ok": None, "reasons": ["probe: skipped, the task needs the network"]}
    if not tasks:
        return
    by_key = {(r["domain"], r["id"]): r for r in rows}
    done = Counter[str]()

    def record(task: Any, outcome: Any) -> None:
        row = by_key[(task.domain, task.id)]
        row["probe"] = outcome.as_dict()
        if outcome.ok is False:
            row["ready"] = False
            row["reasons"] = [*row["reasons"], *outcome.reasons]
        done["ok" if outcome.ok else "demoted" if outcome.ok is False else "sandbox failed"] += 1
        say(f"probe {sum(done.values())}/{len(tasks)} {task.domain}/{task.id}: "
            f"{'ok' if outcome.ok else '; '.join(outcome.reasons)} ({outcome.seconds:.1f} s)")

    with tempfile.TemporaryDirectory(prefix="cua-probe-") as work:
        async with probe_pool(concurrency, purpose="probe") as pool:
            await probe_tasks(tasks, pool, probe_context(Path(work)), concurrency=concurrency, on_result=record)
