"""Reading xlsx workbooks the way OSWorld's table metrics see them, without pandas.

`frame()` mimics `pandas.read_excel(book, sheet)`: cached cell values (formulas' last results),
the first non-blank row as the header (empty header cells become `Unnamed: i`, duplicates
`name.1`), blank rows skipped, trailing empty columns dropped, integral floats as ints and
pandas' default NA strings ("", "NA", "N/A", "null", ...) as missing. Known difference: pandas
compares column dtypes too (an int column never equals a float column); we compare values.

`cell_value()` mimics upstream's `read_cell_value` (raw XML): numbers as float, text as str,
error cells as their text; dates as the Excel serial number they are stored as.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import openpyxl
from openpyxl.utils.datetime import to_excel
from openpyxl.workbook.workbook import Workbook

# pandas' default na_values (io/parsers): these strings read as NaN.
NA_STRINGS = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
    "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})


class Books:
    """Workbooks opened at most once per metric call: formulas view and cached-values view."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, bool], Workbook] = {}

    def get(self, path: str, *, values: bool) -> Workbook:
        key = (path, values)
        if key not in self._open:
            self._open[key] = openpyxl.load_workbook(path, data_only=values)
        return self._open[key]


def _pandas_cell(value: Any) -> Any:
    if isinstance(value, str):
        return None if value in NA_STRINGS else value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass
class Frame:
    header: list[Any]
    rows: list[list[Any]]

    def rounded(self, digits: int) -> Frame:
        def r(v: Any) -> Any:
            return round(v, digits) if isinstance(v, float) else v

        return Frame([r(v) for v in self.header], [[r(v) for v in row] for row in self.rows])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Frame) and self.header == other.header and self.rows == other.rows


def frame(book: Workbook, sheet: str) -> Frame | None:
    """pandas-like view of one sheet (None if the sheet does not exist)."""
    if sheet not in book.sheetnames:
        return None
    rows: list[list[Any]] = []
    for raw in book[sheet].iter_rows(values_only=True):
        row = [_pandas_cell(v) for v in raw]
        while row and row[-1] is None:
            row.pop()
        if row:  # blank rows are skipped (pandas' skip_blank_lines)
            rows.append(row)
    if not rows:
        return Frame([], [])
    width = max(len(r) for r in rows)
    rows = [r + [None] * (width - len(r)) for r in rows]
    header: list[Any] = []
    counts: dict[Any, int] = {}
    for i, v in enumerate(rows[0]):
        label = f"Unnamed: {i}" if v is None else v
        if label in counts:
            counts[label] += 1
            label = f"{label}.{counts[label]}"
        else:
            counts[label] = 0
        header.append(label)
    return Frame(header, rows[1:])


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
    for col, v in enumerate(f.rows[-1]):
        column = [row[col] for row in f.rows]
        numeric = all((isinstance(x, int | float) and not isinstance(x, bool)) or x is None for x in column)
        as_float = numeric and any(isinstance(x, float) or x is None for x in column)  # pandas: float64 column
        dates = all(isinstance(x, datetime) or x is None for x in column) and any(x is not None for x in column)
        if v is None:
            out.append("NaT" if dates else "nan")
        elif isinstance(v, datetime):
            out.append(v.strftime("%Y-%m-%d %H:%M:%S"))
        elif as_float:
            out.append(str(float(v)))
        else:
            out.append(str(v))
    return out
