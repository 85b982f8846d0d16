"""Endpoints (one provider connection x one model, with its own limits) and the router.

Every endpoint talks through the openai SDK's async client with max_retries=0: our retry layer
is the only one. Endpoints sharing kind, URL and key share one SDK client (one connection pool).
The router sends each attempt to the least-loaded healthy endpoint serving the model.
"""

from __future__ import annotations

import logging
import random
import statistics
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import openai

from harness.llm.config import EndpointConfig, ResolvedEndpoint
from harness.llm.limits import AdaptiveLimit, EndpointLimits, LocalLimits, RateGate
from harness.llm.retry import Failure, LLMCallError, MalformedResponse, parse_duration
from harness.llm.transport import FastChat, parse_chat
from harness.llm.types import Usage

log = logging.getLogger(__name__)
_MAX_HEADER_PAUSE_S = 120.0

# Makes the limits of one (endpoint, model) pair; the default keeps them in this process.
LimitsFactory = Callable[[ResolvedEndpoint, str], EndpointLimits]


def local_limits(config: EndpointConfig) -> LocalLimits:
    """The endpoint's configured in-flight cap and rate gate, kept in this process."""
    return LocalLimits(
        AdaptiveLimit(config.max_in_flight, config.min_in_flight, config.adapt_factor, config.adapt_cooldown_s),
        RateGate(config.rpm, config.tpm, window_s=config.window_s, margin_s=config.window_margin_s,
                 burst_s=config.burst_s),
    )


def _local_factory(spec: ResolvedEndpoint, model: str) -> EndpointLimits:
    return local_limits(spec.config)


def make_sdk_client(spec: ResolvedEndpoint) -> openai.AsyncOpenAI:
    timeout = spec.config.timeout_s
    if spec.config.kind == "azure":
        return openai.AsyncAzureOpenAI(
            azure_endpoint=spec.azure_endpoint or "",
            api_key=spec.api_key,
            api_version=spec.api_version,
            max_retries=0,
            timeout=timeout,
        )
    return openai.AsyncOpenAI(api_key=spec.api_key, base_url=spec.base_url, max_retries=0, timeout=timeout)


@dataclass
class RawChat:
    choices: list[str]
    finish_reasons: list[str | None]
    usage: Usage


@dataclass
class RawEmbed:
    vectors: list[list[float]]
    usage: Usage


class Endpoint:
    """Limits and health of one (connection, model) pair."""

    def __init__(
        self,
        spec: ResolvedEndpoint,
        model: str,
        sdk: openai.AsyncOpenAI,
        fast: FastChat | None = None,
        limits: EndpointLimits | None = None,
    ) -> None:
        cfg = spec.config
        self.spec = spec
        self.model = model
        self.served_model = cfg.served_model or model
        self.name = f"{spec.name}/{model}"
        self.sdk = sdk
        self.fast = fast  # the lean chat path (harness/llm/transport.py); None = through the SDK
        self._poster: FastChat | None = None  # for call_api when chat goes through the SDK
        self.supports_n = cfg.supports_n
        self.disabled: str | None = None  # reason, after an auth or quota failure
        # In-flight cap and rate gate: in this process, or leased from a cluster-wide limiter.
        self.limits: EndpointLimits = limits if limits is not None else local_limits(cfg)
        self.requests = 0
        self.errors = 0
        self.rate_limited = 0
        self.waits: deque[float] = deque(maxlen=100_000)  # seconds each send waited on our limits

    # -- limits ------------------------------------------------------------------------------------
    @asynccontextmanager
    async def slot(self, tokens: int) -> AsyncIterator[object]:
        """In-flight slot and rate permit for one send; the ticket goes to `limits.settle`."""
        start = anyio.current_time()
        async with self.limits.slot(tokens) as ticket:
            self.waits.append(anyio.current_time() - start)
            self.requests += 1
            yield ticket

    def load(self) -> float:
        """Queue depth relative to width; lower is better."""
        return self.limits.load()

    def on_success(self) -> None:
        self.limits.on_success()

    def on_failure(self, failure: Failure, backoff_s: float, max_pause_s: float) -> None:
        self.errors += 1
        if failure.kind == "rate_limit":
            self.rate_limited += 1
            # The whole endpoint holds back, not just this caller: every queued request would hit
            # the same limit. Without a header, pause for our own backoff. The in-flight cap shrinks.
            pause = failure.retry_after if failure.retry_after is not None else backoff_s
            self.limits.on_rate_limited(min(pause, max_pause_s))
        elif failure.kind in ("auth", "quota"):
            self.disabled = f"{failure.kind}: {failure.message}"

    def _observe_headers(self, headers: Mapping[str, str]) -> None:
        """A success that used the provider's last request or token: hold until its reset."""
        for kind in ("requests", "tokens"):
            remaining, reset = headers.get(f"x-ratelimit-remaining-{kind}"), headers.get(f"x-ratelimit-reset-{kind}")
            if remaining is not None and reset and remaining.strip() in {"0", "0.0"}:
                seconds = parse_duration(reset)
                if seconds:
                    self.limits.pause(min(seconds, _MAX_HEADER_PAUSE_S))

    # -- calls -------------------------------------------------------------------------------------
    async def chat(self, params: dict[str, Any]) -> RawChat:
        cfg = self.spec.config
        kwargs = dict(params)
        if "max_tokens" in kwargs and cfg.max_tokens_param != "max_tokens":
            kwargs[cfg.max_tokens_param] = kwargs.pop("max_tokens")
        extra = kwargs.pop("extra_body", None) or None
        if kwargs.get("n") == 1:
            del kwargs["n"]  # the default; some compatible servers reject the parameter outright
        if self.fast is not None:  # its total timeout is the deadline (no second cancel scope per call)
            body = {"model": self.served_model, **kwargs, **(extra or {})}
            obj, headers = await self.fast.post(body, cfg.timeout_s)
            self._observe_headers(headers)
            texts, finish, prompt, completion = parse_chat(obj)
            return RawChat(choices=texts, finish_reasons=finish, usage=Usage(prompt, completion))
        with anyio.fail_after(cfg.timeout_s + 1):  # backstop over the SDK's per-phase timeouts
            raw = await self.sdk.chat.completions.with_raw_response.create(
                model=self.served_model, extra_body=extra, timeout=cfg.timeout_s, **kwargs
            )
        self._observe_headers(raw.headers)
        response = raw.parse()
        choices = getattr(response, "choices", None)
        if not choices:
            raise MalformedResponse("no choices in response")
        ordered = sorted(choices, key=lambda c: c.index or 0)
        usage = response.usage
        return RawChat(
            choices=[(c.message.content if c.message else None) or "" for c in ordered],
            finish_reasons=[c.finish_reason for c in ordered],
            usage=Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0) if usage else Usage(),
        )

    async def call_api(self, api: str, body: dict[str, Any]) -> Any:
        """One call of a non-chat API (harness/llm/apis.py) through this endpoint's HTTP session."""
        from harness.llm.apis import PATHS, RawApi, headers_for, parse_usage

        cfg = self.spec.config
        if self._poster is None:  # the lean path even where chat goes through the SDK
            self._poster = self.fast or FastChat(self.sdk, self.spec.api_key)
        obj, headers = await self._poster.post({"model": self.served_model, **body}, cfg.timeout_s, path=PATHS[api],
                                               headers=headers_for(api, self.spec.api_key, body))
        self._observe_headers(headers)
        return RawApi(obj, parse_usage(api, obj))

    async def embed(self, texts: list[str]) -> RawEmbed:
        cfg = self.spec.config
        with anyio.fail_after(cfg.timeout_s + 1):
            raw = await self.sdk.embeddings.with_raw_response.create(
                model=self.served_model, input=texts, timeout=cfg.timeout_s
            )
        self._observe_headers(raw.headers)
        response = raw.parse()
        data = getattr(response, "data", None)
        if not data or len(data) != len(texts):
            raise MalformedResponse(f"expected {len(texts)} embeddings, got {len(data or [])}")
        vectors = [list(d.embedding) for d in sorted(data, key=lambda d: d.index)]
        usage = response.usage
        return RawEmbed(vectors, Usage(usage.prompt_tokens or 0, 0) if usage else Usage())

    def snapshot(self) -> dict[str, Any]:
        waits = list(self.waits)
        return {
            **self.limits.snapshot(),  # in_flight, limit, max_in_flight, waiting, the rate window
            "requests": self.requests,
            "errors": self.errors,
            "rate_limited": self.rate_limited,
            "supports_n": self.supports_n,
            "disabled": self.disabled,
            "p50_wait_ms": round(statistics.median(waits) * 1000, 1) if waits else 0.0,
        }


class Router:
    """Model name -> endpoints; picks the least loaded healthy one per attempt."""

    def __init__(self, specs: list[ResolvedEndpoint], limits: LimitsFactory | None = None) -> None:
        self.specs = specs
        self._limits = limits or _local_factory
        self._sdks: dict[tuple[str, str | None, str | None, str, str | None], openai.AsyncOpenAI] = {}
        self._fast: dict[tuple[str, str | None, str | None, str, str | None], FastChat] = {}
        self._endpoints: dict[tuple[str, str], Endpoint] = {}
        self._rng = random.Random()

    def _sdk(self, spec: ResolvedEndpoint) -> openai.AsyncOpenAI:
        key = (spec.config.kind, spec.base_url, spec.azure_endpoint, spec.api_key, spec.api_version)
        if key not in self._sdks:
            self._sdks[key] = make_sdk_client(spec)
        return self._sdks[key]

    def _fast_chat(self, spec: ResolvedEndpoint) -> FastChat | None:
        """The lean chat path for this connection (Azure's deployment routing stays with the SDK)."""
        if spec.config.transport != "fast" or spec.config.kind == "azure":
            return None
        key = (spec.config.kind, spec.base_url, spec.azure_endpoint, spec.api_key, spec.api_version)
        if key not in self._fast:
            self._fast[key] = FastChat(self._sdk(spec), spec.api_key)
        return self._fast[key]

    def endpoints_for(self, model: str) -> list[Endpoint]:
        """Endpoints that list `model` by name; failing that, the wildcard ("*") ones."""
        exact = [s for s in self.specs if model in s.config.models]
        chosen = exact or [s for s in self.specs if "*" in s.config.models]
        endpoints = []
        for spec in chosen:
            key = (spec.name, model)
            if key not in self._endpoints:
                self._endpoints[key] = Endpoint(spec, model, self._sdk(spec), self._fast_chat(spec),
                                                self._limits(spec, model))
            endpoints.append(self._endpoints[key])
        return endpoints

    def pick(self, model: str, *, avoid: set[str] | None = None, need_n: bool = False) -> Endpoint:
        endpoints = self.endpoints_for(model)
        if not endpoints:
            raise LLMCallError(
                f"no endpoint serves model {model!r}: add it to the providers file or set OPENAI_API_KEY",
                kind="config",
            )
        healthy = [e for e in endpoints if e.disabled is None]
        if not healthy:
            reasons = "; ".join(f"{e.name}: {e.disabled}" for e in endpoints)
            raise LLMCallError(f"every endpoint for {model!r} is disabled ({reasons})", kind="disabled")
        if need_n:
            healthy = [e for e in healthy if e.supports_n] or healthy
        fresh = [e for e in healthy if e.name not in (avoid or set())]
        candidates = fresh or healthy
        # Paused endpoints (Retry-After) rank after any that can send now; ties go random.
        return min(candidates, key=lambda e: (e.limits.paused_for() > 0, e.load(), self._rng.random()))

    def any_supports_n(self, model: str) -> bool:
        return any(e.supports_n and e.disabled is None for e in self.endpoints_for(model))

    def all_endpoints(self) -> list[Endpoint]:
        return list(self._endpoints.values())

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            own = [e._poster for e in self._endpoints.values() if e._poster is not None and e._poster is not e.fast]
            for fast in [*self._fast.values(), *own]:
                try:
                    await fast.aclose()
                except Exception as e:  # closing must not mask the run's own outcome
                    log.debug("closing HTTP session failed: %s", type(e).__name__)
            for sdk in self._sdks.values():
                try:
                    await sdk.close()
                except Exception as e:  # closing must not mask the run's own outcome
                    log.debug("closing SDK client failed: %s", type(e).__name__)
