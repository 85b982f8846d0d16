"""Agents by entry point (group `cua_harness.agents`): a package pip-installed into a venv adds
`--agent NAME`, and the built-in agents are listed the same way. The venv sees the system's
packages and gets this checkout and tests/fixtures/hello_agent_pkg installed without their deps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.sim_suite import write_sim_suite

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path(__file__).parent / "fixtures" / "hello_agent_pkg"


def _env() -> dict[str, str]:
    # Nothing from the outer PYTHONPATH: imports come from the venv, as a user's would.
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("venv26")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(root)], check=True, timeout=300)
    pip = [str(root / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps"]  # setuptools from PyPI
    subprocess.run([*pip, "-e", str(REPO)], check=True, timeout=600, env=_env(), capture_output=True)
    # a copy: building in place would leave build/ and egg-info in the fixture folder
    subprocess.run(["cp", "-r", str(PACKAGE), str(root / "pkg")], check=True, timeout=60)
    subprocess.run([*pip, str(root / "pkg")], check=True, timeout=600, env=_env(), capture_output=True)
    return root


def harness(venv: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "python"), "-m", "harness", *args], cwd=venv, capture_output=True,
                          text=True, timeout=300, env=_env())


def test_installed_package_adds_an_agent_by_entry_point(venv: Path, tmp_path: Path) -> None:
    listed = harness(venv, "registry", "agents")
    assert listed.returncode == 0, listed.stderr
    names = {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}
    assert {"hello", "oracle", "prompt", "mcts", "rmcts"} <= names
    assert "hello_agent:make_agent (entry point of hello-cua-agent)" in listed.stdout

    suite = write_sim_suite(tmp_path / "suite", tasks=4, steps=3)
    run_dir = tmp_path / "run"
    done = harness(venv, "run", "--benchmark", str(suite), "--agent", "hello", "--provider", "sim",
                   "--run-dir", str(run_dir), "--agent-option", "greeting=hi", "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    scores = [json.loads(p.read_text())["score"] for p in run_dir.glob("*/*/result.json")]
    assert scores == [1.0] * 4
    first = json.loads((run_dir / "sim" / "sim-00000" / "traj.jsonl").read_text().splitlines()[0])
    assert first["response"] == "hi: step 1" and first["info"]["call"] == 1


def test_built_in_agents_are_entry_points_of_the_harness(venv: Path) -> None:
    code = ("from importlib.metadata import entry_points;"
            "print(sorted(ep.name for ep in entry_points(group='cua_harness.agents') if ep.value.startswith('search.')))")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=120,
                         env=_env(), cwd=venv)
    assert out.stdout.strip() == str(sorted(["claude-computer-use", "done", "mcts", "noop", "openai-computer-use", "oracle",
                                             "prompt", "rmcts"])), out.stderr
    loaded = subprocess.run([str(venv / "bin" / "python"), "-c",
                             "from importlib.metadata import entry_points\n"
                             "for ep in entry_points(group='cua_harness.agents'):\n    ep.load()\n"],
                            capture_output=True, text=True, timeout=120, env=_env(), cwd=venv)
    assert loaded.returncode == 0, loaded.stderr
