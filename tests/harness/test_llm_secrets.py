"""API keys never appear in log lines, exception text, stats, config dumps or the cache file."""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path

import pytest

from harness.base.errors import ConfigError
from harness.base.redact import redact
from harness.llm.client import LLMClient
from harness.llm.config import load_providers
from harness.llm.retry import LLMCallError
from harness.llm.sim import SimConfig, SimServer

FAKE_KEY = "sk-proj-FAKEKEY4TEST-9f8e7d6c5b4a39281706"
ALSO_FAKE = "zz-nonstandard-secret-5551234"  # not key-shaped: only the registry catches it


async def test_no_api_key_in_any_log_line_exception_or_file(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)  # everything, the SDK and HTTP transport included
    env = {"SIM_KEY": FAKE_KEY, "OTHER_KEY": ALSO_FAKE}
    toml = tmp_path / "providers.toml"
    errors: list[BaseException] = []
    async with SimServer(SimConfig(api_key="the-real-one")) as strict, SimServer(SimConfig(fail_rate=0.5)) as flaky:
        toml.write_text(f"""
default_model = "sim-model"
[retry]
base_s = 0.01
[[endpoints]]
name = "strict"
kind = "openai-compatible"
base_url = "{strict.url}"
api_key = "env:SIM_KEY"
[[endpoints]]
name = "flaky"
kind = "openai-compatible"
base_url = "{flaky.url}"
api_key = "env:OTHER_KEY"
""")
        client = LLMClient.from_config(toml, cache_path=tmp_path / "run" / "cache.sqlite", env=env)
        for i in range(6):  # the 401 endpoint is disabled (a warning is logged), the flaky one retried
            await client.complete([{"role": "user", "content": f"q{i}"}])
        await client.aclose()

        # The only endpoint has the wrong key: the call fails at once.
        lone = tmp_path / "lone.json"
        lone.write_text(json.dumps({"default_model": "sim-model", "endpoints": [
            {"kind": "openai-compatible", "base_url": strict.url, "api_key": "env:SIM_KEY"}]}))
        client2 = LLMClient.from_config(lone, env=env)
        try:
            await client2.complete([{"role": "user", "content": "x"}])
        except LLMCallError as e:
            errors.append(e)
            logging.getLogger("test").exception("call failed")  # as an engine would log it
        await client2.aclose()
    assert errors, "the wrong key must fail"
    texts = [caplog.text, json.dumps(client.stats()), client.config.model_dump_json(), repr(client.router.specs)]
    for err in errors:
        texts += [str(err), repr(err), "".join(traceback.format_exception(err))]
    texts += [p.read_bytes().decode("latin-1") for p in (tmp_path / "run").iterdir()]
    for text in texts:
        assert FAKE_KEY not in text and ALSO_FAKE not in text
        assert "FAKEKEY4TEST" not in text
    assert "401" in str(errors[0])
    assert "strict" in caplog.text  # the failover warning was logged, scrubbed


def test_missing_env_reference_names_the_variable_not_a_value(tmp_path: Path):
    path = tmp_path / "p.toml"
    path.write_text('[[endpoints]]\nkind = "openai"\napi_key = "env:NOT_SET_ANYWHERE"\n')
    with pytest.raises(ConfigError) as info:
        load_providers(path, env={})
    assert "NOT_SET_ANYWHERE" in str(info.value) and str(path) in str(info.value)


def test_literal_key_in_a_bad_file_is_not_echoed_by_validation_errors(tmp_path: Path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"endpoints": [{"kind": "nope", "api_key": FAKE_KEY}]}))
    with pytest.raises(ConfigError) as info:
        load_providers(path, env={})
    assert FAKE_KEY not in str(info.value) and "endpoints.0.kind" in str(info.value)


def test_redact_scrubs_key_shaped_tokens_even_unregistered():
    assert "sk-abcdefghijkl" not in redact("Incorrect API key provided: sk-abcdefghijklmnop.")
    assert "Bearer" not in redact("Authorization: Bearer abcdefghijk123")
