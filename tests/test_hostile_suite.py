"""Hostile task files and test lists fail alone: a fuzzed 20-task suite always runs to its summary,
every bad file is one load error naming it, every good task is scored (sim provider, no Docker)."""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.loader import MAX_TASK_BYTES, load_suite
from benchmarks.sim_suite import write_sim_suite
from harness.base.errors import TaskError

REPO = Path(__file__).resolve().parents[1]


def _task_file(suite: Path, index: int) -> Path:
    return suite / "examples" / "sim" / f"sim-{index:05d}.json"


def _mutate(suite: Path, index: int, how: str) -> None:
    path = _task_file(suite, index)
    task = json.loads(path.read_text())
    if how == "id-path":
        task["id"] = "../../escaped"
    elif how == "id-type":
        task["id"] = 42
    elif how == "config-type":
        task["config"] = "nope"
    elif how == "evaluator-type":
        task["evaluator"] = [1, 2]
    elif how == "deep":  # 10,000 levels: json's recursion limit, not ours, would be hit first
        path.write_text('{"id": "x", "deep": ' + "[" * 10_000 + "]" * 10_000 + "}")
        return
    elif how == "deep-extra":  # parses, but nests past the loader's limit inside a kept unknown field
        path.write_text(json.dumps({**task, "extra": json.loads("[" * 500 + "]" * 500)}))
        return
    elif how == "utf8":
        path.write_bytes(path.read_bytes().replace(b"Bring", b"Br\xff\xfeing"))
        return
    elif how == "huge":  # a 50 MB string: refused by size before it is read
        task["instruction"] = "x" * (50 << 20)
    elif how == "truncated":
        raw = path.read_bytes()
        path.write_bytes(raw[: random.Random(index).randrange(1, len(raw) - 1)])
        return
    elif how == "not-object":
        task = [task]
    path.write_text(json.dumps(task))


BAD = ["id-path", "id-type", "config-type", "evaluator-type", "deep", "deep-extra", "utf8", "huge",
       "truncated", "not-object"]


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A 20-task suite with 10 mutated files and 3 hostile test-list entries; {bad name: mutation}."""
    suite = write_sim_suite(tmp_path / "suite", tasks=20, steps=2)
    bad = {}
    for i, how in enumerate(BAD):
        _mutate(suite, 2 * i + 1, how)  # odd indexes are bad, even ones stay good
        bad[_task_file(suite, 2 * i + 1).name] = how
    listing = json.loads((suite / "test_all.json").read_text())
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "sim-00000.json").write_text(_task_file(suite, 0).read_text())
    listing["../../outside"] = ["sim-00000"]  # a domain with path parts
    listing["sim"] += ["../../outside/sim-00000", 7]  # an id with path parts, an id of the wrong type
    (suite / "test_all.json").write_text(json.dumps(listing))
    return suite, bad


def test_every_hostile_file_is_one_named_load_error_and_the_rest_load(hostile: tuple[Path, dict[str, str]]) -> None:
    suite, bad = hostile
    loaded = load_suite(suite, errors="collect")
    assert sorted(t.id for t in loaded.tasks) == [f"sim-{i:05d}" for i in range(0, 20, 2)]
    messages = [str(e) for e in loaded.errors]
    assert all("\n" not in m for m in messages)
    for name, how in bad.items():
        assert sum(m.startswith(f"examples/sim/{name}:") for m in messages) == 1, (how, messages)
    by_how = {how: next(m for m in messages if name in m) for name, how in bad.items()}
    assert "id:" in by_how["id-path"] and "path parts" in by_how["id-path"]
    assert "nested deeper" in by_how["deep"] and "nested deeper" in by_how["deep-extra"]
    assert "not UTF-8" in by_how["utf8"]
    assert f"limit {MAX_TASK_BYTES}" in by_how["huge"]
    list_errors = [m for m in messages if m.startswith("test_all.json:")]
    assert len(list_errors) == 3, messages
    assert any("'../../outside'" in m for m in list_errors)
    assert any("'../../outside/sim-00000'" in m for m in list_errors)
    assert any("(got int)" in m for m in list_errors)
    with pytest.raises(TaskError, match=r"test_all\.json"):
        load_suite(suite)


def test_non_utf8_or_too_deep_test_list_is_one_line_naming_it(tmp_path: Path) -> None:
    suite = write_sim_suite(tmp_path / "suite", tasks=2)
    for content, expected in ((b'{"sim": ["sim-00000\xff"]}', "not UTF-8"),
                              (b'{"sim": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "nested deeper")):
        (suite / "test_all.json").write_bytes(content)
        with pytest.raises(TaskError) as e:
            load_suite(suite, errors="collect")
        assert str(e.value).startswith(str(suite / "test_all.json")) and expected in str(e.value)
        proc = subprocess.run([sys.executable, "-m", "harness", "run", "--benchmark", str(suite), "--agent", "noop",
                               "--provider", "sim", "--run-dir", str(tmp_path / "run"), "-q"],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and expected in proc.stderr


@pytest.mark.parametrize("where", ["local", pytest.param("ray", marks=[pytest.mark.ray, pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="ray is not installed")])])
def test_fuzzed_suite_run_ends_with_summary_bad_files_named_good_tasks_scored(
        hostile: tuple[Path, dict[str, str]], tmp_path: Path, where: str) -> None:
    suite, bad = hostile
    run_dir = tmp_path / "run"
    extra = ["--ray", "local:2"] if where == "ray" else []
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--benchmark", str(suite), "--agent", "oracle",
                           "--provider", "sim", "--concurrency", "4", "--run-dir", str(run_dir), "-q", *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]  # 1: some task files did not load
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    for name in bad:
        assert sum(name in line for line in errors) == 1, (name, errors)
    assert sum(line.startswith("error: test_all.json:") for line in errors) == 3
    assert "summary" in proc.stdout
    scores = {p.parent.name: json.loads(p.read_text())["score"] for p in run_dir.glob("*/*/result.json")}
    assert scores == {f"sim-{i:05d}": 1.0 for i in range(0, 20, 2)}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["done"] == summary["total"] == 10
    assert json.loads((run_dir / "run.json").read_text())["config"]["allow_private_urls"] is False
    assert not (tmp_path / "escaped").exists() and not list(tmp_path.glob("outside/*/*"))
