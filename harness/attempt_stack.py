"""One builder of what runs attempts: provider -> sandbox pool -> run context -> attempt runner.

The local run (harness/runner.py) and each cluster worker (harness/cluster/worker.py) open the
same stack; they differ only in where the scratch folders live, whose leftovers are collected
and how the desktop image is made ready (built here, or checked against the head's there).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import anyio

from benchmarks.context import RunContext
from benchmarks.downloads import HostFiles
from benchmarks.setup_steps import run_task_setup
from harness.config import RunConfig, sandbox_settings
from harness.engine import LocalAttemptRunner
from scoring import evaluate
from search.agent import Agent
from vm import providers
from vm.pool import SandboxPool
from vm.types import Provider

log = logging.getLogger("harness.attempt_stack")


@dataclass
class AttemptStack:
    provider: Provider
    pool: SandboxPool
    context: RunContext
    runner: LocalAttemptRunner
    leftovers_removed: int


async def preload_evaluators() -> None:
    """Import every metric and getter module now (~1 s of CPU, off the loop), so the first
    attempts do not all pay for it at once."""
    from scoring.registry import getters, metrics

    await anyio.to_thread.run_sync(lambda: (metrics(), getters()))


async def open_attempt_stack(stack: AsyncExitStack, config: RunConfig, agent: Agent, *, run_id: str,
                             work_dir: Path, capacity: int, warm: int, gc_run_id: str | None,
                             image_ready: Callable[[], Awaitable[object]]) -> AttemptStack:
    """Open the stack inside `stack` (closed with it, on every path). `gc_run_id`: whose stale
    leftovers to remove first (None: any run's); `image_ready` runs when the provider needs the image."""
    kind = providers.kind(config.provider)
    provider = kind.factory(sandbox_settings(config), run_id)
    stack.push_async_callback(provider.aclose)
    # Leftovers of a crashed earlier run (or worker) go before we start new ones; a live
    # concurrent run's sandboxes stay (their owner process is alive).
    removed = await provider.gc(run_id=gc_run_id, stale_only=True)
    if removed:
        log.info("removed %d leftover sandbox(es) from an earlier run", removed)
    if kind.needs_image:
        await image_ready()
    await preload_evaluators()
    pool = await stack.enter_async_context(SandboxPool(provider, capacity=capacity, warm=warm))
    context = RunContext.for_run(work_dir, screen_size=(config.screen_width, config.screen_height), proxy=config.proxy,
                                 downloads=HostFiles(allow_private=config.allow_private_urls,
                                                     max_bytes=config.sandbox_file_limit_mb << 20))
    runner = LocalAttemptRunner(config, pool, agent, setup=run_task_setup, evaluate=evaluate, context=context,
                                run_dir=work_dir)
    return AttemptStack(provider, pool, context, runner, removed)
