"""A sandbox starts with a larger CPU quota (GNOME Shell's start is CPU-bound) and runs with `cpus`."""

from __future__ import annotations

from pathlib import Path

import pytest

from vm.docker import DockerSettings, SandboxSpec


def _nano_cpus(settings: DockerSettings, tmp_path: Path) -> int:
    spec = SandboxSpec(sid="s", name="cua-s", token="t", host_dir=tmp_path, labels={})
    return settings.container_config(spec, "img")["HostConfig"]["NanoCpus"]


def test_the_container_starts_with_the_start_quota_and_drops_to_cpus_when_ready(tmp_path, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    settings = DockerSettings(cpus=1.5)
    assert _nano_cpus(settings, tmp_path) == 3 * 10**9  # twice cpus while starting
    assert settings.ready_update() == {"NanoCpus": 1_500_000_000}


@pytest.mark.parametrize(("host", "cpus", "start"), [(2, 1.0, 2.0), (2, 2.0, 2.0), (1, 1.0, 1.0), (3, 2.0, 3.0)])
def test_the_default_start_quota_never_exceeds_the_host(tmp_path, monkeypatch, host, cpus, start):
    monkeypatch.setattr("os.cpu_count", lambda: host)
    settings = DockerSettings(cpus=cpus)
    assert _nano_cpus(settings, tmp_path) == int(start * 1e9)
    # Nothing to change once ready when the two quotas are the same.
    assert settings.ready_update() == (None if start == cpus else {"NanoCpus": int(cpus * 1e9)})


def test_an_explicit_start_quota_wins(tmp_path):
    settings = DockerSettings(cpus=1.0, start_cpus=1.0)
    assert _nano_cpus(settings, tmp_path) == 10**9 and settings.ready_update() is None
    with pytest.raises(ValueError, match="start_cpus"):
        DockerSettings(start_cpus=0)


@pytest.mark.parametrize(("host", "kw", "boots"), [
    (2, {}, 1),  # one GNOME boot at its 2-core start quota fills a 2-core host
    (16, {}, 8),
    (16, {"cpus": 2.0}, 4),
    (2, {"start_cpus": 1.0}, 2),
    (1, {}, 1),
    (2, {"desktop": "light"}, None),  # openbox starts are not CPU-bound: the pool's one per core
])
@pytest.mark.parametrize("warm", [None, True, False])
def test_gnome_boots_in_flight_fit_their_start_quotas_in_the_host(monkeypatch, host, kw, boots, warm):
    from vm.docker import DockerProvider
    from vm.pool import SandboxPool

    monkeypatch.setattr("os.cpu_count", lambda: host)
    settings = DockerSettings(**kw, warm_start=warm)
    provider = DockerProvider(settings, run_id="quota-test")
    # Warm start (by default on osworld) forks: not CPU-bound, one per core; the provider still
    # holds its fresh boots (the boot snapshot's, fallbacks) to max_boots.
    assert settings.warm_starts() is (warm if warm is not None else settings.desktop == "osworld")
    assert provider.profile.max_boots() == boots
    expected = None if settings.warm_starts() else boots
    assert provider.max_starting == expected
    # The pool takes the provider's figure; None falls back to one per core (at most its capacity).
    assert SandboxPool(provider, capacity=32).max_starting == (expected or host)


async def test_the_provider_holds_fresh_boots_to_max_boots(monkeypatch):
    """However many starts the pool lets through, fresh GNOME boots go max_boots at a time."""
    import anyio

    from vm.docker import DockerProvider

    monkeypatch.setattr("os.cpu_count", lambda: 4)  # 2 boots at the 2-core start quota
    provider = DockerProvider(DockerSettings(warm_start=False), run_id="quota-test")
    provider._image = "unused"
    running, most = 0, 0

    async def launch(**_: object) -> str:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await anyio.sleep(0.05)
        running -= 1
        return "box"

    monkeypatch.setattr(provider, "launch", launch)
    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(provider.launch_fresh)
    assert most == 2
