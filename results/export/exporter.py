"""`export`: run directories -> OpenAI fine-tuning JSONL, its validation split, an index, a size
report, and a note in each run directory (exports.json) that the report reads.

Tasks are read and rendered in a process pool (JSON parsing, base64 and serialising are CPU work,
and the GIL would serialise threads); results come back in task order and are written by this
process as they arrive, so output order is deterministic and memory holds a few tasks' lines.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from harness.base.errors import ConfigError
from results.atomic import write_atomic
from results.export.episodes import FORMATS, build_episodes
from results.export.limits import DEFAULT_LIMITS
from results.export.recorded import record_export
from results.export.render import ImageCache, RenderOptions, render
from results.export.select import balanced_quota, choose, split_of
from results.export.source import RunSettings, Skipped, SkipTask, TaskFiles, scan_run

OBSERVATIONS = ("agent", "screenshot", "a11y_tree", "screenshot_a11y_tree")


@dataclass(frozen=True)
class ExportOptions:
    runs: tuple[Path, ...]
    out: Path
    format: str = "exploratory"
    images: str = "data-url"
    observation: str = "agent"
    domains: tuple[str, ...] = ()
    min_score: float | None = None  # default: 1.0 for exploratory/imitation (solved tasks), none for trajectories
    min_tree_nodes: int = 0
    max_examples: int | None = None
    seed: int = 0
    val_fraction: float = 0.1
    history_turns: int = 20
    obs_window: int | None = None  # default: the agent's own history length (max_trajectory_length)
    max_example_tokens: int = DEFAULT_LIMITS.max_example_tokens
    workers: int = 0  # 0 = one per core
    record_in_runs: bool = True

    def score_floor(self) -> float | None:
        if self.min_score is not None:
            return self.min_score
        return None if self.format == "trajectories" else 1.0


def output_paths(out: Path) -> dict[str, Path]:
    """F (train), F's .val.jsonl, .index.json, .meta.jsonl and .report.json siblings."""
    base = out.name[:-6] if out.name.endswith(".jsonl") else out.name
    return {"train": out, "val": out.with_name(base + ".val.jsonl"), "index": out.with_name(base + ".index.json"),
            "meta": out.with_name(base + ".meta.jsonl"), "report": out.with_name(base + ".report.json")}


def observation_for(o: ExportOptions, run: RunSettings) -> tuple[str, str | None]:
    """The observation type examples show, and a note when it differs from what the agent saw."""
    if o.observation != "agent":
        return o.observation, None
    kind = run.observation_type
    if o.format == "trajectories" and kind != "screenshot":
        return "screenshot", f"trajectories record screenshots only (no accessibility tables); agent saw {kind}"
    if kind == "som":
        return "screenshot_a11y_tree", "set-of-marks images are not stored: raw screenshots and tables instead"
    return kind, None


# -- the per-task job (runs in a worker process) -------------------------------------------------------
@dataclass
class TaskJob:
    task: TaskFiles
    fmt: str
    observation: str
    render: RenderOptions
    split: str
    min_tree_nodes: int
    pick: list[int] | None  # example indices to render (None: all); [] with count_only
    count_only: bool = False


@dataclass
class TaskOutput:
    key: tuple[str, str]
    run: str
    split: str
    count: int = 0
    lines: list[tuple[bytes, bytes, int, int]] = field(default_factory=list)  # line, digest, tokens, images
    meta: list[dict[str, Any]] = field(default_factory=list)
    skip: str | None = None
    too_long: int = 0
    notes: list[str] = field(default_factory=list)


def run_job(job: TaskJob) -> TaskOutput:
    t = job.task
    out = TaskOutput(t.key, str(t.run.path), job.split)
    try:
        episodes = build_episodes(t, job.fmt, job.observation)
    except SkipTask as e:
        out.skip = str(e)
        return out
    except (OSError, ValueError, KeyError, TypeError) as e:  # one odd task never stops the export
        out.skip = f"unreadable ({type(e).__name__}: {e})"
        return out
    if job.min_tree_nodes and max((ep.meta.get("executed", 0) for ep in episodes), default=0) < job.min_tree_nodes:
        out.skip = f"search tree smaller than --min-tree-nodes {job.min_tree_nodes}"
        return out
    examples = [(ep, k) for ep in episodes for k in range(len(ep.turns))]
    out.count = len(examples)
    out.notes = list(dict.fromkeys(t.notes))
    if job.count_only:
        return out
    chosen = range(len(examples)) if job.pick is None else job.pick
    cache, cache_for = None, None
    for i in chosen:
        ep, k = examples[i]
        if cache_for is not ep:  # one episode's screenshots at a time
            cache, cache_for = ImageCache(job.render), ep
        assert cache is not None
        r = render(ep, k, job.render, cache)
        if r is None:
            out.too_long += 1
            continue
        out.lines.append((r.line, r.digest, r.tokens, r.images))
        turn = ep.turns[k]
        out.meta.append({"domain": t.key[0], "task_id": t.key[1], "run": str(t.run.path), "episode": ep.kind,
                         "attempt": ep.attempt, "turn": k, "turns": len(ep.turns), "score": ep.meta.get("score", t.score),
                         **turn.meta})
        if cache.missing:
            out.notes.extend(cache.missing)
            cache.missing.clear()
    return out


# -- the export ---------------------------------------------------------------------------------------------
@dataclass
class SplitStats:
    examples: int = 0
    bytes: int = 0
    tokens: int = 0
    images: int = 0
    tasks: int = 0


@dataclass
class ExportReport:
    format: str
    files: dict[str, str]
    splits: dict[str, SplitStats]
    tasks_exported: int
    tasks_seen: int
    skipped: list[Skipped]
    duplicates: int
    too_long: int
    capped: int  # examples left out by --max-examples
    notes: dict[str, list[str]]
    seconds: float
    options: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["examples"] = sum(s.examples for s in self.splits.values())
        d["bytes"] = sum(s.bytes for s in self.splits.values())
        d["tokens_estimate"] = sum(s.tokens for s in self.splits.values())
        d["images"] = sum(s.images for s in self.splits.values())
        return d


def _mapper(workers: int, n: int) -> tuple[Callable[[Callable[[TaskJob], TaskOutput], Iterable[TaskJob]], Iterator[TaskOutput]], Any]:
    workers = workers or (os.cpu_count() or 1)
    if workers <= 1 or n < 8:
        return (lambda fn, items: map(fn, items)), None
    # forkserver: forking a process that has threads (an event loop's workers, say) can deadlock.
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"))

    def ordered(fn: Callable[[TaskJob], TaskOutput], items: Iterable[TaskJob]) -> Iterator[TaskOutput]:
        """Results in input order with at most 4 jobs per worker in flight: finished tasks wait
        for the writer in a bounded queue, never all at once (data URLs make them large)."""
        window: deque[Future[TaskOutput]] = deque()
        for item in items:
            window.append(pool.submit(fn, item))
            if len(window) >= 4 * workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()

    return ordered, pool


def _ranges(lines: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for n in lines:
        if out and out[-1][1] == n - 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


def export_runs(o: ExportOptions, progress: Callable[[str], None] | None = None) -> ExportReport:
    """Write the export; raises ConfigError on bad options or an unreadable run.json."""
    started = time.perf_counter()
    if o.format not in FORMATS:
        raise ConfigError(f"--format {o.format!r}: expected one of {', '.join(FORMATS)}")
    if o.images not in ("data-url", "path"):
        raise ConfigError(f"--images {o.images!r}: expected data-url or path")
    if o.observation not in OBSERVATIONS:
        raise ConfigError(f"--observation {o.observation!r}: expected one of {', '.join(OBSERVATIONS)}")
    if not 0 <= o.val_fraction < 1:
        raise ConfigError(f"--val-fraction {o.val_fraction}: expected a number in [0, 1)")
    if not o.runs:
        raise ConfigError("export: name at least one run directory")
    paths = output_paths(o.out)
    if not o.out.parent.is_dir():
        raise ConfigError(f"--out {o.out}: folder {o.out.parent} does not exist")

    floor = o.score_floor()
    skipped: list[Skipped] = []
    jobs: list[TaskJob] = []
    seen = 0
    for run_dir in o.runs:
        settings, tasks, unfinished = scan_run(Path(run_dir))
        skipped.extend(unfinished)
        seen += len(tasks) + len(unfinished)
        observation, note = observation_for(o, settings)
        window = o.obs_window if o.obs_window is not None else settings.history
        ropts = RenderOptions(images=o.images, observation_type=observation, history_turns=o.history_turns,
                              obs_window=window, detail=settings.image_detail, max_example_tokens=o.max_example_tokens)
        for t in tasks:
            if note:
                t.notes.append(note)
            t.notes.extend(settings.notes)
            if o.domains and t.key[0] not in o.domains:
                continue  # filtered out by choice: not a skip
            if floor is not None and t.score < floor:
                skipped.append(Skipped(str(run_dir), *t.key, f"score {t.score:g} below --min-score {floor:g}"))
                continue
            split = split_of(*t.key, val_fraction=o.val_fraction, seed=o.seed)
            jobs.append(TaskJob(t, o.format, observation, ropts, split, o.min_tree_nodes, None))

    capped = 0
    mapper, pool = _mapper(o.workers, len(jobs))
    try:
        if o.max_examples is not None:
            counted = list(mapper(run_job, [TaskJob(**{**j.__dict__, "count_only": True}) for j in jobs]))
            quota = balanced_quota([c.count if c.skip is None else 0 for c in counted], o.max_examples, seed=o.seed)
            for j, c, q in zip(jobs, counted, quota, strict=True):
                j.pick = choose(c.count, q, seed=o.seed, key=f"{j.task.key[0]}/{j.task.key[1]}")
                capped += c.count - q if c.skip is None else 0
        report = _write(o, paths, jobs, mapper, skipped, progress)
    finally:
        if pool is not None:
            pool.shutdown()
    report.capped = capped
    report.tasks_seen = seen
    report.seconds = round(time.perf_counter() - started, 3)
    write_atomic(paths["report"], orjson.dumps(report.as_json(), option=orjson.OPT_INDENT_2), durable=False)
    return report


def _write(o: ExportOptions, paths: dict[str, Path], jobs: list[TaskJob], mapper: Any, skipped: list[Skipped],
           progress: Callable[[str], None] | None) -> ExportReport:
    splits = {"train": SplitStats(), "val": SplitStats()}
    temps = {s: paths[s].with_name(f".{paths[s].name}.tmp-{os.getpid()}") for s in ("train", "val", "meta")}
    files = {s: open(p, "wb") for s, p in temps.items()}
    seen: set[bytes] = set()
    duplicates = too_long = exported = 0
    index: list[dict[str, Any]] = []
    notes: dict[str, list[str]] = {}
    try:
        for n, out in enumerate(mapper(run_job, jobs), 1):
            name = f"{out.run}:{out.key[0]}/{out.key[1]}"
            if out.notes:
                notes[name] = out.notes
            if out.skip is not None:
                skipped.append(Skipped(out.run, *out.key, out.skip))
                continue
            too_long += out.too_long
            stats, f = splits[out.split], files[out.split]
            numbers = []
            for (line, digest, tokens, images), meta in zip(out.lines, out.meta, strict=True):
                if digest in seen:
                    duplicates += 1
                    continue
                seen.add(digest)
                f.write(line)
                f.write(b"\n")
                stats.examples += 1
                stats.bytes += len(line) + 1
                stats.tokens += tokens
                stats.images += images
                numbers.append(stats.examples)
                files["meta"].write(orjson.dumps({"file": out.split, "line": stats.examples, **meta}) + b"\n")
            if numbers:
                exported += 1
                stats.tasks += 1
                index.append({"run": out.run, "domain": out.key[0], "task_id": out.key[1], "split": out.split,
                              "file": str(paths[out.split].resolve()), "lines": _ranges(numbers),
                              "examples": len(numbers)})
            elif out.lines:
                skipped.append(Skipped(out.run, *out.key, "every example duplicates an earlier one"))
            else:
                skipped.append(Skipped(out.run, *out.key, "no example within the limits (--max-examples or tokens)"))
            if progress and n % 100 == 0:
                progress(f"{n}/{len(jobs)} tasks")
    except BaseException:
        for f in files.values():
            f.close()
        for temp in temps.values():  # a failed export leaves no half-written file behind
            temp.unlink(missing_ok=True)
        raise
    for f in files.values():
        f.close()
    for s, temp in temps.items():
        if s == "val" and splits["val"].examples == 0:
            temp.unlink()
            paths["val"].unlink(missing_ok=True)  # no stale validation file from an earlier export
        else:
            os.replace(temp, paths[s])
    written = {s: str(paths[s].resolve()) for s in ("train", "val", "index", "meta", "report")
               if s != "val" or splits["val"].examples}
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    write_atomic(paths["index"], orjson.dumps({"version": 1, "format": o.format, "created_at": created,
                                                 "files": written, "tasks": index}), durable=False)
    report = ExportReport(o.format, written, splits, exported, 0, skipped, duplicates, too_long, 0, notes, 0.0,
                          {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(o).items() if k != "runs"}
                          | {"runs": [str(r) for r in o.runs]})
    if o.record_in_runs:
        for run_dir in o.runs:
            problem = record_export(Path(run_dir), o.format, written, created,
                                    [e for e in index if Path(e["run"]) == Path(run_dir)])
            if problem:
                report.notes.setdefault(str(run_dir), []).append(problem)
    return report
