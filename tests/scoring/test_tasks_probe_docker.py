"""`tasks check --probe` on real sandboxes: setup and evaluator commands run in a fresh sandbox,
and a task is demoted exactly when the image lacks what it needs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from benchmarks.schema import Task
from scoring.probe import probe_context, probe_tasks
from vm.docker import DockerProvider
from vm.pool import SandboxPool

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]


def make(tid: str, *, config: list[dict[str, Any]] | None = None, command: Any = "ls /tmp", shell: bool = True,
         getter: str = "vm_command_line") -> Task:
    return Task.model_validate({
        "id": tid, "instruction": "i", "related_apps": ["os"], "config": config or [],
        "evaluator": {"func": "check_include_exclude", "result": {"type": getter, "command": command, "shell": shell},
                      "expected": {"type": "rule", "rules": {"include": ["x"], "exclude": []}}},
    }).bind(domain="os")


async def _direct(provider: DockerProvider, command: str) -> int:
    box = await provider.start()
    try:
        return (await box.guest.execute(command, shell=True, timeout=60)).returncode
    finally:
        with anyio.CancelScope(shield=True):
            await provider.stop(box)


async def test_probe_demotes_what_the_image_lacks_and_nothing_else(docker_provider: DockerProvider, tmp_path: Path) -> None:
    favorites = "export DBUS_SESSION_BUS_ADDRESS='unix:path=/run/user/1000/bus'\ngsettings get org.gnome.shell favorite-apps"
    volume = "pulseaudio --start\npactl list sinks | grep '^[[:space:]]Volume:' | head -n 1 | awk '{print $5}'"
    tasks = [
        make("good", config=[{"type": "execute", "parameters": {"command": ["mkdir", "-p", "/tmp/probe-dir"]}}]),
        make("missing-evaluator-command", command="definitely-not-installed-xyz --list"),
        make("missing-list-command", command=["definitely-not-installed-xyz", "--list"], shell=False),
        make("window-never-opened", config=[{"type": "activate_window",
                                             "parameters": {"window_name": "A Window Nobody Opens", "strict": True}}]),
        make("launch-missing", config=[{"type": "launch", "parameters": {"command": "no-such-app-xyz --flag", "shell": True}}]),
        make("module-is-the-measured-value", command=["python", "-c", "import no_such_module_xyz"], shell=False,
             getter="vm_command_error"),
        make("gnome-favorites", command=favorites),
        make("volume", command=volume),
    ]
    seen: list[str] = []
    async with SandboxPool(docker_provider, capacity=2, max_starting=2) as pool:
        with anyio.fail_after(600):
            results = await probe_tasks(tasks, pool, probe_context(tmp_path), concurrency=2,
                                        on_result=lambda t, o: seen.append(t.id))
    assert sorted(seen) == sorted(t.id for t in tasks)
    assert results["good"].ok is True and results["good"].reasons == [] and results["good"].checked == 1
    assert results["missing-evaluator-command"].ok is False
    assert "definitely-not-installed-xyz" in results["missing-evaluator-command"].reasons[0]
    assert "No such file or directory" in results["missing-list-command"].reasons[0]
    assert results["window-never-opened"].ok is False
    assert results["window-never-opened"].reasons[0].startswith("probe: setup failed: config step 0 (activate_window)")
    assert any("no-such-app-xyz" in r for r in results["launch-missing"].reasons)
    assert results["module-is-the-measured-value"].ok is True  # the error text is what the metric compares
    # OSWorld's own os-task commands: demoted exactly when the image lacks the schema / the sound server.
    has_schema = await _direct(docker_provider, "gsettings list-schemas | grep -qx org.gnome.shell") == 0
    assert results["gnome-favorites"].ok is has_schema, results["gnome-favorites"].reasons
    has_pulse = await _direct(docker_provider, "pulseaudio --start; pactl info >/dev/null") == 0
    assert results["volume"].ok is has_pulse, results["volume"].reasons


async def test_tasks_check_probe_cli_records_the_outcome_and_demotes(desktop_image: str, tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    (suite / "examples" / "os").mkdir(parents=True)
    for t in (make("p-good"), make("p-missing", command="definitely-not-installed-xyz")):
        (suite / "examples" / "os" / f"{t.id}.json").write_text(t.model_dump_json(exclude_none=True))
    out = tmp_path / "check.json"
    with anyio.fail_after(600):
        proc = await anyio.run_process([sys.executable, "-m", "harness", "tasks", "check", str(suite), "--probe",
                                        "--concurrency", "2", "--json", str(out)], cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    rows = {r["id"]: r for r in json.loads(out.read_text())}
    assert rows["p-good"]["ready"] == "offline" and rows["p-good"]["probe"]["ok"] is True
    assert rows["p-missing"]["ready"] is False and rows["p-missing"]["probe"]["ok"] is False
    assert any(r.startswith("probe: evaluator command") for r in rows["p-missing"]["reasons"])
    assert "probe 2/2" in proc.stderr.decode()
