"""Measure the tree search on simulated sandboxes with llm-sim playing the model (sim_model.py).

    python -m harness.bench.mcts --agent rmcts --tasks 4 --steps 5 --iterations 30 --no-early-stop \\
        --llm-latency-ms 200 --sim-latency-ms 30 --capacity 8

Reports what docs/design/rmcts.md quotes: HTTP requests per expansion, debate wall time vs the sum
of its calls, replayed actions per iteration, sandboxes per task, seconds per iteration, solved.
Everything runs in this process: the real engine, pool, setup steps, evaluator, run store and
LLM client.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import orjson

from benchmarks.context import RunContext
from benchmarks.loader import load_suite
from benchmarks.sim_suite import sim_task
from harness.base import aio
from harness.base.errors import HarnessError
from harness.config import make_config
from harness.engine import Engine, LocalAttemptRunner
from harness.llm.client import LLMClient
from harness.llm.sim import SimConfig, SimServer
from results.store import RunStore
from scoring.coverage import unsupported_features
from search.agent import make_agent
from search.mcts.sim_model import ChainModel
from vm.pool import SandboxPool
from vm.sim import SimLatency, SimProvider


def write_chain_suite(root: Path, seeds: list[int], *, steps: int = 3, trap: bool = True) -> Path:

    folder = root / "examples" / "sim"
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for i, seed in enumerate(seeds):
        task = sim_task(i + 1, steps=steps, trap=trap, seed=seed)
        (folder / f"{task['id']}.json").write_bytes(orjson.dumps(task, option=orjson.OPT_INDENT_2))
        ids.append(task["id"])
    (root / "test_all.json").write_bytes(orjson.dumps({"sim": ids}))
    return root


def sim_providers(url: str, *, embedding: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"default_model": "sim-model",
                           "endpoints": [{"kind": "openai-compatible", "base_url": url, "models": ["*"]}]}
    if embedding:
        out["embedding_model"] = "sim-embed"
    return out


async def run_sim(suite: Path, run_dir: Path, url: str, agent: str, *, concurrency: int = 1, capacity: int = 4,
                  options: dict[str, Any] | None = None, embedding: bool = True, max_steps: int = 6,
                  observation_type: str = "a11y_tree", sim_latency_s: float = 0.0) -> dict[str, dict[str, Any]]:
    """One in-process run of `agent` over a sim suite; returns {task_id: result.json}. Every sandbox
    must be back in the pool at the end (checked)."""

    loaded = load_suite(suite)
    config = make_config({"benchmark": str(suite), "agent": agent, "provider": "sim", "concurrency": concurrency,
                          "observation_type": observation_type, "max_steps": max_steps, "run_dir": str(run_dir)})
    latency = SimLatency(start=sim_latency_s, observe=sim_latency_s, execute=sim_latency_s)
    async with LLMClient.from_config(sim_providers(url, embedding=embedding),
                                     cache_path=run_dir / "llm_cache.sqlite") as llm:
        store = await RunStore.open(run_dir, config.model_dump(mode="json"), result_keys=[])
        try:
            async with SandboxPool(SimProvider(screen_size=(1280, 720), latency=latency), capacity=capacity) as pool:
                made = make_agent(agent, {"llm": llm, "observation_type": observation_type, "max_steps": max_steps,
                                          **(options or {})})
                ctx = RunContext.for_run(run_dir, screen_size=(1280, 720))
                runner = LocalAttemptRunner(config, pool, made, context=ctx, run_dir=run_dir)
                engine = Engine(config, loaded.tasks, store, runner, unsupported=unsupported_features, discard=ctx.discard)
                await engine.run()
                if pool.stats().busy:
                    raise HarnessError(f"{pool.stats().busy} sandbox(es) still out after the run")
        finally:
            await store.aclose()
    return read_results(run_dir)


def read_results(run_dir: Path) -> dict[str, dict[str, Any]]:
    return {p.parent.name: json.loads(p.read_text()) for p in run_dir.glob("sim/*/result.json")}


def measure(run_dir: Path, http_policy_requests: int) -> dict[str, Any]:
    """Aggregate the per-task search logs and tree.json outcomes of a finished run."""
    iterations, outcomes = [], []
    expansions = 0
    for task_dir in sorted(run_dir.glob("sim/*")):
        lines = [json.loads(x) for x in (task_dir / "search.jsonl").read_text().splitlines()]
        iterations += [x for x in lines if x["event"] == "iteration"]
        expansions += sum(1 for x in lines if x["event"] in ("root", "iteration") and x.get("children") is not None)
        outcomes.append(json.loads((task_dir / "tree.json").read_text())["outcome"])
        outcomes[-1]["score"] = json.loads((task_dir / "result.json").read_text())["score"]
    replayed = [x["replayed"] for x in iterations]
    wall = sum(o["value_wall_s"] for o in outcomes)
    calls = sum(o["value_calls_s"] for o in outcomes)
    return {
        "tasks": len(outcomes),
        "solved": sum(o["score"] == 1.0 for o in outcomes),
        "iterations": len(iterations),
        "expansions": expansions,
        "http_requests_per_expansion": round(http_policy_requests / expansions, 3) if expansions else None,
        "value_wall_s": round(wall, 3),
        "value_calls_sum_s": round(calls, 3),
        "value_wall_over_sum": round(wall / calls, 3) if calls else None,
        "replayed_per_iteration_mean": round(statistics.mean(replayed), 3) if replayed else 0,
        "replayed_per_iteration_max": max(replayed, default=0),
        "iterations_with_replay": sum(1 for r in replayed if r),
        "sandboxes_peak_per_task": [o["restore"]["peak"] for o in outcomes],
        "sandboxes_fresh_per_task": [o["restore"]["fresh"] for o in outcomes],
        "resets_per_task": [o["restore"]["resets"] for o in outcomes],
        "home_borrowed": sum(o["restore"]["home_borrowed"] for o in outcomes),
        "prefetched": sum(o["restore"].get("prefetched", 0) for o in outcomes),
        "prefetch_used": sum(o["restore"].get("prefetch_used", 0) for o in outcomes),
        "search_s_per_task": [o["search_s"] for o in outcomes],
        "seconds_per_iteration_mean": round(statistics.mean(x["seconds"] for x in iterations), 4) if iterations else 0,
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:

    root = Path(args.dir or tempfile.mkdtemp(prefix="mcts-bench-"))
    suite = write_chain_suite(root / "suite", list(range(1, args.tasks + 1)), steps=args.steps)
    model = ChainModel(judge_noise=args.judge_noise, flat_judge=args.flat_judge)
    options: dict[str, Any] = {"iterations": args.iterations, "max_sandboxes": args.max_sandboxes,
                               "prefetch": args.prefetch}
    if args.no_early_stop:
        options["early_stop_value"] = None
    async with SimServer(SimConfig(policy=model, latency_ms=args.llm_latency_ms, no_n=args.no_n)) as server:
        await run_sim(suite, root / "run", server.url, args.agent, concurrency=args.concurrency,
                      capacity=args.capacity, options=options, max_steps=args.steps + 3,
                      sim_latency_s=args.sim_latency_ms / 1000)
        policy_http = sum(1 for r in server.records if r.path.endswith("chat/completions") and r.n in (1, 20)
                          and r.n == (1 if args.no_n else 20))
    if args.no_n:  # single requests: count the policy ones by what the model was asked
        policy_http = len(model.by_role("policy"))
    return {"agent": args.agent, "run_dir": str(root / "run"), **measure(root / "run", policy_http)}


def main(argv: list[str] | None = None) -> int:

    p = argparse.ArgumentParser(prog="python -m harness.bench.mcts", description=__doc__.split("\n\n")[0])
    p.add_argument("--agent", default="rmcts", choices=["mcts", "rmcts"])
    p.add_argument("--tasks", type=int, default=4)
    p.add_argument("--steps", type=int, default=5, help="chain length of each trap scenario")
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--no-early-stop", action="store_true", help="search the whole budget")
    p.add_argument("--max-sandboxes", type=int, default=30)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--capacity", type=int, default=8, help="the shared pool's sandboxes")
    p.add_argument("--llm-latency-ms", type=float, default=200.0)
    p.add_argument("--sim-latency-ms", type=float, default=30.0)
    p.add_argument("--judge-noise", type=float, default=0.0, help="chance a verdict is one letter off")
    p.add_argument("--flat-judge", action="store_true", help="judges see no difference until the goal")
    p.add_argument("--prefetch", action="store_true", help="restore the parent state while the model thinks")
    p.add_argument("--no-n", action="store_true", help="the model server rejects n > 1")
    p.add_argument("--dir", help="where to write the suite and run (default: a temp folder)")
    args = p.parse_args(argv)
    print(json.dumps(aio.run(bench, args), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
