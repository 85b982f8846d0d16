"""Snapshot and fork Docker sandboxes: `docker commit` for the files, `docker checkpoint` (CRIU) for
the processes (docs/design/fork.md).

A snapshot is the container's writable layer committed as an image plus a CRIU checkpoint in a
folder of our own (`--checkpoint-dir`), taken while the container is paused so files and memory
match. A fork is a new container created from that image with the source's configuration, a new
name, labels and socket folder, started from the checkpoint: its processes go on where the
source's were, and the guest server keeps its token. The host's connections to the guest are closed
before the dump (CRIU cannot dump a socket whose peer is outside the container) and dialled again
on the next request.

Needs a daemon started with `--experimental` and a working CRIU (4.x on recent kernels) on the
daemon's PATH; `unavailable()` says which is missing.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import subprocess
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import aiodocker
import anyio
import orjson

from harness.base.errors import SandboxError
from vm.docker_gc import LABEL_DIR, LABEL_OWNER, LABEL_RUN, LABEL_SNAPSHOT, owner_alive, owner_label
from vm.docker_restore import criu_reason, kill_tree, start_from_checkpoint
from vm.types import Snapshot

T = TypeVar("T")

if TYPE_CHECKING:
    from vm.docker import DockerProvider, DockerSandbox

log = logging.getLogger(__name__)

CHECKPOINT_ID = "fork"
SNAPSHOT_REPO = "cua-harness-snapshot"


def default_snapshot_dir() -> Path:
    """Checkpoint folders: on disk (they hold tens of MB each), private to this user."""
    if os.geteuid() == 0:
        return Path("/var/tmp/cua-harness/snapshots")
    return Path(os.environ.get("TMPDIR", "/tmp")) / f"cua-harness-{os.geteuid()}" / "snapshots"


@dataclass(frozen=True, slots=True)
class _Held:
    """What the provider keeps per snapshot; the token stays here, out of Snapshot's repr."""

    image: str
    folder: Path
    token: str | None


def _criu_check() -> str | None:
    criu = shutil.which("criu")
    if criu is None:
        return "no criu on PATH (scripts/setup.sh builds CRIU 4.x)"
    try:
        done = subprocess.run([criu, "check"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"criu check could not run: {e}"
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        return f"criu check failed: {lines[-1] if lines else f'exit {done.returncode}'}"
    return None


async def unavailable(docker: aiodocker.Docker) -> str | None:
    """Why this Docker engine cannot checkpoint containers, or None when it can."""
    try:
        with anyio.fail_after(15.0):
            info = await docker.system.info()
    except (aiodocker.DockerError, OSError, TimeoutError) as e:
        return f"docker info failed: {e}"
    if not info.get("ExperimentalBuild"):
        return "the Docker daemon runs without --experimental (docker checkpoint needs it)"
    return await anyio.to_thread.run_sync(_criu_check)


# The state of the engine's containers for runc: dockerd's exec root, containerd namespace "moby".
RUNC_ROOT = Path("/run/docker/runtime-runc/moby")


_RUNC_MSG = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


def _runc_for(container_id: str) -> str | None:
    """runc, when this process can checkpoint the container through it (root, on the engine's host)."""
    runc = shutil.which("runc")
    try:
        return runc if runc and (RUNC_ROOT / container_id / "state.json").is_file() else None
    except OSError:
        return None


async def _runc_checkpoint(runc: str, box: DockerSandbox, folder: Path) -> None:
    """`runc checkpoint --leave-running` into our folder: the dump Docker's checkpoint API makes
    (containerd's shim runs the same command), without its copies: the API has containerd dump
    into a folder of its own, tar that into its content store and dockerd extract it into ours,
    2-10 s more for a desktop (docs/design/fork.md)."""
    work = folder / "work"
    process = await anyio.open_process([runc, "--root", str(RUNC_ROOT), "checkpoint", "--leave-running",
                                        "--image-path", str(folder / CHECKPOINT_ID), "--work-path", str(work),
                                        box.container_id], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        assert process.stderr is not None
        stderr = b"".join([chunk async for chunk in process.stderr])
        returncode = await process.wait()
    except BaseException:
        # The snapshot's deadline, or a cancellation: CRIU (runc's child) first, or it stays behind
        # with the sandbox's processes seized and stopped.
        with anyio.CancelScope(shield=True):
            killed = await anyio.to_thread.run_sync(kill_tree, process.pid)
            await process.aclose()
        log.warning("%s: checkpoint stopped; killed runc and its CRIU %s", box.name, killed)
        raise
    if returncode:
        message = stderr.decode(errors="replace")
        found = _RUNC_MSG.search(message)  # runc logs `time=... level=error msg="..."`
        if found:
            message = found.group(1).replace("\\n", "\n").replace('\\"', '"')
        if "log file:" not in message:
            message += f" log file: {work / 'dump.log'}"
        raise SandboxError(f"{box.name}: checkpoint failed: {criu_reason(message)}")
    await anyio.to_thread.run_sync(shutil.rmtree, work, True)


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class DockerForks:
    """The snapshots of one DockerProvider; `provider.snapshot/fork/drop` delegate here."""

    def __init__(self, provider: DockerProvider, root: Path | None = None) -> None:
        self.provider = provider
        self.root = root or default_snapshot_dir()
        self._held: dict[str, _Held] = {}
        # Forks being restored per snapshot: their checkpoints link to its files, so a snapshot
        # dropped meanwhile is removed only once the last of them is done (`_dropped`).
        self._starting: dict[str, int] = {}
        self._dropped: dict[str, _Held] = {}
        self._why: str | bool | None = False  # False: not checked yet
        self._announced = False  # the reason was logged as a warning
        self._root: Path | None = None  # the engine's data root (docker info), for restores
        self.restore_timeout_s: float = getattr(provider.profile, "restore_timeout_s", 60.0)

    async def unavailable(self, *, announce: bool = True) -> str | None:
        """Why forks do not work here (checked once), or None. The first caller that `announce`s logs
        it as a warning: warm start on by default asks quietly, as a host without CRIU is normal."""
        if self._why is False:
            self._why = await unavailable(self.provider.docker)
        if self._why and announce and not self._announced:
            self._announced = True
            log.warning("forking sandboxes is off: %s", self._why)
        return self._why or None

    async def snapshot(self, box: DockerSandbox, *, timeout: float = 120.0) -> Snapshot:
        why = await self.unavailable()
        if why:
            raise SandboxError(f"{box.name}: cannot snapshot: {why}")
        # Seen once each in a tree search at load 15-20, both gone a moment later: a unix socket
        # CRIU finds no peer for (right after a GNOME desktop came up; once in Thunderbird: likely
        # one in flight between processes), and a pause that timed out freezing.
        return await _once_more(lambda: self._snapshot(box, timeout), _TRANSIENT,
                                f"{box.name}: snapshot again in a second", pause=1.0)

    async def _snapshot(self, box: DockerSandbox, timeout: float) -> Snapshot:
        sid = secrets.token_hex(6)
        folder = self.root / sid
        docker = self.provider.docker
        container = docker.containers.container(box.container_id)
        t0 = anyio.current_time()
        await anyio.to_thread.run_sync(lambda: folder.mkdir(mode=0o700, parents=True))
        image = f"{SNAPSHOT_REPO}:{sid}"
        paused = False
        try:
            await box.guest.disconnect()
            with anyio.fail_after(timeout):
                # Paused across commit and dump: the files in the image are the ones the dumped
                # processes had open (CRIU checks their sizes on restore).
                await docker._query_json(f"containers/{box.container_id}/pause", "POST")
                paused = True
                # Labels for `vm gc`: whose snapshot it is and where its checkpoint lives.
                labels = {LABEL_SNAPSHOT: sid, LABEL_RUN: self.provider.run_id, LABEL_OWNER: owner_label(),
                          LABEL_DIR: str(folder)}
                await container.commit(repository=SNAPSHOT_REPO, tag=sid, pause=False,
                                       changes=[f'LABEL {k}="{v}"' for k, v in labels.items()])
                runc = await anyio.to_thread.run_sync(_runc_for, box.container_id)
                if runc is not None:
                    await _runc_checkpoint(runc, box, folder)
                else:
                    body = {"CheckpointID": CHECKPOINT_ID, "CheckpointDir": str(folder), "Exit": False}
                    await docker._query_json(f"containers/{box.container_id}/checkpoints", "POST",
                                             data=orjson.dumps(body).decode())
        except BaseException as e:
            with anyio.CancelScope(shield=True):
                await self._remove(image, folder)
                if paused:
                    await self._unpause(box)
            if isinstance(e, aiodocker.DockerError):
                raise SandboxError(f"{box.name}: checkpoint failed: {criu_reason(e.message)}") from e
            if isinstance(e, TimeoutError):
                raise SandboxError(f"{box.name}: snapshot not done within {timeout:.0f}s") from e
            raise
        with anyio.CancelScope(shield=True):
            await self._unpause(box)
        seconds = anyio.current_time() - t0
        try:
            size = await anyio.to_thread.run_sync(_folder_bytes, folder) + await self._layer_bytes(image)
        except BaseException:
            # Not held yet, so nothing else would remove it: a run stopped here (Ctrl+C during a
            # warm start's boot snapshot) left its checkpoint folder behind.
            with anyio.CancelScope(shield=True):
                await self._remove(image, folder)
            raise
        self._held[sid] = _Held(image=image, folder=folder, token=box.spec.token)
        log.debug("%s: snapshot %s in %.2fs (%d MB)", box.name, sid, seconds, size >> 20)
        return Snapshot(id=sid, provider=self.provider.name, source=box.name, size_bytes=size,
                        seconds=seconds, extra={"image": image, "checkpoint_dir": str(folder)})

    async def fork(self, snap: Snapshot) -> DockerSandbox:
        held = self._held.get(snap.id)
        if held is None:
            raise SandboxError(f"snapshot {snap.id} is not held by this provider (dropped, or another provider's)")
        # Counted before the first await: a drop from here on waits for this fork.
        self._starting[snap.id] = self._starting.get(snap.id, 0) + 1
        try:
            root = await self._engine_root()

            async def restore(container_id: str, name: str) -> None:
                # Docker 20.10 refuses `start --checkpoint-dir` ("custom checkpointdir is not
                # supported"): the checkpoint goes where the engine keeps the container's own, as links.
                target = root / "containers" / container_id / "checkpoints" / CHECKPOINT_ID
                await anyio.to_thread.run_sync(_link_checkpoint, held.folder / CHECKPOINT_ID, target, container_id)
                try:
                    await start_from_checkpoint(self.provider.docker, container_id, name, CHECKPOINT_ID,
                                                timeout=self.restore_timeout_s, keep_logs=self.root / "restore-logs")
                finally:
                    # Restored or failed, CRIU is done with containerd's copy of the checkpoint (a
                    # few KB of links). Off the fork's path: 0.02-0.1 s nothing waits for.
                    threading.Thread(target=remove_containerd_copy, args=(container_id,), daemon=True).start()

            # Under load (~1 restore in 8-16 at load 10-20) runc ends a restore with "criu failed:
            # type NOTIFY|RESTORE errno 0"; the next restore of the same files works (fork.md).
            box = await _once_more(lambda: self.provider.launch(image=held.image, token=held.token,
                                                                restore=restore,
                                                                extra={"forked_from": snap.id}),
                                   _RESTORE_TRANSIENT, f"fork of {snap.id}: restore again")
            if getattr(self.provider.profile, "desktop", None) == "osworld":
                await refresh_clock(box)
            return box
        finally:
            # Restored (or failed): this fork no longer reads the snapshot's files.
            self._starting[snap.id] -= 1
            if not self._starting[snap.id]:
                del self._starting[snap.id]
                later = self._dropped.pop(snap.id, None)
                if later is not None:
                    with anyio.CancelScope(shield=True):
                        await self._remove(later.image, later.folder)

    async def _engine_root(self) -> Path:
        if self._root is None:
            with anyio.fail_after(15.0):
                info = await self.provider.docker.system.info()
            self._root = Path(info["DockerRootDir"])
        return self._root

    async def drop(self, snap: Snapshot) -> None:
        held = self._held.pop(snap.id, None)
        if held is None:
            return
        if self._starting.get(snap.id):
            self._dropped[snap.id] = held  # a fork is being restored from its files: the last one removes it
            return
        with anyio.CancelScope(shield=True):
            await self._remove(held.image, held.folder)

    async def aclose(self) -> None:
        for sid in list(self._held):
            held = self._held.pop(sid)
            await self._remove(held.image, held.folder)
        for sid in list(self._dropped):
            held = self._dropped.pop(sid)
            await self._remove(held.image, held.folder)

    async def _unpause(self, box: DockerSandbox) -> None:
        try:
            with anyio.fail_after(30.0):
                await self.provider.docker._query_json(f"containers/{box.container_id}/unpause", "POST")
        except (aiodocker.DockerError, TimeoutError) as e:
            log.warning("%s: unpause after the snapshot failed: %s", box.name, e)

    async def _layer_bytes(self, image: str) -> int:
        """Bytes the commit added on top of its parent image."""
        try:
            with anyio.fail_after(15.0):
                info = await self.provider.docker.images.inspect(image)
                parent = info.get("Parent")
                base = (await self.provider.docker.images.inspect(parent)).get("Size", 0) if parent else 0
        except (aiodocker.DockerError, TimeoutError):
            return 0
        return max(0, int(info.get("Size", 0)) - int(base))

    async def _remove(self, image: str, folder: Path) -> None:
        """Best effort: the image (forks made from it keep it alive: then it is left to gc) and the folder."""
        try:
            with anyio.fail_after(60.0):
                await self.provider.docker.images.delete(image, force=False)
        except aiodocker.DockerError as e:
            if e.status == 409:  # a fork's container still uses it: removed when the fork goes
                self.provider.orphan_images.add(image)
            elif e.status != 404:
                log.warning("could not remove snapshot image %s: %s", image, e.message)
        except TimeoutError:
            log.warning("removing snapshot image %s timed out", image)
        await anyio.to_thread.run_sync(shutil.rmtree, folder, True)


async def gc_snapshots(docker: aiodocker.Docker, run_id: str | None = None, *, stale_only: bool = False) -> int:
    """Remove snapshot images (and their checkpoint folders) left by runs, like `gc_containers`;
    an image a container still uses is kept. Returns how many were removed."""
    labels = [LABEL_SNAPSHOT] + ([f"{LABEL_RUN}={run_id}"] if run_id else [])
    with anyio.fail_after(30.0):
        images = await docker.images.list(filters={"label": labels})
    removed = 0
    for image in images:
        found = image.get("Labels") or {}
        if stale_only and owner_alive(found.get(LABEL_OWNER)):
            continue
        try:
            with anyio.fail_after(60.0):
                await docker.images.delete(image["Id"], force=False)
        except aiodocker.DockerError as e:
            if e.status != 404:
                log.info("snapshot image %s kept: %s", image["Id"][:19], e.message)
                continue
        removed += 1
        folder = found.get(LABEL_DIR)
        if folder and Path(folder).parent.name == "snapshots":
            await anyio.to_thread.run_sync(shutil.rmtree, folder, True)
    return removed


# Where containerd (1.6, as Docker 20.10 runs it) extracts a checkpoint to restore: its temporary
# folder, as dockerd started it (scripts/setup.sh: no TMPDIR).
CONTAINERD_TMP = Path("/tmp")


def remove_containerd_copy(container_id: str) -> int:
    """Remove the folder containerd extracted this fork's checkpoint into; returns how many.

    containerd 1.6 never removes the `ctrd-checkpoint*` folder it extracts a checkpoint into
    before a restore (containerd#10166): with hard links that was a full copy of the images per
    fork (13 GB in /tmp here after a day of tests), with our links it is a few hundred KB. Ours is
    the one whose `cua-fork-id` names the fork's container (`_link_checkpoint`). Best effort: a
    folder we cannot read or remove (another user's engine) is left."""
    removed = 0
    try:
        candidates = list(CONTAINERD_TMP.glob("ctrd-checkpoint*/cua-fork-id"))
    except OSError:
        return 0
    for name in candidates:
        try:
            if name.read_text() != container_id:
                continue
        except OSError:
            continue
        shutil.rmtree(name.parent, ignore_errors=True)
        removed += 1
    return removed


# Relative links that climb to "/" from wherever containerd extracts the checkpoint (".." at "/"
# stays there). Not absolute: the restored processes read their pages after CRIU moved them into
# the container's root, where an absolute path names the container's files, while ".." from the
# image folder (opened outside that root) walks the host's tree.
_UP = "../" * 32


def _link_checkpoint(src: Path, dst: Path, fork_id: str) -> None:
    """The snapshot's checkpoint in a new container's folder as links to its files (`_UP`).

    Docker tars that folder into containerd's content store and the runc shim extracts it again
    before `runc restore`: with symlinks the tar carries a few KB instead of the images (tens to
    hundreds of MB), and CRIU, on the host, reads them in place. CRIU only reads images on restore
    (it writes its log and stats to the work folder; `auto-dedup`, which punches holes into
    pages-*.img, is off), so any number of forks share them. Removing the container removes the
    links, not the files.

    Plus a file naming the fork, which CRIU ignores: dockerd stores the tar under its digest and
    fails a second upload of the same digest still in flight ("commit failed: content ...: already
    exists"), so forks of one snapshot started at once need tars that differ."""
    dst.mkdir(parents=True)
    for f in src.iterdir():
        (dst / f.name).symlink_to(_UP + str(f.resolve()).lstrip("/"))
    (dst / "cua-fork-id").write_text(fork_id)


_TRANSIENT = re.compile(r"Unix socket \d+ not found|unable to freeze")
_RESTORE_TRANSIENT = re.compile(r"criu failed: type (NOTIFY|RESTORE) errno 0")


async def _once_more(call: Callable[[], Awaitable[T]], transient: re.Pattern[str], what: str, *,
                     pause: float = 0.0) -> T:
    """`call()`, and once more (after `pause` s) when it fails with a SandboxError `transient` matches."""
    try:
        return await call()
    except SandboxError as e:
        if not transient.search(str(e)):
            raise
        log.info("%s: %s", what, e)
        if pause:
            await anyio.sleep(pause)
        return await call()


async def refresh_clock(box: DockerSandbox) -> None:
    """A restored GNOME Shell's clock waits for its old minute timer, which restores with the time
    it had left: it showed the snapshot's minute for up to a minute (fork.md). A change of a clock
    setting redraws it at once: shown seconds over and back to their value, before anyone looks."""
    key = "org.gnome.desktop.interface clock-show-seconds"
    script = (f"v=$(gsettings get {key}) && gsettings set {key} $([ \"$v\" = true ] && echo false || echo true) "
              f"&& gsettings set {key} \"$v\"")
    result = await box.run(["bash", "-c", script], timeout=30)
    if not result.ok:  # a stale minute is cosmetic: the fork is still good
        log.info("%s: could not redraw the restored clock: %s", box.name, (result.error or result.output)[-200:])
