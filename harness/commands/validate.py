"""`python -m harness validate --benchmark NAME`: prove every task solvable and discriminating.

Two runs on fresh sandboxes: `oracle` (reference solution; must score 1.0) and `done` (no action
but DONE; must score 0.0 — for infeasible tasks that is "DONE scores 0", and the oracle's final
FAIL must score 1). Exit code 1 on any violation, including a task file that does not load, a
selected task with no result (skipped as unsupported, say) and an evaluation error.

An OSWorld-layout suite (no `solution` fields) is validated by `validate_suite.py` instead:
setup plus a noop in a fresh sandbox for every ready task.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import anyio
import orjson

from vm import providers


async def _validate(args: argparse.Namespace) -> int:
    from benchmarks.loader import resolve_benchmark
    from harness.commands.validate_suite import is_osworld_layout

    path = resolve_benchmark(args.benchmark)
    if await anyio.to_thread.run_sync(is_osworld_layout, path):
        return await _validate_osworld(args, path)
    return await _validate_solutions(args, path)


async def _validate_osworld(args: argparse.Namespace, path: Path) -> int:
    from harness.commands.validate_suite import validate_suite

    started = time.monotonic()
    tasks = args.tasks.split(",") if args.tasks else None
    rows = await validate_suite(path, test_list=args.test_list, domains=args.domains, tasks=tasks,
                                concurrency=args.concurrency, desktop=args.desktop,
                                warm_start=args.warm_start)
    wall = time.monotonic() - started
    counts = {k: sum(r["status"] == k for r in rows) for k in ("ok", "failed", "skipped", "error")}
    for r in rows:
        if r["status"] in ("failed", "error"):
            print(f"{r['status'].upper()} {r['domain']}/{r['id']}: {'; '.join(map(str, r['problems']))}"[:400])
    print(f"validate {path}: {counts['ok']} ok, {counts['failed']} failed, {counts['error']} unloadable, "
          f"{counts['skipped']} skipped (not offline-ready), of {len(rows)} tasks; wall {wall:.0f} s")
    if args.json:
        data = {"benchmark": str(path), "layout": "osworld", "wall_s": round(wall, 1), "counts": counts, "tasks": rows}
        await anyio.Path(args.json).write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    return 0 if counts["ok"] and not counts["failed"] and not counts["error"] else 1


def _missing_rows(path: Path, args: argparse.Namespace, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for task files that did not load and selected tasks that have no result."""
    from benchmarks.loader import load_suite
    from scoring.coverage import unsupported_features

    tasks = args.tasks.split(",") if args.tasks else None
    suite = load_suite(path, test_list=args.test_list, domains=args.domains or None, ids=tasks, errors="collect")
    have = {(r["domain"], r["id"]) for r in rows}
    out = [{"domain": e.domain, "id": e.id, "oracle_score": None, "noop_score": None, "ok": False,
            "error": f"task file does not load: {e.message}"} for e in suite.errors]
    for t in suite.tasks:
        if (t.domain, t.id) not in have:
            blocked = unsupported_features(t)
            why = f"unsupported: {', '.join(blocked)}" if blocked else "the run recorded no result"
            out.append({"domain": t.domain, "id": t.id, "oracle_score": None, "noop_score": None, "ok": False,
                        "error": f"no result ({why})"})
    return out


async def _validate_solutions(args: argparse.Namespace, path: Path) -> int:
    from harness.config import make_config
    from harness.runner import execute_run
    from results.read import read_run

    root = Path(args.run_dir or f"runs/validate-{Path(args.benchmark).name}-{time.strftime('%Y%m%d-%H%M%S')}")
    started = time.monotonic()
    scores: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for agent in ("oracle", "done"):
        config = make_config({"benchmark": args.benchmark, "agent": agent, "concurrency": args.concurrency,
                              "run_dir": root / agent, "domains": args.domains, "tasks": args.tasks,
                              "quiet": args.quiet, "provider": args.provider, "test_list": args.test_list,
                              "allow_private_urls": args.allow_private_urls,
                              "desktop": args.desktop, "warm_start": args.warm_start})
        code = await execute_run(config, show_summary=False)
        if code == 130:
            return 130
        view = await anyio.to_thread.run_sync(lambda a=agent: read_run(root / a, events=False))
        scores[agent] = dict(view.results)
    rows = []
    for key in sorted(scores["oracle"]):
        oracle = scores["oracle"][key]
        done = scores["done"].get(key, {})
        eval_error = oracle.get("eval_error") or done.get("eval_error")
        ok = oracle.get("score") == 1.0 and done.get("score") == 0.0 and not eval_error
        rows.append({"domain": key[0], "id": key[1], "oracle_score": oracle.get("score"),
                     "noop_score": done.get("score"), "ok": ok,
                     "error": (f"evaluation error: {eval_error}" if eval_error else None)
                     or oracle.get("error") or done.get("error")})
    rows += await anyio.to_thread.run_sync(_missing_rows, path, args, rows)
    wall = time.monotonic() - started
    _print(rows, wall)
    if args.json:
        data = orjson.dumps({"benchmark": args.benchmark, "wall_s": round(wall, 1), "tasks": rows}, option=orjson.OPT_INDENT_2)
        await anyio.Path(args.json).write_bytes(data)
    return 0 if rows and all(r["ok"] for r in rows) else 1


def _print(rows: list[dict[str, Any]], wall: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="validate: reference solution must score 1, no action must score 0")
    for col in ("domain", "id", "oracle", "noop", "ok", "error"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["domain"], r["id"], f"{r['oracle_score']}", f"{r['noop_score']}",
                      "ok" if r["ok"] else "[red]FAIL[/red]", (r["error"] or "")[:80])
    console = Console()
    console.print(table)
    bad = sum(not r["ok"] for r in rows)
    console.print(f"{len(rows) - bad}/{len(rows)} tasks valid, wall {wall:.0f} s")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check every task: reference solution scores 1, no action scores 0")
    p.add_argument("--benchmark", required=True)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--json", help="write per-task verdicts here")
    p.add_argument("--run-dir", help="parent folder of the two runs (default runs/validate-<suite>-<time>)")
    p.add_argument("--domain", action="append", dest="domains")
    p.add_argument("--tasks")
    p.add_argument("--test-list", help="OSWorld-layout suites: the {domain: [ids]} file (default test_all.json)")
    p.add_argument("--provider", default="docker", help=f"sandbox provider: {' | '.join(providers.names())} "
                   "(default docker) or MODULE:ATTR")
    p.add_argument("--desktop", choices=["osworld", "light"], default="osworld",
                   help="sandbox desktop: osworld (GNOME Shell, default) or light (openbox)")
    p.add_argument("--warm-start", action=argparse.BooleanOptionalAction, default=None, help="sandboxes start "
                   "as forks of one boot snapshot (docs/design/fork.md); default: on for the osworld desktop "
                   "where the host has CRIU")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--allow-private-urls", action="store_true", help="let task downloads reach loopback, "
                   "link-local and private-network hosts (refused by default)")

    def _run(args: argparse.Namespace) -> int:
        from harness.base.aio import run

        return run(_validate, args)

    p.set_defaults(func=_run)
