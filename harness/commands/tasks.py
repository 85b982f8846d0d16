"""`python -m harness tasks {check,fetch,list-metrics,list-getters,list-setup}`: what a suite needs.

`tasks check PATH` loads an OSWorld-layout suite and says, per domain, which tasks are ready:
"offline" (steps, getters and metrics implemented, every app in the image's manifest, nothing to
fetch), "network" (the same, but the task needs the internet) or not ready, with reasons.
Decided from the task files, the app inventory and the download cache; `--probe` then runs each
offline-ready task's setup and evaluator commands in a fresh sandbox (scoring/probe.py) and
demotes what fails there. Malformed task files are reported with their error; nothing in a task
file can crash the check.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.commands import tasks_fetch
from harness.commands.tasks_report import render


def _check(args: argparse.Namespace) -> int:
    from scoring.app_inventory import load_inventory
    from scoring.coverage import check_suite, probe_rows

    inventory = load_inventory(args.manifest)
    rows = check_suite(args.path, test_list=args.test_list, domains=args.domains, inventory=inventory)
    if args.probe:
        import functools

        from harness.base.aio import run

        run(functools.partial(probe_rows, args.path, rows, test_list=args.test_list, domains=args.domains,
                              concurrency=args.concurrency, say=lambda line: print(line, file=sys.stderr, flush=True)))
    print(render(rows, inventory_source=inventory.source, probed=args.probe))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
        print(f"wrote {len(rows)} verdicts to {args.json}", file=sys.stderr)
    return 0


def _list(kind: str) -> int:
    if kind == "setup":
        from benchmarks.setup_steps import KNOWN_UNSUPPORTED, supported_setup_types

        for name in supported_setup_types():
            print(name)
        for name, why in sorted(KNOWN_UNSUPPORTED.items()):
            print(f"{name:28} (not supported: {why})")
        return 0
    from scoring.registry import getters, metrics

    entries = metrics() if kind == "metrics" else getters()
    for name in sorted(entries):
        print(f"{name:40} {entries[name].doc}")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("tasks", help="inspect task suites: what this build can run")
    tsub = parser.add_subparsers(dest="tasks_command", metavar="SUBCOMMAND")

    p = tsub.add_parser("check", help="per domain: tasks ready offline / with the network, and what blocks the rest")
    p.add_argument("path", help="an OSWorld evaluation_examples folder (or a suite folder)")
    p.add_argument("--test-list", help="a {domain: [ids]} file (default: test_all.json if present, else every file)")
    p.add_argument("--domain", action="append", dest="domains", help="only this domain (repeatable)")
    p.add_argument("--json", help="write [{id, domain, ready, reasons, unsupported, apps, probe?}] here")
    p.add_argument("--manifest", help="judge apps against this manifest JSON ({apps: {key: ...}, unavailable: "
                   "{key: reason}}) instead of the built image's (default) or the declared list")
    p.add_argument("--probe", action="store_true", help="run each offline-ready task's setup and evaluator "
                   "commands in a fresh sandbox and demote what fails (no scoring)")
    p.add_argument("--concurrency", type=_positive, default=2, help="sandboxes at once for --probe (default 2)")
    p.set_defaults(func=_check)

    tasks_fetch.register(tsub)

    for kind in ("metrics", "getters", "setup"):
        lp = tsub.add_parser(f"list-{kind}", help=f"list the {kind} this build can run")
        lp.set_defaults(func=lambda args, kind=kind: _list(kind))

    parser.set_defaults(func=lambda args: parser.print_help() or 2)
