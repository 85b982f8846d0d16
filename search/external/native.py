"""The native agent API: one `async step` per turn over our observation and action types.

A package adds an agent by entry point (group `cua_harness.agents`, see search/agent.py): the entry
point names a factory `factory(options: dict) -> agent`; `--agent NAME` builds it once per run and
shares it across every task in flight. The agent is either a full `search.Agent` (`solve(task, env)`,
for search agents that drive the sandbox themselves) or, for the usual observe/act loop, a
`StepAgent` below, which `StepAgentRunner` drives:

    class MyAgent:
        name = "mine"
        async def step(self, episode: Episode, observation: Observation) -> Decision:
            return Decision(actions=["pyautogui.press('enter')", "DONE"], response="...")

The runner observes (screenshot PNG, accessibility XML when the run's observation type wants it),
calls `step`, executes the decision's actions in order (pyautogui code strings, computer_13 dicts,
WAIT/DONE/FAIL; vm/actions.py) and records each one, until DONE/FAIL or `max_steps` calls. Per-task
state goes in `episode.memo`, never on the agent (one agent serves concurrent tasks). A malformed
action is recorded as a WAIT carrying its reason, and the rest of that decision is skipped; an
exception from `step` is that task's agent error. Model calls should go through the run's LLM
client (`options["llm"]`, set on the agent's `llm` attribute once the run has one) so limits,
retries, cache and cost hold; set `needs_llm = False` on an agent that calls no model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from search.agent import Outcome, TaskEnv
from vm.actions import ActionError, plan, special_of
from vm.types import Observation


@dataclass(slots=True)
class Decision:
    """What one `step` decided: actions to run in order, and what to record about the call."""

    actions: list[Any]
    response: str = ""
    reasoning: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Episode:
    """One task attempt as a step agent sees it."""

    task_id: str
    domain: str
    instruction: str
    max_steps: int
    step: int = 0  # calls of `step` made so far in this attempt
    # Earlier decisions of this attempt; screenshots are not kept (at hundreds of tasks in flight they
    # would add up): an agent that wants them keeps what it needs in `memo`.
    history: list[Decision] = field(default_factory=list)
    memo: dict[str, Any] = field(default_factory=dict)  # the agent's own per-task state


@runtime_checkable
class StepAgent(Protocol):
    name: str

    async def step(self, episode: Episode, observation: Observation) -> Decision: ...


class StepAgentRunner:
    """A `search.Agent` that drives a `StepAgent` through the observe/act loop."""

    def __init__(self, agent: StepAgent, *, max_steps: int = 15) -> None:
        self.inner = agent
        self.name = getattr(agent, "name", type(agent).__name__)
        self.max_steps = max_steps
        self.needs_llm = getattr(agent, "needs_llm", True)

    @property
    def llm(self) -> Any:
        return getattr(self.inner, "llm", None)

    @llm.setter
    def llm(self, client: Any) -> None:  # the runner hands over the run's LLM client here
        self.inner.llm = client

    def describe(self) -> dict[str, Any] | None:
        describe = getattr(self.inner, "describe", None)
        return describe() if callable(describe) else {"kind": "step", "class": type(self.inner).__qualname__}

    async def solve(self, task: Any, env: TaskEnv) -> Outcome:
        max_steps = getattr(env, "max_steps", None) or self.max_steps
        episode = Episode(task_id=task.id, domain=getattr(task, "domain", ""), instruction=task.instruction,
                          max_steps=max_steps)
        outcome = Outcome(extra={"step_errors": []})
        obs = await env.observe()
        while episode.step < max_steps:
            decision = await self.inner.step(episode, obs)
            episode.step += 1
            if not isinstance(decision, Decision):
                raise TypeError(f"{self.name}.step returned {type(decision).__name__}; expected search.external.native.Decision")
            outcome.prompt_tokens += decision.prompt_tokens
            outcome.completion_tokens += decision.completion_tokens
            outcome.cost_usd += decision.cost_usd
            tokens = decision.prompt_tokens + decision.completion_tokens
            for index, action in enumerate(decision.actions):
                info = {**decision.info, "call": episode.step, "action_index": index}
                try:
                    plan(action)
                except ActionError as e:
                    outcome.extra["step_errors"].append(f"call {episode.step}: {e}")
                    await env.step("WAIT", response=decision.response, reasoning=decision.reasoning,
                                              tokens=tokens, info={**info, "action_error": str(e), "proposed": action})
                    outcome.actions.append("WAIT")
                    outcome.steps += 1
                    break
                await env.step(action, response=decision.response, reasoning=decision.reasoning,
                                          tokens=tokens, info=info)
                tokens = 0  # the call's tokens go on its first action only
                outcome.actions.append(action)
                outcome.steps += 1
                if special_of(action) in ("DONE", "FAIL"):
                    episode.history.append(decision)
                    return outcome
            episode.history.append(decision)
            obs = await env.observe()
        return outcome
