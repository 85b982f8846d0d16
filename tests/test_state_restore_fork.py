"""State restore by forking snapshots (state_restore=fork|auto) on simulated sandboxes from a real
SandboxPool: a sibling state comes from its parent's snapshot with nothing replayed, the snapshot
budget evicts the least recently used, and a provider or a snapshot that cannot fork leaves replay
in charge with the reason kept."""

from __future__ import annotations

import pytest

from harness.base.errors import ConfigError, SandboxError
from search.mcts.state_restore import PoolSource, StateRestore
from vm.pool import SandboxPool
from vm.sim import Scenario, SimProvider

SC = Scenario.parse("chain-4-s3")
C = [SC.correct_action(i) for i in range(4)]
JUNK = "pyautogui.click(1, 1)"


async def _prepare(box) -> None:
    await box.guest.execute(["sim", "scenario", SC.name])


async def _setup(pool: SandboxPool, **kw) -> StateRestore:
    home = await pool.acquire()
    await _prepare(home)
    return StateRestore(PoolSource(pool, _prepare), home, **kw)


async def _sibling_is_replayed(restore: StateRestore) -> None:
    """Run [c0] then move past it; its sibling then comes from a replay, not a fork."""
    async with restore.at([]) as lease:
        await lease.execute(C[0])
    async with restore.at([C[0]]) as lease:
        await lease.execute(JUNK)
    async with restore.at([C[0]]) as lease:
        assert lease.restore["kind"] == "replay" and lease.sandbox.state == "1"


async def test_a_sibling_is_forked_from_its_parents_snapshot_with_nothing_replayed() -> None:
    provider = SimProvider()
    async with SandboxPool(provider, capacity=6) as pool:
        restore = await _setup(pool, mode="fork")
        async with restore.at([]) as lease:  # the start state is snapshotted, then left
            assert lease.restore["kind"] == "fresh"
            await lease.execute(C[0])
        async with restore.at([C[0]]) as lease:  # the child continues in place; [c0] is snapshotted
            assert lease.restore["kind"] == "hit"
            await lease.execute(C[1])
            first = lease.sandbox
        async with restore.at([C[0]]) as lease:  # its sibling: no sandbox holds [c0] any more
            assert lease.restore == {**lease.restore, "kind": "fork", "replayed": 0}
            assert lease.sandbox is not first and lease.sandbox.state == "1"
            assert lease.sandbox.files["/sim/state"] == b"1"  # files come along
            await lease.execute(JUNK)
        assert first.state == "2"  # the fork is independent of the sandbox it came from
        s = restore.stats
        assert (s.forks, s.snapshots, s.replayed) == (1, 2, 0)
        assert restore.fork_off is None
        await restore.aclose()
        assert provider._snapshots == {}  # every snapshot dropped at the end
        assert pool.stats().busy == 1  # only the home is still out


async def test_the_snapshot_budget_evicts_the_least_recently_used() -> None:
    provider = SimProvider()
    async with SandboxPool(provider, capacity=4) as pool:
        restore = await _setup(pool, mode="fork", max_snapshots=2)
        path: list[str] = []
        for action in C:
            async with restore.at(path) as lease:
                await lease.execute(action)
            path.append(action)
        assert restore.stats.snapshots == 4 and restore.stats.evicted == 2
        assert len(provider._snapshots) == 2
        async with restore.at([]) as lease:  # the start state's snapshot was evicted: a fresh sandbox
            assert lease.restore["kind"] == "fresh"
        await restore.aclose()


async def test_auto_replays_where_the_provider_cannot_fork_and_fork_says_why() -> None:
    async with SandboxPool(SimProvider(forks=False), capacity=4) as pool:
        restore = await _setup(pool, mode="auto")
        await _sibling_is_replayed(restore)
        assert restore.stats.snapshots == 0 and "forks=False" in (restore.fork_off or "")
        await restore.aclose()
        strict = await _setup(pool, mode="fork")
        with pytest.raises(ConfigError, match=r"state_restore=fork.*forks=False"):
            async with strict.at([]):
                pass


async def test_a_failing_snapshot_turns_forks_off_for_the_task_and_replay_goes_on() -> None:
    provider = SimProvider()

    async def refuse(box):
        raise SandboxError("checkpoint failed: CRIU: Unix socket 600074 not found")

    provider.snapshot = refuse  # an app CRIU cannot dump
    async with SandboxPool(provider, capacity=4) as pool:
        restore = await _setup(pool, mode="auto")
        await _sibling_is_replayed(restore)
        assert "Unix socket 600074 not found" in restore.fork_off
        await restore.aclose()
