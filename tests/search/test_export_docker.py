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
from test_mcts_docker import DELETE, FIX, RUN, TASK, DesktopModel, run_rmcts_on_docker

from results.export import ExportOptions, Limits, check_file, export_runs, output_paths

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]


async def test_a_docker_rmcts_run_exports_its_backtrack_with_real_screens_and_passes_check(
        docker_settings: Any, test_run_id: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    await run_rmcts_on_docker(docker_settings, test_run_id, run_dir, DesktopModel())
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
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == docker_settings.screen_width
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
