"""What the sim and Docker variants of `bench engine` share: options, the llm-sim process, loop-lag
sampling, CPU accounting and the metric block. Formulas: docs/design/performance.md."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import orjson

from benchmarks.sim_suite import write_sim_suite
from harness.base.aio import stop_process
from harness.base.errors import HarnessError
from harness.base.memory import peak_rss_mb
from scoring.registry import metrics
from search.agent import agent_names

_REPO = Path(__file__).resolve().parents[2]
# Tree search asks the model for samples, judge verdicts, debates and reflections: the mcts
# package's scripted chain model plays every role from the same state labels.
TREE_POLICY = "search.mcts.sim_model:policy"
POLICY = "harness.bench.solver:solver_policy"
TREE_AGENTS = frozenset({"mcts", "rmcts"})


@dataclass
class EngineBenchOptions:
    sessions: int = 8
    tasks: int = 16
    agent: str = "prompt"
    provider: str = "sim"
    llm_latency_ms: float = 0.0
    env_latency_ms: float = 0.0
    rpm: int | None = None
    steps: int = 3  # K of the chain-K scenarios: K clicks + DONE = K+1 model calls per task
    max_in_flight: int | None = None  # the LLM client's in-flight cap; default: one per session
    sandboxes: int | None = None  # pool capacity (tree search holds states in extra sandboxes)
    agent_options: dict[str, Any] | None = None
    policy: str | None = None  # llm-sim policy; default: by agent (POLICY / TREE_POLICY)
    benchmark: str = "desktop-basics"  # docker only: the suite whose first `tasks` tasks run
    domains: tuple[str, ...] | None = None  # docker only: None = os and text_editor (short solutions)
    screen: tuple[int, int] = (1920, 1080)
    work_dir: Path | None = None
    keep: bool = False
    progress: bool = False


def compute_bound(*, sessions: int, tasks_done: int, llm_calls: int, env_latency_s: float,
                  llm_latency_s: float, rpm: int | None, max_in_flight: int) -> dict[str, Any]:
    """The most tasks/s the configured limits allow, per limit (docs/design/performance.md).

    Per task: c = llm_calls / tasks model calls and E = env_latency_s / tasks seconds of simulated
    sandbox latency (starts, observes, executes). A session runs its task's steps one after the
    other, so a task holds its sandbox for at least c*X + E seconds (X = LLM latency):
      sandboxes:      N / (c*X + E)
      rpm:            (R / 60) / c
      llm_in_flight:  M / (c*X)          (M = the client's in-flight cap)
    The smallest binds. With zero latencies and no rpm there is no external bound (None): the
    harness's own CPU is the limit, and `steps_per_s` is the number to read.
    """
    if not tasks_done:
        return {"bound_tasks_per_s": None, "binding_limit": None, "bounds": {}}
    c = llm_calls / tasks_done
    per_task_s = c * llm_latency_s + env_latency_s / tasks_done
    bounds: dict[str, float | None] = {
        "sandboxes": sessions / per_task_s if per_task_s > 0 else None,
        "rpm": rpm / 60 / c if rpm and c else None,
        "llm_in_flight": max_in_flight / (c * llm_latency_s) if c and llm_latency_s > 0 else None,
    }
    finite = {k: v for k, v in bounds.items() if v is not None}
    if not finite:
        return {"bound_tasks_per_s": None, "binding_limit": "harness_cpu", "bounds": bounds,
                "task_critical_path_s": per_task_s}
    binding = min(finite, key=finite.__getitem__)
    return {"bound_tasks_per_s": finite[binding], "binding_limit": binding, "bounds": bounds,
            "task_critical_path_s": per_task_s}


def _p(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class LoopLag:
    """Samples how late a `sleep(interval)` wakes up: the loop's responsiveness under load."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.lags_ms: list[float] = []

    async def run(self) -> None:

        while True:
            t0 = time.perf_counter()
            await anyio.sleep(self.interval)
            self.lags_ms.append(max(0.0, (time.perf_counter() - t0 - self.interval) * 1000))


async def start_llm_sim(opts: EngineBenchOptions, log_path: Path, *,
                         env: dict[str, str] | None = None) -> tuple[Any, str]:
    """Start `python -m harness llm-sim` on a free loopback port; (process, base URL).
    `env`: extra environment of the server (the docker path names the suite its model plays)."""

    policy = opts.policy or (TREE_POLICY if opts.agent in TREE_AGENTS else POLICY)
    argv = [sys.executable, "-m", "harness", "llm-sim", "--host", "127.0.0.1", "--port", "0",
            "--latency-ms", str(opts.llm_latency_ms), "--policy", policy]
    if opts.rpm:
        argv += ["--rpm", str(opts.rpm)]
    env = {**os.environ, **(env or {}),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(_REPO), os.environ.get("PYTHONPATH")]))}
    log_file = log_path.open("wb")
    try:
        proc = await anyio.open_process(argv, stdout=-1, stderr=log_file, env=env, cwd=str(_REPO))
    finally:
        log_file.close()  # the child holds its own descriptor
    buf = b""
    try:
        with anyio.fail_after(60):
            while b"\n" not in buf:
                chunk = await proc.stdout.receive()
                buf += chunk
    except (TimeoutError, anyio.EndOfStream) as e:
        await stop_process(proc)

        raise HarnessError(f"llm-sim did not start (see {log_path}): {buf.decode(errors='replace')[:200]}") from e
    m = re.search(r"listening on (http://\S+)", buf.decode(errors="replace"))
    if not m:
        await stop_process(proc)

        raise HarnessError(f"llm-sim printed no URL (see {log_path}): {buf[:200]!r}")
    return proc, m.group(1)


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) of another process so far, from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


async def sim_stats(base_url: str) -> dict[str, Any]:

    root = base_url.rsplit("/v1", 1)[0]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.get(f"{root}/sim/stats") as r:
            r.raise_for_status()
            return await r.json()


def make_work_dir(work_dir: Path | None) -> Path:
    if work_dir:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
        return Path(work_dir)
    # Where `harness run` puts run directories: the disk a real run writes to.
    Path("runs").mkdir(exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"bench-engine-{time.strftime('%Y%m%d-%H%M%S')}-", dir="runs"))


def preload(agent: str) -> None:
    """Import what a run imports lazily (SDKs, metric modules: ~1 s of one-time CPU) before the
    clock starts: the bench measures a run's throughput, not the interpreter's start-up."""
    import importlib

    for name in ("harness.runner", "benchmarks.loader", "benchmarks.setup_steps", "benchmarks.context",
                 "results.store", "vm.pool", "vm.sim", "harness.llm.client", "scoring"):
        importlib.import_module(name)

    metrics()
    agent_names()


@dataclass
class SimWorkload:
    work: Path
    suite: Path
    providers_file: Path
    url: str
    proc: Any
    max_in_flight: int


@contextlib.asynccontextmanager
async def sim_workload(opts: EngineBenchOptions, fresh: tuple[str, ...]) -> AsyncIterator[SimWorkload]:
    """The sim bench's inputs: work folder (its `fresh` subfolders must not exist yet), a suite of
    chain tasks, a running llm-sim and a providers file pointing at it; llm-sim stopped on exit."""
    work = await anyio.to_thread.run_sync(make_work_dir, opts.work_dir)
    if any((work / name).exists() for name in fresh):
        raise FileExistsError(f"--work-dir {work}: holds runs from an earlier bench; use a fresh folder")
    suite = await anyio.to_thread.run_sync(
        functools.partial(write_sim_suite, work / "suite", tasks=opts.tasks, steps=opts.steps))
    max_in_flight = opts.max_in_flight or max(1, opts.sessions)
    await anyio.to_thread.run_sync(preload, opts.agent)
    proc, url = await start_llm_sim(opts, work / "llm-sim.log")
    try:
        providers_file = work / "providers.json"
        providers_file.write_bytes(orjson.dumps(providers_config(url, opts, max_in_flight)))
        yield SimWorkload(work, suite, providers_file, url, proc, max_in_flight)
    finally:
        await stop_process(proc)


def providers_config(url: str, opts: EngineBenchOptions, max_in_flight: int) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"name": "llm-sim", "kind": "openai-compatible", "base_url": url, "models": ["*"],
                                "max_in_flight": max_in_flight, "timeout_s": 60 + opts.llm_latency_ms / 1000 * 3}
    if opts.rpm:
        endpoint["rpm"] = opts.rpm
    return {"default_model": "sim-model", "embedding_model": "sim-embed", "endpoints": [endpoint]}


async def finish_bench(out: dict[str, Any], opts: Any, *, work: Path, code: int, max_in_flight: int) -> dict[str, Any]:
    """The run's exit code, options and machine into `out`; the work folder removed if asked."""

    out.update({
        "run_exit_code": code,
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
        "max_in_flight": max_in_flight,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "work_dir": str(work),
    })
    if not opts.keep and not opts.work_dir:
        await anyio.to_thread.run_sync(functools.partial(shutil.rmtree, work, ignore_errors=True))
    return out


METRIC_KEYS = ("tasks_per_hour", "steps_per_s", "llm_calls_per_s", "utilization", "loop_lag_ms_p99",
               "cpu_ms_per_step", "peak_rss_mb", "failures")


@dataclass
class Measured:
    """What one bench run collected (sim or Docker), before it becomes metrics."""

    tasks: int  # tasks in the run, each solvable: failures = tasks - solved
    results: dict[Any, dict[str, Any]]  # result.json records
    wall: float
    cpu: float  # harness process CPU seconds
    loop_cpu: float  # event-loop thread CPU seconds
    rss_mb: float
    lags_ms: list[float]
    server: dict[str, Any]  # llm-sim /sim/stats
    sim_cpu: tuple[float | None, float | None]  # llm-sim process CPU seconds before and after


async def measured_run(config: Any, *, tasks: int, sim_pid: int, url: str,
                       alongside: Sequence[Callable[[], Awaitable[None]]] = ()) -> tuple[int, Measured]:
    """`execute_run(config)` under the loop-lag sampler (and `alongside` tasks), with the CPU, memory
    and llm-sim figures of the run: (exit code, Measured)."""
    from harness.runner import execute_run
    from results.resume import scan_results

    sim_cpu0 = process_cpu_s(sim_pid)
    lag = LoopLag()
    cpu0, loop_cpu0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lag.run)
        for fn in alongside:
            tg.start_soon(fn)
        code = await execute_run(config, show_summary=False)
        tg.cancel_scope.cancel()
    wall = time.perf_counter() - t0
    cpu, loop_cpu = time.process_time() - cpu0, time.thread_time() - loop_cpu0
    rss_mb = peak_rss_mb()
    server = await sim_stats(url)
    sim_cpu1 = process_cpu_s(sim_pid)
    results = await anyio.to_thread.run_sync(scan_results, config.run_dir)
    return code, Measured(tasks=tasks, results=results, wall=wall, cpu=cpu, loop_cpu=loop_cpu, rss_mb=rss_mb,
                          lags_ms=lag.lags_ms, server=server, sim_cpu=(sim_cpu0, sim_cpu1))


def run_metrics(m: Measured, *, bound_tasks_per_s: float | None) -> dict[str, Any]:
    """METRIC_KEYS first, then the context every bench reports (docs/design/performance.md)."""
    steps = sum(int(r.get("steps") or 0) for r in m.results.values())
    solved = sum(1 for r in m.results.values() if float(r.get("score") or 0) >= 1 and not r.get("error"))
    llm_calls = int(m.server.get("status", {}).get("200", 0))
    achieved = len(m.results) / m.wall if m.wall > 0 else 0.0
    before, after = m.sim_cpu
    return {
        "tasks_per_hour": round(achieved * 3600, 1),
        "steps_per_s": round(steps / m.wall, 2) if m.wall > 0 else 0.0,
        "llm_calls_per_s": round(llm_calls / m.wall, 2) if m.wall > 0 else 0.0,
        "utilization": round(achieved / bound_tasks_per_s, 4) if bound_tasks_per_s else None,
        "loop_lag_ms_p99": round(_p(m.lags_ms, 0.99), 2),
        "cpu_ms_per_step": round(m.cpu * 1000 / steps, 3) if steps else None,
        "peak_rss_mb": round(m.rss_mb, 1),
        "failures": m.tasks - solved,
        # context
        "loop_lag_ms_p50": round(_p(m.lags_ms, 0.5), 2),
        "loop_lag_ms_max": round(max(m.lags_ms, default=0.0), 2),
        "loop_lag_samples": len(m.lags_ms),
        "wall_s": round(m.wall, 3),
        "cpu_s": round(m.cpu, 3),
        "loop_thread_busy": round(m.loop_cpu / m.wall, 3) if m.wall > 0 else None,  # loop thread CPU / wall
        "tasks_done": len(m.results),
        "steps": steps,
        "llm_calls": llm_calls,
        "llm_server_requests": m.server.get("requests"),
        "llm_server_429": m.server.get("rate_limited"),
        "llm_sim_cpu_s": round(after - before, 3) if before is not None and after is not None else None,
    }
