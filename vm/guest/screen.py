"""The X display: screenshots with the cursor drawn in, the pointer, screen and window geometry.

A python-xlib connection is not thread-safe, so every X call runs on one dedicated thread that
owns the connection; PNG encoding runs on the loop's default executor so it does not hold the X
thread. The connection is opened lazily and reopened after X went away, so the server can start
before Xvfb is up (/health says 503 until then).
"""

from __future__ import annotations

import array
import asyncio
import io
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from .protocol import Unavailable

T = TypeVar("T")


@dataclass(frozen=True)
class Window:
    id: int
    title: str
    wm_instance: str
    wm_class: str


class Screen:
    def __init__(self, display: str | None = None) -> None:
        self.display_name = display or os.environ.get("DISPLAY", ":0")
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="x11")
        self._dpy: Any = None
        self._xfixes = False

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(display, *args) on the X thread; Unavailable when X is not reachable."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._on_x_thread, fn, args)

    def _on_x_thread(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        dpy = self._connect()
        from Xlib import error as xerror

        try:
            return fn(dpy, *args)
        except (xerror.ConnectionClosedError, OSError) as e:
            self._drop()
            raise Unavailable(f"X display {self.display_name} went away ({e})") from e

    def _connect(self) -> Any:
        if self._dpy is not None:
            return self._dpy
        try:
            from Xlib import display as xdisplay
            from Xlib import error as xerror
        except ImportError as e:
            raise Unavailable(f"python-xlib is not installed ({e})") from e
        try:
            dpy = xdisplay.Display(self.display_name)
        except (xerror.DisplayError, OSError) as e:
            raise Unavailable(f"X display {self.display_name} is not up ({e})") from e
        try:
            dpy.xfixes_query_version()
            self._xfixes = True
        except Exception:
            self._xfixes = False
        self._dpy = dpy
        return dpy

    def _drop(self) -> None:
        dpy, self._dpy = self._dpy, None
        if dpy is not None:
            try:
                dpy.close()
            except Exception:
                pass

    # -- the queries (run on the X thread) --

    async def size(self) -> tuple[int, int]:
        return await self.call(_root_size)

    async def pointer(self) -> tuple[int, int]:
        return await self.call(_pointer)

    async def root_property(self, name: str) -> bytes | None:
        return await self.call(_root_property, name)

    async def windows(self) -> list[Window]:
        return await self.call(_client_windows)

    async def window_size(self, app_class: str) -> tuple[int, int] | None:
        return await self.call(_window_size, app_class)

    async def screenshot_png(self) -> bytes:
        image = await self.call(self._grab)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, _encode_png, image)

    def _grab(self, dpy: Any) -> Any:
        from PIL import Image
        from Xlib import X

        root = dpy.screen().root
        geo = root.get_geometry()
        raw = root.get_image(0, 0, geo.width, geo.height, X.ZPixmap, 0xFFFFFFFF)
        if raw.depth in (24, 32):
            image = Image.frombuffer("RGB", (geo.width, geo.height), raw.data, "raw", "BGRX", 0, 1)
        elif raw.depth == 16:
            image = Image.frombuffer("RGB", (geo.width, geo.height), raw.data, "raw", "BGR;16", 0, 1)
        else:
            raise Unavailable(f"unsupported X depth {raw.depth} (use SCREEN_DEPTH=24)")
        image = image.copy()  # own the pixels: frombuffer shares the reply's bytes
        if self._xfixes:
            _draw_cursor(dpy, root, image)
        return image


def _root_size(dpy: Any) -> tuple[int, int]:
    geo = dpy.screen().root.get_geometry()
    return int(geo.width), int(geo.height)


def _pointer(dpy: Any) -> tuple[int, int]:
    reply = dpy.screen().root.query_pointer()
    return int(reply.root_x), int(reply.root_y)


def _root_property(dpy: Any, name: str) -> bytes | None:
    from Xlib import X

    prop = dpy.screen().root.get_full_property(dpy.intern_atom(name), X.AnyPropertyType)
    if prop is None:
        return None
    value = prop.value
    return value if isinstance(value, bytes) else bytes(str(value), "utf-8")


def _text_property(dpy: Any, win: Any, name: str) -> str | None:
    from Xlib import X

    prop = win.get_full_property(dpy.intern_atom(name), X.AnyPropertyType)
    if prop is None or not prop.value:
        return None
    value = prop.value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _client_windows(dpy: Any) -> list[Window]:
    """Managed top-level windows (the WM's _NET_CLIENT_LIST), with title and WM_CLASS."""
    from Xlib import X
    from Xlib import error as xerror

    root = dpy.screen().root
    prop = root.get_full_property(dpy.intern_atom("_NET_CLIENT_LIST"), X.AnyPropertyType)
    ids = list(prop.value) if prop is not None else []
    out = []
    for wid in ids:
        win = dpy.create_resource_object("window", wid)
        try:
            title = _text_property(dpy, win, "_NET_WM_NAME") or _text_property(dpy, win, "WM_NAME") or ""
            cls = win.get_wm_class() or ("", "")
        except xerror.XError:
            continue  # closed while we looked
        out.append(Window(int(wid), title, cls[0] or "", cls[1] or ""))
    return out


def _window_size(dpy: Any, app_class: str) -> tuple[int, int] | None:
    from Xlib import error as xerror

    wanted = app_class.lower()
    windows = _client_windows(dpy)
    exact = [w for w in windows if wanted in (w.wm_instance.lower(), w.wm_class.lower())]
    loose = [w for w in windows if wanted in w.wm_instance.lower() or wanted in w.wm_class.lower()]
    for w in exact + loose:
        try:
            geo = dpy.create_resource_object("window", w.id).get_geometry()
        except xerror.XError:
            continue
        return int(geo.width), int(geo.height)
    return None


def _draw_cursor(dpy: Any, root: Any, image: Any) -> None:
    from PIL import Image

    try:
        cur = dpy.xfixes_get_cursor_image(root)
    except Exception as e:  # a screenshot without the cursor beats no screenshot
        print(f"guest: cursor image unavailable: {e}", file=sys.stderr)
        return
    if not cur.width or not cur.height:
        return
    # ARGB words (premultiplied alpha); as little-endian bytes they read B, G, R, A.
    pixels = array.array("I", cur.cursor_image)
    if sys.byteorder != "little":
        pixels.byteswap()
    sprite = Image.frombuffer("RGBA", (cur.width, cur.height), pixels.tobytes(), "raw", "BGRA", 0, 1)
    image.paste(sprite, (cur.x - cur.xhot, cur.y - cur.yhot), sprite)


def _encode_png(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
