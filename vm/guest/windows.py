"""Window management setup steps: open a file and wait for its window, activate, close.

Activate/close keep wmctrl's semantics exactly (OSWorld's task files were written against them):
`-a NAME` substring match, `-F` exact title, `-x` match WM_CLASS; `-c` closes gracefully.
"""

from __future__ import annotations

import asyncio
import os
import time

from . import procs
from .files import resolve
from .protocol import NotFound
from .screen import Screen

POLL_S = 0.1


class WindowTimeout(Exception):
    """The window did not appear in time (answered 504)."""


async def wmctrl(action: str, window_name: str, *, strict: bool, by_class: bool) -> None:
    """`wmctrl [-F] [-x] -<action> NAME`; NotFound when no window matches."""
    argv = ["wmctrl"]
    if strict:
        argv.append("-F")
    if by_class:
        argv.append("-x")
    argv += [f"-{action}", window_name]
    result = await procs.run(argv, timeout=10.0)
    if result["returncode"] != 0:
        detail = (result["error"] or result["output"]).strip()
        raise NotFound(f"no window matches {window_name!r} (wmctrl {' '.join(argv[1:-1])}: {detail or 'exit ' + str(result['returncode'])})")


async def open_file(path: str, *, timeout: float, screen: Screen, launcher: procs.Launcher) -> str:
    """xdg-open the file, then wait until a window whose title contains its name exists."""
    full = resolve(path)
    if not await asyncio.get_running_loop().run_in_executor(None, os.path.exists, full):
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
