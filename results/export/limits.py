"""The OpenAI chat fine-tuning rules that `export --check` enforces, with where each number comes from.

Numbers we could not confirm from one authoritative page are flags with a documented default
(docs/design/exploratory-learning.md has the table and the sources).
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024

ROLES = frozenset({"system", "user", "assistant", "tool", "function"})
MESSAGE_KEYS = frozenset({"role", "content", "name", "weight", "tool_calls", "function_call", "tool_call_id",
                          "refusal"})
TOP_LEVEL_KEYS = frozenset({"messages", "tools", "parallel_tool_calls", "functions"})
IMAGE_MIME = frozenset({"image/jpeg", "image/png", "image/webp"})
IMAGE_DETAIL = frozenset({"low", "high", "auto"})


@dataclass(frozen=True)
class Limits:
    max_images_per_example: int = 64  # vision fine-tuning guide (Azure copy); an OpenAI copy says 10
    max_image_bytes: int = 10 * MB  # vision fine-tuning guide
    max_image_examples: int = 50_000  # examples with images per training file, vision fine-tuning guide
    max_file_bytes: int = 512 * MB  # Files API: individual files up to 512 MB
    max_example_tokens: int = 65_536  # model-dependent (gpt-4o-mini training context); estimate, flag
    min_examples: int = 10  # fine-tuning guide: at least 10 examples


DEFAULT_LIMITS = Limits()
