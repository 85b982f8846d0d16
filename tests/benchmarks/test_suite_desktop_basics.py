"""Static checks of the built-in suite `desktop-basics` (no sandbox needed).

Claims: every task loads, is runnable by this build, carries a reference solution, and names only
assets that exist inside the suite's assets folder; the suite is big and varied enough (>= 30
tasks, >= 4 domains, >= 3 infeasible tasks whose solution gives up with FAIL).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from benchmarks.context import RunContext
from benchmarks.loader import load_suite, resolve_benchmark
from benchmarks.setup_steps import run_task_setup
from scoring import evaluate
from scoring.coverage import unsupported_features
from scoring.registry import getters, metrics

SUITE = resolve_benchmark("desktop-basics")
ASSETS = SUITE / "assets"
ASSET_BUDGET_BYTES = 1 << 20
SPECIAL = {"DONE", "FAIL", "WAIT"}
# The getters and metrics this suite is allowed to use (all OSWorld names).
ALLOWED_GETTERS = {"vm_file", "vm_command_line", "vm_command_error", "cloud_file", "cache_file", "rule",
                   "rule_relativeTime", "accessibility_tree", "list_directory", "vm_screen_size",
                   "content_from_vm_file", "open_tabs_info", "active_tab_info", "active_url_from_accessTree",
                   "bookmarks", "history", "active_tab_html_parse", "active_tab_url_parse", "enable_do_not_track",
                   "vlc_playing_info", "vlc_config", "vm_window_size", "vscode_config"}
ALLOWED_METRICS = {"compare_table", "check_include_exclude", "exact_match", "check_direct_json_object",
                   "compare_text_file", "compare_docx_files", "check_list", "is_in_list", "literal_match",
                   "fuzzy_match", "compare_csv", "infeasible", "is_expected_tabs", "is_expected_active_tab",
                   "is_expected_url_pattern_match", "is_expected_bookmarks", "check_history_deleted",
                   "check_image_mirror", "check_image_size", "check_structure_sim_resized",
                   "check_palette_and_structure_sim", "check_brightness_decrease_and_structure_sim",
                   "check_file_exists_and_structure_sim",
                   "compare_pptx_files", "check_slide_orientation_Portrait", "check_strikethrough",
                   "evaluate_presentation_fill_to_rgb_distance",
                   "check_thunderbird_prefs", "check_thunderbird_filter", "check_thunderbird_folder",
                   "is_vlc_playing", "is_vlc_fullscreen", "check_qt_minimal_view",
                   "check_one_instance_when_started_from_file",
                   "check_json_settings", "check_json_keybindings", "is_extension_installed", "compare_config"}


@pytest.fixture(scope="module")
def suite():
    return load_suite(SUITE)


@pytest.fixture(scope="module")
def raw_tasks() -> dict[str, tuple[Path, dict[str, Any]]]:
    out = {}
    for path in sorted((SUITE / "examples").glob("*/*.json")):
        out[path.stem] = (path, json.loads(path.read_text()))
    return out


def _getter_specs(evaluator: dict[str, Any]) -> list[dict[str, Any]]:
    specs = []
    for key in ("result", "expected"):
        value = evaluator.get(key)
        for spec in value if isinstance(value, list) else [value]:
            if spec:
                specs.append(spec)
    return specs


def _funcs(evaluator: dict[str, Any]) -> list[str]:
    func = evaluator["func"]
    return func if isinstance(func, list) else [func]


def _asset_refs(task: dict[str, Any]) -> list[str]:
    """Host-side file references: download/upload_file sources and cloud_file paths."""
    refs = []
    for step in [*task.get("config", []), *task["evaluator"].get("postconfig", [])]:
        params = step.get("parameters", {})
        if step["type"] == "download":
            refs += [f["url"] for f in params["files"]]
        elif step["type"] == "upload_file":
            refs += [f["local_path"] for f in params["files"]]
    for spec in _getter_specs(task["evaluator"]):
        if spec["type"] == "cloud_file":
            paths = spec["path"] if isinstance(spec["path"], list) else [spec["path"]]
            refs += paths
    return refs


def test_every_task_in_the_test_list_loads_without_errors(suite, raw_tasks):
    assert suite.errors == []
    listed = json.loads((SUITE / "test_all.json").read_text())
    listed_ids = [i for ids in listed.values() for i in ids]
    assert len(listed_ids) == len(set(listed_ids)), "an id appears twice in test_all.json"
    assert sorted(listed_ids) == sorted(raw_tasks), "test_all.json and examples/ disagree"
    assert sorted(t.id for t in suite.tasks) == sorted(raw_tasks)


def test_ids_are_unique_and_match_file_names_and_domains(raw_tasks):
    listed = json.loads((SUITE / "test_all.json").read_text())
    for stem, (path, task) in raw_tasks.items():
        assert task["id"] == stem, f"{path}: id {task['id']} differs from the file name"
        assert stem in listed.get(path.parent.name, []), f"{path}: not listed under {path.parent.name}"
    assert len({t["id"] for _, t in raw_tasks.values()}) == len(raw_tasks)


def test_suite_is_big_and_varied_enough(suite):
    by_domain = Counter(t.domain for t in suite.tasks)
    assert len(suite.tasks) >= 30, by_domain
    assert len(by_domain) >= 4, by_domain
    assert all(n >= 3 for n in by_domain.values()), by_domain


def test_at_least_three_infeasible_tasks_whose_solution_gives_up(suite):
    infeasible = [t for t in suite.tasks if t.infeasible]
    assert len(infeasible) >= 3
    for t in infeasible:
        assert t.solution and t.solution[-1] == "FAIL", f"{t.id}: an infeasible task's solution must end with FAIL"


def test_every_task_has_a_gui_solution_that_ends_the_episode(suite):
    for t in suite.tasks:
        assert t.solution, f"{t.id}: no reference solution"
        assert t.solution[-1] in ("DONE", "FAIL"), f"{t.id}: solution should end with DONE or FAIL"
        if not t.infeasible:
            assert "FAIL" not in t.solution, f"{t.id}: a feasible task's solution gives up"
            code = [a for a in t.solution if a not in SPECIAL]
            assert code, f"{t.id}: a feasible task's solution does nothing"
        for action in t.solution:
            if action in SPECIAL:
                continue
            compile(action, f"{t.id}:solution", "exec")  # pyautogui code must at least parse
            assert "open(" not in action, f"{t.id}: solutions act through the GUI, not by writing files"


def test_every_task_is_runnable_by_this_build(suite):
    blocked = {t.id: unsupported_features(t) for t in suite.tasks}
    assert {k: v for k, v in blocked.items() if v} == {}


def test_evaluators_use_only_registered_and_allowed_getters_and_metrics(raw_tasks):
    known_getters, known_metrics = set(getters()), set(metrics())
    for stem, (_, task) in raw_tasks.items():
        ev = task["evaluator"]
        for func in _funcs(ev):
            assert func in known_metrics, f"{stem}: metric {func} is not registered"
            assert func in ALLOWED_METRICS, f"{stem}: metric {func} is outside the suite's allowed set"
        for spec in _getter_specs(ev):
            assert spec["type"] in known_getters, f"{stem}: getter {spec['type']} is not registered"
            assert spec["type"] in ALLOWED_GETTERS, f"{stem}: getter {spec['type']} is outside the allowed set"
        if _funcs(ev) != ["infeasible"]:
            assert ev.get("result"), f"{stem}: a feasible task needs a result getter"


def test_every_referenced_asset_exists_inside_the_assets_folder(raw_tasks):
    base = ASSETS.resolve()
    used = set()
    for stem, (_, task) in raw_tasks.items():
        for ref in _asset_refs(task):
            assert "://" not in ref or ref.startswith("file://"), f"{stem}: {ref} needs the network"
            rel = ref.removeprefix("file://")
            target = (base / rel).resolve()
            assert target.is_relative_to(base), f"{stem}: {ref} escapes the assets folder"
            assert target.is_file(), f"{stem}: asset {ref} is missing"
            used.add(target)
    every = {p.resolve() for p in ASSETS.rglob("*") if p.is_file()}
    assert every - used == set(), f"assets nobody references: {sorted(map(str, every - used))}"


def test_assets_stay_small():
    total = sum(p.stat().st_size for p in ASSETS.rglob("*") if p.is_file())
    assert total < ASSET_BUDGET_BYTES, f"assets take {total} bytes"


def test_guest_paths_stay_in_the_users_home(raw_tasks):
    for stem, (_, task) in raw_tasks.items():
        for step in task.get("config", []):
            if step["type"] == "download":
                for f in step["parameters"]["files"]:
                    assert f["path"].startswith("/home/user/"), f"{stem}: {f['path']} outside /home/user"
        for spec in _getter_specs(task["evaluator"]):
            if spec["type"] == "vm_file":
                assert str(spec["path"]).startswith("/home/user/"), f"{stem}: reads {spec['path']}"


# --- on real sandboxes --------------------------------------------------------------------------------

# One task per domain, chosen to cover the fragile parts: dialogs' mnemonics, LibreOffice's
# keep-format dialog, the clipboard between two apps, terminal typing.
SAMPLE = ("count-error-lines", "american-spelling", "sum-total-row", "replace-quarter", "address-to-text-file")


@pytest.mark.docker
async def test_sample_reference_solutions_score_1_and_untouched_starts_score_0(docker_provider, tmp_path):
    suite = load_suite(SUITE)
    by_name = {t.source.split(":", 1)[1]: t for t in suite.tasks}
    ctx = RunContext(work_root=tmp_path)
    scores: dict[tuple[str, str], float] = {}
    limit = anyio.Semaphore(3)

    async def attempt(name: str, mode: str) -> None:
        task = by_name[name]
        async with limit:
            box = await docker_provider.start()
            try:
                await run_task_setup(task, box.guest, ctx)
                actions = list(task.solution or []) if mode == "oracle" else ["DONE"]
                if mode == "oracle":
                    for action in actions:
                        result = await box.execute(action)
                        assert action in SPECIAL or result.ok, f"{name}: {action[:60]!r} failed: {result.error[-300:]}"
                scores[(name, mode)] = (await evaluate(task, box.guest, actions, ctx)).score
            finally:
                with anyio.CancelScope(shield=True):
                    await docker_provider.stop(box)

    with anyio.fail_after(900):
        async with anyio.create_task_group() as tg:
            for name in SAMPLE:
                for mode in ("oracle", "noop"):
                    tg.start_soon(attempt, name, mode)
    expected = {(name, mode): 1.0 if mode == "oracle" else 0.0 for name in SAMPLE for mode in ("oracle", "noop")}
    assert scores == expected
