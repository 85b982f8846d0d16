"""The prompt agent on a real sandbox against llm-sim (a separate process, scripted with the
task's reference solution): the task scores 1.0, and a second run pointed at the first run's
cache replays every answer with zero requests reaching the server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
TASK = "19de64a9-7b78-53ea-92fb-3f95a170afe3"  # os: create a project folder in the terminal


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sim_requests(url: str) -> int:
    with urllib.request.urlopen(f"{url}/sim/stats", timeout=10) as r:
        return json.loads(r.read())["chat_requests"]


@pytest.fixture
def llm_sim():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "harness", "llm-sim", "--port", str(port),
                             "--policy", "tests.llm_policies:desktop_basics_solver"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            sim_requests(url)
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError(f"llm-sim did not start: {proc.stderr.read()[-2000:]}") from None
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def run_prompt(run_dir: Path, providers: Path, *extra: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--benchmark", "desktop-basics", "--agent", "prompt",
                           "--model", "sim-model", "--providers-file", str(providers), "--tasks", TASK,
                           "--observation-type", "screenshot_a11y_tree", "--run-dir", str(run_dir), "-q",
                           # The light desktop: on the osworld one, the a11y tree names the time and
                           # the terminal's drawing can differ between runs, so a changed observation
                           # is a new request (llm.md).
                           "--desktop", "light", *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((run_dir / "os" / TASK / "result.json").read_text())


def test_prompt_agent_scripted_with_the_solution_scores_1_and_a_rerun_replays_from_cache(docker_engine, desktop_image,
                                                                                           llm_sim, tmp_path):
    providers = tmp_path / "providers.json"
    providers.write_text(json.dumps({"default_model": "sim-model", "endpoints": [
        {"kind": "openai-compatible", "base_url": f"{llm_sim}/v1", "api_key": "sk-test-0000", "models": ["*"]}]}))
    first = run_prompt(tmp_path / "first", providers)
    assert first["score"] == 1.0, first
    paid = sim_requests(llm_sim)
    assert paid >= 2
    second = run_prompt(tmp_path / "second", providers, "--llm-cache", str(tmp_path / "first" / "llm_cache.sqlite"))
    assert second["score"] == 1.0, second
    assert sim_requests(llm_sim) == paid, "the re-run sent requests instead of replaying the cache"
    # No API key in any file of either run directory.
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name != "providers.json":
            assert b"sk-test-0000" not in path.read_bytes(), path
