"""`python -m harness bench engine`: how fast the harness itself is, and which limit binds.

It writes a suite of simulated tasks (benchmarks/sim_suite.py), starts `llm-sim` in a separate
process on loopback (its CPU is not the harness's) with `solver_policy` as the model, and runs the
real engine (`harness.runner.execute_run`: run store, sandbox pool, agent, LLM client, scoring)
in this process, while sampling event-loop lag. The policy reads the simulated app's state from
the accessibility table in the request and answers with the scenario's next correct action, so
every task of `chain-K` finishes in exactly K+1 model calls and the numbers measure the harness,
not a model. Formulas and measured results: docs/design/performance.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from harness.base import aio
from harness.base.errors import ConfigError
from harness.bench.engine_common import (
    METRIC_KEYS,
    EngineBenchOptions,
    compute_bound,
    finish_bench,
    measured_run,
    run_metrics,
    sim_workload,
)
from harness.bench.engine_docker import run_docker_bench
from harness.config import make_config, parse_agent_options
from vm import sim


async def run_engine_bench(opts: EngineBenchOptions) -> dict[str, Any]:
    """Run the benchmark; returns the metrics (see `METRIC_KEYS`)."""
    if opts.provider == "docker":  # real sandboxes and the built-in suite: benchmarks/engine_bench_docker.py
        return await run_docker_bench(opts)
    async with sim_workload(opts, fresh=("run",)) as w:
        work, url, proc, max_in_flight = w.work, w.url, w.proc, w.max_in_flight
        run_dir = work / "run"
        config = make_config({
            "benchmark": str(w.suite), "agent": opts.agent, "model": "sim-model", "provider": opts.provider,
            "concurrency": opts.sessions, "sandboxes": opts.sandboxes, "agent_options": opts.agent_options or {},
            "run_dir": run_dir, "sim_latency_ms": opts.env_latency_ms,
            "providers_file": str(w.providers_file), "quiet": not opts.progress,
            "max_steps": max(15, opts.steps + 3), "screen_width": opts.screen[0], "screen_height": opts.screen[1],
        }, source="bench engine")
        sim.COUNTERS.reset()
        code, measured = await measured_run(config, tasks=opts.tasks, sim_pid=proc.pid, url=url)
    llm_calls = int(measured.server.get("status", {}).get("200", 0))
    bound = compute_bound(sessions=opts.sessions, tasks_done=len(measured.results), llm_calls=llm_calls,
                          env_latency_s=sim.COUNTERS.task_latency_s, llm_latency_s=opts.llm_latency_ms / 1000,
                          rpm=opts.rpm, max_in_flight=max_in_flight)
    out = run_metrics(measured, bound_tasks_per_s=bound["bound_tasks_per_s"])
    out.update({
        "binding_limit": bound["binding_limit"],
        "bound_tasks_per_hour": round(bound["bound_tasks_per_s"] * 3600, 1) if bound["bound_tasks_per_s"] else None,
        "bounds_tasks_per_hour": {k: (round(v * 3600, 1) if v else None) for k, v in bound["bounds"].items()},
        "task_critical_path_s": round(bound.get("task_critical_path_s") or 0.0, 3),
        "sim_env_ops": {"starts": sim.COUNTERS.starts, "observes": sim.COUNTERS.observes,
                        "executes": sim.COUNTERS.executes, "loaded": sim.COUNTERS.loaded,
                        "latency_s": round(sim.COUNTERS.latency_s, 3),
                        "task_latency_s": round(sim.COUNTERS.task_latency_s, 3)},
    })
    return await finish_bench(out, opts, work=work, code=code, max_in_flight=max_in_flight)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("engine", help="the run engine at scale: sim (or Docker) sandboxes + llm-sim (separate process)",
                       description=__doc__.splitlines()[0],
                       epilog="--provider docker runs the first --tasks tasks of --benchmark (default: desktop-basics, "
                       "domains os and text_editor, whose reference solutions are 1-5 terminal/mousepad actions) "
                       "on real desktop sandboxes; llm-sim plays the tasks' solutions in every role "
                       "(benchmarks/desktop_model.py). utilization is null there: real sandbox times are not a "
                       "configured latency, so no bound is known; the output counts live containers instead.")
    p.add_argument("--sessions", type=int, default=8, help="concurrent tasks (= sandboxes)")
    p.add_argument("--tasks", type=int, default=16, help="tasks to run (sim: generated; docker: the suite's first N)")
    p.add_argument("--agent", default="prompt", help="prompt | rmcts (any registered model agent)")
    p.add_argument("--provider", choices=["sim", "docker"], default="sim",
                   help="sim: simulated sandboxes and generated chain tasks; docker: real sandboxes, built-in suite")
    p.add_argument("--benchmark", default="desktop-basics", help="docker: suite name or folder (default desktop-basics)")
    p.add_argument("--domain", action="append", default=None, metavar="NAME",
                   help="docker: only these domains (repeatable; default os and text_editor: short solutions; "
                   "'all' for every domain)")
    p.add_argument("--llm-latency-ms", type=float, default=0.0, help="llm-sim reply latency (fixed)")
    p.add_argument("--env-latency-ms", type=float, default=0.0, help="sim sandbox latency of each start/observe/execute")
    p.add_argument("--rpm", type=int, default=None, help="requests/min limit of llm-sim and of our client")
    p.add_argument("--steps", type=int, default=3, help="correct actions per simulated task (K of chain-K)")
    p.add_argument("--max-in-flight", type=int, default=None, help="LLM client in-flight cap (default: sessions)")
    p.add_argument("--sandboxes", type=int, default=None, help="pool capacity (default: sessions; tree search "
                   "keeps tree states in the extra ones)")
    p.add_argument("--agent-option", action="append", default=[], metavar="KEY=VALUE",
                   help="agent knob, as for `run` (e.g. iterations=10 for rmcts)")
    p.add_argument("--policy", default=None, help="llm-sim policy module:function (default: by agent)")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="put suite, run directory and llm-sim log here (default: a new folder in runs/)")
    p.add_argument("--clean", action="store_true",
                   help="remove the work folder afterwards (kept by default: ext4 without a journal skips "
                   "recently deleted inodes one by one, so deleting 10k files slows the next minutes' creates)")
    p.add_argument("--ray", metavar="TARGET", default=None,
                   help="sim only: run the same workload on one machine and through `run --ray TARGET` (HOST:PORT, "
                   "auto or local:N) with the same total sessions; prints both and their ratio")
    p.add_argument("--progress", action="store_true", help="show the run's progress display (measured too)")
    p.add_argument("--json", dest="json_out", type=Path, default=None, help="write the metrics here")
    p.set_defaults(func=_cli)


def _table(result: dict[str, Any]) -> str:
    rows = [*METRIC_KEYS, "binding_limit", "bound_tasks_per_hour", "wall_s", "tasks_done", "steps", "llm_calls",
            "loop_lag_ms_p50", "loop_lag_ms_max", "cpu_s"]
    rows += [k for k in ("host_cpu_busy", "containers_peak", "containers_left", "search") if k in result]  # docker
    return "\n".join(f"{k:24} {result.get(k)}" for k in rows)


def _cli(args: argparse.Namespace) -> int:


    if args.sessions < 1 or args.tasks < 1 or not 1 <= args.steps <= 100:
        raise ConfigError("bench engine: --sessions and --tasks must be >= 1, --steps in 1..100")
    domains = None
    if args.domain:
        domains = () if "all" in args.domain else tuple(d for ds in args.domain for d in ds.split(",") if d)
    if args.provider == "sim" and (args.domain or args.benchmark != "desktop-basics"):
        raise ConfigError("bench engine: --benchmark and --domain apply to --provider docker only")

    opts = EngineBenchOptions(
        sessions=args.sessions, tasks=args.tasks, agent=args.agent, provider=args.provider,
        llm_latency_ms=args.llm_latency_ms, env_latency_ms=args.env_latency_ms, rpm=args.rpm, steps=args.steps,
        max_in_flight=args.max_in_flight, work_dir=args.work_dir, progress=args.progress,
        sandboxes=args.sandboxes, agent_options=parse_agent_options(args.agent_option), policy=args.policy,
        keep=not args.clean, benchmark=args.benchmark, domains=domains,
    )
    if args.ray:
        if args.provider != "sim":
            raise ConfigError("bench engine --ray: only with --provider sim")
        from harness.bench.engine_ray import run_ray_compare, table

        compared = aio.run(run_ray_compare, opts, args.ray)
        print(table(compared))
        if args.json_out:
            args.json_out.write_bytes(orjson.dumps(compared, option=orjson.OPT_INDENT_2) + b"\n")
        return 0 if compared["failures"] == 0 and compared["limit_held"] else 1
    result = aio.run(run_engine_bench, opts)
    print(_table(result))
    if opts.keep:
        print(f"work folder kept: {result['work_dir']}", file=sys.stderr)
    if args.json_out:
        args.json_out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
        print(f"wrote {args.json_out}", file=sys.stderr)
    return 0 if result["failures"] == 0 else 1
