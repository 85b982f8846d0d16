"""Reading JSON-lines files that a crash may have torn: one rule for every reader.

Writers append whole lines, so the only damage a crash leaves is a torn last line. Readers skip
any line that does not parse as a JSON object and count it, so a caller can say "1 line
skipped" instead of failing or silently losing the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson


def parse_jsonl(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """The objects of JSON-lines `data`, and how many non-blank lines were skipped (torn or not objects)."""
    out: list[dict[str, Any]] = []
    skipped = 0
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            skipped += 1
            continue
        if isinstance(obj, dict):
            out.append(obj)
        else:
            skipped += 1
    return out, skipped


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], int]:
    """`parse_jsonl` of a file; a missing file is empty. Blocking."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return [], 0
    return parse_jsonl(data)
