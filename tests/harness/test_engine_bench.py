"""`bench engine` end to end (llm-sim in its own process, the real engine, sim sandboxes), and the
batching it relies on: step writes, LLM cache writes and durable journal events are coalesced
without losing or reordering anything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from harness.bench.engine_common import METRIC_KEYS, compute_bound
from harness.bench.solver import solver_policy
from harness.llm.cache import ResponseCache
from results.journal import Journal, read_events
from results.store import RunStore
from vm.sim import Scenario

pytestmark = pytest.mark.slow  # the engine bench with llm-sim in its own process

ROOT = Path(__file__).resolve().parents[2]


def bench(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "bench", "engine", "--work-dir", str(tmp_path / "work"),
         "--json", str(out), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.exists(), proc.stderr[-3000:]
    return proc, json.loads(out.read_text())


def test_small_bench_solves_every_task_and_reports_every_metric(tmp_path: Path) -> None:
    proc, r = bench(tmp_path, "--sessions", "8", "--tasks", "16", "--llm-latency-ms", "20",
                    "--env-latency-ms", "5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(METRIC_KEYS) <= r.keys()
    assert r["failures"] == 0 and r["tasks_done"] == 16
    # chain-3: three clicks and DONE, one model call each.
    assert r["steps"] == 64 and r["llm_calls"] == 64 and r["llm_server_429"] == 0
    assert r["tasks_per_hour"] > 0 and r["steps_per_s"] > 0 and r["llm_calls_per_s"] > 0
    assert r["steps_per_s"] == pytest.approx(r["llm_calls_per_s"], rel=0.01)
    # Sessions run their steps one after another, so no run beats the sandbox bound.
    assert r["binding_limit"] == "sandboxes" and 0.1 < r["utilization"] <= 1.0
    assert r["task_critical_path_s"] == pytest.approx(4 * 0.020 + 12 * 0.005, rel=0.05)
    assert r["loop_lag_ms_p99"] >= 0 and r["loop_lag_samples"] > 10
    assert r["cpu_ms_per_step"] > 0 and 20 < r["peak_rss_mb"] < 4096
    assert r["llm_sim_cpu_s"] is None or r["llm_sim_cpu_s"] > 0  # the model's CPU is not ours
    run = tmp_path / "work" / "run"
    assert len(list(run.glob("sim/*/result.json"))) == 16
    assert "steps_per_s" in proc.stdout  # the table is printed


def test_rpm_limit_binds_and_is_never_exceeded_at_the_server(tmp_path: Path) -> None:
    proc, r = bench(tmp_path, "--sessions", "8", "--tasks", "8", "--rpm", "600")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert r["failures"] == 0 and r["llm_calls"] == 32
    assert r["binding_limit"] == "rpm" and r["llm_server_429"] == 0
    # The client may use its one-second burst allowance, so a short run can edge past R/60.
    assert 0.5 < r["utilization"] < 1.5


def test_bound_formula_picks_the_smallest_limit() -> None:
    b = compute_bound(sessions=64, tasks_done=256, llm_calls=1024, env_latency_s=256 * 3.6,
                      llm_latency_s=2.0, rpm=None, max_in_flight=64)
    assert b["binding_limit"] == "sandboxes" and b["task_critical_path_s"] == pytest.approx(11.6)
    assert b["bound_tasks_per_s"] == pytest.approx(64 / 11.6)
    b = compute_bound(sessions=64, tasks_done=256, llm_calls=1024, env_latency_s=0, llm_latency_s=0,
                      rpm=120, max_in_flight=64)
    assert b["binding_limit"] == "rpm" and b["bound_tasks_per_s"] == pytest.approx(2 / 4)
    b = compute_bound(sessions=8, tasks_done=8, llm_calls=32, env_latency_s=0, llm_latency_s=0,
                      rpm=None, max_in_flight=8)
    assert b["bound_tasks_per_s"] is None and b["binding_limit"] == "harness_cpu"


def test_solver_policy_answers_the_next_correct_action_from_the_observation() -> None:
    sc = Scenario.parse("chain-3-s7")
    def ask(state: str) -> str:
        table = f"tag\tname\nlabel\tchain-3-s7 state {state}"
        return solver_policy({"messages": [{"role": "system", "content": "sys"},
                                           {"role": "user", "content": [{"type": "text", "text": table}]}]})
    assert sc.correct_action(1) in ask("1")
    assert ask("goal").endswith("```DONE```")
    assert "WAIT" in solver_policy({"messages": [{"role": "user", "content": "nothing here"}]})


async def test_concurrent_attempts_keep_each_trajectory_in_order_with_every_screenshot(tmp_path: Path) -> None:
    store = await RunStore.open(tmp_path / "run", {"agent": "x"}, result_keys=[])
    try:
        async def attempt(i: int) -> None:
            a = await store.begin_attempt("d", f"t{i}")
            for n in range(1, 11):
                await a.record_step({"step_num": n, "action": f"a{n}"}, b"png%d" % n if n % 3 else None)
        async with anyio.create_task_group() as tg:
            for i in range(40):
                tg.start_soon(attempt, i)
        batches = store._steps.batches
    finally:
        await store.aclose()
    assert batches < 400  # coalesced: far fewer worker calls than steps
    for i in range(40):
        folder = tmp_path / "run" / "d" / f"t{i}"
        lines = [json.loads(x) for x in (folder / "traj.jsonl").read_text().splitlines()]
        assert [x["step_num"] for x in lines] == list(range(1, 11))
        for x in lines:
            if x["screenshot_file"]:
                assert (folder / x["screenshot_file"]).read_bytes() == b"png%d" % x["step_num"]


async def test_concurrent_cache_puts_are_all_stored_in_few_transactions(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = ResponseCache(path)
    async with anyio.create_task_group() as tg:
        for i in range(100):
            tg.start_soon(cache.put, f"k{i}", "chat", "m", {"choices": [f"answer {i}"]})
    await cache.aclose()
    again = ResponseCache(path)
    found = await again.get_many([f"k{i}" for i in range(100)])
    await again.aclose()
    assert {k: v["choices"][0] for k, v in found.items()} == {f"k{i}": f"answer {i}" for i in range(100)}


async def test_durable_journal_events_are_on_disk_when_append_returns_with_fewer_flushes(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "events.jsonl", session=1, limiter=anyio.CapacityLimiter(1))
    on_disk: list[int] = []

    async def finish(i: int) -> None:
        await journal.append("task_finished", durable=True, task_id=f"t{i}")
        events, _ = read_events(tmp_path / "events.jsonl")
        on_disk.append(sum(1 for e in events if e.get("task_id") == f"t{i}"))

    async with anyio.create_task_group() as tg:
        for i in range(60):
            tg.start_soon(finish, i)
    await journal.aclose()
    assert on_disk == [1] * 60
    assert journal.flushes < 60
