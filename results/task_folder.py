"""The files of one task folder: its result (result.json, then OSWorld's result.txt), the
attempt marker (attempt.json) and the numbers of attempts moved aside.

A task is finished when `<domain>/<task_id>/result.json` exists and parses: it is written last,
atomically, and fsynced. Everything here blocks; RunStore runs it in a worker thread.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import orjson

from results.atomic import dump_json, fsync_dir, write_atomic
from results.layout import ATTEMPT_JSON, ATTEMPTS, RESULT_JSON, RESULT_TXT


def read_result(task_dir: Path) -> dict[str, Any] | None:
    """The task's result record, or None when the task is not finished."""
    try:
        obj = orjson.loads((task_dir / RESULT_JSON).read_bytes())
    except (FileNotFoundError, NotADirectoryError, orjson.JSONDecodeError):
        return None
    if not isinstance(obj, dict):
        return None
    score = obj.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        return None
    return obj


def write_result(directory: Path, record: dict[str, Any]) -> None:
    """result.txt (OSWorld's float) first, result.json last: result.json marks the task finished."""
    directory.mkdir(parents=True, exist_ok=True)
    if record["attempts"] is None:  # no attempt began in this session: count what is on disk
        record["attempts"] = next_attempt_number(directory) - 1
    # result.txt is derived from result.json (`repair_result_txt` rewrites it on open), so only
    # result.json's data is fsynced; one folder fsync then makes both renames durable.
    write_atomic(directory / RESULT_TXT, _result_txt(record["score"]), durable=False)
    write_atomic(directory / RESULT_JSON, dump_json(record), sync_dir=False)
    fsync_dir(directory)


def _result_txt(score: float) -> bytes:
    return f"{score}\n".encode()


def repair_result_txt(task_dir: Path, record: dict[str, Any]) -> bool:
    """Rewrite a missing or torn result.txt from result.json (after a power loss); True if it did."""
    want = _result_txt(record["score"])
    try:
        if (task_dir / RESULT_TXT).read_bytes() == want:
            return False
    except FileNotFoundError:
        pass
    write_atomic(task_dir / RESULT_TXT, want)
    return True


def attempt_marker(task_dir: Path) -> int | None:
    """Number of the attempt whose files are in the task folder, from its attempt.json."""
    try:
        number = orjson.loads((task_dir / ATTEMPT_JSON).read_bytes()).get("number")
    except (FileNotFoundError, orjson.JSONDecodeError, AttributeError):
        return None
    return number if isinstance(number, int) and not isinstance(number, bool) and number > 0 else None


def attempt_marker_bytes(number: int, session: int) -> bytes:
    return dump_json({"number": number, "session": session, "pid": os.getpid(), "started_at": time.time()})


def write_marker(directory: Path, marker: bytes) -> None:
    # Atomic, not fsynced: if a power loss takes it, the attempt's files are numbered by the next
    # free number when moved aside, and nothing else depends on it (results are fsynced).
    write_atomic(directory / ATTEMPT_JSON, marker, durable=False)


def create_task_dir(directory: Path) -> None:
    """Make a new task folder durable in its parent (and a new domain folder in the run folder)."""
    domain_created = not directory.parent.exists()
    directory.mkdir(parents=True, exist_ok=True)
    fsync_dir(directory.parent)
    if domain_created:
        fsync_dir(directory.parent.parent)


def visible_dirs(path: Path) -> list[os.DirEntry[str]]:
    try:
        return [e for e in os.scandir(path) if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")]
    except (FileNotFoundError, NotADirectoryError):
        return []


def moved_attempts(task_dir: Path) -> list[int]:
    return sorted(int(e.name) for e in visible_dirs(task_dir / ATTEMPTS) if e.name.isdigit())


def next_attempt_number(task_dir: Path) -> int:
    return 1 + max([*moved_attempts(task_dir), attempt_marker(task_dir) or 0])
