"""Metrics over text-like files: plain text, line lists, CSV, JSON, SQLite (upstream's
general.py/table.py/vscode.py text family)."""

from __future__ import annotations

import csv
import difflib
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from scoring.metrics.rule_match import match_value, method_supported
from scoring.registry import metric


def read_lines(path: str) -> list[str]:
    """Lines of a text file: UTF-8 (BOM tolerated), else Latin-1 (which accepts any bytes), as upstream."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.splitlines()


def read_text(path: str) -> str:
    # Text mode, like upstream's open(): universal newlines.
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


@metric("compare_text_file")
def compare_text_file(actual: str, expected: str, **options: Any) -> float:
    """Text files equal (options: ignore_blanks collapses whitespace, ignore_case)."""
    a, b = read_text(actual), read_text(expected)
    if options.get("ignore_blanks", False):
        a = re.sub(r"\s+", " ", re.sub(r"[\t\n]", " ", a).strip())
        b = re.sub(r"\s+", " ", re.sub(r"[\t\n]", " ", b).strip())
    if options.get("ignore_case", False):
        a, b = a.lower(), b.lower()
    return float(a == b)


@metric("diff_text_file")
def diff_text_file(result: str, expected: str) -> float:
    """Line-level similarity ratio of two text files (difflib), in [0, 1]."""
    return difflib.SequenceMatcher(a=read_text(result).splitlines(), b=read_text(expected).splitlines()).ratio()


@metric("file_contains")
def file_contains(path: str, rules: dict[str, Any]) -> float:
    """The file contains every string of rules.expected."""
    text = read_text(path)
    return float(all(s in text for s in rules["expected"]))


@metric("check_list")
def check_list(result: str, rules: dict[str, list[str]]) -> float:
    """Each rules.expect regex matches some line; no rules.unexpect regex matches any line."""
    expect = [re.compile(p) for p in rules.get("expect", [])]
    unexpect = [re.compile(p) for p in rules.get("unexpect", [])]
    seen = [False] * len(expect)
    for line in read_text(result).splitlines(keepends=True):
        for i, r in enumerate(expect):
            seen[i] = seen[i] or r.search(line) is not None
        if any(r.search(line) for r in unexpect):
            return 0.0
    return float(all(seen))


def _match_record(pattern: dict[str, Any], row: dict[str, Any]) -> bool:
    return all(k in row and row[k] == v for k, v in pattern.items())


@metric("check_csv")
def check_csv(result: str, rules: dict[str, list[dict[str, str]]]) -> float:
    """Some CSV record matches each rules.expect pattern and none matches a rules.unexpect one."""
    expect = rules.get("expect", [])
    unexpect = rules.get("unexpect", [])
    seen = [False] * len(expect)
    with open(result, newline="", encoding="utf-8", errors="replace") as f:
        for row in csv.DictReader(f):
            for i, p in enumerate(expect):
                seen[i] = seen[i] or _match_record(p, row)
            if any(_match_record(p, row) for p in unexpect):
                return 0.0
    return float(all(seen))


@metric("compare_csv")
def compare_csv(result: str, expected: str | list[str], **options: Any) -> float:
    """CSV files equal line by line, or equal to any of a list (options: strict=False strips, ignore_case)."""
    got = read_lines(result)
    for candidate in [expected] if isinstance(expected, str) else list(expected):
        if candidate is None:
            continue
        try:
            want = read_lines(candidate)
        except OSError:
            continue
        a, b = got, want
        if not options.get("strict", True):
            a, b = [s.strip() for s in a], [s.strip() for s in b]
        if options.get("ignore_case", False):
            a, b = [s.lower() for s in a], [s.lower() for s in b]
        if a == b:
            return 1.0
    return 0.0


@metric("check_line_number")
def check_line_number(path: str, rules: dict[str, Any]) -> float:
    """The number of lines containing an HH:MM:SS time equals rules.expected."""
    pattern = re.compile(r"([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)")
    count = sum(1 for line in read_text(path).splitlines() if pattern.search(line))
    return float(count == int(rules["expected"]))


def _normalize_python(text: str) -> str:
    lines = text.splitlines()
    i = 0
    while i < min(len(lines), 3) and lines[i].strip().startswith(("#!", "# -*- coding:", "# coding:", "# coding=")):
        i += 1
    return "\n".join(line.expandtabs(4).rstrip() for line in lines[i:] if line.strip())


@metric("compare_python_pure_text")
def compare_python_pure_text(py_file: str, gold_file: str) -> float:
    """Python sources equal after dropping blank lines, trailing spaces and a shebang/coding header."""
    return float(_normalize_python(read_text(py_file)) == _normalize_python(read_text(gold_file)))


def _load_json_or_yaml(path: str, is_yaml: bool) -> Any:
    text = read_text(path)
    if is_yaml:
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def _check_json_options(options: dict[str, Any]) -> list[str]:
    if options.get("is_yaml"):
        try:
            import yaml  # noqa: F401
        except ImportError:
            return ["is_yaml needs PyYAML"]
    return []


@metric("check_json", check=_check_json_options)
def check_json(result: str, rules: dict[str, Any], is_yaml: bool = False) -> float:
    """Values at rules.expect[].key paths match their rules; rules.unexpect ones must not."""
    try:
        data = _load_json_or_yaml(result, is_yaml)
    except (ValueError, OSError):
        return 0.0
    if data is None:
        return 0.0
    for r in rules.get("expect", []):
        value = data
        for k in r["key"]:
            try:
                value = value[k]
            except (KeyError, IndexError, TypeError):
                return 0.0
        if not method_supported(r.get("method")) or not match_value(value, r):
            return 0.0
    for r in rules.get("unexpect", []):
        value = data
        for k in r["key"]:
            try:
                value = value[k]
            except (KeyError, IndexError, TypeError):
                value = None
                break
        if match_value(value, r):
            return 0.0
    return 1.0


@metric("check_json_settings")
def check_json_settings(actual: str, expected: dict[str, Any], **options: Any) -> float:
    """Every key/value of expected.expected is present in the JSON file."""
    try:
        data = json.loads(read_text(actual))
    except (ValueError, OSError):
        return 0.0
    return float(isinstance(data, dict) and all(k in data and data[k] == v for k, v in expected["expected"].items()))


@metric("check_json_keybindings")
def check_json_keybindings(actual: str, expected: dict[str, Any], **options: Any) -> float:
    """The JSON list (first line may be a comment) contains expected.expected."""
    text = read_text(actual)
    for candidate in (text, text.split("\n", 1)[1] if "\n" in text else ""):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, list):
            return float(expected["expected"] in data)
    return 0.0


@metric("run_sqlite3")
def run_sqlite3(result: str, rules: dict[str, Any]) -> float:
    """The first column of the first row of rules.sql run on the SQLite file (read-only)."""
    conn = sqlite3.connect(f"file:{Path(result).resolve()}?mode=ro", uri=True)
    try:
        row = conn.execute(rules["sql"]).fetchone()
    finally:
        conn.close()
    return float((row[0] if row else 0) or 0)
