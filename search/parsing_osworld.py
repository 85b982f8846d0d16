"""Strict parsing for `profile=osworld`: the rules of OSWorld's agent, in our own code.

pyautogui (upstream's code parser):
1. The reply is split on every `;`; the pieces are stripped, empty ones dropped, and the rest
   joined with newlines (so `typewrite("a; b")` becomes two broken lines, as upstream).
2. A reply that is then exactly WAIT, DONE or FAIL is that action.
3. Otherwise only fenced blocks count: each ``` ... ``` (an optional word and whitespace after the
   opening fence is dropped, whatever the language) is one action, in order. A block that is
   exactly a special word is that action; a block whose last line is one is the code before it
   (when there is any) and then the special action.
4. Anything else yields no action: prose, a bare `FAIL` on the last line of prose, unfenced code.
   Upstream then runs nothing and the step still counts; the agent records such a step.

computer_13 (upstream's action parser):
1. A reply that is exactly WAIT, DONE or FAIL (after stripping) is that action.
2. Else every ```json block (the fence, whitespace, body, whitespace, fence), or failing those every
   ``` block followed by whitespace, is parsed as JSON, one action each.
3. Else the whole reply must be JSON. Anything that does not parse is a parse error (upstream
   crashes the example there; we record the step, see docs/design/prompt-agent.md).
"""

from __future__ import annotations

import json
import re
from typing import Any

from search.parsing import SPECIALS, Parsed

_CODE_BLOCK = re.compile(r"```(?:\w+\s+)?(.*?)```", re.DOTALL)
_JSON_BLOCK = re.compile(r"```json\s+(.*?)\s+```", re.DOTALL)
_ANY_BLOCK = re.compile(r"```\s+(.*?)\s+```", re.DOTALL)
NO_BLOCK_NOTE = "no fenced code block: nothing runs (osworld parsing)"


def _join_on_semicolons(reply: str) -> str:
    return "\n".join(piece.strip() for piece in reply.split(";") if piece.strip())


def parse_pyautogui_osworld(reply: str) -> Parsed:
    text = _join_on_semicolons(reply or "")
    if text.strip() in SPECIALS:
        return Parsed([text.strip()])
    actions: list[Any] = []
    for match in _CODE_BLOCK.findall(text):
        body = match.strip()
        if body in SPECIALS:
            actions.append(body)
            continue
        lines = body.split("\n")
        if lines[-1] in SPECIALS:
            if len(lines) > 1:
                actions.append("\n".join(lines[:-1]))
            actions.append(lines[-1])
        else:
            actions.append(body)
    return Parsed(actions, notes=[] if actions else [NO_BLOCK_NOTE])


def _loads_each(bodies: list[str]) -> Parsed:
    actions: list[Any] = []
    for body in bodies:
        try:
            loaded = json.loads(body)
        except json.JSONDecodeError as e:
            return Parsed(error=f"a code block is not JSON ({e.msg} at line {e.lineno} column {e.colno})")
        if isinstance(loaded, str) and loaded in SPECIALS:
            actions.append(loaded)
        elif isinstance(loaded, dict):
            actions.append(loaded)
        else:
            return Parsed(error=f"not a computer_13 action (a JSON object): {body[:120]!r}")
    return Parsed(actions)


def parse_computer13_osworld(reply: str) -> Parsed:
    reply = reply or ""
    if reply.strip() in SPECIALS:
        return Parsed([reply.strip()])
    bodies = _JSON_BLOCK.findall(reply) or _ANY_BLOCK.findall(reply)
    if bodies:
        return _loads_each(bodies)
    try:
        loaded = json.loads(reply)
    except json.JSONDecodeError:
        return Parsed(error="no ```json block and the reply is not JSON (osworld parsing)")
    return _loads_each([json.dumps(loaded)])


def parse_reply_osworld(reply: str, action_space: str) -> Parsed:
    if action_space == "computer_13":
        return parse_computer13_osworld(reply)
    return parse_pyautogui_osworld(reply)
