"""`--agent mcts` and `--agent rmcts`: tree search over real sandboxes (ExACT's MCTS and R-MCTS).

solve(): search (search.py) -> final replay of the chosen trajectory on the env's home sandbox,
reset to the start state, through `env.step` so every step is recorded; when it fails the task's
evaluator, it is replayed again (at most `final_replays` times in all) to absorb nondeterminism
-> reflection (rmcts) -> tree.json. `mcts` judges with single-agent debate and keeps no memory;
`rmcts` judges with multi-agent debate and learns reflections across tasks.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from harness.base.errors import ConfigError
from search.agent import Outcome, TaskEnv, register_agent
from search.mcts.llm_calls import CallMeter
from search.mcts.memory import ReflectionMemory, ReflectionStore, Retriever, now
from search.mcts.options import MCTSOptions, parse_options
from search.mcts.policy import Policy
from search.mcts.reflection import StepStats, estimated_success, reflect
from search.mcts.search import SearchResult, TreeSearch, tree_summary
from search.mcts.tree import Node
from search.mcts.value import make_value_function

log = logging.getLogger(__name__)
REFLECTIONS_FILE = "reflections.sqlite"


class MCTSAgent:
    def __init__(self, name: str, options: MCTSOptions, llm: Any = None) -> None:
        self.name = name
        self.options = options
        self.llm = llm
        self._memories: dict[Path, ReflectionMemory] = {}
        # Set when the memory lives elsewhere (a cluster worker uses the head's): wins over the file.
        self.memory_store: ReflectionStore | None = None

    def uses_memory(self) -> bool:
        return bool(self.options.reflection)

    def memory_path(self, run_dir: Path | None) -> Path:
        """One memory per run (<run_dir>/reflections.sqlite), or the shared `reflection_path`."""
        if self.options.reflection_path:
            return Path(self.options.reflection_path).resolve()
        if run_dir is None:
            raise ConfigError(f"agent {self.name}: reflection needs a run directory or the option reflection_path")
        return (Path(run_dir) / REFLECTIONS_FILE).resolve()

    def memory_for(self, env: Any) -> ReflectionStore:
        if self.memory_store is not None:
            return self.memory_store
        path = self.memory_path(getattr(env, "run_dir", None))
        if path not in self._memories:
            self._memories[path] = ReflectionMemory(path)
        return self._memories[path]

    def embedding_model(self) -> str | None:
        return self.options.embedding_model or getattr(self.llm, "embedding_model", None)

    async def solve(self, task: Any, env: TaskEnv) -> Outcome:
        if self.llm is None:
            raise ConfigError(f"agent {self.name}: no LLM client (the run must provide one; see --providers-file)")
        if not hasattr(env, "forks"):
            raise ConfigError(f"agent {self.name}: the environment cannot fork sandboxes (tree search needs it)")
        o = self.options
        started = now()
        meter = CallMeter()
        task_id = str(getattr(task, "id", "task"))
        memory = retriever = None
        if o.reflection:
            memory = self.memory_for(env)
            rows = await memory.visible(before=started)
            retriever = Retriever(rows, self.llm, meter, embedding_model=self.embedding_model(), k=o.retrieve_k,
                                  min_score=o.retrieve_min_score, lexical_min_score=o.lexical_min_score)
        policy = Policy(o, self.llm, meter)
        value_fn = make_value_function(o, self.llm, meter)
        search = TreeSearch(o, task, env, self.llm, policy=policy, value_fn=value_fn, meter=meter, retriever=retriever)
        result = await search.run()
        await search.write_tree({"stop_reason": result.stop_reason, **tree_summary(search.tree, result.path)})

        actions, replays, score = await self._final_replay(env, result.path)
        success = None
        stored: list[int] = []
        if memory is not None:
            stats = [StepStats(n.q, n.visits, n.prior, n.value or 0.0) for n in result.path]
            if o.success_from_evaluator and score is not None:
                success = score >= 1.0
            else:
                success = estimated_success(stats, o.estimated_success_q)
            made = await reflect(result.path, instruction=str(task.instruction), task_id=task_id, success=success,
                                 options=o, llm=self.llm, meter=meter)
            if made:
                await self._embed(made, meter, task_id)
                stored = await memory.add(made)
        restore = search.restore.stats.as_dict()
        extra = {
            "stop_reason": result.stop_reason, "iterations": result.iterations,
            "rebuilt_iterations": result.rebuilt_iterations, "nodes": len(search.tree.nodes),
            "final_path": [n.id for n in result.path], "early_stop_node": result.early.id if result.early else None,
            "final_replays": replays, "final_replay_score": score, "llm": meter.snapshot(), "restore": restore,
            "value_wall_s": round(value_fn.wall_s, 4), "value_calls_s": round(value_fn.calls_s, 4),
            "reflections_stored": stored, "reflection_success": success,
            "reflections_visible": len(retriever.rows) if retriever else None,
            "retrieval": retriever.mode if retriever else None, "search_s": round(search.elapsed(), 3),
        }
        await search.write_tree({"stop_reason": result.stop_reason, **tree_summary(search.tree, result.path),
                                 "outcome": extra})
        return Outcome(actions=actions, steps=len(actions), prompt_tokens=meter.prompt_tokens,
                       completion_tokens=meter.completion_tokens, cost_usd=meter.cost_usd, extra=extra)

    async def _final_replay(self, env: Any, path: list[Node]) -> tuple[list[Any], int, float | None]:
        """Replay the trajectory on the clean home sandbox through env.step; re-replay on failure."""
        actions = [a for n in path for a in n.actions]
        can_score = callable(getattr(env, "evaluate", None))
        score: float | None = None
        replays = 0
        for attempt in range(self.options.final_replays):
            if attempt == 0:
                await env.clean_sandbox()
            else:
                await env.reset_sandbox()
            replays += 1
            for node in path:
                for index, action in enumerate(node.actions):
                    await env.step(action, response=node.response if index == 0 else "",
                                   info={"node": node.id, "prior": round(node.prior, 4), "visits": node.visits,
                                         "q": round(node.q, 4), "value": node.value, "replay": attempt + 1,
                                         "action_index": index})
            if not can_score or self.options.final_replays == 1 or not actions:
                break
            evaluation = await env.evaluate(actions)
            score = float(evaluation.score)
            if score >= 1.0:
                break
            log.info("final replay %d scored %.2f; replaying again", attempt + 1, score)
        return actions, replays, score

    async def _embed(self, made: list[Any], meter: CallMeter, task_id: str) -> None:
        model = self.embedding_model()
        if not model:
            return
        try:
            vectors = await self.llm.embed([r.key_text for r in made], model=model, task_id=task_id)
        except Exception as e:  # stored without vectors; readers embed them later
            log.warning("reflection memory: embedding the new records failed (%s); stored without vectors", e)
            return
        meter.calls["embed"] += 1
        for r, v in zip(made, vectors, strict=True):
            r.embedding, r.embedding_model = v, model


def _factory(name: str) -> Any:
    def make(options: dict[str, Any]) -> MCTSAgent:
        parsed, llm = parse_options(name, options)
        return MCTSAgent(name, parsed, llm)

    return make


make_mcts = register_agent("mcts", "MCTS over real sandboxes: PUCT, one n-sample policy request per expansion, "
                       "single-agent debate values (options: iterations, branching_factor, c_schedule, ...)")(_factory("mcts"))
make_rmcts = register_agent("rmcts", "R-MCTS (ExACT): MCTS + multi-agent debate values + reflection memory across tasks "
                        "(options: iterations, reflection_path, retrieve_k, ...)")(_factory("rmcts"))

__all__ = ["MCTSAgent", "SearchResult"]
