"""What the head accepts from a cluster worker: every streamed event is checked before it is written.

A worker runs code the head does not control (another machine, another install), so the head
trusts nothing it sends: an event of the wrong shape, a step number out of range, a file name
with path parts or one of the run directory's own files, a result whose score is not a number in
[0, 1] or whose fields have the wrong types, all fail that attempt with `MalformedEvent` (a
SandboxError: the engine records an infrastructure failure and retries the attempt, on any worker),
never the engine. Unknown event kinds are logged and skipped (a newer worker may send more).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import orjson

from harness.base.errors import SandboxError
from harness.base.faults import FAULTS, PHASES
from results.layout import check_file_name

log = logging.getLogger("harness.cluster")

MAX_STEP = 100_000  # deeper than any agent's step budget; a bigger number is not a step
MAX_BYTES = 256 << 20  # one screenshot or artifact
MAX_JSON_BYTES = 4 << 20  # one step record, JSONL line or result, serialized
MAX_TEXT = 100_000  # one string field of a result
# Result fields an attempt runner produces (harness.engine.LocalAttemptRunner), with their checks.
_TEXT_FIELDS = ("error", "eval_error", "last_action")


class MalformedEvent(SandboxError):
    """A worker sent an event the head does not accept (the attempt fails; the engine retries it)."""


def file_name(name: Any) -> str:
    """A plain file name in the task folder that is not one of the run store's own files (the
    rule a local attempt's files follow: results.layout.check_file_name)."""
    try:
        return check_file_name(name)
    except ValueError as e:
        raise MalformedEvent(f"file name: {e}") from None


def _blob(data: Any, what: str) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedEvent(f"{what}: expected bytes, got {type(data).__name__}")
    if len(data) > MAX_BYTES:
        raise MalformedEvent(f"{what}: {len(data)} bytes, more than {MAX_BYTES}")
    return bytes(data)


def _json(obj: Any, what: str) -> None:
    try:
        size = len(orjson.dumps(obj, default=str))  # as the run store writes it (results/attempt.py)
    except (TypeError, orjson.JSONEncodeError) as e:
        raise MalformedEvent(f"{what}: not JSON ({e})") from None
    if size > MAX_JSON_BYTES:
        raise MalformedEvent(f"{what}: {size} bytes of JSON, more than {MAX_JSON_BYTES}")


def _number(value: Any, what: str, *, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not low <= value <= high:
        raise MalformedEvent(f"{what}: expected a number in [{low:g}, {high:g}], got {str(value)[:40]!r}")
    return float(value)


def _count(value: Any, what: str, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise MalformedEvent(f"{what}: expected an integer in [0, {high}], got {str(value)[:40]!r}")
    return value


def step(record: Any, png: Any) -> tuple[dict[str, Any], bytes | None]:
    if not isinstance(record, dict):
        raise MalformedEvent(f"step: expected a record, got {type(record).__name__}")
    n = record.get("step_num")
    if n is not None and (_count(n, "step_num", MAX_STEP) < 1):
        raise MalformedEvent("step_num: expected an integer >= 1, got 0")
    if record.get("screenshot_file"):  # an agent's own screenshot name (OSWorld-interface agents)
        file_name(record["screenshot_file"])
    _json(record, "step record")
    return record, None if png is None else _blob(png, "screenshot")


def result(value: Any, worker_s: Any) -> tuple[dict[str, Any], float]:
    """The attempt's result, checked field by field (unknown fields are refused)."""
    if not isinstance(value, dict):
        raise MalformedEvent(f"result: expected a mapping, got {type(value).__name__}")
    checked: dict[str, Any] = {"score": _number(value.get("score"), "result score", high=1.0)}
    for key, item in value.items():
        if key == "score":
            continue
        if key in _TEXT_FIELDS:
            if item is not None and not isinstance(item, str):
                raise MalformedEvent(f"result {key}: expected text or null, got {type(item).__name__}")
            checked[key] = None if item is None else item[:MAX_TEXT]
        elif key == "fault":
            if item is not None and item not in FAULTS:
                raise MalformedEvent(f"result fault: expected one of {', '.join(FAULTS)}, got {str(item)[:40]!r}")
            checked[key] = item
        elif key == "phase":
            if item is not None and item not in PHASES:
                raise MalformedEvent(f"result phase: expected one of {', '.join(PHASES)}, got {str(item)[:40]!r}")
            checked[key] = item
        elif key == "steps":
            checked[key] = _count(item, "result steps", MAX_STEP)
        elif key == "cost_usd":
            checked[key] = _number(item, "result cost_usd")
        elif key == "tokens":
            if not isinstance(item, dict) or set(item) - {"prompt", "completion"}:
                raise MalformedEvent("result tokens: expected {'prompt': n, 'completion': n}")
            checked[key] = {k: _count(v, f"result tokens.{k}", 1 << 40) for k, v in item.items()}
        elif key in ("evaluation", "notes"):
            if not isinstance(item, list):
                raise MalformedEvent(f"result {key}: expected a list, got {type(item).__name__}")
            checked[key] = item
        else:
            raise MalformedEvent(f"result: unexpected field {str(key)[:40]!r}")
    _json(checked, "result")
    return checked, _number(worker_s, "worker seconds")


def error(kind: Any, message: Any) -> tuple[str, str]:
    if kind not in ("sandbox", "other") or not isinstance(message, str):
        raise MalformedEvent("error: expected ('error', 'sandbox' | 'other', message)")
    return kind, message[:2000]


_seen_unknown: set[str] = set()


def unknown(kind: Any) -> None:
    """Log an event kind this head does not know, once per kind."""
    name = str(kind)[:40]
    if name not in _seen_unknown:
        _seen_unknown.add(name)
        log.warning("cluster worker sent an event of unknown kind %r: skipped", name)


def parse(event: Any) -> tuple[Any, ...]:
    """(kind, checked fields...) of one streamed event; MalformedEvent if its shape is wrong."""
    if not isinstance(event, tuple | list) or not event or not isinstance(event[0], str):
        raise MalformedEvent(f"event: expected a tuple starting with its kind, got {type(event).__name__}")
    kind, args = event[0], tuple(event[1:])
    arity = {"step": 2, "file": 3, "jsonl": 2, "result": 2, "error": 2}.get(kind)
    if arity is None:
        return (kind,)
    if len(args) != arity:
        raise MalformedEvent(f"{kind} event: expected {arity} fields, got {len(args)}")
    if kind == "step":
        return ("step", *step(*args))
    if kind == "file":
        if not isinstance(args[2], bool):
            raise MalformedEvent("file event: `durable` must be true or false")
        return ("file", file_name(args[0]), _blob(args[1], f"file {args[0]}"), args[2])
    if kind == "jsonl":
        _json(args[1], f"jsonl line for {str(args[0])[:40]}")
        return ("jsonl", file_name(args[0]), args[1])
    if kind == "result":
        return ("result", *result(*args))
    return ("error", *error(*args))
