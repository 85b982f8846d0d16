"""Where an action points: screen coordinates parsed out of pyautogui code or computer_13 dicts.

The report draws a marker at each point over the screenshot (CSS, the PNG is never touched).
Code is parsed with `ast` and never executed: only numeric literals, simple arithmetic on them
and names bound to such values earlier in the same snippet are understood. Code that does not
parse falls back to a regular expression on `name(x, y`.
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# pyautogui functions whose first two arguments (or x=/y=) are a screen position.
CLICKS = {"click": "click", "leftClick": "click", "doubleClick": "double", "tripleClick": "triple",
          "rightClick": "right", "middleClick": "middle", "mouseDown": "down", "mouseUp": "up"}
MOVES = {"moveTo": "move", "dragTo": "drag"}
# scroll(clicks, x, y): the position comes after the amount.
SCROLLS = {"scroll": "scroll", "hscroll": "scroll", "vscroll": "scroll"}

_C13 = {"CLICK": "click", "DOUBLE_CLICK": "double", "RIGHT_CLICK": "right", "MOVE_TO": "move",
        "DRAG_TO": "drag"}
_FALLBACK = re.compile(
    r"\b(" + "|".join(map(re.escape, {**CLICKS, **MOVES})) + r")\(\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)"
)
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv}


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    kind: str  # click, double, triple, right, middle, down, up, move, drag, scroll



def _number(node: ast.AST, names: dict[str, float]) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _number(node.operand, names)
        return None if value is None else (-value if isinstance(node.op, ast.USub) else value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _number(node.left, names), _number(node.right, names)
        if left is None or right is None:
            return None
        try:
            return float(_BINOPS[type(node.op)](left, right))
        except (ZeroDivisionError, OverflowError):
            return None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("int", "round", "float"):
        if len(node.args) == 1:
            value = _number(node.args[0], names)
            return None if value is None else float(round(value) if node.func.id != "float" else value)
    return None


def _pair(node: ast.AST, names: dict[str, float]) -> tuple[float, float] | None:
    if isinstance(node, ast.Tuple | ast.List) and len(node.elts) == 2:
        x, y = (_number(e, names) for e in node.elts)
        if x is not None and y is not None:
            return x, y
    return None


def _call_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _point_of_call(call: ast.Call, names: dict[str, float]) -> Point | None:
    name = _call_name(call)
    kind = CLICKS.get(name or "") or MOVES.get(name or "") or SCROLLS.get(name or "")
    if kind is None:
        return None
    args = list(call.args)
    if name in SCROLLS:
        args = args[1:]  # scroll(clicks, x=None, y=None)
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    if args and (pair := _pair(args[0], names)) is not None:
        return Point(*pair, kind)
    x_node = keywords.get("x", args[0] if args else None)
    y_node = keywords.get("y", args[1] if len(args) > 1 else None)
    if x_node is None or y_node is None:
        return None  # clicks at the current position have nothing to mark
    x, y = _number(x_node, names), _number(y_node, names)
    return Point(x, y, kind) if x is not None and y is not None else None


_NAMES = re.compile(r"\b(?:" + "|".join(map(re.escape, {**CLICKS, **MOVES, **SCROLLS})) + r")\s*\(")


@lru_cache(maxsize=8192)
def _points_in_code(code: str) -> tuple[Point, ...]:
    if not _NAMES.search(code):
        return ()  # typing, hotkeys, WAIT/DONE: nothing to parse
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return tuple(Point(float(m[2]), float(m[3]), {**CLICKS, **MOVES}[m[1]]) for m in _FALLBACK.finditer(code))
    names: dict[str, float] = {}
    calls: list[ast.Call] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            calls.append(node)
        elif isinstance(node, ast.Assign):  # numbers bound to names, for calls such as click(x, y)
            for target in node.targets:
                if isinstance(target, ast.Name) and (v := _number(node.value, names)) is not None:
                    names[target.id] = v
                elif isinstance(target, ast.Tuple) and (pair := _pair(node.value, names)) is not None:
                    for elt, value in zip(target.elts, pair, strict=False):
                        if isinstance(elt, ast.Name):
                            names[elt.id] = value
    calls.sort(key=lambda c: (c.lineno, c.col_offset))
    return tuple(p for c in calls if (p := _point_of_call(c, names)) is not None)


def action_points(action: Any) -> list[Point]:
    """Screen positions an action acts on, in order (empty for typing, hotkeys, WAIT/DONE/FAIL)."""
    if isinstance(action, str):
        return list(_points_in_code(action))
    if isinstance(action, dict):
        kind = _C13.get(str(action.get("action_type", "")).upper())
        params = action.get("parameters") or {}
        if kind and isinstance(params, dict):
            x, y = params.get("x"), params.get("y")
            if isinstance(x, int | float) and isinstance(y, int | float) and not isinstance(x, bool):
                if kind == "click" and params.get("num_clicks") == 2:
                    kind = "double"
                return [Point(float(x), float(y), kind)]
    return []


def action_text(action: Any) -> str:
    """The action as the report shows it: code as is, dicts as compact JSON-like text."""
    if action is None:
        return ""
    if isinstance(action, str):
        return action
    import orjson

    try:
        return orjson.dumps(action, option=orjson.OPT_INDENT_2, default=str).decode()
    except TypeError:
        return repr(action)
