"""`<run>/exports.json`: which export file and lines hold each task's examples (the report reads it).

The export adds one entry per output file (replacing an earlier export to the same file), under an
exclusive lock on the run directory so two exports at once keep both entries; the file itself is
replaced atomically, so a reader never sees half of it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import orjson

from results.atomic import write_atomic

EXPORTS_FILE = "exports.json"


def record_export(run_dir: Path, fmt: str, files: dict[str, str], created: str, entries: list[dict[str, Any]]) -> str | None:
    """Add (or replace) this export in `<run>/exports.json`; returns a problem instead of raising."""
    try:
        fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        return f"{run_dir}: cannot record the export ({e.strerror})"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # two exports at once must not lose each other's entry
        path = run_dir / EXPORTS_FILE
        try:
            doc = orjson.loads(path.read_bytes())
            exports = [e for e in doc.get("exports", []) if isinstance(e, dict) and e.get("files", {}).get("train")
                       != files["train"]]
        except (FileNotFoundError, orjson.JSONDecodeError, AttributeError):
            exports = []
        tasks = {f"{e['domain']}/{e['task_id']}": {"file": e["file"], "split": e["split"], "lines": e["lines"]}
                 for e in entries}
        exports.append({"format": fmt, "created_at": created, "files": files, "tasks": tasks})
        write_atomic(path, orjson.dumps({"exports": exports}), durable=False)
        return None
    except OSError as e:
        return f"{run_dir}: cannot record the export in {EXPORTS_FILE} ({e.strerror})"
    finally:
        os.close(fd)


def read_exports(run_dir: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Per task of the run: the exports that hold its examples (file, split, line ranges, format)."""
    try:
        doc = orjson.loads((run_dir / EXPORTS_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in doc.get("exports", []) if isinstance(doc, dict) else []:
        if not isinstance(e, dict) or not isinstance(e.get("tasks"), dict):
            continue
        for name, where in e["tasks"].items():
            domain, _, task_id = str(name).partition("/")
            if isinstance(where, dict):
                out.setdefault((domain, task_id), []).append({"format": e.get("format"), "created_at": e.get("created_at"),
                                                              **where})
    return out
