"""Generate an OSWorld-layout suite of simulated tasks for `--provider sim`.

Each task selects a scenario of vm/sim.py in its setup and is scored by a real evaluator
(`vm_command_line: cat /sim/state` + `exact_match` "goal"), so the engine, the run store and the
scoring path run exactly as with Docker sandboxes.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from vm.sim import Scenario


def sim_task(index: int, *, steps: int = 3, trap: bool = False, seed: int | None = None) -> dict:
    seed = index if seed is None else seed
    name = f"chain-{steps}{'-trap' if trap else ''}-s{seed}"
    scenario = Scenario.parse(name)
    return {
        "id": f"sim-{index:05d}",
        "snapshot": "sim",
        "instruction": f"Bring the simulated app to its goal state (scenario {name}).",
        "source": "generated",
        "config": [{"type": "execute", "parameters": {"command": ["sim", "scenario", name], "shell": False}}],
        "trajectory": "trajectories/",
        "related_apps": ["sim"],
        "evaluator": {
            "func": "exact_match",
            "result": {"type": "vm_command_line", "command": ["cat", "/sim/state"], "shell": False},
            "expected": {"type": "rule", "rules": {"expected": "goal"}},
        },
        "proxy": False,
        "solution": scenario.solution(),
    }


def write_sim_suite(root: Path, *, tasks: int, steps: int = 3, trap_every: int = 0, domains: int = 1) -> Path:
    """Write `tasks` sim tasks spread over `domains` domains under root; return root."""
    root = Path(root)
    test_all: dict[str, list[str]] = {}
    for i in range(tasks):
        domain = f"sim{i % domains}" if domains > 1 else "sim"
        task = sim_task(i, steps=steps, trap=bool(trap_every) and i % trap_every == 0)
        folder = root / "examples" / domain
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{task['id']}.json").write_bytes(orjson.dumps(task, option=orjson.OPT_INDENT_2))
        test_all.setdefault(domain, []).append(task["id"])
    (root / "test_all.json").write_bytes(orjson.dumps(test_all, option=orjson.OPT_INDENT_2))
    return root
