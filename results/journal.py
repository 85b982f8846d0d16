"""The run journal: append-only `events.jsonl`, one orjson object per line.

Every line is `{"ts": <epoch s>, "event": <name>, "session": <n>, ...fields}`. Appends go to an
in-memory buffer; the buffer is written with one write + fsync in a worker thread when it is
older than `flush_interval`, bigger than `max_buffer_bytes`, when a durable event asks for it,
on `flush()` and on `aclose()`. So thousands of events per second cost a list append each on
the loop, and a crash loses at most the last unflushed interval (the result files, not the
journal, are the source of truth for scores).

A crash can tear the last line. Readers skip lines that do not parse; the next writer starts
on a fresh line so the torn bytes never glue onto a good event.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import orjson

from harness.base.jsonl import read_jsonl
from results.atomic import append_bytes, ends_with_newline
from results.redact import redact

_RESERVED = frozenset({"ts", "event", "session"})
_EVENT_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # what scan_journal's prefix match accepts


def _dumps(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj, default=str, option=orjson.OPT_SERIALIZE_NUMPY)


class Journal:
    """Batched appender for one `events.jsonl`. One per process (the run lock ensures it)."""

    def __init__(
        self,
        path: Path,
        *,
        session: int,
        flush_interval: float = 0.25,
        max_buffer_bytes: int = 256 * 1024,
        limiter: anyio.CapacityLimiter | None = None,
        torn_tail: bool = False,
    ) -> None:
        self.path = path
        self.session = session
        self.flush_interval = flush_interval
        self.max_buffer_bytes = max_buffer_bytes
        self._limiter = limiter
        self._buf: list[bytes] = []
        self._buf_bytes = 0
        self._lock = anyio.Lock()
        self._last_flush = time.monotonic()
        self._needs_newline = torn_tail  # last line on disk is torn: start ours on a fresh line
        self._closed = False
        self.lines_written = 0
        self.flushes = 0  # write+fsync calls so far (batching makes this far below lines_written)
        self._emitted = 0  # lines buffered so far (a sequence number)
        self._flushed = 0  # lines up to this number are on disk

    @classmethod
    async def open(cls, path: Path, *, session: int, **kwargs: Any) -> Journal:
        # One stat + one byte read: cheap, but it is disk I/O, so off the loop.
        clean = await anyio.to_thread.run_sync(ends_with_newline, path, limiter=kwargs.get("limiter"))
        return cls(path, session=session, torn_tail=not clean, **kwargs)

    def emit(self, event: str, **fields: Any) -> None:
        """Buffer one event; never blocks, never awaits (usable from sync code)."""
        if self._closed:
            raise RuntimeError(f"journal {self.path} is closed; cannot log {event!r}")
        if not _EVENT_NAME.fullmatch(event):
            raise ValueError(f"journal event name {event!r} must match [A-Za-z0-9_.-]+")
        clash = _RESERVED & fields.keys()
        if clash:
            raise ValueError(f"journal event {event!r}: field names {sorted(clash)} are reserved")
        line = _dumps(
            {"ts": time.time(), "event": event, "session": self.session, **redact(fields, by_name=False)}
        )
        self._buf.append(line + b"\n")
        self._buf_bytes += len(line) + 1
        self._emitted += 1

    async def append(self, event: str, *, durable: bool = False, **fields: Any) -> None:
        """Buffer one event and flush if due; `durable=True` returns only once it is on disk."""
        self.emit(event, **fields)
        if durable:
            # Group commit: a flush that started after our line was buffered carries it; only if
            # none did do we flush ourselves (many durable events -> few write+fsync calls).
            mine = self._emitted
            while self._flushed < mine:
                async with self._lock:
                    if self._flushed >= mine or not self._buf:
                        break
                    await self._flush_locked()
            return
        if self._lock.locked():
            return  # a flush is in progress; this line goes with the next one
        if (
            self._buf_bytes >= self.max_buffer_bytes
            or time.monotonic() - self._last_flush >= self.flush_interval
        ):
            await self.flush()

    async def flush(self) -> None:
        """Write everything buffered so far (one write + fsync in a worker thread)."""
        async with self._lock:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        if not self._buf:
            return
        upto = self._emitted  # every buffered line is in this write
        data = b"".join(self._buf)
        if self._needs_newline:
            data = b"\n" + data
        pieces = len(self._buf)
        self._buf.clear()
        self._buf_bytes = 0
        try:
            # fsync blocks for ~1 ms: worker thread. Not abandoned on cancel, so a
            # started write always completes and the buffer state stays truthful.
            await anyio.to_thread.run_sync(append_bytes, self.path, data, limiter=self._limiter)
        except BaseException:
            # Keep the lines for a later flush; the file may now end mid-line.
            self._buf.insert(0, data.lstrip(b"\n"))
            self._buf_bytes += len(data)
            self._needs_newline = True
            raise
        self._needs_newline = False
        self._flushed = max(self._flushed, upto)
        self.lines_written += pieces
        self.flushes += 1
        self._last_flush = time.monotonic()

    async def run_flusher(self) -> None:
        """Flush every `flush_interval` until cancelled; start it in the engine's task group."""
        try:
            while not self._closed:
                await anyio.sleep(self.flush_interval)
                await self.flush()
        finally:
            with anyio.CancelScope(shield=True):
                if not self._closed:
                    await self.flush()

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self.flush()
            self._closed = True


# ---- reading ---------------------------------------------------------------------------------


def iter_lines(path: Path) -> Iterator[bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for line in data.split(b"\n"):
        if line.strip():
            yield line


def read_events(path: Path) -> tuple[list[dict[str, Any]], int]:
    """All parseable events, and how many lines were skipped as torn or foreign. Blocking."""
    records, skipped = read_jsonl(path)
    events = [r for r in records if isinstance(r.get("event"), str)]
    return events, skipped + len(records) - len(events)


# Our writer puts ts, event, session first, so a prefix match reads them without parsing the
# whole line (journals can hold millions of lines; this keeps `RunStore.open` fast).
_PREFIX = re.compile(
    rb'^\{"ts":(-?[0-9.]+(?:[eE][+-]?[0-9]+)?),"event":"([A-Za-z0-9_.-]*)","session":([0-9]+)'
)


@dataclass
class SessionSpan:
    session: int
    started: float | None = None
    stopped: float | None = None
    last_ts: float | None = None
    stop_reason: str | None = None

    def wall_s(self, now: float | None = None) -> float:
        """Seconds this session ran; a session that never logged run_stopped ends at its last event."""
        if self.started is None:
            return 0.0
        end = self.stopped if self.stopped is not None else (now if now is not None else self.last_ts)
        return max(0.0, (end or self.started) - self.started)


@dataclass
class JournalScan:
    sessions: dict[int, SessionSpan] = field(default_factory=dict)
    planned: list[tuple[str, str]] | None = None
    counts: dict[str, int] = field(default_factory=dict)  # events per name
    finished: set[tuple[str, str]] = field(default_factory=set)  # (domain, task_id) of task_finished
    lines: int = 0
    unreadable: int = 0

    @property
    def last_session(self) -> int:
        return max(self.sessions, default=0)


def scan_journal(path: Path) -> JournalScan:
    """Session spans and the last task plan, reading only line prefixes where possible. Blocking."""
    scan = JournalScan()
    for line in iter_lines(path):
        scan.lines += 1
        m = _PREFIX.match(line)
        if m is None:
            scan.unreadable += 1
            continue
        ts, event, session = float(m.group(1)), m.group(2), int(m.group(3))
        name = event.decode()
        scan.counts[name] = scan.counts.get(name, 0) + 1
        span = scan.sessions.setdefault(session, SessionSpan(session))
        span.last_ts = ts if span.last_ts is None else max(span.last_ts, ts)
        if event == b"run_started":
            span.started = ts if span.started is None else min(span.started, ts)
        elif event == b"run_stopped":
            span.stopped = ts
            try:
                span.stop_reason = orjson.loads(line).get("reason")
            except orjson.JSONDecodeError:
                pass
        elif event == b"task_finished":  # one per task: cheap to parse
            try:
                record = orjson.loads(line)
                scan.finished.add((str(record["domain"]), str(record["task_id"])))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                pass
        elif event == b"tasks_planned":
            try:  # rare event: parse now, keep the last plan that reads whole
                tasks = orjson.loads(line).get("tasks") or []
                scan.planned = [(str(d), str(t)) for d, t in tasks]
            except (orjson.JSONDecodeError, ValueError, TypeError):
                pass
    return scan
