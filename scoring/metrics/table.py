"""compare_table: OSWorld's spreadsheet metric, a sequence of rules that must all pass.

Sheet references (`sheet_idx`, `sheet_idx0/1`): an int (result sheet by position), `RI<n>` /
`RN<name>` (result by index / name), `EI<n>` / `EN<name>` (expected by index / name).

Rules run here: sheet_name, sheet_data (pandas-like values, `precision` digits, default 4),
sheet_print (LibreOffice's CSV export `<stem>-<sheet>.csv` next to each workbook), sheet_fuzzy,
check_cell (value and cell styles), freeze, zoom, data_validation, row_props, col_props, and
chart, pivot_table, style (`table_objects.py`). Not run (reported by `tasks check`): sparkline, filter.
"""

from __future__ import annotations

import os
from typing import Any

from openpyxl.utils import get_column_letter
from openpyxl.worksheet.cell_range import MultiCellRange
from openpyxl.worksheet.worksheet import Worksheet
from rapidfuzz import fuzz

from scoring.metrics.rule_match import match_value, method_supported
from scoring.metrics.table_objects import (
    OBJECT_RULES,
    STYLE_PROPS,
    check_rule,
    object_rule_ok,
    read_cell_style,
)
from scoring.metrics.table_read import Books, cell_value, frame
from scoring.metrics.text import read_lines
from scoring.registry import metric

RULES = ("sheet_name", "sheet_data", "sheet_print", "sheet_fuzzy", "check_cell", "freeze", "zoom",
         "data_validation", "row_props", "col_props", *OBJECT_RULES)


def _check_options(options: dict[str, Any]) -> list[str]:
    rules = options.get("rules")
    if not isinstance(rules, list):
        return ["rules must be a list"]
    problems: list[str] = []
    for r in rules:
        kind = r.get("type") if isinstance(r, dict) else None
        if kind not in RULES:
            problems.append(str(kind))
        elif kind in OBJECT_RULES:
            problems += check_rule(r)
        elif kind == "check_cell":
            for prop, rule in (r.get("props") or {}).items():
                if prop != "value" and prop not in STYLE_PROPS:
                    problems.append(f"check_cell.{prop}")
                elif not method_supported((rule or {}).get("method")):
                    problems.append(f"method {(rule or {}).get('method')}")
    return list(dict.fromkeys(problems))


class _Books:
    """The result and expected workbooks (paths, sheet names, lazily opened views)."""

    def __init__(self, result: str, expected: str | None) -> None:
        self.paths = {"result": result, "expected": expected}
        self.books = Books()
        self.names = {side: self.books.get(p, values=True).sheetnames if p else [] for side, p in self.paths.items()}

    def parse(self, idx: int | str) -> tuple[str, str]:
        """(side, sheet name); an unknown index gives sheet name "" (then the rule fails)."""
        if isinstance(idx, int):
            names = self.names["result"]
            return "result", names[idx] if 0 <= idx < len(names) else ""
        for prefix, side, by_index in (("RI", "result", True), ("RN", "result", False),
                                       ("EI", "expected", True), ("EN", "expected", False)):
            if idx.startswith(prefix):
                rest = idx[2:]
                if not by_index:
                    return side, rest
                try:
                    return side, self.names[side][int(rest)]
                except (ValueError, IndexError):
                    return side, ""
        raise ValueError(f"unrecognized sheet index {idx!r}")

    def book(self, side: str, *, values: bool) -> Any:
        path = self.paths[side]
        return self.books.get(path, values=values) if path else None

    def sheet(self, idx: int | str, *, values: bool = False) -> Worksheet | None:
        side, name = self.parse(idx)
        book = self.book(side, values=values)
        return book[name] if book is not None and name in book.sheetnames else None

    def value(self, idx: int | str, coordinate: str) -> Any:
        side, name = self.parse(idx)
        book = self.book(side, values=True)
        return None if book is None else cell_value(book, name, coordinate)

    def csv_lines(self, idx: int | str) -> list[str] | None:
        side, name = self.parse(idx)
        path = self.paths[side]
        if not path:
            return None
        try:
            lines = read_lines(f"{os.path.splitext(path)[0]}-{name}.csv")
        except OSError:
            return None
        lines = [line.strip() for line in lines]
        while lines and not lines[-1]:
            lines.pop()
        return lines


def _fuzzy_ok(b: _Books, r: dict[str, Any]) -> bool:
    for rl in r["rules"]:
        for rng in MultiCellRange(rl["range"]):
            for row, col in rng.cells:
                coord = f"{get_column_letter(col)}{row}"
                v1, v2 = str(b.value(r["sheet_idx0"], coord)), str(b.value(r["sheet_idx1"], coord))
                for old, new in rl.get("normalization", []):
                    v1, v2 = v1.replace(old, new), v2.replace(old, new)
                if "trim_leadings" in rl:
                    v1, v2 = v1.lstrip(rl["trim_leadings"]), v2.lstrip(rl["trim_leadings"])
                if "trim_trailings" in rl:
                    v1, v2 = v1.rstrip(rl["trim_trailings"]), v2.rstrip(rl["trim_trailings"])
                if "ignore_chars" in rl:
                    drop = set(rl["ignore_chars"])
                    v1, v2 = "".join(c for c in v1 if c not in drop), "".join(c for c in v2 if c not in drop)
                if rl.get("ignore_case", False):
                    v1, v2 = v1.lower(), v2.lower()
                kind = rl["type"]
                ok = (v2 in v1 if kind == "includes" else v1 in v2 if kind == "included_by"
                      else fuzz.ratio(v1, v2) >= rl.get("threshold", 85.0) if kind == "fuzzy_match"
                      else v1 == v2)
                if not ok:
                    return False
    return True


def _freeze_key(ws: Worksheet) -> tuple[Any, ...]:
    # The freeze boundary is xSplit/ySplit; topLeftCell moves when the user scrolls.
    pane = ws.sheet_view.pane
    if pane is None:
        return ("none",)
    xs, ys = int(pane.xSplit or 0), int(pane.ySplit or 0)
    if (pane.state or "").lower() in ("frozen", "frozensplit"):
        return ("frozen", xs, ys)
    return ("other", xs, ys, pane.topLeftCell)


def _dims(ws: Worksheet | None, obj: str, props: list[str]) -> dict[Any, dict[str, Any]]:
    if ws is None:
        return {}
    holder = ws.row_dimensions if obj == "row" else ws.column_dimensions
    return {key: {p: getattr(dim, p) for p in props} for key, dim in holder.items()}


def _rule_ok(b: _Books, r: dict[str, Any]) -> bool:
    kind = r["type"]
    if kind == "sheet_name":
        return b.names["result"] == b.names["expected"]
    if kind == "sheet_data":
        digits = r.get("precision", 4)
        frames = []
        for key in ("sheet_idx0", "sheet_idx1"):
            side, name = b.parse(r[key])
            book = b.book(side, values=True)
            f = frame(book, name) if book is not None else None
            if f is None:
                return False
            frames.append(f.rounded(digits))
        return frames[0] == frames[1]
    if kind == "sheet_print":
        s1, s2 = b.csv_lines(r["sheet_idx0"]), b.csv_lines(r["sheet_idx1"])
        if s1 is None or s2 is None:
            return False
        if r.get("ignore_case", False):
            s1, s2 = [s.lower() for s in s1], [s.lower() for s in s2]
        return s1 == s2
    if kind == "sheet_fuzzy":
        return _fuzzy_ok(b, r)
    if kind == "check_cell":
        ws = b.sheet(r["sheet_idx"])
        if ws is None:
            return False
        for prop, rule in r["props"].items():
            value = b.value(r["sheet_idx"], r["coordinate"]) if prop == "value" else read_cell_style(prop, ws[r["coordinate"]])
            if not match_value(value, rule):
                return False
        return True
    if kind == "freeze":
        w1, w2 = b.sheet(r["sheet_idx0"]), b.sheet(r["sheet_idx1"])
        return w1 is not None and w2 is not None and _freeze_key(w1) == _freeze_key(w2)
    if kind == "zoom":
        ws = b.sheet(r["sheet_idx"])
        return ws is not None and match_value(ws.sheet_view.zoomScale or 100.0, r)
    if kind == "data_validation":
        ws = b.sheet(r["sheet_idx"])
        if ws is None:
            return False
        validators = ws.data_validations.dataValidation
        if len(validators) < len(r["dv_props"]):
            return False
        return all(
            any(all(match_value(getattr(dv, "sqref" if attr == "ranges" else attr), rule) for attr, rule in props.items())
                for props in r["dv_props"])
            for dv in validators
        )
    if kind in ("row_props", "col_props"):
        obj = "row" if kind == "row_props" else "column"
        props = r.get("props", [])
        return _dims(b.sheet(r["sheet_idx0"]), obj, props) == _dims(b.sheet(r["sheet_idx1"]), obj, props)
    if kind in OBJECT_RULES:
        return object_rule_ok(b.sheet, r)
    raise ValueError(f"compare_table rule {kind!r} is not supported in this build")


@metric("compare_table", check=_check_options)
def compare_table(result: str, expected: str | None = None, **options: Any) -> float:
    """Spreadsheet rules (sheet_data, check_cell, sheet_print, ...) that must all hold."""
    if not result or not os.path.exists(result):
        return 0.0
    try:
        books = _Books(result, expected)
    except Exception:  # the agent's file is not a readable workbook
        if expected is not None:
            Books().get(expected, values=True)  # a broken gold file is the task's fault: raise
        return 0.0
    return float(all(_rule_ok(books, r) for r in options["rules"]))
