"""The accessibility tree: AT-SPI walked with pyatspi into OSWorld's XML.

Format (what OSWorld's agents and getters parse): one element per accessible, tag = role name with
spaces as hyphens, attribute `name`, states as `st:NAME="true"`, object attributes in `attr:`,
`cp:screencoord="(x, y)"` and `cp:size="(w, h)"` for showing+visible nodes, text as element text,
`val:` value, `act:NAME_desc`/`act:NAME_kb` actions. Depth <= 50, children <= 1024 per node; for
huge tables (a Calc sheet has 2^34 cells) only the cells on screen are listed.

libatspi is not thread-safe and its calls block on D-Bus, so every call runs on one worker thread,
which has the desktop user's ids when the server runs as root (user.py).
"""

from __future__ import annotations

import asyncio
import re
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import user
from .protocol import Unavailable

_BASE = "https://accessibility.ubuntu.example.org/ns"
NS = {
    "st": f"{_BASE}/state",
    "attr": f"{_BASE}/attributes",
    "cp": f"{_BASE}/component",
    "doc": f"{_BASE}/document",
    "docattr": f"{_BASE}/document/attributes",
    "txt": f"{_BASE}/text",
    "val": f"{_BASE}/value",
    "act": f"{_BASE}/action",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)

MAX_DEPTH = 50
MAX_WIDTH = 1024
MAX_NODES = 20000
MAX_TEXT = 200_000  # characters of one node's text
WALK_BUDGET_S = 25.0  # past this, stop descending and answer with what we have

_BAD_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_BAD_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


def _clean(text: str) -> str:
    return _BAD_XML_CHARS.sub("", text)


def _xml_name(raw: str, fallback: str = "unknown") -> str:
    name = _BAD_NAME_CHARS.sub("-", raw.strip().replace(" ", "-")) or fallback
    return name if (name[0].isalpha() or name[0] == "_") else f"_{name}"


class Accessibility:
    def __init__(self) -> None:
        # As the desktop's user: apps answer AT-SPI calls from their own uid only (see user.py).
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="atspi", initializer=user.become_user_on_this_thread)
        self._atspi: Any = None

    async def _call(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    async def tree_xml(self, *, full: bool = False) -> str:
        """The tree as XML; `full` also walks inside hidden widgets (closed menus), as OSWorld does."""
        return await self._call(self._tree_xml, full)

    async def terminal_text(self) -> str | None:
        return await self._call(self._terminal_text)

    # -- on the worker thread --

    def _pyatspi(self) -> Any:
        if self._atspi is None:
            try:
                import gi

                gi.require_version("Atspi", "2.0")
                import pyatspi
                from gi.repository import Atspi
            except (ImportError, ValueError) as e:
                raise Unavailable(f"pyatspi is not available ({e})") from e
            # A hung application must not stall the walk for D-Bus's default 25 s per call.
            Atspi.set_timeout(1500, 5000)
            self._atspi = pyatspi
        self._pump_events()
        return self._atspi

    @staticmethod
    def _pump_events() -> None:
        # libatspi keeps a cache of names/states that D-Bus signals update; nobody runs a GLib
        # main loop here, so dispatch what is pending before each walk to avoid stale names.
        from gi.repository import GLib

        ctx = GLib.MainContext.default()
        for _ in range(10000):
            if not ctx.pending():
                break
            ctx.iteration(False)

    def _tree_xml(self, full: bool) -> str:
        pyatspi = self._pyatspi()
        try:
            desktop = pyatspi.Registry.getDesktop(0)
        except Exception as e:
            raise Unavailable(f"AT-SPI registry is not reachable ({e})") from e
        walk = _Walk(pyatspi, full=full)
        root = walk.node(desktop, 0)
        return ET.tostring(root, encoding="unicode")

    def _terminal_text(self) -> str | None:
        """Text of the focused terminal widget in the active window, else None (OSWorld's /terminal)."""
        pyatspi = self._pyatspi()
        desktop = pyatspi.Registry.getDesktop(0)
        for app in _children(desktop):
            for frame in _children(app):
                if not _has_state(frame, pyatspi.STATE_ACTIVE):
                    continue
                term = _find(frame, lambda n: _role(n) == "terminal" and _has_state(n, pyatspi.STATE_FOCUSED))
                if term is not None:
                    return _text(term).rstrip()
        return None


def _children(node: Any, limit: int = MAX_WIDTH) -> list[Any]:
    out = []
    try:
        count = min(node.childCount, limit)
    except Exception:
        return out
    for i in range(count):
        try:
            child = node.getChildAtIndex(i)
        except Exception:
            continue
        if child is not None:
            out.append(child)
    return out


def _role(node: Any) -> str:
    try:
        return node.getRoleName() or ""
    except Exception:
        return ""


def _has_state(node: Any, state: Any) -> bool:
    try:
        return node.getState().contains(state)
    except Exception:
        return False


def _find(node: Any, pred: Any, depth: int = 0) -> Any:
    if pred(node):
        return node
    if depth >= MAX_DEPTH:
        return None
    for child in _children(node, 256):
        found = _find(child, pred, depth + 1)
        if found is not None:
            return found
    return None


def _text(node: Any) -> str:
    try:
        raw = node.queryText().getText(0, -1)  # -1: to the end, one D-Bus call instead of two
    except Exception:
        return ""
    return _clean(raw[:MAX_TEXT].replace("\ufffc", "").replace("\ufffd", ""))


class _Walk:
    """One walk of the tree, with a node budget and a time budget."""

    def __init__(self, pyatspi: Any, *, full: bool) -> None:
        self.pyatspi = pyatspi
        self.full = full
        self.count = 0
        self.deadline = time.monotonic() + WALK_BUDGET_S
        self._state_names: dict[Any, str] = {}

    def node(self, acc: Any, depth: int) -> ET.Element:
        self.count += 1
        attrs: dict[str, str] = {}
        try:
            attrs["name"] = _clean(acc.name or "")
        except Exception:
            attrs["name"] = ""
        try:
            states = acc.getState().getStates()
        except Exception:
            states = []
        for st in states:
            attrs[f"{{{NS['st']}}}{self._state_name(st)}"] = "true"
        try:
            attributes = acc.get_attributes() or {}
        except Exception:
            attributes = {}
        for key, value in attributes.items():
            if key:
                attrs[f"{{{NS['attr']}}}{_xml_name(key)}"] = _clean(str(value))
        try:
            interfaces = set(acc.get_interfaces())
        except Exception:
            interfaces = set()

        st = NS["st"]
        on_screen = attrs.get(f"{{{st}}}visible") == "true" and attrs.get(f"{{{st}}}showing") == "true"
        extents = None
        if on_screen and "Component" in interfaces:
            try:
                box = acc.queryComponent().getExtents(self.pyatspi.XY_SCREEN)
                extents = (box.x, box.y, box.width, box.height)
                attrs[f"{{{NS['cp']}}}screencoord"] = f"({box.x}, {box.y})"
                attrs[f"{{{NS['cp']}}}size"] = f"({box.width}, {box.height})"
            except Exception:
                pass
        text = _text(acc) if "Text" in interfaces else ""
        if "Image" in interfaces:
            attrs["image"] = "true"
        if "Selection" in interfaces:
            attrs["selection"] = "true"
        if "Value" in interfaces:
            self._value(acc, attrs)
        if "Action" in interfaces:
            self._actions(acc, attrs)

        elem = ET.Element(_xml_name(_role(acc)), attrs)
        if text:
            elem.text = text
        if depth >= MAX_DEPTH or self.count >= MAX_NODES or time.monotonic() > self.deadline:
            return elem
        hidden = "Component" in interfaces and attrs.get(f"{{{st}}}showing") != "true"
        if hidden and depth >= 2 and not self.full:  # depth 0-1: desktop and applications
            return elem  # a hidden widget (closed menu, background tab): nothing in it is on screen
        for child in self._child_nodes(acc, interfaces, extents):
            if self.count >= MAX_NODES:
                break
            try:
                elem.append(self.node(child, depth + 1))
            except Exception:
                continue  # the child died while we walked
        return elem

    def _child_nodes(self, acc: Any, interfaces: set[str], extents: Any) -> list[Any]:
        try:
            count = acc.childCount
        except Exception:
            return []
        if count > MAX_WIDTH and "Table" in interfaces and extents is not None:
            cells = self._visible_cells(acc, extents)
            if cells is not None:
                return cells
        return _children(acc)

    def _visible_cells(self, acc: Any, extents: tuple[int, int, int, int]) -> list[Any] | None:
        """The cells on screen of a huge table: corner cells by hit-testing, then the rectangle."""
        x, y, w, h = extents
        if w <= 2 or h <= 2:
            return []
        try:
            table = acc.queryTable()
            comp = acc.queryComponent()
            first = comp.getAccessibleAtPoint(x + 1, y + 1, self.pyatspi.XY_SCREEN)
            last = comp.getAccessibleAtPoint(x + w - 2, y + h - 2, self.pyatspi.XY_SCREEN)
            if first is None or last is None:
                return None
            i0, i1 = first.getIndexInParent(), last.getIndexInParent()
            r0, c0 = table.getRowAtIndex(i0), table.getColumnAtIndex(i0)
            r1, c1 = table.getRowAtIndex(i1), table.getColumnAtIndex(i1)
        except Exception:
            return None
        cells = []
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                if len(cells) >= MAX_WIDTH:
                    return cells
                try:
                    cell = table.getAccessibleAt(r, c)
                except Exception:
                    continue
                if cell is not None:
                    cells.append(cell)
        return cells

    def _state_name(self, st: Any) -> str:
        name = self._state_names.get(st)
        if name is None:
            # OSWorld's spelling: STATE_MULTI_LINE -> multi_line.
            lookup = getattr(self.pyatspi.StateType, "_enum_lookup", None)
            raw = lookup.get(st) if lookup else None
            if raw:
                name = raw.split("_", 1)[1].lower()
            else:
                name = getattr(st, "value_nick", str(st)).replace("-", "_")
            name = _xml_name(name)
            self._state_names[st] = name
        return name

    @staticmethod
    def _value(acc: Any, attrs: dict[str, str]) -> None:
        try:
            value = acc.queryValue()
        except Exception:
            return
        for key, getter in (
            ("value", lambda: value.currentValue),
            ("min", lambda: value.minimumValue),
            ("max", lambda: value.maximumValue),
            ("step", lambda: value.minimumIncrement),
        ):
            try:
                attrs[f"{{{NS['val']}}}{key}"] = str(getter())
            except Exception:
                pass

    @staticmethod
    def _actions(acc: Any, attrs: dict[str, str]) -> None:
        try:
            action = acc.queryAction()
            for i in range(action.nActions):
                name = _xml_name(action.getName(i))
                attrs[f"{{{NS['act']}}}{name}_desc"] = _clean(action.getDescription(i) or "")
                attrs[f"{{{NS['act']}}}{name}_kb"] = _clean(action.getKeyBinding(i) or "")
        except Exception:
            pass
