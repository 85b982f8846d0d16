"""OSWorld's value rules `{"method": M, "ref": R}` used by compare_table and check_json.

Methods: `eq ne lt le gt ge`; `approx:T` (|value - ref| <= T); `re` / `re.I.M...` (regex search);
`range.XY` (X, Y in {e, t}: ref[0] <X value <Y ref[1], e = "or equal"); `str_list_eq` /
`str_set_eq` (comma-separated value vs a list); `spreadsheet_range` (ranges inside bounds).
"""

from __future__ import annotations

import functools
import operator
import re
from typing import Any

METHODS = ("eq", "ne", "lt", "le", "gt", "ge", "approx:", "re", "range.", "str_list_eq", "str_set_eq",
           "spreadsheet_range")


def method_supported(method: Any) -> bool:
    if not isinstance(method, str):
        return False
    if method in ("eq", "ne", "lt", "le", "gt", "ge", "str_list_eq", "str_set_eq", "spreadsheet_range"):
        return True
    if method.startswith("approx:"):
        try:
            float(method.split(":", 1)[1])
            return True
        except ValueError:
            return False
    if method == "re" or method.startswith("re."):
        return all(hasattr(re, f) for f in method.split(".")[1:])
    if method.startswith("range."):
        return len(method) == 8 and method[6] in "et" and method[7] in "et"
    return False


def match_value(value: Any, rule: dict[str, Any]) -> bool:
    method: str = rule["method"]
    ref = rule.get("ref")
    if method == "re" or method.startswith("re."):
        flags = functools.reduce(operator.or_, (getattr(re, f) for f in method.split(".")[1:]), re.RegexFlag(0))
        return isinstance(value, str) and re.search(ref, value, flags) is not None
    if method in ("eq", "ne", "lt", "le", "gt", "ge"):
        try:
            return bool(getattr(operator, method)(value, ref))
        except TypeError:  # e.g. None < 3: the value is not what the rule expects
            return False
    if method.startswith("approx:"):
        try:
            return abs(float(value) - float(ref)) <= float(method.split(":", 1)[1])
        except (TypeError, ValueError):
            return False
    if method.startswith("range."):
        lo_op = operator.le if method[6] == "e" else operator.lt
        hi_op = operator.le if method[7] == "e" else operator.lt
        try:
            return bool(lo_op(ref[0], value) and hi_op(value, ref[1]))
        except TypeError:
            return False
    if method in ("str_list_eq", "str_set_eq"):
        if not isinstance(value, str):
            return False
        items = value.strip("\"'").split(",")
        return items == list(ref) if method == "str_list_eq" else set(items) == set(ref)
    if method == "spreadsheet_range":
        from openpyxl.worksheet.cell_range import MultiCellRange

        inner, outer = MultiCellRange(ref[0]), MultiCellRange(ref[1])
        value = value if isinstance(value, MultiCellRange) else MultiCellRange(str(value))
        return all(r in value for r in inner) and all(r in outer for r in value)
    raise ValueError(f"unknown rule method {method!r}")
