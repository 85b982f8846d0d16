"""llm-sim: a local OpenAI-compatible server for tests and benchmarks (it stands in for the remote
API only). Loopback only.

Routes: POST /v1/chat/completions (n, usage, image_url parts), POST /v1/messages and
/v1/responses (Anthropic's and OpenAI Responses' shapes, harness/llm/sim_apis.py), POST /v1/embeddings
(deterministic hashed bag-of-words vectors, so cosine similarity means word overlap), GET
/v1/models, the Azure deployment paths, and GET /sim/stats (arrivals, statuses, a per-second
arrival log and the most requests seen in any window). Requests/min and tokens/min limits answer
429 with Retry-After and x-ratelimit-* headers; 500s, hangs and malformed bodies are injected at
configured rates. A policy computes the replies from the request; it may raise SimFault to
script an error.
"""

from __future__ import annotations

import inspect
import ipaddress
import math
import random
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import orjson
from aiohttp import web

from harness.base.errors import ConfigError
from harness.llm.sim_policy import DEFAULT_ANSWER, Policy, SimFault, default_policy, embed_text, load_policy
from harness.llm.tokens import chars_estimate, prompt_tokens

__all__ = ["DEFAULT_ANSWER", "SimConfig", "SimFault", "SimRecord", "SimServer", "load_policy", "serve_sim"]

def _duration(seconds: float) -> str:
    """OpenAI reset-header style: '250ms', '1.5s', '2m3.0s'."""
    if seconds < 1:
        return f"{max(1, math.ceil(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.1f}s" if minutes else f"{rest:.1f}s"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 0
    latency_ms: float = 0.0  # mean
    latency_dist: Literal["fixed", "uniform", "lognormal"] = "fixed"
    rpm: int | None = None
    tpm: int | None = None
    window_s: float = 60.0  # the limit window; tests shrink it
    fail_rate: float = 0.0
    timeout_rate: float = 0.0
    malformed_rate: float = 0.0
    hang_s: float = 600.0  # how long an injected timeout hangs (ends early at shutdown)
    policy: Policy | str | None = None
    no_n: bool = False  # answer 400 to n > 1, like servers without batching
    api_key: str | None = None  # when set, other keys get 401 (with the key echoed, like OpenAI)
    seed: int | None = 0
    embed_dim: int = 256
    models: list[str] = field(default_factory=lambda: ["sim-model", "sim-embed"])


@dataclass
class SimRecord:
    t: float  # seconds since the server started
    path: str
    status: int | str  # "hang" for injected timeouts
    n: int = 1
    model: str = ""


class _Window:
    """Admitted requests and tokens in the trailing window (the provider's view)."""

    def __init__(self) -> None:
        self.times: deque[float] = deque()
        self.tokens: deque[tuple[float, int]] = deque()
        self.token_sum = 0

    def admit(self, cfg: SimConfig, now: float, tokens: int) -> tuple[str | None, float, dict[str, str]]:
        """(limit hit or None, seconds until it clears, x-ratelimit-* headers)."""
        horizon = now - cfg.window_s
        while self.times and self.times[0] <= horizon:
            self.times.popleft()
        while self.tokens and self.tokens[0][0] <= horizon:
            self.token_sum -= self.tokens.popleft()[1]
        hit, wait = None, 0.0
        if cfg.rpm and len(self.times) >= cfg.rpm:
            hit, wait = "requests", self.times[len(self.times) - cfg.rpm] + cfg.window_s - now
        elif cfg.tpm and self.token_sum + tokens > cfg.tpm and self.tokens:
            freed, until = 0, self.tokens[-1][0]
            for t, k in self.tokens:
                freed += k
                if freed >= self.token_sum + tokens - cfg.tpm:
                    until = t
                    break
            hit, wait = "tokens", until + cfg.window_s - now
        if hit is None:
            self.times.append(now)
            self.tokens.append((now, tokens))
            self.token_sum += tokens
        headers = {}
        if cfg.rpm:
            headers |= {
                "x-ratelimit-limit-requests": str(cfg.rpm),
                "x-ratelimit-remaining-requests": str(max(0, cfg.rpm - len(self.times))),
                "x-ratelimit-reset-requests": _duration(
                    max(0.0, self.times[0] + cfg.window_s - now) if self.times else 0.0
                ),
            }
        if cfg.tpm:
            headers |= {
                "x-ratelimit-limit-tokens": str(cfg.tpm),
                "x-ratelimit-remaining-tokens": str(max(0, cfg.tpm - self.token_sum)),
                "x-ratelimit-reset-tokens": _duration(
                    max(0.0, self.tokens[0][0] + cfg.window_s - now) if self.tokens else 0.0
                ),
            }
        return hit, max(0.0, wait), headers


def _error(status: int, message: str, *, type_: str = "invalid_request_error", code: str | None = None,
           param: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return _json(body, status=status, headers=headers)


def _json(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """orjson instead of aiohttp's stdlib encoder: at hundreds of requests/s the simulator's own CPU
    competes with the harness it measures (it runs on the same machine)."""
    return web.Response(body=orjson.dumps(body), status=status, headers=headers, content_type="application/json")


class SimServer:
    """`async with SimServer(SimConfig(...)) as sim:` -> sim.url (base URL), sim.stats()."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        if not _is_loopback(self.config.host):
            raise ConfigError(f"llm-sim --host {self.config.host}: only loopback addresses are allowed")
        if isinstance(self.config.policy, str):
            self.config.policy = load_policy(self.config.policy)
        self.records: list[SimRecord] = []
        self._rng = random.Random(self.config.seed)
        self._window = _Window()
        self._t0 = time.monotonic()
        self._in_flight = 0
        self._max_in_flight = 0
        self._closing: anyio.Event | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.root = ""

    # -- lifecycle -----------------------------------------------------------------------------------
    async def __aenter__(self) -> SimServer:
        self._closing = anyio.Event()
        app = web.Application(client_max_size=256 * 1024 * 1024)  # screenshots ride in data URLs
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/messages", self._messages)  # Anthropic's shape (harness/llm/sim_apis.py)
        app.router.add_post("/v1/responses", self._responses)  # OpenAI Responses' shape
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self._embeddings)
        app.router.add_get("/sim/stats", self._stats)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        host = f"[{host}]" if ":" in host else host
        self.root = f"http://{host}:{port}"
        self.url = f"{self.root}/v1"
        self._t0 = time.monotonic()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._closing is not None:
            self._closing.set()  # release injected hangs now
        if self._runner is not None:
            with anyio.CancelScope(shield=True):
                await self._runner.cleanup()

    # -- shared request path -------------------------------------------------------------------------
    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _authorized(self, request: web.Request) -> web.Response | None:
        expected = self.config.api_key
        if not expected:
            return None
        auth = request.headers.get("Authorization", "")
        given = auth[7:] if auth.startswith("Bearer ") else request.headers.get("api-key") or request.headers.get("x-api-key", "")
        if given == expected:
            return None
        # OpenAI echoes the key it got; so do we, to prove clients keep it out of their errors.
        return _error(401, f"Incorrect API key provided: {given}. You can find your API key at "
                      "https://platform.openai.com/account/api-keys.", code="invalid_api_key")

    async def _latency(self) -> None:
        mean = self.config.latency_ms / 1000
        if mean <= 0:
            return
        dist = self.config.latency_dist
        if dist == "uniform":
            delay = self._rng.uniform(0, 2 * mean)
        elif dist == "lognormal":
            sigma = 0.5
            delay = self._rng.lognormvariate(math.log(mean) - sigma**2 / 2, sigma)
        else:
            delay = mean
        await anyio.sleep(delay)

    async def _hang(self) -> web.Response:
        assert self._closing is not None
        with anyio.move_on_after(self.config.hang_s):
            await self._closing.wait()
        return _error(504, "injected hang ended", type_="server_error")

    async def _fault(self, fault: SimFault) -> web.Response:
        if fault.hang:
            return await self._hang()
        if fault.malformed:
            return web.Response(status=200, body=b'{"id": "chatcmpl-sim", "choices": [', content_type="application/json")
        headers = {}
        if fault.retry_after is not None:
            headers = {"retry-after": str(math.ceil(fault.retry_after)), "retry-after-ms": str(int(fault.retry_after * 1000))}
        type_ = "server_error" if fault.status >= 500 else "invalid_request_error"
        return _error(fault.status, fault.message, type_=type_, code=fault.code, param=fault.param, headers=headers)

    def _random_fault(self) -> SimFault | None:
        cfg, draw = self.config, self._rng.random()
        if draw < cfg.timeout_rate:
            return SimFault(hang=True)
        if draw < cfg.timeout_rate + cfg.fail_rate:
            return SimFault(500, "The server had an error while processing your request (injected)")
        if draw < cfg.timeout_rate + cfg.fail_rate + cfg.malformed_rate:
            return SimFault(malformed=True)
        return None

    async def _serve(self, request: web.Request, kind: str) -> tuple[web.Response, SimRecord]:
        record = SimRecord(self._now(), request.path, 0)
        self.records.append(record)
        denied = self._authorized(request)
        if denied is not None:
            return denied, record
        try:
            body = orjson.loads(await request.read())  # requests carry screenshots: parse fast
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request."), record
        record.model = str(body.get("model") or request.match_info.get("deployment", ""))
        if kind == "chat":
            response = await self._chat_reply(body, record)
        elif kind in ("anthropic_messages", "openai_responses"):
            from harness.llm.sim_apis import api_reply

            response = await api_reply(self, kind, body, record)
        else:
            response = await self._embed_reply(body, record)
        return response, record

    def _admit(self, tokens: int) -> tuple[web.Response | None, dict[str, str]]:
        """(a 429 response or None if admitted, the x-ratelimit-* headers to send)."""
        hit, wait, headers = self._window.admit(self.config, self._now(), tokens)
        if hit is None:
            return None, headers
        headers = headers | {"retry-after": str(max(1, math.ceil(wait))), "retry-after-ms": str(max(1, math.ceil(wait * 1000)))}
        limit = self.config.rpm if hit == "requests" else self.config.tpm
        return _error(429, f"Rate limit reached for {hit} per {self.config.window_s:g}s: Limit {limit}. "
                      f"Please try again in {wait:.3f}s.", type_=hit, code="rate_limit_exceeded",
                      headers=headers), headers

    async def _chat_reply(self, body: dict[str, Any], record: SimRecord) -> web.Response:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "'messages' must be a non-empty array", param="messages")
        n = body.get("n") or 1
        if not isinstance(n, int) or n < 1:
            return _error(400, "'n' must be a positive integer", param="n")
        record.n = n
        if n > 1 and self.config.no_n:
            return _error(400, "n>1 is not supported by this server", param="n", code="unsupported_parameter")
        prompt = prompt_tokens(messages)
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 0
        limited, limit_headers = self._admit(prompt + n * int(max_tokens))
        if limited is not None:
            return limited
        result, failed = await self._policy_answer(body)
        if failed is not None:
            return failed
        # A string answers every one of the n choices; a list is sent as is (a script may return
        # fewer choices than n, like servers that ignore n).
        choices = [result] * n if isinstance(result, str) else [str(r) for r in result] or [""]
        await self._latency()
        completion = sum(chars_estimate(c) for c in choices)
        return _json({
            "id": f"chatcmpl-sim-{len(self.records)}", "object": "chat.completion", "created": int(time.time()),
            "model": record.model,
            "choices": [{"index": i, "message": {"role": "assistant", "content": c}, "finish_reason": "stop",
                         "logprobs": None} for i, c in enumerate(choices)],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }, headers=limit_headers)

    async def _policy_answer(self, body: dict[str, Any]) -> tuple[Any, web.Response | None]:
        """(the policy's result, None), or (None, the error response) for an injected or scripted fault."""
        try:
            fault = self._random_fault()
            if fault is not None:
                raise fault
            policy = self.config.policy or default_policy
            if isinstance(policy, str):  # set after start
                policy = load_policy(policy)
            result = policy(body)
            if inspect.isawaitable(result):
                result = await result
        except SimFault as f:
            await self._latency()
            return None, await self._fault(f)
        return result, None

    async def _embed_reply(self, body: dict[str, Any], record: SimRecord) -> web.Response:
        raw = body.get("input")
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return _error(400, "'input' must be a string or an array of strings", param="input")
        tokens = sum(chars_estimate(t) for t in texts)
        limited, limit_headers = self._admit(tokens)
        if limited is not None:
            return limited
        fault = self._random_fault()
        await self._latency()
        if fault is not None:
            return await self._fault(fault)
        data = [{"object": "embedding", "index": i, "embedding": embed_text(t, self.config.embed_dim)}
                for i, t in enumerate(texts)]
        return _json({"object": "list", "data": data, "model": record.model,
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
                                 headers=limit_headers)

    async def _tracked(self, request: web.Request, kind: str) -> web.Response:
        self._in_flight += 1
        self._max_in_flight = max(self._max_in_flight, self._in_flight)
        record = None
        try:
            response, record = await self._serve(request, kind)
            record.status = response.status
            return response
        finally:
            self._in_flight -= 1
            if record is not None and record.status == 0:
                record.status = "hang"  # cancelled while hanging (client gone, shutdown)

    async def _chat(self, request: web.Request) -> web.Response:
        return await self._tracked(request, "chat")

    async def _messages(self, request: web.Request) -> web.Response:
        return await self._tracked(request, "anthropic_messages")

    async def _responses(self, request: web.Request) -> web.Response:
        return await self._tracked(request, "openai_responses")

    async def _embeddings(self, request: web.Request) -> web.Response:
        return await self._tracked(request, "embed")

    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "llm-sim"} for m in self.config.models]
        return _json({"object": "list", "data": data})

    async def _stats(self, request: web.Request) -> web.Response:
        return _json(self.stats())

    # -- measurements --------------------------------------------------------------------------------
    def max_in_window(self, window_s: float | None = None) -> int:
        """Most arrivals in any half-open interval of `window_s` (exact, from timestamps)."""
        window = window_s or self.config.window_s
        times = [r.t for r in self.records]
        best, i = 0, 0
        for j, t in enumerate(times):
            while t - times[i] >= window:
                i += 1
            best = max(best, j - i + 1)
        return best

    def stats(self) -> dict[str, Any]:
        per_second = Counter(int(r.t) for r in self.records)
        width = max(1, round(self.config.window_s))
        seconds = max(per_second, default=-1) + 1
        counts = [per_second.get(s, 0) for s in range(seconds)]
        best_buckets = max((sum(counts[s : s + width]) for s in range(max(1, seconds - width + 1))), default=0)
        statuses = Counter(str(r.status) for r in self.records)
        limited = [r.t for r in self.records if r.status == 429]
        return {
            "requests": len(self.records),
            "chat_requests": sum(1 for r in self.records if r.path.endswith("chat/completions")),
            "embedding_requests": sum(1 for r in self.records if r.path.endswith("embeddings")),
            "status": dict(statuses),
            "rate_limited": len(limited),
            "first_429_s": round(limited[0], 3) if limited else None,
            "last_429_s": round(limited[-1], 3) if limited else None,
            "window_s": self.config.window_s,
            "max_in_window": best_buckets,  # from the per-second log, windows of whole seconds
            "max_in_window_exact": self.max_in_window(),
            "per_second": [[s, c] for s, c in sorted(per_second.items())],
            "in_flight": self._in_flight,
            "max_in_flight": self._max_in_flight,
        }


@asynccontextmanager
async def serve_sim(config: SimConfig | None = None) -> AsyncIterator[str]:
    """Run llm-sim in-process; yields its base URL (http://127.0.0.1:PORT/v1)."""
    async with SimServer(config) as server:
        yield server.url
