"""The LLM layer: providers, limits, one retry layer, cache, accounting (see docs/design/llm.md).

Agents use `LLMClient` (one per run) through the `Client` protocol. Names are imported lazily so
`python -m harness --help` does not pay for the openai SDK import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.llm.client import LLMClient
    from harness.llm.retry import LLMCallError
    from harness.llm.types import Client, Completion, Usage

__all__ = ["Client", "Completion", "LLMCallError", "LLMClient", "Usage"]
_HOMES = {"LLMClient": "client", "LLMCallError": "retry", "Client": "types", "Completion": "types", "Usage": "types"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"harness.llm.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'harness.llm' has no attribute {name!r}")
