"""State restore on simulated sandboxes from a real SandboxPool: which sandbox serves a node, how
many actions are replayed, the per-task bound, borrowing and resetting the home sandbox, and two
tasks sharing a small pool without deadlock."""

from __future__ import annotations

import random

import anyio
import pytest

from harness.base.errors import SandboxError
from search.mcts.state_restore import PoolSource, StateRestore
from vm.pool import SandboxPool
from vm.sim import Scenario, SimProvider

SC = Scenario.parse("chain-4-s3")
C = [SC.correct_action(i) for i in range(4)]
JUNK = "pyautogui.click(1, 1)"


async def _prepare(box) -> None:
    await box.guest.execute(["sim", "scenario", SC.name])


def _restore(pool: SandboxPool, home, **kw) -> StateRestore:
    return StateRestore(PoolSource(pool, _prepare), home, **kw)


async def _home(pool: SandboxPool):
    box = await pool.acquire()
    await _prepare(box)
    return box


async def test_a_child_continues_in_the_sandbox_holding_its_parent_with_nothing_replayed() -> None:
    async with SandboxPool(SimProvider(), capacity=4) as pool:
        restore = _restore(pool, await _home(pool))
        async with restore.at([]) as lease:
            await lease.execute(C[0])
            first = lease.sandbox
        async with restore.at([C[0]]) as lease:
            assert lease.sandbox is first and lease.sandbox.state == "1"
            await lease.execute(C[1])
        async with restore.at([C[0], "# same action\n" + C[1].replace(", ", ",")]) as lease:
            assert lease.sandbox is first and lease.sandbox.state == "2"  # keys compare by AST
        s = restore.stats
        assert (s.replayed, s.hits, s.fresh, s.executed, restore.held) == (0, 2, 1, 2, 1)
        assert restore.home.state == "0"  # the home stays clean for the final replay
        await restore.aclose()


async def test_a_sibling_state_is_rebuilt_by_replaying_from_the_deepest_cached_ancestor() -> None:
    async with SandboxPool(SimProvider(), capacity=6) as pool:
        restore = _restore(pool, await _home(pool))
        async with restore.at([]) as lease:
            for a in C[:3]:
                await lease.execute(a)
            deep = lease.sandbox  # holds [c0, c1, c2]
        async with restore.at([C[0]]) as lease:  # deep's cursor is past it: a fresh sandbox, c0 replayed
            assert lease.sandbox is not deep and lease.sandbox.state == "1"
            await lease.execute(JUNK)  # now holds [c0, JUNK]
        assert restore.stats.replayed == 1
        async with restore.at([C[0], C[1], C[2], C[3]]) as lease:  # deep is the deepest ancestor: 1 replayed
            assert lease.sandbox is deep and lease.sandbox.state == "goal"
        assert restore.stats.replayed == 2
        async with restore.at([C[0], JUNK, C[1], C[2]]) as lease:  # from [c0, JUNK]: 2 replayed
            assert lease.sandbox.state == "3"
        assert restore.stats.replayed == 4 and restore.stats.fresh == 2 and restore.stats.peak == 2
        await restore.aclose()
        assert pool.stats().busy == 1  # only the home is still out


async def test_at_most_m_sandboxes_per_task_the_least_recently_used_is_reset() -> None:
    provider = SimProvider()
    async with SandboxPool(provider, capacity=8) as pool:
        restore = _restore(pool, await _home(pool), max_sandboxes=2)
        for branch in ([C[0]], [JUNK], [C[0], C[1]], ["pyautogui.click(2, 2)"]):
            async with restore.at(branch[:-1]) as lease:
                await lease.execute(branch[-1])
            assert restore.held <= 2
        s = restore.stats
        assert s.peak == 2 and s.resets >= 1 and s.fresh == 2 + s.resets
        await restore.aclose()
        assert pool.stats().busy == 1


async def test_home_is_borrowed_when_the_pool_is_full_and_reset_before_the_final_replay() -> None:
    async with SandboxPool(SimProvider(), capacity=1) as pool:
        home = await _home(pool)
        restore = _restore(pool, home)
        async with restore.at([]) as lease:
            assert lease.sandbox is home  # no capacity for another: the search runs in the home
            await lease.execute(C[0])
        async with restore.at([JUNK]) as lease:  # the only sandbox is reset (destroy, new, setup)
            assert lease.sandbox.state == "0" and lease.sandbox is not home
        assert restore.stats.home_borrowed == 1 and restore.stats.resets == 1
        clean = await restore.clean_home()
        assert clean.state == "0"
        assert restore.home is clean and restore.held == 0
        await restore.aclose()
        assert pool.stats().busy == 1


async def test_a_lease_that_failed_gives_its_sandbox_back_instead_of_reusing_it() -> None:
    async with SandboxPool(SimProvider(), capacity=3) as pool:
        restore = _restore(pool, await _home(pool))
        with pytest.raises(SandboxError):
            async with restore.at([]) as lease:
                lease.sandbox.kill()
                await lease.execute(C[0])
        assert restore.held == 0 and pool.stats().busy == 1
        async with restore.at([C[0]]) as lease:
            assert lease.sandbox.state == "1"
        await restore.aclose()


async def test_sandboxes_are_given_back_while_other_tasks_wait_for_capacity() -> None:
    async with SandboxPool(SimProvider(), capacity=4) as pool:
        restore = _restore(pool, await _home(pool))
        for branch in ([C[0]], [JUNK], ["pyautogui.click(2, 2)"]):
            async with restore.at([]) as lease:
                await lease.execute(branch[0])
        assert restore.held == 3 and pool.stats().busy == 4
        got = []

        async def other_task() -> None:
            got.append(await pool.acquire(timeout=10))

        async with anyio.create_task_group() as tg:
            tg.start_soon(other_task)
            await anyio.wait_all_tasks_blocked()
            assert pool.stats().waiting == 1
            async with restore.at([C[0]]):
                pass
        assert got and restore.stats.given_back == 1 and restore.held == 2
        await pool.release(got[0])
        await restore.aclose()


async def test_two_tasks_searching_in_a_pool_smaller_than_their_wishes_both_finish() -> None:
    """Each task wants 4 sandboxes plus its home; the pool holds 3 in all. No deadlock, every lease
    lands on the right state, and every sandbox is given back."""
    async with SandboxPool(SimProvider(), capacity=3) as pool:
        done = []

        async def task(seed: int) -> None:
            rng = random.Random(seed)
            home = await _home(pool)
            restore = _restore(pool, home, max_sandboxes=4)
            try:
                for _ in range(30):
                    depth = rng.randint(0, 3)
                    path = [rng.choice([C[i], JUNK]) for i in range(depth)]
                    expected = 0
                    for i, a in enumerate(path):
                        if a == C[i] and expected == i:
                            expected += 1
                    async with restore.at(path) as lease:
                        assert lease.sandbox.state == str(expected)
                assert (await restore.clean_home()).state == "0"
            finally:
                await restore.aclose()
                await pool.release(restore.home)
            done.append(restore.stats)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(task, 1)
                tg.start_soon(task, 2)
        assert len(done) == 2 and pool.stats().busy == 0
        assert all(s.checkouts == 30 for s in done)


async def test_prefetch_restores_a_state_ahead_of_need_only_from_spare_capacity() -> None:
    async with SandboxPool(SimProvider(), capacity=3) as pool:
        restore = _restore(pool, await _home(pool), max_sandboxes=2)
        async with restore.at([]) as lease:
            await lease.execute(C[0])
            await lease.execute(C[1])  # holds [c0, c1]; the state [c0] is gone
        assert await restore.prefetch([C[0]]) is True  # grown from the pool, c0 replayed
        assert restore.stats.replayed == 1 and restore.held == 2
        assert await restore.prefetch([C[0]]) is False  # already held
        async with restore.at([C[0], JUNK]) as lease:  # served by the prefetched sandbox: 1 replay
            assert lease.sandbox.state == "1"
        assert restore.stats.prefetch_used == 1 and restore.stats.replayed == 2
        assert await restore.prefetch([C[0]]) is False  # at max_sandboxes: never evicts for a guess
        await restore.aclose()
