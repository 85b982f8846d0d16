"""Shared fixtures. Docker tests share one image build, one provider and one sandbox per session.

- Every async test and fixture runs on the one session event loop (pyproject sets the fixture
  loop scope to "session"; tests follow it here, so session fixtures such as a provider's aiohttp
  sessions are usable from any test).
- `docker_engine` skips the docker tests, with the reason, only when no Docker engine answers.
- Tests on Docker, on Ray, or that start `python -m harness` are marked `slow`: `pytest -m "not slow"`
  is the inner loop.
- At session end, no container labeled with this session's run id may remain (checked, then
  removed so a failing run does not leak into the next one).
"""

from __future__ import annotations

import inspect
import os
import re
import secrets
from collections.abc import AsyncIterator, Iterator

import aiodocker
import anyio
import pytest
import pytest_asyncio

from vm.docker import LABEL_MANAGED, LABEL_RUN, DockerProvider, DockerSandbox, DockerSettings, gc_containers

TEST_RUN_ID = f"pytest-{os.getpid()}-{secrets.token_hex(3)}"


# A test that starts processes (`python -m harness` as a user runs it, a browser, a venv) takes seconds.
_STARTS_PROCESSES = re.compile(r'\bharness\(|start_harness\(|start_run_until\(|sys\.executable|subprocess\.'
                               r'|anyio\.(run|open)_process|asyncio\.create_subprocess')


def _is_slow(item: pytest.Item) -> bool:
    """Slow: Docker, Ray, or processes started by the test itself (`pytest -m "not slow"` leaves these out);
    a module whose fixtures start them says so with `pytestmark = pytest.mark.slow`."""
    if item.get_closest_marker("docker") or item.get_closest_marker("ray"):
        return True
    fn = getattr(item, "function", None)
    try:
        return fn is not None and bool(_STARTS_PROCESSES.search(inspect.getsource(fn)))
    except (OSError, TypeError):
        return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    session_loop = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if pytest_asyncio.is_async_test(item):
            item.add_marker(session_loop, append=False)
        if _is_slow(item):
            item.add_marker(pytest.mark.slow)


async def _engine_error() -> str | None:
    """None when a Docker engine answers, else why not."""
    try:
        docker = aiodocker.Docker()
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    try:
        with anyio.fail_after(10):
            await docker.version()
        return None
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    finally:
        await docker.close()


async def _labeled(run_id: str) -> list[str]:
    async with aiodocker.Docker() as docker:
        found = await docker.containers.list(
            all=True, filters={"label": [f"{LABEL_MANAGED}=1", f"{LABEL_RUN}={run_id}"]}
        )
        return [c["Names"][0].lstrip("/") if c["Names"] else c.id[:12] for c in found]


@pytest.fixture(scope="session")
def test_run_id() -> str:
    """Run id label for every container started by the tests (checked at session end)."""
    return TEST_RUN_ID


@pytest.fixture(scope="session", autouse=True)
def no_labeled_container_remains_after_the_tests() -> Iterator[None]:
    yield
    if anyio.run(_engine_error) is not None:
        return
    leftovers = anyio.run(_labeled, TEST_RUN_ID)
    if leftovers:
        anyio.run(gc_containers, TEST_RUN_ID)
        pytest.fail(f"containers labeled {LABEL_RUN}={TEST_RUN_ID} remained after the tests: {leftovers}")


@pytest_asyncio.fixture(scope="session")
async def docker_engine() -> None:
    error = await _engine_error()
    if error is not None:
        pytest.skip(f"no Docker engine reachable (DOCKER_HOST or /var/run/docker.sock): {error}")


@pytest_asyncio.fixture(scope="session")
async def desktop_image(docker_engine: None) -> str:
    """The desktop image tag, built once if missing (minutes the first time)."""
    from vm.image.build import ensure_image

    return await ensure_image()  # CUA_DEBOOTSTRAP=1 forces the debootstrap base (see vm/image/build.py)


@pytest.fixture(scope="session")
def docker_settings(desktop_image: str) -> DockerSettings:
    return DockerSettings(image=desktop_image, screen_width=1280, screen_height=800)


@pytest_asyncio.fixture(scope="session")
async def docker_provider(docker_settings: DockerSettings) -> AsyncIterator[DockerProvider]:
    async with DockerProvider(docker_settings, run_id=TEST_RUN_ID) as provider:
        yield provider


@pytest_asyncio.fixture(scope="session")
async def desktop(docker_provider: DockerProvider) -> AsyncIterator[DockerSandbox]:
    """One sandbox shared by the tests whose claims do not depend on a fresh desktop."""
    box = await docker_provider.start()
    try:
        yield box
    finally:
        await docker_provider.stop(box)
