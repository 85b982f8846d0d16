"""One retry layer: transient errors are retried until they succeed; final ones fail at once."""

from __future__ import annotations

import pytest
from helpers import sim_client

from harness.base.errors import ProviderError
from harness.llm.client import LLMClient
from harness.llm.retry import LLMCallError, parse_duration, retry_after
from harness.llm.sim import SimConfig, SimFault, SimServer

MSG = [{"role": "user", "content": "hello"}]


def scripted(*faults: SimFault):
    """A policy raising the given faults for the first requests, then answering 'ok'."""
    queue = list(faults)

    def policy(request: dict) -> str:
        if queue:
            raise queue.pop(0)
        return "ok"

    return policy


def test_reset_header_durations_parse_like_openai_sends_them():
    assert parse_duration("1s") == 1.0
    assert parse_duration("6m0s") == 360.0
    assert parse_duration("20ms") == pytest.approx(0.02)
    assert parse_duration("1h2m3.5s") == pytest.approx(3723.5)
    assert parse_duration("soon") is None


def test_retry_after_prefers_ms_then_seconds_then_exhausted_reset():
    assert retry_after({"retry-after-ms": "250", "retry-after": "3"}) == pytest.approx(0.25)
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1.5s",
                        "x-ratelimit-remaining-tokens": "900", "x-ratelimit-reset-tokens": "20s"}) == 1.5
    assert retry_after({}) is None


async def test_retry_after_from_a_429_is_honored_before_the_next_request():
    policy = scripted(SimFault(429, "slow down", code="rate_limit_exceeded", retry_after=0.4))
    async with SimServer(SimConfig(policy=policy)) as sim:
        client = sim_client(sim)
        result = await client.complete(MSG)
        await client.aclose()
    assert result.choices == ["ok"]
    first, second = sim.records
    assert first.status == 429 and second.status == 200
    assert second.t - first.t >= 0.4


async def test_500_timeout_and_malformed_body_are_retried_and_the_call_succeeds():
    policy = scripted(SimFault(500), SimFault(hang=True), SimFault(malformed=True), SimFault(503, "overloaded"))
    async with SimServer(SimConfig(policy=policy)) as sim:
        client = sim_client(sim, timeout_s=0.3)
        result = await client.complete(MSG)
        stats = client.stats()
        await client.aclose()
    assert result.choices == ["ok"]
    assert len(sim.records) == 5
    assert stats["run"]["retries"] == 4 and stats["run"]["failures"] == 0


async def test_injected_failure_rates_never_lose_a_call():
    config = SimConfig(fail_rate=0.2, timeout_rate=0.05, malformed_rate=0.05, seed=7)
    async with SimServer(config) as sim:
        client = sim_client(sim, timeout_s=0.3, retry={"max_attempts": 30})
        for i in range(30):
            await client.complete([{"role": "user", "content": f"task {i}"}])
        stats = client.stats()
        await client.aclose()
    assert stats["run"]["calls"] == 30 and stats["run"]["failures"] == 0
    assert stats["run"]["retries"] > 0


async def test_401_fails_at_once_with_a_clear_message_without_the_key():
    key = "sk-test-RECOGNIZABLE-0123456789abcdef"
    async with SimServer(SimConfig(api_key="the-right-key")) as sim:
        client = sim_client(sim, api_key=key)
        with pytest.raises(LLMCallError) as info:
            await client.complete(MSG)
        await client.aclose()
    err = info.value
    assert isinstance(err, ProviderError) and not err.retryable
    assert err.kind == "auth" and err.status == 401
    assert len(sim.records) == 1  # not retried
    assert "401" in str(err) and "sim" in str(err) and "api key" in str(err).lower()
    assert key not in str(err) and key not in repr(err)
    assert key not in str(err.__cause__)


async def test_quota_exhausted_fails_at_once():
    policy = scripted(*[SimFault(429, "You exceeded your current quota", code="insufficient_quota")] * 5)
    async with SimServer(SimConfig(policy=policy)) as sim:
        client = sim_client(sim)
        with pytest.raises(LLMCallError) as info:
            await client.complete(MSG)
        await client.aclose()
    assert info.value.kind == "quota" and not info.value.retryable
    assert len(sim.records) == 1


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_bad_request_fails_at_once(status: int):
    policy = scripted(*[SimFault(status, "model does not exist")] * 5)
    async with SimServer(SimConfig(policy=policy)) as sim:
        client = sim_client(sim)
        with pytest.raises(LLMCallError) as info:
            await client.complete(MSG)
        await client.aclose()
    assert info.value.kind == "bad_request" and info.value.status == status
    assert "model does not exist" in str(info.value)
    assert len(sim.records) == 1


async def test_per_call_attempt_budget_stops_a_hopeless_call():
    async with SimServer(SimConfig(fail_rate=1.0)) as sim:
        client = sim_client(sim, retry={"max_attempts": 3})
        with pytest.raises(LLMCallError) as info:
            await client.complete(MSG)
        await client.aclose()
    assert info.value.kind == "exhausted" and info.value.retryable
    assert len(sim.records) == 3


async def test_per_task_retry_budget_is_shared_by_the_tasks_calls():
    failed_once: set[str] = set()

    def policy(request: dict) -> str:
        text = request["messages"][0]["content"]
        if text == "always fails" or text not in failed_once:
            failed_once.add(text)
            raise SimFault(500)
        return "ok"

    async with SimServer(SimConfig(policy=policy)) as sim:
        client = sim_client(sim, retry={"task_retry_budget": 2, "max_attempts": 10})
        await client.complete([{"role": "user", "content": "flaky"}], task_id="t1")  # spends 1 retry
        with pytest.raises(LLMCallError) as info:
            await client.complete([{"role": "user", "content": "always fails"}], task_id="t1")
        other = await client.complete([{"role": "user", "content": "flaky too"}], task_id="t2")
        await client.aclose()
    assert info.value.kind == "budget" and "t1" in str(info.value)
    assert client.retry.task_retries("t1") == 2
    assert len(sim.records) == 2 + 2 + 2  # flaky: 2, always fails: 1 + 1 retry, then budget; t2: 2
    assert other.choices == ["ok"]  # another task's budget is untouched


async def test_failover_routes_around_a_failing_endpoint():
    async with SimServer(SimConfig(api_key="good")) as good, SimServer(SimConfig()) as other:
        providers = {
            "default_model": "sim-model",
            "retry": {"base_s": 0.01},
            "endpoints": [
                {"name": "bad-key", "kind": "openai-compatible", "base_url": good.url, "api_key": "wrong-key-123"},
                {"name": "ok", "kind": "openai-compatible", "base_url": other.url},
            ],
        }
        client = LLMClient.from_config(providers, cache_enabled=False, env={})
        # Idle endpoints tie and the tie goes random: call until the bad one has been tried (six
        # calls missed it 1 time in 64, a CI failure), then six more that must all avoid it.
        calls = 0
        while not good.records and calls < 64:
            await client.complete([{"role": "user", "content": f"f{calls}"}])
            calls += 1
        for i in range(6):
            await client.complete([{"role": "user", "content": f"g{i}"}])
        stats = client.stats()
        await client.aclose()
    assert stats["run"]["failures"] == 0
    assert stats["endpoints"]["bad-key/sim-model"]["disabled"].startswith("auth")
    assert len(good.records) == 1 and len(other.records) == calls + 6


async def test_503_with_retry_after_waits_as_asked():
    policy = scripted(SimFault(503, "overloaded", retry_after=0.3))
    async with SimServer(SimConfig(policy=policy)) as sim:
        client = sim_client(sim)
        await client.complete(MSG)
        await client.aclose()
    first, second = sim.records
    assert (first.status, second.status) == (503, 200)
    assert second.t - first.t >= 0.3
