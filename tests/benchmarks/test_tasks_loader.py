"""Task schema and suite loader over real OSWorld task files (shared/osworld-sample)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks.loader import load_suite, load_task, resolve_benchmark
from benchmarks.schema import Task
from harness.base.errors import ConfigError, TaskError

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "osworld-sample"
needs_sample = pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"OSWorld sample not found at {SAMPLE}")

MINIMAL = {
    "id": "t1",
    "instruction": "Say hi.",
    "config": [],
    "evaluator": {"func": "exact_match", "result": {"type": "vm_command_line", "command": "echo hi", "shell": True},
                  "expected": {"type": "rule", "rules": {"expected": "hi\n"}}},
}


def write_suite(root: Path, tasks: dict[str, list[dict]], *, test_list: str | None = "test_all.json") -> Path:
    listing: dict[str, list[str]] = {}
    for domain, items in tasks.items():
        (root / "examples" / domain).mkdir(parents=True, exist_ok=True)
        for t in items:
            (root / "examples" / domain / f"{t['id']}.json").write_text(json.dumps(t))
            listing.setdefault(domain, []).append(t["id"])
    if test_list:
        (root / test_list).write_text(json.dumps(listing))
    return root


@needs_sample
def test_sample_loads_every_task_of_test_small_with_its_domain() -> None:
    listing = json.loads((SAMPLE / "test_small.json").read_text())
    suite = load_suite(SAMPLE, test_list="test_small.json")
    assert not suite.errors
    assert len(suite) == sum(len(v) for v in listing.values()) == 39
    assert {d: [t.id for t in ts] for d, ts in suite.by_domain().items()} == listing
    calc = suite.get("357ef137-7eeb-4c80-a3bb-0951f26a8aff")
    assert calc.domain == "libreoffice_calc"
    assert calc.config[0].type == "download"
    assert calc.config[0].params().files[0].path == "/home/user/Multiply_Time_Number.xlsx"
    spec = calc.evaluator.metric_specs()[0]
    assert spec.func == "compare_table" and spec.result.type == "vm_file" and spec.expected is None
    assert spec.options["rules"][0]["type"] == "check_cell"


@needs_sample
def test_without_test_list_every_examples_file_is_loaded() -> None:
    suite = load_suite(SAMPLE)  # the sample has no test_all.json
    assert suite.test_list is None
    assert len(suite) == len(list(SAMPLE.glob("examples/*/*.json")))


@needs_sample
def test_domain_and_id_filters_select_tasks() -> None:
    suite = load_suite(SAMPLE, domains=["os", "vlc"])
    assert {t.domain for t in suite} == {"os", "vlc"} and len(suite) == 4
    one = load_suite(SAMPLE, ids=["5ea617a3-0e86-4ba6-aab2-dac9aa2e8d57"])
    assert [t.id for t in one] == ["5ea617a3-0e86-4ba6-aab2-dac9aa2e8d57"]
    with pytest.raises(ConfigError, match="no domain nope"):
        load_suite(SAMPLE, domains=["nope"])


@needs_sample
def test_list_evaluators_keep_parallel_getters_and_null_expected() -> None:
    for task in load_suite(SAMPLE):
        ev = task.evaluator
        specs = ev.metric_specs()
        assert len(specs) == (len(ev.func) if isinstance(ev.func, list) else 1)
        if isinstance(ev.func, list) and isinstance(ev.expected, list):
            assert [s.expected for s in specs] == ev.expected


@needs_sample
def test_task_round_trips_with_unknown_fields_preserved(tmp_path: Path) -> None:
    src = SAMPLE / "examples/os/5812b315-e7bd-4265-b51f-863c02174c28.json"
    data = json.loads(src.read_text())
    data["x_custom"] = {"kept": True}
    data["evaluator"]["x_note"] = "mine"
    task = Task.model_validate(data)
    dumped = task.model_dump(exclude_unset=True)
    assert dumped["x_custom"] == {"kept": True} and dumped["evaluator"]["x_note"] == "mine"
    assert dumped["evaluator"]["postconfig"][0]["parameters"]["command"].startswith("echo {CLIENT_PASSWORD}")


def test_garbage_task_file_gives_one_line_error_naming_file_and_field(tmp_path: Path) -> None:
    bad = dict(MINIMAL, id="bad")
    bad["evaluator"] = {"func": 7, "result": {"type": "rule"}}
    write_suite(tmp_path, {"os": [MINIMAL, bad]})
    with pytest.raises(TaskError) as info:
        load_suite(tmp_path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("examples/os/bad.json: evaluator.func:")
    assert "string or a list" in msg


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda t: t.pop("instruction"), "instruction: Field required"),
        (lambda t: t["config"].append({"type": "download", "parameters": {"files": [{"url": "u"}]}}),
         "config.0: parameters.files.0.path: Field required"),
        (lambda t: t["config"].append({"type": "sleep", "parameters": {"seconds": "soon"}}),
         "config.0: parameters.seconds"),
        (lambda t: t["evaluator"].update(func=["exact_match", "exact_match"]),
         "result: expected a list parallel to func"),
        (lambda t: t["evaluator"].update(conj="xor"), "evaluator.conj"),
        (lambda t: t.update(solution=["pyautogui.click(1, 2)", "  "]), "solution: entry 1: empty action"),
    ],
)
def test_malformed_fields_are_named(tmp_path: Path, mutate, expected: str) -> None:
    task = json.loads(json.dumps(MINIMAL))
    mutate(task)
    path = tmp_path / "os" / "t1.json"
    path.parent.mkdir()
    path.write_text(json.dumps(task))
    with pytest.raises(TaskError) as info:
        load_task(path)
    assert expected in str(info.value) and str(path) in str(info.value)


def test_not_json_and_not_an_object_are_reported(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{nope")
    (tmp_path / "b.json").write_text("[1, 2]")
    with pytest.raises(TaskError, match=r"a\.json: not valid JSON: .* line 1"):
        load_task(tmp_path / "a.json")
    with pytest.raises(TaskError, match=r"b\.json: expected a JSON object"):
        load_task(tmp_path / "b.json")


def test_collect_mode_returns_good_tasks_and_per_file_errors(tmp_path: Path) -> None:
    good2 = dict(MINIMAL, id="t2")
    write_suite(tmp_path, {"os": [MINIMAL, good2]})
    (tmp_path / "examples/os/t2.json").write_text("garbage")
    listing = json.loads((tmp_path / "test_all.json").read_text())
    listing["os"].append("missing")
    (tmp_path / "test_all.json").write_text(json.dumps(listing))
    suite = load_suite(tmp_path, errors="collect")
    assert [t.id for t in suite] == ["t1"]
    assert [(e.id, e.domain) for e in suite.errors] == [("t2", "os"), ("missing", "os")]
    assert "examples/os/t2.json: not valid JSON" in suite.errors[0].message
    assert "examples/os/missing.json: listed in test_all.json but missing" in suite.errors[1].message


def test_same_id_in_two_domains_is_allowed_but_not_twice_in_one(tmp_path: Path) -> None:
    write_suite(tmp_path, {"os": [MINIMAL], "gimp": [MINIMAL]})
    assert len(load_suite(tmp_path)) == 2
    (tmp_path / "test_all.json").write_text(json.dumps({"os": ["t1", "t1"]}))
    with pytest.raises(TaskError, match="already used"):
        load_suite(tmp_path)


def test_any_domain_id_listing_works_as_test_list_and_assets_are_found(tmp_path: Path) -> None:
    write_suite(tmp_path, {"os": [MINIMAL, dict(MINIMAL, id="t2")]}, test_list=None)
    (tmp_path / "assets").mkdir()
    (tmp_path / "mine.json").write_text(json.dumps({"os": ["t2"]}))
    suite = load_suite(tmp_path, test_list="mine.json")
    assert [t.id for t in suite] == ["t2"]
    assert suite.tasks[0].assets_dir == tmp_path / "assets"
    with pytest.raises(TaskError, match="test list must be an object"):
        (tmp_path / "bad.json").write_text(json.dumps(["t1"]))
        load_suite(tmp_path, test_list=tmp_path / "bad.json")


def test_solution_extension_and_infeasible_shape(tmp_path: Path) -> None:
    t = Task.model_validate({"id": "x", "instruction": "Do the impossible.", "evaluator": {"func": "infeasible"},
                             "solution": ["FAIL"]})
    assert t.infeasible and t.solution == ["FAIL"]
    with pytest.raises(ValueError, match="required unless func is 'infeasible'"):
        Task.model_validate({"id": "x", "instruction": "i", "evaluator": {"func": "exact_match"}})


def test_resolve_benchmark_accepts_paths_and_rejects_unknown_names(tmp_path: Path) -> None:
    assert resolve_benchmark(tmp_path) == tmp_path
    with pytest.raises(ConfigError, match="no such folder"):
        resolve_benchmark("no-such-suite-xyz")


@needs_sample
def test_copied_sample_with_one_garbage_file_still_loads_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "suite"
    shutil.copytree(SAMPLE, root)
    victim = root / "examples/os/5ea617a3-0e86-4ba6-aab2-dac9aa2e8d57.json"
    victim.write_text(json.dumps({"id": "5ea617a3-0e86-4ba6-aab2-dac9aa2e8d57", "instruction": "x",
                                  "evaluator": {"func": "exact_match", "result": "not a getter"}}))
    suite = load_suite(root, test_list="test_small.json", errors="collect")
    assert len(suite) == 38 and len(suite.errors) == 1
    assert suite.errors[0].message.startswith("examples/os/5ea617a3-0e86-4ba6-aab2-dac9aa2e8d57.json: evaluator.result")
