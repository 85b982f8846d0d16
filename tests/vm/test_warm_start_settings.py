"""`warm_start` (vm/docker_warm.py): by default on for the osworld desktop, off for light;
`--warm-start` / `--no-warm-start` reach the provider."""

from __future__ import annotations

import argparse

from harness.commands.run import add_run_options, config_from_args
from harness.config import sandbox_settings
from vm import providers
from vm.docker import DockerSettings


def _provider_warm(*argv: str) -> bool:
    p = argparse.ArgumentParser()
    add_run_options(p)
    config = config_from_args(p.parse_args(["--benchmark", "desktop-basics", *argv]))
    assert config.model_dump(mode="json")["warm_start"] is config.warm_start  # written into run.json
    return providers.make(config.provider, sandbox_settings(config), "r1").profile.warm_starts()


def test_warm_start_is_on_by_default_for_the_osworld_desktop_only():
    assert DockerSettings().warm_start is None and providers.SandboxSettings().warm_start is None
    assert DockerSettings().warm_starts() is True
    assert DockerSettings(desktop="light").warm_starts() is False
    assert _provider_warm() is True
    assert _provider_warm("--desktop", "light") is False


def test_the_flags_turn_it_on_or_off_for_run_validate_and_bench_sandbox():
    from harness.cli import build_parser

    assert _provider_warm("--no-warm-start") is False
    assert _provider_warm("--desktop", "light", "--warm-start") is True
    parser = build_parser()
    for argv in (["validate", "--benchmark", "x"], ["bench", "sandbox"]):
        assert parser.parse_args([*argv, "--warm-start"]).warm_start is True
        assert parser.parse_args([*argv, "--no-warm-start"]).warm_start is False
        assert parser.parse_args(argv).warm_start is None  # the desktop's default
