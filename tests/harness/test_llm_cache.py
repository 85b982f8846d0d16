"""Cache: a replay pays nothing, identical concurrent requests pay once, --no-cache pays always."""

from __future__ import annotations

from pathlib import Path

import anyio
from helpers import sim_client

from harness.llm.cache import ResponseCache, SingleFlight
from harness.llm.sim import SimConfig, SimServer

MSG = [{"role": "user", "content": [{"type": "text", "text": "next action?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]


async def test_rerun_replays_from_the_cache_with_zero_requests(tmp_path: Path):
    cache = tmp_path / "run" / "llm_cache.sqlite"
    answers = iter(["first answer", "second answer"])
    async with SimServer(SimConfig(policy=lambda r: [next(answers)])) as sim:
        async with sim_client(sim, cache) as client:
            paid = await client.complete(MSG, temperature=1.0, n=1, task_id="t")
        assert len(sim.records) == 1
        # A new client on the same run directory: the resumed run.
        async with sim_client(sim, cache) as client:
            replay = await client.complete(MSG, temperature=1.0, n=1, task_id="t")
            stats = client.stats()
        assert len(sim.records) == 1  # nothing reached the server
    assert replay.cached and not paid.cached
    assert replay.choices == paid.choices == ["first answer"]  # sampled, yet replayed exactly
    assert replay.request_hash == paid.request_hash
    assert replay.cost_usd == 0.0 and paid.cost_usd > 0
    assert stats["run"]["cached_calls"] == 1 and stats["run"]["saved_usd"] > 0


async def test_cache_key_covers_model_messages_images_sampling_and_n(tmp_path: Path):
    async with SimServer(SimConfig()) as sim, sim_client(sim, tmp_path / "c.sqlite") as client:
        base = await client.complete(MSG, temperature=0.5)
        other_image = [{"role": "user", "content": [MSG[0]["content"][0],
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,BBBB"}}]}]
        variants = [
            await client.complete(other_image, temperature=0.5),
            await client.complete(MSG, temperature=0.7),
            await client.complete(MSG, temperature=0.5, n=2),
            await client.complete(MSG, temperature=0.5, top_p=0.9),
            await client.complete(MSG, temperature=0.5, max_tokens=10),
            await client.complete(MSG, temperature=0.5, salt="sample-2"),
        ]
        again = await client.complete(MSG, temperature=0.5)
    assert len({v.request_hash for v in variants} | {base.request_hash}) == 7
    assert not any(v.cached for v in variants) and again.cached
    assert len(sim.records) == 7


async def test_concurrent_identical_requests_pay_once(tmp_path: Path):
    async with SimServer(SimConfig(latency_ms=200)) as sim, sim_client(sim, tmp_path / "c.sqlite") as client:
        results = []

        async def call() -> None:
            results.append(await client.complete(MSG, n=3, temperature=1.0))

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(call)
        stats = client.stats()
    assert len(sim.records) == 1
    assert sum(not r.cached for r in results) == 1
    assert len({tuple(r.choices) for r in results}) == 1
    assert stats["run"]["calls"] == 10 and stats["run"]["cached_calls"] == 9


async def test_no_cache_pays_for_every_call(tmp_path: Path):
    async with SimServer(SimConfig()) as sim:
        async with sim_client(sim, tmp_path / "c.sqlite", enabled=False) as client:
            a = await client.complete(MSG)
            b = await client.complete(MSG)
    assert len(sim.records) == 2 and not a.cached and not b.cached
    assert not (tmp_path / "c.sqlite").exists()


async def test_embeddings_replay_per_text_from_the_cache(tmp_path: Path):
    async with SimServer(SimConfig()) as sim:
        async with sim_client(sim, tmp_path / "c.sqlite") as client:
            first = await client.embed(["alpha beta", "gamma"])
            second = await client.embed(["gamma", "alpha beta", "delta"])
    assert second[0] == first[1] and second[1] == first[0]
    assert len(sim.records) == 2  # the second call asked only for "delta"


async def test_cache_survives_many_concurrent_writers(tmp_path: Path):
    cache = ResponseCache(tmp_path / "c.sqlite")

    async def write(i: int) -> None:
        await cache.put(f"k{i}", "chat", "m", {"i": i})

    async with anyio.create_task_group() as tg:
        for i in range(200):
            tg.start_soon(write, i)
    found = await cache.get_many([f"k{i}" for i in range(200)])
    await cache.aclose()
    assert len(found) == 200 and found["k7"] == {"i": 7}


async def test_single_flight_lets_a_waiter_lead_when_the_leader_fails():
    flight = SingleFlight()
    started = anyio.Event()
    calls = 0

    async def failing() -> str:
        nonlocal calls
        calls += 1
        started.set()
        await anyio.sleep(0.05)
        raise RuntimeError("boom")

    async def working() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    results: list[tuple[str, bool]] = []

    async def leader() -> None:
        try:
            await flight.run("k", failing)
        except RuntimeError:
            pass

    async def follower() -> None:
        await started.wait()
        results.append(await flight.run("k", working))

    async with anyio.create_task_group() as tg:
        tg.start_soon(leader)
        tg.start_soon(follower)
    assert results == [("ok", False)] and calls == 2


def test_request_hash_of_screenshots_is_by_content_not_by_object():
    from harness.llm.cache import sync_request_hash

    def payload(b64: str, detail: str = "high") -> dict:
        part = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64, "detail": detail}}
        return {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, part]}]}

    shot = "iVBOR" + "A" * 5000
    same = "".join(["iVBOR", "A" * 5000])  # equal content, another str object
    assert shot is not same
    key = sync_request_hash(payload(shot))
    assert sync_request_hash(payload(same)) == key
    assert sync_request_hash(payload(shot[:-1] + "B")) != key  # one byte of the image
    assert sync_request_hash(payload(shot, detail="low")) != key  # the image's options count too
    as_text = {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "hi"}, {"type": "text", "text": "data:image/png;base64," + shot}]}]}
    assert sync_request_hash(as_text) != key
