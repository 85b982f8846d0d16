"""`python -m harness bench {sandbox,llm,engine}`: each benchmark registers itself from its package."""

from __future__ import annotations

import argparse
import importlib

# module path -> the benchmark it provides (module exposes `register(subparsers)`).
BENCH_MODULES = ["vm.bench", "vm.fork_bench", "harness.llm.bench", "harness.bench.engine", "harness.bench.export"]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="measure the harness: sandboxes, LLM layer, engine")
    bench_sub = parser.add_subparsers(dest="bench", metavar="BENCH")
    for name in BENCH_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        module.register(bench_sub)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
