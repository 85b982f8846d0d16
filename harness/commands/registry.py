"""`python -m harness registry {agents,metrics,getters}`: what can be named in configs and tasks."""

from __future__ import annotations

import argparse


def _list(args: argparse.Namespace) -> int:
    if args.kind == "agents":
        from search.agent import agent_names

        for name, help in agent_names().items():
            print(f"{name:16} {help}")
        return 0
    from scoring.registry import getter_names, metric_names

    names = metric_names() if args.kind == "metrics" else getter_names()
    for name in sorted(names):
        print(name)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("registry", help="list registered agents, metrics or getters")
    p.add_argument("kind", choices=["agents", "metrics", "getters"])
    p.set_defaults(func=_list)
