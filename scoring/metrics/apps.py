"""Metrics over application config files: Thunderbird's prefs.js, GIMP's gimprc-style files."""

from __future__ import annotations

import json
import re
from typing import Any

from scoring.metrics.rule_match import match_value
from scoring.metrics.text import read_text
from scoring.registry import metric

_PREF = re.compile(r'^user_pref\("(?P<key>(?:[^"]|\\")+)", (?P<val>.+)\);$')


@metric("check_thunderbird_prefs")
def check_thunderbird_prefs(result: str, rule: dict[str, dict[str, dict[str, Any]]]) -> float:
    """prefs.js values: every rule.expect key matches its rule, no rule.unexpect key matches."""
    expect = rule.get("expect", {})
    unexpect = rule.get("unexpect", {})
    seen = dict.fromkeys(expect, False)
    for line in read_text(result).splitlines():
        m = _PREF.match(line.strip())
        if m is None:
            continue
        key = m.group("key")
        try:
            value = json.loads(m.group("val"))
        except ValueError:
            continue
        if key in expect:
            seen[key] = match_value(value, expect[key])
        elif key in unexpect and match_value(value, unexpect[key]):
            return 0.0
    return float(all(seen.values()))


@metric("check_config_status")
def check_config_status(config_path: str, rule: dict[str, Any]) -> float:
    """A `(key ... value)` line of a GIMP config file has rule.value (key: a name or [name, sub])."""
    key = rule["key"]
    for line in read_text(config_path).splitlines(keepends=True):
        if line.startswith("#") or line == "\n":
            continue
        items = line.strip().lstrip("(").rstrip(")\n").split()
        if not items:
            continue
        if isinstance(key, str) and items[0] == key and items[-1] == rule["value"]:
            return 1.0
        if isinstance(key, list) and len(key) == 2 and items[:2] == key and items[-1] == rule["value"]:
            return 1.0
    return 0.0
