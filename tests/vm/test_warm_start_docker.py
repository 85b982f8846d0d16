"""Warm start (vm/docker_warm.py): starts hand out forks of one boot snapshot, or fresh sandboxes
where forks do not work. Needs forks (a Docker daemon with --experimental, CRIU) for the first
test; it skips and says which is missing elsewhere."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator

import aiodocker
import anyio
import pytest
from helpers import freeze_a_restore, traces_of

from harness.base.errors import SandboxError
from vm.docker import LABEL_DIR, LABEL_RUN, DockerProvider, DockerSandbox, DockerSettings
from vm.docker_warm import MAX_FORK_FAILURES
from vm.types import Snapshot

pytestmark = pytest.mark.docker


async def _pointer_after_move(box: DockerSandbox, x: int, y: int) -> str:
    await box.execute(f"pyautogui.moveTo({x}, {y})")
    got = await box.run(["xdotool", "getmouselocation", "--shell"], timeout=30)
    return " ".join(line for line in got.output.split() if line.startswith(("X=", "Y=")))


@contextlib.asynccontextmanager
async def _warm_osworld(settings: DockerSettings, run_id: str) -> AsyncIterator[DockerProvider]:
    """A warm-starting provider of the osworld desktop; the test skips where forks do not work."""
    async with DockerProvider(settings.model_copy(update={"desktop": "osworld", "warm_start": True}),
                              run_id=run_id) as provider:
        why = await provider.fork_unavailable()
        if why:
            pytest.skip(f"forks are off on this machine: {why}")
        yield provider


async def test_warm_starts_are_independent_forks_of_one_boot_snapshot_dropped_on_close(
        docker_settings: DockerSettings, test_run_id: str) -> None:
    async with _warm_osworld(docker_settings, test_run_id) as provider:
        a, b = await provider.start(), await provider.start()
        # Both forks of the one boot snapshot; its source sandbox is gone, only the two are live.
        assert provider.warm.snapshots_taken == 1 and provider.warm.off is None
        snap = provider.warm.snapshot
        assert snap is not None
        assert a.info.extra["forked_from"] == b.info.extra["forked_from"] == snap.id
        assert {box.name for box in provider.live()} == {a.name, b.name}
        # Labelled as fresh sandboxes are (for `vm gc`); only the socket folder differs.
        assert a.start_s and b.start_s
        assert {k: v for k, v in a.info.labels.items() if k != LABEL_DIR} == \
            {k: v for k, v in b.info.labels.items() if k != LABEL_DIR}
        assert a.info.labels[LABEL_RUN] == test_run_id
        # Independent: a file written in one is not in the other; each takes its own input.
        await a.upload("/home/user/only-in-a.txt", b"a\n")
        assert await b.download("/home/user/only-in-a.txt") is None
        assert await _pointer_after_move(a, 100, 200) == "X=100 Y=200"
        assert await _pointer_after_move(b, 300, 400) == "X=300 Y=400"
        await provider.stop(a)
        assert await b.alive() and not await a.alive()
        image = snap.extra["image"]
    async with aiodocker.Docker() as docker:
        with pytest.raises(aiodocker.DockerError):
            await docker.images.inspect(image)


async def test_without_forks_warm_start_falls_back_to_fresh_sandboxes(
        docker_settings: DockerSettings, test_run_id: str, caplog: pytest.LogCaptureFixture) -> None:
    settings = docker_settings.model_copy(update={"desktop": "light", "warm_start": True})
    async with DockerProvider(settings, run_id=test_run_id) as provider:
        async def no_forks(**_: object) -> str:
            return "simulated: no CRIU here"

        provider.fork_unavailable = no_forks  # type: ignore[method-assign]  # as on an engine without CRIU
        boxes = [await provider.start() for _ in range(2)]
        assert all("forked_from" not in box.info.extra for box in boxes)
        assert boxes[0].spec.token != boxes[1].spec.token  # fresh sandboxes, each with its own token
        assert provider.warm.snapshots_taken == 0 and "no CRIU here" in (provider.warm.off or "")
        assert sum("warm start is off" in r.message for r in caplog.records) == 1  # said once
        assert (await boxes[1].run(["true"], timeout=30)).ok


async def test_forks_failing_in_a_row_turn_warm_start_off_and_every_start_still_succeeds(
        docker_settings: DockerSettings, test_run_id: str) -> None:
    settings = docker_settings.model_copy(update={"desktop": "light", "warm_start": True})
    async with DockerProvider(settings, run_id=test_run_id) as provider:
        if await provider.fork_unavailable():
            pytest.skip("forks are off on this machine")

        async def broken_fork(snap: Snapshot) -> DockerSandbox:
            raise SandboxError("simulated restore failure")

        provider.fork = broken_fork  # type: ignore[method-assign]
        boxes = [await provider.start()]
        assert provider.warm.off is None and provider.warm.snapshot is not None  # one failure: still on
        boxes += [await provider.start() for _ in range(MAX_FORK_FAILURES - 1)]
        assert all("forked_from" not in box.info.extra for box in boxes)
        assert (await boxes[-1].run(["true"], timeout=30)).ok
        # One failure makes one fresh start; failures in a row turn warm start off and drop the snapshot.
        assert "simulated restore failure" in (provider.warm.off or "") and provider.warm.snapshot is None


async def test_a_hung_restore_of_a_warm_start_is_killed_and_that_start_boots_fresh(
        docker_settings: DockerSettings, test_run_id: str) -> None:
    settings = docker_settings.model_copy(update={"desktop": "light", "warm_start": True, "restore_timeout_s": 10.0})
    async with DockerProvider(settings, run_id=test_run_id) as provider:
        if await provider.fork_unavailable():
            pytest.skip("forks are off on this machine")
        frozen: list[tuple[str, int]] = []
        boxes: list[DockerSandbox] = []

        async def freeze() -> None:
            frozen.append(await freeze_a_restore(provider.provider_id))

        async with anyio.create_task_group() as tg:
            tg.start_soon(freeze)
            boxes.append(await provider.start())  # boots, snapshots, forks: that fork's CRIU is stopped
        (hung, _), = frozen
        # The start went fresh (its own token), warm start stays on for the next, which is a fork.
        assert "forked_from" not in boxes[0].info.extra and provider.warm.off is None
        boxes.append(await provider.start())
        assert boxes[1].info.extra["forked_from"] == provider.warm.snapshot.id  # type: ignore[union-attr]
        assert (await boxes[1].run(["true"], timeout=30)).ok
        # The hung restore's container and processes are gone; only the two sandboxes are left.
        async with aiodocker.Docker() as docker:
            ours = await docker.containers.list(all=True, filters={"label": [f"cua-harness.provider={provider.provider_id}"]})
        assert {c.id for c in ours} == {b.container_id for b in boxes}
        assert not await anyio.to_thread.run_sync(traces_of, hung)


def _clock_minute(xml: str | None) -> int | None:
    """The minute the top bar's clock label shows ("Dec 6 20:47", with GNOME's thin spaces and a ratio sign)."""
    m = re.search(r'label name="[A-Z][a-z]{2} \d+\W+\d\d\W+(\d\d)"', xml or "")
    return int(m.group(1)) if m else None


async def test_a_fork_shows_the_current_minute_not_the_snapshots(
        docker_settings: DockerSettings, test_run_id: str) -> None:
    # The restored shell's clock would wait for its old minute timer (up to a minute stale);
    # every osworld fork redraws it (vm/docker_fork.py). Forked only once the minute has moved on from the snapshot's.
    async with _warm_osworld(docker_settings, test_run_id) as provider:
        first = await provider.start()  # boots, snapshots, then is a fork itself
        snap_minute = time.gmtime().tm_min  # the snapshot's minute or (rarely) the one before
        await provider.stop(first)
        assert provider.warm.snapshot is not None
        # Until the minute moves on (the sandbox's zone is whole hours off UTC): sleep to the next one.
        if time.gmtime().tm_min == snap_minute:
            await anyio.sleep(60.5 - time.time() % 60)
        fork = await provider.start()
        before = time.gmtime().tm_min
        shown = _clock_minute(await fork.guest.accessibility())
        after = time.gmtime().tm_min
        assert shown in (before, after) and shown != snap_minute
        key = "org.gnome.desktop.interface clock-show-seconds"
        assert (await fork.run(["gsettings", "get", *key.split()], timeout=30)).output.strip() == "false"
