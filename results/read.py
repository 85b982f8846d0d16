"""Read a run directory for reports: config, summary, per-task results, journal events.

Synchronous and read-only (it takes no lock, so it also works on a live run). It blocks on
disk reads: call it from a CLI command, or through `anyio.to_thread.run_sync` on a loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from harness.base.errors import ConfigError
from results.journal import read_events, scan_journal
from results.layout import EVENTS, RUN_JSON, SUMMARY, TaskKey
from results.resume import scan_results, task_dirs
from results.summary import summarize
from results.task_folder import moved_attempts


@dataclass
class RunView:
    path: Path
    run: dict[str, Any]  # run.json as written (config redacted, version, commit, result_keys)
    summary: dict[str, Any]  # recomputed from the result files and the journal
    summary_file: dict[str, Any] | None  # summary.json as last written, if any
    results: dict[TaskKey, dict[str, Any]]  # finished tasks: result.json records
    unfinished: list[TaskKey]  # task folders without a result (a crash or a stop mid-attempt)
    attempts_moved: dict[TaskKey, list[int]]  # attempts/<n> kept per task
    events: list[dict[str, Any]] = field(default_factory=list)
    skipped_lines: int = 0  # journal lines that did not parse (torn by a crash)

    @property
    def config(self) -> dict[str, Any]:
        return self.run.get("config", {})


def _load_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except orjson.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from e


def read_run(run_dir: str | os.PathLike[str], *, events: bool = True) -> RunView:
    """Everything a report needs; raises ConfigError if `run_dir` has no readable run.json."""
    path = Path(run_dir)
    run = _load_json(path / RUN_JSON)
    if not isinstance(run, dict):
        raise ConfigError(f"{path / RUN_JSON}: missing or not a JSON object; is {path} a run directory?")
    results = scan_results(path)
    scan = scan_journal(path / EVENTS)
    dirs = task_dirs(path)
    summary = summarize(
        results,
        # Without a journaled plan, the tasks we can see on disk (finished or not) are the plan.
        planned=scan.planned if scan.planned is not None else [key for key, _ in dirs],
        wall_s=sum(span.wall_s() for span in scan.sessions.values()),
        infra_failures=scan.counts.get("infra_failure", 0),
        sessions=scan.last_session,
    )
    moved = {key: nums for key, d in dirs if (nums := moved_attempts(d))}
    view = RunView(
        path=path,
        run=run,
        summary=summary,
        summary_file=_load_json(path / SUMMARY),
        results=results,
        unfinished=[key for key, _ in dirs if key not in results],
        attempts_moved=moved,
    )
    if events:
        view.events, view.skipped_lines = read_events(path / EVENTS)
    return view
