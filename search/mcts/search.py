"""The search loop: select -> one new transition -> one expansion + one evaluation -> backup.

Per iteration, PUCT walks from the search root to the first child whose transition has not run;
that transition runs in a sandbox holding the parent's state (state restore replays whatever is
missing), the new state is observed, then the node is expanded (one policy request, n samples) and
evaluated (one value function call) concurrently, since both only read the new observation, and
the value is backed up as a running mean. No rollouts.

Budgets: iterations (n_nodes), search wall time, tokens and cost per task; the search stops
early when a node's value reaches `early_stop_value` (1.0: every judge said the task is done).
The answer is that node's path, or else the best-child path from the root (after the optional
root advances).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson

from search.mcts.expansion import branching_factor, samples_for
from search.mcts.llm_calls import CallMeter
from search.mcts.memory import reflections_block
from search.mcts.persist import (
    SEARCH_LOG,
    TREE_FILE,
    add_children,
    children_json,
    parse_lines,
    rebuild,
    screenshot_name,
)
from search.mcts.prompts import REFLECTIONS_HEADER
from search.mcts.state_restore import action_key
from search.mcts.tree import Node, Tree, backup, best_path, c_at, node_json, select
from vm.types import Observation

log = logging.getLogger(__name__)
TERMINAL_ACTIONS = {"DONE": "done", "FAIL": "fail"}


@dataclass
class SearchResult:
    path: list[Node]
    stop_reason: str
    iterations: int
    early: Node | None = None
    rebuilt_iterations: int = 0
    per_iteration: list[dict[str, Any]] = field(default_factory=list)


def terminal_of(node: Node, max_depth: int) -> str | None:
    if node.actions and isinstance(node.actions[-1], str) and node.actions[-1] in TERMINAL_ACTIONS:
        return TERMINAL_ACTIONS[node.actions[-1]]
    if node.depth >= max_depth:
        return "max_depth"
    return None


def _only_stop_actions(actions: list[Any]) -> bool:
    return bool(actions) and all(isinstance(a, str) and a in TERMINAL_ACTIONS for a in actions)


class TreeSearch:
    def __init__(self, options: Any, task: Any, env: Any, llm: Any, *, policy: Any, value_fn: Any,
                 meter: CallMeter, retriever: Any = None) -> None:
        self.o = options
        self.task = task
        self.env = env
        self.llm = llm
        self.policy = policy
        self.value_fn = value_fn
        self.meter = meter
        self.retriever = retriever
        self.tree = Tree()
        self.task_id = str(getattr(task, "id", "task"))
        self.instruction = str(getattr(task, "instruction", ""))
        self.max_depth = min(options.max_steps, getattr(env, "max_steps", None) or options.max_steps)
        self.a11y = options.observation_type != "screenshot"
        self.restore = env.forks(max_sandboxes=options.max_sandboxes, settle_s=options.replay_settle_s,
                                 mode=options.state_restore, max_snapshots=options.max_snapshots,
                                 snapshot_budget_mb=options.snapshot_budget_mb)
        self._system: str | None = None
        self._screen: tuple[int, int] | None = None
        self._elapsed_before = 0.0
        self._t0 = time.monotonic()
        self._can_log = hasattr(env, "append_artifact")

    # -- budget --------------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self._elapsed_before + time.monotonic() - self._t0

    def _over_budget(self, i: int) -> str | None:
        o = self.o
        if i >= o.iterations:
            return "iterations"
        if o.time_budget_s is not None and self.elapsed() >= o.time_budget_s:
            return "time"
        if o.token_budget is not None and self.meter.used_tokens >= o.token_budget:
            return "tokens"
        if o.cost_budget_usd is not None and self.meter.used_cost_usd >= o.cost_budget_usd:
            return "cost"
        return None

    # -- the loop ------------------------------------------------------------------------------------
    async def run(self) -> SearchResult:
        rebuilt = await self._resume()
        start = rebuilt.iterations if rebuilt else 0
        result = SearchResult([], "iterations", start, rebuilt_iterations=start)
        if rebuilt and rebuilt.stop:
            stop = rebuilt.stop
            early = self.tree.nodes.get(stop.get("node")) if stop.get("node") is not None else None
            return self._finish(result, str(stop.get("reason", "iterations")), early)
        if not self.tree.root.expanded:
            reason = self._over_budget(start)
            if reason:  # no iteration could use the root's expansion: do not pay for it
                return await self._stop(result, reason, None, start)
            await self._start_root()
        i = start
        while True:
            reason = self._over_budget(i)
            if reason:
                return await self._stop(result, reason, None, i)
            c = c_at(self.o.c_schedule, self.o.c, self.o.c_end, i, self.o.iterations)
            leaf = select(self.tree.search_root, c)
            if leaf is self.tree.search_root and not leaf.children:
                return await self._stop(result, "exhausted", None, i)
            if leaf.executed:  # a terminal or dead-end node again: its value is backed up once more
                assert leaf.value is not None
                backup(leaf, leaf.value)
                await self._log({"event": "revisit", "i": i, "node": leaf.id, "value": leaf.value, **self._usage()})
            else:
                line = await self._iterate(leaf, i, c)
                result.per_iteration.append({k: line[k] for k in ("i", "replayed", "sandboxes", "seconds",
                                                                  "state_restore")})
                if self.o.early_stop_value is not None and leaf.value is not None and leaf.value >= self.o.early_stop_value:
                    return await self._stop(result, "early_stop", leaf, i + 1)
            i += 1
            if self.o.root_advance_every and i % self.o.root_advance_every == 0:
                await self._advance(i)
            if i % 10 == 0:
                await self.write_tree()

    async def _start_root(self) -> None:
        """Observe the start state (the clean home sandbox: looking does not change it) and expand it."""
        root = self.tree.root
        obs = await self.env.sandbox.observe(accessibility=self.a11y)
        await self._take_observation(root, obs)
        root.terminal = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._save_screenshot, root, obs.screenshot)
            tg.start_soon(self._expand, root)
        await self._log({"event": "root", "node": 0, "children": children_json(root.children),
                         "terminal": root.terminal, "table": root.a11y_text, "screenshot": root.screenshot,
                         "reflections": root.reflections, **self._usage()})

    async def _iterate(self, leaf: Node, i: int, c: float) -> dict[str, Any]:
        t0 = time.monotonic()
        parent = leaf.parent
        assert parent is not None
        replayed_before = self.restore.stats.replayed
        value_wall, value_calls = self.value_fn.wall_s, self.value_fn.calls_s
        shot: bytes | None = None
        if _only_stop_actions(leaf.actions):
            # DONE/FAIL change nothing on the desktop: the state is the parent's, no sandbox needed.
            leaf.obs, leaf.a11y_text, leaf.screenshot = parent.obs, parent.a11y_text, parent.screenshot
        else:
            # The parent's state is wanted again while it has other children not run yet.
            keep = any(not c.executed for c in parent.children if c is not leaf)
            async with self.env.fork(parent.action_path(), keep=keep) as lease:
                for action in leaf.actions:
                    result = await lease.execute(action)
                    if not result.ok:
                        leaf.error = (result.error or result.output or f"returncode {result.returncode}")[-500:]
                obs = await lease.observe(accessibility=self.a11y)
                leaf.restore = dict(lease.restore)
            await self._take_observation(leaf, obs)
            shot = obs.screenshot
        leaf.executed = True
        leaf.iteration = i
        leaf.terminal = terminal_of(leaf, self.max_depth)
        async with anyio.create_task_group() as tg:
            if shot is not None:
                tg.start_soon(self._save_screenshot, leaf, shot)
            if leaf.terminal is None:
                tg.start_soon(self._expand, leaf)
            tg.start_soon(self._evaluate, leaf)
            if self.o.prefetch and any(not c.executed for c in parent.children if c is not leaf):
                # The leaf's sandbox now holds the leaf, so the parent's state is gone; its other
                # children are likely next. Restoring it costs sandbox time the model calls hide.
                tg.start_soon(self.restore.prefetch, parent.action_path())
        assert leaf.value is not None
        backup(leaf, leaf.value)
        line = {
            "event": "iteration", "i": i, "node": leaf.id, "parent": parent.id, "depth": leaf.depth, "c": round(c, 6),
            "actions": leaf.actions, "value": leaf.value, "judge": leaf.judge, "terminal": leaf.terminal,
            "error": leaf.error, "children": children_json(leaf.children) if leaf.expanded else None,
            "table": leaf.a11y_text, "screenshot": leaf.screenshot, "reflections": leaf.reflections,
            "replayed": self.restore.stats.replayed - replayed_before, "sandboxes": self.restore.held,
            "state_restore": leaf.restore, "fork_off": self.restore.fork_off,
            "restore": self.restore.stats.as_dict(),
            "value_wall_s": round(self.value_fn.wall_s - value_wall, 4),
            "value_calls_s": round(self.value_fn.calls_s - value_calls, 4),
            "seconds": round(time.monotonic() - t0, 4), **self._usage(),
        }
        await self._log(line)
        return line

    async def _advance(self, i: int) -> None:
        path = best_path(self.tree.search_root)
        if path:
            self.tree.search_root = path[0]
            await self._log({"event": "advance", "i": i, "root": path[0].id, **self._usage()})

    async def _stop(self, result: SearchResult, reason: str, early: Node | None, i: int) -> SearchResult:
        result.iterations = i
        await self._log({"event": "stop", "i": i, "reason": reason, "node": early.id if early else None,
                         **self._usage()})
        return self._finish(result, reason, early)

    def _finish(self, result: SearchResult, reason: str, early: Node | None) -> SearchResult:
        result.stop_reason, result.early = reason, early
        if early is not None:
            result.path = early.path()[1:]
        else:
            result.path = self.tree.search_root.path()[1:] + best_path(self.tree.search_root)
        return result

    # -- the parts of an iteration ---------------------------------------------------------------------
    async def _take_observation(self, node: Node, obs: Observation) -> None:
        self._screen = self._screen or obs.screen_size
        node.obs = await self.policy.prepare(obs)
        node.a11y_text = node.obs.table or ""
        node.screenshot = screenshot_name(node)

    async def _save_screenshot(self, node: Node, png: bytes) -> None:
        await self.env.write_artifact(screenshot_name(node), png)

    async def _expand(self, node: Node) -> None:
        k = branching_factor(self.o.branching_factor, node.depth, self.o.bf_decay)
        n = samples_for(k, self.o.min_samples)
        block = None
        if self.retriever is not None:
            found = await self.retriever.retrieve(self.instruction, node.a11y_text, task_id=self.task_id)
            node.reflections = [r.id for r, _ in found]
            block = reflections_block(found, REFLECTIONS_HEADER, self.o.reflection_entry_tokens)
        if self._system is None:
            self._system = self.policy.system(self.instruction, self._screen or (1920, 1080))
        rng = random.Random(f"{self.o.seed}:{self.task_id}:{node.id}")
        proposal = await self.policy.propose(self._system, node, k=k, n=n, rng=rng, reflections=block,
                                             screen_size=self._screen, task_id=self.task_id)
        add_children(self.tree, node, proposal.candidates)
        node.expanded = True
        if not node.children:
            node.terminal = "no_valid_action"
        node.judge = {**(node.judge or {}), "expansion": {
            "samples": proposal.samples, "valid": proposal.valid, "unique_kept": len(proposal.candidates),
            "request": proposal.request_hash, "errors": proposal.errors}}

    async def _evaluate(self, node: Node) -> None:
        path = node.path()[1:]
        steps = [(n.parent.obs if n.parent else None, n.actions) for n in path]
        path_key = "\n\n".join(n.key or "\n".join(action_key(a) for a in n.actions) for n in path)
        judgement = await self.value_fn.evaluate(self.instruction, path_key, steps, node.obs, task_id=self.task_id)
        node.value = judgement.value
        node.judge = {**(node.judge or {}), "value": judgement.details}

    # -- persistence -----------------------------------------------------------------------------------
    def _usage(self) -> dict[str, Any]:
        return {"used_tokens": self.meter.used_tokens, "used_cost_usd": round(self.meter.used_cost_usd, 8),
                "elapsed_s": round(self.elapsed(), 3)}

    async def _log(self, line: dict[str, Any]) -> None:
        if self._can_log:
            await self.env.append_artifact(SEARCH_LOG, line)

    async def write_tree(self, extra: dict[str, Any] | None = None) -> None:
        doc = {**self.tree.to_json(), **(extra or {})}
        await self.env.write_artifact(TREE_FILE, orjson.dumps(doc, default=str, option=orjson.OPT_INDENT_2))

    async def _resume(self) -> Any:
        """Rebuild the tree from an unfinished earlier attempt's search.jsonl (no LLM call, no sandbox)."""
        previous = getattr(self.env, "previous_artifact", None)
        if previous is None:
            return None
        data = await previous(SEARCH_LOG)
        if not data:
            return None
        lines = parse_lines(data)
        names = sorted({line["screenshot"] for line in lines if line.get("screenshot")})
        shots: dict[str, bytes] = {}
        for name in names:
            png = await previous(name)
            if png is not None:
                shots[name] = png
        state = rebuild(self.tree, lines, shots, with_image=self.o.observation_type != "a11y_tree")
        # The new attempt's folder gets the same log and screenshots, so it stands on its own.
        for line in lines[: state.lines]:
            await self._log(line)
        for name, png in shots.items():
            await self.env.write_artifact(name, png)
        self.meter.restore_used(state.used_tokens, state.used_cost_usd)
        self._elapsed_before = state.elapsed_s
        log.info("task %s: rebuilt %d iterations of the search from the previous attempt's log",
                 self.task_id, state.iterations)
        return state


def tree_summary(tree: Tree, path: list[Node]) -> dict[str, Any]:
    return {"final_path": [n.id for n in path], "final": [node_json(n) for n in path]}
