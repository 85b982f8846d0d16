"""SandboxPool: bounded, warm, self-healing reuse of sandboxes from one provider.

Limits (named, visible in `stats()`):
- `capacity`: sandboxes alive at once (busy + warm + starting + stopping).
- `max_starting`: provider starts in flight (container creation is the expensive part; on a small
  host starting everything at once makes every start slow; default: the provider's own `max_starting`,
  else one per core up to `capacity`).
- `warm`: idle, ready sandboxes kept ahead of demand by a background task.

Reset for reuse = destroy and recreate from the image (docs/design/pool.md says why): `release()`
with `dirty=True` (the default) destroys the sandbox (in the background: the caller does not wait
for the container removal); the warm-up task or the next `acquire()` starts a fresh one. `acquire()` health-checks an idle sandbox (container running and guest
answering) and replaces a dead one. Closing the pool destroys every sandbox it handed out or
holds, on every path: normal exit, error, cancellation, SIGINT (anyio cancels the main task).

    async with DockerProvider(settings) as provider, SandboxPool(provider, capacity=8, warm=2) as pool:
        async with pool.sandbox() as box:
            ...
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup

from harness.base.errors import ConfigError, SandboxError
from vm.types import Provider, Sandbox

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot of the pool for the progress display."""

    capacity: int
    max_starting: int
    busy: int
    warm: int
    starting: int
    stopping: int
    waiting: int
    started: int
    replaced: int
    failures: int

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


def starts_in_flight(provider: Provider, capacity: int) -> int:
    """Provider starts to have in flight by default. Starts are CPU-bound on the host: more in
    flight than cores made each slower. A provider that knows better (GNOME boots, sim) says."""
    return getattr(provider, "max_starting", None) or max(1, min(os.cpu_count() or 2, capacity))


class SandboxPool:
    def __init__(
        self,
        provider: Provider,
        capacity: int,
        max_starting: int | None = None,
        warm: int = 0,
        *,
        start_attempts: int = 2,
        health_check: bool = True,
        health_timeout_s: float = 15.0,
    ) -> None:
        if capacity < 1:
            raise ConfigError(f"pool capacity must be >= 1, got {capacity}")
        if max_starting is None:
            max_starting = starts_in_flight(provider, capacity)
        if max_starting < 1:
            raise ConfigError(f"pool max_starting must be >= 1, got {max_starting}")
        if not 0 <= warm <= capacity:
            raise ConfigError(f"pool warm must be between 0 and capacity ({capacity}), got {warm}")
        self.provider = provider
        self.capacity = capacity
        self.max_starting = max_starting
        self.warm = warm
        self.start_attempts = max(1, start_attempts)
        self.health_check = health_check
        self.health_timeout_s = health_timeout_s
        self.start_times: list[float] = []  # seconds per successful provider.start, for benchmarks
        self.last_error: BaseException | None = None

        self._limiter = anyio.CapacityLimiter(max_starting)
        self._idle: deque[Sandbox] = deque()
        self._busy: dict[int, Sandbox] = {}  # by id(): sandboxes may be unhashable dataclasses
        self._starting = 0
        self._warm_starting = 0
        self._stopping = 0
        self._waiting = 0
        self._started = 0
        self._replaced = 0
        self._failures = 0
        self._changed = anyio.Event()
        self._tg: TaskGroup | None = None
        self._closed = False
        self._warm_backoff = 0.0
        self._warm_paused_until = 0.0

    # --- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> SandboxPool:
        if self._tg is not None or self._closed:
            raise RuntimeError("a SandboxPool can be entered once")
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._keep_warm)
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        assert self._tg is not None
        self._closed = True
        self._tg.cancel_scope.cancel()
        # The body's own error is the caller's, not a pool task's: let it propagate unwrapped
        # (anyio would wrap it in an ExceptionGroup). Cancellation must reach the task group.
        if exc_type is not None and issubclass(exc_type, anyio.get_cancelled_exc_class()):
            passed = (exc_type, exc, tb)
        else:
            passed = (None, None, None)
        try:
            await self._tg.__aexit__(*passed)
        finally:
            await self.aclose()
        return None

    async def aclose(self) -> None:
        """Destroy every sandbox the pool holds or handed out. Shielded: runs fully even when cancelled."""
        self._closed = True
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        self._notify()  # waiting acquirers wake up and see the pool closed
        with anyio.CancelScope(shield=True):
            boxes = [*self._idle, *self._busy.values()]
            self._idle.clear()
            self._busy.clear()
            async with anyio.create_task_group() as tg:
                for box in boxes:
                    tg.start_soon(self._destroy, box)

    # --- acquire / release ------------------------------------------------------------------------

    async def acquire(self, *, timeout: float | None = None,
                      start: Callable[[], Awaitable[Sandbox]] | None = None) -> Sandbox:
        """A ready sandbox for exclusive use: a warm one (health-checked) or a freshly started one.

        `start` (e.g. a fork of a snapshot) makes the new sandbox instead of `provider.start`, within
        the same capacity; a warm sandbox is then removed when it stands in the way."""
        try:
            with anyio.fail_after(timeout):
                return await self._acquire(start)
        except TimeoutError as e:
            s = self.stats()
            raise SandboxError(
                f"no sandbox available within {timeout}s (capacity {s.capacity}, busy {s.busy}, starting {s.starting})"
            ) from e

    async def _acquire(self, start: Callable[[], Awaitable[Sandbox]] | None = None) -> Sandbox:
        self._waiting += 1
        try:
            while True:
                self._check_open()
                if self._idle and start is None:
                    box = self._idle.popleft()
                    self._busy[id(box)] = box
                    self._notify()  # idle dropped below `warm`: the warm-up task tops it up
                    try:
                        healthy = await self._healthy(box)
                    except BaseException:  # cancelled mid-check: the sandbox goes back, unharmed
                        self._busy.pop(id(box), None)
                        self._idle.appendleft(box)
                        self._notify()
                        raise
                    if healthy:
                        return box
                    log.warning("sandbox %s is dead (container exited or guest silent); replacing it", _name(box))
                    self._busy.pop(id(box), None)
                    self._replaced += 1
                    await self._destroy(box)
                    continue
                if self._alive() < self.capacity:
                    self._starting += 1
                    try:
                        box = await self._start(start)
                    finally:
                        self._starting -= 1
                        self._notify()
                    if self._closed:
                        await self._destroy(box)
                        self._check_open()
                    self._busy[id(box)] = box
                    return box
                if start is not None and self._idle:  # a warm sandbox holds the capacity a fork needs
                    await self._destroy(self._idle.popleft())
                    continue
                await self._changed.wait()
        finally:
            self._waiting -= 1

    async def release(self, sandbox: Sandbox, *, dirty: bool = True) -> None:
        """Give a sandbox back. dirty=True (default): destroy it, a fresh one replaces it on demand.
        dirty=False: the caller vouches that its state is clean; it goes back to the warm set."""
        if id(sandbox) not in self._busy:
            if self._closed:
                await self._destroy(sandbox)  # aclose got there first; stop is idempotent
                return
            raise SandboxError(f"release of {_name(sandbox)}: not acquired from this pool (or released twice)")
        self._busy.pop(id(sandbox), None)
        if not dirty and not self._closed:
            self._idle.append(sandbox)
            self._notify()
        elif self._tg is not None and not self._closed:
            # Removal runs in the pool's task group: the caller does not wait for it, capacity
            # counts it as stopping until it is gone, and closing the pool waits for it.
            self._stopping += 1
            self._tg.start_soon(self._stop_counted, sandbox)
        else:
            await self._destroy(sandbox)

    async def reset(self, sandbox: Sandbox) -> Sandbox:
        """Destroy `sandbox` and return a fresh one (a warm one when available); the removal of the
        old one overlaps the wait for the new one."""
        await self.release(sandbox, dirty=True)
        return await self.acquire()

    @asynccontextmanager
    async def sandbox(self, *, timeout: float | None = None, dirty: bool = True) -> AsyncIterator[Sandbox]:
        box = await self.acquire(timeout=timeout)
        try:
            yield box
        finally:
            with anyio.CancelScope(shield=True):
                await self.release(box, dirty=dirty)

    def stats(self) -> PoolStats:
        return PoolStats(
            capacity=self.capacity,
            max_starting=self.max_starting,
            busy=len(self._busy),
            warm=len(self._idle),
            starting=self._starting,
            stopping=self._stopping,
            waiting=self._waiting,
            started=self._started,
            replaced=self._replaced,
            failures=self._failures,
        )

    # --- internals --------------------------------------------------------------------------------

    def _alive(self) -> int:
        return len(self._busy) + len(self._idle) + self._starting + self._stopping

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError("sandbox pool is closed")

    async def _healthy(self, box: Sandbox) -> bool:
        if not self.health_check:
            return True
        with anyio.move_on_after(self.health_timeout_s):
            return await box.alive()
        return False

    async def _start(self, start: Callable[[], Awaitable[Sandbox]] | None = None) -> Sandbox:
        """provider.start() (or `start`) under the starts-in-flight limit, retried on SandboxError."""
        last: SandboxError | None = None
        for attempt in range(1, self.start_attempts + 1):
            async with self._limiter:
                t0 = anyio.current_time()
                try:
                    box = await (start or self.provider.start)()
                except SandboxError as e:
                    self._failures += 1
                    self.last_error = last = e
                    log.warning("sandbox start failed (attempt %d/%d): %s", attempt, self.start_attempts, e)
                    continue
            self._started += 1
            if start is None:  # forks are measured by their callers
                self.start_times.append(anyio.current_time() - t0)
            return box
        raise SandboxError(f"could not start a sandbox in {self.start_attempts} attempts: {last}") from last

    async def _destroy(self, box: Sandbox) -> None:
        self._stopping += 1
        await self._stop_counted(box)

    async def _stop_counted(self, box: Sandbox) -> None:
        """provider.stop, shielded; the caller has counted `box` in `_stopping`."""
        try:
            with anyio.CancelScope(shield=True):
                await self.provider.stop(box)
        except Exception as e:  # a failed removal must not mask the caller's outcome; gc catches leftovers
            log.warning("could not destroy sandbox %s: %s", _name(box), e)
        finally:
            self._stopping -= 1
            self._notify()

    async def _keep_warm(self) -> None:
        """Background: keep `warm` idle sandboxes, within capacity, pausing after failures."""
        assert self._tg is not None
        while not self._closed:
            changed = self._changed
            now = anyio.current_time()
            if now < self._warm_paused_until:
                with anyio.move_on_after(self._warm_paused_until - now):
                    await changed.wait()
                continue
            need = min(self.warm - len(self._idle) - self._warm_starting, self.capacity - self._alive())
            for _ in range(max(0, need)):
                self._warm_starting += 1
                self._starting += 1
                self._tg.start_soon(self._warm_one)
            await changed.wait()

    async def _warm_one(self) -> None:
        box: Sandbox | None = None
        try:
            box = await self._start()
        except SandboxError as e:
            self._warm_backoff = min(30.0, max(0.5, self._warm_backoff * 2))
            self._warm_paused_until = anyio.current_time() + self._warm_backoff
            log.warning("warm-up paused %.1fs after a failed start: %s", self._warm_backoff, e)
        finally:
            self._warm_starting -= 1
            self._starting -= 1
            if box is not None:
                if self._closed:
                    await self._destroy(box)
                else:
                    self._warm_backoff = 0.0
                    self._idle.append(box)
            self._notify()


async def on_fresh_sandbox(pool: SandboxPool, work: Callable[[Sandbox], Awaitable[T]], *, timeout: float,
                           attempts: int = 2, what: str = "work") -> T:
    """`work(box)` on a fresh sandbox of `pool`, within `timeout`; a sandbox that fails (start, guest
    silent, SandboxError) or runs out of time is infrastructure, retried on a fresh one up to
    `attempts` times. SandboxError naming the last cause when every attempt failed."""
    why = ""
    for attempt in range(attempts):
        try:
            with anyio.fail_after(timeout):
                async with pool.sandbox() as box:
                    return await work(box)
        except (SandboxError, TimeoutError) as e:
            why = f"no result within {timeout:g} s" if isinstance(e, TimeoutError) else str(e)
            log.warning("%s: sandbox failed (attempt %d/%d): %s", what, attempt + 1, attempts, why)
    raise SandboxError(why)


def _name(box: Sandbox) -> str:
    info = getattr(box, "info", None)
    extra = getattr(info, "extra", None) or {}
    return str(extra.get("name") or getattr(info, "id", None) or box)
