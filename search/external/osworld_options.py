"""How `--agent osworld:MODULE:CLASS` finds the class and builds its constructor's arguments.

OSWorld's run scripts build an agent as `PromptAgent(model=args.model, max_tokens=args.max_tokens,
top_p=args.top_p, temperature=args.temperature, action_space=args.action_space,
observation_type=args.observation_type, max_trajectory_length=args.max_trajectory_length)`, with
run.py's defaults. We pass the same names with the same defaults, but only those the class's
`__init__` accepts (agents differ: UI-TARS takes `runtime_conf`, Claude's takes `provider`), and
every `--agent-option` the user gives; an option the constructor does not take is an error.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.base.errors import ConfigError

PREFIX = "osworld:"

# run.py's argparse defaults for the names it passes to the constructor.
RUN_DEFAULTS: dict[str, Any] = {"max_tokens": 1500, "top_p": 0.9, "temperature": 1.0, "max_trajectory_length": 3}

# Options of the adapter itself (the env and the runner in OSWorld), never a constructor argument
# unless the constructor also names them.
RUNNER_DEFAULTS: dict[str, Any] = {
    "sleep_after_execution": 0.0,  # run.py --sleep_after_execution: env.step(action, pause)
    "settle_s": 60.0,  # lib_run_single: time.sleep(60) after env.reset
    "eval_settle_s": 20.0,  # lib_run_single: time.sleep(20) before env.evaluate
    "require_terminal": False,  # DesktopEnv(require_terminal=...): obs["terminal"]
}


@dataclass(frozen=True, slots=True)
class OSWorldAgentSpec:
    """What to build: the class, its constructor arguments and the runner's own settings."""

    module: str
    class_name: str
    cls: type
    kwargs: dict[str, Any]
    runner: dict[str, Any] = field(default_factory=dict)
    action_space: str = "pyautogui"
    observation_type: str = "screenshot_a11y_tree"


def is_osworld_agent(name: str) -> bool:
    return name.startswith(PREFIX)


def parse_name(name: str) -> tuple[str, str]:
    """`osworld:MODULE:CLASS` -> (MODULE, CLASS)."""
    rest = name[len(PREFIX):]
    module, sep, cls = rest.rpartition(":")
    if not sep or not module or not cls or not cls.isidentifier():
        raise ConfigError(f"--agent {name!r}: expected osworld:MODULE:CLASS (e.g. osworld:mm_agents.agent:PromptAgent)")
    return module, cls


def import_class(name: str, agent_path: str | None) -> tuple[str, str, type]:
    """Import the class, with `agent_path` (a folder, or several joined by os.pathsep) first on sys.path."""
    module_name, class_name = parse_name(name)
    for folder in reversed([p for p in (agent_path or "").split(os.pathsep) if p]):
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError(f"--agent-path {folder}: not a folder")
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"--agent {name!r}: cannot import {module_name} ({e}); set --agent-path to the folder "
                          "that holds it (OSWorld's checkout for mm_agents.*)") from e
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ConfigError(f"--agent {name!r}: {module_name} has no class {class_name}")
    if not callable(getattr(cls, "predict", None)):
        raise ConfigError(f"--agent {name!r}: {class_name} has no predict(instruction, obs) method")
    return module_name, class_name, cls


def _accepts(cls: type) -> tuple[set[str], bool, set[str]]:
    """(keyword names __init__ takes, whether it takes **kwargs, names it requires)."""
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return set(), True, set()
    names: set[str] = set()
    required: set[str] = set()
    var_kw = False
    for i, p in enumerate(sig.parameters.values()):
        if i == 0 and p.name == "self":
            continue
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.add(p.name)
            if p.default is p.empty:
                required.add(p.name)
    return names, var_kw, required


def build_spec(name: str, *, agent_path: str | None, options: dict[str, Any], model: str | None,
               action_space: str, observation_type: str, max_steps: int) -> OSWorldAgentSpec:
    """Resolve the class and split `options` into constructor arguments and runner settings.

    `options` are the user's --agent-option values; `model`, `action_space`, `observation_type`
    and `max_steps` are the run's. An option that names one of those wins for the constructor and
    for the env (the caller reports a conflict with an explicit run flag)."""
    module_name, class_name, cls = import_class(name, agent_path)
    names, var_kw, required = _accepts(cls)
    runner = {k: options.get(k, v) for k, v in RUNNER_DEFAULTS.items()}
    for key in ("sleep_after_execution", "settle_s", "eval_settle_s"):
        value = runner[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"--agent-option {key}={value!r}: expected seconds >= 0")
    runner["max_steps"] = options.get("max_steps", max_steps)
    if isinstance(runner["max_steps"], bool) or not isinstance(runner["max_steps"], int) or runner["max_steps"] < 1:
        raise ConfigError(f"--agent-option max_steps={runner['max_steps']!r}: expected an integer >= 1")
    space = options.get("action_space", action_space)
    obs_type = options.get("observation_type", observation_type)

    standard = {"model": options.get("model", model), **RUN_DEFAULTS, "action_space": space,
                "observation_type": obs_type}
    kwargs = {k: v for k, v in standard.items() if (k in names or var_kw) and v is not None}
    for key, value in options.items():
        if key in RUNNER_DEFAULTS or key == "max_steps":
            if key in names:  # the class wants it too (some agents take max_steps)
                kwargs[key] = value
            continue
        if key not in names and not var_kw:
            accepted = ", ".join(sorted(names)) or "nothing"
            raise ConfigError(f"--agent-option {key}: {class_name}.__init__ does not take it; it takes {accepted} "
                              f"(runner options: {', '.join([*RUNNER_DEFAULTS, 'max_steps'])})")
        kwargs[key] = value
    missing = sorted(required - set(kwargs))
    if missing:
        raise ConfigError(f"--agent {name!r}: {class_name}.__init__ needs {', '.join(missing)}; "
                          f"give them with --agent-option KEY=VALUE")
    return OSWorldAgentSpec(module=module_name, class_name=class_name, cls=cls, kwargs=kwargs, runner=runner,
                            action_space=str(space), observation_type=str(obs_type))
