"""Every knob of `--agent mcts` / `--agent rmcts` (`--agent-option k=v`), defaults as published.

Published values (ExACT, OSWorld branch unless noted): 60 iterations; PUCT c cosine-scheduled from
1.0 to 0.1 (constant c=1 also used); expansion n = max(2 * branching factor, 20) at temperature 1.0,
top_p 0.9; priors softmax(log(count) / 5); branching factor 10 decaying 10 -> 5 -> 2; single-agent
debate n=10 at T=0.7; multi-agent debate (VWA) debaters n=1 at T=0.1, judge n=3 per ordering at
T=1.0; reflection: up to 3 per task, surprise threshold 0.25 (+|Q|), top-2 retrieval above 0.5;
30 simulation sandboxes per task; 2 re-replays of the final trajectory on failure.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from search.agent_options import parse_agent_options

# Keys the runner passes to every agent factory; `llm` is the run's client, the rest are run options.
ENGINE_KEYS = frozenset({"llm"})


class MCTSOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # -- the policy (the prompt agent's prompt, sampled n times) ------------------------------------
    model: str | None = None
    action_space: Literal["pyautogui", "computer_13"] = "pyautogui"
    observation_type: Literal["screenshot", "a11y_tree", "screenshot_a11y_tree", "som"] = "screenshot_a11y_tree"
    max_steps: int = Field(15, ge=1, description="deepest node (actions from the start state)")
    max_tokens: int = Field(1500, ge=1)
    max_trajectory_length: int = Field(3, ge=0)
    a11y_tree_max_tokens: int = Field(10_000, ge=0)
    password: str = "password"
    image_detail: Literal["high", "low", "auto"] = "high"
    policy_temperature: float = Field(1.0, ge=0)
    policy_top_p: float = Field(0.9, gt=0, le=1)
    min_samples: int = Field(20, ge=1, description="n = max(2 * branching factor, min_samples)")

    # -- the tree -------------------------------------------------------------------------------------
    iterations: int = Field(60, ge=0, description="n_nodes: new transitions per task")
    time_budget_s: float | None = Field(None, gt=0, description="search wall time per task")
    token_budget: int | None = Field(None, gt=0, description="LLM tokens per task (prompt + completion)")
    cost_budget_usd: float | None = Field(None, gt=0, description="LLM cost per task")
    c_schedule: Literal["cosine", "constant"] = "cosine"
    c: float = Field(1.0, ge=0, description="PUCT constant (the cosine schedule's start)")
    c_end: float = Field(0.1, gt=0, description="the cosine schedule's end")
    branching_factor: int = Field(10, ge=1)
    bf_decay: float | None = Field(1.0, gt=0, description="bf(d) = max(2, int(bf*exp(-ln2*d/decay))); null = no decay")
    prior_temperature: float = Field(5.0, gt=0)
    prior: Literal["softmax", "proportional"] = "softmax"
    keep: Literal["top", "sample"] = "top"
    root_advance_every: int = Field(0, ge=0, description="advance the root to its best child every k iterations (0 = never; upstream 20)")
    early_stop_value: float | None = Field(1.0, description="stop when a node's value reaches it (null = never)")
    final_replays: int = Field(3, ge=1, description="replays of the final trajectory: 1 + re-replays on failure")
    seed: int = 0

    # -- state restore ----------------------------------------------------------------------------------
    max_sandboxes: int = Field(30, ge=1, description="search sandboxes per task (bounded by the shared pool)")
    replay_settle_s: float = Field(0.0, ge=0, description="pause after each replayed action")
    prefetch: bool = Field(False, description="while the model thinks, restore the parent state in a spare sandbox")
    state_restore: Literal["replay", "fork", "auto"] = Field(
        "replay", description="reach tree states by replaying actions, by forking snapshots (docs/design/fork.md), "
                              "or auto: fork where the provider can")
    max_snapshots: int = Field(16, ge=1, description="snapshots kept per task (least recently used evicted)")
    snapshot_budget_mb: float | None = Field(None, gt=0, description="disk budget of a task's snapshots")

    # -- value function ---------------------------------------------------------------------------------
    value_function: Literal["single_debate", "multi_debate"] = "single_debate"
    value_model: str | None = None
    value_max_tokens: int = Field(1024, ge=1)
    value_context: int = Field(3, ge=0, description="(observation, action) pairs shown before the judged state")
    single_n: int = Field(10, ge=1)
    single_temperature: float = Field(0.7, ge=0)
    debater_temperature: float = Field(0.1, ge=0)
    debater_max_tokens: int = Field(256, ge=1)
    judge_n: int = Field(3, ge=1, description="verdicts per ordering")
    judge_temperature: float = Field(1.0, ge=0)

    # -- reflection -------------------------------------------------------------------------------------
    reflection: bool = False
    reflection_path: str | None = Field(None, description="SQLite memory; default <run_dir>/reflections.sqlite")
    max_reflections: int = Field(3, ge=0)
    surprise_threshold: float = Field(0.25, ge=0)
    surprise_plus_abs_q: bool = True
    success_from_evaluator: bool = Field(False, description="reflect with the final replay's score instead of mean(Q) > 0.7")
    estimated_success_q: float = 0.7
    retrieve_k: int = Field(2, ge=0)
    retrieve_min_score: float = Field(0.5, description="cosine floor for embedding retrieval")
    lexical_min_score: float = Field(0.3, description="floor for the word-overlap fallback")
    embedding_model: str | None = Field(None, description="default: the providers file's embedding_model; none -> lexical")
    reflection_max_tokens: int = Field(256, ge=1)
    reflection_temperature: float = Field(0.0, ge=0)
    reflection_entry_tokens: int = Field(128, ge=8)

    @model_validator(mode="after")
    def _check(self) -> MCTSOptions:
        if self.observation_type == "som" and self.action_space != "pyautogui":
            raise ValueError("observation_type 'som' works with action_space 'pyautogui' only")
        return self


# What each agent name changes from the defaults above.
PRESETS: dict[str, dict[str, Any]] = {
    "mcts": {"value_function": "single_debate", "reflection": False},
    "rmcts": {"value_function": "multi_debate", "reflection": True},
}


def parse_options(agent: str, options: dict[str, Any]) -> tuple[MCTSOptions, Any]:
    """(options, llm) from the factory's dict: preset, then the user's `--agent-option`s."""
    return parse_agent_options(agent, MCTSOptions, options, drop=ENGINE_KEYS, preset=PRESETS[agent])
