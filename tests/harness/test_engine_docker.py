"""Engine claims on real containers: infrastructure retries and Ctrl-C cleanup."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
SLOW_TASK = "62f8b204-bd28-525f-b4ac-fadc5ef5f4f5"  # writer: six GUI steps, several seconds each


def containers_of(pid: int) -> list[str]:
    """Sandbox containers whose owner label names harness process `pid` (any state)."""
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", "label=cua-harness.managed=1",
         "--format", '{{.ID}} {{.Label "cua-harness.owner"}}'],
        capture_output=True, text=True, check=True, timeout=30).stdout
    return [line.split()[0] for line in out.splitlines() if len(line.split()) == 2 and f"/{pid}/" in line.split()[1]]


def wait_for(condition, *, deadline_s: float, what: str):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")


def start_run(run_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness", "run", "--benchmark", "desktop-basics",
                             "--agent", "oracle", "--run-dir", str(run_dir), "-q", *extra],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sandbox_killed_from_outside_mid_task_is_retried_and_the_task_still_scores(docker_engine, desktop_image, tmp_path):
    run_dir = tmp_path / "run"
    proc = start_run(run_dir, "--tasks", SLOW_TASK, "--concurrency", "1")
    try:
        task_dir = run_dir / "libreoffice_writer" / SLOW_TASK
        # Mid-task: the agent has executed at least one step in the sandbox.
        wait_for(lambda: (task_dir / "traj.jsonl").exists() and (task_dir / "traj.jsonl").read_text().strip(),
                 deadline_s=240, what="the first step of the task")
        victims = containers_of(proc.pid)
        assert victims, "no sandbox container of the run found"
        subprocess.run(["docker", "kill", *victims], capture_output=True, timeout=60)
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    result = json.loads((task_dir / "result.json").read_text())
    assert result["score"] == 1.0, result
    assert result["attempts"] == 2
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]
    assert any(e["event"] == "infra_failure" for e in events)
    assert list((task_dir / "attempts").iterdir()), "the killed attempt was not kept"
    assert containers_of(proc.pid) == []


def test_ctrl_c_exits_130_and_leaves_no_container_behind(docker_engine, desktop_image, tmp_path):
    run_dir = tmp_path / "run"
    proc = start_run(run_dir, "--domain", "os", "--concurrency", "2")
    try:
        wait_for(lambda: containers_of(proc.pid), deadline_s=240, what="the run's sandboxes")
        wait_for(lambda: list(run_dir.glob("os/*/traj.jsonl")), deadline_s=240, what="a task in flight")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert containers_of(proc.pid) == []
    # The directory is resumable: resume finishes the rest and every task is recorded once.
    done = subprocess.run([sys.executable, "-m", "harness", "resume", str(run_dir), "-q"], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["done"] == summary["total"] == 9
    assert summary["success_rate"] == 1.0


TODO_TASK = "acb860cc-5ced-5654-be7b-22560ad3a77b"  # text_editor: append to todo.txt; scored from the fetched file


@pytest.mark.parametrize(("agent", "score", "kept"), [("oracle", 1.0, False), ("noop", 0.0, True)])
def test_scratch_files_of_a_solved_task_are_removed_and_a_failed_ones_kept(
        docker_engine, desktop_image, tmp_path, agent, score, kept):
    run_dir = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "harness", "run", "--benchmark", "desktop-basics", "--agent", agent,
                           "--tasks", TODO_TASK, "--run-dir", str(run_dir), "-q"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((run_dir / "text_editor" / TODO_TASK / "result.json").read_text())["score"] == score
    scratch = run_dir / ".work" / "text_editor" / TODO_TASK
    assert scratch.exists() == kept
    if kept:  # the evaluator's copy of the file it scored, for whoever debugs the failure
        assert [p.name for p in scratch.rglob("todo.txt")]
