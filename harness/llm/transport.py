"""The lean request path for chat completions: aiohttp + orjson instead of the SDK's pipeline.

Why: per call the SDK walks every request parameter through its type-directed transform
(typing introspection for each message part), encodes with the stdlib JSON encoder and sends
through httpx. With screenshots in every request that costs 4-7 ms of CPU per call, the largest
per-step cost of a run (docs/design/performance.md); this path costs ~0.4 ms. It posts the same
JSON body to the same URL with the SDK's own headers (auth included), and on failure raises the
SDK's own exception types, so retry classification, Retry-After handling and key redaction see
exactly what they saw before. Endpoints with `transport = "sdk"` (and Azure) keep the SDK path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
import openai
import openai._base_client as _sdk_base
import orjson

from harness.llm.retry import MalformedResponse

log = logging.getLogger(__name__)
# The SDK's HTTP library (httpx, or the httpx2 fork in newer SDKs): its exceptions need one.
_httpx = getattr(_sdk_base, "httpx2", None) or getattr(_sdk_base, "httpx")  # noqa: B009


class FastChat:
    """POST /chat/completions for one SDK client's base URL and credentials."""

    def __init__(self, sdk: openai.AsyncOpenAI, api_key: str) -> None:
        self._sdk = sdk
        self.url = str(sdk.base_url).rstrip("/") + "/chat/completions"
        headers = {k: v for k, v in sdk.default_headers.items() if isinstance(v, str)}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._headers = headers
        self._proxy = _env_proxy(self.url)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Concurrency is bounded by the endpoint's in-flight limit, not by the connector. The proxy
        # environment is read once above: aiohttp's trust_env re-reads it in a thread per request.
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))
        return self._session

    async def post(self, body: Mapping[str, Any], timeout_s: float, *, path: str | None = None,
                   headers: Mapping[str, str] | None = None) -> tuple[dict[str, Any], Mapping[str, str]]:
        """(parsed JSON body, response headers); SDK exception types on failure. `path` (e.g.
        "/messages") posts next to /chat/completions instead; `headers` replace the auth ones."""
        session = self._session or self._open()
        data = orjson.dumps(body)
        url = self.url if path is None else self.url.rsplit("/chat/completions", 1)[0] + path
        sent = self._headers if headers is None else {
            **{k: v for k, v in self._headers.items() if k != "Authorization"}, **headers}
        try:
            async with session.post(url, data=data, headers=sent, proxy=self._proxy,
                                    timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
                raw = await resp.read()
                status, headers = resp.status, resp.headers
        except TimeoutError as e:
            raise openai.APITimeoutError(request=self._request()) from e
        except aiohttp.ClientError as e:
            raise openai.APIConnectionError(message=f"{type(e).__name__}: {e}", request=self._request()) from e
        if not 200 <= status < 300:
            raise self._status_error(status, headers, raw)
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise MalformedResponse(f"response body is not JSON ({len(raw)} bytes)") from e
        if not isinstance(obj, dict):
            raise MalformedResponse("response body is not a JSON object")
        return obj, headers

    def _request(self) -> Any:
        return _httpx.Request("POST", self.url)

    def _status_error(self, status: int, headers: Mapping[str, str], raw: bytes) -> openai.APIStatusError:
        response = _httpx.Response(status, headers=list(headers.items()), content=raw, request=self._request())
        make = getattr(self._sdk, "_make_status_error_from_response", None)
        if make is not None:
            return make(response)
        return openai.APIStatusError(f"Error code: {status}", response=response, body=None)

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _env_proxy(url: str) -> str | None:
    """The proxy the SDK (httpx, trust_env) would use for `url`: *_PROXY unless NO_PROXY matches."""
    parts = urlsplit(url)
    proxy = getproxies().get(parts.scheme)
    if not proxy or proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def parse_chat(obj: Mapping[str, Any]) -> tuple[list[str], list[str | None], int, int]:
    """(choice texts by index, finish reasons, prompt tokens, completion tokens) of a chat body."""
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
        raise MalformedResponse("no choices in response")
    ordered = sorted(choices, key=lambda c: c.get("index") or 0)
    texts = []
    for c in ordered:
        message = c.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        texts.append(content if isinstance(content, str) else "")
    usage = obj.get("usage") if isinstance(obj.get("usage"), dict) else {}
    return (texts, [c.get("finish_reason") for c in ordered],
            int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
