"""Head side: which worker takes an attempt, and how its stream lands in the run store.

`WorkerSet` holds the live workers and their free slots (a worker takes at most as many attempts
as its node offers `cua_sandbox`); an attempt goes to the live worker with the most free slots.
`RayAttemptRunner` is the engine's AttemptRunner for a cluster: it sends one attempt to a worker
and writes each streamed event through the real results Attempt as it arrives, so the run
directory is written by the head alone, exactly as in a local run. A worker that dies (actor
death, node loss) fails its in-flight attempts with SandboxError: the engine records an
infrastructure failure and retries them, here on another worker. Every event is checked first
(harness/cluster/events.py): a malformed one fails the attempt the same way, never the engine.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import ray
from ray import exceptions as rex

from harness.base.errors import HarnessError, SandboxError
from harness.base.faults import HARNESS
from harness.cluster import events
from harness.cluster.actors import kill_quietly
from harness.engine import _short

log = logging.getLogger("harness.cluster")

NO_WORKER_GRACE_S = 120.0  # an attempt waits this long for a live worker before failing as infrastructure
# Errors that mean the worker (its process or its node) is gone, not that one call failed.
WORKER_GONE = (rex.RayActorError, rex.ActorUnavailableError, rex.NodeDiedError, rex.OwnerDiedError,
               rex.WorkerCrashedError, rex.ObjectLostError, rex.LocalRayletDiedError)


@dataclass
class WorkerHandle:
    node_id: str
    slots: int
    actor: Any
    free: int = 0
    alive: bool = True
    info: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0

    @property
    def short(self) -> str:
        return self.node_id[:8]


class WorkerSet:
    """Live workers and their free slots; `take` waits for one (the placement decision)."""

    def __init__(self) -> None:
        self.workers: dict[str, WorkerHandle] = {}
        self.starting = 0  # workers being started (image check, pool warm-up)
        self.lost = 0
        self._changed = anyio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def add(self, w: WorkerHandle) -> None:
        w.free = w.slots
        self.workers[w.node_id] = w
        self._notify()

    def drop(self, w: WorkerHandle, why: str) -> None:
        if w.alive:
            w.alive = False
            self.lost += 1
            log.warning("cluster worker on node %s dropped from placement: %s", w.short, why)
            kill_quietly(w.actor)
        self._notify()

    def live(self) -> list[WorkerHandle]:
        return [w for w in self.workers.values() if w.alive]

    @property
    def slots(self) -> int:
        return sum(w.slots for w in self.live())

    async def take(self) -> WorkerHandle:
        idle_since: float | None = None
        while True:
            free = [w for w in self.live() if w.free > 0]
            if free:
                w = max(free, key=lambda x: x.free)
                w.free -= 1
                w.attempts += 1
                return w
            if not self.live() and not self.starting:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > NO_WORKER_GRACE_S:
                    raise SandboxError("no cluster worker is alive (no node offers cua_sandbox)")
            else:
                idle_since = None
            with anyio.move_on_after(1.0):
                await self._changed.wait()

    def give(self, w: WorkerHandle) -> None:
        w.free += 1
        self._notify()

    def stats(self) -> dict[str, Any]:
        live = self.live()
        return {"workers": len(live), "starting": self.starting, "lost": self.lost,
                "slots": sum(w.slots for w in live), "busy": sum(w.slots - w.free for w in live)}


class RayAttemptRunner:
    """harness.engine.AttemptRunner that runs each attempt on a cluster worker."""

    def __init__(self, workers: WorkerSet) -> None:
        self.workers = workers
        self.overhead_s: list[float] = []  # head-measured attempt time minus the worker's own

    async def run(self, task: Any, attempt: Any) -> dict[str, Any]:
        w = await self.workers.take()
        started = time.monotonic()
        gen = None
        finished = False
        try:
            gen = w.actor.run_attempt.remote(task.domain, task.id, attempt.number)
            result: dict[str, Any] | None = None
            worker_s = 0.0
            async for ref in gen:
                try:
                    event = events.parse(await ref)
                    if result is not None:
                        raise events.MalformedEvent(f"{event[0]} event after the result")
                except events.MalformedEvent as e:
                    raise events.MalformedEvent(f"worker on node {w.short}: {e}") from None
                kind = event[0]
                if kind == "step":
                    await attempt.record_step(event[1], event[2])
                elif kind == "file":
                    await attempt.write_file(event[1], event[2], durable=event[3])
                elif kind == "jsonl":
                    await attempt.append_jsonl(event[1], event[2])
                elif kind == "result":
                    result, worker_s = event[1], event[2]
                elif kind == "error" and event[1] == "sandbox":
                    raise SandboxError(f"{event[2]} (node {w.short})")
                elif kind == "error":  # from a worker of an older version: its bug ends this task
                    result, worker_s = {"score": 0.0, "error": f"attempt: worker: {event[2]}", "fault": HARNESS,
                                        "phase": "attempt"}, 0.0
                else:
                    events.unknown(kind)
            finished = True
            if result is None:
                raise SandboxError(f"worker on node {w.short} ended the attempt without a result")
            if worker_s:
                self.overhead_s.append(max(0.0, time.monotonic() - started - worker_s))
            return {**result, "node": w.node_id[:12]}  # where it ran (result.json; not in the summary)
        except WORKER_GONE as e:
            self.workers.drop(w, _short(e))
            raise SandboxError(f"cluster worker on node {w.short} died: {type(e).__name__}") from None
        except rex.RayError as e:
            raise SandboxError(f"cluster call to node {w.short} failed: {_short(e)}") from None
        except HarnessError:
            raise
        finally:
            if gen is not None and not finished:
                _cancel(gen)  # the worker's generator is cancelled: its sandbox is released there
            self.workers.give(w)


def _cancel(gen: Any) -> None:
    try:
        ray.cancel(gen)
    except Exception:  # the worker is gone already
        pass
