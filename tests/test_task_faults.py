"""One task's trouble never ends a run (issue 22): each fault below ends its own task with the
reason and who is at fault recorded, the run goes on to the end, a Ray run records the same
thing as a local one, and `resume` after it completes (re-running the faulty tasks again).

Faults, one task each, in a suite of simulated sandboxes (the evaluator, setup steps, downloads
and run store are the real ones): a postconfig window the agent "closed", a gold file and a
postconfig download that answer 404, a gold file that answers 429, a getter `dest` that leaves the
work folder, getters raising ValueError and PermissionError (registered by tests/task_fault_plugins.py,
loaded in every process through a sitecustomize.py on PYTHONPATH), and, over Ray, workers that
send malformed events. Files are served by a loopback HTTP server in the test.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.sim_suite import write_sim_suite

REPO = Path(__file__).resolve().parents[1]
# Run-time downloads from loopback are refused unless the run allows private addresses.
PRIVATE_URL_FLAGS: list[str] = ["--allow-private-urls"]


class _Files(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = {"/gold.txt": (200, b"goal"), "/busy.txt": (429, b"slow down")}.get(self.path, (404, b"gone"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def files_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _vm_state(dest: str = "state.txt") -> dict:
    return {"type": "vm_file", "path": "/sim/state", "dest": dest}


def faulty_suite(root: Path, url: str) -> tuple[Path, dict[str, str]]:
    """A sim suite: sim-00000 sound, each other task one fault. Returns (suite, {task id: fault})."""
    suite = write_sim_suite(root, tasks=9)
    folder = suite / "examples" / "sim"
    faults = {
        "sim-00001": "window gone",
        "sim-00002": "gold 404",
        "sim-00003": "gold 429",
        "sim-00004": "postconfig download 404",
        "sim-00005": "dest escape",
        "sim-00006": "getter ValueError",
        "sim-00007": "getter PermissionError",
        "sim-00008": "sound",
    }
    for task_id in faults:
        path = folder / f"{task_id}.json"
        task = json.loads(path.read_text())
        ev = task["evaluator"]
        match faults[task_id]:
            case "window gone":  # the agent closed the editor; postconfig wants to activate it
                task["config"].append({"type": "execute", "parameters": {"command": ["sim", "close-window", "Editor"]}})
                ev["postconfig"] = [{"type": "activate_window", "parameters": {"window_name": "Editor"}},
                                    {"type": "close_window", "parameters": {"window_name": "Editor"}}]
            case "gold 404" | "gold 429":
                name = "missing.txt" if task_id == "sim-00002" else "busy.txt"
                task["evaluator"] = {"func": "compare_text_file", "result": _vm_state(),
                                     "expected": {"type": "cloud_file", "path": f"{url}/{name}", "dest": "gold.txt"}}
            case "postconfig download 404":
                ev["postconfig"] = [{"type": "download", "parameters": {
                    "files": [{"url": f"{url}/missing.xlsx", "path": "/tmp/x.xlsx"}]}}]
            case "dest escape":
                task["evaluator"] = {"func": "compare_text_file", "result": _vm_state("../../../escaped.txt"),
                                     "expected": {"type": "cloud_file", "path": f"{url}/gold.txt", "dest": "gold.txt"}}
            case "getter ValueError":
                ev["result"] = {"type": "fault_value_error"}
            case "getter PermissionError":
                ev["result"] = {"type": "fault_permission_error"}
            case "sound":  # a gold file that downloads: compared with the agent's state
                task["evaluator"] = {"func": "compare_text_file", "result": _vm_state(),
                                     "expected": {"type": "cloud_file", "path": f"{url}/gold.txt", "dest": "gold.txt"}}
        path.write_text(json.dumps(task))
    return suite, faults


def plugin_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "sitecustomize.py").write_text(
        f"import sys\nsys.path.insert(0, {str(REPO / 'tests')!r})\nimport task_fault_plugins  # noqa: F401\n")
    return {**os.environ, "PYTHONPATH": f"{plugins}{os.pathsep}{REPO}", "XDG_CACHE_HOME": str(tmp_path / "cache"),
            **extra}


def harness(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


def run_args(suite: Path, run_dir: Path, *more: str) -> list[str]:
    return ["run", "--benchmark", str(suite), "--agent", "oracle", "--provider", "sim", "--run-dir", str(run_dir),
            "--concurrency", "4", "--infra-retries", "0", "-q", *PRIVATE_URL_FLAGS, *more]


def records(run_dir: Path) -> dict[str, dict]:
    """What each task's result.json says about its failure (what local and Ray must agree on; a
    Ray run's infrastructure failure also names the node it happened on)."""
    keys = ("score", "error", "fault", "phase", "eval_error", "notes")
    out = {}
    for p in sorted(run_dir.glob("*/*/result.json")):
        r = json.loads(p.read_text())
        out[p.parent.name] = {k: r.get(k) for k in keys}
        if r.get("error"):
            out[p.parent.name]["error"] = re.sub(r" \(node [0-9a-f]{8}\)$", "", r["error"])
    return out


def check_faults(recs: dict[str, dict]) -> None:
    assert len(recs) == 9, sorted(recs)
    for task_id in ("sim-00000", "sim-00008"):
        assert recs[task_id]["score"] == 1.0 and recs[task_id]["fault"] is None, recs[task_id]
    window = recs["sim-00001"]  # OSWorld logs the missing window and scores the state: so do we
    assert window["score"] == 1.0 and window["fault"] is None, window
    assert any("postconfig step 0 (activate_window)" in n and "no such window" in n for n in window["notes"])
    assert any("postconfig step 1 (close_window)" in n for n in window["notes"])
    gone = recs["sim-00002"]
    assert (gone["score"], gone["fault"], gone["phase"]) == (0.0, "task", "evaluation"), gone
    assert "missing.txt: HTTP 404" in gone["error"] and gone["eval_error"]
    busy = recs["sim-00003"]  # a rate limit: retried with backoff, then the environment's (infrastructure)
    assert (busy["score"], busy["fault"], busy["phase"]) == (0.0, "environment", "infrastructure"), busy
    assert "HTTP 429" in busy["error"]
    post = recs["sim-00004"]
    assert (post["score"], post["fault"], post["phase"]) == (0.0, "task", "evaluation"), post
    assert "postconfig step 0 (download)" in post["error"] and "HTTP 404" in post["error"]
    escape = recs["sim-00005"]
    assert (escape["score"], escape["fault"], escape["phase"]) == (0.0, "task", "evaluation"), escape
    assert "must stay inside" in escape["error"]
    value = recs["sim-00006"]  # our bug: an evaluation error, not a silent 0
    assert (value["score"], value["fault"], value["phase"]) == (0.0, "harness", "evaluation"), value
    assert "ValueError" in value["eval_error"] and "fault_value_error" in value["eval_error"]
    host = recs["sim-00007"]
    assert (host["score"], host["fault"], host["phase"]) == (0.0, "environment", "evaluation"), host
    assert "PermissionError" in host["eval_error"]


def resume_reruns_faulty_tasks(env: dict[str, str], run_dir: Path, before: dict[str, dict], *more: str) -> None:
    """Unfinish two faulty tasks and resume: they fault again, are recorded again, the run ends."""
    for task_id in ("sim-00002", "sim-00005"):
        for name in ("result.json", "result.txt"):
            (run_dir / "sim" / task_id / name).unlink()
    proc = harness(env, "resume", str(run_dir), *PRIVATE_URL_FLAGS, *more)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert records(run_dir) == before
    assert json.loads((run_dir / "summary.json").read_text())["done"] == 9


def test_each_fault_ends_its_own_task_with_its_reason_and_the_run_and_resume_complete(
        tmp_path: Path, files_url: str) -> None:
    suite, _ = faulty_suite(tmp_path / "suite", files_url)
    env = plugin_env(tmp_path)
    run_dir = tmp_path / "run"
    proc = harness(env, *run_args(suite, run_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = records(run_dir)
    check_faults(recs)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["done"] == 9 and summary["eval_errors"] == 5
    assert summary["faults"] == {"environment": 2, "harness": 1, "task": 3}
    resume_reruns_faulty_tasks(env, run_dir, recs)


ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")


@pytest.mark.ray
def test_a_ray_run_records_the_same_faults_as_a_local_run(tmp_path: Path, files_url: str) -> None:
    suite, _ = faulty_suite(tmp_path / "suite", files_url)
    env = plugin_env(tmp_path)
    local, remote = tmp_path / "local", tmp_path / "ray"
    proc = harness(env, *run_args(suite, local))
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = harness(env, *run_args(suite, remote, "--ray", "local:2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = records(remote)
    assert recs == records(local)
    check_faults(recs)
    resume_reruns_faulty_tasks(env, remote, recs, "--ray", "local:2")


@pytest.mark.ray
def test_malformed_worker_events_fail_their_attempt_never_the_run(tmp_path: Path) -> None:
    suite = write_sim_suite(tmp_path / "suite", tasks=6)
    plan = {
        "sim-00001": [["step", {"step_num": -3, "action": "x"}, None]],
        "sim-00002": [["file", "../../run.json", b"x".hex(), True]],  # a path, and text for bytes
        "sim-00003": [["result", {"score": 7.5}, 0.1]],
        "sim-00004": [["result", {"score": 1.0, "node": "forged"}, 0.1]],
        "sim-00005": [["telemetry", {"cpu": 1}]],  # unknown kind: logged, the attempt goes on
    }
    env = plugin_env(tmp_path, CUA_TEST_WORKER_EVENTS=json.dumps(plan))
    run_dir = tmp_path / "run"
    args = ["run", "--benchmark", str(suite), "--agent", "oracle", "--provider", "sim", "--run-dir", str(run_dir),
            "--concurrency", "4", "--infra-retries", "1", "-q", "--ray", "local:2"]
    proc = harness(env, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = {p.parent.name: json.loads(p.read_text()) for p in run_dir.glob("*/*/result.json")}
    assert len(recs) == 6
    for task_id, why in (("sim-00001", "step_num"), ("sim-00002", "file name"), ("sim-00003", "result score"),
                         ("sim-00004", "unexpected field 'node'")):
        r = recs[task_id]
        assert r["score"] == 0.0 and r["fault"] == "environment" and r["phase"] == "infrastructure", r
        assert "MalformedEvent" in r["error"] and why in r["error"] and r["attempts"] == 2, r
    assert recs["sim-00000"]["score"] == 1.0 and recs["sim-00005"]["score"] == 1.0
    assert "unknown kind 'telemetry'" in proc.stderr
    assert json.loads((run_dir / "run.json").read_text())["config"]["agent"] == "oracle"  # not overwritten
    infra = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()
             if '"infra_failure"' in line]
    assert len(infra) == 8  # 4 tasks x 2 attempts, each journaled
    proc = harness(env, "resume", str(run_dir), "--ray", "local:2")
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.docker
def test_postconfig_window_gone_on_a_real_sandbox_is_a_note_and_the_run_goes_on(
        tmp_path: Path, desktop_image: str) -> None:
    suite = tmp_path / "suite"
    folder = suite / "examples" / "os"
    folder.mkdir(parents=True)
    ok = {"func": "exact_match", "result": {"type": "vm_command_line", "command": ["echo", "ok"], "shell": False},
          "expected": {"type": "rule", "rules": {"expected": "ok\n"}}}
    tasks = {
        "window-gone": {**ok, "postconfig": [
            {"type": "activate_window", "parameters": {"window_name": "No Such Window 7f3a", "strict": True}},
            {"type": "close_window", "parameters": {"window_name": "No Such Window 7f3a", "strict": True}}]},
        "postconfig-bad-step": {**ok, "postconfig": [{"type": "download", "parameters": {
            "files": [{"url": "file:///etc/passwd", "path": "/tmp/passwd"}]}}]},
        "sound": ok,
    }
    for task_id, evaluator in tasks.items():
        (folder / f"{task_id}.json").write_text(json.dumps({
            "id": task_id, "instruction": "nothing to do", "config": [], "evaluator": evaluator,
            "solution": ["DONE"]}))
    (suite / "test_all.json").write_text(json.dumps({"os": list(tasks)}))
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = harness(env, "run", "--benchmark", str(suite), "--agent", "oracle", "--run-dir", str(run_dir),
                   "--concurrency", "3", "-q", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = {p.parent.name: json.loads(p.read_text()) for p in run_dir.glob("*/*/result.json")}
    assert recs["sound"]["score"] == 1.0
    gone = recs["window-gone"]
    assert gone["score"] == 1.0 and gone.get("fault") is None and gone["attempts"] == 1, gone
    assert any("activate_window" in n and "no such window" in n for n in gone["notes"]), gone
    assert any("close_window" in n for n in gone["notes"]), gone
    bad = recs["postconfig-bad-step"]
    assert bad["score"] == 0.0 and bad["fault"] == "task" and bad["phase"] == "evaluation", bad
    assert "postconfig step 0 (download)" in bad["error"] and "assets" in bad["error"]
    shutil.rmtree(run_dir / "os" / "postconfig-bad-step")
    proc = harness(env, "resume", str(run_dir), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads((run_dir / "os" / "postconfig-bad-step" / "result.json").read_text())
    assert again["fault"] == "task" and again["error"] == bad["error"]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (needs root and mount rights; skipped elsewhere)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()[:200]}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_run_directory_disk_stops_the_run_with_one_line_and_resume_finishes_it(
        tmp_path: Path, tiny_disk: Path) -> None:
    suite = write_sim_suite(tmp_path / "suite", tasks=40)
    run_dir = tiny_disk / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = harness(env, "run", "--benchmark", str(suite), "--agent", "oracle", "--provider", "sim",
                   "--run-dir", str(run_dir), "-q")
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1, err
    assert "cannot write" in err and str(run_dir) in err and "No space left" in err and "resume" in err
    finished = len(list(run_dir.glob("sim/*/result.json")))
    assert finished < 40
    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)], check=True)
    proc = harness(env, "resume", str(run_dir), "-q")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list(run_dir.glob("sim/*/result.json"))) == 40
