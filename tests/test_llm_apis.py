"""The LLM layer's Messages and Responses calls against llm-sim: same cache, retries and cost as
chat; and the computer-use agents' action mapping (scaling back to the screen, key names, errors)."""

from __future__ import annotations

import pytest

from harness.llm.client import LLMClient
from harness.llm.sim import SimConfig, SimFault, SimServer
from search.cua import claude, openai_cua
from search.cua.common import Scaler, ToolCallError


class Flaky:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: dict) -> object:
        self.calls += 1
        if self.calls == 1:
            raise SimFault(500, "injected")
        if request["_sim_api"] == "anthropic_messages":
            return {"content": [{"type": "tool_use", "id": "t1", "name": "computer", "input": {"action": "screenshot"}}]}
        return {"output": [{"type": "computer_call", "call_id": "c1", "action": {"type": "wait"}}]}


@pytest.mark.parametrize("api", ["anthropic_messages", "openai_responses"])
async def test_call_api_retries_caches_and_costs(api: str, tmp_path) -> None:
    policy = Flaky()
    async with SimServer(SimConfig(policy=policy, api_key="k")) as sim:
        llm = LLMClient.from_config({
            "endpoints": [{"kind": "openai-compatible", "base_url": sim.url, "api_key": "k"}],
            "retry": {"base_s": 0.01, "cap_s": 0.05},
            "prices": {"m": {"input_per_mtok": 3.0, "output_per_mtok": 15.0}}}, cache_path=tmp_path / "c.sqlite")
        body = ({"max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]} if api == "anthropic_messages"
                else {"input": [{"role": "user", "content": "hi"}]})
        try:
            first = await llm.call_api(api, body, model="m", task_id="t")
            again = await llm.call_api(api, body, model="m", task_id="t")
        finally:
            await llm.aclose()
    assert policy.calls == 2  # one 500 retried, then the cache answered the second call
    assert first.cost_usd > 0 and not first.cached and first.usage.prompt_tokens > 0
    assert again.cached and again.cost_usd == 0 and again.body == first.body
    assert [r.status for r in sim.records] == [500, 200]


def test_claude_coordinates_scale_back_to_the_screen_and_bad_calls_say_why() -> None:
    scaler = Scaler((1920, 1080), (1280, 720))
    assert claude.to_action({"action": "left_click", "coordinate": [640, 360]}, scaler) == "pyautogui.click(960, 540)"
    assert claude.to_action({"action": "key", "text": "ctrl+Return"}, scaler) == "pyautogui.hotkey('ctrl', 'enter')"
    assert claude.to_action({"action": "scroll", "coordinate": [0, 0], "scroll_direction": "down",
                             "scroll_amount": 2}, scaler) == "pyautogui.scroll(-2, x=0, y=0)"
    assert claude.to_action({"action": "left_click", "coordinate": [10, 10], "text": "shift"}, scaler) == (
        "pyautogui.keyDown('shift'); pyautogui.click(15, 15); pyautogui.keyUp('shift')")
    for bad, reason in (({"action": "left_click", "coordinate": [1281, 5]}, "outside"),
                        ({"action": "key", "text": "hyper+q"}, "unknown key"),
                        ({"action": "teleport"}, "unknown computer action"),
                        ({"coordinate": [1, 1]}, "needs an 'action'")):
        with pytest.raises(ToolCallError, match=reason):
            claude.to_action(bad, scaler)


def test_openai_actions_map_to_pyautogui() -> None:
    scaler = Scaler((1920, 1080), (1920, 1080))
    assert openai_cua.to_action({"type": "click", "x": 5, "y": 6, "button": "right"}, scaler) == (
        "pyautogui.click(5, 6, button='right')")
    assert openai_cua.to_action({"type": "keypress", "keys": ["CTRL", "S"]}, scaler) == "pyautogui.hotkey('ctrl', 's')"
    assert openai_cua.to_action({"type": "scroll", "x": 1, "y": 2, "scroll_x": 0, "scroll_y": 300}, scaler) == (
        "pyautogui.scroll(-3, x=1, y=2)")
    with pytest.raises(ToolCallError, match="drag needs a path"):
        openai_cua.to_action({"type": "drag", "path": [{"x": 1, "y": 1}]}, scaler)
