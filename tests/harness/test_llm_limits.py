"""Limits: never past a provider's window, callers wait instead of failing, in-flight adapts."""

from __future__ import annotations

import time

import anyio
from helpers import sim_client

from harness.llm.limits import AdaptiveLimit, RateGate
from harness.llm.sim import SimConfig, SimFault, SimServer, max_in_any_window


async def test_rate_gate_allows_at_most_rpm_sends_in_any_window_and_paces_them():
    gate = RateGate(rpm=5, tpm=None, window_s=0.3, margin_s=0.0, burst_s=0.05)
    sends: list[float] = []

    async def caller() -> None:
        for _ in range(4):
            await gate.acquire()
            sends.append(anyio.current_time())

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(caller)
    assert len(sends) == 20
    assert max_in_any_window(sorted(sends), 0.3) <= 5
    # Paced, not bursted: the first window's five sends are spread over it.
    first = sorted(sends)[:5]
    assert first[-1] - first[0] >= 0.15
    # And the gate ran near its rate: 20 sends at 5 per 0.3 s need ~1.1 s, not much more.
    assert sorted(sends)[-1] - sorted(sends)[0] < 1.6


async def test_token_limit_waits_for_room_and_settled_usage_frees_it_early():
    gate = RateGate(rpm=None, tpm=1000, window_s=5.0, margin_s=0.0, burst_s=10.0)
    ticket = await gate.acquire(900)  # estimate: nearly the whole window
    assert gate.delay(anyio.current_time(), 500) > 4.0
    gate.settle(ticket, 300)  # the provider reported far less
    start = anyio.current_time()
    with anyio.fail_after(1.0):
        await gate.acquire(500)
    assert anyio.current_time() - start < 0.5


async def test_request_larger_than_tpm_goes_alone_instead_of_waiting_forever():
    gate = RateGate(rpm=None, tpm=100, window_s=0.2, margin_s=0.0, burst_s=100.0)
    await gate.acquire(50)
    with anyio.fail_after(1.0):
        await gate.acquire(500)


async def test_pause_holds_every_sender_until_it_ends():
    gate = RateGate(rpm=100, tpm=None, window_s=1.0, burst_s=10.0)
    gate.pause(0.3)
    start = anyio.current_time()
    await gate.acquire()
    assert anyio.current_time() - start >= 0.29


def test_adaptive_limit_cuts_multiplicatively_and_recovers_additively():
    limit = AdaptiveLimit(maximum=8, minimum=1, factor=0.5, cooldown_s=10.0)
    limit.on_rate_limited(now=100.0)
    assert limit.cap == 4
    limit.on_rate_limited(now=101.0)  # same wave, inside the cooldown: no second cut
    assert limit.cap == 4
    limit.on_rate_limited(now=111.0)
    assert limit.cap == 2
    successes = 0
    while limit.cap < 8:
        limit.on_success()
        successes += 1
    assert successes == 2 + 3 + 4 + 5 + 6 + 7  # one clean round at each width


async def test_adaptive_limit_makes_callers_wait_not_fail():
    limit = AdaptiveLimit(maximum=2)
    await limit.acquire()
    await limit.acquire()
    got_third = anyio.Event()

    async def third() -> None:
        await limit.acquire()
        got_third.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(third)
        await anyio.sleep(0.05)
        assert not got_third.is_set() and limit.waiting == 1
        limit.release()
        with anyio.fail_after(1.0):
            await got_third.wait()
    assert limit.in_flight == 2


async def test_client_never_exceeds_server_rate_limit_in_any_window():
    # Scaled time: 10 requests per 1 s window, at the sim and in our client.
    async with SimServer(SimConfig(rpm=10, window_s=1.0, latency_ms=20)) as sim:
        client = sim_client(sim, rpm=10, window_s=1.0, window_margin_s=0.15, burst_s=0.2, max_in_flight=16)
        start = time.monotonic()
        async with anyio.create_task_group() as tg:
            for i in range(30):
                tg.start_soon(client.complete, [{"role": "user", "content": f"q{i}"}])
        wall = time.monotonic() - start
        await client.aclose()
        stats = sim.stats()
    assert stats["status"] == {"200": 30}  # no 429, no failure
    assert sim.max_in_window(1.0) <= 10
    assert 1.9 < wall < 4.5  # it waited for the windows, and not much longer


async def test_429_cuts_in_flight_then_clean_calls_restore_it():
    rate_limited = 3

    def policy(request: dict) -> str:
        nonlocal rate_limited
        if rate_limited > 0:
            rate_limited -= 1
            raise SimFault(429, "Rate limit reached", code="rate_limit_exceeded", retry_after=0.02)
        return "ok"

    async with SimServer(SimConfig(policy=policy, latency_ms=5)) as sim:
        client = sim_client(sim, max_in_flight=8, adapt_factor=0.5, adapt_cooldown_s=0.0)
        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(client.complete, [{"role": "user", "content": f"a{i}"}])
        (endpoint,) = client.router.all_endpoints()
        assert endpoint.limits.slots.decreases >= 1
        assert endpoint.limits.slots.cap < 8
        for i in range(40):
            await client.complete([{"role": "user", "content": f"b{i}"}])
        assert endpoint.limits.slots.cap == 8
        assert client.stats()["run"]["failures"] == 0
        await client.aclose()


async def test_rate_limit_headers_teach_a_client_that_was_not_told_the_limit():
    async with SimServer(SimConfig(rpm=2, window_s=0.6)) as sim:
        client = sim_client(sim)  # no rpm configured: it learns from x-ratelimit-* headers
        for i in range(5):
            await client.complete([{"role": "user", "content": f"c{i}"}])
        await client.aclose()
    records = sim.records
    statuses = [r.status for r in records]
    assert statuses.count(200) == 5 and statuses.count(429) <= 1
    assert sim.max_in_window(0.6) <= 2
    # The third send waited for the first to leave the provider's window.
    sent = [r.t for r in records if r.status == 200]
    assert sent[2] - sent[0] >= 0.6 - 0.01


async def test_tokens_per_window_limit_is_kept_with_estimates_made_before_sending():
    # ~117 tokens per request (prompt estimate + max_tokens) against 300 tokens per 0.5 s.
    async with SimServer(SimConfig(tpm=300, window_s=0.5)) as sim:
        client = sim_client(sim, tpm=300, window_s=0.5, window_margin_s=0.1, burst_s=0.05)
        start = time.monotonic()
        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(lambda i=i: client.complete([{"role": "user", "content": f"{i}" + "x" * 400}],
                                                          max_tokens=10))
        wall = time.monotonic() - start
        await client.aclose()
    assert [r.status for r in sim.records] == [200] * 8  # no 429
    assert wall >= 1.4  # 8 x 117 tokens at 300 per 0.5 s: the limiter made callers wait
