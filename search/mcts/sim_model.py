"""A scripted model for the sim's chain scenarios (vm/sim.py), for llm-sim: every role of the tree
search agents, played by reading the state label the sim puts in the accessibility tree.

    python -m harness llm-sim --port 8000 --policy search.mcts.sim_model:policy

- policy: at state 0 of a trap scenario, the trap 60% of the samples (the first sample is the
  trap, so a one-sample agent always takes it) and the right click 40%; at later states the right
  click 75% and a click that does nothing 25%; in the trap only clicks that do nothing; at the
  goal DONE. A server without n (one sample per request) answers the k-th identical request with
  the k-th of 20 samples, like independent sampling would;
- judges score what they see: goal A, state 2 or later B, state 1 C, state 0 D, trap E;
- debaters and reflection answer in one sentence.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from vm.sim import Scenario

_STATE = re.compile(r"(chain-\d+(?:-trap)?-s\d+) state (\w+)")


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


def letter(state: str) -> str:
    if state == "goal":
        return "A"
    if state == "trap":
        return "E"
    if state.isdigit():
        return "D" if state == "0" else "C" if state == "1" else "B"
    return "D"


_LETTERS = "ABCDE"


class ChainModel:
    """`judge_noise` p: each verdict is one letter off with probability p (deterministic per
    request and sample); `flat_judge`: the judges cannot tell states apart until the goal. Both
    make the search explore and backtrack (benchmarks of state restore)."""

    def __init__(self, default_scenario: str = "chain-3-trap-s1", *, judge_noise: float = 0.0,
                 flat_judge: bool = False) -> None:
        self.default_scenario = default_scenario
        self.judge_noise = judge_noise
        self.flat_judge = flat_judge  # every state but the goal looks the same (C): search by priors
        self.requests: list[dict[str, Any]] = []
        self.seen: dict[str, int] = {}

    def scenario_state(self, request: dict[str, Any]) -> tuple[Scenario, str]:
        found = _STATE.findall(text_of(request["messages"][-1]))
        name, state = found[-1] if found else (self.default_scenario, "?")
        return Scenario.parse(name), state

    def answer(self, request: dict[str, Any]) -> list[str]:
        self.requests.append(request)
        return self.respond(request)

    __call__ = answer

    def respond(self, request: dict[str, Any]) -> list[str]:
        """The reply, without recording the request."""
        n = request.get("n") or 1
        role = role_of(request)
        sc, state = self.scenario_state(request)
        if role == "value":
            return [f"The screen shows state {state}.\nEVALUATION: {x}" for x in self._verdicts(request, state, n)]
        if role == "judge":
            return [f"Weighing both opinions: state {state}.\nSTATUS CODE: {x}"
                    for x in self._verdicts(request, state, n)]
        if role == "debate":
            return [f"The agent is at state {state}."] * n
        if role == "reflection":
            return ["The tempting first button leads to a dead end; the other control makes progress."] * n
        if n == 1:
            key = json.dumps(request["messages"], sort_keys=True)
            k = self.seen[key] = self.seen.get(key, -1) + 1
            return [self.samples(sc, state, 20)[k % 20]]
        return self.samples(sc, state, n)

    def _verdicts(self, request: dict[str, Any], state: str, n: int) -> list[str]:
        right = letter(state)
        if self.flat_judge and right != "A":
            right = "C"
        if not self.judge_noise:
            return [right] * n
        seed = json.dumps(request["messages"], sort_keys=True).encode()
        out = []
        for i in range(n):
            h = hashlib.sha256(seed + str(i).encode()).digest()
            if h[0] / 256 < self.judge_noise:
                shift = 1 if h[1] % 2 else -1
                right_i = _LETTERS.index(right)
                out.append(_LETTERS[min(4, max(0, right_i + shift))])
            else:
                out.append(right)
        return out

    def samples(self, sc: Scenario, state: str, n: int) -> list[str]:
        if state == "goal":
            return ["The app reached its goal.\n```DONE```"] * n
        if state == "trap" or not state.isdigit():
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


policy = ChainModel()  # for `python -m harness llm-sim --policy search.mcts.sim_model:policy`
