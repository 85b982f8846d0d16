"""`bench engine --provider docker`: the same measurement on real desktop sandboxes.

The first `--tasks` tasks of `--benchmark` (default desktop-basics, restricted to the domains os
and text_editor, whose reference solutions are 1-5 terminal/mousepad actions) run through the
real engine on the Docker provider, with llm-sim (its own process) playing
`harness.bench.desktop_model:policy`: the tasks' reference solutions, in every role tree search asks
for. The agent options show the model the whole path (`max_trajectory_length` and, for mcts/rmcts,
`value_context` = the deepest node), since the model reads progress from it.

`utilization` is null here: a real sandbox's start, setup, observe and execute times are not a
configured latency, so there is no known bound to compare the achieved rate with. Instead the
output says how many sandbox containers were live at peak and how many were left afterwards
(containers labelled with this process as owner, see vm/docker_gc.py).
"""

from __future__ import annotations

import dataclasses
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import aiodocker
import anyio
import orjson

from benchmarks.loader import load_suite, resolve_benchmark
from harness.base.errors import ConfigError
from harness.bench import engine_common as eb
from harness.bench.desktop_model import SUITE_ENV
from harness.config import make_config
from harness.runner import execute_run
from results.resume import scan_results
from vm.docker_gc import LABEL_MANAGED, LABEL_OWNER, owner_label
from vm.image.build import ensure_image

DESKTOP_POLICY = "harness.bench.desktop_model:policy"
DEFAULT_DOMAINS = ("os", "text_editor")
TREE_AGENTS = frozenset({"mcts", "rmcts"})


def select_tasks(benchmark: str, count: int, domains: tuple[str, ...] | None) -> tuple[Path, list[Any]]:
    """(suite folder, its first `count` tasks in the domains) in the suite's test-list order."""

    path = resolve_benchmark(benchmark)
    suite = load_suite(path, domains=list(domains) if domains else None)
    tasks = suite.tasks[:count]
    if len(tasks) < count:
        where = f" in domains {','.join(domains)}" if domains else ""
        raise ConfigError(f"bench engine --tasks {count}: {path} has only {len(suite.tasks)} tasks{where}")
    unsolved = [t.id for t in tasks if not t.solution]
    if unsolved:
        raise ConfigError(f"bench engine --provider docker: tasks without a reference solution (the scripted "
                          f"model plays it): {', '.join(unsolved[:5])}")
    return path, tasks


def agent_options_for(agent: str, tasks: list[Any], user: dict[str, Any] | None) -> tuple[dict[str, Any], int]:
    """(agent options, max_steps): the model must see the whole path to count progress on it."""
    longest = max(len(t.solution) for t in tasks)
    max_steps = max(15, longest + 3)  # room for detours on the tree's paths
    options: dict[str, Any] = {"max_trajectory_length": max_steps}
    if agent in TREE_AGENTS:
        options["value_context"] = max_steps
    return {**options, **(user or {})}, max_steps


def host_cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine so far, from /proc/stat (Linux); None elsewhere.
    On Docker the sandboxes' CPU (Xvfb, apps, the guest server) is the host's, not this process's."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


class ContainerCount:
    """Polls the Docker engine for sandbox containers owned by this process: peak and current."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self.baseline = 0  # ours from before the run (a caller's own sandboxes): not the run's

    async def _count(self, docker: Any) -> int:


        with anyio.fail_after(30):
            found = await docker.containers.list(
                all=True, filters={"label": [f"{LABEL_MANAGED}=1", f"{LABEL_OWNER}={owner_label()}"]})
        return max(0, len(found) - self.baseline)

    async def count(self) -> int:

        async with aiodocker.Docker() as docker:
            return await self._count(docker)

    async def start_baseline(self) -> None:
        self.baseline = 0
        self.baseline = await self.count()

    async def run(self) -> None:

        async with aiodocker.Docker() as docker:
            while True:
                n = await self._count(docker)
                self.peak, self.samples = max(self.peak, n), self.samples + 1
                await anyio.sleep(self.interval)


async def run_docker_bench(opts: Any) -> dict[str, Any]:
    """`run_engine_bench` for `opts.provider == "docker"`; the same METRIC_KEYS (utilization null)."""


    domains = tuple(opts.domains) if opts.domains is not None else DEFAULT_DOMAINS
    suite_path, tasks = await anyio.to_thread.run_sync(select_tasks, opts.benchmark, opts.tasks, domains)
    agent_options, max_steps = agent_options_for(opts.agent, tasks, opts.agent_options)
    opts = dataclasses.replace(opts, policy=opts.policy or DESKTOP_POLICY)
    work = await anyio.to_thread.run_sync(eb.make_work_dir, opts.work_dir)
    run_dir = work / "run"
    if run_dir.exists():
        raise FileExistsError(f"--work-dir {work}: holds a run directory from an earlier bench; use a fresh folder")
    max_in_flight = opts.max_in_flight or max(1, opts.sessions)
    await anyio.to_thread.run_sync(eb.preload, opts.agent)

    await ensure_image()  # before the clock: builds only when the image is missing
    proc, url = await eb.start_llm_sim(opts, work / "llm-sim.log", env={SUITE_ENV: str(suite_path)})
    containers = ContainerCount()
    await containers.start_baseline()
    try:
        providers_file = work / "providers.json"
        providers_file.write_bytes(orjson.dumps(eb.providers_config(url, opts, max_in_flight)))
        config = make_config({
            "benchmark": str(suite_path), "agent": opts.agent, "model": "sim-model", "provider": "docker",
            "concurrency": opts.sessions, "sandboxes": opts.sandboxes, "agent_options": agent_options,
            "run_dir": run_dir, "providers_file": str(providers_file), "quiet": not opts.progress,
            "domains": list(domains), "tasks": [t.id for t in tasks], "max_steps": max_steps,
            "screen_width": opts.screen[0], "screen_height": opts.screen[1],
        }, source="bench engine")
        sim_cpu0, host0 = eb.process_cpu_s(proc.pid), host_cpu_ticks()
        lag = eb.LoopLag()
        cpu0, loop_cpu0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(lag.run)
            tg.start_soon(containers.run)
            code = await execute_run(config, show_summary=False)
            tg.cancel_scope.cancel()
        wall = time.perf_counter() - t0
        cpu, loop_cpu = time.process_time() - cpu0, time.thread_time() - loop_cpu0
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        server = await eb.sim_stats(url)
        sim_cpu1, host1 = eb.process_cpu_s(proc.pid), host_cpu_ticks()
    finally:
        await eb.stop_process(proc)
    left = await containers.count()
    results = await anyio.to_thread.run_sync(scan_results, run_dir)
    search = await anyio.to_thread.run_sync(_search_summary, run_dir)
    out = eb.run_metrics(eb.Measured(tasks=opts.tasks, results=results, wall=wall, cpu=cpu, loop_cpu=loop_cpu,
                                     rss_mb=rss_mb, lags_ms=lag.lags_ms, server=server, sim_cpu=(sim_cpu0, sim_cpu1)),
                         bound_tasks_per_s=None)
    out.update({
        "utilization_note": "null on docker: real sandbox times are not a configured latency, so no bound is known",
        "binding_limit": None,
        # share of all the machine's cores busy during the run (harness + llm-sim + sandboxes + dockerd)
        "host_cpu_busy": (round((host1[0] - host0[0]) / (host1[1] - host0[1]), 3)
                          if host0 and host1 and host1[1] > host0[1] else None),
        "containers_peak": containers.peak,
        "containers_left": left,
        "search": search,
        "tasks": [t.id for t in tasks],
        "agent_options": agent_options,
    })
    return await eb.finish_bench(out, opts, work=work, code=code, max_in_flight=max_in_flight)


def _search_summary(run_dir: Path) -> dict[str, Any]:
    """Tree-search totals from each task's tree.json (empty for agents that keep no tree)."""

    trees = sorted(run_dir.glob("*/*/tree.json"))
    if not trees:
        return {}
    nodes = executed = branching = branched_executed = 0
    stops: dict[str, int] = {}
    for path in trees:
        doc = orjson.loads(path.read_bytes())
        by_id = {n["id"]: n for n in doc.get("nodes", [])}
        nodes += len(by_id)
        executed += sum(1 for n in by_id.values() if n["executed"] and n["parent"] is not None)
        branching += sum(1 for n in by_id.values() if len(n["children"]) > 1)
        branched_executed += sum(1 for n in by_id.values()
                                 if sum(1 for c in n["children"] if by_id[c]["executed"]) > 1)
        reason = str(doc.get("stop_reason"))
        stops[reason] = stops.get(reason, 0) + 1
    return {"trees": len(trees), "nodes": nodes, "transitions": executed, "nodes_with_2plus_children": branching,
            "nodes_with_2plus_executed_children": branched_executed, "stop_reasons": stops,
            **_restore_summary(run_dir)}


def _restore_summary(run_dir: Path) -> dict[str, Any]:
    """How iterations reached their parent state (search.jsonl): count and p50 seconds per kind,
    p50 over the restores that did work (replay/fork/fresh), snapshots taken and their time."""
    seconds: dict[str, list[float]] = {}
    snapshots, snapshot_s, fork_off = 0, 0.0, set()
    for path in sorted(run_dir.glob("*/*/search.jsonl")):
        last: dict[str, Any] = {}
        for raw in path.read_bytes().splitlines():
            line = orjson.loads(raw)
            if line.get("event") != "iteration":
                continue
            how = line.get("state_restore") or {}
            if how.get("kind"):
                seconds.setdefault(how["kind"], []).append(float(how.get("seconds", 0.0)))
            last = line
            if line.get("fork_off"):
                fork_off.add(str(line["fork_off"])[:200])
        stats = last.get("restore") or {}
        snapshots += int(stats.get("snapshots", 0))
        snapshot_s += float(stats.get("snapshot_s", 0.0))
    working = [s for kind, xs in seconds.items() if kind != "hit" for s in xs]
    return {"restores": {k: {"count": len(v), "p50_s": round(statistics.median(v), 3)} for k, v in seconds.items()},
            "restore_p50_s": round(statistics.median(working), 3) if working else None,
            "snapshots": snapshots, "snapshot_s": round(snapshot_s, 2), "fork_off": sorted(fork_off)}
