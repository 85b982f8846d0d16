"""VS Code getter: `vscode_config`, a command of the evaluation extension run from the command
palette, then the file that command wrote.

OSWorld types, as a user would: Ctrl+Shift+P, "Extensions: Enable All Extensions", Enter, Enter,
then Ctrl+Shift+P, the command's title, Enter, and reads `path` a second later. The image's
built-in extension (vm/image/files/vscode/eval-extension) provides the commands upstream's tasks
name (OpenProject writes the open folder's name to ~/OpenProject.txt). The keys are the same;
short pauses let the palette open before typing into it (typing into a palette that is not yet
open loses the first characters).
"""

from __future__ import annotations

from typing import Any

import anyio

from benchmarks.context import TaskContext
from benchmarks.schema import GetterSpec
from scoring.getters.guest_files import fetch_to_work
from scoring.registry import getter
from vm.types import Guest

PALETTE_PAUSE_S = 0.7
WRITE_WAIT_S = 1.0  # upstream reads the file this long after the last key


def _check(spec: dict[str, Any]) -> list[str]:
    problems = []
    for field in ("vscode_extension_command", "path", "dest"):
        if not isinstance(spec.get(field), str) or not spec.get(field):
            problems.append(f"{field} is required")
    return problems


def palette_script(command: str) -> str:
    """pyautogui code for OSWorld's key sequence, with pauses for the palette to open."""
    p = PALETTE_PAUSE_S
    return "\n".join([
        "import pyautogui, time",
        f"pyautogui.hotkey('ctrl', 'shift', 'p'); time.sleep({p})",
        f"pyautogui.typewrite({'Extensions: Enable All Extensions'!r}); time.sleep({p})",
        f"pyautogui.press('enter'); time.sleep({p}); pyautogui.press('enter'); time.sleep({p})",
        f"pyautogui.hotkey('ctrl', 'shift', 'p'); time.sleep({p})",
        f"pyautogui.typewrite({command!r}); time.sleep({p})",
        "pyautogui.press('enter')",
    ])


@getter("vscode_config", check=_check)
async def vscode_config(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> str | None:
    """Run `vscode_extension_command` from the palette, then `path` saved as `dest` (None if the
    command wrote nothing)."""
    extra = spec.model_extra or {}
    await guest.run_python(palette_script(str(extra["vscode_extension_command"])), timeout=60.0)
    await anyio.sleep(WRITE_WAIT_S)
    return await fetch_to_work(guest, ctx, str(spec.path), str(spec.dest))
