"""Responses stored in SQLite, keyed by a hash of the full request, plus single-flight.

A hit returns the stored answer whatever the sampling parameters: replay after resume must see
exactly what the first run saw. One connection, used from one worker thread at a time (a
CapacityLimiter of 1), WAL mode so readers in other processes are not blocked. Identical
requests in flight at the same moment share the first one's answer instead of paying twice.
Writes are group-committed: puts that arrive while a write is running go into the next
transaction together (one thread hop and one commit for all of them), and each put still
returns only once its rows are committed.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio
import anyio.lowlevel
import orjson

from harness.base.group_commit import GroupCommit
from harness.llm.image_key import ScreenMask, image_bytes, masked_digest

log = logging.getLogger(__name__)
T = TypeVar("T")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    value BLOB NOT NULL,
    created REAL NOT NULL
)
"""
_HASH_IN_THREAD = 256 * 1024  # screenshots make requests large: hash those off the loop
_INLINE_MIN = 1024  # data URLs at least this long enter the key by their own digest
_INLINE_DIGESTS: dict[Any, str] = {}  # data URL (or (mask, data URL)) -> digest; bounded by _INLINE_MEMO
_INLINE_MEMO = 4096


def _inline_digest(text: str, mask: ScreenMask | None = None) -> str:
    """Digest of one inline image, computed once per screenshot: of its bytes, or with a `mask`
    of its pixels outside the masked regions (image_key.py).

    An agent resends each screenshot in several requests (history), usually as the same str
    object; str hashes are cached per object, so a repeat costs a dict lookup, not a SHA-256 pass.
    """
    memo_key: Any = text if not mask else (mask, text)
    digest = _INLINE_DIGESTS.get(memo_key)
    if digest is None:
        if len(_INLINE_DIGESTS) >= _INLINE_MEMO:
            _INLINE_DIGESTS.clear()  # rare; clearing whole keeps the memo lock-free across threads
        data = image_bytes(text) if mask else None
        masked = masked_digest(data, mask) if data and mask else None  # None: not an image
        digest = _INLINE_DIGESTS[memo_key] = masked or "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return digest


def _is_inline(value: Any) -> bool:
    return isinstance(value, str) and len(value) >= _INLINE_MIN and value.startswith("data:")


def _canonical(value: Any, mask: ScreenMask | None = None) -> Any:
    """The payload with every long data URL (and Anthropic's base64 image sources) replaced by
    its digest (same content, same key)."""
    if isinstance(value, str):
        return _inline_digest(value, mask) if _is_inline(value) else value
    if isinstance(value, dict):
        data = value.get("data")
        if value.get("type") == "base64" and isinstance(data, str) and len(data) >= _INLINE_MIN:
            return {**value, "data": _inline_digest(data, mask)}
        return {k: _canonical(v, mask) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v, mask) for v in value]
    return value


def _canonical_payload(payload: dict[str, Any], mask: ScreenMask | None) -> dict[str, Any]:
    """`_canonical` for a chat payload: only message contents can hold images, so only they are
    walked (the generic walk visited every small dict of every message part)."""
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return _canonical(payload, mask)
    out = dict(payload)
    out["messages"] = [_canonical_message(m, mask) for m in messages]
    return out


def _canonical_message(message: Any, mask: ScreenMask | None) -> Any:
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return _canonical(message, mask)
    parts = []
    for part in content:
        image = part.get("image_url") if isinstance(part, dict) else None
        url = image.get("url") if isinstance(image, dict) else None
        if _is_inline(url):
            part = {**part, "image_url": {**image, "url": _inline_digest(url, mask)}}
        elif not (isinstance(part, dict) and part.get("type") == "text"):
            part = _canonical(part, mask)
        parts.append(part)
    return {**message, "content": parts}


def _digest(payload: dict[str, Any], mask: ScreenMask | None = None) -> str:
    canonical = _canonical_payload(payload, mask)
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def request_hash(payload: dict[str, Any], *, size_hint: int = 0, mask: ScreenMask | None = None) -> str:
    """sha256 of the canonical JSON of everything that determines the answer; with a `mask`,
    inline images count by their pixels outside its regions (decoded: off the loop)."""
    if size_hint > _HASH_IN_THREAD or (mask and size_hint > _INLINE_MIN):
        return await anyio.to_thread.run_sync(_digest, payload, mask)
    digest = _digest(payload, mask)
    # Yield once: with hundreds of agents woken together, each step's work then runs in shorter
    # loop slices and timers (progress, deadlines) are not held up behind all of them.
    await anyio.lowlevel.checkpoint()
    return digest


def sync_request_hash(payload: dict[str, Any]) -> str:
    return _digest(payload)


Row = tuple[str, str, str, bytes]  # key, kind, model, encoded value


class Cache(Protocol):
    """What the client needs from its response cache: this process's SQLite file
    (`ResponseCache`), or a cache service that several processes share (harness/cluster/)."""

    enabled: bool
    hits: int
    misses: int

    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    async def put(self, key: str, kind: str, model: str, value: dict[str, Any]) -> None: ...

    async def put_many(self, rows: Sequence[tuple[str, str, str, dict[str, Any]]]) -> None: ...

    def claim(self, key: str) -> AbstractAsyncContextManager[dict[str, Any] | None]:
        """The stored value, or None: then the caller leads (pays and `put`s) while inside.

        A shared cache makes identical requests of other processes wait for the leader's answer
        here; in one process `SingleFlight` already merges them, so a local claim is a `get`.
        """
        ...

    async def aclose(self) -> None: ...


class ResponseCache:
    def __init__(self, path: str | Path | None, *, enabled: bool = True) -> None:
        self.path = Path(path) if path is not None else None
        self.enabled = enabled and path is not None
        self.hits = 0
        self.misses = 0
        self._conn: sqlite3.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)
        # Keys in the file (loaded once, then kept by our own puts): a miss - every new request -
        # is answered on the loop instead of by a worker-thread query. Another process writing
        # the same file meanwhile only costs a paid call, never a wrong answer.
        self._keys: set[str] = set()
        self._keys_loaded = False
        self._commit: GroupCommit[Row] = GroupCommit(self._write_rows)  # one transaction per batch of puts

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute(_SCHEMA)
            self._conn = conn
        return self._conn

    def _load_keys(self) -> set[str]:
        return {key for (key,) in self._connect().execute("SELECT key FROM responses")}

    def _get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        conn = self._connect()
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), 500):  # stay under SQLite's variable limit
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for key, value in conn.execute(f"SELECT key, value FROM responses WHERE key IN ({marks})", chunk):
                found[key] = value
        return found

    def _put_many(self, rows: Sequence[Row]) -> None:
        conn = self._connect()
        now = time.time()
        with conn:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT OR REPLACE INTO responses (key, kind, model, value, created) VALUES (?, ?, ?, ?, ?)",
                [(*row, now) for row in rows],
            )

    async def get(self, key: str) -> dict[str, Any] | None:
        found = await self.get_many([key])
        return found.get(key)

    async def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not self.enabled or not keys:
            return {}
        try:
            if not self._keys_loaded:
                self._keys |= await self._run(self._load_keys)
                self._keys_loaded = True
            stored = [k for k in keys if k in self._keys]
            raw = await self._run(self._get_many, stored) if stored else {}
        except sqlite3.Error as e:
            log.warning("LLM cache %s unreadable, treating as a miss: %s", self.path, e)
            return {}
        self.hits += len(raw)
        self.misses += len(keys) - len(raw)
        return {k: orjson.loads(v) for k, v in raw.items()}

    async def put(self, key: str, kind: str, model: str, value: dict[str, Any]) -> None:
        await self.put_many([(key, kind, model, value)])

    @asynccontextmanager
    async def claim(self, key: str) -> AsyncIterator[dict[str, Any] | None]:
        yield await self.get(key)

    async def put_many(self, rows: Sequence[tuple[str, str, str, dict[str, Any]]]) -> None:
        if not self.enabled or not rows:
            return
        batch = self._commit.submit(*((k, kind, model, orjson.dumps(v)) for k, kind, model, v in rows))
        # Our batch is written by whoever finds no write running: us, or a later caller of it.
        await self._commit.wait(batch, shield=False)  # the write itself is shielded: a paid answer is kept
        if isinstance(batch.error, sqlite3.Error):  # a lost cache write costs money later, not correctness now
            log.warning("LLM cache %s write failed: %s", self.path, batch.error)
        elif batch.error is not None:
            raise batch.error

    async def _write_rows(self, rows: list[Row]) -> None:
        await self._run(self._put_many, rows)
        self._keys.update(row[0] for row in rows)

    async def aclose(self) -> None:
        await self._commit.drain()  # rows of cancelled puts
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with anyio.CancelScope(shield=True):
                await self._run(conn.close)


class SingleFlight:
    """At most one execution per key at a time; concurrent callers share its result."""

    def __init__(self) -> None:
        self._inflight: dict[str, tuple[anyio.Event, list[Any]]] = {}

    async def run(self, key: str, fn: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """(result, shared): shared is True when another caller's execution produced it."""
        while True:
            entry = self._inflight.get(key)
            if entry is None:
                break
            event, box = entry
            await event.wait()
            if box:
                return box[0], True
            # The leader failed or was cancelled: try to lead ourselves.
        event, box = anyio.Event(), []
        self._inflight[key] = (event, box)
        try:
            result = await fn()
            box.append(result)
            return result, False
        finally:
            del self._inflight[key]
            event.set()
