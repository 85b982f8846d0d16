"""`python -m harness run --agent rmcts` as a user runs it: sim sandboxes, llm-sim as the model, a
pool only as large as the concurrency (so each task's search must share its one sandbox)."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import anyio
from mcts_rig import ScriptedModel, providers, write_suite

from harness.llm.sim import SimConfig, SimServer

REPO = Path(__file__).resolve().parents[2]


async def test_rmcts_from_the_command_line_solves_every_trap_task_with_a_pool_of_two(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite", [1, 2, 3])
    run_dir = tmp_path / "run"
    model = ScriptedModel()
    async with SimServer(SimConfig(policy=model)) as server:
        pfile = tmp_path / "providers.json"
        pfile.write_text(json.dumps(providers(server.url)))
        with anyio.fail_after(240):
            proc = await anyio.run_process(
                [sys.executable, "-m", "harness", "run", "--benchmark", str(suite), "--agent", "rmcts",
                 "--provider", "sim", "--concurrency", "2", "--providers-file", str(pfile),
                 "--observation-type", "a11y_tree", "--max-steps", "6", "--agent-option", "iterations=12",
                 "--run-dir", str(run_dir), "-q"], cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    scores = {p.parent.name: json.loads(p.read_text())["score"] for p in run_dir.glob("sim/*/result.json")}
    assert scores == {"sim-00001": 1.0, "sim-00002": 1.0, "sim-00003": 1.0}
    with sqlite3.connect(run_dir / "reflections.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM reflections").fetchone()[0] > 0
    borrowed = [json.loads((run_dir / "sim" / t / "tree.json").read_text())["outcome"]["restore"]["home_borrowed"]
                for t in scores]
    assert any(borrowed)  # with the pool full, a search ran in its home sandbox and reset it for the replay
