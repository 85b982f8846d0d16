"""Metrics over the accessibility tree (OSWorld XML with its namespaces)."""

from __future__ import annotations

from typing import Any

from lxml import etree
from rapidfuzz import fuzz

from scoring.registry import metric

_BASE = "https://accessibility.{os}.example.org/ns/"
_PREFIXES = {"st": "state", "attr": "attributes", "cp": "component", "doc": "document",
             "docattr": "document/attributes", "txt": "text", "val": "value", "act": "action"}


def namespaces(osname: str = "ubuntu") -> dict[str, str]:
    ns = {p: _BASE.format(os=osname) + path for p, path in _PREFIXES.items()}
    if osname == "windows":
        ns["class"] = _BASE.format(os=osname) + "class"
    if osname == "macos":
        ns["role"] = _BASE.format(os=osname) + "role"
    return ns


def _check(options: dict[str, Any]) -> list[str]:
    return [] if options.get("osname", "ubuntu") in ("ubuntu", "windows", "macos") else [f"osname={options['osname']}"]


@metric("check_accessibility_tree", check=_check)
def check_accessibility_tree(result: str, rules: list[dict[str, Any]], osname: str = "ubuntu") -> float:
    """Each rule's xpath / CSS selectors find an element (optionally with `text`, exact or fuzzy);
    the score is the product of the rules' best matches."""
    from lxml.cssselect import CSSSelector

    ns = namespaces(osname)
    tree = etree.fromstring(result.encode() if isinstance(result, str) else result)
    total = 1.0
    for r in rules:
        if "xpath" in r:
            elements = tree.xpath(r["xpath"], namespaces=ns)
        elif "selectors" in r:
            elements = CSSSelector(", ".join(r["selectors"]), namespaces=ns)(tree)
        else:
            raise ValueError("each rule needs xpath or selectors")
        if not elements:
            return 0.0
        if "text" in r:
            want = r["text"]
            exact = r.get("exact", True)
            best = 0.0
            for el in elements:
                got = el.text or None
                best = max(best, float(got == want) if exact else fuzz.ratio(want, got or "") / 100.0)
            total *= best
    return float(total)
