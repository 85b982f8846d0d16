"""The providers file: which endpoints serve which models, their limits, retries and prices.

Format: TOML (read with the standard library's tomllib) or JSON with the same schema; see
docs/design/llm.md. Secrets may be written as `env:NAME` so files hold none. Without a file the
environment decides: OPENAI_API_KEY / OPENAI_BASE_URL and AZURE_OPENAI_API_KEY /
AZURE_OPENAI_ENDPOINT each give one endpoint serving any model ("*").
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from harness.base.errors import ConfigError
from harness.base.redact import register_secret

Kind = Literal["openai", "azure", "openai-compatible"]
DEFAULT_AZURE_API_VERSION = "2024-10-21"
_KEY_ENV = {"openai": "OPENAI_API_KEY", "azure": "AZURE_OPENAI_API_KEY", "openai-compatible": None}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointConfig(_Strict):
    """One provider connection serving one or more models; limits apply per (endpoint, model)."""

    name: str | None = None
    kind: Kind = "openai"
    models: list[str] = Field(default_factory=lambda: ["*"])
    # Model name sent to the API when it differs from the name callers use (Azure: deployment).
    served_model: str | None = None
    base_url: str | None = None
    azure_endpoint: str | None = None
    api_version: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float = Field(120.0, gt=0)
    rpm: int | None = Field(None, gt=0)
    tpm: int | None = Field(None, gt=0)
    max_in_flight: int = Field(32, ge=1)
    min_in_flight: int = Field(1, ge=1)
    # Rate windows: providers count per minute; tests shrink the window to run fast.
    window_s: float = Field(60.0, gt=0)
    window_margin_s: float | None = Field(None, ge=0)
    burst_s: float = Field(1.0, gt=0)
    adapt_factor: float = Field(0.7, gt=0, lt=1)
    adapt_cooldown_s: float = Field(5.0, ge=0)
    supports_n: bool = True
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    # Chat requests: "fast" (aiohttp + orjson, harness/llm/transport.py) or "sdk" (the openai SDK's
    # own pipeline, ~10x the CPU per call). Azure always uses the SDK.
    transport: Literal["fast", "sdk"] = "fast"
    default_completion_tokens: int = Field(512, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _model_alias(cls, data: object) -> object:
        # `model = "x"` is shorthand for `models = ["x"]`.
        if isinstance(data, dict) and "model" in data:
            data = dict(data)
            model = data.pop("model")
            if "models" in data:
                raise ValueError("give either `model` or `models`, not both")
            data["models"] = [model]
        return data

    @model_validator(mode="after")
    def _check(self) -> EndpointConfig:
        if self.min_in_flight > self.max_in_flight:
            raise ValueError("min_in_flight must be <= max_in_flight")
        if self.served_model and len(self.models) != 1:
            raise ValueError("served_model needs exactly one entry in `models`")
        return self


class RetryConfig(_Strict):
    max_attempts: int = Field(10, ge=1)  # per call, first try included
    task_retry_budget: int = Field(200, ge=0)  # retries summed over one task's calls
    base_s: float = Field(1.0, ge=0)
    cap_s: float = Field(60.0, ge=0)
    max_retry_after_s: float = Field(300.0, ge=0)


class PriceConfig(_Strict):
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(0.0, ge=0)


class ProvidersConfig(_Strict):
    default_model: str | None = None
    embedding_model: str | None = None
    tokenizer: Literal["chars", "tiktoken"] = "chars"
    retry: RetryConfig = Field(default_factory=RetryConfig)
    endpoints: list[EndpointConfig] = Field(default_factory=list)
    prices: dict[str, PriceConfig] = Field(default_factory=dict)
    prices_file: str | None = None


@dataclass(frozen=True)
class ResolvedEndpoint:
    """An endpoint with env: references resolved. `api_key` never leaves the process."""

    index: int
    name: str
    config: EndpointConfig
    api_key: str = ""
    base_url: str | None = None
    azure_endpoint: str | None = None
    api_version: str | None = None
    key_source: str = ""  # "env:NAME" or "file": named in auth errors, never the value

    def __repr__(self) -> str:  # keep the key out of reprs and tracebacks
        return f"ResolvedEndpoint(name={self.name!r}, kind={self.config.kind!r})"


def _resolve(value: str | None, where: str, env: Mapping[str, str]) -> str | None:
    if value is None or not value.startswith("env:"):
        return value
    name = value[4:]
    if name not in env or not env[name]:
        raise ConfigError(f"{where}: environment variable {name} is not set")
    return env[name]


def endpoint_name(endpoint: EndpointConfig, index: int) -> str:
    """The endpoint's name in logs, stats and limits: as configured, else kind + position."""
    return endpoint.name or f"{endpoint.kind}{index}"


def resolve_endpoints(config: ProvidersConfig, env: Mapping[str, str], source: str) -> list[ResolvedEndpoint]:
    resolved = []
    for i, ep in enumerate(config.endpoints):
        where = f"{source}: endpoints[{i}]"
        raw_key = ep.api_key.get_secret_value() if ep.api_key else None
        key_source = raw_key if raw_key and raw_key.startswith("env:") else "file"
        if raw_key is None and _KEY_ENV[ep.kind]:
            raw_key, key_source = f"env:{_KEY_ENV[ep.kind]}", f"env:{_KEY_ENV[ep.kind]}"
        if raw_key is None:
            raw_key, key_source = "EMPTY", "none"  # local servers (vLLM, llama.cpp) ignore it
        key = _resolve(raw_key, f"{where}.api_key", env) or ""
        register_secret(key)
        base_url = _resolve(ep.base_url, f"{where}.base_url", env)
        if ep.kind == "openai" and base_url is None:
            base_url = env.get("OPENAI_BASE_URL") or None
        if ep.kind == "openai-compatible" and not base_url:
            raise ConfigError(f"{where}.base_url: required for kind 'openai-compatible'")
        azure_endpoint = None
        if ep.kind == "azure":
            azure_endpoint = _resolve(ep.azure_endpoint or "env:AZURE_OPENAI_ENDPOINT", f"{where}.azure_endpoint", env)
        api_version = ep.api_version or env.get("OPENAI_API_VERSION") or DEFAULT_AZURE_API_VERSION
        name = endpoint_name(ep, i)
        resolved.append(
            ResolvedEndpoint(i, name, ep, key, base_url, azure_endpoint, api_version, key_source)
        )
    names = [r.name for r in resolved]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: endpoint names must be unique, got {names}")
    return resolved


def _validation_message(source: str, error: ValidationError) -> str:
    first = error.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{source}: {loc}: {first['msg']}{more}"


def parse_providers(data: object, source: str = "providers config") -> ProvidersConfig:
    try:
        return ProvidersConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_validation_message(source, e)) from None  # pydantic echoes input values


def load_providers_file(path: str | Path) -> ProvidersConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read providers file ({e.strerror})") from e
    try:
        if path.suffix == ".toml":
            data: object = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"{path}: providers file must end in .toml or .json")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()}: {e}") from e
    return parse_providers(data, str(path))


def config_from_env(env: Mapping[str, str]) -> ProvidersConfig:
    endpoints: list[dict[str, object]] = []
    if env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL"):
        base_url = env.get("OPENAI_BASE_URL")
        endpoints.append(
            {
                "name": "openai" if not base_url else "openai-compatible",
                "kind": "openai" if not base_url else "openai-compatible",
                "base_url": "env:OPENAI_BASE_URL" if base_url else None,
                "api_key": "env:OPENAI_API_KEY" if env.get("OPENAI_API_KEY") else None,
            }
        )
    if env.get("AZURE_OPENAI_API_KEY") and env.get("AZURE_OPENAI_ENDPOINT"):
        endpoints.append({"name": "azure", "kind": "azure"})
    return parse_providers({"endpoints": endpoints}, "environment")


def load_providers(
    path: str | Path | None, env: Mapping[str, str] | None = None
) -> tuple[ProvidersConfig, list[ResolvedEndpoint]]:
    """Read the providers file (or the environment when `path` is None) and resolve secrets."""
    env = os.environ if env is None else env
    config = load_providers_file(path) if path is not None else config_from_env(env)
    return config, resolve_endpoints(config, env, str(path) if path else "environment")
