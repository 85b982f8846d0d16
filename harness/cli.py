"""`python -m harness ...`: one argparse tree; each command lives in harness/commands/<name>.py.

A command module exposes `register(subparsers)`; it sets `func` (sync, returns an exit code) on
its parser. Heavy imports stay inside the command functions so `--help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from harness.base.errors import HarnessError

# Order = order in --help.
COMMAND_MODULES = ["run", "resume", "validate", "tasks", "vm", "bench", "llm_sim", "report", "export", "registry"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"harness.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"harness.commands.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is now, so the live progress display can route log lines
    above itself instead of having them tear through it."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def _harness_errors(group: BaseExceptionGroup) -> list[HarnessError] | None:
    """The HarnessErrors of a task group's failure, or None when anything else is in it."""
    out: list[HarnessError] = []
    for e in group.exceptions:
        if isinstance(e, BaseExceptionGroup):
            inner = _harness_errors(e)
            if inner is None:
                return None
            out += inner
        elif isinstance(e, HarnessError):
            out.append(e)
        else:
            return None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler])
    try:
        return int(args.func(args) or 0)
    except HarnessError as e:
        # User-facing errors: one line, no traceback.
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BaseExceptionGroup as group:  # raised inside a task group (RunStopped from the engine)
        errors = _harness_errors(group)
        if errors is None:
            raise
        for line in dict.fromkeys(str(e) for e in errors):
            print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
