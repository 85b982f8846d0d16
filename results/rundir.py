"""Opening a run directory: lock it, refuse foreign folders, create or check run.json, read state.

Blocking (flock, scans, fsync); RunStore.open runs `open_run_dir` in a worker thread.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from harness.base.errors import ConfigError
from results.atomic import clean_temp_files, dump_json, fsync_dir, is_temp_name, write_atomic
from results.journal import JournalScan, scan_journal
from results.layout import EVENTS, LOCK, RUN_JSON, TaskKey
from results.resume import results_in, task_dirs
from results.runinfo import build_run_json, compare, git_commit
from results.task_folder import repair_result_txt


@dataclass
class Opened:
    lock_fd: int
    run: dict[str, Any]
    changes: dict[str, list[Any]]
    created: bool
    commit: str | None
    scan: JournalScan
    results: dict[TaskKey, dict[str, Any]]
    temps_removed: list[str]
    dirs: set[TaskKey]  # task folders that exist (finished or not)


def _lock(run_dir: Path) -> int:
    """Exclusive flock on `.lock` (released by the kernel if we die): one writer per run dir."""
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise ConfigError(
            f"{run_dir} is in use by another harness process (pid {holder}); wait for it to end"
        ) from e
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _refuse_foreign(run_dir: Path) -> None:
    """A folder without run.json may hold only what a crash during our own open leaves behind."""
    if (run_dir / RUN_JSON).exists() or not run_dir.is_dir():
        return
    foreign = [n for n in os.listdir(run_dir) if n not in (LOCK, EVENTS) and not is_temp_name(n)]
    if foreign:
        raise ConfigError(
            f"{run_dir} has no {RUN_JSON} but is not empty ({', '.join(sorted(foreign)[:5])}); "
            "refusing to start a run in it: choose an empty or new directory"
        )


def open_run_dir(run_dir: Path, config: dict[str, Any], result_keys: list[str],
                 agent_info: dict[str, Any] | None = None) -> Opened:
    _refuse_foreign(run_dir)  # before creating anything in someone else's folder
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = _lock(run_dir)
    try:
        _refuse_foreign(run_dir)  # again under the lock
        temps = [str(p.relative_to(run_dir)) for p in clean_temp_files(run_dir, depth=2)]
        commit = git_commit()
        run_path = run_dir / RUN_JSON
        created = not run_path.exists()
        if created:
            run = build_run_json(config, result_keys, commit, agent_info)
            write_atomic(run_path, dump_json(run))
            fsync_dir(run_dir.parent)
            changes: dict[str, list[Any]] = {}
        else:
            try:
                run = orjson.loads(run_path.read_bytes())
            except orjson.JSONDecodeError as e:
                raise ConfigError(f"{run_path}: not valid JSON ({e}); the run directory is damaged") from e
            if not isinstance(run, dict):
                raise ConfigError(f"{run_path}: expected a JSON object")
            changes = compare(run, config, result_keys, where=run_path, commit=commit, agent=agent_info)
        folders = task_dirs(run_dir)  # one scan of the tree for the results and the folder set
        results = results_in(folders)
        if not changes:  # a run that will go on: result.txt is not fsynced, so restore it from result.json
            for key, path in folders:
                if key in results:
                    repair_result_txt(path, results[key])
        dirs = {key for key, _ in folders}
        return Opened(fd, run, changes, created, commit, scan_journal(run_dir / EVENTS), results, temps, dirs)
    except BaseException:
        os.close(fd)
        raise
