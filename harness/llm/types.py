"""Values the LLM layer hands back to agents: a completion (k choices) and its token usage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# OpenAI chat format: [{"role": "user", "content": "text" | [{"type": "text", ...}, {"type": "image_url", ...}]}]
Message = dict[str, Any]


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens
        )


@dataclass(frozen=True)
class Completion:
    """k choices for one request.

    `usage` is what the request consumed when it was paid for; `cost_usd` is what THIS call paid
    (0.0 when `cached`, i.e. replayed from the cache or shared with an identical in-flight call).
    """

    choices: list[str]
    usage: Usage
    cost_usd: float
    cached: bool
    request_hash: str
    model: str
    finish_reasons: list[str | None] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The first choice (the common n=1 case)."""
        return self.choices[0] if self.choices else ""


class Client(Protocol):
    """The seam agents depend on; LLMClient implements it (one per run, shared by all tasks)."""

    async def complete(self, messages: Sequence[Message], *, model: str | None = None, n: int = 1,
                       temperature: float | None = None, top_p: float | None = None, max_tokens: int | None = None,
                       stop: str | list[str] | None = None, task_id: str | None = None) -> Completion: ...

    async def embed(
        self, texts: Sequence[str], *, model: str | None = None, task_id: str | None = None
    ) -> list[list[float]]: ...

    def stats(self) -> dict[str, Any]: ...
