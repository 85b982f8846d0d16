"""The action model: pyautogui strings, computer_13 translation, special actions, the '<' rewrite."""

from __future__ import annotations

import ast

import pytest

from vm.actions import (
    PREAMBLE,
    ActionError,
    computer13_to_code,
    fix_typed_less_than,
    plan,
    python_command,
    special_of,
)
from vm.docker import DockerSandbox
from vm.types import ExecResult


@pytest.mark.parametrize("action", ["WAIT", " DONE\n", "FAIL", {"action_type": "DONE"}, {"action_type": "WAIT", "parameters": {}}])
def test_special_actions_are_recognized_as_string_or_action_type(action):
    planned = plan(action)
    assert planned.kind == "special"
    assert planned.special == special_of(action)
    with pytest.raises(ActionError):
        planned.command()


def test_code_containing_done_is_not_special():
    assert special_of("print('DONE')") is None
    assert plan("print('DONE')").kind == "code"


def test_pyautogui_command_matches_osworld_invocation():
    cmd = plan("pyautogui.click(10, 20)").command()
    assert cmd[:2] == ["python", "-c"]
    assert cmd[2] == PREAMBLE + "pyautogui.click(10, 20)"
    assert cmd[2].startswith("import pyautogui; import time; pyautogui.FAILSAFE = False")


def test_compound_statement_code_still_parses_after_the_preamble():
    code = "for i in range(3):\n    pyautogui.press('down')"
    script = python_command(plan(code).code)[2]
    ast.parse(script)  # upstream's '; ' join makes this a SyntaxError


def test_indented_code_is_dedented():
    script = python_command(plan("    pyautogui.press('a')\n    pyautogui.press('b')").code)[2]
    ast.parse(script)


def test_typed_less_than_is_rewritten_to_shift_comma_keeping_kwargs():
    out = fix_typed_less_than("pyautogui.typewrite('a<b', interval=0.05)")
    assert out == "pyautogui.typewrite('a', interval=0.05); pyautogui.hotkey(\"shift\", \",\"); pyautogui.typewrite('b', interval=0.05)"
    assert fix_typed_less_than("pyautogui.press('<')") == 'pyautogui.hotkey("shift", ",")'
    assert fix_typed_less_than('pyautogui.write("<<")') == 'pyautogui.hotkey("shift", ","); pyautogui.hotkey("shift", ",")'


def test_less_than_outside_typing_calls_is_untouched():
    for code in ["if 1 < 2: pyautogui.click()", "x = '<'", "pyautogui.typewrite(text)", "broken(<"]:
        assert fix_typed_less_than(code) == code


def test_less_than_rewrite_inside_a_block_keeps_other_lines():
    code = "import time\nfor w in ['x']:\n    pyautogui.typewrite('é<ü')\n    time.sleep(0.1)\n"
    out = fix_typed_less_than(code)
    ast.parse(out)
    assert "pyautogui.typewrite('é'); pyautogui.hotkey(\"shift\", \",\"); pyautogui.typewrite('ü')" in out
    assert out.endswith("    time.sleep(0.1)\n")


@pytest.mark.parametrize(
    ("action", "code"),
    [
        ({"action_type": "MOVE_TO", "parameters": {"x": 10, "y": 20}}, "pyautogui.moveTo(10, 20)"),
        ({"action_type": "CLICK", "parameters": {}}, "pyautogui.click()"),
        ({"action_type": "CLICK", "parameters": {"button": "right", "x": 5, "y": 6, "num_clicks": 2}},
         "pyautogui.click(button='right', x=5, y=6, clicks=2)"),
        ({"action_type": "CLICK", "x": 5.0, "y": 6}, "pyautogui.click(x=5, y=6)"),  # top-level params, as upstream
        ({"action_type": "MOUSE_DOWN", "parameters": {"button": "middle"}}, "pyautogui.mouseDown(button='middle')"),
        ({"action_type": "MOUSE_UP"}, "pyautogui.mouseUp()"),
        ({"action_type": "RIGHT_CLICK", "parameters": {"x": 1, "y": 2}}, "pyautogui.rightClick(1, 2)"),
        ({"action_type": "DOUBLE_CLICK", "parameters": {}}, "pyautogui.doubleClick()"),
        ({"action_type": "DRAG_TO", "parameters": {"x": 100, "y": 200}},
         "pyautogui.dragTo(100, 200, duration=0.5, button='left', mouseDownUp=True)"),
        ({"action_type": "SCROLL", "parameters": {"dx": 3, "dy": -5}}, "pyautogui.hscroll(3); pyautogui.vscroll(-5)"),
        ({"action_type": "SCROLL", "parameters": {"dy": 2}}, "pyautogui.vscroll(2)"),
        ({"action_type": "TYPING", "parameters": {"text": "it's \"x\"\n"}}, "pyautogui.typewrite('it\\'s \"x\"\\n')"),
        ({"action_type": "PRESS", "parameters": {"key": "Enter"}}, "pyautogui.press('enter')"),
        ({"action_type": "KEY_DOWN", "parameters": {"key": "shift"}}, "pyautogui.keyDown('shift')"),
        ({"action_type": "KEY_UP", "parameters": {"key": "A"}}, "pyautogui.keyUp('A')"),
        ({"action_type": "HOTKEY", "parameters": {"keys": ["ctrl", "s"]}}, "pyautogui.hotkey('ctrl', 's')"),
    ],
)
def test_computer_13_translates_to_pyautogui(action, code):
    assert computer13_to_code(action) == code
    ast.parse(code)


def test_typing_with_less_than_goes_through_the_rewrite():
    code = computer13_to_code({"action_type": "TYPING", "parameters": {"text": "a<b"}})
    assert code == "pyautogui.typewrite('a'); pyautogui.hotkey(\"shift\", \",\"); pyautogui.typewrite('b')"


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"action_type": "TELEPORT"}, "action_type 'TELEPORT' is unknown"),
        ({"parameters": {}}, "action_type None is unknown"),
        ({"action_type": "CLICK", "parameters": {"x": 1}}, "x and y must be given together"),
        ({"action_type": "CLICK", "parameters": {"x": "1", "y": 2}}, "x must be a number"),
        ({"action_type": "CLICK", "parameters": {"x": True, "y": 2}}, "x must be a number"),
        ({"action_type": "CLICK", "parameters": {"button": "thumb"}}, "button must be one of"),
        ({"action_type": "CLICK", "parameters": {"num_clicks": 7}}, "num_clicks must be 1, 2 or 3"),
        ({"action_type": "CLICK", "parameters": {"duration": 1}}, "unknown parameter(s) ['duration']"),
        ({"action_type": "DRAG_TO", "parameters": {}}, "missing parameter(s) ['x', 'y']"),
        ({"action_type": "SCROLL", "parameters": {}}, "needs dx and/or dy"),
        ({"action_type": "SCROLL", "parameters": {"dy": 1.5}}, "dy must be an integer"),
        ({"action_type": "TYPING", "parameters": {"text": 5}}, "text must be a string"),
        ({"action_type": "PRESS", "parameters": {"key": "hyper"}}, "'hyper' is not a pyautogui key name"),
        ({"action_type": "HOTKEY", "parameters": {"keys": "ctrl+c"}}, "keys must be a non-empty list"),
        ({"action_type": "HOTKEY", "parameters": {"keys": ["ctrl", "nope"]}}, "'nope' is not a pyautogui key name"),
        ({"action_type": "CLICK", "parameters": [1, 2]}, "parameters must be an object"),
    ],
)
def test_bad_computer_13_action_raises_clear_error(action, message):
    with pytest.raises(ActionError) as err:
        plan(action)
    assert message in str(err.value)


def test_coordinates_are_checked_against_the_screen_when_known():
    action = {"action_type": "MOVE_TO", "parameters": {"x": 1920, "y": 10}}
    assert plan(action).code == "pyautogui.moveTo(1920, 10)"  # unknown screen: no bound
    with pytest.raises(ActionError, match="x=1920 is off screen"):
        plan(action, screen_size=(1920, 1080))
    with pytest.raises(ActionError, match="y=-1 is off screen"):
        plan({"action_type": "MOVE_TO", "parameters": {"x": 1, "y": -1}})


@pytest.mark.parametrize("action", ["", "   ", 42, None, ["CLICK"]])
def test_non_actions_are_rejected(action):
    with pytest.raises(ActionError):
        plan(action)


class _RecordingGuest:
    """Stands in for the guest server's HTTP API (not one of our components) and records calls."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    async def execute(self, command, *, shell=False, timeout=120.0):
        self.commands.append(command)
        return ExecResult(returncode=0, output="ok")


async def test_sandbox_never_sends_special_actions_to_the_guest():
    box = DockerSandbox.__new__(DockerSandbox)  # only the action path is exercised; no container needed
    box.guest = _RecordingGuest()
    box._screen = (1920, 1080)
    for special in ["WAIT", "FAIL", "DONE", {"action_type": "DONE"}]:
        result = await box.execute(special)
        assert result.ok
    assert box.guest.commands == []
    await box.execute({"action_type": "CLICK", "parameters": {"x": 3, "y": 4}})
    await box.execute("pyautogui.typewrite('<')")
    assert [c[2].splitlines()[1] for c in box.guest.commands] == [
        "pyautogui.click(x=3, y=4)",
        'pyautogui.hotkey("shift", ",")',
    ]
    with pytest.raises(ActionError):
        await box.execute({"action_type": "CLICK", "parameters": {"x": 5000, "y": 4}})
    assert len(box.guest.commands) == 2
