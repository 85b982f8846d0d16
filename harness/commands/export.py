"""`python -m harness export RUN_DIR... --format F --out FILE` and `export --check FILE...`:
training data out of run directories (OpenAI chat fine-tuning JSONL) and its validation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.base.errors import ConfigError


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def _check(args: argparse.Namespace) -> int:
    from results.export import DEFAULT_LIMITS, Limits, check_file

    d = DEFAULT_LIMITS
    limits = Limits(
        max_images_per_example=args.max_images_per_example or d.max_images_per_example,
        max_image_bytes=args.max_image_bytes or d.max_image_bytes,
        max_image_examples=d.max_image_examples,
        max_file_bytes=args.max_file_bytes or d.max_file_bytes,
        max_example_tokens=args.max_example_tokens or d.max_example_tokens,
        min_examples=d.min_examples if args.min_examples is None else args.min_examples,
    )
    code = 0
    for path in args.check:
        result = check_file(path, limits, allow_image_paths=args.allow_image_paths)
        for problem in result.problems:
            print(problem.format(result.path), file=sys.stderr)
        if result.more_problems:
            print(f"{result.path}: ... and {result.more_problems} more problem(s)", file=sys.stderr)
        verdict = "ok" if result.ok else f"{len(result.problems) + result.more_problems} problem(s)"
        print(f"{result.path}: {verdict}: {result.examples} examples, {result.images} images, "
              f"~{result.tokens} tokens (estimate), {_mb(result.bytes)}")
        code = code or (0 if result.ok else 1)
    return code


def _export(args: argparse.Namespace) -> int:
    if args.check:
        if args.run_dirs:
            raise ConfigError("export --check FILE takes files only; give run directories without --check")
        return _check(args)
    if not args.run_dirs:
        raise ConfigError("export: name at least one RUN_DIR (or --check FILE)")
    if args.out is None:
        raise ConfigError("export: --out FILE is required (the training JSONL to write)")
    from results.export import ExportOptions, export_runs

    options = ExportOptions(
        runs=tuple(args.run_dirs), out=args.out, format=args.format, images=args.images,
        observation=args.observation, domains=tuple(args.domain or ()), min_score=args.min_score,
        min_tree_nodes=args.min_tree_nodes, max_examples=args.max_examples, seed=args.seed,
        val_fraction=args.val_fraction, history_turns=args.history_turns, obs_window=args.obs_window,
        max_example_tokens=args.max_example_tokens or ExportOptions.max_example_tokens, workers=args.workers,
        record_in_runs=not args.no_record,
    )
    report = export_runs(options, progress=lambda s: print(f"export: {s}", file=sys.stderr, flush=True))
    total = report.as_json()
    print(f"export ({report.format}): {total['examples']} examples from {report.tasks_exported} of "
          f"{report.tasks_seen} tasks in {report.seconds:.2f} s; {total['images']} images, "
          f"~{total['tokens_estimate']} tokens (estimate), {_mb(total['bytes'])}")
    for name, s in report.splits.items():
        if s.examples:
            print(f"  {name:5} {report.files[name]}: {s.examples} examples, {s.tasks} tasks, {s.images} images, "
                  f"~{s.tokens} tokens, {_mb(s.bytes)}")
    if report.duplicates or report.too_long or report.capped:
        print(f"  left out: {report.duplicates} duplicate(s), {report.too_long} over --max-example-tokens, "
              f"{report.capped} over --max-examples")
    if report.skipped:
        print(f"  skipped {len(report.skipped)} task(s):")
        for s in report.skipped[:20]:
            print(f"    {s.domain}/{s.task_id} ({s.run}): {s.reason}")
        if len(report.skipped) > 20:
            print(f"    ... {len(report.skipped) - 20} more in {report.files['report']}")
    notes = sum(len(v) for v in report.notes.values())
    if notes:
        print(f"  {notes} note(s) on what was missing or repaired: see {report.files['report']}")
    print(f"  index {report.files['index']}, per-line metadata {report.files['meta']}, "
          f"report {report.files['report']}")
    print(f"  validate: python -m harness export --check {report.files['train']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="training data (OpenAI fine-tuning JSONL) from run directories, or --check a file",
                       description=__doc__.splitlines()[0])
    p.add_argument("run_dirs", nargs="*", type=Path, metavar="RUN_DIR", help="run directories (merged into one export)")
    p.add_argument("--format", default="exploratory", choices=["exploratory", "imitation", "trajectories"],
                   help="exploratory: search traversals with backtracks and judge reasoning (solved tasks); "
                        "imitation: the answer path only; trajectories: every attempt's steps, any agent")
    p.add_argument("--out", type=Path, metavar="FILE", help="training JSONL; FILE's .val.jsonl, .index.json, "
                   ".meta.jsonl and .report.json siblings are written too")
    p.add_argument("--images", default="data-url", choices=["data-url", "path"],
                   help="screenshots inline as data URLs (uploadable) or as absolute file paths (small)")
    p.add_argument("--observation", default="agent",
                   choices=["agent", "screenshot", "a11y_tree", "screenshot_a11y_tree"],
                   help="what each user turn shows (default: what the run's agent saw)")
    p.add_argument("--domain", action="append", metavar="D", help="only this domain (repeatable)")
    p.add_argument("--min-score", type=float, metavar="S",
                   help="only tasks scoring at least S (default 1.0 = solved; trajectories: all)")
    p.add_argument("--min-tree-nodes", type=int, default=0, metavar="N", help="only trees with N executed nodes or more")
    p.add_argument("--max-examples", type=int, metavar="N", help="at most N examples, sampled evenly across tasks")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the sample (default 0)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of tasks in the validation file (default 0.1)")
    p.add_argument("--history-turns", type=int, default=20, metavar="N",
                   help="earlier turns kept in each example (default 20)")
    p.add_argument("--obs-window", type=int, metavar="N",
                   help="earlier turns that keep their screenshot/table (default: the agent's max_trajectory_length)")
    p.add_argument("--workers", type=int, default=0, help="worker processes (default: one per core)")
    p.add_argument("--no-record", action="store_true", help="do not note the export in each run's exports.json")
    p.add_argument("--check", nargs="+", type=Path, metavar="FILE",
                   help="validate FILE(s) against the fine-tuning format instead of exporting")
    p.add_argument("--max-example-tokens", type=int, metavar="N", help="per-example token limit (estimate; default 65536)")
    p.add_argument("--max-images-per-example", type=int, metavar="N", help="--check: default 64")
    p.add_argument("--max-image-bytes", type=int, metavar="N", help="--check: default 10 MB")
    p.add_argument("--max-file-bytes", type=int, metavar="N", help="--check: default 512 MB")
    p.add_argument("--min-examples", type=int, metavar="N", help="--check: default 10")
    p.add_argument("--allow-image-paths", action="store_true",
                   help="--check: accept local image paths (an --images path export) and check the files")
    p.set_defaults(func=_export)
