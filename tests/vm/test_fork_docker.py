"""Snapshot and fork of live Docker sandboxes (vm/docker_fork.py) on the desktop image.

Needs a Docker daemon started with --experimental and a working CRIU on its PATH (scripts/setup.sh
provides both on a fresh machine, as in CI); elsewhere these tests skip and say which is missing.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiodocker
import anyio
import anyio.lowlevel
import pytest
import pytest_asyncio
from helpers import alive, freeze_a_dump, freeze_a_restore, traces_of

from harness.base.errors import SandboxError
from vm import docker_fork
from vm.docker import DockerProvider, DockerSandbox, DockerSettings
from vm.docker_fork import CONTAINERD_TMP, gc_snapshots
from vm.docker_restore import RestoreHung
from vm.fork_bench import CASES, open_app, same_screen, still_screen
from vm.types import Snapshot

pytestmark = pytest.mark.docker

UNSAVED = "typed before the snapshot"


@asynccontextmanager
async def _forking(settings: DockerSettings, desktop: str, run_id: str) -> AsyncIterator[DockerProvider]:
    async with DockerProvider(settings.model_copy(update={"desktop": desktop}), run_id=run_id) as provider:
        why = await provider.fork_unavailable()
        if why:
            pytest.skip(f"forks are off on this machine: {why}")
        yield provider


@pytest_asyncio.fixture(scope="module")
async def forking(docker_settings: DockerSettings, test_run_id: str) -> AsyncIterator[DockerProvider]:
    # The light desktop: these tests start many forks, which restore about twice as fast there; the
    # osworld desktop has its own test below.
    async with _forking(docker_settings, "light", test_run_id) as provider:
        yield provider


@pytest_asyncio.fixture(scope="module")
async def editor(forking: DockerProvider) -> AsyncIterator[DockerSandbox]:
    """A sandbox with a file written before the snapshot and mousepad holding unsaved text."""
    box = await forking.start()
    try:
        await box.upload("/home/user/before.txt", b"written before the snapshot\n")
        await open_app(box, CASES["text_editor"])
        yield box
    finally:
        await forking.stop(box)


async def _saved(box: DockerSandbox, text: str) -> str:
    await box.execute(f"pyautogui.typewrite({text!r}, interval=0.01)")
    await box.execute("pyautogui.hotkey('ctrl', 's')")
    with anyio.move_on_after(20):
        while True:
            got = (await box.download("/home/user/fork.txt") or b"").decode()
            if text in got:
                return got
            await anyio.sleep(0.3)
    return (await box.download("/home/user/fork.txt") or b"").decode()


async def test_forks_of_one_snapshot_run_side_by_side_each_in_the_snapshot_state(
        forking: DockerProvider, editor: DockerSandbox) -> None:
    shot = await still_screen(editor)
    snap = await forking.snapshot(editor)
    assert snap.size_bytes > 10 * 2**20 and snap.source == editor.name
    forks: list[DockerSandbox] = []
    try:
        for _ in range(4):
            forks.append(await forking.fork(snap))
        assert len({f.container_id for f in forks} | {editor.container_id}) == 5
        for f in forks:
            # The same screen as at snapshot time: the window, its unsaved text (the caret may blink).
            assert same_screen(shot, await f.guest.screenshot())
            assert await f.download("/home/user/before.txt") == b"written before the snapshot\n"
        texts = {}

        async def save(i: int, f: DockerSandbox) -> None:
            texts[i] = await _saved(f, f" fork{i}")

        async with anyio.create_task_group() as tg:
            for i, f in enumerate(forks):
                tg.start_soon(save, i, f)
        for i in range(len(forks)):
            # Each fork saved its own file: the unsaved text came along, no other fork's words did.
            assert UNSAVED in texts[i] and f"fork{i}" in texts[i]
            assert not any(f"fork{j}" in texts[i] for j in range(len(forks)) if j != i)
        # The source goes on untouched: its guest answers (reconnected) and nothing was saved there.
        assert await editor.alive()
        assert await editor.download("/home/user/fork.txt") is None
    finally:
        for f in forks:
            await forking.stop(f)
        await forking.drop(snap)


async def _a_fork_saves(provider: DockerProvider, snap: Snapshot, words: str, shot: bytes | None = None) -> None:
    """A fork of `snap` (showing `shot`, if given) saves `words` typed after the unsaved text; then it is stopped."""
    fork = await provider.fork(snap)
    try:
        if shot is not None:
            assert same_screen(shot, await fork.guest.screenshot())
        got = await _saved(fork, words)
        assert UNSAVED in got and words.strip() in got
    finally:
        await provider.stop(fork)


def _restores_left(folder: Path) -> list[Path]:
    return [d for d in CONTAINERD_TMP.glob("ctrd-checkpoint*") if str(folder) in os.path.realpath(d / "inventory.img")]


async def test_a_snapshot_dropped_while_forks_are_restored_is_removed_after_them_and_they_live_on(
        forking: DockerProvider, editor: DockerSandbox) -> None:
    snap = await forking.snapshot(editor)
    folder = Path(snap.extra["checkpoint_dir"])
    forks: list[DockerSandbox] = []

    async def fork() -> None:
        forks.append(await forking.fork(snap))

    try:
        async with anyio.create_task_group() as tg:
            for _ in range(2):
                tg.start_soon(fork)
            await anyio.lowlevel.checkpoint()  # both forks have begun: their restores read the snapshot's files
            await forking.drop(snap)
            assert await anyio.Path(folder).exists()
        assert len(forks) == 2
        assert not await anyio.Path(folder).exists()  # removed once the last restore was done
        with pytest.raises(SandboxError, match="not held"):
            await forking.fork(snap)
        for i, f in enumerate(forks):
            got = await _saved(f, f" after the drop {i}")
            assert UNSAVED in got and f"after the drop {i}" in got
        # Nothing left of the restores in containerd's temporary folder (it keeps them: containerd#10166);
        # removed in the background once each restore is done.
        left = await anyio.to_thread.run_sync(_restores_left, folder)
        with anyio.move_on_after(10):
            while left:
                await anyio.sleep(0.1)
                left = await anyio.to_thread.run_sync(_restores_left, folder)
        assert not left
    finally:
        for f in forks:
            await forking.stop(f)


async def test_vm_gc_removes_snapshots_of_dead_runs_and_keeps_live_ones(
        forking: DockerProvider, editor: DockerSandbox, test_run_id: str) -> None:
    snap = await forking.snapshot(editor)
    folder = snap.extra["checkpoint_dir"]
    async with aiodocker.Docker() as docker:
        assert await gc_snapshots(docker, test_run_id, stale_only=True) == 0  # its owner (this process) lives
        assert (await docker.images.inspect(snap.extra["image"]))["Id"]
        # This one, and any a fork still used when the test above dropped it (freed at close).
        assert await gc_snapshots(docker, test_run_id) >= 1
        with pytest.raises(aiodocker.DockerError):
            await docker.images.inspect(snap.extra["image"])
    assert not await anyio.Path(folder).exists()
    await forking.drop(snap)  # already gone: nothing to do, no error


async def test_without_runc_state_at_hand_the_snapshot_goes_through_dockers_checkpoint_api(
        forking: DockerProvider, editor: DockerSandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # As for a process that cannot read the engine's runc state (not root, or another host's engine).
    monkeypatch.setattr(docker_fork, "RUNC_ROOT", tmp_path)
    shot = await still_screen(editor)
    snap = await forking.snapshot(editor)
    try:
        await _a_fork_saves(forking, snap, " via the API", shot)
    finally:
        await forking.drop(snap)


async def _gone(container_id: str) -> list[int]:
    """What is left of a container's processes a few seconds on (its shim exits after the removal)."""
    left = traces_of(container_id)
    with anyio.move_on_after(15):
        while left:
            await anyio.sleep(0.2)
            left = await anyio.to_thread.run_sync(traces_of, container_id)
    return left


async def test_a_restore_that_hangs_is_killed_at_its_deadline_and_its_container_removed(
        forking: DockerProvider, editor: DockerSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    snap = await forking.snapshot(editor)
    monkeypatch.setattr(forking.forks, "restore_timeout_s", 10.0)
    frozen: list[tuple[str, int]] = []

    async def freeze() -> None:
        frozen.append(await freeze_a_restore(forking.provider_id, timeout=60))

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(freeze)
            # CRIU stopped mid-restore (SIGSTOP) waits for ever, as the restore that hung in a full run.
            with pytest.raises(RestoreHung, match=r"restore not done within 10s; killed its runc/CRIU processes"):
                await forking.fork(snap)
        (container_id, _), = frozen
        # CRIU, runc and the half-made container are gone: Docker could remove it once they were killed.
        assert not await _gone(container_id)
        async with aiodocker.Docker() as docker:
            with pytest.raises(aiodocker.DockerError) as missing:
                await docker.containers.container(container_id).show()
            assert missing.value.status == 404
        # The snapshot is still good: the next fork restores and takes input.
        await _a_fork_saves(forking, snap, " after the hang")
    finally:
        await forking.drop(snap)


async def test_a_snapshot_whose_criu_hangs_is_killed_at_its_deadline_and_the_sandbox_goes_on(
        forking: DockerProvider, editor: DockerSandbox) -> None:
    frozen: list[int] = []

    async def freeze() -> None:
        frozen.append(await freeze_a_dump(editor.container_id, timeout=60))

    async with anyio.create_task_group() as tg:
        tg.start_soon(freeze)
        # CRIU stopped mid-dump (SIGSTOP) holds the sandbox's processes seized and waits for ever.
        with pytest.raises(SandboxError, match=r"snapshot not done within 10s"):
            await forking.forks.snapshot(editor, timeout=10.0)
    pid, = frozen
    assert not alive(pid), "the dump's CRIU was left behind"
    # The sandbox goes on: unpaused, its editor not stopped, and the next snapshot works.
    state = await editor.run(["bash", "-c", "ps -o stat= -C mousepad"], timeout=30)
    assert state.ok and "T" not in state.output, state.output
    snap = await forking.snapshot(editor)
    try:
        await _a_fork_saves(forking, snap, " after the hung dump")
    finally:
        await forking.drop(snap)


async def test_a_snapshot_cancelled_after_its_dump_leaves_no_image_or_folder(
        forking: DockerProvider, editor: DockerSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    before = set(forking.forks.root.iterdir()) if forking.forks.root.exists() else set()
    images_before = {t for i in await forking.docker.images.list() for t in i.get("RepoTags") or []}

    async def stalls(image: str) -> int:  # the last step of a snapshot, after commit and dump
        await anyio.sleep_forever()
        return 0

    monkeypatch.setattr(forking.forks, "_layer_bytes", stalls)
    with anyio.move_on_after(30) as scope:  # as a run stopped with Ctrl+C
        await forking.forks.snapshot(editor)
    assert scope.cancelled_caught
    assert set(forking.forks.root.iterdir()) == before, "a checkpoint folder was left behind"
    images_after = {t for i in await forking.docker.images.list() for t in i.get("RepoTags") or []}
    assert images_after == images_before, "a snapshot image was left behind"


@pytest_asyncio.fixture(scope="module")
async def gnome(docker_settings: DockerSettings, test_run_id: str) -> AsyncIterator[DockerProvider]:
    async with _forking(docker_settings, "osworld", test_run_id) as provider:
        yield provider


async def test_the_osworld_desktop_with_a_terminal_forks_to_the_same_screen_and_takes_commands(
        gnome: DockerProvider) -> None:
    box = await gnome.start()
    snap = None
    forks: list[DockerSandbox] = []
    try:
        await open_app(box, CASES["terminal"])  # types a command, not run, before the snapshot
        shot = await still_screen(box)
        snap = await gnome.snapshot(box)  # GNOME Shell's helpers' inotify watches among the scan paths
        for _ in range(2):
            forks.append(await gnome.fork(snap))
        for i, f in enumerate(forks):
            assert same_screen(shot, await f.guest.screenshot(), clock=True)
            # The typed command is still on the prompt; the fork's own words go after it.
            await f.execute(f"pyautogui.typewrite(' fork{i} > /home/user/term.txt\\n', interval=0.01)")
        for i, f in enumerate(forks):
            got = ""
            with anyio.move_on_after(20):
                while f"fork{i}" not in got:
                    got = (await f.download("/home/user/term.txt") or b"").decode()
                    await anyio.sleep(0.3)
            assert got.strip() == f"typed-before-snapshot fork{i}"
        assert await box.download("/home/user/term.txt") is None
    finally:
        for f in forks:
            await gnome.stop(f)
        if snap is not None:
            await gnome.drop(snap)
        await gnome.stop(box)
