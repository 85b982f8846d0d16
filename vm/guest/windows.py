"""Window management setup steps: open a file and wait for its window, activate, close.

Activate/close keep wmctrl's semantics exactly (OSWorld's task files were written against them):
`-a NAME` case-insensitive substring of the title, `-F` exact and case-sensitive, `-x` match the
WM_CLASS string `instance.Class` instead; `-c` closes gracefully.

Deliberate alias: the image runs Chromium as `google-chrome`, so a name that says Google Chrome
and matches no window is retried as Chromium: in titles "Google Chrome" -> "Chromium" ("New Tab -
Google Chrome" -> "New Tab - Chromium"), in WM_CLASS names "google-chrome" -> "chromium" and
"Google-chrome" -> "Chromium", and the class part alone (Chrome's class is
`google-chrome.Google-chrome`, Debian Chromium's `chromium.Chromium`; see chromium_aliases).
The case of the rest of the name is kept, so -F still holds for titles.

Likewise OSWorld's Thunderbird tasks close the class `Mail.thunderbird` strictly, while Debian's
Thunderbird names its class after the profile (`Mail.thunderbird-default`): a strict class name
`Mail.thunderbird` that matches nothing is retried as a class prefix (thunderbird_aliases).
"""

from __future__ import annotations

import asyncio
import os
import re
import time

from . import procs, user
from .files import resolve
from .protocol import NotFound
from .screen import Screen

POLL_S = 0.1
_CHROME_TITLE = re.compile("google chrome", re.IGNORECASE)
_CHROME_CLASS = re.compile("google-chrome", re.IGNORECASE)


class WindowTimeout(Exception):
    """The window did not appear in time (answered 504)."""


def chromium_aliases(window_name: str, *, strict: bool, by_class: bool) -> list[tuple[str, bool]]:
    """(name, strict) pairs that spell a Google Chrome window or class name the Chromium way.

    [] when the name does not say Google Chrome. For classes: `chromium.Chromium` (Debian's own),
    then the class part alone as a substring: the image's google-chrome wrapper runs Chromium with
    --class=Google-chrome and a profile dir, which makes the WM_CLASS string
    `chromium (/home/user/.config/google-chrome).Google-chrome`.
    """
    if by_class:
        if not _CHROME_CLASS.search(window_name):
            return []
        both = _CHROME_CLASS.sub(lambda m: "Chromium" if m.group().startswith("G") else "chromium", window_name)
        candidates = [(both, strict)]
        if "." in window_name:
            candidates.append((window_name.rsplit(".", 1)[1], False))
    else:
        candidates = [(_CHROME_TITLE.sub("Chromium", window_name), strict)]
    seen = {(window_name, strict)}
    return [c for c in candidates if c not in seen and not seen.add(c)]


def thunderbird_aliases(window_name: str, *, strict: bool, by_class: bool) -> list[tuple[str, bool]]:
    """`Mail.thunderbird` (strict, by class) also as a substring, which Debian's class contains."""
    if by_class and strict and window_name.lower() == "mail.thunderbird":
        return [(window_name, False)]
    return []


async def wmctrl(action: str, window_name: str, *, strict: bool, by_class: bool) -> None:
    """`wmctrl [-F] [-x] -<action> NAME`, then the aliases; NotFound when no window matches."""
    tries = [(window_name, strict), *chromium_aliases(window_name, strict=strict, by_class=by_class),
             *thunderbird_aliases(window_name, strict=strict, by_class=by_class)]
    detail = ""
    for name, exact in tries:
        flags = (["-F"] if exact else []) + (["-x"] if by_class else [])
        result = await procs.run(["wmctrl", *flags, f"-{action}", name], timeout=10.0)
        if result["returncode"] == 0:
            return
        detail = (result["error"] or result["output"]).strip() or f"exit {result['returncode']}"
    tried = " or ".join(repr(n) for n, _ in tries)
    flags = (["-F"] if strict else []) + (["-x"] if by_class else [])
    raise NotFound(f"no window matches {tried} (wmctrl {' '.join([*flags, '-' + action])}: {detail})")


async def open_file(path: str, *, timeout: float, screen: Screen, launcher: procs.Launcher) -> str:
    """xdg-open the file, then wait until a window whose title contains its name exists."""
    full = resolve(path)
    if not await user.as_user(os.path.exists, full):
        raise NotFound(f"File not found: {path}")
    name = os.path.basename(full.rstrip("/"))
    proc = await launcher.launch(["xdg-open", full])
    deadline = time.monotonic() + timeout
    while True:
        titles = [w.title for w in await screen.windows()]
        if any(name in t for t in titles):
            return name
        if proc.returncode not in (None, 0):
            raise NotFound(f"xdg-open could not open {path} (exit {proc.returncode}): no application for this file type?")
        if time.monotonic() >= deadline:
            raise WindowTimeout(f"no window titled with {name!r} appeared within {timeout:g} s (windows: {titles})")
        await asyncio.sleep(POLL_S)
