"""Message adapters: the chat reshaped per model family the way OSWorld's agent shapes it.

Upstream builds one OpenAI-format chat (system; user/assistant pairs; the current user turn) and
then, per model family, converts it for that vendor's API. We reach every provider through the
openai SDK on OpenAI-compatible endpoints, so an adapter changes the messages (and the sampling
arguments that upstream leaves out), never the transport. Families, picked by model name with
`message_format=auto` (the osworld profile's default) or named explicitly:

- `openai` (gpt*, anything unknown): the chat as built. Upstream's GPT path sends it unchanged.
- `claude` (claude*): no system message; its text becomes the first part of the first user
  message. Images stay images.
- `gemini` (gemini-1.5-* and any other gemini*): the system message stays (upstream passes it as
  the system instruction); in every message the image comes before the text; `max_tokens` is not
  sent (upstream leaves Gemini's output limit unset). Upstream has this shape for
  gemini-1.5-pro-latest only and rejects other Gemini names; we use it for all of them.
- `gemini-pro` (exactly gemini-pro): text only (the model reads only the accessibility table, so
  the agent refuses other observation types); the system text is joined with a newline onto the
  first user text; `max_tokens` is not sent.
- `gemini-pro-vision` (exactly gemini-pro-vision): that model takes one turn, so the whole chat
  becomes one user message: each turn as `<|role|>` (user or model) on its own line, then its
  text, each followed by a newline, plus the current screenshot. Earlier screenshots are dropped.
"""

from __future__ import annotations

import copy
from typing import Any

FAMILIES = ("openai", "claude", "gemini", "gemini-pro", "gemini-pro-vision")
MessageFormat = str  # one of FAMILIES, or "auto"


def family_of(model: str | None) -> str:
    """The adapter a model name selects under `message_format=auto`."""
    name = (model or "").strip().lower().rsplit("/", 1)[-1]  # "vendor/claude-x" routes name a vendor
    if name.startswith("claude"):
        return "claude"
    if name == "gemini-pro":
        return "gemini-pro"
    if name == "gemini-pro-vision":
        return "gemini-pro-vision"
    if name.startswith("gemini"):
        return "gemini"
    return "openai"


def resolve(message_format: str, model: str | None) -> str:
    if message_format == "auto":
        return family_of(model)
    if message_format not in FAMILIES:
        raise ValueError(f"message_format {message_format!r}: expected auto or one of {', '.join(FAMILIES)}")
    return message_format


def _texts(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in message["content"] if p.get("type") == "text"]


def _images(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in message["content"] if p.get("type") == "image_url"]


def _first_text(message: dict[str, Any]) -> str:
    texts = _texts(message)
    return texts[0]["text"] if texts else ""


def _system_into_first_user(messages: list[dict[str, Any]], *, join: bool) -> list[dict[str, Any]]:
    """Drop the system message; put its text at the front of the next message: as a separate
    first part (`join=False`, upstream's Claude shape) or joined with a newline onto that
    message's first text (`join=True`, upstream's Gemini Pro shape)."""
    if len(messages) < 2 or messages[0]["role"] != "system":
        return messages
    system, first = messages[0], messages[1]
    if join:
        rest = list(first["content"])
        index = next((i for i, p in enumerate(rest) if p.get("type") == "text"), None)
        if index is None:
            rest.insert(0, {"type": "text", "text": _first_text(system)})
        else:
            rest[index] = {"type": "text", "text": _first_text(system) + "\n" + rest[index]["text"]}
        merged = {**first, "content": rest}
    else:
        merged = {**first, "content": [*_texts(system)[:1], *first["content"]]}
    return [merged, *messages[2:]]


def adapt(messages: list[dict[str, Any]], family: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(messages to send, sampling arguments to change) for `family`; the input is not modified."""
    if family == "openai":
        return messages, {}
    if family == "claude":
        return _system_into_first_user(messages, join=False), {}
    if family == "gemini":
        shaped = [{**m, "content": [*_images(m), *_texts(m)]} for m in messages]
        return shaped, {"max_tokens": None}
    if family == "gemini-pro":
        text_only = [{**m, "content": _texts(m)} for m in messages]
        return _system_into_first_user(text_only, join=True), {"max_tokens": None}
    if family == "gemini-pro-vision":
        # Only the current (last) message keeps its screenshot, as upstream.
        stripped = [{**m, "content": _texts(m)} for m in messages[:-1]] + [copy.copy(messages[-1])]
        merged = _system_into_first_user(stripped, join=True)
        roles = {"assistant": "model", "user": "user", "system": "system"}
        transcript = "".join(f"<|{roles.get(m['role'], m['role'])}|>\n{_first_text(m)}\n" for m in merged)
        content: list[dict[str, Any]] = [{"type": "text", "text": transcript}, *_images(messages[-1])[:1]]
        return [{"role": "user", "content": content}], {"max_tokens": None}
    raise ValueError(f"unknown message family {family!r}; expected one of {', '.join(FAMILIES)}")
