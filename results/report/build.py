"""Build `<run>/report/`: index.html, one page per finished task, the stylesheet and script.

Safe on a live run: it reads only finished records (result.json present) and writes every file
by atomic replace, task pages first and index.html last, so a browser never sees a half-written
page or a link to a page that does not exist yet. Pages whose inputs did not change since the
last build (same files, same neighbours, same generator) are skipped, so rebuilding a large run
while it goes costs a directory scan plus the pages of newly finished tasks.

The report folder holds files only: OSWorld's readers (and `results.resume.task_dirs`) treat
every folder two levels below the run directory as a task.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from results.atomic import clean_temp_files, write_atomic
from results.export.recorded import read_exports
from results.layout import ATTEMPTS, RESULT_JSON, TRAJ, TaskKey
from results.read import RunView, read_run
from results.report.reflections import ReflectionLookup
from results.report.render import generator_version, render, static_files
from results.report.run_data import (
    Instructions,
    Row,
    events_by_task,
    make_row,
    model_usage,
    planned_keys,
    run_status,
)
from results.report.task_data import TREE, TaskReader, url_of

log = logging.getLogger("results.report")

REPORT_DIR = "report"
INDEX = "index.html"
MANIFEST = "manifest.json"


@dataclass
class ReportResult:
    index: Path
    tasks: int  # finished tasks (rows, pages)
    written: int  # task pages rendered this time
    skipped: int  # task pages unchanged since the last build
    seconds: float
    status: str  # of the run: finished, running (pid N), stopped (...)
    problems: list[str] = field(default_factory=list)


def _stat(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size]


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(orjson.dumps(parts, default=str)).hexdigest()[:20]


def _load_manifest(out: Path, version: str) -> dict[str, str]:
    try:
        data = orjson.loads((out / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    if not isinstance(data, dict) or data.get("version") != version or not isinstance(data.get("pages"), dict):
        return {}
    return {str(k): str(v) for k, v in data["pages"].items()}


def _write(path: Path, data: bytes) -> None:
    # Not fsynced: the report is derived data, rebuilt from the run at any time.
    write_atomic(path, data, durable=False)


def _screen(config: dict[str, Any]) -> tuple[int, int] | None:
    w, h = config.get("screen_width"), config.get("screen_height")
    if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
        return w, h
    return None


def _domains(view: RunView) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows = []
    for name, d in sorted(view.summary.get("by_domain", {}).items()):
        rows.append({"name": name, "rate": d.get("success_rate", 0.0), "done": d.get("done", 0),
                     "solved": d.get("solved", 0), "total": d.get("total", 0)})
    s = view.summary
    overall = {"name": "all", "rate": s.get("success_rate", 0.0), "done": s.get("done", 0),
               "solved": s.get("solved", 0), "total": s.get("total", 0)}
    return rows, overall


def build_report(run_dir: str | os.PathLike[str], *, force: bool = False, refresh_s: int | None = None) -> ReportResult:
    """Write `<run_dir>/report/` and return what was done. Blocking: call from a CLI command or
    through `anyio.to_thread.run_sync`. Raises ConfigError if `run_dir` is not a run directory.

    `force` rebuilds every page; `refresh_s` makes index.html reload itself while the run
    is live (for `--watch`).
    """
    started = time.perf_counter()
    run_path = Path(run_dir)
    view = read_run(run_path, events=True)
    out = run_path / REPORT_DIR
    out.mkdir(exist_ok=True)
    clean_temp_files(out, depth=0)
    version = generator_version()
    for name, data in static_files().items():
        target = out / name
        try:
            same = target.read_bytes() == data
        except OSError:
            same = False
        if not same:
            _write(target, data)

    config = view.config
    screen = _screen(config)
    instructions = Instructions(config)
    per_task_events = events_by_task(view.events)
    status = run_status(view)
    run_name = run_path.resolve().name
    common = {"run": view.run, "run_name": run_name, "version": version}
    keys: list[TaskKey] = sorted(view.results)
    rows: list[Row] = []
    texts: dict[TaskKey, str | None] = {}
    for key in keys:
        texts[key] = instructions.get(key, view.results[key])
        rows.append(make_row(key, view.results[key], texts[key]))

    old = {} if force else _load_manifest(out, version)
    pages: dict[str, str] = {}
    problems: list[str] = []
    lookup = ReflectionLookup(run_path, config)
    reader = TaskReader(run_path, screen, lookup)
    exports = read_exports(run_path)  # training-data exports that hold each task's examples
    written = skipped = 0
    for i, (key, row) in enumerate(zip(keys, rows, strict=True)):
        prev = rows[i - 1] if i > 0 else None
        nxt = rows[i + 1] if i + 1 < len(rows) else None
        folder = run_path / key[0] / key[1]
        events = per_task_events.get(key, [])
        moved = view.attempts_moved.get(key, [])
        fp = _fingerprint(
            version, screen, texts[key], [_stat(folder / n) for n in (RESULT_JSON, TRAJ, TREE)],
            moved, [_stat(folder / ATTEMPTS / str(n) / TRAJ) for n in moved], len(events),
            prev.key if prev else None, nxt.key if nxt else None, run_name, exports.get(key),
        )
        target = out / row.href
        if old.get(row.href) == fp and target.exists():
            pages[row.href] = fp
            skipped += 1
            continue
        try:
            page = reader.page(key, view.results[key], instruction=texts[key], moved=moved, events=events)
            data = render("task.html.j2", **common, **_task_context(page), prev=prev, next=nxt,
                          folder_url=url_of("..", key[0], key[1]), exports=exports.get(key, []))
        except Exception as e:  # one odd task must not cost the whole report
            log.exception("report: task %s/%s", *key)
            problems.append(f"task {key[0]}/{key[1]}: page not rendered ({type(e).__name__}: {e})")
            row.href = ""
            continue
        _write(target, data)
        pages[row.href] = fp
        written += 1

    for name in set(old) - set(pages):  # pages of tasks no longer finished (should not happen)
        if name.startswith("task-") and name.endswith(".html"):
            (out / name).unlink(missing_ok=True)

    if lookup.problem:
        problems.append(lookup.problem)
    broken = [f"{k[0]}/{k[1]}" for k, r in sorted(view.results.items()) if r.get("eval_error")]
    if broken:  # their 0 is our evaluator's failure, not the agent's
        problems.append(f"{len(broken)} task(s) with evaluation errors (scores not meaningful): "
                        + ", ".join(broken[:10]) + (" ..." if len(broken) > 10 else ""))
    if view.skipped_lines:
        problems.append(f"events.jsonl: {view.skipped_lines} unreadable line(s) skipped (a torn last line after a crash)")
    # Folders outside the journaled plan are not tasks (a helper's scratch folder, say): not listed.
    planned = planned_keys(view.events)
    unfinished = [k for k in view.unfinished if planned is None or k in planned]
    domains, overall = _domains(view)
    models, models_source = model_usage(view)
    index = render(
        "index.html.j2", **common, status=status, refresh=refresh_s if status.startswith("running") else None,
        generated_at=dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        summary=view.summary, rows=rows,
        unfinished=unfinished, domains=domains, overall=overall, models=models,
        models_source=models_source, problems=problems, run_path=str(run_path.resolve()),
    )
    _write(out / INDEX, index)
    _write(out / MANIFEST, orjson.dumps({"version": version, "pages": pages}))
    return ReportResult(index=out / INDEX, tasks=len(keys), written=written, skipped=skipped,
                        seconds=time.perf_counter() - started, status=status, problems=problems)


def _task_context(page: Any) -> dict[str, Any]:
    result = page.result
    prompt = completion = 0
    tokens = result.get("tokens")
    if isinstance(tokens, dict):
        prompt = int(tokens.get("prompt") or 0)
        completion = int(tokens.get("completion") or 0)
    known = {"domain", "task_id", "score", "steps", "tokens", "cost_usd", "seconds", "attempts", "error",
             "eval_error", "session", "finished_at", "evaluation", "instruction"}
    chosen = sum(1 for n in page.tree.nodes if n.chosen) if page.tree else 0
    initial = ""
    if page.tree and page.tree.nodes:
        initial = "0"
    return {
        "key": page.key, "result": result, "instruction": page.instruction, "steps": page.steps,
        "final": page.final, "attempts": page.attempts, "final_errors": page.final_errors,
        "tree": page.tree, "tree_shots": page.tree_shots, "tree_markers": page.tree_markers,
        "events": page.events, "skipped_lines": page.skipped_lines, "problems": page.problems,
        "tokens": {"prompt": prompt, "completion": completion, "total": prompt + completion},
        "extras": {k: v for k, v in result.items() if k not in known}, "chosen_count": chosen,
        "initial_node": initial, "recording": page.recording,
    }
