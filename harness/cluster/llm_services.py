"""The run's LLM limits and response cache, shared by every worker of a Ray cluster.

Head: `services = start_llm_services(config, run_dir)` after `ray.init`, then pass `services`
(picklable: actor handles and the providers config) to each worker, and `await
services.aclose()` at the end; `await services.stats()` feeds the progress line.
Worker: `llm = worker_llm_client(config, services)` is an `LLMClient` like the runner's, whose
limits are leased from the head's limiter (lease_limits.py) and whose cache is the head's cache
(remote_cache.py). Both services are Ray actors pinned to the head node (so they live and die
with the run's head) and run on their own event loop; see docs/design/llm.md, "Limits and cache
on a cluster".

API keys: workers resolve the providers config's `env:` references themselves. By default the
head forwards the values of the variables the config names (and OPENAI_*/AZURE_OPENAI_* when it
falls back to the environment) inside `LLMServices`, so a worker node needs no keys of its own;
forwarded values win over the worker's environment, are never put into a worker's os.environ,
and appear in no repr, log line or error (they are registered for redaction on the worker).
They do travel in Ray's messages between nodes: where the network between nodes is not
trusted, enable Ray's TLS or start the services with `forward_keys=False` and set the keys on
each node's environment (the one `ray start` ran in).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from harness.base.errors import ConfigError
from harness.cluster.lease_limits import LeasedLimits, SharedLimiter
from harness.cluster.remote_cache import RemoteCache, SharedCache
from harness.cluster.service_link import LinkSettings, Owner, ServiceLink
from harness.llm.accounting import PriceTable
from harness.llm.config import (
    ProvidersConfig,
    ResolvedEndpoint,
    config_from_env,
    endpoint_name,
    load_providers_file,
    resolve_endpoints,
)

if TYPE_CHECKING:
    from harness.config import RunConfig
    from harness.llm.client import LLMClient

log = logging.getLogger(__name__)
_MAX_CONCURRENCY = 100_000  # every waiting lease or claim of the cluster is one call in progress
_CLOSE_TIMEOUT_S = 30.0
_ENV_FALLBACK = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_VERSION", "AZURE_OPENAI_API_KEY",
                 "AZURE_OPENAI_ENDPOINT")


# -- the actors (pinned to the head node) -----------------------------------------------------------
class _Service:
    """Owner registry and housekeeping (expiry, dead-owner probes) shared by both services.

    Every method is `async def`: Ray runs them all on the actor's one event loop, so the
    limiter's and the cache's state is never touched from two threads.
    """

    def __init__(self, settings: LinkSettings) -> None:
        self.settings = settings
        self._owners: dict[str, Any] = {}  # owner id -> actor handle (None: not an actor)
        self._housekeeper: asyncio.Task[None] | None = None

    def _core(self) -> SharedLimiter | SharedCache:
        raise NotImplementedError

    def _start(self) -> None:
        # Started by the first call (no loop exists in __init__); cancelled by close(), and it
        # dies with the actor otherwise.
        if self._housekeeper is None:
            self._housekeeper = asyncio.get_running_loop().create_task(self._housekeep())

    async def register_owner(self, owner: str, handle: Any) -> None:
        self._start()
        self._owners.setdefault(owner, handle)

    async def _is_dead(self, owner: str) -> bool:
        from ray.exceptions import ActorDiedError

        handle = self._owners.get(owner)
        if handle is None:
            return False  # not an actor: only expiry frees what it holds
        try:
            with anyio.fail_after(self.settings.probe_timeout_s):
                await handle.__ray_ready__.remote()
        except ActorDiedError:
            return True
        except Exception:  # busy, unreachable for now: alive until proven dead (expiry still applies)
            return False
        return False

    async def _housekeep(self) -> None:
        core = self._core()
        while True:
            await anyio.sleep(self.settings.housekeeping_s)
            try:
                holders = sorted(core.holders())
                verdicts = await asyncio.gather(*(self._is_dead(o) for o in holders))
                dead = {o for o, d in zip(holders, verdicts, strict=True) if d}
                freed = core.reap(dead)
                for owner in dead:
                    log.warning("LLM %s: owner %s is gone; took back what it held", type(self).__name__, owner)
                    self._owners.pop(owner, None)
                if freed:
                    log.info("LLM %s: freed %d lease(s)/claim(s)", type(self).__name__, freed)
            except Exception:  # housekeeping must outlive one bad round
                log.exception("LLM service housekeeping failed")

    async def _stop(self) -> None:
        if self._housekeeper is not None:
            self._housekeeper.cancel()
            self._housekeeper = None


class LimiterService(_Service):
    """Ray actor: the cluster's one `SharedLimiter`."""

    def __init__(self, endpoints: dict[str, Any], settings: LinkSettings) -> None:
        super().__init__(settings)
        self.core = SharedLimiter(endpoints, settings)

    def _core(self) -> SharedLimiter:
        return self.core

    async def acquire(self, lease_id: str, owner: str, endpoint: str, model: str, tokens: int,
                      wait_s: float) -> dict[str, Any]:
        self._start()
        return await self.core.acquire(lease_id, owner, endpoint, model, tokens, wait_s)

    async def release(self, lease_id: str, actual_tokens: int | None) -> dict[str, Any]:
        return self.core.release(lease_id, actual_tokens)

    async def abandon(self, lease_id: str) -> None:
        self.core.abandon(lease_id)

    async def rate_limited(self, endpoint: str, model: str, pause_s: float) -> None:
        self.core.rate_limited(endpoint, model, pause_s)

    async def pause(self, endpoint: str, model: str, seconds: float) -> None:
        self.core.pause(endpoint, model, seconds)

    async def stats(self) -> dict[str, Any]:
        return self.core.stats()

    async def close(self) -> None:
        await self._stop()


class CacheService(_Service):
    """Ray actor: the single writer of the run's SQLite response cache, plus cluster claims."""

    def __init__(self, path: str, settings: LinkSettings) -> None:
        super().__init__(settings)
        self.core = SharedCache(path, settings)

    def _core(self) -> SharedCache:
        return self.core

    async def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        return await self.core.get_many(keys)

    async def put_many(self, rows: list[tuple[str, str, str, dict[str, Any]]]) -> None:
        await self.core.put_many(rows)

    async def claim(self, key: str, claim_id: str, owner: str, wait_s: float) -> tuple[str, Any]:
        self._start()
        return await self.core.claim(key, claim_id, owner, wait_s)

    async def release_claim(self, key: str, claim_id: str) -> None:
        self.core.release_claim(key, claim_id)

    async def stats(self) -> dict[str, Any]:
        return self.core.stats()

    async def close(self) -> None:
        await self._stop()
        await self.core.aclose()


# -- what the head hands to the workers -------------------------------------------------------------
class _ForwardedEnv:
    """Values of the environment variables the providers config names, from the head. Never shown."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def __repr__(self) -> str:
        return f"<forwarded env: {', '.join(sorted(self.values)) or 'none'}>"


@dataclass(repr=False)
class LLMServices:
    limiter: Any  # ActorHandle of LimiterService
    cache: Any | None  # ActorHandle of CacheService; None when the run's cache is off (--no-cache)
    providers: ProvidersConfig  # with prices inlined and no api_key values resolved
    prices: PriceTable
    settings: LinkSettings
    cache_path: str | None
    env: _ForwardedEnv = field(default_factory=lambda: _ForwardedEnv({}))
    _closed: bool = False

    def __repr__(self) -> str:
        names = [endpoint_name(e, i) for i, e in enumerate(self.providers.endpoints)]
        return f"LLMServices(endpoints={names}, cache={self.cache_path!r}, env={self.env!r})"

    async def stats(self) -> dict[str, Any]:
        """Cluster-wide: in_flight, waiting, lease and token totals, per-endpoint limits, cache."""
        timeout = self.settings.rpc_timeout_s
        with anyio.fail_after(timeout):
            limiter = await self.limiter.stats.remote()
            cache = await self.cache.stats.remote() if self.cache is not None else None
        return {**limiter, "cache": cache}

    async def aclose(self) -> None:
        """Stop both services (the cache's last writes are committed and the file closed)."""
        if self._closed:
            return
        self._closed = True
        import ray

        with anyio.CancelScope(shield=True):
            for name, actor in (("cache", self.cache), ("limiter", self.limiter)):
                if actor is None:
                    continue
                try:
                    with anyio.fail_after(_CLOSE_TIMEOUT_S):
                        await actor.close.remote()
                except Exception as e:  # closing must not mask the run's own outcome
                    log.warning("LLM %s did not close cleanly: %s", name, type(e).__name__)
                try:
                    ray.kill(actor, no_restart=True)
                except Exception as e:
                    log.debug("killing the LLM %s failed: %s", name, type(e).__name__)


def _providers(config: RunConfig) -> ProvidersConfig:
    if config.providers_file:
        return load_providers_file(config.providers_file)
    return config_from_env(os.environ)


def _env_names(providers: ProvidersConfig) -> set[str]:
    names = set(_ENV_FALLBACK)
    for ep in providers.endpoints:
        for value in (ep.api_key.get_secret_value() if ep.api_key else None, ep.base_url, ep.azure_endpoint):
            if value and value.startswith("env:"):
                names.add(value[4:])
    return names


def start_llm_services(
    config: RunConfig,
    run_dir: Path,
    *,
    settings: LinkSettings | None = None,
    forward_keys: bool = True,
) -> LLMServices:
    """Start the limiter and the cache actors on this (the head's) node; needs `ray.init` first."""
    import ray

    from harness.cluster.actors import pinned_here

    if not ray.is_initialized():
        raise ConfigError("start_llm_services: connect to the Ray cluster (ray.init) first")
    settings = settings or LinkSettings()
    providers = _providers(config)
    prices = PriceTable.load(file=providers.prices_file, overrides=providers.prices)
    portable = providers.model_copy(update={"prices_file": None})  # the table travels resolved
    limits = {endpoint_name(ep, i): ep.model_copy(update={"api_key": None})
              for i, ep in enumerate(providers.endpoints)}
    options = pinned_here(max_concurrency=_MAX_CONCURRENCY)
    limiter = ray.remote(LimiterService).options(**options).remote(limits, settings)
    cache, cache_path = None, None
    if config.cache:
        cache_path = str(Path(config.llm_cache or Path(run_dir) / "llm_cache.sqlite").resolve())
        cache = ray.remote(CacheService).options(**options).remote(cache_path, settings)
    env = {n: os.environ[n] for n in sorted(_env_names(providers)) if os.environ.get(n)} if forward_keys else {}
    return LLMServices(limiter, cache, portable, prices, settings, cache_path, _ForwardedEnv(env))


def worker_llm_client(config: RunConfig, services: LLMServices) -> LLMClient:
    """The worker's `LLMClient`: the run's providers, routing, retries and accounting, with limits
    leased from the head and the head's cache. Call it inside the worker (actor) that uses it."""
    from harness.config import screen_mask
    from harness.llm.client import LLMClient

    env = {**os.environ, **services.env.values}
    endpoints = resolve_endpoints(services.providers, env, "providers config (from the head)")
    owner = Owner.current()
    limiter = ServiceLink(services.limiter, owner, "limiter", services.settings)

    def leased(spec: ResolvedEndpoint, model: str) -> LeasedLimits:
        return LeasedLimits(limiter, spec.name, model, spec.config)

    cache = None
    if services.cache is not None and config.cache:
        cache = RemoteCache(ServiceLink(services.cache, owner, "cache", services.settings))
    return LLMClient(services.providers, endpoints, cache=cache, prices=copy.deepcopy(services.prices),
                     default_model=config.model, limits=leased, screen_mask=screen_mask(config))
