"""`python -m harness tasks check` over real OSWorld task files, in a subprocess like a user runs it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import harness

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO.parent / "shared" / "osworld-sample"
needs_sample = pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"OSWorld sample not found at {SAMPLE}")


@needs_sample
def test_tasks_check_reports_every_sample_task_per_domain(tmp_path: Path) -> None:
    out = tmp_path / "check.json"
    proc = harness("tasks", "check", str(SAMPLE), "--test-list", str(SAMPLE / "test_small.json"), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())
    assert len(rows) == 39
    assert all(set(r) == {"id", "domain", "ready", "reasons", "unsupported", "apps"} for r in rows)
    assert all(r["ready"] in ("offline", "network", False) for r in rows)
    assert all((r["ready"] is False) == bool(r["reasons"]) for r in rows if r["ready"] != "network")
    assert all(r["ready"] is False for r in rows if r["unsupported"])
    ready = sum(r["ready"] is not False for r in rows)
    assert 0 < ready < 39
    lines = proc.stdout.splitlines()
    header = next(line for line in lines if line.startswith("domain"))
    assert header.split()[:5] == ["domain", "tasks", "ready", "offline", "network"]
    calc = next(line for line in lines if line.startswith("libreoffice_calc"))
    assert calc.split()[1:3] == ["3", "3"]
    assert any(line.startswith("all") and line.split()[1:3] == ["39", str(ready)] for line in lines)
    assert "setup: googledrive" in proc.stdout


@needs_sample
def test_tasks_check_survives_garbage_files(tmp_path: Path) -> None:
    root = tmp_path / "suite"
    shutil.copytree(SAMPLE, root)
    (root / "examples/os/5ea617a3-0e86-4ba6-aab2-dac9aa2e8d57.json").write_bytes(b"\x00\xff not json")
    (root / "examples/vlc/59f21cfb-0120-4326-b255-a5b827b38967.json").write_text('{"id": 5}')
    out = tmp_path / "c.json"
    proc = harness("tasks", "check", str(root), "--test-list", "test_small.json", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = {r["id"]: r for r in json.loads(out.read_text())}
    assert len(rows) == 39
    bad = rows["5ea617a3-0e86-4ba6-aab2-dac9aa2e8d57"]
    assert bad["ready"] is False and bad["unsupported"][0].startswith("error: examples/os/5ea617a3")
    assert "error: examples/vlc/59f21cfb-0120-4326-b255-a5b827b38967.json: id:" in rows["59f21cfb-0120-4326-b255-a5b827b38967"]["unsupported"][0]
    assert "malformed file (1)" in proc.stdout


def test_list_metrics_and_getters() -> None:
    metrics = harness("tasks", "list-metrics")
    getters = harness("tasks", "list-getters")
    assert metrics.returncode == 0 and getters.returncode == 0
    assert {"compare_table", "fuzzy_match", "infeasible"} <= {line.split()[0] for line in metrics.stdout.splitlines()}
    assert {"vm_file", "cloud_file", "rule_relativeTime"} <= {line.split()[0] for line in getters.stdout.splitlines()}


def test_check_of_a_missing_folder_is_a_one_line_error(tmp_path: Path) -> None:
    proc = harness("tasks", "check", str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "suite folder not found" in proc.stderr
