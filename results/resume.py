"""Which tasks of a run directory are finished, and moving an unfinished attempt aside.

A task is finished when `<domain>/<task_id>/result.json` exists and parses (it is written last,
atomically). Anything else in a task folder belongs to an unfinished attempt and is moved to
`attempts/<n>/` before the next attempt starts; nothing is ever deleted.

Everything here blocks (directory scans, renames, fsync); RunStore runs it in a worker thread.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.base.errors import HarnessError
from results.atomic import fsync_dir, is_temp_name
from results.layout import ATTEMPT_JSON, ATTEMPTS, RESULT_JSON, TaskKey
from results.task_folder import (
    attempt_marker,
    attempt_marker_bytes,
    create_task_dir,
    moved_attempts,
    next_attempt_number,
    read_result,
    visible_dirs,
    write_marker,
)


class DuplicateResultError(HarnessError):
    """A task that already has a result was recorded or started again (tasks are recorded once)."""


def task_dirs(run_dir: Path) -> list[tuple[TaskKey, Path]]:
    """Every `<domain>/<task_id>/` folder, finished or not, sorted."""
    out = []
    for dom in visible_dirs(run_dir):
        for task in visible_dirs(Path(dom.path)):
            out.append(((dom.name, task.name), Path(task.path)))
    return sorted(out)


def scan_results(run_dir: Path) -> dict[TaskKey, dict[str, Any]]:
    return results_in(task_dirs(run_dir))


def results_in(folders: list[tuple[TaskKey, Path]]) -> dict[TaskKey, dict[str, Any]]:
    """The finished tasks among `task_dirs` output, with their records."""
    results = {}
    for key, path in folders:
        record = read_result(path)
        if record is not None:
            results[key] = record
    return results


def _free_name(folder: Path, name: str) -> str:
    if not (folder / name).exists():
        return name
    k = 2
    while (folder / f"{name}.{k}").exists():
        k += 1
    return f"{name}.{k}"


def move_aside(task_dir: Path) -> tuple[int, list[str]] | None:
    """Move the files of an unfinished attempt to `attempts/<n>/`; None if there were none.

    `n` is the number in the attempt's attempt.json (or the next free number for files from
    elsewhere). attempt.json moves last, so a crash half-way leaves it behind and the next call
    finishes the same move into the same `attempts/<n>/`.
    """
    try:
        names = sorted(e for e in os.listdir(task_dir) if e != ATTEMPTS)
    except FileNotFoundError:
        return None
    for name in [n for n in names if is_temp_name(n)]:
        os.unlink(task_dir / name)  # our own half-written temp files: never a record
    names = [n for n in names if not is_temp_name(n)]
    if not names:
        return None
    marker = attempt_marker(task_dir)
    number = marker if marker is not None else 1 + max(moved_attempts(task_dir), default=0)
    dest = task_dir / ATTEMPTS / str(number)
    dest.mkdir(parents=True, exist_ok=True)
    ordered = [n for n in names if n != ATTEMPT_JSON] + ([ATTEMPT_JSON] if ATTEMPT_JSON in names else [])
    moved = []
    for name in ordered:
        target = _free_name(dest, name)
        os.rename(task_dir / name, dest / target)
        moved.append(target)
    fsync_dir(dest)
    fsync_dir(dest.parent)
    fsync_dir(task_dir)
    return number, moved


def prepare_attempt(directory: Path, session: int) -> tuple[int, tuple[int, list[str]] | None]:
    """Move an unfinished attempt aside and claim the next number (attempt.json is written first)."""
    created = not directory.exists()
    if not created and read_result(directory) is not None:  # memory said unfinished; the disk decides
        raise DuplicateResultError(f"task {directory.parent.name}/{directory.name} already has {RESULT_JSON}")
    if created:
        create_task_dir(directory)
    # A folder made just now holds no earlier attempt: nothing to move, number 1.
    moved = None if created else move_aside(directory)
    number = 1 if created else next_attempt_number(directory)
    write_marker(directory, attempt_marker_bytes(number, session))
    return number, moved


