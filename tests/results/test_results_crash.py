"""SIGKILL at random moments while results are written; the reopened store stays correct.

The child process (this file run as a script) works through a fixed task list with several
tasks in flight, writing steps, extra files, infra failures and results through RunStore, and
appends what it did to a side log *after* each call returns. The parent kills it with SIGKILL
at random moments, then lets a last run finish, and checks the directory against the side log.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
TASKS = [(d, f"{d}-{i:02d}") for d in ("os", "chrome", "gimp") for i in range(20)]
KEYS = ["agent.name", "max_steps"]
CONFIG = {"agent": {"name": "crashy", "api_key": "sk-test-0000000000000000"}, "max_steps": 3}


def expected_score(task_id: str) -> float:
    return (int(hashlib.sha256(task_id.encode()).hexdigest(), 16) % 3) / 2


# ---- child ---------------------------------------------------------------------------------


async def _child(run_dir: str, side_log: str, seed: int) -> None:
    import anyio

    from results import RunStore

    rng = random.Random(seed)
    fd = os.open(side_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def note(*parts: object) -> None:
        os.write(fd, (" ".join(map(str, parts)) + "\n").encode())

    store = await RunStore.open(run_dir, CONFIG, result_keys=KEYS, flush_interval=0.02)
    todo = store.pending(TASKS)
    note("session", store.session, len(todo))
    queue = list(todo)

    async def worker() -> None:
        while queue:
            domain, task_id = queue.pop(0)
            while True:
                attempt = await store.begin_attempt(domain, task_id)
                note("begin", domain, task_id, attempt.number)
                for _ in range(3):
                    n = await attempt.record_step(
                        {"action": "click", "response": "x" * rng.randint(10, 5000)}, os.urandom(2000)
                    )
                    note("step", domain, task_id, attempt.number, n)
                    await anyio.sleep(rng.random() * 0.004)
                await attempt.write_file("tree.json", b"{}" * rng.randint(1, 3000))
                if rng.random() < 0.15:
                    await store.record_infra_failure(domain, task_id, attempt, "sandbox died")
                    note("infra", domain, task_id, attempt.number)
                    continue
                break
            await store.record_result(
                domain, task_id, {"score": expected_score(task_id), "steps": 3, "cost_usd": 0.01}
            )
            note("recorded", domain, task_id, attempt.number)

    async with anyio.create_task_group() as tg:
        tg.start_soon(store.run_flusher)
        async with anyio.create_task_group() as workers:
            for _ in range(4):
                workers.start_soon(worker)
        await store.aclose()
        tg.cancel_scope.cancel()
    note("closed")


# ---- parent --------------------------------------------------------------------------------


def _spawn(run_dir: Path, side_log: Path, seed: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(
        [sys.executable, __file__, str(run_dir), str(side_log), str(seed)],
        cwd=REPO, env=env, stderr=subprocess.PIPE,
    )  # fmt: skip


def _side_lines(side_log: Path) -> list[list[str]]:
    if not side_log.exists():
        return []
    return [line.split() for line in side_log.read_text().splitlines() if line.strip()]


def _wait_lines(side_log: Path, proc: subprocess.Popen, count: int, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while len(_side_lines(side_log)) < count and proc.poll() is None:
        assert time.monotonic() < deadline, "child made no progress"
        time.sleep(0.002)


def test_sigkill_at_random_moments_then_resume_records_each_task_once(tmp_path: Path):
    rng = random.Random(int(os.environ.get("RESULTS_CRASH_SEED", "20241122")))
    run_dir, side_log = tmp_path / "run", tmp_path / "side.log"
    kills = 0
    for i in range(10):
        proc = _spawn(run_dir, side_log, rng.randrange(1 << 30))
        # Kill at a random point of progress, plus a random sub-step delay.
        _wait_lines(side_log, proc, len(_side_lines(side_log)) + rng.randint(2, 40), 60)
        time.sleep(rng.random() * 0.02)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        if ["closed"] in _side_lines(side_log):
            break
        assert proc.returncode in (0, -signal.SIGKILL), (
            proc.stderr.read().decode()[-2000:] + f" (iteration {i})"
        )
    assert kills >= 5
    # The last session runs to the end.
    proc = _spawn(run_dir, side_log, 7)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-3000:]

    lines = _side_lines(side_log)
    # 1. Each task was recorded at most once over all sessions, and every task is finished.
    recorded = Counter((d, t) for kind, d, t, *_ in (x for x in lines if x[0] == "recorded"))
    assert max(recorded.values()) == 1
    for d, t in TASKS:
        rec = orjson.loads((run_dir / d / t / "result.json").read_bytes())
        assert rec["score"] == expected_score(t)
        assert (run_dir / d / t / "result.txt").read_text() == f"{expected_score(t)}\n"
        # 2. Attempts numbered 1..final; every earlier one kept under attempts/<n>/.
        final = rec["attempts"]
        kept = sorted(int(p.name) for p in (run_dir / d / t / "attempts").glob("*")) if final > 1 else []
        assert kept == list(range(1, final)), (d, t, kept, final)
        for n in kept:
            marker = orjson.loads((run_dir / d / t / "attempts" / str(n) / "attempt.json").read_bytes())
            assert marker["number"] == n
    # A fresh task's folder is made behind begin_attempt (write-behind), so a kill right after it
    # may leave no trace and the next session hands out number 1 again; numbers of attempts that
    # left files are unique and dense (2. above), and numbers never go backwards past them.
    begun = [(x[1], x[2], int(x[3])) for x in lines if x[0] == "begin"]
    for d, t in TASKS:
        numbers = [n for dd, tt, n in begun if (dd, tt) == (d, t)]
        assert numbers[-1] == orjson.loads((run_dir / d / t / "result.json").read_bytes())["attempts"]
    # 3. Never deleted: every step of a finished attempt is on disk (steps are written behind, and
    # the result waits for them); a killed attempt keeps the steps that landed, each one whole.
    for _, d, t, n, step in (x for x in lines if x[0] == "step"):
        final = orjson.loads((run_dir / d / t / "result.json").read_bytes())["attempts"]
        if int(n) == final:
            assert (run_dir / d / t / f"step_{step}.png").stat().st_size == 2000, (d, t, n, step)
    for png in run_dir.glob("*/*/attempts/*/step_*.png"):
        assert png.stat().st_size == 2000, png
    moved = sum(1 for _ in run_dir.glob("*/*/attempts/*"))
    assert moved >= 1, "no kill landed mid-attempt; the test proved nothing"

    # 4. Summary matches the result files; the journal reads despite torn lines.
    from results import read_run

    summary = orjson.loads((run_dir / "summary.json").read_bytes())
    scores = [expected_score(t) for _, t in TASKS]
    assert summary["total"] == summary["done"] == len(TASKS)
    assert summary["success_rate"] == pytest.approx(sum(scores) / len(scores))
    assert summary["solved"] == scores.count(1.0)
    for d in ("os", "chrome", "gimp"):
        ds = [expected_score(t) for dd, t in TASKS if dd == d]
        assert summary["by_domain"][d]["success_rate"] == pytest.approx(sum(ds) / len(ds))
    view = read_run(run_dir)
    assert view.summary["success_rate"] == pytest.approx(summary["success_rate"]) and not view.unfinished
    finished = Counter((e["domain"], e["task_id"]) for e in view.events if e["event"] == "task_finished")
    assert max(finished.values()) == 1
    assert summary["sessions"] == max(e["session"] for e in view.events) >= kills
    # 5. No half-written temp files survive, and the secret never reached the disk.
    assert not list(run_dir.rglob(".*.tmp-*"))
    assert b"sk-test-0000000000000000" not in (run_dir / "run.json").read_bytes()
    print(f"kills={kills} sessions={summary['sessions']} moved_aside={moved} torn_lines={view.skipped_lines}")


if __name__ == "__main__":
    import anyio

    anyio.run(_child, sys.argv[1], sys.argv[2], int(sys.argv[3]))
