"""The run report without a browser: pointer parsing, tree.json tolerance, escaping, attempts,
incremental and live rebuilds, the CLI, and scale (1,000 tasks)."""

from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path

import anyio
import orjson
import pytest

from results.read import read_run
from results.report import build_report
from results.report.pointer import Point, action_points
from results.report.run_data import page_name
from results.report.tree import parse_tree
from results.store import RunStore
from tests.results.test_report_support import HOSTILE, oracle_sim_run, synthetic_run, tiny_png

# ---- pointer positions ---------------------------------------------------------------------------

@pytest.mark.parametrize(("action", "expected"), [
    ("pyautogui.click(10, 20)", [(10, 20, "click")]),
    ("import pyautogui\nx, y = 5, 6\npyautogui.moveTo(x, y)\npyautogui.doubleClick(x + 1, y * 2)",
     [(5, 6, "move"), (6, 12, "double")]),
    ("pyautogui.click(x=3*2, y=4, button='right')\npyautogui.dragTo(100, 200, duration=1)",
     [(6, 4, "click"), (100, 200, "drag")]),
    ("pyautogui.rightClick((7, 8))", [(7, 8, "right")]),
    ("pyautogui.scroll(-3, 300, 400)", [(300, 400, "scroll")]),
    ("pyautogui.click(10, 20", [(10, 20, "click")]),  # unparsable: regex fallback
    ("pyautogui.typewrite('click(1, 2)')", []),  # a string is not a call
    ("pyautogui.click()", []),  # the current position: nothing to mark
    ("WAIT", []),
    ({"action_type": "CLICK", "parameters": {"x": 1, "y": 2, "num_clicks": 2}}, [(1, 2, "double")]),
    ({"action_type": "TYPING", "parameters": {"text": "hi"}}, []),
])
def test_pointer_positions_are_parsed_from_pyautogui_code_and_computer13_without_running_it(action, expected) -> None:
    assert action_points(action) == [Point(float(x), float(y), k) for x, y, k in expected]


def test_pointer_parsing_never_evaluates_code() -> None:
    assert action_points("pyautogui.click(__import__('os').system('touch /tmp/x'), 5)") == []


# ---- tree.json tolerance -------------------------------------------------------------------------

def test_tree_in_the_rmcts_format_gets_its_chosen_path_with_ancestors_and_joined_actions() -> None:
    doc = {"root": 0, "search_root": 0, "stop_reason": "budget", "final_path": [1, 3],
           "final": [{"id": 1}, {"id": 3}],
           "nodes": [
               {"id": 0, "parent": None, "actions": [], "visits": 4, "q": 0.2, "value": 0.1, "children": [1, 2],
                "screenshot": "node_0.png", "reflections": [], "judge": None},
               {"id": 1, "parent": 0, "actions": ["pyautogui.click(1, 2)", "pyautogui.typewrite('a')"],
                "prior": 0.7, "visits": 3, "q": 0.5, "value": 0.5, "children": [3], "response": "because"},
               {"id": 2, "parent": 0, "actions": ["pyautogui.press('esc')"], "prior": 0.3, "visits": 0,
                "q": 0.0, "value": None, "children": []},
               {"id": 3, "parent": 1, "actions": ["DONE"], "prior": 1.0, "visits": 1, "q": 1.0, "value": 1.0,
                "children": [], "terminal": "done", "judge": {"value": {"letters": ["A", "A"]}}},
           ]}
    tree = parse_tree(doc)
    nodes = tree.by_id
    assert [n.id for n in tree.nodes] == ["0", "1", "3", "2"]  # depth-first
    assert {n.id for n in tree.nodes if n.chosen} == {"0", "1", "3"}
    assert nodes["1"].action == "pyautogui.click(1, 2)\npyautogui.typewrite('a')"
    assert nodes["1"].points == [Point(1.0, 2.0, "click")] and nodes["1"].response == "because"
    assert nodes["3"].extra == {"terminal": "done"} and nodes["3"].judge == {"value": {"letters": ["A", "A"]}}
    assert nodes["2"].color == "#9aa0a6"  # never visited: grey, its Q of 0 is no judgement
    assert nodes["0"].color == "hsl(66, 70%, 45%)"  # value 0.1 -> hue 66
    nodes["0"].value = None
    assert nodes["0"].color == "hsl(72, 70%, 45%)"  # visited, no value: its Q (0.2) colours it
    assert nodes["0"].radius > nodes["2"].radius
    assert "final" not in tree.meta and tree.meta["stop_reason"] == "budget"
    assert tree.problems == []


def test_tree_tolerates_nested_children_missing_fields_unknown_parents_and_cycles() -> None:
    nested = {"action": "pyautogui.click(1, 1)", "N": 2, "children": [{"action": "x", "V": -1}, {}]}
    tree = parse_tree(nested)
    assert len(tree.nodes) == 3 and tree.nodes[1].value == -1.0 and tree.nodes[0].visits == 2
    odd = parse_tree({"nodes": [{"id": "a", "parent": "ghost"}, {"id": "b", "parent": "c"},
                                {"id": "c", "parent": "b"}, "garbage", {"id": "a"}]})
    assert [n.id for n in odd.nodes][:1] == ["a"]
    assert any("ghost" in p for p in odd.problems) and any("cycle" in p for p in odd.problems)
    assert parse_tree("not a tree").nodes == [] and parse_tree(None).nodes == []


# ---- report content --------------------------------------------------------------------------------

async def test_untrusted_text_from_run_files_is_escaped_everywhere(tmp_path: Path) -> None:
    run_dir = await synthetic_run(tmp_path / "run", tasks=3, instruction=HOSTILE + " {i}", response=HOSTILE,
                                  error_every=2)
    task_dir = run_dir / "domain0" / "task-00000"
    (task_dir / "tree.json").write_bytes(orjson.dumps(
        {"nodes": [{"id": HOSTILE, "action": HOSTILE, "judge": [HOSTILE], "reflections": [HOSTILE]}],
         "note": HOSTILE}))
    result = await anyio.to_thread.run_sync(build_report, run_dir)
    for page in [result.index, *(result.index.parent / page_name(k) for k in read_run(run_dir).results)]:
        html = page.read_text()
        assert "&lt;script id=&#34;pwned&#34;&gt;" in html or "&lt;script id=\"pwned\"&gt;" in html, page.name
        assert "<script id=" not in html and "<img src=x" not in html and "onerror=\"window" not in html
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert scripts == ['<script src="report.js?v=' + result.index.read_text().split('report.js?v=')[1].split('"')[0]
                           + '" defer>'], scripts


async def test_retried_attempts_and_their_infrastructure_errors_are_shown(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    store = await RunStore.open(run_dir, {"benchmark": "b", "agent": "a", "screen_width": 1920,
                                          "screen_height": 1080}, result_keys=[])
    try:
        store.pending([("d", "t1"), ("d", "t2")])
        running = await store.begin_attempt("d", "t2")  # never finishes: listed, no page
        await running.record_step({"action": "pyautogui.click(1, 1)"}, tiny_png())
        first = await store.begin_attempt("d", "t1")
        await first.record_step({"action": "pyautogui.click(960, 540)"}, tiny_png(shade=10))
        await store.record_infra_failure("d", "t1", first, "SandboxError: guest stopped answering")
        second = await store.begin_attempt("d", "t1")
        await second.record_step({"action": "pyautogui.click(10, 10)"}, tiny_png(shade=200))
        await store.record_result("d", "t1", {"score": 1.0, "steps": 1})
    finally:
        await store.aclose()
    result = await anyio.to_thread.run_sync(build_report, run_dir)
    html = (result.index.parent / page_name(("d", "t1"))).read_text()
    assert "Earlier attempts (1)" in html and 'id="attempt-1"' in html
    assert "SandboxError: guest stopped answering" in html
    assert "../d/t1/attempts/1/step_1.png" in html and "../d/t1/step_1.png" in html
    index = result.index.read_text()
    assert "Unfinished tasks (1)" in index and "<li>d/t2</li>" in index
    assert not (result.index.parent / page_name(("d", "t2"))).exists() and result.tasks == 1


# ---- live and incremental rebuilds ---------------------------------------------------------------

async def test_rebuild_skips_unchanged_pages_and_adds_newly_finished_tasks(tmp_path: Path) -> None:
    first = ["sim-00000", "sim-00002"]
    run_dir = await oracle_sim_run(tmp_path, tasks=6, domains=2, ids=first)
    one = await anyio.to_thread.run_sync(build_report, run_dir)
    assert (one.tasks, one.written, one.skipped) == (2, 2, 0)
    two = await anyio.to_thread.run_sync(build_report, run_dir)
    assert (two.tasks, two.written, two.skipped) == (2, 0, 2)
    # the run goes on with one more task: its page and its neighbour's (new "next" link) are rebuilt
    await oracle_sim_run(tmp_path, tasks=6, domains=2, ids=[*first, "sim-00004"])
    three = await anyio.to_thread.run_sync(build_report, run_dir)
    assert (three.tasks, three.written, three.skipped) == (3, 2, 1)
    assert "sim-00004" in three.index.read_text()
    # the run's scratch folder (<run>/work/) is not a task: only journaled, planned tasks are listed
    assert "Unfinished tasks" not in three.index.read_text()
    # the report folder holds files only, so it is never taken for a domain or a task
    view = read_run(run_dir)
    assert all(d != "report" for d, _ in [*view.results, *view.unfinished])
    assert all(p.is_file() for p in (run_dir / "report").iterdir())
    # --force rebuilds every page
    forced = await anyio.to_thread.run_sync(lambda: build_report(run_dir, force=True))
    assert forced.written == 3


async def test_report_regenerated_during_a_live_run_shows_only_finished_tasks(tmp_path: Path) -> None:
    builds: list[tuple[int, int, set[str]]] = []
    statuses: list[str] = []
    done = anyio.Event()

    async def rebuild_until_done(run_dir: Path) -> None:
        while not (run_dir / "run.json").exists():  # noqa: ASYNC110 -- polling for the run to start, with the test deadline
            await anyio.sleep(0.02)
        while True:
            finished = done.is_set()
            result = await anyio.to_thread.run_sync(lambda: build_report(run_dir, refresh_s=5))
            statuses.append(result.status)
            pages = {p.name for p in (run_dir / "report").glob("task-*.html")}
            builds.append((result.tasks, len(re.findall(r'class="task-row"', result.index.read_text())), pages))
            if finished:
                return
            await anyio.sleep(0.05)

    run_dir = tmp_path / "oracle-run"
    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            tg.start_soon(rebuild_until_done, run_dir)
            await oracle_sim_run(tmp_path, tasks=9, domains=3, latency_ms=40)
            done.set()
    counts = [rows for _, rows, _ in builds]
    assert len(builds) >= 3 and counts == sorted(counts) and counts[-1] == 9
    assert any(0 < c < 9 for c in counts), f"no build saw the run half done: {counts}"
    for tasks, rows, pages in builds:
        assert tasks == rows == len(pages)  # a page per finished task, nothing for running ones
    # the writer's flock is seen (through /proc/locks): live pages reload themselves, the final one not
    assert any(s.startswith("running (pid ") for s in statuses) and statuses[-1] == "finished"
    assert 'http-equiv="refresh"' not in (run_dir / "report" / "index.html").read_text()


# ---- CLI and scale -------------------------------------------------------------------------------

async def test_report_command_writes_the_index_and_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    run_dir = await synthetic_run(tmp_path / "run", tasks=2)
    ok = await anyio.run_process([sys.executable, "-m", "harness", "report", str(run_dir)], check=False)
    assert ok.returncode == 0, ok.stderr
    assert b"report: " in ok.stdout and b"2 tasks: 2 pages written" in ok.stdout
    assert (run_dir / "report" / "index.html").is_file()
    bad = await anyio.run_process([sys.executable, "-m", "harness", "report", str(tmp_path)], check=False)
    assert bad.returncode == 2
    assert bad.stderr.decode().count("\n") == 1 and "run.json" in bad.stderr.decode()


async def test_a_thousand_task_report_builds_in_seconds_and_rebuilds_lazily(tmp_path: Path) -> None:
    run_dir = await synthetic_run(tmp_path / "run", tasks=4, steps=15, domains=4)

    def clone() -> None:  # 1,000 task folders from the four real ones (the store fsyncs every file)
        for i in range(4, 1000):
            domain, source = f"domain{i % 4}", f"task-{i % 4:05d}"
            target = run_dir / domain / f"task-{i:05d}"
            shutil.copytree(run_dir / domain / source, target)
            record = orjson.loads((target / "result.json").read_bytes())
            record.update(task_id=target.name, score=float(i % 3 != 0), instruction=f"Do task {i}")
            (target / "result.json").write_bytes(orjson.dumps(record))

    await anyio.to_thread.run_sync(clone)
    started = time.perf_counter()
    first = await anyio.to_thread.run_sync(build_report, run_dir)
    took = time.perf_counter() - started
    assert first.tasks == first.written == 1000
    second = await anyio.to_thread.run_sync(build_report, run_dir)
    assert second.written == 0 and second.skipped == 1000
    print(f"1000 tasks x 15 steps: first build {took:.2f} s, rebuild {second.seconds:.2f} s")
    assert took < 60 and second.seconds < 10  # generous: CI machines are shared
