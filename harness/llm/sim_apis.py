"""llm-sim's answers in the shapes of Anthropic's Messages API (POST /v1/messages) and OpenAI's
Responses API (POST /v1/responses), with the same rate limits, faults, latency and policy as its
chat route (harness/llm/sim.py).

The policy gets the request JSON (tell the shapes apart by the path in `request["_sim_api"]`:
"anthropic_messages" or "openai_responses") and returns either a string (a text-only answer: an
`end_turn` message, or a Responses `message` item) or a dict: for Messages `{"content": [blocks],
"stop_reason": ...}`, for Responses `{"output": [items]}`. The server fills ids, model and usage.
"""

from __future__ import annotations

import time
from typing import Any

from harness.llm.apis import estimate_tokens
from harness.llm.tokens import chars_estimate


def _validate(api: str, body: dict[str, Any]) -> str | None:
    """What is wrong with the request, as the real API would say it, or None."""
    if api == "anthropic_messages":
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return "messages: Field required (a non-empty array)"
        if not isinstance(body.get("max_tokens"), int):
            return "max_tokens: Field required"
    elif not isinstance(body.get("input"), list | str):
        return "Missing required parameter: 'input'."
    return None


def _shape(api: str, result: Any, record_id: int, model: str, prompt: int) -> dict[str, Any]:
    if api == "anthropic_messages":
        if isinstance(result, str):
            result = {"content": [{"type": "text", "text": result}], "stop_reason": "end_turn"}
        content = list(result.get("content") or [])
        stop = result.get("stop_reason") or ("tool_use" if any(b.get("type") == "tool_use" for b in content) else "end_turn")
        completion = sum(chars_estimate(str(b)) for b in content)
        return {"id": f"msg_sim_{record_id}", "type": "message", "role": "assistant", "model": model,
                "content": content, "stop_reason": stop, "stop_sequence": None,
                "usage": {"input_tokens": prompt, "output_tokens": completion}}
    if isinstance(result, str):
        result = {"output": [{"type": "message", "id": f"msg_sim_{record_id}", "role": "assistant", "status": "completed",
                              "content": [{"type": "output_text", "text": result, "annotations": []}]}]}
    output = list(result.get("output") or [])
    completion = sum(chars_estimate(str(item)) for item in output)
    return {"id": f"resp_sim_{record_id}", "object": "response", "created_at": int(time.time()), "model": model,
            "status": "completed", "output": output,
            "usage": {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion}}


async def api_reply(server: Any, api: str, body: dict[str, Any], record: Any) -> Any:
    """The response to one Messages/Responses request (`server`: the SimServer)."""
    from harness.llm.sim import _error, _json

    problem = _validate(api, body)
    if problem:
        return _error(400, problem)
    prompt = estimate_tokens({k: v for k, v in body.items() if k != "model"})
    limited, limit_headers = server._admit(prompt + int(body.get("max_tokens") or body.get("max_output_tokens") or 0))
    if limited is not None:
        return limited
    result, failed = await server._policy_answer({**body, "_sim_api": api})
    if failed is not None:
        return failed
    if isinstance(result, list):  # a chat-shaped policy: its first answer as text
        result = str(result[0]) if result else ""
    await server._latency()
    return _json(_shape(api, result, len(server.records), record.model, prompt), headers=limit_headers)
