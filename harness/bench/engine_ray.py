"""`bench engine --ray TARGET`: the same sim workload on one machine and on a Ray cluster.

Both runs use the same suite, the same llm-sim process (separate, on loopback), the same total
sessions and the same limits; the cluster run goes through `harness run --ray` unchanged. Tasks
per hour are measured between the run's `tasks_planned` and its last `task_finished` journal line,
so neither side pays for start-up (Ray nodes, workers, pools) in the figure; the cluster's start-up
is reported apart. Scheduling overhead = per attempt, the head's time minus the worker's own
(dispatch + streaming), from the run's `cluster` journal line. "limit held" = llm-sim answered no
request with 429 and its busiest window stayed within --rpm. Results: docs/design/cluster.md.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import anyio
import orjson

from harness.bench.engine_common import (
    EngineBenchOptions,
    sim_stats,
    sim_workload,
)
from harness.config import make_config
from harness.runner import execute_run
from results.resume import scan_results


def _journal(run_dir: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (run_dir / "events.jsonl").read_bytes().splitlines() if line.strip()]


def _server_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    ok = int(after.get("status", {}).get("200", 0)) - int(before.get("status", {}).get("200", 0))
    limited = int(after.get("rate_limited", 0)) - int(before.get("rate_limited", 0))
    return {"llm_calls": ok, "llm_429": limited}


async def _one(opts: EngineBenchOptions, *, suite: Path, run_dir: Path, providers_file: Path, url: str,
               ray: str | None) -> dict[str, Any]:
    config = make_config({
        "benchmark": str(suite), "agent": opts.agent, "model": "sim-model", "provider": "sim",
        "concurrency": opts.sessions, "agent_options": opts.agent_options or {}, "run_dir": run_dir,
        "sim_latency_ms": opts.env_latency_ms, "providers_file": str(providers_file), "quiet": not opts.progress,
        "max_steps": max(15, opts.steps + 3), "ray": ray,
    }, source="bench engine")
    before = await sim_stats(url)
    t0 = time.perf_counter()
    code = await execute_run(config, show_summary=False)
    total = time.perf_counter() - t0
    server = await sim_stats(url)
    journal = await anyio.to_thread.run_sync(_journal, run_dir)
    planned = next(e["ts"] for e in journal if e["event"] == "tasks_planned")
    started = next(e["ts"] for e in journal if e["event"] == "run_started")
    last = max(e["ts"] for e in journal if e["event"] == "task_finished")
    results = await anyio.to_thread.run_sync(scan_results, run_dir)
    solved = sum(1 for r in results.values() if float(r.get("score") or 0) >= 1 and not r.get("error"))
    wall = last - planned
    cluster = next((e for e in journal if e["event"] == "cluster"), None)
    out = {
        "exit_code": code, "tasks_done": len(results), "failures": opts.tasks - solved,
        "tasks_per_hour": round(len(results) / wall * 3600, 1) if wall > 0 else None,
        "wall_s": round(wall, 3), "startup_s": round(planned - started, 3), "total_s": round(total, 3),
        "infra_failures": sum(1 for e in journal if e["event"] == "infra_failure"),
        **_server_delta(before, server),
    }
    if cluster is not None:
        out["workers"] = cluster.get("workers")
        out["overhead"] = cluster.get("overhead")
    return out


async def run_ray_compare(opts: EngineBenchOptions, target: str) -> dict[str, Any]:
    async with sim_workload(opts, fresh=("local", "ray")) as w:
        work = w.work
        one = functools.partial(_one, opts, suite=w.suite, providers_file=w.providers_file, url=w.url)
        local = await one(run_dir=work / "local", ray=None)
        cluster = await one(run_dir=work / "ray", ray=target)
        server = await sim_stats(w.url)
    ratio = (cluster["tasks_per_hour"] / local["tasks_per_hour"]
             if cluster.get("tasks_per_hour") and local.get("tasks_per_hour") else None)
    window_max = server.get("max_in_window_exact")
    limit_held = server.get("rate_limited", 0) == 0 and (not opts.rpm or (window_max or 0) <= opts.rpm)
    return {
        "local": local, "cluster": cluster, "ratio": round(ratio, 3) if ratio else None,
        "failures": local["failures"] + cluster["failures"], "limit_held": limit_held, "rpm": opts.rpm,
        "llm_max_in_window": window_max, "sessions": opts.sessions, "tasks": opts.tasks, "ray": target,
        "work_dir": str(work),
    }


def table(result: dict[str, Any]) -> str:
    rows = []
    for key in ("tasks_per_hour", "wall_s", "startup_s", "failures", "infra_failures", "llm_calls", "llm_429"):
        rows.append(f"{key:18} {result['local'].get(key)!s:>12} {result['cluster'].get(key)!s:>12}")
    over = result["cluster"].get("overhead") or {}
    return "\n".join([
        f"{'':18} {'one machine':>12} {'cluster':>12}", *rows,
        f"cluster/local tasks/hour ratio: {result['ratio']}",
        f"scheduling overhead per attempt (head - worker): mean {over.get('mean_s')} s, p50 {over.get('p50_s')} s, "
        f"p95 {over.get('p95_s')} s over {over.get('attempts')} attempts",
        f"workers: {result['cluster'].get('workers')}   limit held: {result['limit_held']} (rpm {result['rpm']}, "
        f"busiest window {result['llm_max_in_window']})",
    ])
