"""Load OSWorld-layout suites: `<root>/examples/<domain>/<id>.json` plus test lists.

A test list is any `{domain: [id, ...]}` JSON file (`test_all.json`, `test_small.json`, ...).
Without one, `test_all.json` is used when present, else every `examples/*/*.json`. A suite may
carry an `assets/` folder next to `examples/`; setup steps and getters may name files in it.

Task files are untrusted input: each is schema-validated, and a bad one becomes a one-line error
naming the file and the field (`errors="collect"` keeps loading the rest).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from benchmarks.schema import SAFE_NAME, SAFE_NAME_HINT, Task
from harness.base.errors import ConfigError, TaskError

log = logging.getLogger("benchmarks.loader")

BUILTIN_SUITES = Path(__file__).parent / "suites"
# Untrusted files: the largest OSWorld task is ~20 KB and its test_all.json ~30 KB; the caps leave
# room while keeping one hostile file from costing the run gigabytes or a RecursionError.
MAX_TASK_BYTES = 4 << 20
MAX_TEST_LIST_BYTES = 16 << 20
MAX_DEPTH = 200
_TYPE_WORDS = {
    "string_type": "a string", "list_type": "a list", "dict_type": "an object", "int_type": "an integer",
    "int_parsing": "an integer", "float_type": "a number", "float_parsing": "a number", "bool_type": "a boolean",
    "bool_parsing": "a boolean", "model_type": "an object", "model_attributes_type": "an object",
    "none_required": "null", "literal_error": "one of the allowed values",
}


@dataclass(frozen=True)
class LoadIssue:
    """A task file (or test-list entry) that could not be loaded."""

    path: Path
    domain: str
    id: str
    message: str  # one line, starts with the file name

    def __str__(self) -> str:
        return self.message


@dataclass
class Suite:
    root: Path
    tasks: list[Task]
    errors: list[LoadIssue] = field(default_factory=list)
    test_list: Path | None = None
    assets_dir: Path | None = None

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def name(self) -> str:
        return self.root.name

    def domains(self) -> list[str]:
        seen = dict.fromkeys([t.domain for t in self.tasks] + [e.domain for e in self.errors])
        return list(seen)

    def by_domain(self) -> dict[str, list[Task]]:
        out: dict[str, list[Task]] = {}
        for t in self.tasks:
            out.setdefault(t.domain, []).append(t)
        return out

    def get(self, task_id: str) -> Task:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)


def _loc_part_is_union_tag(part: Any) -> bool:
    # pydantic names union branches in `loc` ('str', 'list[str]', 'GetterSpec'); our fields are lowercase.
    return isinstance(part, str) and ("[" in part or part[:1].isupper() or part in {"str", "int", "float", "bool"})


def format_validation_error(e: ValidationError) -> str:
    """One line: the most specific failing field, what was expected, and how many more errors."""
    errors = e.errors()
    cleaned = [(tuple(p for p in err["loc"] if not _loc_part_is_union_tag(p)), err) for err in errors]
    depth = max(len(loc) for loc, _ in cleaned)
    loc = next(loc for loc, _ in cleaned if len(loc) == depth)
    here = [err for l2, err in cleaned if l2 == loc]
    where = ".".join(str(p) for p in loc) or "(top level)"
    kinds = [_TYPE_WORDS.get(err["type"]) for err in here]
    if len(here) > 1 and all(kinds):
        got = type(here[0]["input"]).__name__
        msg = f"expected {' or '.join(dict.fromkeys(k for k in kinds if k))} (got {got})"
    else:
        msg = here[0]["msg"]
        if here[0]["type"] in _TYPE_WORDS and "input" in here[0]:
            msg += f" (got {type(here[0]['input']).__name__})"
    other = len({l2 for l2, _ in cleaned if l2[: len(loc)] != loc and loc[: len(l2)] != l2})
    return f"{where}: {msg}" + (f" (+{other} more)" if other else "")


def _rel(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(path.relative_to(root))
        except ValueError:
            pass
    return str(path)


def _depth_exceeds(data: Any, limit: int) -> bool:
    """True when JSON `data` nests deeper than `limit` (iterative: a hostile file cannot recurse us)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return False


def read_json_file(path: Path, name: str, *, what: str, max_bytes: int) -> Any:
    """Parse an untrusted JSON file: size checked before reading, nesting bounded; TaskError (one line) if not.

    `what` ("", "test list ") starts each message after the file name."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise TaskError(f"{name}: {what}too large: {size} bytes (limit {max_bytes})")
        raw = path.read_bytes()
    except OSError as e:
        raise TaskError(f"{name}: cannot read {what.strip() or 'file'}: {e.strerror or e}") from e
    if len(raw) > max_bytes:  # grew between stat and read
        raise TaskError(f"{name}: {what}too large: over {max_bytes} bytes")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise TaskError(f"{name}: {what}not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    except UnicodeDecodeError as e:
        raise TaskError(f"{name}: {what}not UTF-8 text (byte {e.start}: {e.reason})") from e
    except RecursionError:
        raise TaskError(f"{name}: {what}nested deeper than {MAX_DEPTH} levels") from None
    if _depth_exceeds(data, MAX_DEPTH):
        raise TaskError(f"{name}: {what}nested deeper than {MAX_DEPTH} levels")
    return data


def load_task(path: Path | str, *, domain: str | None = None, assets_dir: Path | None = None,
              root: Path | None = None) -> Task:
    """Parse and validate one task file; TaskError (one line naming file and field) if malformed."""
    path = Path(path)
    name = _rel(path, root)
    data = read_json_file(path, name, what="", max_bytes=MAX_TASK_BYTES)
    if not isinstance(data, dict):
        raise TaskError(f"{name}: expected a JSON object (a task), got {type(data).__name__}")
    try:
        task = Task.model_validate(data)
    except ValidationError as e:
        raise TaskError(f"{name}: {format_validation_error(e)}") from e
    if task.id != path.stem:
        log.debug("%s: id %r differs from the file name", name, task.id)
    return task.bind(domain=domain or path.parent.name, path=path, assets_dir=assets_dir)


def _safe_name(value: Any) -> bool:
    return isinstance(value, str) and re.match(SAFE_NAME, value) is not None


def _read_test_list(path: Path) -> tuple[list[tuple[str, str]], list[LoadIssue]]:
    """The (domain, id) pairs of a test list, and one issue per entry that cannot name a task file."""
    data = read_json_file(path, str(path), what="test list ", max_bytes=MAX_TEST_LIST_BYTES)
    if not isinstance(data, dict):
        raise TaskError(f"{path}: test list must be an object {{domain: [task id, ...]}}, got {type(data).__name__}")
    pairs: list[tuple[str, str]] = []
    issues: list[LoadIssue] = []

    def bad(domain: str, task_id: str, msg: str) -> None:
        issues.append(LoadIssue(path=path, domain=domain, id=task_id, message=f"{path.name}: {msg}"))

    for domain, task_ids in data.items():
        shown = repr(domain[:60])
        if not _safe_name(domain):
            bad("?", "?", f"domain {shown}: expected {SAFE_NAME_HINT}")
        elif not isinstance(task_ids, list):
            bad(domain, "?", f"domain {shown}: expected a list of task ids (got {type(task_ids).__name__})")
        else:
            for i, task_id in enumerate(task_ids):
                if _safe_name(task_id):
                    pairs.append((domain, task_id))
                else:
                    got = repr(task_id[:60]) if isinstance(task_id, str) else type(task_id).__name__
                    bad(domain, "?", f"{domain}[{i}]: expected a task id, {SAFE_NAME_HINT} (got {got})")
    return pairs, issues


def _examples_dir(root: Path) -> Path:
    if (root / "examples").is_dir():
        return root / "examples"
    return root  # a bare examples folder


def resolve_benchmark(name: str | Path) -> Path:
    """A suite path, or the name of a built-in suite under benchmarks/suites/."""
    path = Path(name)
    if path.exists():
        return path
    builtin = BUILTIN_SUITES / str(name)
    if builtin.is_dir():
        return builtin
    known = sorted(p.name for p in BUILTIN_SUITES.iterdir() if p.is_dir()) if BUILTIN_SUITES.is_dir() else []
    raise ConfigError(f"benchmark {str(name)!r}: no such folder and no built-in suite of that name"
                      f" (built-in: {', '.join(known) or 'none'})")


def load_suite(
    path: Path | str,
    *,
    test_list: Path | str | None = None,
    domains: Iterable[str] | None = None,
    ids: Iterable[str] | None = None,
    errors: Literal["raise", "collect"] = "raise",
) -> Suite:
    """Load an OSWorld evaluation_examples folder (or a built-in suite folder).

    `test_list`: a `{domain: [ids]}` file (relative paths are tried against the suite root first).
    `domains` / `ids` filter the selection. With errors="collect", malformed task files and
    missing ones are returned in `Suite.errors` instead of raising TaskError.
    """
    root = Path(path)
    if not root.is_dir():
        raise ConfigError(f"{root}: suite folder not found")
    examples = _examples_dir(root)
    assets = root / "assets" if (root / "assets").is_dir() else None

    list_path: Path | None = None
    if test_list is not None:
        list_path = Path(test_list)
        if not list_path.is_absolute() and not list_path.exists() and (root / list_path).exists():
            list_path = root / list_path
    elif (root / "test_all.json").is_file():
        list_path = root / "test_all.json"

    issues: list[LoadIssue] = []
    if list_path is not None:
        selection, issues = _read_test_list(list_path)
    else:
        selection = [(p.parent.name, p.stem) for p in sorted(examples.glob("*/*.json"))]

    if domains is not None:
        wanted = list(dict.fromkeys(domains))
        present = {d for d, _ in selection}
        unknown = [d for d in wanted if d not in present]
        if unknown:
            raise ConfigError(f"{root}: no domain {', '.join(unknown)} (domains: {', '.join(sorted(present))})")
        selection = [(d, i) for d, i in selection if d in wanted]
        issues = [e for e in issues if e.domain in wanted]
    if ids is not None:
        wanted_ids = set(ids)
        selection = [(d, i) for d, i in selection if i in wanted_ids]
        issues = []  # a malformed test-list entry cannot be one of the ids asked for

    if errors == "raise" and issues:
        raise TaskError(issues[0].message)
    tasks: list[Task] = []
    seen: dict[tuple[str, str], str] = {}
    for domain, task_id in selection:
        file = examples / domain / f"{task_id}.json"
        try:
            if not _safe_name(domain):  # a folder found by glob: test-list domains were checked on reading
                raise TaskError(f"{_rel(file, root)}: domain folder {domain[:60]!r}: expected {SAFE_NAME_HINT}")
            if not file.is_file():
                raise TaskError(f"{_rel(file, root)}: listed in {list_path.name if list_path else 'suite'} but missing")
            task = load_task(file, domain=domain, assets_dir=assets, root=root)
            # Results are keyed by (domain, id), as upstream: the same id may appear in two domains.
            if (domain, task.id) in seen:
                raise TaskError(f"{_rel(file, root)}: id: {task.id} already used by {seen[domain, task.id]}")
            seen[domain, task.id] = _rel(file, root)
            tasks.append(task)
        except TaskError as e:
            if errors == "raise":
                raise
            issues.append(LoadIssue(path=file, domain=domain, id=task_id, message=str(e)))
    return Suite(root=root, tasks=tasks, errors=issues, test_list=list_path, assets_dir=assets)
