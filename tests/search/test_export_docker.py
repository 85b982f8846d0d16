"""`export` of a search that ran on real desktop sandboxes: rmcts on the built-in suite's "make
backup.sh executable" task (the scripted model of tests/test_mcts_docker.py: the most proposed
first action deletes the script, a dead end), exported as exploratory and imitation data with the
real screenshots inline, and validated."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from test_mcts_docker import DELETE, FIX, RUN, TASK, DesktopModel

from harness.llm.sim import SimConfig, SimServer
from results.export import ExportOptions, Limits, check_file, export_runs, output_paths

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]


async def test_a_docker_rmcts_run_exports_its_backtrack_with_real_screens_and_passes_check(
        docker_settings: Any, test_run_id: str, tmp_path: Path) -> None:
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
    run_dir = tmp_path / "run"
    screen = (docker_settings.screen_width, docker_settings.screen_height)
    config = make_config({"benchmark": str(suite_path), "agent": "rmcts", "provider": "docker", "concurrency": 1,
                          "observation_type": "screenshot_a11y_tree", "max_steps": 6, "run_dir": str(run_dir),
                          "screen_width": screen[0], "screen_height": screen[1], "task_timeout": 600})
    async with SimServer(SimConfig(policy=DesktopModel())) as server:
        providers = {"default_model": "sim-model", "embedding_model": "sim-embed",
                     "endpoints": [{"kind": "openai-compatible", "base_url": server.url, "models": ["*"]}]}
        async with LLMClient.from_config(providers, cache_path=run_dir / "llm_cache.sqlite") as llm, \
                DockerProvider(docker_settings, run_id=test_run_id) as provider:
            store = await RunStore.open(run_dir, config.model_dump(mode="json"), result_keys=[])
            try:
                async with SandboxPool(provider, capacity=3, max_starting=2) as pool:
                    agent = make_agent("rmcts", {"llm": llm, "observation_type": "screenshot_a11y_tree",
                                                 "max_steps": 6, "iterations": 10})
                    ctx = RunContext.for_run(run_dir, screen_size=screen)
                    runner = LocalAttemptRunner(config, pool, agent, context=ctx, run_dir=run_dir)
                    await Engine(config, suite.tasks, store, runner, unsupported=unsupported_features).run()
            finally:
                await store.aclose()
    task_dir = run_dir / "os" / TASK
    assert json.loads((task_dir / "result.json").read_text())["score"] == 1.0

    out = tmp_path / "ft.jsonl"
    with anyio.fail_after(120):
        done = await anyio.run_process([sys.executable, "-m", "harness", "export", str(run_dir), "--out", str(out),
                                        "--val-fraction", "0"], cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr.decode()
    metas = [json.loads(x) for x in output_paths(out)["meta"].read_text().splitlines()]
    moves = [(m["kind"], m.get("actions"), m.get("to"), m.get("steps")) for m in metas]
    # The deletion first, judged a dead end, back to the start (node 0), then the fix and the run.
    assert moves[0] == ("forward", [DELETE], None, None)
    assert moves[1] == ("backtrack", None, 0, 1)
    assert [m[1] for m in moves[2:] if m[0] == "forward"][:2] == [[FIX], [RUN]]
    examples = [json.loads(x) for x in out.read_text().splitlines()]
    backtrack = examples[1]["messages"][-1]["content"]
    assert backtrack.startswith("STATE EVALUATION: The terminal shows") and backtrack.endswith("```BACKTRACK 1```")
    # Every user turn shows a real screenshot of the desktop, inline, at the agent's screen size.
    url = examples[-1]["messages"][-2]["content"][1]["image_url"]["url"]
    png = base64.b64decode(url.split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == screen[0]
    assert "terminal" in examples[-1]["messages"][-2]["content"][0]["text"]  # and its accessibility table
    result = check_file(out, Limits(min_examples=1))
    assert result.ok, [p.format(out) for p in result.problems]
    assert result.images > len(examples)

    imitation = tmp_path / "im.jsonl"
    export_runs(ExportOptions(runs=(run_dir,), out=imitation, format="imitation", val_fraction=0))
    last = [json.loads(x) for x in imitation.read_text().splitlines()][-1]["messages"]
    traj = [json.loads(x) for x in (task_dir / "traj.jsonl").read_text().splitlines()]
    assert [m["content"] for m in last if m["role"] == "assistant"] == [t["response"].strip() for t in traj]
    assert [t["action"] for t in traj] == [FIX, RUN]
