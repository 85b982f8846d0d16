"""End to end on a real sandbox: an OSWorld-format task with assets, its setup steps, GUI actions
in Mousepad, and the evaluator (postconfig, vm_file + cloud_file, vm_command_line, cache_file)."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from benchmarks.context import RunContext
from benchmarks.downloads import HostFiles
from benchmarks.loader import load_suite
from benchmarks.setup_steps import run_task_setup
from scoring import evaluate

pytestmark = pytest.mark.docker

TASK = {
    "id": "edit-notes",
    "snapshot": "os",
    "instruction": "Replace the draft in ~/Documents/notes.txt with the word done and save it.",
    "config": [
        {"type": "download", "parameters": {"files": [{"url": "notes.txt", "path": "Documents/notes.txt"}]}},
        {"type": "execute", "parameters": {"command": ["sh", "-c", "echo {SCREEN_WIDTH}x{SCREEN_HEIGHT} > /tmp/screen.txt"]}},
        {"type": "execute", "parameters": {"command": "test -s ~/Documents/notes.txt && echo present", "shell": True,
                                           "until": {"stdout": "present"}, "stdout": "probe.out"}},
        {"type": "open", "parameters": {"path": "/home/user/Documents/notes.txt"}},
        {"type": "activate_window", "parameters": {"window_name": "notes.txt"}},
    ],
    "evaluator": {
        "postconfig": [{"type": "activate_window", "parameters": {"window_name": "notes.txt"}}],
        "func": ["compare_text_file", "exact_match", "file_contains"],
        "result": [{"type": "vm_file", "path": "/home/user/Documents/notes.txt", "dest": "notes.txt"},
                   {"type": "vm_command_line", "command": "cat /tmp/screen.txt", "shell": True},
                   {"type": "cache_file", "path": "probe.out"}],
        "expected": [{"type": "cloud_file", "path": "gold.txt", "dest": "gold.txt"},
                     {"type": "rule", "rules": {"expected": "1280x800\n"}},
                     {"type": "rule", "rules": {"expected": ["present"]}}],
    },
    "solution": ["pyautogui.hotkey('ctrl', 'a')", "pyautogui.typewrite('done\\n')", "pyautogui.hotkey('ctrl', 's')", "DONE"],
}


def write_suite(root: Path) -> Path:
    (root / "examples" / "os").mkdir(parents=True)
    (root / "assets").mkdir()
    (root / "assets" / "notes.txt").write_text("draft\n")
    (root / "assets" / "gold.txt").write_text("done\n")
    (root / "examples" / "os" / "edit-notes.json").write_text(json.dumps(TASK))
    return root


async def test_osworld_task_setup_gui_actions_and_evaluation_in_a_real_sandbox(docker_provider, tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path / "suite"))
    task = suite.tasks[0]
    ctx = RunContext(work_root=tmp_path / "work", downloads=HostFiles(tmp_path / "cache"))
    box = await docker_provider.start()
    try:
        with anyio.fail_after(180):
            await run_task_setup(task, box.guest, ctx)
            assert await box.guest.download("/home/user/Documents/notes.txt") == b"draft\n"

            untouched = await evaluate(task, box.guest, ["DONE"], ctx)
            assert untouched.score == 0.0
            assert [d["score"] for d in untouched.details] == [0.0, None, None]  # `and`: first 0 decides

            for action in task.solution[:-1]:
                result = await box.execute(action)
                assert result.ok, result
            content = None
            with anyio.move_on_after(20):  # the editor saves asynchronously: poll with a deadline
                while True:
                    content = await box.guest.download("/home/user/Documents/notes.txt")
                    if content == b"done\n":
                        break
                    await anyio.sleep(0.2)
            assert content == b"done\n"

            solved = await evaluate(task, box.guest, task.solution, ctx)
            assert solved.score == 1.0, solved.details
            assert (await evaluate(task, box.guest, [*task.solution[:-1], "FAIL"], ctx)).score == 0.0
    finally:
        with anyio.CancelScope(shield=True):
            await docker_provider.stop(box)
