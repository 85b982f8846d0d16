"""`python -m harness report RUN_DIR [--open] [--watch S]`: the run's static HTML report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _report(args: argparse.Namespace) -> int:
    from results.report import build_report

    while True:
        result = build_report(args.run_dir, force=args.force, refresh_s=args.watch)
        print(f"report: {result.index} ({result.tasks} tasks: {result.written} pages written, "
              f"{result.skipped} unchanged; {result.seconds:.2f} s; run {result.status})", flush=True)
        for problem in result.problems:
            print(f"warning: {problem}", file=sys.stderr)
        if args.open:
            import webbrowser

            webbrowser.open(result.index.resolve().as_uri())
            args.open = False
        if not args.watch or not result.status.startswith("running"):
            return 0
        time.sleep(args.watch)  # a CLI loop between rebuilds; Ctrl-C ends it (exit 130)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write RUN_DIR/report/index.html (static; works on a live run)")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--open", action="store_true", help="open the report in a web browser")
    p.add_argument("--watch", type=int, metavar="SECONDS",
                   help="rebuild every SECONDS while the run is going (the page reloads itself)")
    p.add_argument("--force", action="store_true", help="rebuild every page, not only changed ones")
    p.set_defaults(func=_report)
