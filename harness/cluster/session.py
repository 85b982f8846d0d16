"""The head's side of a cluster run: connect, ship the suite, keep one worker per sandbox node.

`open_cluster(...)` connects (connect.py), puts the suite into the object store once, starts the
LLM services when the agent needs a model (llm_services.py), starts a worker on every node that
offers `cua_sandbox` and keeps watching: a node that appears (or comes back) gets a worker, a
node that leaves takes its worker out of placement. It yields a `Cluster` whose `runner` is the
engine's AttemptRunner. On exit every worker closes its pool (its node's sandboxes are destroyed)
and the connection (and a `local:N` cluster) is stopped, on every path.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from harness.base.errors import ConfigError, HarnessError
from harness.cluster.actors import kill_quietly
from harness.config import RunConfig
from harness.engine import _short

log = logging.getLogger("harness.cluster")

RESOURCE = "cua_sandbox"
WATCH_INTERVAL_S = 1.0
WORKER_RESTARTS = 3  # per node: a worker that keeps dying on one node is not restarted forever
SIM_START_TIMEOUT_S = 120.0
DOCKER_START_TIMEOUT_S = 3900.0  # an image build on the node (vm/image/build.py: up to an hour) + pool warm-up
CLOSE_TIMEOUT_S = 120.0


@dataclass
class Cluster:
    runner: Any
    workers: Any
    ray: Any
    stats_extra: dict[str, Any] = field(default_factory=dict)

    @property
    def slots(self) -> int:
        return self.workers.slots

    def stats(self) -> dict[str, Any]:
        return {**self.workers.stats(), **self.stats_extra}

    def overhead(self) -> dict[str, Any]:
        """Per attempt: head-measured time minus the worker's own (dispatch + streaming), seconds."""
        xs = sorted(self.runner.overhead_s)
        if not xs:
            return {"attempts": 0}
        return {"attempts": len(xs), "mean_s": round(sum(xs) / len(xs), 4), "p50_s": round(xs[len(xs) // 2], 4),
                "p95_s": round(xs[min(len(xs) - 1, int(0.95 * len(xs)))], 4), "max_s": round(xs[-1], 4)}


@contextlib.asynccontextmanager
async def open_cluster(config: RunConfig, *, run_dir: Path, run_id: str, suite_path: Path, tasks: list[Any],
                       agent_factory: Callable[[RunConfig, Any], Any], provider_factory: Callable[..., Any],
                       needs_llm: bool, reflections_path: Path | None = None,
                       agent_extras: dict[str, Any] | None = None) -> AsyncIterator[Cluster]:
    assert config.ray
    from harness.cluster.connect import connect

    held = threading.Event()
    release = threading.Event()
    ready: dict[str, Any] = {}

    def hold() -> None:
        # ray.init and ray.shutdown in one thread; the connection lives while the run does.
        try:
            per_node = -(-config.concurrency // max(1, _local_nodes(config.ray)))  # local:N only
            with connect(config.ray, quiet=config.quiet, sandboxes_per_local_node=per_node) as ray:
                ready["ray"] = ray
                held.set()
                release.wait()
        except BaseException as e:
            ready["error"] = e
            held.set()

    thread = threading.Thread(target=hold, name="ray-connection", daemon=True)
    thread.start()
    await anyio.to_thread.run_sync(held.wait)
    if "error" in ready:
        await anyio.to_thread.run_sync(thread.join)
        raise ready["error"]
    try:
        async with _session(ready["ray"], config, run_dir=run_dir, run_id=run_id, suite_path=suite_path,
                            tasks=tasks, agent_factory=agent_factory, provider_factory=provider_factory,
                            needs_llm=needs_llm, reflections_path=reflections_path,
                            agent_extras=agent_extras or {}) as cluster:
            yield cluster
    finally:
        with anyio.CancelScope(shield=True):
            release.set()
            await anyio.to_thread.run_sync(thread.join, 60)


def _local_nodes(value: str) -> int:
    from harness.cluster.connect import parse_target

    return parse_target(value).local_nodes


@contextlib.asynccontextmanager
async def _session(ray: Any, config: RunConfig, *, run_dir: Path, run_id: str, suite_path: Path, tasks: list[Any],
                   agent_factory: Any, provider_factory: Any, needs_llm: bool,
                   reflections_path: Path | None, agent_extras: dict[str, Any]) -> AsyncIterator[Cluster]:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from harness.cluster.dispatch import RayAttemptRunner, WorkerHandle, WorkerSet
    from harness.cluster.suite_ship import pack_suite
    from harness.cluster.worker import worker_actor_class

    total = int((await anyio.to_thread.run_sync(ray.cluster_resources)).get(RESOURCE, 0))
    if total < 1:
        raise ConfigError(f"--ray {config.ray}: no node offers the resource {RESOURCE!r}; start nodes with "
                          f"`ray start --address HEAD --resources '{{\"{RESOURCE}\": 16}}'`")
    digest, blob = await anyio.to_thread.run_sync(pack_suite, suite_path)
    suite_ref = await anyio.to_thread.run_sync(ray.put, blob)
    del blob
    image_tag = None
    if config.provider == "docker":
        from vm.image.build import image_tag as _tag

        image_tag = await anyio.to_thread.run_sync(_tag)
    async with contextlib.AsyncExitStack() as stack:
        services = None
        if needs_llm:
            from harness.cluster.llm_services import start_llm_services

            # Starting the services waits for their actors: off the loop.
            services = await anyio.to_thread.run_sync(start_llm_services, config, run_dir)

            async def close_services() -> None:
                with anyio.CancelScope(shield=True):
                    await services.aclose()

            stack.push_async_callback(close_services)
        reflections = None
        if reflections_path is not None:  # R-MCTS: one memory for the whole cluster
            from harness.cluster.reflections import start_reflections

            reflections = await anyio.to_thread.run_sync(start_reflections, reflections_path)
            # Registered before the workers' close: it is stopped after every worker has closed.
            stack.callback(kill_quietly, reflections)
        spec = {"config": config, "suite": [suite_ref], "suite_hash": digest, "run_id": run_id,
                "task_keys": [(t.domain, t.id) for t in tasks], "image_tag": image_tag,
                "agent_factory": agent_factory, "agent_extras": agent_extras,
                "provider_factory": provider_factory, "llm_services": services,
                "reflections": reflections,
                "sandboxes": None}
        workers = WorkerSet()
        actor_cls = worker_actor_class()
        restarts: dict[str, int] = {}
        start_timeout = DOCKER_START_TIMEOUT_S if config.provider == "docker" else SIM_START_TIMEOUT_S
        first = anyio.Event()
        first_pass = anyio.Event()
        failures: list[str] = []

        async def start_worker(node_id: str, slots: int) -> None:
            actor = actor_cls.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
                resources={RESOURCE: slots}, num_cpus=0, max_concurrency=2 * slots + 16, max_restarts=0,
            ).remote()
            handle = WorkerHandle(node_id=node_id, slots=slots, actor=actor)
            try:
                with anyio.fail_after(start_timeout):
                    handle.info = await actor.start.remote({**spec, "slots": slots})
            except BaseException as e:
                failures.append(f"node {node_id[:8]}: {_short(e)}")
                log.warning("cluster worker on node %s did not start: %s", node_id[:8], _short(e))
                kill_quietly(actor)
                handle.alive = False
                workers.workers[node_id] = handle  # dead, with info: the watcher may try again
                if not isinstance(e, Exception):
                    raise
                return
            finally:
                workers.starting -= 1
                if not workers.starting:
                    first.set()
            if handle.info.get("leftovers_removed"):
                log.info("node %s: removed %d leftover sandbox(es) of this run", handle.short,
                         handle.info["leftovers_removed"])
            workers.add(handle)
            first.set()

        async def watch(tg: Any) -> None:
            while True:
                nodes = await anyio.to_thread.run_sync(ray.nodes)
                alive = {n["NodeID"]: n for n in nodes if n.get("Alive")}
                for w in workers.live():
                    if w.node_id not in alive:
                        workers.drop(w, "node left the cluster")
                for node_id, node in alive.items():
                    slots = int(node.get("Resources", {}).get(RESOURCE, 0))
                    known = workers.workers.get(node_id)
                    if slots < 1 or (known is not None and (known.alive or known.info is None)):
                        continue
                    if known is not None:  # its worker died while the node stayed: a new one, a few times
                        if restarts.get(node_id, 0) >= WORKER_RESTARTS:
                            continue
                        restarts[node_id] = restarts.get(node_id, 0) + 1
                    workers.workers[node_id] = WorkerHandle(node_id, slots, None, alive=False, info=None)
                    workers.starting += 1
                    tg.start_soon(start_worker, node_id, slots)
                first_pass.set()
                await anyio.sleep(WATCH_INTERVAL_S)

        async def close_all() -> None:
            with anyio.CancelScope(shield=True):
                async with anyio.create_task_group() as ctg:
                    for w in workers.live():
                        ctg.start_soon(_close_worker, w)

        stack.push_async_callback(close_all)
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch, tg)
            # The run starts when every node present now has its worker (or failed to get one): a
            # run that started on the first worker alone would begin lopsided.
            with anyio.fail_after(start_timeout + 30):
                await first_pass.wait()
                while workers.starting:
                    await first.wait()
                    first = anyio.Event()
            if not workers.live():
                raise HarnessError("no cluster worker could start: " + "; ".join(failures[-3:]))
            runner = RayAttemptRunner(workers)
            cluster = Cluster(runner=runner, workers=workers, ray=ray, stats_extra={"cluster_slots": total})
            try:
                yield cluster
            finally:
                tg.cancel_scope.cancel()


async def _close_worker(w: Any) -> None:
    try:
        with anyio.fail_after(CLOSE_TIMEOUT_S):
            await w.actor.close.remote()
    except Exception as e:
        log.warning("cluster worker on node %s did not close cleanly: %s", w.short, _short(e))
    kill_quietly(w.actor)

