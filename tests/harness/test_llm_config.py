"""The providers file and the environment decide endpoints, limits, retries and prices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.base.errors import ConfigError
from harness.llm.client import LLMClient
from harness.llm.config import load_providers
from harness.llm.retry import LLMCallError

EXAMPLE = """
default_model = "gpt-4o"
embedding_model = "text-embedding-3-small"

[retry]
max_attempts = 6
task_retry_budget = 50

[[endpoints]]
name = "openai"
kind = "openai"
api_key = "env:OPENAI_API_KEY"
models = ["gpt-4o", "text-embedding-3-small"]
rpm = 500
tpm = 30000

[[endpoints]]
name = "azure-east"
kind = "azure"
model = "gpt-4o"
served_model = "gpt4o-prod"
azure_endpoint = "env:AZURE_OPENAI_ENDPOINT"
api_key = "env:AZURE_OPENAI_API_KEY"
max_in_flight = 8

[[endpoints]]
name = "local"
kind = "openai-compatible"
base_url = "http://127.0.0.1:8000/v1"
supports_n = false

[prices."gpt-4o"]
input_per_mtok = 2.0
output_per_mtok = 8.0
"""
ENV = {"OPENAI_API_KEY": "k1-aaaa", "AZURE_OPENAI_ENDPOINT": "https://x.example", "AZURE_OPENAI_API_KEY": "k2-bbbb"}


def test_toml_file_gives_several_endpoints_per_model_and_a_wildcard(tmp_path: Path):
    path = tmp_path / "providers.toml"
    path.write_text(EXAMPLE)
    _config, endpoints = load_providers(path, env=ENV)
    assert [e.name for e in endpoints] == ["openai", "azure-east", "local"]
    assert endpoints[1].azure_endpoint == "https://x.example" and endpoints[1].api_key == "k2-bbbb"
    assert endpoints[2].api_key == "EMPTY"  # local servers need no key
    client = LLMClient.from_config(path, env=ENV)
    assert {e.name for e in client.router.endpoints_for("gpt-4o")} == {"openai/gpt-4o", "azure-east/gpt-4o"}
    assert [e.name for e in client.router.endpoints_for("llama-3")] == ["local/llama-3"]  # "*" by default
    assert client.router.endpoints_for("gpt-4o")[1].served_model == "gpt4o-prod"
    assert client.retry.config.max_attempts == 6
    assert client.accountant.prices.lookup("gpt-4o").input_per_mtok == 2.0  # overrides the shipped table


def test_json_file_with_the_same_schema(tmp_path: Path):
    path = tmp_path / "providers.json"
    path.write_text(json.dumps({"endpoints": [{"kind": "openai-compatible", "base_url": "http://127.0.0.1:1/v1",
                                               "model": "m", "rpm": 10}]}))
    _config, endpoints = load_providers(path, env={})
    assert endpoints[0].config.models == ["m"] and endpoints[0].config.rpm == 10


def test_environment_alone_configures_openai_and_azure():
    env = {"OPENAI_API_KEY": "k", "AZURE_OPENAI_API_KEY": "a", "AZURE_OPENAI_ENDPOINT": "https://az.example"}
    _config, endpoints = load_providers(None, env=env)
    assert [(e.config.kind, e.config.models) for e in endpoints] == [("openai", ["*"]), ("azure", ["*"])]
    _, compat = load_providers(None, env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert compat[0].config.kind == "openai-compatible" and compat[0].base_url == "http://127.0.0.1:9/v1"


async def test_no_provider_means_a_clear_error_only_when_a_request_must_be_paid():
    client = LLMClient.from_config(None, env={})
    with pytest.raises(LLMCallError) as info:
        await client.complete([{"role": "user", "content": "x"}], model="gpt-4o")
    await client.aclose()
    assert "no endpoint serves model 'gpt-4o'" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[endpoints]]\nkind = "openai"\nrpm = -1\n', "endpoints.0.rpm"),
        ('[[endpoints]]\nkind = "openai"\nspeed = 3\n', "endpoints.0.speed"),
        ('[[endpoints]]\nkind = "openai-compatible"\n', "base_url"),
        ("endpoints = [", "not valid TOML"),
    ],
)
def test_bad_files_fail_with_the_file_and_field(tmp_path: Path, text: str, expected: str):
    path = tmp_path / "providers.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_providers(path, env={"OPENAI_API_KEY": "k"})
    assert str(path) in str(info.value) and expected in str(info.value)
