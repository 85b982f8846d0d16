"""Reflection memory: SQLite records shared by the tasks of a run (or of several runs), and retrieval.

One file per run by default (<run_dir>/reflections.sqlite); `reflection_path` shares one across
runs. Writers and readers in many tasks (and processes) are safe: WAL mode, a busy timeout, one
short transaction per operation, all in worker threads. A task sees exactly the records created
before it started: a task's reflections become visible to tasks that start after it ends, never
to tasks running alongside it (so results do not depend on scheduling order).

Retrieval (on every policy call): embed "Task: {instruction}\\nObservation:\\n{a11y text}" and
return the top-k records by cosine similarity above a floor. Without an embedding model, a
word-overlap cosine stands in (lexical fallback) with its own floor.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reflections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    task_id TEXT NOT NULL,
    instruction TEXT NOT NULL,
    state_text TEXT NOT NULL,
    action TEXT NOT NULL,
    next_state_text TEXT NOT NULL,
    reflection TEXT NOT NULL,
    success INTEGER NOT NULL,
    surprise REAL NOT NULL,
    embedding_model TEXT,
    embedding TEXT
);
CREATE INDEX IF NOT EXISTS reflections_created ON reflections (created_at);
"""
_KEY_TEXT_CHARS = 8000  # embedding inputs stay far below any model's input limit


@dataclass
class Reflection:
    id: int
    created_at: float
    task_id: str
    instruction: str
    state_text: str
    action: str
    next_state_text: str
    reflection: str
    success: bool
    surprise: float
    embedding_model: str | None = None
    embedding: list[float] | None = None

    @property
    def key_text(self) -> str:
        return key_text(self.instruction, self.state_text)


def key_text(instruction: str, state_text: str) -> str:
    return f"Task: {instruction}\nObservation:\n{state_text}"[:_KEY_TEXT_CHARS]


def _enable_wal(conn: sqlite3.Connection, *, deadline_s: float = 30.0) -> None:
    """Switch to WAL. SQLite answers a journal-mode change that races another connection with
    SQLITE_BUSY at once (the busy handler is not consulted), so retry it for a while."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class ReflectionStore(Protocol):
    """Where an agent's reflections live: this SQLite file (ReflectionMemory), or the head's copy
    of it when tasks run on cluster workers (harness/cluster/reflections.py)."""

    async def add(self, rows: Sequence[Reflection]) -> list[int]: ...

    async def visible(self, before: float) -> list[Reflection]: ...


class ReflectionMemory:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._ready = False
        self._init_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 30000")
        if not self._ready:
            # One initializer per process; other processes may race us on the same file.
            with self._init_lock:
                if not self._ready:
                    _enable_wal(conn)
                    conn.executescript(_SCHEMA)
                    self._ready = True
        return conn

    def _add(self, rows: list[Reflection]) -> list[int]:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            ids = []
            for r in rows:
                cur = conn.execute(
                    "INSERT INTO reflections (created_at, task_id, instruction, state_text, action, next_state_text,"
                    " reflection, success, surprise, embedding_model, embedding) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (r.created_at, r.task_id, r.instruction, r.state_text, r.action, r.next_state_text, r.reflection,
                     int(r.success), r.surprise, r.embedding_model,
                     json.dumps(r.embedding) if r.embedding is not None else None))
                ids.append(int(cur.lastrowid or 0))
            conn.execute("COMMIT")
            return ids
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def _visible(self, before: float) -> list[Reflection]:
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT id, created_at, task_id, instruction, state_text, action, next_state_text, reflection, success,"
                " surprise, embedding_model, embedding FROM reflections WHERE created_at < ? ORDER BY id", (before,)
            ).fetchall()
        finally:
            conn.close()
        return [Reflection(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8]), r[9], r[10],
                           json.loads(r[11]) if r[11] else None) for r in rows]

    async def add(self, rows: Sequence[Reflection]) -> list[int]:
        """Store records (created now); returns their ids."""
        return await anyio.to_thread.run_sync(self._add, list(rows))

    async def visible(self, before: float) -> list[Reflection]:
        """Records created before `before` (the reading task's start time)."""
        return await anyio.to_thread.run_sync(self._visible, before)


# -- similarity -------------------------------------------------------------------------------------------
def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


_WORD = re.compile(r"\w+")


def bag(text: str) -> Counter[str]:
    return Counter(w.lower() for w in _WORD.findall(text))


def lexical_similarity(a: Counter[str], b: Counter[str]) -> float:
    """Cosine of word-count vectors (0 .. 1)."""
    dot = sum(v * b.get(w, 0) for w, v in a.items())
    na = math.sqrt(sum(v * v for v in a.values()))
    nb = math.sqrt(sum(v * v for v in b.values()))
    return dot / (na * nb) if na and nb else 0.0


class Retriever:
    """One task's view of the memory: the records visible at its start, ranked per query."""

    def __init__(self, rows: list[Reflection], llm: Any, meter: Any, *, embedding_model: str | None, k: int,
                 min_score: float, lexical_min_score: float) -> None:
        self.rows = rows
        self.llm = llm
        self.meter = meter
        self.embedding_model = embedding_model
        self.k = k
        self.min_score = min_score
        self.lexical_min_score = lexical_min_score
        self.mode = "embedding" if embedding_model else "lexical"
        self._vectors: dict[int, list[float]] | None = None
        self._bags: dict[int, Counter[str]] = {}

    async def _row_vectors(self, task_id: str | None) -> dict[int, list[float]]:
        if self._vectors is None:
            vectors = {r.id: r.embedding for r in self.rows
                       if r.embedding is not None and r.embedding_model == self.embedding_model}
            missing = [r for r in self.rows if r.id not in vectors]
            if missing:  # stored under another model or none: embed once (the LLM cache keeps them)
                embedded = await self.llm.embed([r.key_text for r in missing], model=self.embedding_model,
                                                task_id=task_id)
                self.meter.calls["embed"] += 1
                vectors.update({r.id: v for r, v in zip(missing, embedded, strict=True)})
            self._vectors = vectors  # type: ignore[assignment]
        return self._vectors  # type: ignore[return-value]

    async def retrieve(self, instruction: str, state_text: str, *, task_id: str | None) -> list[tuple[Reflection, float]]:
        if not self.rows or self.k <= 0:
            return []
        query = key_text(instruction, state_text)
        if self.mode == "embedding":
            try:
                vectors = await self._row_vectors(task_id)
                (qv,) = await self.llm.embed([query], model=self.embedding_model, task_id=task_id)
                self.meter.calls["embed"] += 1
            except Exception as e:  # retrieval helps the policy; a broken embedding endpoint must not end the task
                log.warning("reflection retrieval: embedding failed (%s); using word overlap for this task", e)
                self.mode = "lexical"
            else:
                scored = [(r, cosine(qv, vectors[r.id])) for r in self.rows]
                return self._top(scored, self.min_score)
        qb = bag(query)
        scored = []
        for r in self.rows:
            if r.id not in self._bags:
                self._bags[r.id] = bag(r.key_text)
            scored.append((r, lexical_similarity(qb, self._bags[r.id])))
        return self._top(scored, self.lexical_min_score)

    def _top(self, scored: list[tuple[Reflection, float]], floor: float) -> list[tuple[Reflection, float]]:
        kept = [(r, s) for r, s in scored if s >= floor]
        kept.sort(key=lambda rs: (-rs[1], rs[0].id))
        return kept[: self.k]


def truncate_tokens(text: str, max_tokens: int) -> str:
    """About `max_tokens` tokens of text (4 characters per token), cut at a word."""
    limit = max_tokens * 4
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " ..."


def reflections_block(found: Sequence[tuple[Reflection, float]], header: str, entry_tokens: int) -> str | None:
    """The REFLECTIONS block for the policy prompt (None when nothing was retrieved)."""
    if not found:
        return None
    lines = [header]
    for i, (r, _) in enumerate(found, 1):
        lines += [f"[{i}] OBJECTIVE: {truncate_tokens(r.instruction, entry_tokens)}",
                  f"ATTEMPTED ACTION: {truncate_tokens(r.action, entry_tokens)}",
                  f"REFLECTION: {truncate_tokens(r.reflection, entry_tokens)}"]
    return "\n".join(lines)


def now() -> float:
    return time.time()
