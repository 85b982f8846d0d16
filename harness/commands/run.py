"""`python -m harness run`: evaluate an agent on a benchmark."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from harness.base.errors import ConfigError
from vm import providers


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--benchmark", help="built-in suite name (desktop-basics) or an OSWorld-layout folder")
    p.add_argument("--agent", help="agent name (see `python -m harness registry agents`), or "
                   "osworld:MODULE:CLASS for a class written for OSWorld's runner")
    p.add_argument("--agent-path", help="folder put first on the import path for --agent osworld:MODULE:CLASS "
                   "(an agent class written for OSWorld's runner; docs/design/agent-api.md)")
    p.add_argument("--model", help="model name for model agents")
    p.add_argument("--concurrency", type=int, help="tasks in flight (and sandboxes)")
    p.add_argument("--sandboxes", type=int, help="sandbox pool capacity (default: --concurrency); give tree "
                   "search room to keep tree states")
    p.add_argument("--run-dir", type=Path, help="run directory (default runs/<suite>-<agent>-<time>)")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--task-timeout", type=float, help="wall-clock seconds per task attempt")
    p.add_argument("--domain", action="append", dest="domains", help="only these domains (repeat or comma-separate)")
    p.add_argument("--tasks", help="only these task ids (comma-separated)")
    p.add_argument("--test-list", help="OSWorld test list file ({domain: [ids]})")
    p.add_argument("--provider", help=f"sandbox provider: {' | '.join(providers.names())} (default docker), or "
                   "MODULE:ATTR of a provider class importable here and on cluster workers")
    p.add_argument("--sim-latency-ms", type=float, help="sim provider: latency of each start/observe/execute")
    p.add_argument("--providers-file", help="LLM providers file")
    p.add_argument("--action-space", choices=["pyautogui", "computer_13"])
    p.add_argument("--observation-type", choices=["screenshot", "a11y_tree", "screenshot_a11y_tree", "som"])
    p.add_argument("--infra-retries", type=int)
    p.add_argument("--llm-cache", help="LLM response cache file (default <run-dir>/llm_cache.sqlite); "
                   "an earlier run's cache replays its answers for free")
    p.add_argument("--no-cache", dest="cache", action="store_false", default=None, help="do not use the LLM response cache")
    p.add_argument("--agent-option", action="append", default=[], metavar="KEY=VALUE",
                   help="agent knob (value parsed as JSON when it parses)")
    p.add_argument("--sandbox-network", choices=["none", "bridge"], help="Docker network of each sandbox "
                   "(default none; bridge lets tasks that need the internet reach it)")
    p.add_argument("--desktop", choices=["osworld", "light"], help="sandbox desktop: osworld (default; GNOME "
                   "Shell, dock and top bar as on OSWorld's VM) or light (openbox, smaller and faster)")
    p.add_argument("--warm-start", action=argparse.BooleanOptionalAction, default=None, help="Docker: sandboxes "
                   "start as forks of one snapshot of a freshly booted sandbox (~1 s; shared guest token; fresh "
                   "where forks fail). Default: on for the osworld desktop where the host has CRIU")
    p.add_argument("--proxy", metavar="URL", help="proxy for tasks marked proxy: true (Chrome --proxy-server, "
                   "http(s)_proxy), as OSWorld; without it those tasks run unproxied")
    p.add_argument("--allow-private-urls", action="store_true", default=None, help="let task downloads reach "
                   "loopback, link-local (cloud metadata) and private-network hosts; refused by default")
    p.add_argument("--ray", nargs="?", const="env", metavar="ADDRESS",
                   help="run on a Ray cluster: HOST:PORT, auto, local:N (N loopback nodes), or without a value "
                   "$RAY_ADDRESS; nodes offer sandboxes with --resources '{\"cua_sandbox\": 16}' "
                   "(docs/design/cluster.md)")
    p.add_argument("--config", type=Path, help="JSON config file (CLI flags override it)")
    p.add_argument("--record", action="store_true", default=None, help="record each task's screen (ffmpeg in "
                   "the sandbox, from after setup to before evaluation) to recording.mp4 in its folder")
    p.add_argument("-q", "--quiet", action="store_true", default=None, help="no progress display")


def config_from_args(args: argparse.Namespace, base: dict[str, Any] | None = None) -> Any:
    from harness.config import RunConfig, make_config, parse_agent_options

    values: dict[str, Any] = dict(base or {})
    if getattr(args, "config", None):
        try:
            values.update(json.loads(Path(args.config).read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"--config {args.config}: cannot read a JSON object ({e})") from e
    # Every option of the model that the parser has under the same name (flags default to None).
    for key in RunConfig.model_fields.keys() - {"agent_options"}:
        value = getattr(args, key, None)
        if value is not None:
            values[key] = value
    options = parse_agent_options(getattr(args, "agent_option", []) or [])
    if options:
        values["agent_options"] = {**values.get("agent_options", {}), **options}
    if not values.get("benchmark"):
        raise ConfigError("--benchmark is required (a built-in suite name such as desktop-basics, or a folder)")
    return make_config(values, source=str(args.config) if getattr(args, "config", None) else "command line")


def _run(args: argparse.Namespace) -> int:
    from harness.base.aio import run
    from harness.runner import execute_run

    return run(execute_run, config_from_args(args))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="evaluate an agent on a benchmark (resumes an existing --run-dir)")
    add_run_options(p)
    p.set_defaults(func=_run)
