"""Names and paths of the run directory (see docs/design/run-directory.md)."""

from __future__ import annotations

import re
from pathlib import Path

from harness.base.errors import TaskError

# Top level: only files, so OSWorld's readers (which treat every top-level folder as a domain)
# see nothing but domains.
RUN_JSON = "run.json"
EVENTS = "events.jsonl"
SUMMARY = "summary.json"
LOCK = ".lock"
TOP_LEVEL_FILES = frozenset({RUN_JSON, EVENTS, SUMMARY, LOCK})

# Per task `<domain>/<task_id>/`.
TRAJ = "traj.jsonl"
RESULT_TXT = "result.txt"
RESULT_JSON = "result.json"
ATTEMPT_JSON = "attempt.json"  # written first by every attempt: its number, session, start time
ATTEMPTS = "attempts"  # unfinished earlier attempts, moved aside to attempts/<n>/
RESERVED_TASK_FILES = frozenset({RESULT_TXT, RESULT_JSON, ATTEMPT_JSON, ATTEMPTS})

TaskKey = tuple[str, str]


def check_component(value: object, what: str, key: TaskKey) -> str:
    """A domain or task id must be one plain, visible folder name."""
    where = f"task {key[0]}/{key[1]}"
    if not isinstance(value, str) or not value:
        raise TaskError(f"{where}: {what} must be a non-empty string, got {value!r}")
    if value in (".", "..") or value.startswith(".") or any(c in value for c in "/\\\0"):
        raise TaskError(f"{where}: {what} {value!r} is not a plain folder name (no '/', '\\', leading '.')")
    if len(value.encode()) > 200:
        raise TaskError(f"{where}: {what} is longer than 200 bytes")
    if what == "domain" and value in TOP_LEVEL_FILES:
        raise TaskError(f"{where}: domain {value!r} collides with the run directory's {value}")
    return value


def task_dir(run_dir: Path, domain: str, task_id: str) -> Path:
    key = (domain, task_id)
    return run_dir / check_component(domain, "domain", key) / check_component(task_id, "task id", key)


_NOT_IN_NAMES = re.compile(r"[/\\\x00-\x1f\x7f]")  # path separators and control characters


def check_file_name(name: str) -> str:
    """A file an attempt may write or append to in its task folder: a plain name (no path
    separator or control character, no leading `.`, at most 200 characters), not one of the run
    store's own files (traj.jsonl included: steps go through record_step). Cluster workers' file
    names are checked by the same rule."""
    if not isinstance(name, str) or not name or name.startswith(".") or len(name) > 200 or _NOT_IN_NAMES.search(name):
        raise ValueError(f"attempt file name {str(name)[:80]!r} must be a plain name without '/', control "
                         "characters or a leading '.'")
    if name in RESERVED_TASK_FILES or name == TRAJ:
        raise ValueError(f"attempt file name {name!r} is reserved by the run directory")
    return name
