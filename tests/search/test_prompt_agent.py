"""The prompt agent end to end: real LLM client against the in-process llm-sim, a simulated sandbox,
the real task env and run store. The sim's policy plays the model: it reads the app's state from
the accessibility table in the request and answers with the scenario's next solution action."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from benchmarks.schema import Task
from benchmarks.sim_suite import sim_task
from harness.base.errors import ProviderError
from harness.llm.client import LLMClient
from harness.llm.sim import SimConfig, SimFault, SimServer
from harness.task_env import SandboxTaskEnv
from results.store import RunStore
from search.prompt_agent import make_prompt_agent
from vm.sim import Scenario, SimProvider

SCENARIO = "chain-3-s1"
SOLUTION = Scenario.parse(SCENARIO).solution()  # 3 clicks, then DONE
STATE = re.compile(r"chain-3-s1 state (\w+)")


def last_user_text(request: dict[str, Any]) -> str:
    content = request["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def solver_reply(request: dict[str, Any]) -> str:
    """What a perfect model says: reflect, then the next solution action."""
    m = STATE.search(last_user_text(request))
    assert m, "the observation must show the app's state"
    state = m.group(1)
    if state == "goal":
        return "The app reached its goal state, so the task is complete.\n```DONE```"
    return f"The app is in state {state}; the next control is at the marked spot.\n```python\n{SOLUTION[int(state)]}\n```"


@dataclass
class Policy:
    """Scripted model: `script` replies come first (callables get the request), then the solver."""

    script: list[str | Callable[[dict[str, Any]], str]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, request: dict[str, Any]) -> str:
        self.requests.append(request)
        if self.script:
            step = self.script.pop(0)
            return step(request) if callable(step) else step
        return solver_reply(request)


@dataclass
class Rig:
    policy: Policy
    server: SimServer
    tmp: Path
    runs: int = 0

    async def run(self, *, cache: Path | None = None, max_steps: int = 15, **options: Any) -> tuple[Any, Any, list[dict]]:
        """One attempt of the sim task: (outcome, sandbox, traj lines)."""
        self.runs += 1
        task = Task.model_validate(sim_task(1, steps=3, seed=1))
        assert task.solution == SOLUTION
        providers = {"default_model": "sim-model",
                     "endpoints": [{"kind": "openai-compatible", "base_url": self.server.url, "models": ["*"]}]}
        client = LLMClient.from_config(providers, cache_path=cache or self.tmp / f"cache-{self.runs}.sqlite")
        run_dir = self.tmp / f"run-{self.runs}"
        async with client:
            store = await RunStore.open(run_dir, {"agent": "prompt"}, result_keys=[])
            try:
                box = await SimProvider(screen_size=(1280, 720)).start()
                await box.guest.execute(["sim", "scenario", SCENARIO])  # the task's setup step
                attempt = await store.begin_attempt("sim", task.id)
                env = SandboxTaskEnv(task, box, attempt, max_steps=max_steps)
                agent = make_prompt_agent({"llm": client, "max_steps": max_steps, **options})
                outcome = await agent.solve(task, env)
            finally:
                await store.aclose()
        traj = [json.loads(line) for line in (run_dir / "sim" / task.id / "traj.jsonl").read_text().splitlines()]
        return outcome, box, traj


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    policy = Policy()
    async with SimServer(SimConfig(policy=policy)) as server:
        yield Rig(policy, server, tmp_path)


async def test_scripted_model_drives_the_sim_app_to_its_goal_and_every_step_is_recorded(rig: Rig) -> None:
    outcome, box, traj = await rig.run()
    assert box.state == "goal"
    assert outcome.actions == SOLUTION and outcome.error is None
    assert outcome.extra["llm_calls"] == 4 and outcome.steps == 4
    assert outcome.prompt_tokens > 0 and outcome.completion_tokens > 0
    assert [t["action"] for t in traj] == SOLUTION
    for i, line in enumerate(traj):
        assert re.fullmatch(r"[0-9a-f]{16,}", line["info"]["prompt_hash"])
        assert line["response"].endswith("```") and line["tokens"] > 0
        assert line["info"]["llm_call"] == i + 1 and line["info"]["cached"] is False
    assert len({t["info"]["prompt_hash"] for t in traj}) == 4
    assert traj[-1]["done"] is True


async def test_requests_carry_upstream_sampling_defaults_history_of_three_and_screenshots(rig: Rig) -> None:
    await rig.run()
    first, last = rig.policy.requests[0], rig.policy.requests[-1]
    assert (first["temperature"], first["top_p"], first["max_tokens"], first.get("n", 1)) == (0.5, 0.9, 1500, 1)
    system = first["messages"][0]
    assert system["role"] == "system" and "Bring the simulated app to its goal state" in system["content"][0]["text"]
    # call 1: system + now; call 4: system + 3 (observation, reply) pairs + now
    assert len(first["messages"]) == 2 and len(last["messages"]) == 8
    roles = [m["role"] for m in last["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user", "assistant", "user"]
    assert last["messages"][2]["content"][0]["text"].startswith("The app is in state 0")
    for m in last["messages"][1::2]:
        image = [p for p in m["content"] if p["type"] == "image_url"]
        assert len(image) == 1 and image[0]["image_url"]["url"].startswith("data:image/png;base64,iVBOR")


async def test_history_keeps_only_the_last_three_steps(rig: Rig) -> None:
    rig.policy.script = ["```WAIT```"] * 3  # 3 waits, then the 4 solving calls: 7 calls
    outcome, box, _ = await rig.run()
    assert box.state == "goal" and outcome.extra["llm_calls"] == 7
    assert max(len(r["messages"]) for r in rig.policy.requests) == 8  # never more than 3 pairs


async def test_unparsable_replies_are_recorded_as_step_errors_and_the_agent_carries_on(rig: Rig) -> None:
    rig.policy.script = ["I would click on the button labelled OK.", "```python\npyautogui.click(1, 2"]
    outcome, box, traj = await rig.run()
    assert box.state == "goal"
    assert [t["action"] for t in traj] == ["WAIT", "WAIT", *SOLUTION]
    assert "no executable action" in traj[0]["info"]["parse_error"]
    assert "unterminated" in traj[1]["info"]["parse_error"]
    assert traj[0]["response"] == "I would click on the button labelled OK."
    assert len(outcome.extra["step_errors"]) == 2
    # the history shows upstream's placeholder for the unparsable reply
    assert rig.policy.requests[1]["messages"][2]["content"][0]["text"] == "No valid action"


async def test_max_steps_bounds_model_calls_when_the_model_never_finishes(rig: Rig) -> None:
    rig.policy.script = ["Let me think about this."] * 10
    outcome, box, traj = await rig.run(max_steps=4)
    assert len(rig.policy.requests) == 4 and outcome.extra["llm_calls"] == 4
    assert len(traj) == 4 and box.state == "0"


async def test_one_reply_with_several_code_blocks_runs_them_in_order(rig: Rig) -> None:
    blocks = "\n".join(f"```python\n{a}\n```" for a in SOLUTION[:3])
    rig.policy.script = [f"I can do all three now.\n{blocks}\n```DONE```"]
    _, box, traj = await rig.run()
    assert box.state == "goal" and len(rig.policy.requests) == 1
    assert [t["action"] for t in traj] == SOLUTION
    assert [t["info"]["action_index"] for t in traj] == [0, 1, 2, 3]
    assert traj[0]["tokens"] > 0 and traj[1]["tokens"] == 0  # the call's tokens are counted once


async def test_second_run_replays_from_the_cache_without_reaching_the_server(rig: Rig) -> None:
    cache = rig.tmp / "shared-cache.sqlite"
    first, _, _ = await rig.run(cache=cache)
    served = len(rig.server.records)
    assert served == 4
    again, box, traj = await rig.run(cache=cache)
    assert len(rig.server.records) == served  # zero requests reached the server
    assert box.state == "goal" and again.actions == first.actions
    assert again.cost_usd == 0 and all(t["info"]["cached"] for t in traj)


async def test_non_retryable_provider_error_ends_the_task(rig: Rig) -> None:
    def refuse(request: dict[str, Any]) -> str:
        raise SimFault(400, "Invalid value for 'messages'.", code="invalid_request_error")

    rig.policy.script = [refuse]
    with pytest.raises(ProviderError) as info:
        await rig.run()
    assert not info.value.retryable
    assert len(rig.server.records) == 1


async def test_prompt_too_long_is_retried_once_without_history(rig: Rig) -> None:
    def too_long(request: dict[str, Any]) -> str:
        if len(request["messages"]) > 2:
            raise SimFault(400, "This model's maximum context length is 8192 tokens.", code="context_length_exceeded")
        return solver_reply(request)

    rig.policy.script = [solver_reply] + [too_long] * 6
    outcome, box, _ = await rig.run()
    assert box.state == "goal" and outcome.actions == SOLUTION
    assert [len(r["messages"]) for r in rig.policy.requests] == [2, 4, 2, 6, 2, 8, 2]


async def test_a11y_only_observation_sends_no_images(rig: Rig) -> None:
    _, box, _ = await rig.run(observation_type="a11y_tree")
    assert box.state == "goal"
    for request in rig.policy.requests:
        for m in request["messages"]:
            assert all(p["type"] == "text" for p in m["content"])
    assert "tag\tname\ttext\tclass" in last_user_text(rig.policy.requests[0])


async def test_set_of_marks_prefixes_the_tag_variables_the_code_uses(rig: Rig) -> None:
    rig.policy.script = ["```python\npyautogui.click(tag_1)\n```", "```DONE```"]
    outcome, _, traj = await rig.run(observation_type="som")
    text = last_user_text(rig.policy.requests[0])
    assert text.split("\n")[1:3] == ["index\ttag\tname\ttext", "1\tlabel\tchain-3-s1 state 0\tchain-3-s1 state 0"]
    # the sim's state label sits at (40, 40) with size (400, 20): centre (240, 50)
    assert traj[0]["action"] == "tag_1=(240, 50)\npyautogui.click(tag_1)"
    assert outcome.actions[-1] == "DONE"


async def test_computer13_actions_are_validated_before_they_run(rig: Rig) -> None:
    rig.policy.script = [
        '```json\n{"action_type": "PRESS", "parameters": {"key": "no-such-key"}}\n```',
        'Click it: {"action_type": "CLICK", "parameters": {"x": 5000, "y": 10}}',
        '```json\n{"action_type": "CLICK", "parameters": {"x": 10, "y": 10}}\n```\n```json\n{"action_type": "DONE"}\n```',
    ]
    outcome, _, traj = await rig.run(action_space="computer_13", observation_type="screenshot")
    assert [t["action"] for t in traj] == ["WAIT", "WAIT", {"action_type": "CLICK", "parameters": {"x": 10, "y": 10}}, "DONE"]
    assert "not a pyautogui key name" in traj[0]["info"]["action_error"]
    assert "off screen" in traj[1]["info"]["action_error"]
    assert traj[1]["info"]["proposed"] == {"action_type": "CLICK", "parameters": {"x": 5000, "y": 10}}
    assert "(1279, 719)" in rig.policy.requests[0]["messages"][0]["content"][0]["text"]  # real screen size
    assert outcome.actions[-1] == "DONE" and len(outcome.extra["step_errors"]) == 2


def test_bad_options_fail_at_construction_with_a_clear_message() -> None:
    from harness.base.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown option 'temprature'"):
        make_prompt_agent({"temprature": 0.1})
    with pytest.raises(ConfigError, match="'som' works with action_space 'pyautogui' only"):
        make_prompt_agent({"observation_type": "som", "action_space": "computer_13"})
    agent = make_prompt_agent({"temperature": "0", "max_tokens": "200", "model": None})
    assert agent.options.temperature == 0.0 and agent.options.max_tokens == 200
