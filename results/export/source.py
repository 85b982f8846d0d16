"""What the export reads from a run directory: its settings, its tasks, and per task the result,
trajectory, search tree and the search log's accessibility tables.

Read-only and tolerant: a run may be live, crashed or archived. A task without `result.json` is
unfinished and skipped; a torn trajectory or log line is skipped and counted; a `tree.json` that
does not parse is rebuilt from `search.jsonl` (the search's own resume path); anything else wrong
with a task skips that task with a reason, never the export.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from harness.base.errors import ConfigError
from results.layout import ATTEMPTS, RUN_JSON, TRAJ, TaskKey
from results.read import read_jsonl
from results.redact import MASK
from results.resume import read_result, task_dirs
from search.mcts.persist import SEARCH_LOG, TREE_FILE, parse_lines

DEFAULT_HISTORY = 3  # the agents' max_trajectory_length default


class SkipTask(Exception):
    """This task cannot be exported; the message is the reason shown in the size report."""


@dataclass(frozen=True)
class RunSettings:
    """How the run's agent saw the desktop (for the prompt the export rebuilds)."""

    path: Path
    agent: str
    observation_type: str
    action_space: str
    history: int  # previous (observation, reply) pairs the agent showed
    password: str
    password_masked: bool  # the run set a password of its own (masked in run.json)
    screen: tuple[int, int]
    image_detail: str
    notes: tuple[str, ...] = ()


def read_settings(run_dir: Path) -> RunSettings:
    try:
        run = orjson.loads((run_dir / RUN_JSON).read_bytes())
    except FileNotFoundError as e:
        raise ConfigError(f"{run_dir}: no {RUN_JSON}; is it a run directory?") from e
    except orjson.JSONDecodeError as e:
        raise ConfigError(f"{run_dir / RUN_JSON}: not valid JSON ({e})") from e
    config = run.get("config") if isinstance(run, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(f"{run_dir / RUN_JSON}: no 'config' object")
    options = config.get("agent_options") if isinstance(config.get("agent_options"), dict) else {}
    notes = []
    password = options.get("password", "password")
    masked = "password" in options and password != "password"
    if not isinstance(password, str) or password == MASK:
        password = "password"
        notes.append("the agent's password is masked in run.json: system prompts name the default 'password'")
    history = options.get("max_trajectory_length", DEFAULT_HISTORY)
    return RunSettings(
        path=run_dir,
        agent=str(config.get("agent") or "?"),
        observation_type=str(options.get("observation_type") or config.get("observation_type") or "screenshot"),
        action_space=str(options.get("action_space") or config.get("action_space") or "pyautogui"),
        history=history if isinstance(history, int) and history >= 0 else DEFAULT_HISTORY,
        password=password,
        password_masked=masked,
        screen=(int(config.get("screen_width") or 1920), int(config.get("screen_height") or 1080)),
        image_detail=str(options.get("image_detail") or "high"),
        notes=tuple(notes),
    )


@dataclass
class TaskFiles:
    """One finished task's records (trees and logs parsed lazily by the formats)."""

    run: RunSettings
    key: TaskKey
    dir: Path
    result: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # what was missing or repaired

    @property
    def score(self) -> float:
        return float(self.result.get("score") or 0.0)

    @property
    def instruction(self) -> str:
        return str(self.result.get("instruction") or "")

    def traj(self, folder: Path | None = None) -> list[dict[str, Any]]:
        """traj.jsonl records (a torn or foreign line is skipped and noted)."""
        path = (folder or self.dir) / TRAJ
        out, bad = read_jsonl(path)
        if bad:
            self.notes.append(f"{path.relative_to(self.run.path)}: {bad} unreadable line(s) skipped")
        return out

    def attempt_dirs(self) -> list[tuple[int, Path]]:
        """Moved-aside earlier attempts (attempts/<n>/), oldest first."""
        root = self.dir / ATTEMPTS
        try:
            names = [e.name for e in os.scandir(root) if e.is_dir() and e.name.isdigit()]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [(int(n), root / n) for n in sorted(names, key=int)]

    def has_tree(self) -> bool:
        return (self.dir / TREE_FILE).is_file() or (self.dir / SEARCH_LOG).is_file()

    def search_log(self) -> list[dict[str, Any]]:
        """search.jsonl records; a torn line ends the log (as the search's own resume reads it)."""
        try:
            data = (self.dir / SEARCH_LOG).read_bytes()
        except FileNotFoundError:
            return []
        out = parse_lines(data)
        if len(out) < sum(1 for raw in data.splitlines() if raw.strip()):
            self.notes.append(f"{SEARCH_LOG}: torn line after {len(out)} records; the rest ignored")
        return out

    def tree_doc(self) -> dict[str, Any] | None:
        """tree.json as written by the search, or None if absent; SkipTask if unreadable."""
        try:
            doc = orjson.loads((self.dir / TREE_FILE).read_bytes())
        except FileNotFoundError:
            return None
        except orjson.JSONDecodeError as e:
            self.notes.append(f"{TREE_FILE} does not parse ({e}); rebuilt from {SEARCH_LOG}")
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list):
            self.notes.append(f"{TREE_FILE} has no node list; rebuilt from {SEARCH_LOG}")
            return None
        return doc


@dataclass
class Skipped:
    run: str
    domain: str
    task_id: str
    reason: str


def scan_run(run_dir: Path) -> tuple[RunSettings, list[TaskFiles], list[Skipped]]:
    """The run's finished tasks in order; unfinished ones are returned as skipped."""
    settings = read_settings(run_dir)
    tasks, skipped = [], []
    for key, folder in task_dirs(run_dir):
        record = read_result(folder)
        if record is None:
            why = "unfinished: no result.json" if not (folder / "result.json").exists() else "result.json unreadable"
            skipped.append(Skipped(str(run_dir), key[0], key[1], why))
            continue
        tasks.append(TaskFiles(settings, key, folder, record))
    return settings, tasks, skipped
