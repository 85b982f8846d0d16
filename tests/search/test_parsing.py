"""Replies as models really write them, and the actions the prompt agent takes from them."""

from __future__ import annotations

import pytest

from search.parsing import parse_computer13, parse_pyautogui, parse_reply

# --- pyautogui -------------------------------------------------------------------------------------

REFLECT_THEN_CODE = """The Terminal is open and focused. I will type the command and press Enter.

```python
import pyautogui
import time
pyautogui.typewrite('echo "a; b"; ls -la')
time.sleep(0.5)
pyautogui.press('enter')
```
"""


def test_semicolons_inside_strings_stay_in_one_action() -> None:
    parsed = parse_pyautogui(REFLECT_THEN_CODE)
    assert parsed.ok
    assert parsed.actions == [
        "import pyautogui\nimport time\npyautogui.typewrite('echo \"a; b\"; ls -la')\ntime.sleep(0.5)\npyautogui.press('enter')"
    ]


def test_one_line_with_semicolons_is_one_action_not_split() -> None:
    parsed = parse_pyautogui("```python\npyautogui.click(10, 20); time.sleep(0.5); pyautogui.write('x;y')\n```")
    assert parsed.actions == ["pyautogui.click(10, 20); time.sleep(0.5); pyautogui.write('x;y')"]


def test_each_code_block_is_one_action_in_order() -> None:
    reply = ("First I open the menu:\n```python\npyautogui.click(100, 200)\n```\n"
             "then pick the entry:\n```\npyautogui.click(150, 260)\n```\nand that should be it.\n```DONE```")
    assert parse_pyautogui(reply).actions == ["pyautogui.click(100, 200)", "pyautogui.click(150, 260)", "DONE"]


@pytest.mark.parametrize("reply, expected", [
    ("DONE", "DONE"),
    ("  FAIL\n", "FAIL"),
    ("```WAIT```", "WAIT"),
    ("```\nDONE\n```", "DONE"),
    ("```DONE\n```", "DONE"),
    ("```python\nFAIL\n```", "FAIL"),
    ("`DONE`", "DONE"),
    ("**DONE**", "DONE"),
    ("DONE.", "DONE"),
    ("done", "DONE"),
    ("The file is saved and the dialog closed, so the task is complete.\n\n```DONE```", "DONE"),
    ("The document now shows the new title, which was the goal.\nDONE", "DONE"),
    ("Nothing has loaded yet; the page is still blank.\n\nWAIT", "WAIT"),
])
def test_special_actions_in_all_their_spellings(reply: str, expected: str) -> None:
    parsed = parse_pyautogui(reply)
    assert parsed.ok, parsed.error
    assert parsed.actions == [expected]


def test_code_then_special_word_on_the_last_line_of_a_block_gives_both() -> None:
    parsed = parse_pyautogui("```python\npyautogui.hotkey('ctrl', 's')\ntime.sleep(1)\nDONE\n```")
    assert parsed.actions == ["pyautogui.hotkey('ctrl', 's')\ntime.sleep(1)", "DONE"]


def test_lower_case_done_inside_prose_is_not_an_action() -> None:
    parsed = parse_pyautogui("I am not done yet, I still need to find the menu.")
    assert not parsed.ok
    assert "no ```python code block" in parsed.error


def test_inline_code_fence_on_one_line() -> None:
    assert parse_pyautogui("```python pyautogui.press('enter')```").actions == ["pyautogui.press('enter')"]
    assert parse_pyautogui("```pyautogui.press('enter')```").actions == ["pyautogui.press('enter')"]


def test_unfenced_pyautogui_code_is_taken_as_one_action() -> None:
    parsed = parse_pyautogui("pyautogui.click(300, 400)\npyautogui.typewrite('hi')")
    assert parsed.actions == ["pyautogui.click(300, 400)\npyautogui.typewrite('hi')"]


def test_non_python_and_comment_only_blocks_are_skipped() -> None:
    reply = ("The table shows:\n```text\nbutton\tOK\n```\n```python\n# nothing to do here\n```\n"
             "```bash\nrm -rf /tmp/x\n```\n```python\npyautogui.click(5, 5)\n```")
    parsed = parse_pyautogui(reply)
    assert parsed.actions == ["pyautogui.click(5, 5)"]
    assert any("bash" in n for n in parsed.notes)


def test_indented_code_block_is_dedented() -> None:
    reply = "1. Click:\n   ```python\n   pyautogui.click(1, 2)\n   pyautogui.click(3, 4)\n   ```"
    assert parse_pyautogui(reply).actions == ["pyautogui.click(1, 2)\npyautogui.click(3, 4)"]


def test_syntax_errors_are_left_for_the_guest_to_report() -> None:
    # Upstream executes such code too; the guest's error lands in the step record.
    assert parse_pyautogui("```python\npyautogui.click(1, 2\n```").actions == ["pyautogui.click(1, 2"]


@pytest.mark.parametrize("reply, fragment", [
    ("", "empty reply"),
    ("   \n  ", "empty reply"),
    ("I think I should click the OK button next.", "no executable action"),
    ("```python\n```", "no executable action"),
    ("```python\npyautogui.click(100, 2", "unterminated"),
    ("Here you go:\n```bash\nls\n```", "not Python"),
    ("\x00\x01garbage\x02", "no executable action"),
    ("{\"action_type\": \"CLICK\"}", "no executable action"),
])
def test_unusable_replies_give_an_error_not_an_exception(reply: str, fragment: str) -> None:
    parsed = parse_pyautogui(reply)
    assert not parsed.ok and parsed.actions == []
    assert fragment in parsed.error


# --- computer_13 -----------------------------------------------------------------------------------


def test_computer13_json_block() -> None:
    reply = 'I will click the button.\n```json\n{"action_type": "CLICK", "parameters": {"x": 10, "y": 20}}\n```'
    assert parse_computer13(reply).actions == [{"action_type": "CLICK", "parameters": {"x": 10, "y": 20}}]


def test_computer13_several_blocks_and_a_list() -> None:
    reply = ('```\n{"action_type": "TYPING", "text": "a; b"}\n```\n'
             '```json\n[{"action_type": "press", "key": "enter"}, {"action_type": "DONE"}]\n```')
    assert parse_computer13(reply).actions == [
        {"action_type": "TYPING", "text": "a; b"}, {"action_type": "PRESS", "key": "enter"}, "DONE"]


def test_computer13_objects_in_prose_and_python_literals() -> None:
    reply = 'Next: {"action_type": "HOTKEY", "keys": ["ctrl", "s"]} and then {"action_type": "WAIT"}'
    assert parse_computer13(reply).actions == [{"action_type": "HOTKEY", "keys": ["ctrl", "s"]}, "WAIT"]
    literal = "```\n{'action_type': 'CLICK', 'parameters': {'button': 'left', 'num_clicks': 2}}\n```"
    assert parse_computer13(literal).actions == [
        {"action_type": "CLICK", "parameters": {"button": "left", "num_clicks": 2}}]


@pytest.mark.parametrize("reply", ["DONE", "```FAIL```", '{"action_type": "fail"}', "All set.\nDONE"])
def test_computer13_specials_become_plain_strings(reply: str) -> None:
    parsed = parse_computer13(reply)
    assert len(parsed.actions) == 1 and parsed.actions[0] in ("DONE", "FAIL")


@pytest.mark.parametrize("reply, fragment", [
    ("click the OK button", "no computer_13 action"),
    ('```json\n{"action_type": "CLICK", "x": 1,,}\n```', "not JSON"),
    ('```json\n{"x": 1, "y": 2}\n```', "needs an action_type"),
    ('```json\n{"action_type": "CLICK"}\n```\n```json\n{broken\n```', "not JSON"),
])
def test_computer13_errors(reply: str, fragment: str) -> None:
    parsed = parse_computer13(reply)
    assert not parsed.ok and parsed.actions == []
    assert fragment in parsed.error


def test_parse_reply_dispatches_on_action_space() -> None:
    assert parse_reply('{"action_type": "DONE"}', "computer_13").actions == ["DONE"]
    assert parse_reply("```python\npyautogui.click(1, 1)\n```", "pyautogui").actions == ["pyautogui.click(1, 1)"]
