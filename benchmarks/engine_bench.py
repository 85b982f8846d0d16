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
import functools
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

POLICY = "benchmarks.engine_bench:solver_policy"
# Tree search asks the model for samples, judge verdicts, debates and reflections: the mcts
# package's scripted chain model plays every role from the same state labels.
TREE_POLICY = "search.mcts.sim_model:policy"
TREE_AGENTS = frozenset({"mcts", "rmcts"})
_STATE = re.compile(r"(chain-\d+(?:-trap)?(?:-s\d+)?) state (\w+)")
_REPO = Path(__file__).resolve().parents[1]


# ---- the model: runs inside the llm-sim process ------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _reply(scenario: str, state: str) -> str:
    from vm.sim import Scenario

    if state in ("goal", "trap"):
        return "The app shows its goal state, so the task is complete.\n```DONE```"
    action = Scenario.parse(scenario).correct_action(int(state))
    return f"The app is in state {state}; its next control is at the marked spot.\n```python\n{action}\n```"


def solver_policy(request: dict[str, Any]) -> str:
    """llm-sim policy: the next solution action for the state shown in the last observation."""
    for message in reversed(request.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        parts = [content] if isinstance(content, str) else [p.get("text", "") for p in content or []
                                                             if isinstance(p, dict) and p.get("type") == "text"]
        for text in parts:
            m = _STATE.search(text)
            if m:
                return _reply(m.group(1), m.group(2))
        break
    return "I cannot see the app's state.\n```WAIT```"


# ---- options and the bound ---------------------------------------------------------------------


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
        import anyio

        while True:
            t0 = time.perf_counter()
            await anyio.sleep(self.interval)
            self.lags_ms.append(max(0.0, (time.perf_counter() - t0 - self.interval) * 1000))


# ---- llm-sim in its own process ----------------------------------------------------------------


async def _start_llm_sim(opts: EngineBenchOptions, log_path: Path, *,
                         env: dict[str, str] | None = None) -> tuple[Any, str]:
    """Start `python -m harness llm-sim` on a free loopback port; (process, base URL).
    `env`: extra environment of the server (the docker path names the suite its model plays)."""
    import anyio

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
        await _stop(proc)
        from harness.errors import HarnessError

        raise HarnessError(f"llm-sim did not start (see {log_path}): {buf.decode(errors='replace')[:200]}") from e
    m = re.search(r"listening on (http://\S+)", buf.decode(errors="replace"))
    if not m:
        await _stop(proc)
        from harness.errors import HarnessError

        raise HarnessError(f"llm-sim printed no URL (see {log_path}): {buf[:200]!r}")
    return proc, m.group(1)


async def _stop(proc: Any) -> None:
    import anyio

    with anyio.CancelScope(shield=True):
        if proc.returncode is None:
            proc.terminate()
            with anyio.move_on_after(10):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await proc.aclose()


def _process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) of another process so far, from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


async def _sim_stats(base_url: str) -> dict[str, Any]:
    import aiohttp

    root = base_url.rsplit("/v1", 1)[0]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.get(f"{root}/sim/stats") as r:
            r.raise_for_status()
            return await r.json()


# ---- the run -----------------------------------------------------------------------------------


def _make_work_dir(work_dir: Path | None) -> Path:
    if work_dir:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
        return Path(work_dir)
    # Where `harness run` puts run directories: the disk a real run writes to.
    Path("runs").mkdir(exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"bench-engine-{time.strftime('%Y%m%d-%H%M%S')}-", dir="runs"))


def _preload(agent: str) -> None:
    """Import what a run imports lazily (SDKs, metric modules: ~1 s of one-time CPU) before the
    clock starts: the bench measures a run's throughput, not the interpreter's start-up."""
    import importlib

    for name in ("harness.runner", "benchmarks.loader", "benchmarks.setup_steps", "benchmarks.context",
                 "results.store", "vm.pool", "vm.sim", "harness.llm.client", "scoring"):
        importlib.import_module(name)
    from scoring.registry import metrics
    from search.agent import agent_names

    metrics()
    agent_names()


def _providers(url: str, opts: EngineBenchOptions, max_in_flight: int) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"name": "llm-sim", "kind": "openai-compatible", "base_url": url, "models": ["*"],
                                "max_in_flight": max_in_flight, "timeout_s": 60 + opts.llm_latency_ms / 1000 * 3}
    if opts.rpm:
        endpoint["rpm"] = opts.rpm
    return {"default_model": "sim-model", "embedding_model": "sim-embed", "endpoints": [endpoint]}


async def run_engine_bench(opts: EngineBenchOptions) -> dict[str, Any]:
    """Run the benchmark; returns the metrics (see `METRIC_KEYS`)."""
    if opts.provider == "docker":  # real sandboxes and the built-in suite: benchmarks/engine_bench_docker.py
        from benchmarks.engine_bench_docker import run_docker_bench

        return await run_docker_bench(opts)
    import anyio
    import orjson

    from benchmarks.sim_suite import write_sim_suite
    from harness.config import make_config
    from harness.runner import execute_run
    from results.resume import scan_results
    from vm import sim

    work = await anyio.to_thread.run_sync(_make_work_dir, opts.work_dir)
    run_dir = work / "run"
    if run_dir.exists():
        raise FileExistsError(f"--work-dir {work}: holds a run directory from an earlier bench; use a fresh folder")
    suite = await anyio.to_thread.run_sync(
        functools.partial(write_sim_suite, work / "suite", tasks=opts.tasks, steps=opts.steps))
    max_in_flight = opts.max_in_flight or max(1, opts.sessions)
    await anyio.to_thread.run_sync(_preload, opts.agent)
    proc, url = await _start_llm_sim(opts, work / "llm-sim.log")
    try:
        providers_file = work / "providers.json"
        providers_file.write_bytes(orjson.dumps(_providers(url, opts, max_in_flight)))
        config = make_config({
            "benchmark": str(suite), "agent": opts.agent, "model": "sim-model", "provider": opts.provider,
            "concurrency": opts.sessions, "sandboxes": opts.sandboxes, "agent_options": opts.agent_options or {},
            "run_dir": run_dir, "sim_latency_ms": opts.env_latency_ms,
            "providers_file": str(providers_file), "quiet": not opts.progress,
            "max_steps": max(15, opts.steps + 3), "screen_width": opts.screen[0], "screen_height": opts.screen[1],
        }, source="bench engine")
        sim.COUNTERS.reset()
        sim_cpu0 = _process_cpu_s(proc.pid)
        lag = LoopLag()
        cpu0, loop_cpu0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(lag.run)
            code = await execute_run(config, show_summary=False)
            tg.cancel_scope.cancel()
        wall = time.perf_counter() - t0
        cpu, loop_cpu = time.process_time() - cpu0, time.thread_time() - loop_cpu0
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        server = await _sim_stats(url)
        sim_cpu1 = _process_cpu_s(proc.pid)
    finally:
        await _stop(proc)
    results = await anyio.to_thread.run_sync(scan_results, run_dir)
    llm_calls = int(server.get("status", {}).get("200", 0))
    bound = compute_bound(sessions=opts.sessions, tasks_done=len(results), llm_calls=llm_calls,
                          env_latency_s=sim.COUNTERS.task_latency_s, llm_latency_s=opts.llm_latency_ms / 1000,
                          rpm=opts.rpm, max_in_flight=max_in_flight)
    out = run_metrics(Measured(tasks=opts.tasks, results=results, wall=wall, cpu=cpu, loop_cpu=loop_cpu,
                               rss_mb=rss_mb, lags_ms=lag.lags_ms, server=server, sim_cpu=(sim_cpu0, sim_cpu1)),
                      bound_tasks_per_s=bound["bound_tasks_per_s"])
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


async def finish_bench(out: dict[str, Any], opts: Any, *, work: Path, code: int, max_in_flight: int) -> dict[str, Any]:
    """The run's exit code, options and machine into `out`; the work folder removed if asked."""
    import anyio

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


# ---- CLI ---------------------------------------------------------------------------------------


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
    p.add_argument("--progress", action="store_true", help="show the run's progress display (measured too)")
    p.add_argument("--json", dest="json_out", type=Path, default=None, help="write the metrics here")
    p.set_defaults(func=_cli)


def _table(result: dict[str, Any]) -> str:
    rows = [*METRIC_KEYS, "binding_limit", "bound_tasks_per_hour", "wall_s", "tasks_done", "steps", "llm_calls",
            "loop_lag_ms_p50", "loop_lag_ms_max", "cpu_s"]
    rows += [k for k in ("host_cpu_busy", "containers_peak", "containers_left", "search") if k in result]  # docker
    return "\n".join(f"{k:24} {result.get(k)}" for k in rows)


def _cli(args: argparse.Namespace) -> int:
    import orjson

    from harness import aio
    from harness.errors import ConfigError

    if args.sessions < 1 or args.tasks < 1 or not 1 <= args.steps <= 100:
        raise ConfigError("bench engine: --sessions and --tasks must be >= 1, --steps in 1..100")
    domains = None
    if args.domain:
        domains = () if "all" in args.domain else tuple(d for ds in args.domain for d in ds.split(",") if d)
    if args.provider == "sim" and (args.domain or args.benchmark != "desktop-basics"):
        raise ConfigError("bench engine: --benchmark and --domain apply to --provider docker only")
    from harness.commands.run import _agent_options

    opts = EngineBenchOptions(
        sessions=args.sessions, tasks=args.tasks, agent=args.agent, provider=args.provider,
        llm_latency_ms=args.llm_latency_ms, env_latency_ms=args.env_latency_ms, rpm=args.rpm, steps=args.steps,
        max_in_flight=args.max_in_flight, work_dir=args.work_dir, progress=args.progress,
        sandboxes=args.sandboxes, agent_options=_agent_options(args.agent_option), policy=args.policy,
        keep=not args.clean, benchmark=args.benchmark, domains=domains,
    )
    result = aio.run(run_engine_bench, opts)
    print(_table(result))
    if opts.keep:
        print(f"work folder kept: {result['work_dir']}", file=sys.stderr)
    if args.json_out:
        args.json_out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
        print(f"wrote {args.json_out}", file=sys.stderr)
    return 0 if result["failures"] == 0 else 1
