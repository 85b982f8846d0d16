"""SandboxPool mechanics on an in-memory provider (fast, no Docker): limits, warm-up, replacement of
dead sandboxes, cleanup on every exit path. The same pool on real containers: test_pool_docker.py."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import anyio
import pytest

from harness.base.errors import ConfigError, SandboxError
from vm.pool import SandboxPool
from vm.types import SandboxInfo


class FakeSandbox:
    def __init__(self, n: int) -> None:
        self.info = SandboxInfo(id=f"fake-{n}", provider="fake", run_id="t", extra={"name": f"fake-{n}"})
        self.dead = False
        self.stopped = False

    async def alive(self) -> bool:
        return not self.dead and not self.stopped


class FakeProvider:
    """Provider seam stand-in: start takes `delay` seconds; cancelled starts leave nothing behind."""

    name = "fake"

    def __init__(self, delay: float = 0.05, fail: Callable[[int], bool] = lambda n: False, stop_delay: float = 0.001) -> None:
        self.delay = delay
        self.stop_delay = stop_delay
        self.fail = fail
        self.counter = itertools.count(1)
        self.attempts = 0
        self.live: set[FakeSandbox] = set()
        self.in_flight = 0
        self.max_in_flight = 0
        self.max_live = 0

    async def start(self) -> FakeSandbox:
        n = next(self.counter)
        self.attempts += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await anyio.sleep(self.delay)
            if self.fail(n):
                raise SandboxError(f"fake-{n}: boot failed")
            box = FakeSandbox(n)
            self.live.add(box)
            self.max_live = max(self.max_live, len(self.live))
            return box
        finally:
            self.in_flight -= 1

    async def stop(self, sandbox: FakeSandbox) -> None:
        await anyio.sleep(self.stop_delay)
        sandbox.stopped = True
        self.live.discard(sandbox)

    async def gc(self, *, run_id: str | None = None) -> int:
        return 0


async def eventually(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not cond():  # noqa: ASYNC110 -- polling a condition with a deadline, by design
            await anyio.sleep(0.005)


async def test_capacity_bounds_sandboxes_alive_and_every_task_gets_one():
    provider = FakeProvider()
    served = []

    async def task(i: int) -> None:
        async with pool.sandbox() as box:
            served.append(box.info.id)
            await anyio.sleep(0.02)

    async with SandboxPool(provider, capacity=3, max_starting=3) as pool:
        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(task, i)
    assert len(served) == 10 and len(set(served)) == 10  # dirty release: never reused
    assert provider.max_live <= 3
    assert provider.live == set()


async def test_starts_in_flight_are_limited_separately_from_capacity():
    provider = FakeProvider(delay=0.1)
    async with SandboxPool(provider, capacity=8, max_starting=2) as pool:
        boxes = []

        async def take() -> None:
            boxes.append(await pool.acquire())

        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(take)
        assert provider.max_in_flight == 2
        assert pool.stats().busy == 8
    assert provider.live == set()


async def test_warm_sandboxes_are_started_ahead_of_demand_and_refilled():
    provider = FakeProvider()
    async with SandboxPool(provider, capacity=4, warm=2) as pool:
        await eventually(lambda: pool.stats().warm == 2)
        with anyio.fail_after(0.01 + provider.delay / 2):  # faster than any start: it was warm
            box = await pool.acquire()
        await eventually(lambda: pool.stats().warm == 2)
        s = pool.stats()
        assert (s.busy, s.warm, s.starting) == (1, 2, 0)
        await pool.release(box)
    assert provider.live == set()


async def test_warm_never_exceeds_capacity():
    provider = FakeProvider()
    async with SandboxPool(provider, capacity=2, warm=2) as pool:
        a = await pool.acquire()
        b = await pool.acquire()
        await anyio.sleep(0.2)  # give the warm-up task time to (wrongly) start more
        assert len(provider.live) == 2 and pool.stats().warm == 0
        await pool.release(a)
        await pool.release(b)


async def test_dirty_release_returns_at_once_but_capacity_waits_for_the_removal():
    provider = FakeProvider(delay=0.01, stop_delay=0.3)
    async with SandboxPool(provider, capacity=1) as pool:
        box = await pool.acquire()
        with anyio.fail_after(0.1):
            await pool.release(box)
        assert pool.stats().stopping == 1 and not box.stopped
        fresh = await pool.acquire(timeout=5)  # waits for the removal: capacity 1
        assert box.stopped and provider.max_live == 1
        await pool.release(fresh)
    assert provider.live == set()


async def test_dead_sandbox_is_detected_on_acquire_and_replaced():
    provider = FakeProvider()
    async with SandboxPool(provider, capacity=2, warm=1) as pool:
        await eventually(lambda: pool.stats().warm == 1)
        (idle,) = provider.live
        idle.dead = True  # e.g. the container was killed from outside
        box = await pool.acquire()
        assert box is not idle and await box.alive()
        assert idle.stopped and pool.stats().replaced == 1
        await pool.release(box)


async def test_clean_release_reuses_dirty_release_recreates():
    provider = FakeProvider()
    async with SandboxPool(provider, capacity=1) as pool:
        first = await pool.acquire()
        await pool.release(first, dirty=False)
        again = await pool.acquire()
        assert again is first
        fresh = await pool.reset(again)
        assert fresh is not first
        await eventually(lambda: first.stopped)
        await pool.release(fresh)
        with pytest.raises(SandboxError, match="not acquired from this pool"):
            await pool.release(fresh)


async def test_error_inside_the_pool_destroys_busy_warm_and_starting_sandboxes():
    provider = FakeProvider(delay=0.05)
    with pytest.raises(RuntimeError, match="agent crashed"):
        async with SandboxPool(provider, capacity=6, max_starting=1, warm=3) as pool:
            await pool.acquire()
            await pool.acquire()
            await eventually(lambda: pool.stats().warm >= 1)
            raise RuntimeError("agent crashed")
    assert provider.live == set() and provider.in_flight == 0


async def test_cancellation_destroys_every_sandbox():
    provider = FakeProvider(delay=0.05)
    with anyio.move_on_after(0.3) as scope:
        async with SandboxPool(provider, capacity=4, max_starting=2, warm=2) as pool:
            async with anyio.create_task_group() as tg:
                for _ in range(6):  # more than capacity: some wait, some start, some hold
                    tg.start_soon(_hold_forever, pool)
    assert scope.cancelled_caught
    assert provider.live == set() and provider.in_flight == 0
    assert pool.stats().busy == 0 and pool.stats().warm == 0


async def _hold_forever(pool: SandboxPool) -> None:
    async with pool.sandbox():
        await anyio.sleep_forever()


async def test_failed_start_is_retried_and_then_reported():
    provider = FakeProvider(fail=lambda n: n == 1)
    async with SandboxPool(provider, capacity=1, start_attempts=2) as pool:
        box = await pool.acquire()
        assert box.info.id == "fake-2" and pool.stats().failures == 1
        await pool.release(box)

    broken = FakeProvider(fail=lambda n: True)
    async with SandboxPool(broken, capacity=1, start_attempts=3) as pool:
        with pytest.raises(SandboxError, match=r"could not start a sandbox in 3 attempts: fake-3: boot failed"):
            await pool.acquire()
        assert pool.stats().failures == 3


async def test_warm_up_backs_off_after_failures_instead_of_spinning():
    provider = FakeProvider(delay=0.001, fail=lambda n: True)
    async with SandboxPool(provider, capacity=2, warm=2, start_attempts=1):
        await anyio.sleep(1.0)
    assert provider.attempts <= 10  # backoff 0.5 s, 1 s, ...; a spinning loop makes hundreds


async def test_acquire_times_out_with_the_limits_in_the_message():
    provider = FakeProvider()
    async with SandboxPool(provider, capacity=1) as pool:
        held = await pool.acquire()
        with pytest.raises(SandboxError, match=r"no sandbox available within 0.2s \(capacity 1, busy 1"):
            await pool.acquire(timeout=0.2)
        await pool.release(held)
        box = await pool.acquire(timeout=1)  # capacity freed: the waiter gets one
        await pool.release(box)


async def test_waiter_gets_the_capacity_freed_by_a_release():
    provider = FakeProvider()
    async with SandboxPool(provider, capacity=1) as pool:
        held = await pool.acquire()
        got = []

        async def wait_for_one() -> None:
            got.append(await pool.acquire(timeout=5))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_for_one)
            await eventually(lambda: pool.stats().waiting == 1)
            await pool.release(held, dirty=False)
        assert got == [held]
        await pool.release(held)


async def test_closed_pool_refuses_and_release_after_close_still_destroys():
    provider = FakeProvider()
    pool = SandboxPool(provider, capacity=2)
    async with pool:
        box = await pool.acquire()
    assert box.stopped  # aclose destroyed the busy sandbox
    await pool.release(box)  # no error: the holder may release late
    with pytest.raises(SandboxError, match="closed"):
        await pool.acquire()


def test_bad_limits_are_config_errors():
    with pytest.raises(ConfigError, match="capacity"):
        SandboxPool(FakeProvider(), capacity=0)
    with pytest.raises(ConfigError, match="warm"):
        SandboxPool(FakeProvider(), capacity=2, warm=3)
    with pytest.raises(ConfigError, match="max_starting"):
        SandboxPool(FakeProvider(), capacity=2, max_starting=0)
