"""Sandbox container labels and garbage collection: which containers are ours, whose owner is gone.

Every container the Docker provider starts carries `cua-harness.managed=1`, its run id, its
provider id, its host folder and its owner (host/pid/start-time of the harness process), so
`python -m harness vm gc` and the start of a run can remove leftovers of crashed runs without
touching a live concurrent run's sandboxes.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import aiodocker
import anyio

from harness.base.errors import SandboxError

log = logging.getLogger("vm.docker")

LABEL_MANAGED = "cua-harness.managed"
LABEL_RUN = "cua-harness.run"
LABEL_PROVIDER = "cua-harness.provider"
LABEL_DIR = "cua-harness.dir"
LABEL_OWNER = "cua-harness.owner"  # host/pid/start-time of the harness process that started it
LABEL_SNAPSHOT = "cua-harness.snapshot"  # a fork snapshot's image (vm/docker_fork.py)


def _process_start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # Field 22 (starttime) follows the parenthesised command name, which may hold spaces.
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def owner_label() -> str:
    """Identifies this process, so gc can tell a crashed run's containers from a live run's."""
    pid = os.getpid()
    return f"{socket.gethostname()}/{pid}/{_process_start_time(pid) or '?'}"


def owner_alive(owner: str | None) -> bool:
    """True when the labelled owner is a live process on this host (pid reuse detected by start time)."""
    if not owner:
        return False
    host, _, rest = owner.partition("/")
    pid, _, started = rest.partition("/")
    if host != socket.gethostname() or not pid.isdigit():
        return host != socket.gethostname()  # another host's containers are never ours to judge
    return _process_start_time(int(pid)) == started

async def remove_labeled(docker: aiodocker.Docker, labels: list[str], *, stale_only: bool = False) -> int:
    with anyio.fail_after(30.0):
        found = await docker.containers.list(all=True, filters={"label": [f"{LABEL_MANAGED}=1", *labels]})
    if stale_only:
        # Only containers whose harness process is gone: a concurrent live run keeps its sandboxes.
        found = [c for c in found if not owner_alive((c["Labels"] or {}).get(LABEL_OWNER))]
    removed = 0

    async def remove(container: Any) -> None:
        nonlocal removed
        try:
            with anyio.fail_after(60.0):
                await container.delete(force=True, v=True)
            removed += 1
        except aiodocker.DockerError as e:
            if e.status != 404:
                log.warning("gc: could not remove container %s: %s", container.id[:12], e.message)
        folder = (container["Labels"] or {}).get(LABEL_DIR) if "Labels" in container else None
        if folder and Path(folder).parent.name.startswith("cua-harness"):
            await anyio.to_thread.run_sync(shutil.rmtree, folder, True)

    async with anyio.create_task_group() as tg:
        for container in found:
            tg.start_soon(remove, container)
    return removed


async def remove_networks(docker: aiodocker.Docker, labels: list[str], *, stale_only: bool = False) -> None:
    """Remove the sandboxes' networks (`--sandbox-network bridge`) with these labels; best effort:
    a network that still has containers stays (the engine refuses) and is logged."""
    with anyio.fail_after(30.0):
        found = await docker.networks.list(filters={"label": [f"{LABEL_MANAGED}=1", *labels]})
    for net in found:
        if stale_only and owner_alive((net.get("Labels") or {}).get(LABEL_OWNER)):
            continue
        try:
            with anyio.fail_after(30.0):
                await (await docker.networks.get(net["Id"])).delete()
        except aiodocker.DockerError as e:
            if e.status != 404:
                log.warning("gc: could not remove network %s: %s", net.get("Name"), e.message)


async def _gc(docker: aiodocker.Docker, labels: list[str], stale_only: bool) -> int:
    removed = await remove_labeled(docker, labels, stale_only=stale_only)
    await remove_networks(docker, labels, stale_only=stale_only)
    return removed


async def gc_containers(run_id: str | None = None, *, docker: aiodocker.Docker | None = None,
                        stale_only: bool = False) -> int:
    """Remove containers labeled `cua-harness.managed=1` (only those of `run_id` if given), then
    their networks; return the number of containers.

    `stale_only`: keep containers whose owning harness process is still alive on this host.
    """
    labels = [f"{LABEL_RUN}={run_id}"] if run_id else []
    if docker is not None:
        return await _gc(docker, labels, stale_only)
    try:
        client = aiodocker.Docker()
    except Exception as e:
        raise SandboxError(f"no Docker engine found (DOCKER_HOST or /var/run/docker.sock): {e}") from e
    try:
        return await _gc(client, labels, stale_only)
    finally:
        await client.close()


LABEL_CONTEXT = "cua-harness.context"  # set on every desktop image build (vm/image/build.py)


async def prune_images(keep: str, *, docker: aiodocker.Docker) -> list[str]:
    """Remove desktop images built from other sources than `keep` (a tag): every other tag of ours
    and our untagged leftovers of earlier builds. Images a container still uses are kept.
    Returns what was removed (tags, or ids of untagged images)."""
    removed: list[str] = []
    images = await docker.images.list(filters={"label": [LABEL_CONTEXT]})
    for image in images:
        if LABEL_SNAPSHOT in (image.get("Labels") or {}):
            # A snapshot is a commit of a sandbox, so it carries the build's label too; it is not an
            # old build: a live provider may still fork it, and `gc_snapshots` removes it with its
            # checkpoint folder (removed here, the folder stayed behind).
            continue
        tags = [t for t in image.get("RepoTags") or [] if t and t != "<none>:<none>"]
        targets = [t for t in tags if t != keep] if tags else [image["Id"]]
        for name in targets:
            try:
                # By tag this only untags while another tag (e.g. `keep`) still names the image.
                await docker.images.delete(name, force=False)
            except aiodocker.DockerError as e:
                if e.status in (404, 409):  # gone already, or a container uses it
                    log.info("image %s kept: %s", name, e.message)
                    continue
                raise SandboxError(f"removing image {name}: {e.message}") from e
            removed.append(name)
    return removed
