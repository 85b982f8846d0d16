"""Wires a run together: suite -> agent -> run store -> LLM client -> attempt stack -> engine, plus signals.

First SIGINT/SIGTERM: stop starting tasks, cancel in-flight ones, destroy sandboxes, leave a
resumable run directory, exit 130. Second: exit at once.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import secrets
import signal
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio

from benchmarks.loader import Suite, load_suite, resolve_benchmark
from harness.attempt_stack import open_attempt_stack
from harness.base.errors import ConfigError
from harness.config import RESULT_KEYS, RunConfig, screen_mask
from harness.engine import Engine
from harness.progress import Progress
from results.store import RunStore
from scoring.coverage import unsupported_features

log = logging.getLogger("harness.run")

EXIT_INTERRUPTED = 130
MODEL_FREE_AGENTS = frozenset({"oracle", "noop", "done"})


def _llm_progress(llm: Any) -> dict[str, Any]:
    stats = llm.stats(tasks=False)
    return {"in_flight": stats["in_flight"], "waiting": stats["waiting"], **stats["run"]}


def build_agent(config: RunConfig, llm: Any = None, *, prompt_set: Any = None) -> Any:
    """The run's agent (cluster workers build theirs with this too, with their own LLM client and
    the head's `prompt_set`, so they never re-read a prompts_from path). The run-level
    max_steps/action_space/observation_type are the only source of those options: RunConfig
    refuses an --agent-option that says otherwise."""
    from search.agent import make_agent

    # -- issue 26: agents from outside (osworld:MODULE:CLASS); their options follow search/external --
    from search.external import build_external_agent, is_external_agent

    if is_external_agent(config.agent):
        return build_external_agent(config.model_dump(), explicit=config.model_fields_set)
    # -- end issue 26 --
    options = {"model": config.model, **config.agent_options, "llm": llm, "max_steps": config.max_steps,
               "action_space": config.action_space, "observation_type": config.observation_type}
    if prompt_set is not None:
        options["prompt_set"] = prompt_set
    return make_agent(config.agent, options)


def build_run_agent(config: RunConfig, llm: Any = None, *, prompt_set: Any = None) -> Any:
    """`build_agent` plus what the run adds around any agent (`--record`: search/recording.py)."""
    from search.recording import with_recording

    return with_recording(build_agent(config, llm, prompt_set=prompt_set), config.record)


def _needs_llm(config: RunConfig, agent: Any) -> bool:
    """Whether the run builds an LLM client for the agent (agents that call their model themselves do not)."""
    return config.agent not in MODEL_FREE_AGENTS and getattr(agent, "needs_llm", True)


def default_run_dir(config: RunConfig) -> Path:
    bench = Path(config.benchmark).name or "suite"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{bench}-{config.agent.replace(':', '_')}-{stamp}"


async def _watch_signals(scope: anyio.CancelScope, flags: dict[str, bool]) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            if flags.get("interrupted"):
                print("\nsecond interrupt: exiting now", file=sys.stderr, flush=True)
                os._exit(EXIT_INTERRUPTED)
            flags["interrupted"] = True
            print(f"\n{signal.Signals(signum).name}: stopping; cancelling in-flight tasks and removing "
                  "sandboxes (press Ctrl-C again to exit at once)", file=sys.stderr, flush=True)
            scope.cancel()


async def execute_run(config: RunConfig, *, show_summary: bool = True) -> int:
    """A run: select the tasks, build the agent, open the run directory and the LLM client, open
    what runs attempts (here, or on a cluster), let the engine work through the pending tasks."""
    suite_path, suite = await _select_tasks(config)
    if config.ray:  # a bad cluster address is one line before the run directory is touched
        from harness.cluster.connect import check_target

        await anyio.to_thread.run_sync(check_target, config.ray)
    run_dir = config.run_dir or default_run_dir(config)
    config = config.model_copy(update={"run_dir": run_dir})
    # The agent is built before the run directory is touched: a bad option (say a prompts file that
    # does not parse) stops the run with one line and leaves nothing behind. Its LLM client comes later.
    agent = build_run_agent(config)
    flags: dict[str, bool] = {}
    async with AsyncExitStack() as stack:
        store = await _open_store(stack, config, agent, flags)
        llm = await _open_llm(stack, config, agent, store)
        run_id = f"{run_dir.name}-{secrets.token_hex(3)}"
        if config.ray:  # attempts run on cluster workers; this process stays the scheduler and writer
            from harness.cluster.session import open_cluster

            cluster = await stack.enter_async_context(open_cluster(
                config, run_dir=run_dir, run_id=run_id, suite_path=suite_path, tasks=suite.tasks,
                agent_factory=build_run_agent, needs_llm=_needs_llm(config, agent),
                # The prompts file this process read: workers use its text and hash, not the path.
                agent_extras={"prompt_set": ps} if (ps := getattr(agent, "prompt_set", None)) is not None else {},
                # R-MCTS's memory: the file a local run would use, opened once on the head's node.
                reflections_path=agent.memory_path(run_dir) if getattr(agent, "uses_memory", bool)() else None))
            explicit = "concurrency" in config.model_fields_set
            config = config.model_copy(update={"concurrency": min(config.concurrency, cluster.slots)
                                               if explicit else cluster.slots})
            engine = Engine(config, suite.tasks, store, cluster.runner, unsupported=unsupported_features)
            pool_stats = cluster.stats
        else:
            from vm.image.build import ensure_image

            attempts = await open_attempt_stack(
                stack, config, agent, run_id=run_id, work_dir=run_dir, gc_run_id=None,
                capacity=max(config.sandboxes or 0, config.concurrency), warm=config.concurrency,
                image_ready=ensure_image)  # builds only when the image for this build context is missing
            engine = Engine(config, suite.tasks, store, attempts.runner, unsupported=unsupported_features,
                            discard=attempts.context.discard)
            cluster, pool_stats = None, lambda: attempts.pool.stats().as_dict()
        # What exists now (modules, the suite, clients) lives for the whole run: keep it out of the
        # collector's full passes, which otherwise stall the loop ~100 ms each at 256 sessions.
        gc.freeze()
        progress = Progress(engine.stats, pool_stats=pool_stats,
                            llm_stats=(lambda: _llm_progress(llm)) if llm else None, quiet=config.quiet)
        print(f"run directory: {run_dir}", flush=True)
        async with anyio.create_task_group() as tg:
            work = anyio.CancelScope()
            tg.start_soon(_watch_signals, work, flags)
            tg.start_soon(progress.run)
            tg.start_soon(store.run_flusher)
            with work:
                await engine.run()
            if cluster is not None:  # the cluster's share of the run, for `bench engine --ray` and reports
                store.log("cluster", **cluster.stats(), overhead=cluster.overhead(),
                          concurrency=config.concurrency)
            tg.cancel_scope.cancel()
    if show_summary:
        _print_summary(store.summary(), run_dir, interrupted=bool(flags.get("interrupted")))
    if flags.get("interrupted"):
        return EXIT_INTERRUPTED
    return 1 if suite.errors else 0


async def _select_tasks(config: RunConfig) -> tuple[Path, Suite]:
    """The suite's selected tasks; its unloadable files are printed (and make the exit code 1)."""
    suite_path = resolve_benchmark(config.benchmark)
    # Thousands of task files: read them off the loop (the loop lag sampler of `bench engine` saw it).
    suite = await anyio.to_thread.run_sync(functools.partial(
        load_suite, suite_path, test_list=config.test_list, domains=config.domains or None,
        ids=config.tasks or None, errors="collect"))
    for bad in suite.errors:
        print(f"error: {bad}", file=sys.stderr)
    if not suite.tasks:
        raise ConfigError(f"--benchmark {config.benchmark}: no tasks selected (domains={config.domains}, tasks={config.tasks})")
    if config.tasks:
        missing = sorted(set(config.tasks) - {t.id for t in suite.tasks})
        if missing:
            raise ConfigError(f"--tasks: no such task id in {suite_path}: {', '.join(missing)}")
    return suite_path, suite


async def _open_store(stack: AsyncExitStack, config: RunConfig, agent: Any, flags: dict[str, bool]) -> RunStore:
    """The run directory (a new one, or the same config's to resume), closed on every path."""
    assert config.run_dir is not None
    describe = getattr(agent, "describe", None)
    recorded = config.model_dump(mode="json")
    if config.ray and "concurrency" not in config.model_fields_set:
        # Sized by the cluster's slots when it starts: not recorded, so a resume on a bigger
        # cluster uses all of it instead of the first session's number.
        del recorded["concurrency"]
    store = await RunStore.open(config.run_dir, recorded, result_keys=RESULT_KEYS,
                                agent_info=describe() if callable(describe) else None)

    async def close_store() -> None:
        with anyio.CancelScope(shield=True):
            await store.aclose(reason="interrupted" if flags.get("interrupted") else "finished")

    stack.push_async_callback(close_store)
    return store


async def _open_llm(stack: AsyncExitStack, config: RunConfig, agent: Any, store: RunStore) -> Any:
    """The agent's LLM client, or None (model-free agents; cluster workers lease their own)."""
    if not _needs_llm(config, agent) or config.ray:
        return None
    from harness.llm.client import LLMClient

    assert config.run_dir is not None
    # The response cache lives in the run directory: resume replays what was paid for.
    llm = LLMClient.from_config(config.providers_file, cache_path=Path(config.llm_cache or config.run_dir / "llm_cache.sqlite"),
                                cache_enabled=config.cache, default_model=config.model,
                                screen_mask=screen_mask(config))  # the osworld clock: re-runs replay
    stack.push_async_callback(llm.aclose)
    await llm.warm()
    # Runs first at exit: each session journals its LLM tallies (the report's usage by model).
    stack.callback(lambda: store.log("llm_usage", models=llm.stats(tasks=False)["models"]))
    if hasattr(agent, "llm"):
        agent.llm = llm
    return llm


def _print_summary(summary: dict[str, Any], run_dir: Path, *, interrupted: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="interrupted: resume with `python -m harness resume " + str(run_dir) + "`" if interrupted else "summary")
    table.add_column("domain")
    table.add_column("done", justify="right")
    table.add_column("success", justify="right")
    for domain, d in sorted(summary.get("by_domain", {}).items()):
        table.add_row(domain, f"{d['done']}/{d['total']}", f"{d['success_rate']:.1%}")
    table.add_row("all", f"{summary['done']}/{summary['total']}", f"{summary['success_rate']:.1%}", style="bold")
    console = Console()
    console.print(table)
    console.print(f"tasks/hour {summary.get('tasks_per_hour', 0):.1f}  wall {summary.get('wall_s', 0):.1f} s  "
                  f"cost ${summary.get('cost_usd', 0):.4f}  errors {summary.get('errors', 0)}")
    console.print(f"run directory: {run_dir}")
