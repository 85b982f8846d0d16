"""RunStore behaviour: records once, attempts moved aside, config checks, secrets, OSWorld layout."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import anyio.lowlevel
import orjson
import pytest

from harness.base.errors import ConfigError, TaskError
from results import DuplicateResultError, RunStore, read_run
from results.atomic import is_temp_name
from results.runinfo import git_commit

KEYS = ["agent.name", "agent.model", "max_steps", "benchmark"]


def cfg(**over):
    base = {
        "benchmark": "desktop-basics",
        "agent": {"name": "noop", "model": "m1"},
        "max_steps": 15,
        "concurrency": 4,
    }
    base.update(over)
    return base


async def test_record_result_writes_osworld_files_and_refuses_a_second_record(tmp_path: Path):
    store = await RunStore.open(tmp_path / "run", cfg(), result_keys=KEYS)
    assert store.pending([("os", "a"), ("os", "b")]) == [("os", "a"), ("os", "b")]
    attempt = await store.begin_attempt("os", "a")
    await attempt.record_step({"action": "pyautogui.click(1, 2)", "response": "ok", "done": True}, b"PNG1")
    rec = await store.record_result(
        "os", "a", {"score": 0.5, "steps": 1, "tokens": {"prompt": 7, "completion": 3}}
    )
    task = tmp_path / "run" / "os" / "a"
    assert (task / "result.txt").read_text() == "0.5\n"
    on_disk = orjson.loads((task / "result.json").read_bytes())
    assert on_disk == rec
    assert {k: on_disk[k] for k in ("score", "steps", "attempts", "error")} == {
        "score": 0.5, "steps": 1, "attempts": 1, "error": None,
    }  # fmt: skip
    line = orjson.loads((task / "traj.jsonl").read_bytes())
    assert list(line)[:8] == [
        "step_num", "action_timestamp", "action", "response", "reward", "done", "info", "screenshot_file",
    ]  # fmt: skip
    assert line["screenshot_file"] == "step_1.png" and (task / "step_1.png").read_bytes() == b"PNG1"

    with pytest.raises(DuplicateResultError, match="os/a"):
        await store.record_result("os", "a", {"score": 1.0})
    with pytest.raises(DuplicateResultError):
        await store.begin_attempt("os", "a")
    with pytest.raises(RuntimeError, match="closed"):
        await attempt.record_step({"action": "late"}, None)
    assert store.pending([("os", "a"), ("os", "b")]) == [("os", "b")]
    await store.aclose()

    # Across sessions too: the finished record is read back from disk.
    store = await RunStore.open(tmp_path / "run", cfg(), result_keys=KEYS)
    with pytest.raises(DuplicateResultError):
        await store.record_result("os", "a", {"score": 1.0})
    assert orjson.loads((task / "result.json").read_bytes())["score"] == 0.5
    await store.aclose()


async def test_unfinished_attempt_is_moved_aside_not_deleted(tmp_path: Path):
    run = tmp_path / "run"
    store = await RunStore.open(run, cfg(), result_keys=KEYS)
    first = await store.begin_attempt("chrome", "t")
    await first.record_step({"action": "a"}, b"one")
    await first.write_file("tree.json", b'{"x": 1}')
    await store.record_infra_failure("chrome", "t", first, "guest unreachable")
    second = await store.begin_attempt("chrome", "t")
    assert second.number == 2
    await second.record_step({"action": "b"}, b"two")
    await store.aclose("interrupted")  # second attempt unfinished

    store = await RunStore.open(run, cfg(), result_keys=KEYS)
    third = await store.begin_attempt("chrome", "t")
    assert third.number == 3
    rec = await store.record_result("chrome", "t", {"score": 1.0})
    assert rec["attempts"] == 3
    await store.aclose()

    task = run / "chrome" / "t"
    assert (task / "attempts" / "1" / "step_1.png").read_bytes() == b"one"
    assert (task / "attempts" / "1" / "tree.json").exists()
    assert (task / "attempts" / "2" / "step_1.png").read_bytes() == b"two"
    assert not (task / "step_1.png").exists()  # the final attempt recorded no step
    view = read_run(run)
    names = [e["event"] for e in view.events]
    assert names.count("attempt_moved_aside") == 2 and names.count("infra_failure") == 1
    assert view.summary["infra_failures"] == 1 and view.attempts_moved == {("chrome", "t"): [1, 2]}


async def test_a_move_aside_cut_short_by_a_crash_is_completed_into_the_same_folder(tmp_path: Path):
    run = tmp_path / "run"
    store = await RunStore.open(run, cfg(), result_keys=KEYS)
    await store.begin_attempt("os", "m")
    await store.aclose("interrupted")
    task = run / "os" / "m"
    # Attempt 1's step file already moved, its attempt.json and traj not yet (attempt.json moves last).
    (task / "attempts" / "1").mkdir(parents=True)
    (task / "attempts" / "1" / "step_1.png").write_bytes(b"s1")
    (task / "traj.jsonl").write_bytes(b'{"step_num": 1}\n')

    store = await RunStore.open(run, cfg(), result_keys=KEYS)
    attempt = await store.begin_attempt("os", "m")
    assert attempt.number == 2
    assert sorted(os.listdir(task / "attempts" / "1")) == ["attempt.json", "step_1.png", "traj.jsonl"]
    await store.aclose("interrupted")

    # A result recorded without a begin_attempt in this session still counts the attempts on disk.
    store = await RunStore.open(run, cfg(), result_keys=KEYS)
    assert (await store.record_result("os", "m", {"score": 0.0, "error": "bad task file"}))["attempts"] == 2
    await store.aclose()


async def test_result_txt_without_result_json_is_unfinished_and_kept(tmp_path: Path):
    """A crash between the two result writes: the task reruns, the stray result.txt is kept aside."""
    run = tmp_path / "run"
    store = await RunStore.open(run, cfg(), result_keys=KEYS)
    await store.begin_attempt("os", "x")
    await store.aclose("interrupted")
    (run / "os" / "x" / "result.txt").write_text("1.0\n")
    (run / "os" / "x" / ".result.json.tmp-1-dead").write_text('{"score": 1')  # torn temp file

    store = await RunStore.open(run, cfg(), result_keys=KEYS)
    assert not any(is_temp_name(n) for n in os.listdir(run / "os" / "x"))
    assert store.pending([("os", "x")]) == [("os", "x")]
    attempt = await store.begin_attempt("os", "x")
    assert attempt.number == 2
    assert (run / "os" / "x" / "attempts" / "1" / "result.txt").read_text() == "1.0\n"
    await store.aclose()


async def test_config_difference_in_result_keys_is_refused_naming_the_keys(tmp_path: Path):
    run = tmp_path / "run"
    store = await RunStore.open(run, cfg(), result_keys=KEYS)
    await store.aclose()
    changed = cfg(max_steps=30, agent={"name": "noop", "model": "m2"})
    with pytest.raises(ConfigError) as err:
        await RunStore.open(run, changed, result_keys=KEYS)
    msg = str(err.value)
    assert "agent.model" in msg and '"m1" -> "m2"' in msg and "max_steps: 15 -> 30" in msg
    assert "concurrency" not in msg and "\n" not in msg
    # The refused open released the lock: a compatible config opens, and other changes are journaled.
    store = await RunStore.open(run, cfg(concurrency=16, extra={"note": "x"}), result_keys=KEYS)
    await store.aclose()
    changes = [e for e in read_run(run).events if e["event"] == "config_changed"]
    assert changes[-1]["changes"] == {"concurrency": [4, 16], "extra.note": [None, "x"]}
    assert (
        orjson.loads((run / "run.json").read_bytes())["config"]["concurrency"] == 4
    )  # run.json is the original


async def test_secrets_are_redacted_in_run_json_journal_and_results(tmp_path: Path):
    key = "sk-proj-" + "A1b2C3d4" * 5
    config = cfg(
        agent={"name": "noop", "model": "m1", "api_key": "plain-secret-value-1"},
        providers={"openai": {"token": "plain-secret-value-2", "base_url": "http://127.0.0.1:9"}},
        db_password="plain-secret-value-3",
        headers={"Authorization": "Bearer " + key},
        extra_args=["--flag", key],
        note=f"key is {key}",
        keyboard_layout="us",
        max_tokens=512,
    )
    run = tmp_path / "run"
    store = await RunStore.open(run, config, result_keys=KEYS)
    attempt = await store.begin_attempt("os", "s")
    await attempt.record_step(
        {"action": {"action_type": "PRESS", "key": "enter"}, "response": f"use {key}"}, None
    )
    await store.record_infra_failure("os", "s", attempt, f"401 for key {key}")
    await store.begin_attempt("os", "s")
    await store.record_result("os", "s", {"score": 0.0, "error": f"ProviderError: bad key {key}"})
    await store.aclose()

    everything = b"".join(p.read_bytes() for p in run.rglob("*") if p.is_file())
    for secret in (key, "plain-secret-value-1", "plain-secret-value-2", "plain-secret-value-3"):
        assert secret.encode() not in everything
    saved = orjson.loads((run / "run.json").read_bytes())["config"]
    assert saved["agent"] == {"name": "noop", "model": "m1", "api_key": "***"}
    assert saved["providers"]["openai"]["base_url"] == "http://127.0.0.1:9"
    assert saved["max_tokens"] == 512 and saved["extra_args"] == ["--flag", "***"]
    traj = orjson.loads((run / "os" / "s" / "attempts" / "1" / "traj.jsonl").read_bytes())
    assert traj["action"] == {"action_type": "PRESS", "key": "enter"}  # actions are not secrets


async def test_200_concurrent_record_steps_do_not_interleave_lines(tmp_path: Path):
    store = await RunStore.open(tmp_path / "run", cfg(), result_keys=KEYS)
    attempt = await store.begin_attempt("os", "c")
    big = "x" * 50_000  # long lines make any interleaving visible

    async def one(i: int) -> None:
        await attempt.record_step({"action": f"a{i}", "response": big, "i": i}, f"png-{i}".encode())
        await attempt.append_jsonl("notes.jsonl", {"i": i, "pad": big})

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(one, i)
    await store.aclose()
    task = tmp_path / "run" / "os" / "c"
    lines = (task / "traj.jsonl").read_bytes().splitlines()
    steps = [orjson.loads(line) for line in lines]
    assert len(steps) == 200 and sorted(s["step_num"] for s in steps) == list(range(1, 201))
    for s in steps:
        assert (
            s["action"] == f"a{s['i']}"
            and (task / s["screenshot_file"]).read_bytes() == f"png-{s['i']}".encode()
        )
    notes = [orjson.loads(line) for line in (task / "notes.jsonl").read_bytes().splitlines()]
    assert sorted(n["i"] for n in notes) == list(range(200))


async def test_summary_is_computed_from_result_files_and_matches_an_osworld_reader(tmp_path: Path):
    run = tmp_path / "run"
    tasks = [("os", "1"), ("os", "2"), ("chrome", "3"), ("gimp", "4")]
    store = await RunStore.open(run, cfg(), result_keys=KEYS)
    store.pending(tasks)
    for (d, t), score in zip(tasks[:3], [1.0, 0.5, 0.0], strict=True):
        await store.begin_attempt(d, t)
        tokens = {"prompt": 100, "completion": 10}
        await store.record_result(d, t, {"score": score, "tokens": tokens, "cost_usd": 0.25, "error": None})
    await store.begin_attempt("gimp", "4")  # unfinished
    await store.aclose("interrupted")

    summary = orjson.loads((run / "summary.json").read_bytes())
    assert summary["total"] == 4 and summary["done"] == 3 and summary["solved"] == 1
    assert summary["success_rate"] == pytest.approx(0.5)
    assert summary["by_domain"]["os"] == {"total": 2, "done": 2, "solved": 1, "success_rate": 0.75}
    assert summary["by_domain"]["gimp"]["done"] == 0
    assert summary["tokens"] == {"prompt": 300, "completion": 30} and summary["cost_usd"] == pytest.approx(
        0.75
    )
    assert summary["wall_s"] > 0 and summary["tasks_per_hour"] > 0

    # A reader written the way OSWorld's show_result walks: every top-level folder is a domain,
    # every sub-folder with result.txt is a finished example.
    scores = []
    for domain in os.listdir(run):
        if (run / domain).is_dir():
            for example in os.listdir(run / domain):
                if (run / domain / example).is_dir() and "result.txt" in os.listdir(run / domain / example):
                    scores.append(float((run / domain / example / "result.txt").read_text()))
    assert sorted(scores) == [0.0, 0.5, 1.0]
    assert sum(scores) / len(scores) == pytest.approx(summary["success_rate"])
    assert {p.name for p in run.iterdir() if p.is_dir()} == {"os", "chrome", "gimp"}

    # Edit a result on disk: the summary follows the files, not memory.
    rec = orjson.loads((run / "chrome" / "3" / "result.json").read_bytes())
    (run / "chrome" / "3" / "result.json").write_bytes(orjson.dumps({**rec, "score": 1.0}))
    assert read_run(run).summary["success_rate"] == pytest.approx(2.5 / 3)


async def test_wall_time_sums_sessions_including_a_crashed_one(tmp_path: Path):
    run = tmp_path / "run"
    store = await RunStore.open(run, cfg(), result_keys=KEYS)
    await store.aclose()
    first = read_run(run).summary["wall_s"]
    # A session that crashed: run_started, one event 60 s later, no run_stopped.
    lines = [
        {"ts": 1000.0, "event": "run_started", "session": 2, "pid": 1},
        {
            "ts": 1060.0,
            "event": "attempt_started",
            "session": 2,
            "domain": "os",
            "task_id": "z",
            "attempt": 1,
        },
    ]
    with (run / "events.jsonl").open("ab") as f:
        f.write(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    store = await RunStore.open(run, cfg(), result_keys=KEYS)
    assert store.session == 3
    assert store.summary()["wall_s"] >= 60 + first
    await store.aclose()
    assert read_run(run).summary["wall_s"] == pytest.approx(60 + first, abs=1.0)


async def test_run_dir_is_locked_foreign_dirs_refused_and_bad_names_rejected(tmp_path: Path):
    store = await RunStore.open(tmp_path / "run", cfg(), result_keys=KEYS)
    with pytest.raises(ConfigError, match="in use by another harness process"):
        await RunStore.open(tmp_path / "run", cfg(), result_keys=KEYS)
    with pytest.raises(TaskError, match="plain folder name"):
        await store.begin_attempt("os", "../escape")
    with pytest.raises(ValueError, match="score"):
        await store.record_result("os", "n", {"score": 1.5})
    attempt = await store.begin_attempt("os", "n")
    with pytest.raises(ValueError, match="reserved"):
        await attempt.write_file("result.json", b"{}")
    await store.aclose()

    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match=r"no run\.json but is not empty"):
        await RunStore.open(foreign, cfg(), result_keys=KEYS)
    assert os.listdir(foreign) == ["thesis.tex"]  # nothing created in a folder we refused


def test_git_commit_is_read_from_git_files_without_subprocess(tmp_path: Path):
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "repo"
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / ".git" / "packed-refs").write_text(f"# pack-refs with: peeled\n{sha} refs/heads/main\n")
    (repo / "pkg").mkdir()
    assert git_commit(repo / "pkg") == sha
    (repo / ".git" / "refs" / "heads" / "main").write_text(sha.replace("0", "f") + "\n")
    assert git_commit(repo / "pkg") == sha.replace("0", "f")
    assert git_commit(tmp_path) is None


async def test_reopening_restores_a_lost_result_txt_from_result_json(tmp_path: Path):
    # result.txt is not fsynced (derived data): a power loss may take it or leave it empty.
    store = await RunStore.open(tmp_path / "run", cfg(), result_keys=KEYS)
    for task_id, score in (("a", 0.25), ("b", 1.0), ("c", 0.0)):
        await store.begin_attempt("os", task_id)
        await store.record_result("os", task_id, {"score": score})
    await store.aclose()
    task = tmp_path / "run" / "os"
    (task / "a" / "result.txt").unlink()
    (task / "b" / "result.txt").write_bytes(b"")
    untouched = (task / "c" / "result.txt").stat().st_mtime_ns

    store = await RunStore.open(tmp_path / "run", cfg(), result_keys=KEYS)
    await store.aclose()
    assert (task / "a" / "result.txt").read_text() == "0.25\n"
    assert (task / "b" / "result.txt").read_text() == "1.0\n"
    assert (task / "c" / "result.txt").stat().st_mtime_ns == untouched


async def test_steps_are_written_behind_and_the_result_waits_for_them(tmp_path: Path):
    store = await RunStore.open(tmp_path / "run", cfg(), result_keys=KEYS)
    async with anyio.create_task_group() as tg:
        tg.start_soon(store.run_flusher)
        await anyio.lowlevel.checkpoint()  # let the background writer start
        attempt = await store.begin_attempt("os", "a")
        for i in range(1, 41):
            await attempt.record_step({"action": f"a{i}"}, f"PNG{i}".encode())
        await store.record_result("os", "a", {"score": 1.0, "steps": 40})
        task = tmp_path / "run" / "os" / "a"
        lines = [orjson.loads(x) for x in (task / "traj.jsonl").read_bytes().splitlines()]
        assert [x["action"] for x in lines] == [f"a{i}" for i in range(1, 41)]
        assert all((task / f"step_{i}.png").read_bytes() == f"PNG{i}".encode() for i in range(1, 41))

        # A failed step write does not cost the score, and it is not lost silently either.
        attempt = await store.begin_attempt("os", "b")
        await attempt.flush()
        (tmp_path / "run" / "os" / "b" / "step_2.png").mkdir()  # the PNG cannot replace a folder
        await attempt.record_step({"action": "ok"}, b"PNG")
        await attempt.record_step({"action": "fails"}, b"PNG")
        rec = await store.record_result("os", "b", {"score": 1.0})
        assert orjson.loads((tmp_path / "run" / "os" / "b" / "result.json").read_bytes()) == rec
        tg.cancel_scope.cancel()
    await store.aclose()
    failed = [e for e in read_run(tmp_path / "run").events if e["event"] == "step_write_failed"]
    assert [(e["task_id"], "step_2.png" in e["error"]) for e in failed] == [("b", True)]


async def test_direct_writes_wait_for_the_queued_task_folder(tmp_path: Path, monkeypatch):
    # A fresh task's folder is made by the step writer; a durable file or a jsonl append written
    # right after begin_attempt (tree search does) must not race it, even on a slow disk.
    import time

    import results.stepwriter as stepwriter

    make = stepwriter.create_task_dir

    def slow_create(directory: Path) -> None:
        time.sleep(0.02)
        make(directory)

    monkeypatch.setattr(stepwriter, "create_task_dir", slow_create)
    store = await RunStore.open(tmp_path / "run", cfg(), result_keys=KEYS)
    async with anyio.create_task_group() as tg:
        tg.start_soon(store.run_flusher)
        await anyio.lowlevel.checkpoint()
        for i in range(5):
            attempt = await store.begin_attempt("os", f"t{i}")
            await attempt.append_jsonl("search.jsonl", {"i": i})
            await attempt.write_file("tree.json", b"{}")
        for i in range(5):
            task = tmp_path / "run" / "os" / f"t{i}"
            assert orjson.loads((task / "search.jsonl").read_bytes()) == {"i": i}
            assert (task / "tree.json").read_bytes() == b"{}" and (task / "attempt.json").exists()
        tg.cancel_scope.cancel()
    await store.aclose()


async def test_a_result_whose_journal_line_a_kill_lost_is_journaled_once_on_reopen(tmp_path: Path):
    run = tmp_path / "run"
    store = await RunStore.open(run, cfg(), result_keys=KEYS)
    await store.record_result("os", "a", {"score": 1.0})
    await store.record_result("os", "b", {"score": 0.0})
    await store.aclose()
    events = run / "events.jsonl"

    def finished() -> list[tuple[str, bool]]:
        out = []
        for line in events.read_bytes().splitlines():
            ev = orjson.loads(line)
            if ev.get("event") == "task_finished":
                out.append((ev["task_id"], bool(ev.get("recovered"))))
        return out

    # As if SIGKILL came after os/b's result.json and before its task_finished line.
    kept = [ln for ln in events.read_bytes().splitlines()
            if not (b'"task_finished"' in ln and b'"b"' in ln)]
    events.write_bytes(b"\n".join(kept) + b"\n")
    assert finished() == [("a", False)]
    for _ in range(2):  # reopened twice: recorded once
        store = await RunStore.open(run, cfg(), result_keys=KEYS)
        await store.aclose()
    assert finished() == [("a", False), ("b", True)]
