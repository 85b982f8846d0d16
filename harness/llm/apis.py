"""Model APIs other than chat completions, on the same limits, retries, cache and accounting:
Anthropic's Messages API (`/messages`, the computer-use tool) and OpenAI's Responses API
(`/responses`, `computer_use_preview`).

The body is the provider's own request, built by the agent (search/cua/); the layer adds the
model, sends it through the endpoint's HTTP session (harness/llm/transport.py, so the same error
types reach retry classification), and hands back the provider's JSON with its usage read out.
An endpoint serves these APIs with the base URL it has: llm-sim answers all three shapes on one
port; for Anthropic configure `kind = "openai-compatible"`, `base_url =
"https://api.anthropic.com/v1"`, `api_key = "env:ANTHROPIC_API_KEY"` (the key goes in `x-api-key`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from harness.llm import tokens as tok
from harness.llm.retry import MalformedResponse
from harness.llm.types import Usage

Api = Literal["anthropic_messages", "openai_responses"]
PATHS: dict[str, str] = {"anthropic_messages": "/messages", "openai_responses": "/responses"}
ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True)
class ApiResponse:
    """The provider's JSON for one call; `cost_usd` is what THIS call paid (0 when cached)."""

    body: dict[str, Any]
    usage: Usage
    cost_usd: float
    cached: bool
    request_hash: str
    model: str


@dataclass
class RawApi:
    body: dict[str, Any]
    usage: Usage


# The beta flag each computer tool version needs on Anthropic's API.
COMPUTER_BETAS = {"computer_20241022": "computer-use-2024-10-22", "computer_20250124": "computer-use-2025-01-24",
                  "computer_20251124": "computer-use-2025-11-24"}


def headers_for(api: str, api_key: str, body: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Auth, version and beta headers of the API (replacing the chat path's Authorization)."""
    if api != "anthropic_messages":
        return {"Authorization": f"Bearer {api_key}"}
    out = {"x-api-key": api_key, "anthropic-version": ANTHROPIC_VERSION}
    tools = (body or {}).get("tools") or []
    betas = sorted({COMPUTER_BETAS[t["type"]] for t in tools if isinstance(t, dict) and t.get("type") in COMPUTER_BETAS})
    if betas:
        out["anthropic-beta"] = ",".join(betas)
    return out


def parse_usage(api: str, obj: Mapping[str, Any]) -> Usage:
    """Token usage of a response body; a body without the API's main field is malformed."""
    main = "content" if api == "anthropic_messages" else "output"
    if not isinstance(obj.get(main), list):
        raise MalformedResponse(f"{api} response has no '{main}' list")
    usage = obj.get("usage") if isinstance(obj.get("usage"), dict) else {}
    prompt = int(usage.get("input_tokens") or 0) + int(usage.get("cache_read_input_tokens") or 0)
    return Usage(prompt, int(usage.get("output_tokens") or 0))


def estimate_tokens(body: Any) -> int:
    """Pre-send estimate for the token limits: text by chars/4, each base64 image as a screenshot."""
    total = 0
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if len(item) > 2000 and (item.startswith("data:image") or item[:8] == "iVBORw0K"):
                total += tok.image_tokens(1920, 1080)
            else:
                total += tok.text_tokens(item)
    return total
