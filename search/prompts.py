"""Prompt text for the prompt agent: one system prompt per (observation type, action space).

The structure follows OSWorld's PromptAgent (what the observation is, how to answer in the action
space, the special answers WAIT/DONE/FAIL, the sudo password, "reflect briefly, then answer with
the action only", then the task), in our own words. The computer_13 action list is generated from
`vm.actions.COMPUTER_13`, so the prompt and the validator can never disagree (upstream's examples
name actions and fields its own validator rejects, e.g. MOUSE_MOVE and click_type).
"""

from __future__ import annotations

from typing import Literal

ObservationType = Literal["screenshot", "a11y_tree", "screenshot_a11y_tree", "som"]
OBSERVATION_TYPES: tuple[str, ...] = ("screenshot", "a11y_tree", "screenshot_a11y_tree", "som")
ACTION_SPACES: tuple[str, ...] = ("pyautogui", "computer_13")

_ROLE = (
    "You are an agent that carries out tasks on a desktop computer by controlling its mouse and "
    "keyboard, following my instructions. You know computers well, and the computer has a working "
    "internet connection."
)

_OBSERVATION = {
    "screenshot": "At every step you receive a screenshot of the screen, and you decide the next "
                  "action from it.",
    "a11y_tree": "At every step you receive the screen's accessibility tree (from AT-SPI) as a "
                 "table of the elements you can see and act on, with their positions and sizes, "
                 "and you decide the next action from it.",
    "screenshot_a11y_tree": "At every step you receive a screenshot of the screen together with its "
                            "accessibility tree (from AT-SPI) as a table of visible, actionable "
                            "elements with their positions and sizes, and you decide the next action "
                            "from both.",
    "som": "At every step you receive a screenshot in which the elements you can act on are boxed "
           "and labelled with numbers, plus a table of those numbered elements from the "
           "accessibility tree (AT-SPI), and you decide the next action from both.",
}

_PYAUTOGUI = """\
Act by writing Python code that uses `pyautogui`; it runs on the computer for you. Work out the \
coordinates yourself from what you observe, and check them carefully. Do not call \
`pyautogui.locateCenterOnScreen` (there are no reference images of elements) and do not call \
`pyautogui.screenshot()`.
You may write one or several lines per step; keep it short, and put a small pause such as \
`time.sleep(0.5)` between actions that need the screen to catch up. Each step's code runs on \
its own: variables and functions from earlier steps do not exist any more.
Put the code in one code block, like this:
```python
# your code here
```"""

_SOM_TAGS = """\
Instead of coordinates you may use the number of a labelled element: `tag_N` holds the centre \
of element N. For example:
```python
pyautogui.click(tag_2)
pyautogui.moveTo(tag_5)
pyautogui.dragTo(tag_7, button='left')
```
Where no label fits, or you know the exact spot, use x and y coordinates directly."""

_SPECIAL_CODE = """\
Instead of code you may also answer with one of these special codes:
- ```WAIT``` when you need to wait before the next step;
- ```FAIL``` when the task cannot be done; do not give up easily, try your best first;
- ```DONE``` when the task is complete."""

_CLOSING_CODE = (
    "First reflect briefly on the current observation and on what has been done so far, then give "
    "the code block or the special code, and nothing else after it."
)

# computer_13: (action_type, note, parameter lines) in the order vm.actions defines them.
_C13_NOTES = {
    "MOVE_TO": "move the pointer to (x, y)",
    "CLICK": "click `button` (default left) `num_clicks` times (1, 2 or 3; default 1) at (x, y), or where the pointer is when x and y are left out",
    "MOUSE_DOWN": "press `button` (default left) and hold it",
    "MOUSE_UP": "release `button` (default left)",
    "RIGHT_CLICK": "right-click at (x, y), or where the pointer is",
    "DOUBLE_CLICK": "double-click at (x, y), or where the pointer is",
    "DRAG_TO": "drag with the left button held from the pointer's position to (x, y)",
    "SCROLL": "scroll by `dx` columns and/or `dy` rows (integers; positive dy scrolls up)",
    "TYPING": "type `text`",
    "PRESS": "press and release one `key`",
    "KEY_DOWN": "press one `key` and hold it",
    "KEY_UP": "release one `key`",
    "HOTKEY": "press the `keys` (a list) together, e.g. [\"ctrl\", \"c\"]",
}
_C13_TYPES = {"x": "number", "y": "number", "button": '"left" | "right" | "middle"', "num_clicks": "integer",
              "dx": "integer", "dy": "integer", "text": "string", "key": "key name", "keys": "list of key names"}


def _computer13_section(screen_size: tuple[int, int]) -> str:
    from vm.actions import COMPUTER_13

    w, h = screen_size
    lines = [
        "Act by answering with one action as a JSON object: "
        '{"action_type": TYPE, "parameters": {...}}. The action types are:',
    ]
    for kind, (allowed, required) in COMPUTER_13.items():
        params = ", ".join(
            f"{p}: {_C13_TYPES.get(p, 'value')}{'' if p in required else ' (optional)'}" for p in sorted(allowed)
        )
        lines.append(f"- {kind}({params}): {_C13_NOTES.get(kind, '')}".rstrip(": "))
    lines += [
        "- WAIT: wait before the next step",
        "- FAIL: the task cannot be done (do not give up easily)",
        "- DONE: the task is complete",
        f"Coordinates are pixels: (0, 0) is the top-left corner and ({w - 1}, {h - 1}) the "
        "bottom-right corner of the screen. Key names are pyautogui's (enter, tab, ctrl, shift, "
        "alt, a, f5, ...).",
        "Put the action in a code block, for example:",
        '```json\n{"action_type": "CLICK", "parameters": {"button": "left", "x": 640, "y": 360}}\n```',
        '```json\n{"action_type": "TYPING", "parameters": {"text": "hello world"}}\n```',
        "and answer WAIT, FAIL or DONE as the bare word. Use only the action types above; any other "
        "answer is an invalid step.",
    ]
    return "\n".join(lines)


_CLOSING_ACTION = (
    "First reflect briefly on the current observation and on what has been done so far, then give "
    "the action, and nothing else after it."
)


def system_prompt(observation_type: str, action_space: str, *, screen_size: tuple[int, int] = (1920, 1080),
                  password: str = "password") -> str:
    """The fixed part of the system message (the task is appended by `task_prompt`)."""
    if observation_type not in _OBSERVATION:
        raise ValueError(f"observation_type {observation_type!r}: expected one of {', '.join(OBSERVATION_TYPES)}")
    if action_space not in ACTION_SPACES:
        raise ValueError(f"action_space {action_space!r}: expected one of {', '.join(ACTION_SPACES)}")
    if observation_type == "som" and action_space != "pyautogui":
        raise ValueError("observation_type 'som' works with action_space 'pyautogui' only (its tags are code variables)")
    parts = [_ROLE + " " + _OBSERVATION[observation_type]]
    if action_space == "pyautogui":
        parts.append(_PYAUTOGUI)
        if observation_type == "som":
            parts.append(_SOM_TAGS)
        parts.append(_SPECIAL_CODE)
    else:
        parts.append(_computer13_section(screen_size))
    parts.append(f"The computer's password is '{password}'; use it when you need sudo rights.")
    parts.append(_CLOSING_CODE if action_space == "pyautogui" else _CLOSING_ACTION)
    return "\n\n".join(parts)


def task_prompt(system: str, instruction: str) -> str:
    return f"{system}\n\nThe task you are asked to complete: {instruction}"


_ASK = "What is the next step toward the task?"


def observation_text(observation_type: str, table: str | None, *, current: bool) -> str:
    """The text part of a user turn. Earlier som turns show only the tagged image, as upstream."""
    if observation_type == "screenshot":
        return f"Here is the screenshot. {_ASK}"
    if observation_type == "a11y_tree":
        return f"Here is the accessibility tree:\n{table or ''}\n{_ASK}"
    if observation_type == "screenshot_a11y_tree":
        return f"Here are the screenshot and the accessibility tree:\n{table or ''}\n{_ASK}"
    if current:
        return f"Here are the tagged screenshot and its numbered elements:\n{table or ''}\n{_ASK}"
    return f"Here is the tagged screenshot. {_ASK}"


NO_VALID_ACTION = "No valid action"  # what an unparsable earlier reply shows in the history, as upstream
