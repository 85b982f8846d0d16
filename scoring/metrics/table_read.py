"""Reading xlsx workbooks the way OSWorld's table metrics see them, without pandas.

`frame()` mimics `pandas.read_excel(book, sheet)` (openpyxl engine, default options), as
upstream's `sheet_data` rule reads a sheet:
- cached cell values (formulas' last results); an empty cell is "" and an error cell NaN;
- row 1 is always the header, blank or not (empty labels become `Unnamed: i`, duplicates
  `name.1`); rows are padded to the widest row; trailing blank rows are dropped, blank rows
  between data are kept as all-missing rows (read_excel passes `skip_blank_lines=False`);
- each column is typed as pandas' parser types it: pandas' NA strings ("", "NA", "N/A", ...)
  are missing; a column whose every value is a number, numeric text ("12", " 1.5e3 ") or a
  boolean becomes int64 (float64 once a value is fractional or missing), an all-boolean one
  bool, an all-datetime one datetime64; anything else stays object with the values as read.
`Frame.__eq__` is `DataFrame.equals`: same labels, same column dtypes, same values, missing
where missing. `Frame.rounded()` is `DataFrame.round`: float columns only.

`cell_value()` mimics upstream's `read_cell_value` (raw XML): numbers as float, text as str,
error cells as their text; dates as the Excel serial number they are stored as.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import openpyxl
from openpyxl.utils.datetime import to_excel
from openpyxl.workbook.workbook import Workbook

# pandas' default na_values (io/parsers): these strings read as NaN.
NA_STRINGS = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
    "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})
# What pandas' numeric conversion accepts as a number in text (surrounding blanks allowed).
_NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*|\s*[+-]?inf(?:inity)?\s*", re.IGNORECASE)
_TRUE, _FALSE = frozenset({"True", "TRUE", "true"}), frozenset({"False", "FALSE", "false"})


class _Error:
    """An error cell: missing like "", but not trimmed as an empty cell is (pandas: NaN)."""

    def __repr__(self) -> str:
        return "ERROR"


_ERROR = _Error()


class Books:
    """Workbooks opened at most once per metric call: formulas view and cached-values view."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, bool], Workbook] = {}

    def get(self, path: str, *, values: bool) -> Workbook:
        key = (path, values)
        if key not in self._open:
            self._open[key] = openpyxl.load_workbook(path, data_only=values)
        return self._open[key]


def _read_cell(cell: Any) -> Any:
    """pandas' openpyxl reader: "" for empty, NaN (here _ERROR) for errors, integral floats as int."""
    value = cell.value
    if value is None:
        return ""
    if cell.data_type == "e":
        return _ERROR
    if cell.data_type == "n" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value) if float(value).is_integer() else float(value)
    return value


def _missing(v: Any) -> bool:
    return v is _ERROR or (isinstance(v, str) and v in NA_STRINGS)


def _as_number(v: Any) -> int | float | None:
    """The number pandas' numeric conversion makes of `v`, or None if it makes none."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float):
        return v
    if isinstance(v, str) and _NUMBER.fullmatch(v):
        text = v.strip()
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    return None


def _column(values: list[Any]) -> tuple[str, list[Any]]:
    """(dtype, values with missing as None) as pandas' parser and DataFrame constructor type it."""
    present = [v for v in values if not _missing(v)]
    clean = [None if _missing(v) else v for v in values]
    if not values:
        return "object", []
    numbers = [_as_number(v) for v in present]
    if all(n is not None for n in numbers):
        if len(present) == len(values) and present and all(isinstance(v, bool) for v in present):
            return "bool", clean
        as_float = len(present) < len(values) or any(isinstance(n, float) for n in numbers)
        it = iter(numbers)
        out = [None if v is None else next(it) for v in clean]
        return ("float", [None if n is None else float(n) for n in out]) if as_float else ("int", out)
    if len(present) == len(values) and all(isinstance(v, bool) or v in _TRUE or v in _FALSE for v in present):
        return "bool", [v if isinstance(v, bool) else v in _TRUE for v in present]
    if present and all(isinstance(v, datetime) for v in present):
        return "datetime", clean
    if present and all(isinstance(v, timedelta) for v in present):
        return "timedelta", clean
    return "object", clean


@dataclass
class Frame:
    header: list[Any]
    dtypes: list[str]
    rows: list[list[Any]]

    def rounded(self, digits: int) -> Frame:
        def r(v: Any) -> Any:
            return None if v is None else float(np.round(v, digits))

        rows = [[r(v) if t == "float" else v for v, t in zip(row, self.dtypes, strict=True)] for row in self.rows]
        return Frame(self.header, self.dtypes, rows)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Frame) and self.header == other.header and self.dtypes == other.dtypes
                and self.rows == other.rows)


def _labels(first: list[Any]) -> list[Any]:
    """Column labels from row 1: "" -> `Unnamed: i`, repeats -> `name.1` (pandas' dedup)."""
    labels: list[Any] = []
    counts: dict[Any, int] = {}
    for i, v in enumerate(first):
        label = f"Unnamed: {i}" if v == "" else v
        count = counts.get(label, 0)
        while count > 0:
            counts[label] = count + 1
            label = f"{label}.{count}"
            count = counts.get(label, 0)
        labels.append(label)
        counts[label] = count + 1
    return labels


def frame(book: Workbook, sheet: str) -> Frame | None:
    """pandas-like view of one sheet (None if the sheet does not exist)."""
    if sheet not in book.sheetnames:
        return None
    rows: list[list[Any]] = []
    last = -1
    for i, cells in enumerate(book[sheet].iter_rows()):
        row = [_read_cell(c) for c in cells]
        while row and row[-1] == "":
            row.pop()
        if row:
            last = i
        rows.append(row)
    rows = rows[:last + 1]
    if not rows:
        return Frame([], [], [])
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    typed = [_column([r[c] for r in rows[1:]]) for c in range(width)]
    body = [[typed[c][1][i] for c in range(width)] for i in range(len(rows) - 1)]
    return Frame(_labels(rows[0]), [t for t, _ in typed], body)


def cell_value(book: Workbook, sheet: str, coordinate: str) -> Any:
    """Upstream's read_cell_value over a cached-values workbook (None if sheet or cell is missing)."""
    if sheet not in book.sheetnames:
        return None
    ws = book[sheet]
    try:
        value = ws[coordinate].value
    except (ValueError, IndexError):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime | date | time):
        return float(to_excel(value))
    return value


def last_row_as_strings(path: str) -> list[str]:
    """`pandas.read_excel(path).iloc[-1].astype(str).tolist()` (content_from_vm_file's last_row)."""
    book = openpyxl.load_workbook(path, data_only=True)
    f = frame(book, book.sheetnames[0])
    if f is None or not f.rows:
        raise ValueError(f"{path}: no data rows")
    out = []
    for v, dtype in zip(f.rows[-1], f.dtypes, strict=True):
        if v is None:
            out.append("NaT" if dtype in ("datetime", "timedelta") else "nan")
        elif dtype == "datetime":
            out.append(v.strftime("%Y-%m-%d %H:%M:%S" if not v.microsecond else "%Y-%m-%d %H:%M:%S.%f"))
        else:
            out.append(str(v))
    return out
