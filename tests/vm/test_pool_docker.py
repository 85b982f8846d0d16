"""SandboxPool on real containers: a sandbox killed from outside is replaced, a dirty release
gives a fresh desktop, and every exit path (error, SIGINT) leaves no container behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import aiodocker
import anyio
import pytest

from vm.docker import LABEL_MANAGED, LABEL_PROVIDER, LABEL_RUN, DockerProvider, DockerSettings
from vm.pool import SandboxPool

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]


async def _containers(label: str) -> list[str]:
    async with aiodocker.Docker() as docker:
        found = await docker.containers.list(all=True, filters={"label": [f"{LABEL_MANAGED}=1", label]})
    return [c.id for c in found]


async def _until(cond, deadline_s: float) -> None:
    with anyio.fail_after(deadline_s):
        while not cond():  # noqa: ASYNC110 -- polling pool stats with a deadline
            await anyio.sleep(0.05)


async def test_pool_replaces_a_sandbox_killed_from_outside(docker_provider):
    async with SandboxPool(docker_provider, capacity=2, max_starting=2, warm=1) as pool:
        await _until(lambda: pool.stats().warm == 1, 60)
        victim = await pool.acquire()
        await pool.release(victim, dirty=False)  # back to the warm set, believed healthy
        async with aiodocker.Docker() as docker:  # "docker kill" from another client
            await docker.containers.container(victim.info.id).kill(signal="SIGKILL")
        box = await pool.acquire(timeout=90)
        assert box.info.id != victim.info.id
        assert pool.stats().replaced == 1
        assert (await box.run(["echo", "alive"])).output == "alive\n"
        assert victim.info.id not in await _containers(f"{LABEL_RUN}={docker_provider.run_id}")
        await pool.release(box)


async def test_dirty_release_gives_the_next_user_a_fresh_desktop(docker_provider):
    async with SandboxPool(docker_provider, capacity=1) as pool:
        async with pool.sandbox() as box:
            await box.upload("/home/user/Desktop/secret.txt", b"left by the previous task")
            first = box.info.id
        async with pool.sandbox() as box:
            assert box.info.id != first
            assert await box.download("/home/user/Desktop/secret.txt") is None


async def test_error_inside_the_pool_removes_every_container(desktop_image, test_run_id):
    async with DockerProvider(DockerSettings(image=desktop_image), run_id=test_run_id) as provider:
        label = f"{LABEL_PROVIDER}={provider.provider_id}"
        with pytest.raises(ZeroDivisionError):
            async with SandboxPool(provider, capacity=3, max_starting=2, warm=1) as pool:
                await pool.acquire()
                await _until(lambda: pool.stats().warm == 1, 60)
                assert len(await _containers(label)) == 2
                1 / 0  # noqa: B018 -- the agent crashes while holding a sandbox
        assert await _containers(label) == []


SIGINT_SCRIPT = textwrap.dedent(
    """
    import sys
    import anyio
    from harness.base.aio import run
    from vm.docker import DockerProvider, DockerSettings
    from vm.pool import SandboxPool

    async def main(image, run_id):
        async with DockerProvider(DockerSettings(image=image), run_id=run_id) as provider:
            async with SandboxPool(provider, capacity=3, max_starting=2, warm=2) as pool:
                box = await pool.acquire()
                while pool.stats().warm < 2:
                    await anyio.sleep(0.05)
                print("ready", flush=True)
                await anyio.sleep_forever()

    run(main, sys.argv[1], sys.argv[2])
    """
)


async def test_sigint_removes_every_container(desktop_image, test_run_id):
    run_id = f"{test_run_id}-sigint"
    proc = subprocess.Popen(  # noqa: ASYNC220 -- spawning is instant; waits go to a thread
        [sys.executable, "-c", SIGINT_SCRIPT, desktop_image, run_id],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        line = await anyio.to_thread.run_sync(proc.stdout.readline)
        assert line.strip() == "ready", proc.stderr.read() if proc.poll() is not None else line
        assert len(await _containers(f"{LABEL_RUN}={run_id}")) == 3  # 1 busy + 2 warm
        proc.send_signal(signal.SIGINT)
        await anyio.to_thread.run_sync(proc.wait, 60)
        assert await _containers(f"{LABEL_RUN}={run_id}") == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        async with aiodocker.Docker() as docker:  # never leak into other tests, whatever happened
            for c in await docker.containers.list(all=True, filters={"label": [f"{LABEL_RUN}={run_id}"]}):
                await c.delete(force=True)
