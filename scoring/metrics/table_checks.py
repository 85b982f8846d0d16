"""Single-purpose spreadsheet checks outside compare_table: compare_conference_city_in_order."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import openpyxl

from scoring.badinput import load
from scoring.registry import metric


def city_key(value: Any) -> str:
    """A cell or a city name as upstream matches them: accents dropped, lower case, every run of
    characters other than a-z/0-9 one space ("Montréal" and "MONTREAL" give "montreal")."""
    text = "" if value is None else str(value)
    bare = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]+", " ", bare.lower()).strip()


@metric("compare_conference_city_in_order")
def compare_conference_city_in_order(path: str, rules: dict[str, Any]) -> float:
    """Cells C2:C22 of the active sheet contain, in order, rules.expected's cities (a string,
    or a list of accepted strings, per row), ignoring accents, case and punctuation."""
    book = load(lambda p: openpyxl.load_workbook(p, read_only=True), path, "workbook")
    try:
        sheet = book.active
        cells = [c.value for row in sheet["C2:C22"] for c in row]
    finally:
        book.close()
    expected = rules["expected"]
    for i, value in enumerate(cells):
        if i >= len(expected):
            return 0.0  # upstream: IndexError caught, 0
        want = expected[i]
        if not isinstance(want, str | list):
            return 0.0  # upstream: TypeError caught, 0
        have = city_key(value)
        # substring, as upstream: a short name ("LA") also matches inside a longer one ("Atlanta")
        if not any((key := city_key(c)) and key in have for c in (want if isinstance(want, list) else [want])):
            return 0.0
    return 1.0
