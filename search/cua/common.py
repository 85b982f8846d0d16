"""What both computer-use agents share: screenshot scaling, key names, and tool-call errors.

A computer-use model sees the screen at its tool's resolution; we resize each screenshot to it
and map the coordinates it answers with back to the screen's (rounded, clamped to the screen).
Its key names are xdotool's (`ctrl+s`, `Return`, `Page_Down`) or OpenAI's (`CTRL`, `ENTER`); both
become pyautogui's names, and a key pyautogui does not know makes the call malformed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from vm.actions import KEYBOARD_KEYS

_KEY_ALIASES = {
    "return": "enter", "kp_enter": "enter", "escape": "esc", "control": "ctrl", "control_l": "ctrl",
    "control_r": "ctrl", "ctl": "ctrl", "alt_l": "alt", "alt_r": "alt", "shift_l": "shift", "shift_r": "shift",
    "super": "win", "super_l": "win", "super_r": "win", "meta": "win", "cmd": "win", "page_down": "pagedown",
    "page_up": "pageup", "next": "pagedown", "prior": "pageup", "arrowup": "up", "arrowdown": "down",
    "arrowleft": "left", "arrowright": "right", "spacebar": "space", "minus": "-", "plus": "+", "period": ".",
    "comma": ",", "slash": "/", "backslash": "\\", "semicolon": ";", "equal": "=",
}


# The run's options every agent gets that computer-use agents do not take: they act through their
# tool and see screenshots.
RUN_KEYS = ("max_steps", "action_space", "observation_type")


class ToolCallError(ValueError):
    """The model's tool call cannot be run (unknown action, bad coordinate or key): a wasted step."""


def key_name(raw: str) -> str:
    name = raw.strip()
    lowered = name.lower()
    key = _KEY_ALIASES.get(lowered, lowered)
    if key not in KEYBOARD_KEYS:
        raise ToolCallError(f"unknown key {raw!r}")
    return key


def key_combo(text: str) -> list[str]:
    """'ctrl+shift+Delete' -> ['ctrl', 'shift', 'delete']."""
    if not isinstance(text, str) or not text.strip():
        raise ToolCallError(f"key needs text such as 'ctrl+s', got {text!r}")
    return [key_name(part) for part in text.split("+") if part.strip()] or [key_name(text)]


def hotkey_code(keys: list[str]) -> str:
    if len(keys) == 1:
        return f"pyautogui.press({keys[0]!r})"
    return f"pyautogui.hotkey({', '.join(repr(k) for k in keys)})"


@dataclass(frozen=True, slots=True)
class Scaler:
    """Screen <-> the model's display: `target` is what the tool declares."""

    screen: tuple[int, int]
    target: tuple[int, int]

    @property
    def identity(self) -> bool:
        return self.screen == self.target

    def to_screen(self, xy: object) -> tuple[int, int]:
        if (not isinstance(xy, list | tuple) or len(xy) != 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in xy)):
            raise ToolCallError(f"coordinate must be [x, y] numbers, got {xy!r}")
        x, y = float(xy[0]), float(xy[1])
        if not (0 <= x <= self.target[0] and 0 <= y <= self.target[1]):
            raise ToolCallError(f"coordinate {list(xy)} is outside the {self.target[0]}x{self.target[1]} display")
        sx = round(x * self.screen[0] / self.target[0])
        sy = round(y * self.screen[1] / self.target[1])
        return min(sx, self.screen[0] - 1), min(sy, self.screen[1] - 1)


def resize_png(png: bytes, size: tuple[int, int]) -> bytes:
    """The screenshot at the tool's resolution (run in a worker thread: decode + resize + encode)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        if image.size == size:
            return png
        out = io.BytesIO()
        image.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(out, format="PNG", compress_level=1)
        return out.getvalue()


async def model_screen(screenshot: bytes, screen: tuple[int, int], target: tuple[int, int]) -> tuple[Scaler, bytes]:
    """The scaler for this screen and the screenshot as the model sees it (resized off the loop)."""
    import anyio

    scaler = Scaler(screen, target)
    if scaler.identity:
        return scaler, screenshot
    return scaler, await anyio.to_thread.run_sync(resize_png, screenshot, target)
