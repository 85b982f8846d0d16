"""Evaluation errors are never a silent 0: a bug in our evaluator is recorded on the result,
counted in summary.json, shown in the report and fails `validate`; an unreadable agent file is a
plain 0 with the reason. Through the real run engine on simulated sandboxes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_guest import FakeGuest
from helpers import harness

from benchmarks.context import RunContext
from benchmarks.schema import Task
from benchmarks.sim_suite import write_sim_suite
from scoring import evaluate
from scoring.settings import ScoringSettings

REPO = Path(__file__).resolve().parents[2]


def broken_suite(root: Path, tasks: int = 3) -> Path:
    """sim-00000 sound; sim-00001's metric raises KeyError (our bug); sim-00002 reads a file that is
    not a PDF (the agent's fault)."""
    suite = write_sim_suite(root, tasks=tasks)
    folder = suite / "examples" / "sim"
    t1 = json.loads((folder / "sim-00001.json").read_text())
    t1["evaluator"]["expected"]["rules"] = {"wrong_key": "goal"}  # exact_match reads rules["expected"]
    (folder / "sim-00001.json").write_text(json.dumps(t1))
    t2 = json.loads((folder / "sim-00002.json").read_text())
    t2["evaluator"] = {"func": "check_pdf_pages", "result": {"type": "vm_file", "path": "/sim/state", "dest": "s.pdf"},
                       "expected": {"type": "rule", "rules": {"relation": "eq", "ref_value": 1}}}
    (folder / "sim-00002.json").write_text(json.dumps(t2))
    return suite


def test_metric_bug_is_an_eval_error_in_result_summary_and_report_but_a_corrupt_file_is_a_plain_zero(
        tmp_path: Path) -> None:
    suite = broken_suite(tmp_path / "suite")
    run_dir = tmp_path / "run"
    proc = harness("run", "--benchmark", str(suite), "--agent", "oracle", "--provider", "sim",
                   "--run-dir", str(run_dir), "-q")
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    results = {p.parent.name: json.loads(p.read_text()) for p in run_dir.glob("*/*/result.json")}
    assert results["sim-00000"]["score"] == 1.0 and results["sim-00000"]["eval_error"] is None
    bug = results["sim-00001"]
    assert bug["score"] == 0.0 and "KeyError" in bug["eval_error"] and "exact_match" in bug["eval_error"]
    corrupt = results["sim-00002"]
    assert corrupt["score"] == 0.0 and corrupt["eval_error"] is None
    assert "not a readable PDF" in corrupt["evaluation"]["metrics"][0]["note"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["eval_errors"] == 1
    assert harness("report", str(run_dir)).returncode == 0
    index = next(run_dir.rglob("index.html")).read_text()
    assert '<span id="eval-errors">1</span>' in index and "sim/sim-00001" in index


def test_validate_fails_on_an_eval_error_and_names_an_unloadable_task_file(tmp_path: Path) -> None:
    suite = broken_suite(tmp_path / "suite", tasks=4)
    (suite / "examples" / "sim" / "sim-00003.json").write_text("{not json")
    proc = harness("validate", "--benchmark", str(suite), "--provider", "sim", "--run-dir", str(tmp_path / "v"),
                   "--json", str(tmp_path / "v.json"), "-q")
    assert proc.returncode == 1
    rows = {r["id"]: r for r in json.loads((tmp_path / "v.json").read_text())["tasks"]}
    assert rows["sim-00000"]["ok"] and not rows["sim-00001"]["ok"]
    assert "evaluation error" in rows["sim-00001"]["error"]
    assert not rows["sim-00003"]["ok"] and "sim-00003.json" in rows["sim-00003"]["error"]


def _task(evaluator: dict) -> Task:
    return Task.model_validate({"id": "t", "instruction": "i", "evaluator": evaluator}).bind(domain="os")


@pytest.fixture
def ctx(tmp_path: Path) -> RunContext:
    return RunContext(work_root=tmp_path / "work", scoring=ScoringSettings(getter_timeout=0.5))


async def test_getter_timeout_with_a_live_guest_is_a_zero_with_reason_not_infrastructure(ctx: RunContext) -> None:
    import anyio

    from vm.types import ExecResult

    class Stuck(FakeGuest):
        async def execute(self, command, *, shell=False, timeout=120.0):  # type: ignore[no-untyped-def]
            if command == "true":
                return ExecResult(0, "")
            await anyio.sleep(5)  # the app the agent left blocks this command
            return ExecResult(0, "late")

    t = _task({"func": "exact_match", "result": {"type": "vm_command_line", "command": "wait", "shell": True},
               "expected": {"type": "rule", "rules": {"expected": "x"}}})
    result = await evaluate(t, Stuck(), ["DONE"], ctx)
    assert result.score == 0.0 and result.eval_error is None
    assert "no result within" in result.metrics[0].note and "guest answers" in result.metrics[0].note


async def test_broken_gold_file_is_an_eval_error_not_the_agents_zero(ctx: RunContext, tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "gold.zip").write_bytes(b"not a zip")
    t = _task({"func": "compare_zip_files", "result": {"type": "vm_file", "path": "/home/user/a.zip", "dest": "a.zip"},
               "expected": {"type": "cloud_file", "path": "gold.zip", "dest": "gold.zip"}})
    t.bind(domain="os", assets_dir=assets)
    result = await evaluate(t, FakeGuest(files={"/home/user/a.zip": b"also not a zip"}), ["DONE"], ctx)
    assert result.score == 0.0 and result.eval_error and "gold zip" in result.eval_error


async def test_the_evaluation_record_keeps_why_a_feasible_task_scored_zero(ctx: RunContext) -> None:
    t = _task({"func": "exact_match", "result": {"type": "vm_command_line", "command": "x", "shell": True},
               "expected": {"type": "rule", "rules": {"expected": "x"}}})
    record = (await evaluate(t, FakeGuest(), ["FAIL"], ctx)).record()
    assert record == {"score": 0.0, "conj": "and", "reason": "last action FAIL on a feasible task", "metrics": []}
