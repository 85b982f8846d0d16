"""R-MCTS's reflection memory on a cluster: one store on the head, shared by every worker.

A local run keeps `<run_dir>/reflections.sqlite` (or the shared `reflection_path`), and a task sees
the reflections of every task that ended before it started. On a cluster, tasks run on other
machines' workers: each would otherwise keep a memory of its own (in its scratch folder, deleted
with it), so what a task learns would depend on where it ran and the run directory would lack the
file. Instead one actor pinned to the head's node (where the run directory is) opens that same
file, and each worker's agent reads and writes through it (`MCTSAgent.memory_store`): same
records, same visibility rule, same file, wherever each task ran. The rule compares the workers'
clocks (`created_at` against a task's start): nodes keep them in step with NTP, as Ray needs too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

CALL_TIMEOUT_S = 120.0  # a few rows in SQLite on the head; longer means the head is gone or stuck


class ReflectionService:
    """Ray actor body: the run's ReflectionMemory, on the head's node."""

    def __init__(self, path: str) -> None:
        from search.mcts.memory import ReflectionMemory

        self._memory = ReflectionMemory(path)

    async def add(self, rows: list[Any]) -> list[int]:
        return await self._memory.add(rows)

    async def visible(self, before: float) -> list[Any]:
        return await self._memory.visible(before)


class RemoteReflections:
    """A worker's ReflectionStore: the head's memory, through its actor."""

    def __init__(self, actor: Any) -> None:
        self._actor = actor

    async def add(self, rows: Sequence[Any]) -> list[int]:
        with anyio.fail_after(CALL_TIMEOUT_S):
            return list(await self._actor.add.remote(list(rows)))

    async def visible(self, before: float) -> list[Any]:
        with anyio.fail_after(CALL_TIMEOUT_S):
            return list(await self._actor.visible.remote(before))


def start_reflections(path: Path) -> Any:
    """The service actor on this (the head's) node; needs `ray.init` first. Blocking: run it off
    the event loop."""
    import ray

    from harness.cluster.actors import pinned_here

    return ray.remote(ReflectionService).options(**pinned_here()).remote(str(path))
