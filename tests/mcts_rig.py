"""Shared rig for the tree-search tests: a scripted model for the sim's chain scenarios and an
in-process run (real engine, pool, sim sandboxes, setup, evaluator, run store, LLM client on llm-sim).

The model plays every role by reading the state label the sim puts in the accessibility tree:
- policy: at state 0 of a trap scenario it proposes the trap 60% of the time (its first choice is
  the trap, so a one-sample agent always takes it), the right click 40%; at later states mostly the
  right click; in the trap only clicks that do nothing; at the goal DONE;
- judges score what they see: goal A, state 2 B, state 1 C, state 0 D, trap E;
- debaters and reflection answer briefly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import orjson

from benchmarks.sim_suite import sim_task
from vm.sim import Scenario

STATE = re.compile(r"chain-\d+(?:-trap)?-s\d+ state (\w+)")
LETTER = {"goal": "A", "2": "B", "1": "C", "0": "D", "trap": "E"}


def text_of(message: dict[str, Any]) -> str:
    c = message["content"]
    return c if isinstance(c, str) else "".join(p.get("text", "") for p in c if p.get("type") == "text")


def role_of(request: dict[str, Any]) -> str:
    last = text_of(request["messages"][-1])
    if "EVALUATION: X" in last:
        return "value"
    if "STATUS CODE: X" in last:
        return "judge"
    if "ROLE: SUPPORTING" in last or "ROLE: OPPOSING" in last:
        return "debate"
    if "ROLE: REFLECTION" in last:
        return "reflection"
    return "policy"


@dataclass
class ScriptedModel:
    scenario: str = "chain-3-trap-s1"
    requests: list[dict[str, Any]] = field(default_factory=list)
    block_policy_after: int | None = None  # hang policy requests after this many (to cut a run)
    seen: dict[str, int] = field(default_factory=dict)  # single-sample requests per prompt
    blocked: anyio.Event = field(default_factory=anyio.Event)
    release: anyio.Event = field(default_factory=anyio.Event)

    def _sc(self, request: dict[str, Any]) -> tuple[Scenario, str]:
        found = STATE.findall(text_of(request["messages"][-1]))
        label = re.search(r"(chain-\d+(?:-trap)?-s\d+) state", text_of(request["messages"][-1]))
        sc = Scenario.parse(label.group(1) if label else self.scenario)
        return sc, found[-1] if found else "?"

    async def __call__(self, request: dict[str, Any]) -> list[str]:
        self.requests.append(request)
        n = request.get("n") or 1
        role = role_of(request)
        sc, state = self._sc(request)
        if role == "policy" and self.block_policy_after is not None:
            if sum(role_of(r) == "policy" for r in self.requests) > self.block_policy_after:
                self.blocked.set()
                await self.release.wait()
        if role == "value":
            return [f"The screen shows state {state}.\nEVALUATION: {LETTER.get(state, 'D')}"] * n
        if role == "judge":
            return [f"Weighing both opinions: state {state}.\nSTATUS CODE: {LETTER.get(state, 'D')}"] * n
        if role == "debate":
            return [f"The agent is at state {state}."] * n
        if role == "reflection":
            return ["The tempting first button leads to a dead end; the other control makes progress."] * n
        if n == 1:
            # A server without n gets the same prompt k times: answer as the k-th of 20 samples.
            key = json.dumps(request["messages"], sort_keys=True)
            k = self.seen[key] = self.seen.get(key, -1) + 1
            return [self._choices(sc, state, 20)[k % 20]]
        return self._choices(sc, state, n)

    def _choices(self, sc: Scenario, state: str, n: int) -> list[str]:
        if state == "goal":
            return ["The app reached its goal.\n```DONE```"] * n
        if state == "trap":
            return [f"```python\npyautogui.click({10 + i % 3}, 10)\n```" for i in range(n)]
        s = int(state)
        good = f"```python\n{sc.correct_action(s)}\n```"
        if s == 0 and sc.trap:
            trap = sc.trap_action()
            variants = [f"```python\n{trap}\n```", f"```python\n# the big button\n{trap}\n```",
                        f"```python\n{trap.replace(', ', ',')}\n```"]
            return [good if i % 5 in (2, 4) else variants[i % 3] for i in range(n)]
        return [good if i % 4 != 3 else "```python\npyautogui.click(1, 1)\n```" for i in range(n)]

    def by_role(self, role: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if role_of(r) == role]


def write_suite(root: Path, seeds: list[int], *, steps: int = 3, trap: bool = True) -> Path:
    folder = root / "examples" / "sim"
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for i, seed in enumerate(seeds):
        task = sim_task(i + 1, steps=steps, trap=trap, seed=seed)
        (folder / f"{task['id']}.json").write_bytes(orjson.dumps(task, option=orjson.OPT_INDENT_2))
        ids.append(task["id"])
    (root / "test_all.json").write_bytes(orjson.dumps({"sim": ids}))
    return root


def providers(url: str, *, embedding: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"default_model": "sim-model",
                           "endpoints": [{"kind": "openai-compatible", "base_url": url, "models": ["*"]}]}
    if embedding:
        out["embedding_model"] = "sim-embed"
    return out


async def run_suite(suite: Path, run_dir: Path, url: str, agent: str, *, concurrency: int = 1, capacity: int = 4,
                    options: dict[str, Any] | None = None, embedding: bool = True, max_steps: int = 6,
                    observation_type: str = "a11y_tree") -> dict[str, dict[str, Any]]:
    """One in-process run; returns {task_id: result.json}."""
    from benchmarks.context import RunContext
    from benchmarks.loader import load_suite
    from benchmarks.setup_steps import run_task_setup, unsupported_features
    from harness.config import make_config
    from harness.engine import Engine
    from harness.llm.client import LLMClient
    from results.store import RunStore
    from scoring import evaluate
    from search.agent import make_agent
    from vm.pool import SandboxPool
    from vm.sim import SimProvider

    loaded = load_suite(suite)
    config = make_config({"benchmark": str(suite), "agent": agent, "provider": "sim", "concurrency": concurrency,
                          "observation_type": observation_type, "max_steps": max_steps, "run_dir": str(run_dir)})
    async with LLMClient.from_config(providers(url, embedding=embedding), cache_path=run_dir / "llm_cache.sqlite") as llm:
        store = await RunStore.open(run_dir, config.model_dump(mode="json"), result_keys=[])
        try:
            async with SandboxPool(SimProvider(screen_size=(1280, 720)), capacity=capacity) as pool:
                made = make_agent(agent, {"llm": llm, "observation_type": observation_type, "max_steps": max_steps,
                                          **(options or {})})
                ctx = RunContext.for_suite(loaded, run_dir=run_dir, screen_size=(1280, 720))
                engine = Engine(config, loaded.tasks, store, pool, made, setup=run_task_setup, evaluate=evaluate,
                                unsupported=unsupported_features, context=ctx)
                await engine.run()
                assert pool.stats().busy == 0, "every sandbox must be back in the pool"
        finally:
            await store.aclose()
    return read_results(run_dir)


def read_results(run_dir: Path) -> dict[str, dict[str, Any]]:
    return {p.parent.name: json.loads(p.read_text()) for p in run_dir.glob("sim/*/result.json")}


def search_log(run_dir: Path, task_id: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "sim" / task_id / "search.jsonl").read_text().splitlines()]


def tree_json(run_dir: Path, task_id: str) -> dict[str, Any]:
    return json.loads((run_dir / "sim" / task_id / "tree.json").read_text())
