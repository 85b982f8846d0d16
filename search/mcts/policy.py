"""The MCTS policy: the prompt agent's prompt for a node, sampled n times in ONE request.

The history is the node's path: the last `max_trajectory_length` (observation, reply) pairs, as
the prompt agent shows them. Retrieved reflections go in front of the current observation. Every
sampled reply is parsed with the prompt agent's parser; replies with no valid action, and actions
that fail validation (vm.actions), are dropped before counting.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import anyio

from search import prompts as agent_prompts
from search.mcts.expansion import Candidate, children_of
from search.mcts.llm_calls import CallMeter
from search.mcts.tree import Node
from search.parsing import SPECIALS, parse_reply
from search.prompt_agent import PreparedObservation, build_messages, prepare_observation
from search.som import apply_tags
from vm.actions import ActionError, plan
from vm.types import Observation


@dataclass
class Proposal:
    candidates: list[Candidate]
    samples: int
    valid: int
    request_hash: str
    cached: bool
    errors: list[str] = field(default_factory=list)


def cut_at_terminal(actions: list[Any]) -> list[Any]:
    """Actions up to and including the first DONE/FAIL (nothing runs after the agent stops)."""
    for i, a in enumerate(actions):
        if isinstance(a, str) and a in ("DONE", "FAIL"):
            return actions[: i + 1]
    return actions


class Policy:
    def __init__(self, options: Any, llm: Any, meter: CallMeter) -> None:
        self.o = options
        self.llm = llm
        self.meter = meter
        self._system: str | None = None

    async def prepare(self, obs: Observation) -> PreparedObservation:
        return await anyio.to_thread.run_sync(prepare_observation, obs, self.o.observation_type,
                                              self.o.a11y_tree_max_tokens)

    def system(self, instruction: str, screen_size: tuple[int, int]) -> str:
        if self._system is None:
            self._system = agent_prompts.task_prompt(
                agent_prompts.system_prompt(self.o.observation_type, self.o.action_space, screen_size=screen_size,
                                            password=self.o.password), instruction)
        return self._system

    def messages(self, system: str, node: Node, reflections: str | None) -> list[dict[str, Any]]:
        """The prompt agent's chat for the state of `node`, with reflections before its observation."""
        history: list[tuple[PreparedObservation, str]] = []
        if self.o.max_trajectory_length:
            steps = node.path()[1:]
            for step in steps[-self.o.max_trajectory_length:]:
                assert step.parent is not None and step.parent.obs is not None
                history.append((step.parent.obs, step.response.strip() or agent_prompts.NO_VALID_ACTION))
        messages = build_messages(system, history, node.obs, self.o.observation_type, detail=self.o.image_detail)
        if reflections:
            last = messages[-1]
            last["content"] = [{"type": "text", "text": reflections}, *last["content"]]
        return messages

    async def propose(self, system: str, node: Node, *, k: int, n: int, rng: random.Random,
                      reflections: str | None, screen_size: tuple[int, int] | None, task_id: str | None) -> Proposal:
        messages = self.messages(system, node, reflections)
        completion = await self.meter.complete(
            self.llm, messages, purpose="policy", model=self.o.model, n=n, temperature=self.o.policy_temperature,
            top_p=self.o.policy_top_p, max_tokens=self.o.max_tokens, task_id=task_id)
        steps: list[tuple[list[Any], str]] = []
        errors: list[str] = []
        for reply in completion.choices:
            parsed = parse_reply(reply or "", self.o.action_space)
            if not parsed.ok:
                errors.append(parsed.error or "unparsable")
                continue
            try:
                actions = [self._finalize(a, node.obs, screen_size) for a in cut_at_terminal(list(parsed.actions))]
            except ValueError as e:
                errors.append(str(e))
                continue
            steps.append((actions, reply.strip()))
        candidates = children_of(steps, k, temperature=self.o.prior_temperature, prior_mode=self.o.prior,
                                 keep_mode=self.o.keep, rng=rng)
        return Proposal(candidates, len(completion.choices), len(steps), completion.request_hash, completion.cached,
                        errors[:5])

    def _finalize(self, action: Any, prepared: PreparedObservation | None, screen_size: tuple[int, int] | None) -> Any:
        """Set-of-marks tags into code; every action validated as the sandbox would (ValueError if bad)."""
        if isinstance(action, str) and action in SPECIALS:
            return action
        if isinstance(action, str) and self.o.observation_type == "som" and prepared is not None:
            action = apply_tags(action, prepared.marks)
        try:
            plan(action, screen_size=screen_size)
        except ActionError as e:
            raise ValueError(str(e)) from e
        return action
