"""`validate`: a suite passes only when every reference solution scores 1 and doing nothing scores 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.sim_suite import write_sim_suite

REPO = Path(__file__).resolve().parents[2]


def validate(suite: Path, out: Path) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "harness", "validate", "--benchmark", str(suite), "--provider", "sim",
                           "--run-dir", str(out / "runs"), "--json", str(out / "v.json"), "-q"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    return proc.returncode, json.loads((out / "v.json").read_text())


def test_validate_passes_a_sound_suite(tmp_path: Path) -> None:
    code, report = validate(write_sim_suite(tmp_path / "suite", tasks=6, domains=2), tmp_path)
    assert code == 0
    assert len(report["tasks"]) == 6
    assert all(t["ok"] and t["oracle_score"] == 1.0 and t["noop_score"] == 0.0 for t in report["tasks"])


def test_validate_flags_an_evaluator_that_passes_without_any_action(tmp_path: Path) -> None:
    suite = write_sim_suite(tmp_path / "suite", tasks=3)
    broken = suite / "examples" / "sim" / "sim-00001.json"
    task = json.loads(broken.read_text())
    task["evaluator"]["expected"]["rules"]["expected"] = "0"  # the starting state already "passes"
    task["solution"] = ["DONE"]
    broken.write_text(json.dumps(task))
    code, report = validate(suite, tmp_path)
    assert code == 1
    verdicts = {t["id"]: t["ok"] for t in report["tasks"]}
    assert verdicts == {"sim-00000": True, "sim-00001": False, "sim-00002": True}
