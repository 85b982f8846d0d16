"""`warm_start` (vm/docker_warm.py): off unless asked for; `--warm-start` reaches the provider."""

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
    return providers.make(config.provider, sandbox_settings(config), "r1").profile.warm_start


def test_warm_start_is_off_unless_asked_for():
    assert DockerSettings().warm_start is False and providers.SandboxSettings().warm_start is False
    assert _provider_warm() is False


def test_the_flag_turns_it_on_for_run_validate_and_bench_sandbox():
    from harness.cli import build_parser

    assert _provider_warm("--warm-start") is True
    parser = build_parser()
    assert parser.parse_args(["validate", "--benchmark", "x", "--warm-start"]).warm_start is True
    assert parser.parse_args(["validate", "--benchmark", "x"]).warm_start is False
    assert parser.parse_args(["bench", "sandbox", "--warm-start"]).warm_start is True
    assert parser.parse_args(["bench", "sandbox"]).warm_start is False
