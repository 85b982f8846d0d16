"""`validate` on an OSWorld-layout suite (no solutions): setup + noop in real sandboxes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.docker


def write(root: Path, domain: str, task_id: str, evaluator: dict, config: list | None = None) -> None:
    folder = root / "examples" / domain
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{task_id}.json").write_text(json.dumps({
        "id": task_id, "instruction": "x", "config": config or [], "related_apps": [], "evaluator": evaluator}))


def test_noop_scores_zero_infeasible_fail_scores_one_and_a_missing_command_fails(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    write(suite, "os", "sound", {"func": "exact_match",
                                 "result": {"type": "vm_command_line", "command": "cat ~/state.txt", "shell": True},
                                 "expected": {"type": "rule", "rules": {"expected": "done\n"}}},
          config=[{"type": "execute", "parameters": {"command": "echo start > ~/state.txt", "shell": True}}])
    write(suite, "os", "infeasible", {"func": "infeasible"})
    write(suite, "os", "missing", {"func": "exact_match",
                                   "result": {"type": "vm_command_line", "command": "no-such-tool --x", "shell": True},
                                   "expected": {"type": "rule", "rules": {"expected": "x"}}})
    out = tmp_path / "v.json"
    proc = subprocess.run([sys.executable, "-m", "harness", "validate", "--benchmark", str(suite), "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    rows = {r["id"]: r for r in json.loads(out.read_text())["tasks"]}
    assert rows["sound"]["status"] == "ok" and rows["sound"]["score"] == 0.0
    assert rows["infeasible"]["status"] == "ok" and rows["infeasible"]["score"] == 1.0
    assert rows["missing"]["status"] == "failed" and "not found" in "; ".join(rows["missing"]["problems"])
    assert "2 ok, 1 failed" in proc.stdout
