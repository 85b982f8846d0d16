"""Batching with n, its transparent fallback, cost accounting, embeddings, Azure routing."""

from __future__ import annotations

import base64
import math
import struct
import zlib

import pytest
from helpers import sim_client

from harness.llm.accounting import PriceTable
from harness.llm.client import LLMClient
from harness.llm.config import PriceConfig
from harness.llm.sim import SimConfig, SimServer
from harness.llm.tokens import image_url_tokens, prompt_tokens
from harness.llm.types import Usage


def png_data_url(width: int, height: int) -> str:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + chunk).decode()


def numbered(request: dict) -> list[str]:
    return [f"choice {i}" for i in range(request.get("n") or 1)]


async def test_n_asks_for_k_choices_in_one_request():
    async with SimServer(SimConfig(policy=numbered)) as sim:
        client = sim_client(sim)
        result = await client.complete([{"role": "user", "content": "pick"}], n=3, temperature=1.0)
        await client.aclose()
    assert result.choices == ["choice 0", "choice 1", "choice 2"]
    assert [(r.n, r.status) for r in sim.records] == [(3, 200)]


async def test_server_rejecting_n_falls_back_to_concurrent_requests_transparently():
    async with SimServer(SimConfig(no_n=True)) as sim:
        client = sim_client(sim)
        first = await client.complete([{"role": "user", "content": "a"}], n=3)
        second = await client.complete([{"role": "user", "content": "b"}], n=2)
        stats = client.stats()
        await client.aclose()
    assert len(first.choices) == 3 and len(second.choices) == 2
    # Discovered once (one 400), then single requests only.
    assert [r.status for r in sim.records].count(400) == 1
    assert sorted(r.n for r in sim.records if r.status == 200) == [1] * 5
    assert stats["endpoints"]["sim/sim-model"]["supports_n"] is False
    assert stats["run"]["failures"] == 0
    assert first.usage.prompt_tokens == 3 * sim_prompt_tokens("a")  # the prompt was paid per request


def sim_prompt_tokens(text: str) -> int:
    return prompt_tokens([{"role": "user", "content": text}])


async def test_endpoint_configured_without_n_never_sends_n():
    async with SimServer(SimConfig(no_n=True)) as sim:
        client = sim_client(sim, supports_n=False)
        result = await client.complete([{"role": "user", "content": "a"}], n=4)
        await client.aclose()
    assert len(result.choices) == 4
    assert [r.status for r in sim.records] == [200] * 4


async def test_server_ignoring_n_gets_the_missing_choices_by_single_requests():
    async with SimServer(SimConfig(policy=lambda request: ["only one"])) as sim:
        client = sim_client(sim)
        result = await client.complete([{"role": "user", "content": "a"}], n=3)
        await client.aclose()
    assert result.choices == ["only one"] * 3
    assert [r.n for r in sim.records] == [3, 1, 1]


async def test_cost_is_counted_per_call_task_model_and_run_from_the_price_table():
    prices = {"sim-model": {"input_per_mtok": 3.0, "output_per_mtok": 15.0}}
    async with SimServer(SimConfig(policy=lambda r: "x" * 40)) as sim:  # 10 completion tokens
        client = sim_client(sim, top={"prices": prices})
        a = await client.complete([{"role": "user", "content": "q" * 400}], task_id="t1")
        b = await client.complete([{"role": "user", "content": "r" * 800}], task_id="t1", n=2)
        c = await client.complete([{"role": "user", "content": "s" * 40}], task_id="t2")
        stats = client.stats()
        await client.aclose()
    for result in (a, b, c):
        expected = (result.usage.prompt_tokens * 3.0 + result.usage.completion_tokens * 15.0) / 1e6
        assert result.cost_usd == pytest.approx(expected)
        assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert b.usage.completion_tokens == 20
    assert stats["tasks"]["t1"]["cost_usd"] == pytest.approx(a.cost_usd + b.cost_usd, abs=1e-6)
    assert stats["tasks"]["t1"]["prompt_tokens"] == a.usage.prompt_tokens + b.usage.prompt_tokens
    assert stats["tasks"]["t2"]["calls"] == 1
    total = a.cost_usd + b.cost_usd + c.cost_usd
    assert stats["run"]["cost_usd"] == pytest.approx(total, abs=1e-6)
    assert stats["models"]["sim-model"]["cost_usd"] == pytest.approx(total, abs=1e-6)
    assert stats["run"]["calls"] == 3 and stats["run"]["requests"] == 3


def test_price_table_matches_dated_model_names_and_reports_unpriced_ones():
    table = PriceTable.load(overrides={"my-model": PriceConfig(input_per_mtok=1.0, output_per_mtok=2.0)})
    assert table.cost("my-model", Usage(1_000_000, 500_000)) == pytest.approx(2.0)
    assert table.lookup("gpt-4o-2024-08-06") == table.lookup("gpt-4o")
    assert table.lookup("gpt-4o-mini-2024-07-18") == table.lookup("gpt-4o-mini")
    assert table.cost("mystery", Usage(10, 10)) == 0.0 and "mystery" in table.unpriced


def test_image_tokens_follow_openais_tile_formula_from_the_png_header():
    assert image_url_tokens(png_data_url(1920, 1080)) == 85 + 170 * 6  # 1365x768 -> 3x2 tiles
    assert image_url_tokens(png_data_url(512, 512)) == 85 + 170
    assert image_url_tokens(png_data_url(4096, 4096)) == 85 + 170 * 4  # 2048 -> 768x768
    assert image_url_tokens(png_data_url(1920, 1080), "low") == 85
    msgs = [{"role": "user", "content": [{"type": "text", "text": "abcd" * 10},
                                          {"type": "image_url", "image_url": {"url": png_data_url(1280, 720)}}]}]
    assert prompt_tokens(msgs) == 3 + 4 + 10 + 85 + 170 * 6


async def test_images_reach_the_server_and_are_counted_in_usage():
    async with SimServer(SimConfig()) as sim:
        client = sim_client(sim)
        msgs = [{"role": "user", "content": [{"type": "text", "text": "what is on screen?"},
                                              {"type": "image_url", "image_url": {"url": png_data_url(1920, 1080)}}]}]
        result = await client.complete(msgs)
        await client.aclose()
    assert result.usage.prompt_tokens > 1105
    assert result.choices == ["```python\npyautogui.click(100, 100)\n```"]


async def test_embeddings_are_limited_counted_and_meaningful():
    async with SimServer(SimConfig(fail_rate=0.3, seed=3)) as sim:
        client = sim_client(sim, rpm=1000)
        vectors = await client.embed(["open the terminal window", "open a terminal window", "bake bread"],
                                     task_id="t")
        stats = client.stats()
        await client.aclose()

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    assert len(vectors) == 3
    assert cos(vectors[0], vectors[1]) > 0.6 > cos(vectors[0], vectors[2])
    assert stats["models"]["sim-embed"]["prompt_tokens"] > 0
    assert stats["tasks"]["t"]["failures"] == 0


async def test_azure_endpoint_routes_to_its_deployment():
    async with SimServer(SimConfig(api_key="azure-secret-key")) as sim:
        providers = {
            "endpoints": [{"name": "az", "kind": "azure", "model": "gpt-4o", "served_model": "my-deployment",
                           "azure_endpoint": sim.root, "api_key": "env:AZ_KEY"}],
        }
        client = LLMClient.from_config(providers, cache_enabled=False, env={"AZ_KEY": "azure-secret-key"})
        result = await client.complete([{"role": "user", "content": "hi"}], model="gpt-4o")
        await client.aclose()
    assert result.choices and sim.records[0].path == "/openai/deployments/my-deployment/chat/completions"
    assert result.cost_usd > 0  # priced as gpt-4o
