"""The journal: batched appends that do not block, torn last lines tolerated."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import anyio.lowlevel
import orjson

from results import RunStore, read_run
from results.journal import Journal, read_events, scan_journal

KEYS = ["agent"]
CFG = {"agent": "noop", "concurrency": 2}


async def test_torn_last_line_is_skipped_and_next_append_starts_on_a_fresh_line(tmp_path: Path):
    run = tmp_path / "run"
    store = await RunStore.open(run, CFG, result_keys=KEYS)
    await store.aclose()
    with (run / "events.jsonl").open("ab") as f:
        f.write(b'{"ts":1795000000.5,"event":"task_fini')  # what a SIGKILL mid-write leaves

    store = await RunStore.open(run, CFG, result_keys=KEYS)
    await store.begin_attempt("os", "t")
    await store.record_result("os", "t", {"score": 1.0})
    await store.aclose()

    raw = (run / "events.jsonl").read_bytes().splitlines()
    torn = [i for i, line in enumerate(raw) if line.endswith(b'"event":"task_fini')]
    assert len(torn) == 1 and orjson.loads(raw[torn[0] + 1])["event"] == "run_started"
    events, skipped = read_events(run / "events.jsonl")
    assert skipped == 1
    assert [e["event"] for e in events if e["session"] == 2][:1] == ["run_started"]
    assert any(e["event"] == "task_finished" and e["task_id"] == "t" for e in events)
    assert read_run(run).summary["done"] == 1


async def test_twenty_thousand_events_are_buffered_not_written_one_by_one(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    journal = await Journal.open(path, session=1, flush_interval=0.2)
    ticks = 0
    done = anyio.Event()

    async def ticker() -> None:  # the loop must keep running while we log
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await anyio.lowlevel.checkpoint()

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        for i in range(20_000):
            await journal.append("llm_call", i=i, model="m", tokens=123)
            if i % 100 == 0:
                await anyio.lowlevel.checkpoint()
        done.set()
    elapsed = time.perf_counter() - start
    await journal.aclose()

    events, skipped = read_events(path)
    assert skipped == 0 and [e["i"] for e in events] == list(range(20_000))
    assert elapsed < 5.0, f"20k appends took {elapsed:.2f}s"
    assert ticks > 100  # other tasks ran during the burst
    # Batched: far fewer write+fsync calls than events (one per flush interval or size limit).
    assert journal.lines_written == 20_000 and journal.flushes <= 100, journal.flushes
    print(f"20k journal appends: {elapsed:.3f}s, {journal.flushes} flushes")
    assert scan_journal(path).counts["llm_call"] == 20_000


async def test_run_flusher_writes_buffered_events_within_the_interval(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    journal = await Journal.open(path, session=1, flush_interval=0.05)
    async with anyio.create_task_group() as tg:
        tg.start_soon(journal.run_flusher)
        journal.emit("progress", done=1)  # buffered only
        with anyio.fail_after(5):
            # Polling the disk with a deadline: the file is the thing under test, there is no event.
            while b'"progress"' not in (path.read_bytes() if path.exists() else b""):  # noqa: ASYNC110
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    await journal.aclose()
    assert [e["event"] for e in read_events(path)[0]] == ["progress"]


async def test_durable_append_is_on_disk_when_it_returns(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    journal = await Journal.open(path, session=4, flush_interval=3600)
    journal.emit("a")
    await journal.append("b", durable=True, x=1)
    lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    assert [(e["event"], e["session"]) for e in lines] == [("a", 4), ("b", 4)]
    await journal.aclose()
