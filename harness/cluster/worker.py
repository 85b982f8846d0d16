"""The worker actor: one per node that offers `cua_sandbox`, with its own event loop and sandbox pool.

`start` (once) unpacks the shipped suite, collects leftover containers of this run on the node's
Docker engine (a worker that died before left them), checks the desktop image against the head's
build hash (building it if missing), then opens the pool. `run_attempt` runs one attempt with the
same code the local engine runs (harness.engine.LocalAttemptRunner) and streams what it writes back
to the head as events, in order:

    ("step", traj_record, png | None)   ("file", name, bytes, durable)   ("jsonl", name, obj)
    ("result", result_dict, worker_seconds)  or  ("error", "sandbox", message)

The head checks each (harness/cluster/events.py), then writes it through the run store's real
Attempt; this node writes nothing of the run. A failure the local engine would record on the task
(harness/base/faults.py) is sent as the same result, so both record the same thing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import ray

from harness.base.errors import SandboxError
from harness.base.faults import first_line, run_fatal, task_failure
from harness.engine import LocalAttemptRunner, _short
from results.layout import check_file_name

log = logging.getLogger("harness.cluster.worker")

EVENT_BUFFER = 32  # events queued per attempt before the agent waits for the head to take them


class StreamedAttempt:
    """What the agent's env writes through (results.attempt.Attempt's methods), sent to the head."""

    def __init__(self, number: int, send: Any) -> None:
        self.number = number
        self.steps = 0
        self.dir = None  # no run folder on this node: previous_artifact() finds nothing here
        self._send = send

    async def record_step(self, step: dict[str, Any], screenshot_png: bytes | None = None) -> int:
        n = step.get("step_num")
        if n is None:
            n = self.steps + 1
            step = {**step, "step_num": n}
        elif not isinstance(n, int) or isinstance(n, bool) or n < 1:  # as results.attempt.Attempt
            raise ValueError(f"step_num must be a positive int, got {n!r}")
        self.steps = max(self.steps, int(n))
        await self._send(("step", step, None if screenshot_png is None else bytes(screenshot_png)))
        return int(n)

    async def write_file(self, name: str, data: bytes, *, durable: bool = True) -> Path:
        # The head refuses a bad name; checked here by the same rule, the agent fails as locally.
        await self._send(("file", check_file_name(name), bytes(data), durable))
        return Path(name)

    async def append_jsonl(self, name: str, obj: Any) -> None:
        await self._send(("jsonl", check_file_name(name), obj))


class SandboxWorker:
    """Ray actor body (created by dispatch.py with `ray.remote(...)`: async, one per node)."""

    def __init__(self) -> None:
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._host: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._runner: LocalAttemptRunner | None = None
        self._tasks: dict[tuple[str, str], Any] = {}
        self._ctx: Any = None
        self._pool: Any = None
        self._provider: Any = None
        self._run_id = ""
        self.info: dict[str, Any] = {}

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Prepare this node; returns its description once it can take attempts."""
        if self._host is None:
            # The pool and clients live in one long-running coroutine (their task groups must be
            # entered and left by the same task); `close` ends it, and so does the actor's death.
            self._host = asyncio.ensure_future(self._serve(spec))
        waiter = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait({waiter, self._host}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._failure is not None or not self._ready.is_set():
            err = self._failure or RuntimeError("worker stopped before it was ready")
            raise SandboxError(f"worker on node {ray.get_runtime_context().get_node_id()[:8]}: {_short(err)}")
        return self.info

    async def _serve(self, spec: dict[str, Any]) -> None:
        try:
            async with AsyncExitStack() as stack:
                await self._prepare(spec, stack)
                self._ready.set()
                await self._stop.wait()
        except BaseException as e:  # reported to `start`; the actor stays up to answer it
            self._failure = e
            if not isinstance(e, Exception):
                raise

    async def _prepare(self, spec: dict[str, Any], stack: AsyncExitStack) -> None:
        from benchmarks.context import RunContext
        from benchmarks.downloads import HostFiles
        from benchmarks.loader import load_suite
        from benchmarks.setup_steps import run_task_setup
        from harness.cluster.suite_ship import unpack_suite
        from scoring import evaluate
        from vm.pool import SandboxPool

        config = spec["config"]
        node = ray.get_runtime_context().get_node_id()
        t0 = time.monotonic()
        suite_path = await anyio.to_thread.run_sync(unpack_suite, spec["suite_hash"], await spec["suite"][0])
        keys = spec["task_keys"]
        suite = await anyio.to_thread.run_sync(lambda: load_suite(
            suite_path, domains=sorted({d for d, _ in keys}), ids=sorted({i for _, i in keys}), errors="collect"))
        self._tasks = {(t.domain, t.id): t for t in suite.tasks}
        provider = spec["provider_factory"](config, spec["run_id"])
        self._provider, self._run_id = provider, spec["run_id"]
        if hasattr(provider, "aclose"):
            stack.push_async_callback(provider.aclose)
        # A worker that died on this node earlier left its containers (their owner process is gone).
        removed = await provider.gc(run_id=spec["run_id"], stale_only=True)
        if config.provider == "docker":
            from harness.cluster.image_check import docker_image_check

            with anyio.fail_after(spec.get("image_timeout_s", 3600)):
                await docker_image_check(spec["image_tag"], log.warning)
        llm = None
        if spec.get("llm_services") is not None:
            from harness.cluster.llm_services import worker_llm_client

            llm = worker_llm_client(config, spec["llm_services"])
            if hasattr(llm, "aclose"):
                stack.push_async_callback(llm.aclose)
            warm = getattr(llm, "warm", None)
            if warm is not None:
                await warm()
        # Metric and getter modules load on first use (~1 s of CPU): here, so a worker that says it
        # is ready runs its first attempts at full speed instead of all nodes importing at once.
        from scoring.registry import getters, metrics

        await anyio.to_thread.run_sync(lambda: (metrics(), getters()))
        agent = spec["agent_factory"](config, llm, **(spec.get("agent_extras") or {}))
        if spec.get("reflections") is not None and hasattr(agent, "memory_store"):
            from harness.cluster.reflections import RemoteReflections

            agent.memory_store = RemoteReflections(spec["reflections"])  # the head's, shared by all nodes
        slots = int(spec["slots"])
        pool = await stack.enter_async_context(SandboxPool(
            provider, capacity=max(slots, int(spec.get("sandboxes") or 0)),
            max_starting=getattr(provider, "max_starting", None) or max(1, min(os.cpu_count() or 2, slots)),
            warm=slots))
        self._pool = pool
        scratch = Path(tempfile.mkdtemp(prefix=f"cua-worker-{spec['run_id']}-"))
        stack.callback(lambda: __import__("shutil").rmtree(scratch, ignore_errors=True))
        self._ctx = RunContext.for_suite(suite, run_dir=scratch, screen_size=(config.screen_width, config.screen_height),
                                         proxy=config.proxy, downloads=HostFiles(allow_private=config.allow_private_urls,
                                                                      max_bytes=config.sandbox_file_limit_mb << 20))
        self._runner = LocalAttemptRunner(config, pool, agent, setup=run_task_setup, evaluate=evaluate,
                                          context=self._ctx, run_dir=scratch)
        self.info = {"node_id": node, "pid": os.getpid(), "slots": slots, "tasks": len(self._tasks),
                     "leftovers_removed": removed, "prepare_s": round(time.monotonic() - t0, 3),
                     "suite_errors": [str(e) for e in suite.errors][:5]}

    async def close(self) -> dict[str, Any]:
        """Destroy this node's sandboxes and stop; the pool's stats are returned."""
        stats = self._pool.stats().as_dict() if self._pool is not None else {}
        if self._provider is not None and self._ready.is_set():
            # What workers of this run that died on this node left (their owner process is gone).
            try:
                stats["leftovers_removed"] = await asyncio.wait_for(
                    self._provider.gc(run_id=self._run_id, stale_only=True), 120)
            except Exception as e:
                log.warning("collecting leftover sandboxes failed: %s", _short(e))
        self._stop.set()
        if self._host is not None:
            await asyncio.wait({self._host}, timeout=120)
        return stats

    def ping(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def pool_stats(self) -> dict[str, Any]:
        return self._pool.stats().as_dict() if self._pool is not None else {}

    # -- one attempt -----------------------------------------------------------------------------
    @ray.method(num_returns="streaming")
    async def run_attempt(self, domain: str, task_id: str, number: int) -> Any:
        queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue(EVENT_BUFFER)
        # The attempt runs in its own task so the generator can hand events over while it works;
        # the finally below cancels it and waits for it (the pool's shielded release) on every path.
        body = asyncio.ensure_future(self._attempt_body(domain, task_id, number, queue))
        try:
            while True:
                if body.done() and queue.empty():
                    break
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, body}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    await asyncio.gather(getter, return_exceptions=True)
                    continue  # the body ended: drain what it queued, then stop
                yield getter.result()
        finally:
            if not body.done():
                body.cancel()
            await asyncio.gather(body, return_exceptions=True)

    async def _attempt_body(self, domain: str, task_id: str, number: int,
                            queue: asyncio.Queue[tuple[Any, ...]]) -> None:
        started = time.monotonic()
        try:
            if self._runner is None:
                raise SandboxError("worker is not ready")
            task = self._tasks.get((domain, task_id))
            if task is None:
                raise SandboxError(f"task {domain}/{task_id} is not in the suite shipped to this node")
            result = await self._runner.run(task, StreamedAttempt(number, queue.put))
            if float(result.get("score") or 0) >= 1.0 and not result.get("error"):
                await self._ctx.discard(task)  # a solved task's fetched files answer no question
            await queue.put(("result", result, time.monotonic() - started))
        except SandboxError as e:
            await queue.put(("error", "sandbox", first_line(e)))
        except Exception as e:
            if run_fatal(e):  # this node's disk: another node may take the attempt
                await queue.put(("error", "sandbox", _short(e)))  # its type says what failed
                return
            # What the local engine records for the same failure (harness.engine.Engine._run_task).
            log.exception("task %s/%s: attempt failed on this worker", domain, task_id)
            await queue.put(("result", task_failure(e, "attempt"), time.monotonic() - started))


def worker_actor_class() -> Any:
    return ray.remote(SandboxWorker)
