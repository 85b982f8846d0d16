"""Engine claims on simulated sandboxes: fast, no Docker. The same claims on real containers
live in tests/test_engine_docker.py."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import harness

from benchmarks.sim_suite import write_sim_suite

REPO = Path(__file__).resolve().parents[2]


def start_harness(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def read_results(run_dir: Path) -> dict[str, float]:
    return {p.parent.name: json.loads(p.read_text())["score"] for p in run_dir.glob("*/*/result.json")}


def in_flight(run_dir: Path) -> bool:
    """Some attempt has recorded a step but no result yet."""
    return any(not (t.parent / "result.json").exists() for t in run_dir.glob("*/*/traj.jsonl"))


def finished_events(run_dir: Path) -> list[str]:
    ids = []
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line from a kill is tolerated
        if event.get("event") == "task_finished":
            ids.append(event["task_id"])
    return ids


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    return write_sim_suite(tmp_path / "suite", tasks=24, steps=3, domains=3)


def test_oracle_scores_every_sim_task_and_noop_none(suite: Path, tmp_path: Path) -> None:
    for agent, expected in (("oracle", 1.0), ("noop", 0.0)):
        run_dir = tmp_path / agent
        proc = harness("run", "--benchmark", str(suite), "--agent", agent, "--provider", "sim",
                       "--concurrency", "6", "--run-dir", str(run_dir), "-q")
        assert proc.returncode == 0, proc.stderr
        scores = read_results(run_dir)
        assert len(scores) == 24 and set(scores.values()) == {expected}
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["total"] == 24 and summary["done"] == 24
        assert summary["success_rate"] == expected
        assert set(summary["by_domain"]) == {"sim0", "sim1", "sim2"}
        # OSWorld's layout: result.txt holds the float, traj.jsonl one line per step.
        some = next(run_dir.glob("sim0/*/result.txt"))
        assert float(some.read_text()) == expected


def test_resume_after_sigkill_records_each_task_once(suite: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline"
    assert harness("run", "--benchmark", str(suite), "--agent", "oracle", "--provider", "sim",
                   "--concurrency", "4", "--run-dir", str(baseline), "-q").returncode == 0
    rng = random.Random(os.getpid())
    killed = tmp_path / "killed"
    args = ["--benchmark", str(suite), "--agent", "oracle", "--provider", "sim", "--concurrency", "4",
            "--sim-latency-ms", "40", "--run-dir", str(killed), "-q"]
    for _ in range(3):  # kill it several times at random moments mid-attempt, resuming each time
        proc = start_harness("run", *args)
        deadline = time.monotonic() + 60
        while not in_flight(killed) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    done = harness("resume", str(killed), "-q")
    assert done.returncode == 0, done.stderr
    assert read_results(killed) == read_results(baseline)
    finished = finished_events(killed)
    assert len(finished) == len(set(finished)) == 24, "every task recorded exactly once"
    assert json.loads((killed / "summary.json").read_text())["success_rate"] == 1.0
    # Attempts cut short by a kill are kept aside, never deleted.
    assert list(killed.glob("*/*/attempts/*")), "no unfinished attempt was moved aside"


def test_first_sigint_cancels_cleanly_with_exit_130_and_run_resumes(suite: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = start_harness("run", "--benchmark", str(suite), "--agent", "oracle", "--provider", "sim",
                         "--concurrency", "2", "--sim-latency-ms", "100", "--run-dir", str(run_dir), "-q")
    deadline = time.monotonic() + 30
    while not list(run_dir.glob("*/*/result.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    before = read_results(run_dir)
    assert 0 < len(before) < 24
    assert harness("resume", str(run_dir), "-q").returncode == 0
    after = read_results(run_dir)
    assert len(after) == 24 and all(after[k] == v for k, v in before.items())


def test_garbage_task_file_is_named_and_other_tasks_run(suite: Path, tmp_path: Path) -> None:
    bad = suite / "examples" / "sim0" / "sim-99999.json"
    bad.write_text('{"id": "sim-99999", "instruction": 42, "config": "nope"')
    listing = json.loads((suite / "test_all.json").read_text())
    listing["sim0"].append("sim-99999")
    (suite / "test_all.json").write_text(json.dumps(listing))
    run_dir = tmp_path / "run"
    proc = harness("run", "--benchmark", str(suite), "--agent", "oracle", "--provider", "sim",
                   "--concurrency", "4", "--run-dir", str(run_dir), "-q")
    assert proc.returncode == 1
    assert "sim-99999.json" in proc.stderr
    assert len(read_results(run_dir)) == 24


def test_resume_with_a_result_changing_option_is_refused(suite: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert harness("run", "--benchmark", str(suite), "--agent", "noop", "--provider", "sim",
                   "--run-dir", str(run_dir), "--tasks", "sim-00000", "-q").returncode == 0
    proc = harness("run", "--benchmark", str(suite), "--agent", "oracle", "--provider", "sim",
                   "--run-dir", str(run_dir), "-q")
    assert proc.returncode == 2
    assert "agent" in proc.stderr and "noop" in proc.stderr and "oracle" in proc.stderr
