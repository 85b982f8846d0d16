"""`--agent claude-computer-use`: Anthropic's computer-use tool over the Messages API.

Profile as upstream's `mm_agents/anthropic` agent: tool `computer_20250124` declared at 1280x720
(screenshots resized to it, coordinates mapped back to the screen), `max_tokens` 4096, the 10 most
recent screenshots kept in the conversation (older ones become a text note), the task's
instruction and the first screenshot in the first user turn, each later turn the `tool_result`
with the screen after the action. A reply without `tool_use` ends the task (DONE), as upstream
treats an answer with no action. The system prompt is ours (upstream's wording is theirs).

A tool call we cannot run (unknown action, coordinate off the display, unknown key) is a wasted
step: recorded as a WAIT carrying `info.tool_error`, and the model gets that reason back as an
`is_error` tool result, so it can correct itself.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.base.errors import ConfigError
from search.agent import register_agent
from search.agent_options import parse_agent_options
from search.cua.common import RUN_KEYS, Scaler, ToolCallError, hotkey_code, key_combo, model_screen
from search.external.native import Decision, Episode
from vm.types import Observation

SYSTEM_PROMPT = (
    "You operate an Ubuntu desktop through the computer tool to complete the user's task. After each action "
    "you receive a screenshot of the result. Prefer keyboard shortcuts where they are reliable. The sudo "
    "password is 'password'. When the task is complete, or it cannot be done, reply with a short message "
    "and no tool call; begin that message with FAIL if the task is impossible."
)
_CLICKS = {"left_click": "click", "right_click": "rightClick", "middle_click": "middleClick",
           "double_click": "doubleClick", "triple_click": "tripleClick"}
_OMITTED = {"type": "text", "text": "(earlier screenshot omitted)"}


class ClaudeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = "claude-sonnet-4-5"
    max_tokens: int = Field(4096, ge=1)
    temperature: float | None = Field(None, ge=0, le=1)
    tool_version: Literal["computer_20241022", "computer_20250124", "computer_20251124"] = "computer_20250124"
    display_width: int = Field(1280, ge=64)
    display_height: int = Field(720, ge=64)
    only_n_most_recent_images: int = Field(10, ge=1)
    system_prompt: str = SYSTEM_PROMPT


class ClaudeComputerAgent:
    """A step agent (search/external/native.py); per-task conversation in `episode.memo`."""

    name = "claude-computer-use"

    def __init__(self, options: ClaudeOptions, llm: Any = None) -> None:
        self.options = options
        self.llm = llm

    def describe(self) -> dict[str, Any]:
        return {"kind": "claude-computer-use", **self.options.model_dump(exclude={"system_prompt"})}

    async def step(self, episode: Episode, observation: Observation) -> Decision:
        if self.llm is None:
            raise ConfigError("agent claude-computer-use: no LLM client (see --providers-file)")
        o = self.options
        scaler, png = await model_screen(observation.screenshot, observation.screen_size,
                                         (o.display_width, o.display_height))
        image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": base64.b64encode(png).decode("ascii")}}
        messages: list[dict[str, Any]] = episode.memo.setdefault("messages", [])
        pending: list[tuple[str, str | None]] = episode.memo.pop("pending", [])
        if not messages:
            messages.append({"role": "user", "content": [{"type": "text", "text": episode.instruction}, image]})
        else:
            results = [{"type": "tool_result", "tool_use_id": call_id,
                        "content": [{"type": "text", "text": error}] if error else [],
                        **({"is_error": True} if error else {})} for call_id, error in pending]
            if results:
                results[-1]["content"].append(image)
                messages.append({"role": "user", "content": results})
            else:
                messages.append({"role": "user", "content": [image]})
        _keep_recent_images(messages, o.only_n_most_recent_images)
        tool = {"type": o.tool_version, "name": "computer", "display_width_px": o.display_width,
                "display_height_px": o.display_height, "display_number": 1}
        body: dict[str, Any] = {"max_tokens": o.max_tokens, "system": o.system_prompt, "messages": messages,
                                "tools": [tool]}
        if o.temperature is not None:
            body["temperature"] = o.temperature
        reply = await self.llm.call_api("anthropic_messages", body, model=o.model, task_id=episode.task_id)
        content = reply.body.get("content") or []
        messages.append({"role": "assistant", "content": content})
        text = "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
        info: dict[str, Any] = {"model": reply.model, "cached": reply.cached, "request_hash": reply.request_hash,
                                "stop_reason": reply.body.get("stop_reason")}
        usage = {"prompt_tokens": reply.usage.prompt_tokens, "completion_tokens": reply.usage.completion_tokens,
                 "cost_usd": reply.cost_usd}
        uses = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_use"]
        if not uses:
            final = "FAIL" if text.strip().upper().startswith("FAIL") else "DONE"
            return Decision(actions=[final], response=text, info=info, **usage)
        actions: list[Any] = []
        next_pending: list[tuple[str, str | None]] = []
        for use in uses:
            call_id = str(use.get("id") or "")
            if actions == ["WAIT"] and "tool_error" in info:
                next_pending.append((call_id, "not run: an earlier tool call of this turn failed"))
                continue
            try:
                if use.get("name") != "computer":
                    raise ToolCallError(f"unknown tool {use.get('name')!r}; the only tool is 'computer'")
                actions.append(to_action(use.get("input"), scaler))
                next_pending.append((call_id, None))
            except ToolCallError as e:
                info["tool_error"] = str(e)
                info["tool_input"] = use.get("input")
                actions = ["WAIT"]
                next_pending = [(cid, "not run: a later tool call of this turn failed") for cid, _ in next_pending]
                next_pending.append((call_id, f"error: {e}"))
        episode.memo["pending"] = next_pending
        return Decision(actions=actions, response=text, info=info, **usage)


def to_action(args: Any, scaler: Scaler) -> str:
    """One `computer` tool input -> a pyautogui code string (or WAIT)."""
    if not isinstance(args, dict) or not isinstance(args.get("action"), str):
        raise ToolCallError(f"tool input needs an 'action', got {args!r}")
    action = args["action"]
    coordinate = args.get("coordinate")
    if action in ("screenshot", "wait", "cursor_position"):
        return "WAIT"
    if action in _CLICKS:
        xy = "{}, {}".format(*scaler.to_screen(coordinate)) if coordinate is not None else ""
        code = f"pyautogui.{_CLICKS[action]}({xy})"
        held = key_combo(args["text"]) if args.get("text") else []
        downs = "".join(f"pyautogui.keyDown({k!r}); " for k in held)
        ups = "".join(f"; pyautogui.keyUp({k!r})" for k in reversed(held))
        return downs + code + ups
    if action == "mouse_move":
        x, y = scaler.to_screen(coordinate)
        return f"pyautogui.moveTo({x}, {y})"
    if action == "left_click_drag":
        x, y = scaler.to_screen(coordinate)
        start = args.get("start_coordinate")
        prefix = "pyautogui.moveTo({}, {}); ".format(*scaler.to_screen(start)) if start is not None else ""
        return f"{prefix}pyautogui.dragTo({x}, {y}, duration=0.5, button='left')"
    if action in ("left_mouse_down", "left_mouse_up"):
        return "pyautogui.mouseDown()" if action == "left_mouse_down" else "pyautogui.mouseUp()"
    if action == "key":
        return hotkey_code(key_combo(args.get("text")))
    if action == "hold_key":
        keys = key_combo(args.get("text"))
        seconds = args.get("duration", 1)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= 100:
            raise ToolCallError(f"hold_key duration must be 0..100 seconds, got {seconds!r}")
        return ("".join(f"pyautogui.keyDown({k!r}); " for k in keys) + f"time.sleep({seconds}); "
                + "; ".join(f"pyautogui.keyUp({k!r})" for k in reversed(keys)))
    if action == "type":
        text = args.get("text")
        if not isinstance(text, str):
            raise ToolCallError(f"type needs text, got {text!r}")
        return f"pyautogui.typewrite({text!r}, interval=0.01)"
    if action == "scroll":
        direction, amount = args.get("scroll_direction"), args.get("scroll_amount", 3)
        if direction not in ("up", "down", "left", "right"):
            raise ToolCallError(f"scroll_direction must be up, down, left or right, got {direction!r}")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise ToolCallError(f"scroll_amount must be a whole number >= 0, got {amount!r}")
        clicks = amount if direction in ("up", "right") else -amount
        where = ", x={}, y={}".format(*scaler.to_screen(coordinate)) if coordinate is not None else ""
        fn = "scroll" if direction in ("up", "down") else "hscroll"
        return f"pyautogui.{fn}({clicks}{where})"
    raise ToolCallError(f"unknown computer action {action!r}")


def _keep_recent_images(messages: list[dict[str, Any]], keep: int) -> None:
    """Replace all but the `keep` most recent screenshots by a text note (upstream keeps 10)."""
    seen = 0
    for message in reversed(messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for block in reversed(content):
            inner = block.get("content") if isinstance(block, dict) and block.get("type") == "tool_result" else None
            holders = [(inner, i) for i in range(len(inner) - 1, -1, -1)] if isinstance(inner, list) else []
            if isinstance(block, dict) and block.get("type") == "image":
                holders = [(content, content.index(block))]
            for holder, i in holders:
                if isinstance(holder[i], dict) and holder[i].get("type") == "image":
                    seen += 1
                    if seen > keep:
                        holder[i] = dict(_OMITTED)


@register_agent("claude-computer-use", "Anthropic's computer-use tool (Messages API) through the run's LLM "
                "client; profile of OSWorld's anthropic agent (options: model, max_tokens, display_width, ...)")
def make_claude_agent(options: dict[str, Any]) -> ClaudeComputerAgent:
    parsed, llm = parse_agent_options("claude-computer-use", ClaudeOptions, options, drop=RUN_KEYS)
    return ClaudeComputerAgent(parsed, llm)
