"""State restore for tree search: reach any tree state by replaying its action prefix.

A tree node's state is the desktop after its action prefix ran from the task's start state. The
restorer keeps, per task, a small set of sandboxes (at most `max_sandboxes`), each holding one
state (its *cursor*, the actions run since setup). To reach a node it takes the idle sandbox whose
cursor is the deepest prefix of the node's path (continuing in the sandbox that holds the parent is
the common case) and replays the missing actions; with no cached ancestor it starts from a fresh
sandbox at the start state. Afterwards that sandbox's cursor is the node (ExACT's scheme).

With `mode` "fork" or "auto" and a provider that can snapshot (vm.types.Forking), a state that a
lease starts from is snapshotted once when the caller says it may be wanted again (its node
has children not run yet), and a checkout whose deepest snapshot is deeper than any idle sandbox's cursor forks that
snapshot instead of replaying (docs/design/fork.md). Snapshots live within `max_snapshots` and
`snapshot_budget_mb`, least recently used evicted first. A snapshot or fork that fails (an app CRIU
cannot dump) turns forks off for the task, with the reason kept in `fork_off`; replay goes on.

Sandboxes come from the run's shared pool, so tasks compete for the same capacity:
- the *home* sandbox is the engine's (env.sandbox); it stays clean for the final replay, like
  upstream's reserved sandbox, unless the pool cannot give this task any other sandbox, in which
  case it is borrowed and reset before the final replay;
- a task grows its set only while the pool's free slots exceed the acquirers not yet served, and
  gives sandboxes back while others wait;
- it blocks on the pool only right after giving one back (or holding none), so tasks that each
  hold sandboxes can never wait for each other forever.
"""

from __future__ import annotations

import ast
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from harness.base.errors import ConfigError, SandboxError
from vm.types import ExecResult, Observation, Sandbox, fork_unavailable

log = logging.getLogger(__name__)


def action_key(action: Any) -> str:
    """Canonical text of one action: equal keys mean the same effect on the desktop.

    pyautogui code compares by its AST (comments and formatting do not matter); WAIT/DONE/FAIL by
    name; computer_13 dicts by their sorted JSON.
    """
    if isinstance(action, str):
        word = action.strip()
        if word.upper() in ("WAIT", "DONE", "FAIL"):
            return word.upper()
        try:
            return ast.dump(ast.parse(word))
        except (SyntaxError, ValueError):
            return " ".join(word.split())
    import json

    try:
        return json.dumps(action, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(action)


class SandboxSource(Protocol):
    """Where fresh sandboxes at the task's start state come from (the run's pool + the task's setup)."""

    async def acquire(self, *, timeout: float | None = None) -> Sandbox: ...

    async def release(self, box: Sandbox) -> None: ...

    def has_free_capacity(self) -> bool:
        """True when a sandbox can be had now without taking one that another task waits for."""
        ...

    def contended(self) -> bool:
        """True when other tasks are waiting for capacity."""
        ...


class PoolSource:
    """A SandboxSource over `vm.pool.SandboxPool`: acquire -> run the task's setup; release = destroy."""

    def __init__(self, pool: Any, prepare: Callable[[Sandbox], Awaitable[Any]]) -> None:
        self.pool = pool
        self._prepare = prepare

    async def acquire(self, *, timeout: float | None = None) -> Sandbox:
        box = await self.pool.acquire(timeout=timeout)
        try:
            await self._prepare(box)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.pool.release(box, dirty=True)
            raise
        return box

    async def release(self, box: Sandbox) -> None:
        with anyio.CancelScope(shield=True):
            await self.pool.release(box, dirty=True)

    def _stats(self) -> Any:
        stats = getattr(self.pool, "stats", None)
        return stats() if callable(stats) else None

    def has_free_capacity(self) -> bool:
        s = self._stats()
        if s is None:
            return True
        alive = s.busy + s.warm + s.starting + s.stopping
        # Acquirers already starting a sandbox hold their capacity; the others need free slots first.
        needed = max(0, s.waiting - s.starting)
        return (s.capacity - alive) + s.warm > needed

    def contended(self) -> bool:
        s = self._stats()
        return bool(s is not None and s.waiting > 0)

    # -- forks: the pool's provider snapshots; a fork takes a pool slot like a fresh sandbox -----------
    async def fork_unavailable(self) -> str | None:
        return await fork_unavailable(self.pool.provider)

    async def snapshot(self, box: Sandbox) -> Any:
        return await self.pool.provider.snapshot(box)

    async def fork(self, snapshot: Any, *, timeout: float | None = None) -> Sandbox:
        return await self.pool.acquire(timeout=timeout, start=lambda: self.pool.provider.fork(snapshot))

    async def drop(self, snapshot: Any) -> None:
        await self.pool.provider.drop(snapshot)


@dataclass
class RestoreStats:
    """Counters for the search log and the report."""

    checkouts: int = 0
    hits: int = 0  # checkouts served by a cached sandbox already holding the state
    replayed: int = 0  # actions re-executed to reach cached-out states
    executed: int = 0  # new transitions run through leases
    fresh: int = 0  # sandboxes acquired from the pool and set up (grow + reset)
    resets: int = 0  # of which replaced one of this task's own sandboxes
    given_back: int = 0  # released because other tasks were waiting
    peak: int = 0  # most sandboxes held at once for search (a borrowed home included)
    home_borrowed: int = 0  # times the home sandbox had to serve the search
    prefetched: int = 0  # states restored ahead of need (their replays are in `replayed` too)
    prefetch_used: int = 0  # checkouts served by a prefetched sandbox
    forks: int = 0  # checkouts served by forking a snapshot
    snapshots: int = 0  # snapshots taken
    evicted: int = 0  # snapshots dropped to stay within the budget
    snapshot_s: float = 0.0  # time spent taking snapshots

    def as_dict(self) -> dict[str, float]:
        out = dict(self.__dict__)
        out["snapshot_s"] = round(self.snapshot_s, 4)
        return out


RESTORE_MODES = ("replay", "fork", "auto")


@dataclass
class _Snap:
    snapshot: Any  # vm.types.Snapshot
    last_used: float = 0.0


@dataclass(eq=False)
class _Slot:
    box: Sandbox
    keys: list[str] = field(default_factory=list)  # the cursor: action keys run since setup
    home: bool = False
    busy: bool = False
    last_used: float = 0.0
    prefetched: bool = False
    last_restore: dict[str, Any] = field(default_factory=dict)


class Lease:
    """Exclusive use of one sandbox whose state is the requested path; `execute` moves its cursor."""

    def __init__(self, restore: StateRestore, slot: _Slot, path: Sequence[Any]) -> None:
        self._restore = restore
        self._slot = slot
        self.path: list[Any] = list(path)
        self.broken = False
        # How the sandbox got to `path`: hit (already there) | replay | fork | fresh, and the seconds.
        self.restore: dict[str, Any] = {}

    @property
    def sandbox(self) -> Sandbox:
        return self._slot.box

    async def execute(self, action: Any) -> ExecResult:
        """Run one new action; afterwards the sandbox holds `path + [action]`."""
        try:
            result = await self._slot.box.execute(action)
        except BaseException:
            self.broken = True  # the state is unknown now: the sandbox is not reused
            raise
        self._slot.keys.append(action_key(action))
        self.path.append(action)
        self._restore.stats.executed += 1
        return result

    async def observe(self, *, accessibility: bool = True) -> Observation:
        return await self._slot.box.observe(accessibility=accessibility)


class StateRestore:
    """Per-task set of sandboxes holding tree states. Use `async with restore.at(path) as lease`."""

    def __init__(self, source: SandboxSource, home: Sandbox, *, max_sandboxes: int = 8, settle_s: float = 0.0,
                 grow_timeout_s: float = 60.0, acquire_timeout_s: float | None = None, mode: str = "replay",
                 max_snapshots: int = 16, snapshot_budget_mb: float | None = None) -> None:
        if max_sandboxes < 1:
            raise ValueError(f"max_sandboxes must be >= 1, got {max_sandboxes}")
        if mode not in RESTORE_MODES:
            raise ValueError(f"state restore mode must be one of {', '.join(RESTORE_MODES)}, got {mode!r}")
        self.mode = mode
        self.max_snapshots = max_snapshots
        self.snapshot_budget = None if snapshot_budget_mb is None else int(snapshot_budget_mb * 1024 * 1024)
        self.fork_off: str | None = "state_restore=replay" if mode == "replay" else None
        self._fork_checked = mode == "replay"
        self._snaps: dict[tuple[str, ...], _Snap] = {}
        self.source = source
        self.max_sandboxes = max_sandboxes
        self.settle_s = settle_s
        self.grow_timeout_s = grow_timeout_s
        self.acquire_timeout_s = acquire_timeout_s
        self.stats = RestoreStats()
        self._home = _Slot(home, home=True)
        self._borrowed = False  # the home slot serves the search (its cursor may be dirty)
        self._final = False  # the home is reserved by the final replay: no more leases on it
        self._slots: list[_Slot] = []  # search slots; the home is in here while borrowed
        self._changed = anyio.Event()
        self._closed = False

    # -- views ---------------------------------------------------------------------------------------
    @property
    def home(self) -> Sandbox:
        return self._home.box

    @property
    def held(self) -> int:
        """Sandboxes serving the search now (a borrowed home included)."""
        return len(self._slots)

    def cursors(self) -> list[int]:
        return [len(s.keys) for s in self._slots]

    # -- leases --------------------------------------------------------------------------------------
    @asynccontextmanager
    async def at(self, path: Sequence[Any], *, keep: bool = True) -> AsyncIterator[Lease]:
        """A sandbox whose state is `path` (actions from the start state), for exclusive use.

        `keep`: the state may be wanted again after this lease moves on (its node has children not
        run yet), so with forks on it is snapshotted before the lease gets it."""
        slot = await self._checkout(list(path), keep=keep)
        lease = Lease(self, slot, path)
        lease.restore = slot.last_restore
        ok = False
        try:
            yield lease
            ok = not lease.broken
        finally:
            with anyio.CancelScope(shield=True):
                await self._checkin(slot, ok)

    async def _checkout(self, path: list[Any], *, keep: bool = True) -> _Slot:
        if self._closed:
            raise SandboxError("state restore is closed")
        keys = [action_key(a) for a in path]
        self.stats.checkouts += 1
        t0 = time.monotonic()
        forking = await self._forking()
        while True:
            kind = "replay"
            slot = cached = self._deepest(keys)
            snap = self._deepest_snapshot(keys) if forking else None
            if snap is not None and (cached is None or len(snap) > len(cached.keys)):
                slot = await self._fork_slot(snap)
                kind = "fork"
                if slot is None:
                    slot = cached
                    kind = "replay"
            if slot is None:
                slot = await self._fresh_slot()
                kind = "fresh"
            if slot is not None:
                break
            await self._changed.wait()  # every slot is leased (concurrent leases): wait for one back
        slot.busy = True
        try:
            missing = path[len(slot.keys):]
            if kind != "fork":
                kind = "replay" if missing else "hit" if slot is cached else "fresh"
            if kind == "hit":
                self.stats.hits += 1
            if cached is not None and cached.prefetched:
                self.stats.prefetch_used += 1
            slot.prefetched = False
            for action in missing:
                await slot.box.execute(action)
                slot.keys.append(action_key(action))
                self.stats.replayed += 1
                if self.settle_s:
                    await anyio.sleep(self.settle_s)
            restore_s = time.monotonic() - t0
            if keep and forking and self.fork_off is None and tuple(keys) not in self._snaps:
                await self._take_snapshot(slot, tuple(keys))
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._checkin(slot, False)
            raise
        slot.last_restore = {"kind": kind, "replayed": len(missing), "seconds": round(restore_s, 4)}
        return slot

    # -- snapshots (forks) -----------------------------------------------------------------------------
    async def _forking(self) -> bool:
        """True while this task restores by forking; the provider is asked once."""
        if not self._fork_checked:
            self._fork_checked = True
            check = getattr(self.source, "fork_unavailable", None)
            why = await check() if check is not None else "the sandbox source cannot fork"
            if why and self.mode == "fork":
                raise ConfigError(f"state_restore=fork: sandboxes cannot be forked here: {why} "
                                  "(use state_restore=auto or replay)")
            self.fork_off = why
        return self.fork_off is None

    def _forks_failed(self, why: str) -> None:
        if self.fork_off is None:
            log.warning("forks off for this task, replaying instead: %s", why)
            self.fork_off = why

    def _deepest_snapshot(self, keys: list[str]) -> tuple[str, ...] | None:
        for n in range(len(keys), -1, -1):
            if tuple(keys[:n]) in self._snaps:
                return tuple(keys[:n])
        return None

    async def _take_snapshot(self, slot: _Slot, keys: tuple[str, ...]) -> None:
        t0 = time.monotonic()
        try:
            snap = await self.source.snapshot(slot.box)  # type: ignore[attr-defined]
        except SandboxError as e:
            self._forks_failed(f"snapshot failed: {e}")
            return
        finally:
            self.stats.snapshot_s += time.monotonic() - t0
        self.stats.snapshots += 1
        self._snaps[keys] = _Snap(snap, time.monotonic())
        await self._evict(keep=keys)

    async def _evict(self, keep: tuple[str, ...]) -> None:
        def over() -> bool:
            size = sum(s.snapshot.size_bytes for s in self._snaps.values())
            return len(self._snaps) > self.max_snapshots or (
                self.snapshot_budget is not None and size > self.snapshot_budget)

        while over() and len(self._snaps) > 1:
            victim = min((k for k in self._snaps if k != keep), key=lambda k: self._snaps[k].last_used)
            await self._drop(self._snaps.pop(victim))
            self.stats.evicted += 1

    async def _drop(self, snap: _Snap) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await self.source.drop(snap.snapshot)  # type: ignore[attr-defined]
            except Exception as e:  # a leftover is the provider's to sweep at close
                log.warning("could not drop a snapshot: %s", e)

    async def _fork_slot(self, keys: tuple[str, ...]) -> _Slot | None:
        """A slot holding the snapshot's state: a new sandbox when the task may grow, else an idle
        one of this task's (not the home) replaced by the fork; None when neither is possible."""
        snap = self._snaps[keys]
        snap.last_used = time.monotonic()
        idle = [s for s in self._slots if not s.busy and s is not self._home]
        grow = len(self._slots) < self.max_sandboxes and self.source.has_free_capacity()
        if not grow and not idle:
            return None
        victim = None if grow else min(idle, key=lambda s: s.last_used)
        if victim is not None:
            victim.busy = True
            self._slots.remove(victim)
            await self.source.release(victim.box)
        try:
            box = await self.source.fork(snap.snapshot, timeout=self.grow_timeout_s)  # type: ignore[attr-defined]
        except SandboxError as e:
            self._forks_failed(f"fork failed: {e}")
            return None
        self.stats.forks += 1
        return self._add(_Slot(box, keys=list(keys)))

    def _deepest(self, keys: list[str]) -> _Slot | None:
        best: _Slot | None = None
        for slot in self._slots:
            if slot.busy or len(slot.keys) > len(keys) or slot.keys != keys[: len(slot.keys)]:
                continue
            if best is None or len(slot.keys) > len(best.keys):
                best = slot
        return best

    async def prefetch(self, path: Sequence[Any]) -> bool:
        """Restore `path` in a spare sandbox ahead of need (e.g. while the model thinks), when the
        task may grow and the pool has free capacity. Never evicts a cached state. True if done."""
        if self._closed or len(self._slots) >= self.max_sandboxes or not self.source.has_free_capacity():
            return False
        keys = [action_key(a) for a in path]
        if any(s.keys == keys for s in self._slots):
            return False
        try:
            box = await self.source.acquire(timeout=self.grow_timeout_s)
        except SandboxError as e:
            if isinstance(e.__cause__, TimeoutError):
                return False
            raise
        slot = self._add(_Slot(box, busy=True))
        ok = False
        try:
            for action in path:
                await slot.box.execute(action)
                slot.keys.append(action_key(action))
                self.stats.replayed += 1
                if self.settle_s:
                    await anyio.sleep(self.settle_s)
            ok = True
        finally:
            with anyio.CancelScope(shield=True):
                await self._checkin(slot, ok)
        slot.prefetched = ok
        self.stats.prefetched += 1
        return True

    async def _fresh_slot(self) -> _Slot | None:
        """A slot at the start state: grow, else reset an own idle sandbox, else borrow the home."""
        if len(self._slots) < self.max_sandboxes and self.source.has_free_capacity():
            try:
                box = await self.source.acquire(timeout=self.grow_timeout_s)
            except SandboxError as e:
                if not isinstance(e.__cause__, TimeoutError):
                    raise
                log.info("no sandbox free within %.0fs; reusing this task's own", self.grow_timeout_s)
            else:
                return self._add(_Slot(box))
        idle = [s for s in self._slots if not s.busy]
        if idle:
            victim = min(idle, key=lambda s: (len(s.keys) == 0, s.last_used))
            if not victim.keys:
                return victim  # already at the start state
            await self._replace(victim)
            return victim
        if not self._borrowed and not self._final and not self._home.busy:
            self._borrowed = True
            self.stats.home_borrowed += 1
            log.info("pool has no capacity for this task's search: borrowing its home sandbox")
            return self._add(self._home)
        if not self._slots:
            raise SandboxError("state restore: no sandbox available (home reserved and no capacity)")
        return None

    def _add(self, slot: _Slot) -> _Slot:
        self._slots.append(slot)
        if slot is not self._home:
            self.stats.fresh += 1
        self.stats.peak = max(self.stats.peak, len(self._slots))
        return slot

    async def _replace(self, slot: _Slot) -> None:
        """Give the slot's sandbox back and put a fresh one (start state) in its place."""
        old = slot.box
        slot.busy = True
        try:
            await self.source.release(old)
            slot.box = await self.source.acquire(timeout=self.acquire_timeout_s)
        except BaseException:
            if slot in self._slots:
                self._slots.remove(slot)
            raise
        finally:
            slot.busy = False
        slot.keys = []
        self.stats.resets += 1
        self.stats.fresh += 1

    async def _checkin(self, slot: _Slot, ok: bool) -> None:
        slot.busy = False
        slot.last_used = time.monotonic()
        if not ok:
            if slot is self._home:
                slot.keys = ["<unknown>"]  # dirty and unknown: reset before any further use
            else:
                self._slots.remove(slot)
                await self.source.release(slot.box)
        elif slot is not self._home and self.source.contended() and len(self._slots) > 1:
            # Others wait for capacity: keep one state, give the rest back one per lease.
            self._slots.remove(slot)
            self.stats.given_back += 1
            await self.source.release(slot.box)
        self._changed.set()
        self._changed = anyio.Event()

    # -- the home sandbox (the final replay) -----------------------------------------------------------
    async def clean_home(self) -> Sandbox:
        """The home sandbox at the start state, reserved for the final replay (reset if it was used)."""
        while self._home.busy:
            await self._changed.wait()
        if self._borrowed:
            self._slots.remove(self._home)
            self._borrowed = False
            if self._home.keys:
                await self.reset_home()
        self._final = True
        return self._home.box

    async def reset_home(self) -> Sandbox:
        """Replace the home sandbox by a fresh one at the start state (e.g. before a re-replay)."""
        old = self._home.box
        self._home.busy = True
        try:
            await self.source.release(old)
            self._home.box = await self.source.acquire(timeout=self.acquire_timeout_s)
            self._home.keys = []
        except BaseException:
            self._home.box = None  # type: ignore[assignment]  # released; nothing to give back
            raise
        finally:
            self._home.busy = False
        self.stats.resets += 1
        self.stats.fresh += 1
        return self._home.box

    def home_released(self) -> bool:
        return self._home.box is None

    async def aclose(self) -> None:
        """Give back every search sandbox (not the home: its owner evaluates and releases it)."""
        self._closed = True
        with anyio.CancelScope(shield=True):
            snaps, self._snaps = list(self._snaps.values()), {}
            for snap in snaps:
                await self._drop(snap)
            slots, self._slots = [s for s in self._slots if s is not self._home], []
            for slot in slots:
                try:
                    await self.source.release(slot.box)
                except Exception as e:  # one failed removal must not keep the others alive
                    log.warning("could not release a search sandbox: %s", e)
