"""Reflection texts for the tree view: R-MCTS nodes list the ids of the reflections retrieved for
them; the records live in the agent's SQLite memory (`<run>/reflections.sqlite` by default, or
the agent option `reflection_path`). Opened read-only; a missing or busy store leaves the ids."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

REFLECTIONS_FILE = "reflections.sqlite"
_COLUMNS = ("id", "task_id", "instruction", "action", "reflection", "success", "surprise")


class ReflectionLookup:
    def __init__(self, run_dir: Path, config: dict[str, Any]) -> None:
        options = config.get("agent_options") if isinstance(config.get("agent_options"), dict) else {}
        custom = options.get("reflection_path") if options else None
        self.path = Path(custom) if isinstance(custom, str) and custom else run_dir / REFLECTIONS_FILE
        self._rows: dict[int, dict[str, Any]] | None = None
        self.problem: str | None = None

    def _load(self) -> dict[int, dict[str, Any]]:
        if self._rows is not None:
            return self._rows
        self._rows = {}
        if not self.path.is_file():
            return self._rows
        try:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
            try:
                rows = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM reflections").fetchall()
            finally:
                conn.close()
        except sqlite3.Error as e:
            self.problem = f"{self.path}: reflections not readable ({e})"
            return self._rows
        self._rows = {int(r[0]): dict(zip(_COLUMNS, r, strict=True)) for r in rows}
        return self._rows

    def resolve(self, value: Any) -> Any:
        """A node's `reflections`: integer ids become their records; anything else is kept."""
        if not isinstance(value, list) or not value or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return value
        rows = self._load()
        return [rows.get(v, {"id": v, "reflection": "(not in the reflection store)"}) for v in value]
