"""llm-sim: the OpenAI-compatible stand-in, its limits, stats, policies, and `bench llm`."""

from __future__ import annotations

import subprocess
import sys

import aiohttp
import pytest

from harness.base.errors import ConfigError
from harness.llm.bench import run_bench
from harness.llm.sim import DEFAULT_ANSWER, SimConfig, SimServer, load_policy, serve_sim


def echo_policy(request: dict) -> list[str]:
    """Used by module:function loading below: answers with the last user text, n times."""
    text = request["messages"][-1]["content"]
    return [f"echo {text}"] * (request.get("n") or 1)


async def test_chat_models_embeddings_and_stats_over_http():
    async with serve_sim(SimConfig(rpm=3, window_s=30)) as url, aiohttp.ClientSession() as http:
        body = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}], "n": 2}
        async with http.post(f"{url}/chat/completions", json=body) as r:
            chat = await r.json()
            assert r.status == 200 and r.headers["x-ratelimit-remaining-requests"] == "2"
        assert [c["message"]["content"] for c in chat["choices"]] == [DEFAULT_ANSWER] * 2
        assert chat["usage"]["prompt_tokens"] > 0 and chat["usage"]["completion_tokens"] > 0
        async with http.get(f"{url}/models") as r:
            assert "sim-model" in [m["id"] for m in (await r.json())["data"]]
        async with http.post(f"{url}/embeddings", json={"model": "sim-embed", "input": ["a b", "a b"]}) as r:
            data = (await r.json())["data"]
            assert data[0]["embedding"] == data[1]["embedding"]
        async with http.post(f"{url}/embeddings", json={"model": "e", "input": "c"}) as r:
            assert r.status == 200
        async with http.post(f"{url}/chat/completions", json=body) as r:
            assert r.status == 429
            assert float(r.headers["retry-after-ms"]) > 25_000  # the first send leaves the window at 30 s
            assert r.headers["x-ratelimit-remaining-requests"] == "0"
            assert r.headers["x-ratelimit-reset-requests"].endswith("s")
        async with http.get(url.removesuffix("/v1") + "/sim/stats") as r:
            stats = await r.json()
    assert stats["requests"] == 4 and stats["rate_limited"] == 1
    assert stats["status"] == {"200": 3, "429": 1}
    assert stats["max_in_window"] == 4 and stats["per_second"][0][1] == 4


async def test_policy_can_be_given_as_module_function():
    policy = load_policy("tests.harness.test_llm_sim:echo_policy")
    async with serve_sim(SimConfig(policy="tests.harness.test_llm_sim:echo_policy")) as url, aiohttp.ClientSession() as http:
        body = {"model": "m", "messages": [{"role": "user", "content": "ping"}]}
        async with http.post(f"{url}/chat/completions", json=body) as r:
            assert (await r.json())["choices"][0]["message"]["content"] == "echo ping"
    assert policy({"messages": [{"role": "user", "content": "x"}]}) == ["echo x"]
    with pytest.raises(ConfigError):
        load_policy("no_such_module_xyz:f")


def test_sim_refuses_to_bind_anything_but_loopback():
    with pytest.raises(ConfigError, match="loopback"):
        SimServer(SimConfig(host="0.0.0.0"))


def test_llm_sim_and_bench_commands_are_registered():
    out = subprocess.run([sys.executable, "-m", "harness", "llm-sim", "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "--latency-dist" in out.stdout and "--no-n" in out.stdout
    out = subprocess.run([sys.executable, "-m", "harness", "bench", "llm", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "--fail-rate" in out.stdout


async def test_bench_llm_scaled_down_keeps_the_limit_and_loses_nothing():
    result = await run_bench(rpm=20, clients=16, calls=50, fail_rate=0.05, latency_ms=20, window_s=1.0)
    assert result["completed"] == 50 and result["failed"] == 0
    assert result["max_rpm_observed"] <= 20
    assert result["server_429"] == 0
    assert result["throughput_ratio"] >= 0.75
