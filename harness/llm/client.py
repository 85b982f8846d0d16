"""LLMClient: the one object agents call. It owns routing, limits, retries, cache and accounting.

One client per run, shared by every task. `complete` and `embed` wait (never fail) while limits
are reached, retry transient errors in one layer, replay cached answers, and merge identical
concurrent requests.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import anyio

from harness.base.errors import ConfigError, ProviderError
from harness.llm import tokens as tok
from harness.llm.accounting import Accountant, PriceTable
from harness.llm.apis import PATHS as API_PATHS
from harness.llm.apis import Api, ApiResponse
from harness.llm.apis import estimate_tokens as estimate_api_tokens
from harness.llm.cache import Cache, ResponseCache, SingleFlight, request_hash, sync_request_hash
from harness.llm.config import (
    ProvidersConfig,
    ResolvedEndpoint,
    load_providers,
    parse_providers,
    resolve_endpoints,
)
from harness.llm.image_key import ScreenMask
from harness.llm.providers import Endpoint, LimitsFactory, RawChat, RawEmbed, Router
from harness.llm.retry import LLMCallError, RetryPolicy, classify, scrub
from harness.llm.types import Completion, Message, Usage

log = logging.getLogger(__name__)
R = TypeVar("R", RawChat, RawEmbed)
C = TypeVar("C", Completion, ApiResponse)
_EMBED_BATCH = 256
_CACHE_VERSION = 2  # 2: inline images enter the key by their sha256


class _NUnsupported(Exception):
    """The endpoint rejected n>1; the caller falls back to concurrent single requests."""


def _payload_size(messages: Sequence[Message]) -> int:
    size = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            size += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict):
                    image = part.get("image_url")
                    size += len(part.get("text", "")) + (len(image.get("url", "")) if isinstance(image, dict) else 0)
    return size


class LLMClient:
    def __init__(
        self,
        config: ProvidersConfig,
        endpoints: list[ResolvedEndpoint],
        *,
        cache: Cache | None = None,
        prices: PriceTable | None = None,
        default_model: str | None = None,
        limits: LimitsFactory | None = None,
        screen_mask: ScreenMask | None = None,
    ) -> None:
        """`cache` and `limits` default to this process's own (a SQLite file, in-process limits);
        a cluster worker passes the shared ones (harness/cluster/llm_services.py). `screen_mask`:
        regions of the sandbox's screen that change with the clock alone, left out of cache keys
        (harness/llm/image_key.py)."""
        self.config = config
        self.screen_mask = screen_mask
        self.default_model = default_model or config.default_model
        self.embedding_model = config.embedding_model
        self.router = Router(endpoints, limits)
        self.retry = RetryPolicy(config.retry)
        self.cache: Cache = cache or ResponseCache(None)
        self.accountant = Accountant(prices or PriceTable.load(file=config.prices_file, overrides=config.prices))
        self._flight = SingleFlight()
        for name in ("httpx2", "httpx"):  # one INFO line per HTTP request drowns the run's own log
            transport_log = logging.getLogger(name)
            if transport_log.level == logging.NOTSET:
                transport_log.setLevel(logging.WARNING)
        if config.tokenizer == "tiktoken" and not tok.use_tiktoken():
            log.warning("tokenizer = 'tiktoken' requested but unavailable: estimating tokens as chars/4")

    @classmethod
    def from_config(
        cls,
        providers: str | Path | ProvidersConfig | Mapping[str, Any] | None,
        *,
        cache_path: str | Path | None = None,
        cache_enabled: bool = True,
        default_model: str | None = None,
        env: Mapping[str, str] | None = None,
        cache: Cache | None = None,
        limits: LimitsFactory | None = None,
        screen_mask: ScreenMask | None = None,
    ) -> LLMClient:
        """Build from a providers file (TOML/JSON), a parsed config, or the environment (None).

        `cache` (instead of `cache_path`) and `limits` plug in shared ones (a cluster worker)."""
        env = os.environ if env is None else env
        if isinstance(providers, ProvidersConfig | Mapping):
            config = providers if isinstance(providers, ProvidersConfig) else parse_providers(providers)
            endpoints = resolve_endpoints(config, env, "providers config")
        else:
            config, endpoints = load_providers(providers, env)
        if cache is None or not cache_enabled:
            cache = ResponseCache(cache_path, enabled=cache_enabled)
        return cls(config, endpoints, cache=cache, default_model=default_model, limits=limits,
                   screen_mask=screen_mask)

    async def warm(self) -> None:
        """Build the default models' endpoints (SDK clients: an SSL context and imports, ~50 ms)
        in a worker thread, so the first call does not stall the event loop."""
        models = [m for m in (self.default_model, self.embedding_model) if m]

        def build() -> None:
            for model in models:
                self.router.endpoints_for(model)

        await anyio.to_thread.run_sync(build)

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self.router.aclose()
            await self.cache.aclose()

    # -- chat ----------------------------------------------------------------------------------------
    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        n: int = 1,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        stop: str | list[str] | None = None,
        task_id: str | None = None,
        salt: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Completion:
        """k = `n` choices for one prompt. `salt` only enters the cache key (independent samples)."""
        model = self._model(model)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        params: dict[str, Any] = {"messages": list(messages), "n": n}
        for name, value in (("temperature", temperature), ("top_p", top_p), ("max_tokens", max_tokens),
                            ("stop", stop), ("extra_body", dict(extra_body) if extra_body else None)):
            if value is not None:
                params[name] = value
        payload = {"v": _CACHE_VERSION, "kind": "chat", "model": model, "salt": salt, **params}
        key = await request_hash(payload, size_hint=_payload_size(params["messages"]), mask=self.screen_mask)
        return await self._through_cache(
            key, "chat", model, task_id, lambda: self._complete_paid(key, model, params, task_id),
            store=lambda c: {"choices": c.choices, "finish_reasons": c.finish_reasons,
                             "usage": [c.usage.prompt_tokens, c.usage.completion_tokens],
                             "cost_usd": c.cost_usd, "model": model},
            load=lambda stored: self._from_stored(stored, key, model))

    async def _through_cache(self, key: str, kind: str, model: str, task_id: str | None,
                             paid: Callable[[], Awaitable[C]], *, store: Callable[[C], dict[str, Any]],
                             load: Callable[[dict[str, Any]], C]) -> C:
        """The stored answer for `key`, or `paid()` once (identical calls in flight share it), and
        the call counted as cached or paid. C is a Completion or an ApiResponse."""
        if not self.cache.enabled:
            result = await paid()
            self.accountant.record_call(model, task_id, cached=False)
            return result

        async def lead() -> C:
            # Re-check: a previous leader may just have stored it (a shared cache also waits here
            # while another process pays for the same request).
            async with self.cache.claim(key) as stored:
                if stored is not None:
                    return load(stored)
                result = await paid()
                await self.cache.put(key, kind, model, store(result))
            return result

        stored = await self.cache.get(key)
        if stored is not None:
            result, shared = load(stored), True
        else:
            result, shared = await self._flight.run(key, lead)
        if shared or result.cached:
            self.accountant.record_call(model, task_id, cached=True, saved_usd=result.cost_usd)
            return replace(result, cached=True, cost_usd=0.0)
        self.accountant.record_call(model, task_id, cached=False)
        return result

    def _from_stored(self, stored: dict[str, Any], key: str, model: str) -> Completion:
        prompt, completion_tokens = stored["usage"]
        return Completion(
            choices=list(stored["choices"]), usage=Usage(prompt, completion_tokens),
            cost_usd=float(stored.get("cost_usd", 0.0)), cached=True, request_hash=key, model=model,
            finish_reasons=list(stored.get("finish_reasons") or []),
        )

    async def _complete_paid(self, key: str, model: str, params: dict[str, Any], task_id: str | None) -> Completion:
        n = params["n"]
        prompt_est = tok.prompt_tokens(params["messages"])
        raw: RawChat | None = None
        cost = 0.0
        if n == 1 or self.router.any_supports_n(model):
            try:
                raw, ep, cost = await self._attempts(
                    model, task_id, need_n=n > 1, prompt_est=prompt_est, n=n,
                    max_tokens=params.get("max_tokens"), op=lambda e: e.chat(params),
                )
            except _NUnsupported:
                raw = None
            else:
                if len(raw.choices) < n:  # the server ignored n silently: batch no more there
                    log.info("endpoint %s returned %d of %d choices: using single requests", ep.name, len(raw.choices), n)
                    ep.supports_n = False
        if raw is None or len(raw.choices) < n:
            have = len(raw.choices) if raw else 0
            more, more_cost = await self._fan_out(model, params, n - have, task_id, prompt_est)
            raw = more if raw is None else RawChat(
                raw.choices + more.choices, raw.finish_reasons + more.finish_reasons, raw.usage + more.usage
            )
            cost += more_cost
        return Completion(
            choices=raw.choices[:n], usage=raw.usage, cost_usd=cost, cached=False, request_hash=key,
            model=model, finish_reasons=raw.finish_reasons[:n],
        )

    async def _fan_out(
        self, model: str, params: dict[str, Any], k: int, task_id: str | None, prompt_est: int
    ) -> tuple[RawChat, float]:
        single = {**params, "n": 1}
        results: list[tuple[RawChat, Endpoint, float] | None] = [None] * k
        errors: list[BaseException] = []

        async def one(i: int) -> None:
            try:
                results[i] = await self._attempts(
                    model, task_id, need_n=False, prompt_est=prompt_est, n=1,
                    max_tokens=params.get("max_tokens"), op=lambda e: e.chat(single),
                )
            except ProviderError as e:
                errors.append(e)
                tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            for i in range(k):
                tg.start_soon(one, i)
        if errors:
            raise errors[0]
        done = [r for r in results if r is not None]
        merged = RawChat([], [], Usage())
        for raw, _, _ in done:
            merged = RawChat(merged.choices + raw.choices[:1], merged.finish_reasons + raw.finish_reasons[:1],
                             merged.usage + raw.usage)
        return merged, sum(c for _, _, c in done)

    # -- the retry loop --------------------------------------------------------------------------------
    async def _attempts(
        self,
        model: str,
        task_id: str | None,
        *,
        need_n: bool,
        prompt_est: int,
        n: int,
        max_tokens: int | None,
        op: Callable[[Endpoint], Awaitable[R]],
    ) -> tuple[R, Endpoint, float]:
        """One logical request: attempts over endpoints until success or a final error."""
        attempt = 0
        avoid: set[str] = set()
        while True:
            attempt += 1
            ep = self.router.pick(model, avoid=avoid, need_n=need_n)
            completion_est = max_tokens if max_tokens is not None else ep.spec.config.default_completion_tokens
            self.accountant.record_request(model, task_id, retry=attempt > 1)
            try:
                async with ep.slot(prompt_est + n * completion_est) as ticket:
                    result = await op(ep)
                    ep.limits.settle(ticket, result.usage.total_tokens or ticket.tokens)
            except Exception as e:
                failure = classify(e)
                if failure is None:
                    raise
                scrub(e)
                backoff = self.retry.backoff(attempt)
                ep.on_failure(failure, backoff, self.retry.config.max_retry_after_s)
                where = f"{model} via {ep.name}"
                if need_n and failure.mentions_n():
                    ep.supports_n = False
                    log.info("endpoint %s rejects n>1: using concurrent single requests", ep.name)
                    raise _NUnsupported() from e
                if not failure.retryable:
                    others = [x for x in self.router.endpoints_for(model) if x.disabled is None and x is not ep]
                    if failure.kind in ("auth", "quota") and others:
                        log.warning("LLM endpoint %s disabled (%s); failing over", ep.name, failure.message)
                        avoid.add(ep.name)
                        continue
                    self.accountant.record_failure(model, task_id)
                    hint = f" (check the API key from {ep.spec.key_source})" if failure.kind == "auth" else ""
                    raise LLMCallError(f"LLM call to {where} failed: {failure.message}{hint}",
                                       kind=failure.kind, status=failure.status) from e
                if attempt >= self.retry.config.max_attempts:
                    self.accountant.record_failure(model, task_id)
                    raise LLMCallError(f"LLM call to {where} gave up after {attempt} attempts: {failure.message}",
                                       kind="exhausted", retryable=True, status=failure.status) from e
                if not self.retry.take_task_retry(task_id):
                    self.accountant.record_failure(model, task_id)
                    raise LLMCallError(
                        f"LLM retry budget of task {task_id} used up ({self.retry.config.task_retry_budget} retries); "
                        f"last error from {where}: {failure.message}", kind="budget", retryable=True,
                        status=failure.status) from e
                # A rate limit pauses the endpoint itself (Retry-After); other errors back off here
                # and prefer another endpoint next time.
                delay = 0.0 if failure.kind == "rate_limit" else max(
                    backoff, self.retry.clamp_retry_after(failure.retry_after or 0.0))
                if failure.kind != "rate_limit":
                    avoid = {ep.name}
                log.info("LLM retry %d/%d for %s after %s (%s); waiting %.2fs", attempt,
                         self.retry.config.max_attempts, where, failure.kind, failure.message, delay)
                await anyio.sleep(delay)
                continue
            ep.on_success()
            cost = self.accountant.prices.cost(model, result.usage)
            self.accountant.record_paid(model, task_id, result.usage, cost)
            return result, ep, cost

    # -- other model APIs (Anthropic Messages, OpenAI Responses; harness/llm/apis.py) -------------------
    async def call_api(self, api: Api, body: Mapping[str, Any], *, model: str | None = None,
                       task_id: str | None = None) -> ApiResponse:
        """One call of `api` with the provider's own request `body` (without `model`), under the
        same limits, retries, cache (keyed by the whole body) and cost accounting as `complete`."""
        if api not in API_PATHS:
            raise ValueError(f"unknown API {api!r}; expected one of {', '.join(API_PATHS)}")
        model = self._model(model)
        params = dict(body)
        payload = {"v": _CACHE_VERSION, "kind": api, "model": model, "body": params}
        prompt_est = await anyio.to_thread.run_sync(estimate_api_tokens, params)  # walks screenshots
        key = await request_hash(payload, size_hint=prompt_est * 4, mask=self.screen_mask)

        async def paid() -> ApiResponse:
            raw, _, cost = await self._attempts(model, task_id, need_n=False, prompt_est=prompt_est, n=1,
                                                max_tokens=params.get("max_tokens") or params.get("max_output_tokens"),
                                                op=lambda e: e.call_api(api, params))
            return ApiResponse(raw.body, raw.usage, cost, False, key, model)

        return await self._through_cache(
            key, api, model, task_id, paid,
            store=lambda r: {"body": r.body, "usage": [r.usage.prompt_tokens, r.usage.completion_tokens],
                             "cost_usd": r.cost_usd},
            load=lambda stored: self._api_from_stored(stored, key, model))

    def _api_from_stored(self, stored: dict[str, Any], key: str, model: str) -> ApiResponse:
        prompt, completion_tokens = stored["usage"]
        return ApiResponse(dict(stored["body"]), Usage(prompt, completion_tokens), float(stored.get("cost_usd", 0.0)),
                           True, key, model)

    # -- embeddings ------------------------------------------------------------------------------------
    async def embed(self, texts: Sequence[str], *, model: str | None = None, task_id: str | None = None) -> list[list[float]]:
        """One vector per text; texts already embedded (same model) come from the cache."""
        model = model or self.embedding_model or self._model(None)
        keys = [sync_request_hash({"v": _CACHE_VERSION, "kind": "embed", "model": model, "input": t}) for t in texts]
        vectors: dict[str, list[float]] = {k: v["vector"] for k, v in (await self.cache.get_many(keys)).items()}
        missing = list(dict.fromkeys((k, t) for k, t in zip(keys, texts, strict=True) if k not in vectors))
        for start in range(0, len(missing), _EMBED_BATCH):
            batch = missing[start : start + _EMBED_BATCH]
            inputs = [t for _, t in batch]
            raw, _, _ = await self._attempts(
                model, task_id, need_n=False, prompt_est=sum(tok.text_tokens(t) for t in inputs), n=0,
                max_tokens=0, op=lambda e, inputs=inputs: e.embed(inputs),
            )
            rows = []
            for (key, _), vector in zip(batch, raw.vectors, strict=True):
                vectors[key] = vector
                rows.append((key, "embed", model, {"vector": vector}))
            await self.cache.put_many(rows)
        self.accountant.record_call(model, task_id, cached=not missing)
        return [vectors[k] for k in keys]

    # -- views ---------------------------------------------------------------------------------------
    def _model(self, model: str | None) -> str:
        model = model or self.default_model
        if not model:
            raise ConfigError("no model given and no default_model in the providers file")
        return model

    def stats(self, *, tasks: bool = True) -> dict[str, Any]:
        """Snapshot for the progress display and results: live queue state, tokens, cost."""
        endpoints = {e.name: e.snapshot() for e in self.router.all_endpoints()}
        return {
            "in_flight": sum(e["in_flight"] for e in endpoints.values()),
            "waiting": sum(e["waiting"] for e in endpoints.values()),
            "cache": {"enabled": self.cache.enabled, "hits": self.cache.hits, "misses": self.cache.misses},
            **self.accountant.snapshot(tasks=tasks),
            "endpoints": endpoints,
        }

    def task_usage(self, task_id: str) -> dict[str, float | int]:
        return self.accountant.task(task_id)
