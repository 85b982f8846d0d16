"""rmcts end to end on real desktop sandboxes: the built-in suite's "make backup.sh executable" task,
the real engine, Docker pool, setup steps and evaluator, llm-sim as the model.

The scripted model proposes a mix of actions at the start: deleting the script (the most
frequent proposal, a dead end), running it first (harmless, "Permission denied"), and the fix
(chmod +x). The judges score what they see in the terminal's accessibility text. The search must
back out of the deletion, fix the script, run it, and the final replay in a clean sandbox must
score 1.0 with the task's own evaluator."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from harness.llm.sim import SimConfig, SimServer

pytestmark = pytest.mark.docker

TASK = "8b074e51-0a4c-561a-bf45-eff8894314bf"
DELETE = "pyautogui.write('rm ~/bin/backup.sh\\n'); time.sleep(1.0)"
RUN = "pyautogui.write('~/bin/backup.sh\\n'); time.sleep(1.0)"
FIX = "pyautogui.write('chmod +x ~/bin/backup.sh\\n'); time.sleep(1.0)"


def _text(message: dict[str, Any]) -> str:
    c = message["content"]
    return c if isinstance(c, str) else "".join(p.get("text", "") for p in c if p.get("type") == "text")


def _terminal(text: str) -> str:
    """The terminal rows of the (last) accessibility table in a prompt."""
    rows = [line for line in text.splitlines() if line.startswith("terminal\t")]
    return rows[-1] if rows else ""


def _code(action: str) -> str:
    return f"```python\n{action}\n```"


class DesktopModel:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: dict[str, Any]) -> list[str]:
        self.requests.append(request)
        n = request.get("n") or 1
        last = _text(request["messages"][-1])
        screen = _terminal(last)
        if "EVALUATION: X" in last or "STATUS CODE: X" in last:
            if "backup finished: 3 folders copied" in screen:
                letter = "A"
            elif "No such file" in screen or "rm ~/bin" in screen:
                letter = "E"
            elif "chmod +x" in screen:
                letter = "B"
            elif "Permission denied" in screen:
                letter = "D"
            else:
                letter = "C"
            marker = "EVALUATION" if "EVALUATION: X" in last else "STATUS CODE"
            return [f"The terminal shows: {screen[-200:]!r}.\n{marker}: {letter}"] * n
        if re.search(r"ROLE: (SUPPORTING|OPPOSING)", last):
            return [f"The terminal shows {screen[-120:]!r}."] * n
        if "ROLE: REFLECTION" in last:
            return ["Deleting the script destroys what the task needs; make it executable instead."] * n
        if "backup finished: 3 folders copied" in screen:
            return ["The script ran.\n```DONE```"] * n
        if "No such file" in screen or "rm ~/bin" in screen:
            return [_code("pyautogui.write('ls ~/bin\\n'); time.sleep(1.0)")] * n
        if "chmod +x" in screen:
            return [_code(RUN)] * n
        # the start state (or after "Permission denied"): 10 x delete, 6 x fix, 4 x run it first
        pattern = [DELETE] * 10 + [FIX] * 6 + [RUN] * 4
        return [_code(pattern[(i * 7) % 20]) for i in range(n)]


async def run_rmcts_on_docker(docker_settings: Any, test_run_id: str, run_dir: Path, model: Any) -> None:
    """The built-in task TASK, rmcts on a real sandbox with llm-sim playing `model`, into `run_dir`."""
    from benchmarks.context import RunContext
    from benchmarks.loader import load_suite, resolve_benchmark
    from harness.config import make_config
    from harness.engine import Engine, LocalAttemptRunner
    from harness.llm.client import LLMClient
    from results.store import RunStore
    from scoring.coverage import unsupported_features
    from search.agent import make_agent
    from vm.docker import DockerProvider
    from vm.pool import SandboxPool

    suite_path = resolve_benchmark("desktop-basics")
    suite = load_suite(suite_path, ids=[TASK])
    assert [t.id for t in suite.tasks] == [TASK]
    config = make_config({"benchmark": str(suite_path), "agent": "rmcts", "provider": "docker", "concurrency": 1,
                          "observation_type": "screenshot_a11y_tree", "max_steps": 6, "run_dir": str(run_dir),
                          "screen_width": docker_settings.screen_width, "screen_height": docker_settings.screen_height,
                          "task_timeout": 600})
    async with SimServer(SimConfig(policy=model)) as server:
        providers = {"default_model": "sim-model", "embedding_model": "sim-embed",
                     "endpoints": [{"kind": "openai-compatible", "base_url": server.url, "models": ["*"]}]}
        async with LLMClient.from_config(providers, cache_path=run_dir / "llm_cache.sqlite") as llm, \
                DockerProvider(docker_settings, run_id=test_run_id) as provider:
            store = await RunStore.open(run_dir, config.model_dump(mode="json"), result_keys=[])
            try:
                async with SandboxPool(provider, capacity=3, max_starting=2) as pool:
                    agent = make_agent("rmcts", {"llm": llm, "observation_type": "screenshot_a11y_tree",
                                                 "max_steps": 6, "iterations": 10})
                    ctx = RunContext.for_run(run_dir,
                                               screen_size=(docker_settings.screen_width, docker_settings.screen_height))
                    runner = LocalAttemptRunner(config, pool, agent, context=ctx, run_dir=run_dir)
                    engine = Engine(config, suite.tasks, store, runner, unsupported=unsupported_features)
                    await engine.run()
                    assert pool.stats().busy == 0
            finally:
                await store.aclose()


async def test_rmcts_backs_out_of_a_destructive_action_and_the_final_replay_scores_one(
        docker_settings: Any, test_run_id: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    model = DesktopModel()
    await run_rmcts_on_docker(docker_settings, test_run_id, run_dir, model)
    task_dir = run_dir / "os" / TASK
    result = json.loads((task_dir / "result.json").read_text())
    assert result["error"] is None, result["error"]
    assert result["score"] == 1.0
    lines = [json.loads(x) for x in (task_dir / "search.jsonl").read_text().splitlines()]
    iterations = [x for x in lines if x["event"] == "iteration"]
    assert iterations[0]["actions"] == [DELETE] and iterations[0]["value"] == -1.0  # tried, judged a dead end
    assert lines[-1]["event"] == "stop" and lines[-1]["reason"] == "early_stop"
    tree = json.loads((task_dir / "tree.json").read_text())
    assert [n["actions"] for n in tree["final"]] == [[FIX], [RUN]]
    assert tree["outcome"]["final_replay_score"] == 1.0 and tree["outcome"]["final_replays"] == 1
    traj = [json.loads(x) for x in (task_dir / "traj.jsonl").read_text().splitlines()]
    assert [t["action"] for t in traj] == [FIX, RUN]
    assert all((task_dir / n["screenshot"]).is_file() for n in tree["nodes"] if n["executed"])
