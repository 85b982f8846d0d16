"""`export`: training data out of real run directories. The trees come from the harness itself: a
32-task rmcts run on sim sandboxes with llm-sim playing the model (tests/mcts_rig.py), a failing
prompt-agent run, and the export bench's run of trees grown by the search's own tree code."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from mcts_rig import ScriptedModel, run_suite, write_suite

from harness.llm.sim import SimConfig, SimServer
from results.export import ExportOptions, Limits, check_file, export_runs, output_paths

REPO = Path(__file__).resolve().parents[1]
TASKS = 32


@pytest.fixture(scope="module")
async def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 32-task rmcts run (every task needs a backtrack out of a trap) and a prompt-agent run of
    two of the same tasks (it takes the trap and fails)."""
    root = tmp_path_factory.mktemp("export-runs")
    suite = write_suite(root / "suite", list(range(1, TASKS + 1)))
    small = write_suite(root / "small", [1, 2])
    async with SimServer(SimConfig(policy=ScriptedModel())) as server:
        await run_suite(suite, root / "rmcts", server.url, "rmcts", options={"iterations": 12}, concurrency=4,
                        capacity=8)
        await run_suite(small, root / "prompt", server.url, "prompt")
    return {"rmcts": root / "rmcts", "prompt": root / "prompt"}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def metas_by_task(out: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    per: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for m in read_jsonl(output_paths(out)["meta"]):
        per[(m["run"], m["task_id"])].append(m)
    return per


def scores(run: Path) -> dict[str, float]:
    return {p.parent.name: json.loads(p.read_text())["score"] for p in run.glob("sim/*/result.json")}


def text(message: dict[str, Any]) -> str:
    c = message["content"]
    return c if isinstance(c, str) else "".join(p.get("text", "") for p in c if p["type"] == "text")


# -- the "done when" -----------------------------------------------------------------------------
def test_exploratory_export_of_a_32_task_run_covers_every_solved_task_and_check_names_a_corrupted_line(
        runs: dict[str, Path], tmp_path: Path) -> None:
    solved = {t for t, s in scores(runs["rmcts"]).items() if s >= 1.0}
    assert len(solved) == TASKS
    out = tmp_path / "ft.jsonl"
    done = cli("export", str(runs["rmcts"]), "--format", "exploratory", "--out", str(out),
               "--observation", "screenshot_a11y_tree", "--val-fraction", "0.2")
    assert done.returncode == 0, done.stderr
    assert f"from {TASKS} of {TASKS} tasks" in done.stdout
    index = json.loads(output_paths(out)["index"].read_text())
    assert {e["task_id"] for e in index["tasks"] if e["examples"] > 0} == solved
    val = output_paths(out)["val"]
    assert val.is_file() and {e["split"] for e in index["tasks"]} == {"train", "val"}
    checked = cli("export", "--check", str(out), str(val), "--min-examples", "1")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(": ok:") == 2

    lines = out.read_bytes().splitlines(keepends=True)
    lines[6] = lines[6][: len(lines[6]) // 2] + b"\n"  # line 7 torn in half
    bad = json.loads(lines[11])
    bad["messages"][-1]["weight"] = 2  # line 12: an assistant weight that is not 0/1
    lines[11] = json.dumps(bad).encode() + b"\n"
    out.write_bytes(b"".join(lines))
    checked = cli("export", "--check", str(out))
    assert checked.returncode == 1
    assert f"{out}:7: [invalid_json]" in checked.stderr
    assert f"{out}:12: [bad_weight]" in checked.stderr
    assert checked.stderr.count(f"{out}:") == 2  # the other lines are fine


def test_each_example_trains_only_its_last_answer_and_answers_carry_the_judges_reasoning(
        runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "ft.jsonl"
    export_runs(ExportOptions(runs=(runs["rmcts"],), out=out, observation="screenshot_a11y_tree", val_fraction=0))
    examples = read_jsonl(out)
    metas = read_jsonl(output_paths(out)["meta"])
    assert len(examples) == len(metas)
    for ex in examples:
        weights = [m.get("weight") for m in ex["messages"] if m["role"] == "assistant"]
        assert weights[-1] == 1 and set(weights[:-1]) <= {0}
        assert ex["messages"][-1]["role"] == "assistant"
        images = [p for m in ex["messages"] if isinstance(m["content"], list) for p in m["content"]
                  if p["type"] == "image_url"]
        assert images and all(p["image_url"]["url"].startswith("data:image/png;base64,") for p in images)
        assert len(images) <= 4  # the current screen + the agent's 3 earlier ones
    # The trap's backtrack answer quotes the judges of the trap state (tree.json) before going back.
    first = next(i for i, m in enumerate(metas) if m["kind"] == "backtrack")
    tree = json.loads((runs["rmcts"] / "sim" / metas[first]["task_id"] / "tree.json").read_text())
    trap = next(n for n in tree["nodes"] if n["id"] == metas[first]["node"])
    verdict = trap["judge"]["value"]["verdicts"]["oppose_first"][0].split("\n")[0]
    answer = examples[first]["messages"][-1]["content"]
    assert answer.startswith("STATE EVALUATION: " + verdict) and "[value -1.00]" in answer
    assert answer.endswith("```BACKTRACK 1```")
    # The state after the backtrack is shown as the root's screen, and said to be a return.
    after = examples[first + 1]["messages"]
    assert text(after[-2]).startswith("You went back 1 step(s)")


def check_traversals(tree: dict[str, Any], moves: list[dict[str, Any]]) -> int:
    """Independent of the exporter: every turn is taken where the agent stands, forwards go to a
    child, every backtrack goes to the deepest common ancestor of where it stands and where the
    next traversal goes, and new states are reached in the search's iteration order. Returns the
    number of backtracks to an ancestor other than the root."""
    nodes = {n["id"]: n for n in tree["nodes"]}
    root = next(i for i, n in nodes.items() if n["parent"] is None)

    def chain(x: int) -> list[int]:
        out = [x]
        while nodes[out[-1]]["parent"] is not None:
            out.append(nodes[out[-1]]["parent"])
        return out

    cursor, seen, new, deep = root, {root}, [], 0
    for i, m in enumerate(moves):
        assert m["node"] == cursor, (i, m)
        if m["kind"] == "forward":
            assert nodes[m["child"]]["parent"] == cursor
            cursor = m["child"]
            if cursor not in seen:
                seen.add(cursor)
                new.append(cursor)
        elif m["kind"] == "backtrack":
            up = chain(cursor)
            assert m["to"] in up[1:] and up.index(m["to"]) == m["steps"]
            nxt = moves[i + 1] if i + 1 < len(moves) else None
            if nxt is not None and nxt["kind"] == "forward":
                assert nxt["child"] not in up  # else the common ancestor was deeper: backtracked too far
            deep += m["to"] != root
            cursor = m["to"]
        else:
            assert m["kind"] == "stop" and nodes[m["child"]]["actions"] in (["DONE"], ["FAIL"])
    order = [n["id"] for n in sorted((n for n in nodes.values() if n["iteration"] is not None),
                                     key=lambda n: n["iteration"]) if n["terminal"] not in ("done", "fail")]
    assert new == order
    final = tree["final_path"]
    assert cursor == final[-1] or (moves[-1]["kind"] == "stop" and moves[-1]["node"] == final[-1])
    return deep


def test_backtracks_go_to_the_common_ancestor_in_real_and_bench_trees(runs: dict[str, Path], tmp_path: Path) -> None:
    from harness.base import aio
    from harness.bench.export import make_pngs, write_run

    bench = tmp_path / "bench"
    aio.run(lambda: write_run(bench, 40, iterations=20, table_kb=1, pngs=make_pngs(2, 4, 0), seed=1))
    out = tmp_path / "ft.jsonl"
    report = export_runs(ExportOptions(runs=(runs["rmcts"], bench), out=out, images="path", val_fraction=0))
    per = metas_by_task(out)
    assert report.tasks_exported == len(per) > TASKS
    deep = 0
    for (run, task), metas in per.items():
        assert [m["turn"] for m in metas] == list(range(metas[0]["turns"]))
        domain = metas[0]["domain"]
        deep += check_traversals(json.loads((Path(run) / domain / task / "tree.json").read_text()), metas)
        if run == str(runs["rmcts"]):  # the trap first, judged a dead end, then back to the start
            assert [m["kind"] for m in metas[:3]] == ["forward", "backtrack", "forward"]
            assert metas[1]["to"] == 0 and metas[1]["steps"] == 1
    assert deep > 0  # the bench's trees also backtrack to ancestors below the root


def test_imitation_export_is_the_final_trajectory(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "im.jsonl"
    report = export_runs(ExportOptions(runs=(runs["rmcts"],), out=out, format="imitation", val_fraction=0))
    assert report.tasks_exported == TASKS
    examples = read_jsonl(out)
    for (_, task), metas in metas_by_task(out).items():
        traj = read_jsonl(runs["rmcts"] / "sim" / task / "traj.jsonl")
        assert [a for m in metas for a in m["actions"]] == [t["action"] for t in traj]
        last = examples[metas[-1]["line"] - 1]["messages"]
        answers = [m["content"] for m in last if m["role"] == "assistant"]
        assert answers == [t["response"].strip() for t in traj]
        assert not any("BACKTRACK" in a or "STATE EVALUATION" in a for a in answers)


def test_trajectories_keep_failures_and_filters_apply(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "tr.jsonl"
    report = export_runs(ExportOptions(runs=(runs["prompt"],), out=out, format="trajectories", val_fraction=0))
    assert report.tasks_exported == 2 and not report.skipped
    metas = read_jsonl(output_paths(out)["meta"])
    assert {m["score"] for m in metas} == {0.0}  # the failed attempts are training data too
    traj = read_jsonl(runs["prompt"] / "sim" / "sim-00001" / "traj.jsonl")
    assert [m["actions"] for m in metas if m["task_id"] == "sim-00001"] == [[t["action"]] for t in traj]
    assert all("reward" in m for m in metas)
    # No tree, not solved: exploratory has nothing, and says why per task.
    report = export_runs(ExportOptions(runs=(runs["prompt"],), out=tmp_path / "ex.jsonl", min_score=0))
    assert [s.reason for s in report.skipped] == ["no search tree (agent prompt); exploratory needs tree.json "
                                                   "or search.jsonl"] * 2
    report = export_runs(ExportOptions(runs=(runs["prompt"],), out=tmp_path / "ex.jsonl", format="trajectories",
                                       min_score=1.0))
    assert report.tasks_exported == 0 and all("below --min-score" in s.reason for s in report.skipped)
    report = export_runs(ExportOptions(runs=(runs["rmcts"],), out=tmp_path / "d.jsonl", domains=("other",)))
    assert report.tasks_exported == 0
    report = export_runs(ExportOptions(runs=(runs["rmcts"],), out=tmp_path / "n.jsonl", min_tree_nodes=50))
    assert report.tasks_exported == 0 and len(report.skipped) == TASKS
    assert all("--min-tree-nodes" in s.reason for s in report.skipped)


async def test_trajectories_train_on_the_system_prompt_the_model_saw(tmp_path: Path) -> None:
    import hashlib

    # Screenshots only: trajectories show what such an agent saw, so its own system prompt applies.
    run = tmp_path / "prompt"
    async with SimServer(SimConfig(policy=ScriptedModel())) as server:
        await run_suite(write_suite(tmp_path / "suite", [1, 2]), run, server.url, "prompt",
                        observation_type="screenshot")
    task = run / "sim" / "sim-00001"
    recorded = (task / "system_prompt.txt").read_text()
    seen = json.loads((task / "traj.jsonl").read_text().splitlines()[0])["info"]["system_sha256"]
    assert hashlib.sha256(recorded.encode()).hexdigest() == seen  # the file is what was sent

    def exported_system() -> list[str]:
        out = tmp_path / "s.jsonl"
        export_runs(ExportOptions(runs=(run,), out=out, format="trajectories", val_fraction=0))
        examples = read_jsonl(out)
        return [examples[m["line"] - 1]["messages"][0]["content"] for m in read_jsonl(output_paths(out)["meta"])
                if m["task_id"] == "sim-00001"]

    assert set(exported_system()) == {recorded}
    # A file changed after the run is not what the step's hash names: not trusted, ours rebuilt instead.
    (task / "system_prompt.txt").write_text("AN EDITED SYSTEM PROMPT")
    assert set(exported_system()) == {recorded}
    # Not recorded: ours is rebuilt only when it is what the model saw; otherwise the attempt is skipped.
    (task / "system_prompt.txt").unlink()
    assert set(exported_system()) == {recorded}
    lines = [json.loads(x) for x in (task / "traj.jsonl").read_text().splitlines()]
    for line in lines:
        line["info"]["system_sha256"] = "0" * 64
    (task / "traj.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    report = export_runs(ExportOptions(runs=(run,), out=tmp_path / "t.jsonl", format="trajectories", val_fraction=0))
    assert report.tasks_exported == 1  # sim-00002 still exports
    assert [(s.task_id, "system_sha256" in s.reason) for s in report.skipped] == [("sim-00001", True)]


async def test_a_user_set_password_is_in_neither_system_prompt_txt_nor_any_export(tmp_path: Path) -> None:
    import hashlib

    secret = "hunter2-Xq9"
    run = tmp_path / "prompt"
    async with SimServer(SimConfig(policy=ScriptedModel())) as server:
        await run_suite(write_suite(tmp_path / "suite", [1, 2]), run, server.url, "prompt",
                        observation_type="screenshot", options={"password": secret})
    task = run / "sim" / "sim-00001"
    recorded = (task / "system_prompt.txt").read_text()
    assert secret not in recorded and "password is '***'" in recorded
    info = json.loads((task / "traj.jsonl").read_text().splitlines()[0])["info"]
    assert hashlib.sha256(recorded.encode()).hexdigest() == info["system_file_sha256"] != info["system_sha256"]
    for fmt in ("trajectories", "imitation"):
        out = tmp_path / f"{fmt}.jsonl"
        report = export_runs(ExportOptions(runs=(run,), out=out, format=fmt, val_fraction=0, min_score=0))
        assert report.tasks_exported == 2, report.skipped
        systems = {e["messages"][0]["content"] for e in read_jsonl(out)}
        assert recorded in systems and all("password is '***'" in x for x in systems)  # masked: what examples show
    assert _files_holding(tmp_path, secret.encode()) == []  # the run folder and the export files
    # A file from before masking (no system_file_sha256) in a run that set a password may show it: not used.
    run_json = json.loads((run / "run.json").read_text())
    run_json["config"]["agent_options"] = {"password": "***"}
    (run / "run.json").write_text(json.dumps(run_json))
    (task / "system_prompt.txt").write_text(recorded.replace("***", secret))
    lines = [json.loads(x) for x in (task / "traj.jsonl").read_text().splitlines()]
    for line in lines:
        del line["info"]["system_file_sha256"]
    (task / "traj.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "old.jsonl"
    report = export_runs(ExportOptions(runs=(run,), out=out, format="trajectories", val_fraction=0))
    assert secret not in out.read_text() and [s.task_id for s in report.skipped] == ["sim-00001"]


def _files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_split_is_by_task_sample_is_balanced_and_seeded_and_duplicates_are_dropped(
        runs: dict[str, Path], tmp_path: Path) -> None:
    run = runs["rmcts"]
    a = export_runs(ExportOptions(runs=(run,), out=tmp_path / "a.jsonl", val_fraction=0.3, images="path"))
    index = json.loads(output_paths(tmp_path / "a.jsonl")["index"].read_text())
    splits = defaultdict(set)
    for e in index["tasks"]:
        splits[e["task_id"]].add(e["split"])
    assert all(len(s) == 1 for s in splits.values())  # no task in both files
    assert 0 < a.splits["val"].tasks < a.splits["train"].tasks
    # Merging a run with itself adds nothing: every example is a duplicate.
    twice = export_runs(ExportOptions(runs=(run, run), out=tmp_path / "b.jsonl", val_fraction=0.3, images="path"))
    assert twice.duplicates == a.splits["train"].examples + a.splits["val"].examples
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()
    # A cap of 40 over 32 tasks: one or two examples from every task, the same for the same seed.
    capped = {}
    for seed, name in ((1, "c"), (1, "d"), (2, "e")):
        export_runs(ExportOptions(runs=(run,), out=tmp_path / f"{name}.jsonl", max_examples=40, seed=seed,
                                  val_fraction=0, images="path"))
        capped[name] = (tmp_path / f"{name}.jsonl").read_bytes()
        per = metas_by_task(tmp_path / f"{name}.jsonl")
        assert len(per) == TASKS and {len(v) for v in per.values()} == {1, 2}
        assert sum(len(v) for v in per.values()) == 40
    assert capped["c"] == capped["d"] and capped["c"] != capped["e"]


def test_a_half_written_run_exports_what_is_complete_and_names_what_it_skipped(
        runs: dict[str, Path], tmp_path: Path) -> None:
    clean = tmp_path / "clean.jsonl"
    export_runs(ExportOptions(runs=(runs["rmcts"],), out=clean, images="path", val_fraction=0, record_in_runs=False))
    run = tmp_path / "run"
    shutil.copytree(runs["rmcts"], run, ignore=shutil.ignore_patterns("*.sqlite*"))
    sim = run / "sim"
    (sim / "sim-00001" / "result.json").unlink()  # killed before its result
    tree = sim / "sim-00002" / "tree.json"
    tree.write_bytes(tree.read_bytes()[:500])  # torn: rebuilt from search.jsonl
    (sim / "sim-00003" / "tree.json").write_text("{")
    (sim / "sim-00003" / "search.jsonl").write_text("{\"event\": \"ro")  # nothing left to rebuild from
    with (sim / "sim-00004" / "traj.jsonl").open("a") as f:
        f.write('{"step_num": 9, "act')  # a torn last line
    doc = json.loads((sim / "sim-00005" / "tree.json").read_text())
    for n in doc["nodes"]:
        n.pop("iteration")  # an older tree without the visit order
    (sim / "sim-00005" / "tree.json").write_text(json.dumps(doc))
    (sim / "sim-00099").mkdir()
    (sim / "sim-00099" / "attempt.json").write_text('{"number": 1}')  # just started

    out = tmp_path / "half.jsonl"
    report = export_runs(ExportOptions(runs=(run,), out=out, images="path", val_fraction=0))
    skipped = {s.task_id: s.reason for s in report.skipped}
    assert skipped == {"sim-00001": "unfinished: no result.json", "sim-00099": "unfinished: no result.json",
                       "sim-00003": skipped["sim-00003"]}
    assert skipped["sim-00003"].startswith("search tree unusable")
    assert report.tasks_exported == TASKS - 2
    notes = {k.split("/")[-1]: v for k, v in report.notes.items()}
    assert any("rebuilt from search.jsonl" in n for n in notes["sim-00002"])
    assert any("no iteration number" in n for n in notes["sim-00005"])
    # The rebuilt tree exports exactly what the intact one did (paths differ only by the run folder).
    def lines_of(path: Path, task: str) -> list[str]:
        rows = [m["line"] for m in read_jsonl(output_paths(path)["meta"]) if m["task_id"] == task]
        return [path.read_text().splitlines()[i - 1].replace(str(run), "RUN").replace(str(runs["rmcts"]), "RUN")
                for i in rows]
    assert lines_of(out, "sim-00002") == lines_of(clean, "sim-00002")
    # Trajectories: the torn traj.jsonl line is skipped and said; the complete steps are exported.
    steps = len(read_jsonl(runs["rmcts"] / "sim" / "sim-00004" / "traj.jsonl"))
    report = export_runs(ExportOptions(runs=(run,), out=tmp_path / "tr.jsonl", format="trajectories", images="path"))
    assert any("1 unreadable line(s) skipped" in n for n in report.notes[f"{run}:sim/sim-00004"])
    assert len(metas_by_task(tmp_path / "tr.jsonl")[(str(run), "sim-00004")]) == steps
    printed = cli("export", str(run), "--out", str(tmp_path / "cli.jsonl"), "--images", "path")
    assert printed.returncode == 0
    assert "sim/sim-00003" in printed.stdout and "search tree unusable" in printed.stdout
    assert "sim/sim-00001" in printed.stdout and "unfinished: no result.json" in printed.stdout


def test_the_report_links_each_task_to_its_export_lines(runs: dict[str, Path], tmp_path: Path) -> None:
    from results.report import build_report

    run = tmp_path / "run"
    shutil.copytree(runs["rmcts"], run, ignore=shutil.ignore_patterns("*.sqlite*"))
    build_report(run)
    out = tmp_path / "ft.jsonl"
    export_runs(ExportOptions(runs=(run,), out=out, images="path", val_fraction=0))
    result = build_report(run)
    assert result.written == TASKS  # every page shows the new export (its fingerprint changed)
    entry = next(e for e in json.loads(output_paths(out)["index"].read_text())["tasks"] if e["task_id"] == "sim-00002")
    page = next((run / "report").glob("task-sim--sim-00002-*.html")).read_text()
    a, b = entry["lines"][0]
    assert str(out) in page and f"lines {a}–{b}" in page


def test_bad_arguments_and_files_get_one_line_errors(runs: dict[str, Path], tmp_path: Path) -> None:
    done = cli("export", str(tmp_path), "--out", str(tmp_path / "x.jsonl"))
    assert done.returncode == 2 and done.stderr.strip() == f"error: {tmp_path}: no run.json; is it a run directory?"
    done = cli("export", str(runs["rmcts"]), "--out", str(tmp_path / "no" / "x.jsonl"))
    assert done.returncode == 2 and "does not exist" in done.stderr and "Traceback" not in done.stderr
    done = cli("export", str(runs["rmcts"]), "--out", str(tmp_path / "x.jsonl"), "--val-fraction", "1.5")
    assert done.returncode == 2 and "--val-fraction 1.5" in done.stderr


@pytest.mark.parametrize(("line", "rule"), [
    ({"messages": []}, "missing_messages"),
    ({"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}, "bad_role"),
    ({"messages": [{"role": "user", "content": "x", "weight": 1}, {"role": "assistant", "content": "y"}]},
     "weight_not_assistant"),
    ({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": 0}]},
     "no_trained_assistant"),
    ({"messages": [{"role": "user", "content": "x"}]}, "no_assistant"),
    ({"messages": [{"role": "user", "content": [{"type": "audio"}]}, {"role": "assistant", "content": "y"}]},
     "bad_part_type"),
    ({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}, "image_not_in_user"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {
        "url": "data:image/gif;base64,R0lGOD=="}}]}, {"role": "assistant", "content": "y"}]}, "bad_image_type"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "/tmp/a.png"}}]},
                   {"role": "assistant", "content": "y"}]}, "image_path"),
    ({"messages": [{"role": "user", "content": "x", "extra": 1}, {"role": "assistant", "content": "y"}]},
     "unknown_message_key"),
    ({"messages": [{"role": "user", "content": "x" * 400}, {"role": "assistant", "content": "y"}]}, "too_many_tokens"),
])
def test_check_names_the_rule_and_line(line: dict[str, Any], rule: str, tmp_path: Path) -> None:
    good = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                         {"role": "assistant", "content": "a", "weight": 1}]}
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in [good, good, line, good]) + "\n")
    result = check_file(path, Limits(max_example_tokens=50 if rule == "too_many_tokens" else 10**6, min_examples=1))
    assert [(p.line, p.rule) for p in result.problems] == [(3, rule)]
    # A file-level rule: too few examples.
    result = check_file(path, Limits(min_examples=10, max_example_tokens=10**6))
    assert ("too_few_examples" in {p.rule for p in result.problems})
