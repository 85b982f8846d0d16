"""A sandbox provider is one module plus one registration (vm/providers.py).

The provider here lives in this test module and nowhere else: registered in-process with
`providers.register`, and named as MODULE:ATTR on the command line, the way a pip-installed
plugin is, for a local run and for a run on a two-node Ray cluster (whose workers import it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from benchmarks.sim_suite import write_sim_suite
from harness.base.errors import ConfigError
from harness.config import make_config, sandbox_settings
from vm import providers
from vm.sim import SimProvider

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
LOG_ENV = "CUA_TEST_PROVIDER_LOG"


class LoggingProvider(SimProvider):
    """Sim sandboxes that note each start (process id, run id) in the file $CUA_TEST_PROVIDER_LOG."""

    name = "logging-sim"

    def __init__(self, settings: providers.SandboxSettings, run_id: str) -> None:
        super().__init__(run_id=run_id, screen_size=settings.screen_size)

    async def start(self):  # type: ignore[no-untyped-def]
        box = await super().start()
        log = os.environ.get(LOG_ENV)
        if log:
            line = json.dumps({"pid": os.getpid(), "run_id": self.run_id}) + "\n"
            await anyio.to_thread.run_sync(_append, Path(log), line)
        return box


def _append(path: Path, line: str) -> None:
    with path.open("a") as f:
        f.write(line)


def test_a_registered_provider_is_a_config_choice_and_is_made_by_name() -> None:
    with pytest.raises(ConfigError, match="provider 'logging-sim'"):
        make_config({"benchmark": "desktop-basics", "provider": "logging-sim"})
    providers.register("logging-sim", LoggingProvider)
    assert "logging-sim" in providers.names()
    config = make_config({"benchmark": "desktop-basics", "provider": "logging-sim", "screen_width": 800})
    made = providers.make(config.provider, sandbox_settings(config), "run-1")
    assert isinstance(made, LoggingProvider) and made.run_id == "run-1" and made.screen_size == (800, 1080)
    assert providers.kind("logging-sim").needs_image is False and providers.kind("docker").needs_image is True


def test_a_module_attr_name_that_does_not_import_is_one_line() -> None:
    with pytest.raises(ConfigError, match="no_such_module"):
        providers.make("no_such_module:Provider", providers.SandboxSettings(), "r")


def _run(tmp_path: Path, *extra: str) -> tuple[dict, list[dict]]:
    suite = write_sim_suite(tmp_path / "suite", tasks=6, steps=2)
    log = tmp_path / "starts.jsonl"
    env = {**os.environ, LOG_ENV: str(log),
           # The provider's module must import in the head and on every worker, as an installed package does.
           "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO), os.environ.get("PYTHONPATH", "")])}
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--benchmark", str(suite), "--agent", "oracle",
                           "--provider", f"{Path(__file__).stem}:LoggingProvider", "--concurrency", "2",
                           "--run-dir", str(run_dir), "-q", *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    starts = [json.loads(line) for line in log.read_text().splitlines()]
    return json.loads((run_dir / "summary.json").read_text()), starts


@pytest.mark.slow
def test_a_provider_named_module_attr_runs_the_tasks_of_a_local_run(tmp_path: Path) -> None:
    summary, starts = _run(tmp_path)
    assert summary["done"] == 6 and summary["success_rate"] == 1.0
    assert len(starts) >= 6 and len({s["pid"] for s in starts}) == 1  # the run's own process


@pytest.mark.slow
@pytest.mark.ray
def test_a_provider_named_module_attr_runs_on_every_node_of_a_ray_cluster(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    summary, starts = _run(tmp_path, "--ray", "local:2")
    assert summary["done"] == 6 and summary["success_rate"] == 1.0
    assert len({s["pid"] for s in starts}) == 2  # one worker per node made its own provider
