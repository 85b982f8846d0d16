"""One finished task as its report page sees it: result, steps, earlier attempts, search tree.

Everything comes from files under `<run>/<domain>/<task_id>/`; a torn or odd line is skipped
and counted, never fatal (the report must render the live run it is pointed at). Paths handed
to the templates are URLs relative to the report folder, percent-encoded.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import orjson

from results.layout import ATTEMPTS, TRAJ, TaskKey
from results.read import read_jsonl
from results.report.pointer import Point, action_points, action_text
from results.report.tree import Tree, parse_tree

TREE = "tree.json"
INITIAL_SHOTS = ("step_0.png", "initial.png")  # the screen before step 1, if an agent saved it
_STEP_KNOWN = {"step_num", "action_timestamp", "action", "response", "reward", "done", "info",
               "screenshot_file", "reasoning", "tokens", "seconds", "ts", "attempt"}


@dataclass
class Shot:
    """A screenshot file of the run, as the report links it."""

    url: str  # relative to the report folder
    name: str  # path inside the task (or attempt) folder
    width: int | None = None
    height: int | None = None


@dataclass
class Marker:
    left: float  # percent of the image width
    top: float
    kind: str
    label: str


@dataclass
class Step:
    num: int
    action: str
    response: str
    reasoning: str
    tokens: Any
    seconds: float | None
    timestamp: str
    done: bool
    info: dict[str, Any]
    after: Shot | None  # the screen after the action (OSWorld's step_<n>.png)
    before: Shot | None  # the screen the action was chosen on, when recorded
    markers: list[Marker]  # drawn over `before` (or over `after` when before is unknown)
    extra: dict[str, Any]

    @property
    def shown(self) -> Shot | None:
        return self.before or self.after

    @property
    def failed(self) -> bool:
        return bool(self.info.get("returncode")) or bool(self.info.get("error"))


@dataclass
class AttemptView:
    number: int
    steps: list[Step]
    errors: list[str]  # infra failures journaled for this attempt
    files: list[str]
    skipped_lines: int = 0
    final: Shot | None = None


@dataclass
class TaskPage:
    key: TaskKey
    result: dict[str, Any]
    instruction: str | None
    steps: list[Step]
    final: Shot | None  # the last screenshot of the final attempt
    attempts: list[AttemptView]  # earlier, unfinished attempts (attempts/<n>/)
    final_errors: list[str]  # infra failures journaled for the final attempt
    tree: Tree | None
    tree_shots: dict[str, Shot]  # node id -> screenshot
    tree_markers: dict[str, list[Marker]]
    events: list[dict[str, Any]]
    skipped_lines: int = 0
    problems: list[str] = field(default_factory=list)
    recording: str | None = None  # url of the final attempt's recording.mp4 (--record)


def png_size(path: Path) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR (24 bytes read; the image is not decoded)."""
    try:
        with path.open("rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def safe_rel(name: Any) -> str | None:
    """A file name from a run file, accepted only as a relative path inside its folder."""
    if not isinstance(name, str) or not name or "\0" in name or "\\" in name:
        return None
    parts = PurePosixPath(name).parts
    if name.startswith("/") or any(p in ("..", ".") or p.startswith(".") for p in parts):
        return None
    return name


def url_of(*parts: str) -> str:
    return "/".join(quote(p, safe="") for part in parts for p in part.split("/"))


class TaskReader:
    """Reads one task folder; `screen` is the coordinate space of actions (from the run config)."""

    def __init__(self, run_dir: Path, screen: tuple[int, int] | None, reflections: Any = None) -> None:
        self.run_dir = run_dir
        self.screen = screen
        self.reflections = reflections  # a ReflectionLookup: node reflection ids -> records

    def shot(self, folder: Path, rel_folder: list[str], name: Any) -> Shot | None:
        name = safe_rel(name)
        if name is None:
            return None
        path = folder / name
        if not path.is_file():
            return None
        size = None if self.screen else png_size(path)
        return Shot(url=url_of("..", *rel_folder, name), name=name,
                    width=size[0] if size else None, height=size[1] if size else None)

    def markers(self, points: list[Point], shot: Shot | None) -> list[Marker]:
        size = self.screen or ((shot.width, shot.height) if shot and shot.width and shot.height else None)
        if not size or not points:
            return []
        out = []
        for i, p in enumerate(points):
            if 0 <= p.x <= size[0] and 0 <= p.y <= size[1]:
                out.append(Marker(left=100 * p.x / size[0], top=100 * p.y / size[1], kind=p.kind,
                                  label=str(i + 1) if len(points) > 1 else ""))
        return out

    def steps(self, folder: Path, rel_folder: list[str]) -> tuple[list[Step], int, Shot | None]:
        lines, skipped = read_jsonl(folder / TRAJ)
        steps: list[Step] = []
        previous: Shot | None = None
        for name in INITIAL_SHOTS:
            previous = previous or self.shot(folder, rel_folder, name)
        last: Shot | None = None
        for n, line in enumerate(lines, start=1):
            num = line.get("step_num")
            after = self.shot(folder, rel_folder, line.get("screenshot_file"))
            action = line.get("action")
            before = previous
            points = action_points(action) if action is not None else []
            info = line.get("info") if isinstance(line.get("info"), dict) else {}
            steps.append(Step(
                num=num if isinstance(num, int) and not isinstance(num, bool) else n,
                action=action_text(action),
                response=_text(line.get("response")),
                reasoning=_text(line.get("reasoning")),
                tokens=line.get("tokens"),
                seconds=line.get("seconds") if isinstance(line.get("seconds"), int | float) else None,
                timestamp=_text(line.get("action_timestamp")),
                done=bool(line.get("done")),
                info=info,
                after=after,
                before=before,
                markers=self.markers(points, before or after),
                extra={k: v for k, v in line.items() if k not in _STEP_KNOWN},
            ))
            if after is not None:
                previous = last = after
        return steps, skipped, last

    def tree(self, folder: Path, rel_folder: list[str]) -> tuple[Tree | None, dict[str, Shot], dict[str, list[Marker]], list[str]]:
        path = folder / TREE
        try:
            doc = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return None, {}, {}, []
        except (OSError, orjson.JSONDecodeError) as e:
            return None, {}, {}, [f"{TREE}: not readable JSON ({e})"]
        tree = parse_tree(doc)
        shots: dict[str, Shot] = {}
        marks: dict[str, list[Marker]] = {}
        index = tree.by_id
        for node in tree.nodes:
            if self.reflections is not None:
                node.reflections = self.reflections.resolve(node.reflections)
            shot = self.shot(folder, rel_folder, node.screenshot) if node.screenshot else None
            if shot is not None:
                shots[node.id] = shot
        for node in tree.nodes:
            # The action of a node was chosen on its parent's screen.
            parent_shot = shots.get(node.parent) if node.parent is not None and node.parent in index else None
            marks[node.id] = self.markers(node.points, parent_shot)
        return tree, shots, marks, list(tree.problems)

    def page(self, key: TaskKey, result: dict[str, Any], *, instruction: str | None,
             moved: list[int], events: list[dict[str, Any]]) -> TaskPage:
        domain, task_id = key
        folder = self.run_dir / domain / task_id
        steps, skipped, final = self.steps(folder, [domain, task_id])
        errors_by_attempt: dict[int, list[str]] = {}
        for e in events:
            if e.get("event") == "infra_failure" and isinstance(e.get("attempt"), int):
                errors_by_attempt.setdefault(e["attempt"], []).append(_text(e.get("error")))
        attempts = []
        for number in moved:
            sub = folder / ATTEMPTS / str(number)
            a_steps, a_skipped, a_final = self.steps(sub, [domain, task_id, ATTEMPTS, str(number)])
            attempts.append(AttemptView(number=number, steps=a_steps, errors=errors_by_attempt.get(number, []),
                                        files=_list_files(sub), skipped_lines=a_skipped, final=a_final))
        tree, shots, marks, problems = self.tree(folder, [domain, task_id])
        final_number = result.get("attempts") if isinstance(result.get("attempts"), int) else None
        return TaskPage(key=key, result=result, instruction=instruction, steps=steps, final=final,
                        attempts=attempts, final_errors=errors_by_attempt.get(final_number or -1, []),
                        tree=tree, tree_shots=shots, tree_markers=marks, events=events,
                        skipped_lines=skipped, problems=problems,
                        recording=url_of("..", domain, task_id, "recording.mp4")
                        if (folder / "recording.mp4").is_file() else None)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


def _list_files(folder: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(folder) if not e.name.startswith("."))
    except OSError:
        return []
