"""`vm gc --images`: old desktop images go, the current one and its id stay."""

from __future__ import annotations

import aiodocker
import pytest

from vm.docker_gc import LABEL_SNAPSHOT, prune_images

pytestmark = pytest.mark.docker


async def test_prune_removes_other_tags_of_ours_and_keeps_the_current_image(desktop_image: str):
    old = "cua-harness/desktop:gc-test-old"
    docker = aiodocker.Docker()
    try:
        before = (await docker.images.inspect(desktop_image))["Id"]
        repo, tag = old.split(":")
        await docker.images.tag(desktop_image, repo=repo, tag=tag)
        assert old in (await docker.images.inspect(desktop_image))["RepoTags"]

        removed = await prune_images(desktop_image, docker=docker)

        assert old in removed and desktop_image not in removed
        current = await docker.images.inspect(desktop_image)
        assert current["Id"] == before and old not in current["RepoTags"]
        with pytest.raises(aiodocker.DockerError):
            await docker.images.inspect(old)
    finally:
        try:
            await docker.images.delete(old)
        except aiodocker.DockerError:
            pass
        await docker.close()


async def test_prune_keeps_fork_snapshots_which_carry_the_build_label_too(desktop_image: str):
    # A snapshot is a commit of a sandbox, so it inherits the desktop build's label; pruning it would
    # pull it from under a live provider's forks and leave its checkpoint folder behind.
    snapshot = "cua-harness/snapshot:gc-test"
    docker = aiodocker.Docker()
    container = await docker.containers.create({"Image": desktop_image, "Cmd": ["true"]}, name="cua-gc-test-snapshot")
    try:
        repo, tag = snapshot.split(":")
        await container.commit(repository=repo, tag=tag, changes=[f'LABEL {LABEL_SNAPSHOT}="gc-test"'])
        assert LABEL_SNAPSHOT in (await docker.images.inspect(snapshot))["Config"]["Labels"]

        removed = await prune_images(desktop_image, docker=docker)

        assert snapshot not in removed
        assert snapshot in (await docker.images.inspect(snapshot))["RepoTags"]
    finally:
        await container.delete(force=True)
        try:
            await docker.images.delete(snapshot)
        except aiodocker.DockerError:
            pass
        await docker.close()
