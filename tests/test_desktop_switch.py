"""`--desktop osworld|light`: from the command line to the sandbox's environment and readiness check."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness.commands.run import add_run_options, config_from_args
from harness.runner import make_provider
from vm.docker import DockerSettings, SandboxSpec


def _run_config(*argv: str):
    p = argparse.ArgumentParser()
    add_run_options(p)
    return config_from_args(p.parse_args(["--benchmark", "desktop-basics", *argv]))


def _spec(tmp_path: Path) -> SandboxSpec:
    return SandboxSpec(sid="s", name="cua-s", token="t", host_dir=tmp_path, labels={})


@pytest.mark.parametrize(("argv", "desktop", "health"), [
    ((), "osworld", "/health?desktop=1"),
    (("--desktop", "light"), "light", "/health"),
])
def test_the_flag_reaches_the_container_env_and_the_readiness_check(tmp_path, argv, desktop, health):
    config = _run_config(*argv)
    assert config.desktop == desktop and config.model_dump(mode="json")["desktop"] == desktop  # run.json
    profile = make_provider(config, "r1").profile
    env = profile.container_config(_spec(tmp_path), "img")["Env"]
    assert f"DESKTOP={desktop}" in env
    # osworld: ready only once GNOME Shell has drawn its bar and dock; light: once X answers.
    assert profile.guest_client(_spec(tmp_path), {}).health_path == health


def test_an_unknown_desktop_is_refused():
    with pytest.raises(SystemExit):
        _run_config("--desktop", "kde")
    with pytest.raises(ValueError, match="desktop"):
        DockerSettings(desktop="kde")


def test_validate_and_bench_sandbox_take_the_flag():
    from harness.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["validate", "--benchmark", "x", "--desktop", "light"]).desktop == "light"
    assert parser.parse_args(["validate", "--benchmark", "x"]).desktop == "osworld"
    assert parser.parse_args(["bench", "sandbox", "--desktop", "light"]).desktop == "light"
