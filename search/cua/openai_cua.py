"""`--agent openai-computer-use`: OpenAI's computer-use model over the Responses API.

Profile as upstream's `openai_cua_agent.py`: model `computer-use-preview`, tool
`computer_use_preview` with the screen's own size (no scaling) and `environment: "linux"`,
`truncation: "auto"`, a concise reasoning summary. The conversation is kept whole and sent each
turn (no `previous_response_id`, so the cache key covers everything and a resumed task replays):
the instruction and the first screenshot, then each `computer_call_output` with the screen after
the action. Pending safety checks are acknowledged on the next turn and recorded in the step's
`info.safety_checks` (`safety_checks=fail` ends the task with FAIL instead). A reply without a
`computer_call` ends the task (DONE).

A call we cannot run (unknown action, coordinate off the display, unknown key) is a wasted step:
a WAIT with `info.tool_error`; the model gets the screen back as usual.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.base.errors import ConfigError
from search.agent import register_agent
from search.agent_options import parse_agent_options
from search.cua.common import RUN_KEYS, Scaler, ToolCallError, hotkey_code, key_name, model_screen
from search.external.native import Decision, Episode
from vm.types import Observation

_BUTTONS = {"left": "left", "right": "right", "wheel": "middle", "middle": "middle"}


class OpenAICUAOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = "computer-use-preview"
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    display_width: int | None = Field(None, ge=64, description="default: the screen's width")
    display_height: int | None = Field(None, ge=64)
    environment: Literal["linux", "ubuntu", "browser", "windows", "mac"] = "linux"
    truncation: Literal["auto", "disabled"] = "auto"
    reasoning_summary: Literal["concise", "detailed", "auto", "none"] = "concise"
    safety_checks: Literal["acknowledge", "fail"] = "acknowledge"
    instructions: str | None = None


class OpenAICUAAgent:
    """A step agent (search/external/native.py); per-task input list in `episode.memo`."""

    name = "openai-computer-use"

    def __init__(self, options: OpenAICUAOptions, llm: Any = None) -> None:
        self.options = options
        self.llm = llm

    def describe(self) -> dict[str, Any]:
        return {"kind": "openai-computer-use", **self.options.model_dump(exclude={"instructions"})}

    async def step(self, episode: Episode, observation: Observation) -> Decision:
        if self.llm is None:
            raise ConfigError("agent openai-computer-use: no LLM client (see --providers-file)")
        o = self.options
        w, h = observation.screen_size
        scaler, png = await model_screen(observation.screenshot, observation.screen_size,
                                         (o.display_width or w, o.display_height or h))
        url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        items: list[dict[str, Any]] = episode.memo.setdefault("input", [])
        pending: list[tuple[str, list[Any]]] = episode.memo.pop("pending", [])
        if not items:
            items.append({"role": "user", "content": [{"type": "input_text", "text": episode.instruction},
                                                      {"type": "input_image", "image_url": url}]})
        for call_id, checks in pending:
            out: dict[str, Any] = {"type": "computer_call_output", "call_id": call_id,
                                   "output": {"type": "computer_screenshot", "image_url": url}}
            if checks:
                out["acknowledged_safety_checks"] = checks
            items.append(out)
        tool = {"type": "computer_use_preview", "display_width": scaler.target[0], "display_height": scaler.target[1],
                "environment": o.environment}
        body: dict[str, Any] = {"input": items, "tools": [tool], "truncation": o.truncation}
        if o.reasoning_summary != "none":
            body["reasoning"] = {"summary": o.reasoning_summary}
        for key, value in (("max_output_tokens", o.max_output_tokens), ("temperature", o.temperature),
                           ("instructions", o.instructions)):
            if value is not None:
                body[key] = value
        reply = await self.llm.call_api("openai_responses", body, model=o.model, task_id=episode.task_id)
        output = [item for item in reply.body.get("output") or [] if isinstance(item, dict)]
        items.extend(output)
        text = "\n".join(part.get("text", "") for item in output if item.get("type") == "message"
                         for part in item.get("content") or [] if isinstance(part, dict))
        reasoning = "\n".join(s.get("text", "") for item in output if item.get("type") == "reasoning"
                              for s in item.get("summary") or [] if isinstance(s, dict))
        info: dict[str, Any] = {"model": reply.model, "cached": reply.cached, "request_hash": reply.request_hash}
        usage = {"prompt_tokens": reply.usage.prompt_tokens, "completion_tokens": reply.usage.completion_tokens,
                 "cost_usd": reply.cost_usd}
        calls = [item for item in output if item.get("type") == "computer_call"]
        if not calls:
            return Decision(actions=["DONE"], response=text, reasoning=reasoning, info=info, **usage)
        actions: list[Any] = []
        next_pending: list[tuple[str, list[Any]]] = []
        for call in calls:
            checks = [c for c in call.get("pending_safety_checks") or [] if isinstance(c, dict)]
            if checks:
                info.setdefault("safety_checks", []).extend(checks)
                if o.safety_checks == "fail":
                    return Decision(actions=["FAIL"], response=text, reasoning=reasoning, info=info, **usage)
            next_pending.append((str(call.get("call_id") or ""), checks))
            if "tool_error" in info:
                continue
            try:
                actions.append(to_action(call.get("action"), scaler))
            except ToolCallError as e:
                info["tool_error"], info["tool_input"] = str(e), call.get("action")
                actions = ["WAIT"]
        episode.memo["pending"] = next_pending
        return Decision(actions=actions, response=text, reasoning=reasoning, info=info, **usage)


def to_action(action: Any, scaler: Scaler) -> str:
    """One `computer_call` action -> a pyautogui code string (or WAIT)."""
    if not isinstance(action, dict) or not isinstance(action.get("type"), str):
        raise ToolCallError(f"computer_call needs an action with a 'type', got {action!r}")
    kind = action["type"]
    if kind in ("screenshot", "wait"):
        return "WAIT"
    if kind in ("click", "double_click", "move"):
        x, y = scaler.to_screen([action.get("x"), action.get("y")])
        if kind == "move":
            return f"pyautogui.moveTo({x}, {y})"
        if kind == "double_click":
            return f"pyautogui.doubleClick({x}, {y})"
        button = action.get("button", "left")
        if button not in _BUTTONS:
            raise ToolCallError(f"click button must be left, right or wheel, got {button!r}")
        return f"pyautogui.click({x}, {y})" if button == "left" else f"pyautogui.click({x}, {y}, button={_BUTTONS[button]!r})"
    if kind == "drag":
        path = action.get("path")
        if not isinstance(path, list) or len(path) < 2 or not all(isinstance(p, dict) for p in path):
            raise ToolCallError(f"drag needs a path of at least two points, got {path!r}")
        points = [scaler.to_screen([p.get("x"), p.get("y")]) for p in path]
        moves = "; ".join(f"pyautogui.moveTo({x}, {y}, duration=0.2)" for x, y in points[1:])
        return f"pyautogui.moveTo({points[0][0]}, {points[0][1]}); pyautogui.mouseDown(); {moves}; pyautogui.mouseUp()"
    if kind == "keypress":
        keys = action.get("keys")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise ToolCallError(f"keypress needs a list of key names, got {keys!r}")
        return hotkey_code([key_name(k) for k in keys])
    if kind == "type":
        text = action.get("text")
        if not isinstance(text, str):
            raise ToolCallError(f"type needs text, got {text!r}")
        return f"pyautogui.typewrite({text!r}, interval=0.01)"
    if kind == "scroll":
        x, y = scaler.to_screen([action.get("x"), action.get("y")])
        sx, sy = action.get("scroll_x", 0), action.get("scroll_y", 0)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (sx, sy)):
            raise ToolCallError(f"scroll_x/scroll_y must be numbers, got {sx!r}, {sy!r}")
        # pixels -> wheel clicks (~100 px each); the API's positive y scrolls down, pyautogui's up
        parts = []
        if sy:
            parts.append(f"pyautogui.scroll({-_clicks(sy)}, x={x}, y={y})")
        if sx:
            parts.append(f"pyautogui.hscroll({_clicks(sx)}, x={x}, y={y})")
        return "; ".join(parts) or f"pyautogui.moveTo({x}, {y})"
    raise ToolCallError(f"unknown computer_call action {kind!r}")


def _clicks(pixels: float) -> int:
    n = max(1, round(abs(pixels) / 100))
    return n if pixels > 0 else -n


@register_agent("openai-computer-use", "OpenAI's computer-use model (Responses API, computer_use_preview) "
                "through the run's LLM client; profile of OSWorld's openai_cua_agent (options: model, ...)")
def make_openai_cua_agent(options: dict[str, Any]) -> OpenAICUAAgent:
    parsed, llm = parse_agent_options("openai-computer-use", OpenAICUAOptions, options, drop=RUN_KEYS)
    return OpenAICUAAgent(parsed, llm)
