"""Accessibility-tree linearization, as OSWorld's PromptAgent shows the tree to a model.

The guest returns AT-SPI XML (element tag = role with spaces as hyphens; states, attributes and
geometry in the `https://accessibility.ubuntu.example.org/ns/...` namespaces). The agent keeps
the nodes a user can see and act on and prints them as a TSV table:

    tag  name  text  class  description  position (top-left x&y)  size (w&h)

Differences from upstream, on purpose: `class` and `description` are read from the ubuntu
attributes namespace (upstream reads the windows one on ubuntu, so those columns are always
empty there); coordinates are parsed, never `eval`ed; tabs and newlines inside a cell are escaped
so each node stays one row; the token trim drops whole rows instead of cutting a row in half.
`osworld_table` (the osworld profile) prints upstream's table instead: cells as the XML has them,
`class` and `description` from the windows namespace (empty on ubuntu trees, as upstream), and
nodes whose text is only whitespace kept (upstream tests `len(text) > 0`).
Parsing is CPU work: callers on the event loop run these functions in a worker thread.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from harness.base.errors import HarnessError

_BASE = "https://accessibility.ubuntu.example.org/ns/"
NS_STATE = _BASE + "state"
NS_ATTRIBUTES = _BASE + "attributes"
NS_COMPONENT = _BASE + "component"
NS_VALUE = _BASE + "value"
# Upstream reads `class` and `description` on ubuntu from this namespace (a bug: the guest never
# writes it there), so its table has those columns empty; the osworld profile does the same.
NS_ATTRIBUTES_WINDOWS = "https://accessibility.windows.example.org/ns/attributes"

HEADER = "tag\tname\ttext\tclass\tdescription\tposition (top-left x&y)\tsize (w&h)"
TRIM_MARK = "[...]"
DEFAULT_MAX_TOKENS = 10_000  # upstream's a11y_tree_max_tokens

# Roles kept by upstream's node filter: a prefix, suffixes, and a fixed set (which includes the
# windows roles; harmless on ubuntu trees).
_KEEP_SUFFIXES = ("item", "button", "heading", "label", "scrollbar", "searchbox", "textbox", "link",
                  "tabelement", "textfield", "textarea", "menu")
_KEEP_EXACT = frozenset({
    "alert", "canvas", "check-box", "combo-box", "entry", "icon", "image", "paragraph", "scroll-bar",
    "section", "slider", "static", "table-cell", "terminal", "text", "netuiribbontab", "start",
    "trayclockwclass", "traydummysearchcontrol", "uiimage", "uiproperty", "uiribboncommandbar",
})
_ACTIONABLE_STATES = ("enabled", "editable", "expandable", "checkable")
_PAIR = re.compile(r"^\s*\(?\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\)?\s*$")


class A11yParseError(HarnessError, ValueError):
    """The accessibility XML from the guest is not well-formed or not allowed."""


@dataclass(frozen=True, slots=True)
class A11yNode:
    """One kept node: what the table shows, plus its box for set-of-marks."""

    tag: str
    name: str
    text: str
    cls: str
    description: str
    x: int
    y: int
    w: int
    h: int
    position: str = ""  # the screencoord attribute as the XML has it, for upstream's table
    size: str = ""

    @property
    def center(self) -> tuple[int, int]:
        return self.x + self.w // 2, self.y + self.h // 2


def keeps_role(tag: str) -> bool:
    return tag.startswith("document") or tag.endswith(_KEEP_SUFFIXES) or tag in _KEEP_EXACT


def _pair(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    m = _PAIR.match(value)
    if not m:
        return None
    return int(float(m.group(1))), int(float(m.group(2)))


def _flag(el: ET.Element, state: str) -> bool:
    return el.get(f"{{{NS_STATE}}}{state}", "false") == "true"


def parse_tree(xml: str) -> ET.Element:
    """Parse the guest's XML. Entity declarations are refused (the XML is untrusted input)."""
    if "<!ENTITY" in xml or "<!DOCTYPE" in xml:
        raise A11yParseError("accessibility tree: DOCTYPE/ENTITY declarations are not allowed")
    try:
        return ET.fromstring(xml)
    except ET.ParseError as e:
        raise A11yParseError(f"accessibility tree: malformed XML ({e})") from e


def filter_nodes(xml: str | ET.Element, *, check_image: bool = False, upstream: bool = False) -> list[A11yNode]:
    """The nodes upstream's filter keeps, in document order.

    A node is kept when its role is in the kept set; it is showing and visible; it is enabled,
    editable, expandable or checkable; it has a name or text (or, with `check_image`, is an
    image); and its screen coordinates are >= 0 with a size > 0.

    `upstream` (osworld profile): whitespace-only text counts as text and is kept as it is, and
    `cls`/`description` come from the namespace upstream reads (see NS_ATTRIBUTES_WINDOWS).
    """
    attributes = NS_ATTRIBUTES_WINDOWS if upstream else NS_ATTRIBUTES
    root = parse_tree(xml) if isinstance(xml, str) else xml
    kept: list[A11yNode] = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue  # comments and processing instructions
        tag = el.tag.rsplit("}", 1)[-1]
        if not keeps_role(tag):
            continue
        if not (_flag(el, "showing") and _flag(el, "visible")):
            continue
        if not any(_flag(el, s) for s in _ACTIONABLE_STATES):
            continue
        name = el.get("name", "")
        text = el.text or ""
        if not upstream and not text.strip():
            text = ""  # whitespace between child elements (pretty-printed XML) is not text
        if not (name or text or (check_image and el.get("image", "false") == "true")):
            continue
        position = el.get(f"{{{NS_COMPONENT}}}screencoord")
        size = el.get(f"{{{NS_COMPONENT}}}size")
        xy, wh = _pair(position), _pair(size)
        if xy is None or wh is None or xy[0] < 0 or xy[1] < 0 or wh[0] <= 0 or wh[1] <= 0:
            continue
        kept.append(A11yNode(
            tag=tag, name=name, text=text,
            cls=el.get(f"{{{attributes}}}class", ""),
            description=el.get(f"{{{attributes}}}description", ""),
            x=xy[0], y=xy[1], w=wh[0], h=wh[1], position=position or "", size=size or "",
        ))
    return kept


def cell(value: str) -> str:
    """One table cell on one line: tabs and newlines escaped."""
    return value.replace("\t", "\\t").replace("\r", "\\r").replace("\n", "\\n")


def text_cell(text: str) -> str:
    """Upstream's text column: `""` when empty, CSV-style quoting when it holds a quote."""
    if not text:
        return '""'
    if '"' in text:
        text = '"' + text.replace('"', '""') + '"'
    return cell(text)


def table(nodes: list[A11yNode]) -> str:
    rows = [HEADER]
    for n in nodes:
        rows.append("\t".join((
            cell(n.tag), cell(n.name), text_cell(n.text), cell(n.cls), cell(n.description),
            f"({n.x}, {n.y})", f"({n.w}, {n.h})",
        )))
    return "\n".join(rows)


def upstream_text_cell(text: str) -> str:
    """Upstream's text column, unescaped: tabs and newlines inside stay (a node may span rows)."""
    if not text:
        return '""'
    return '"' + text.replace('"', '""') + '"' if '"' in text else text


def osworld_table(nodes: list[A11yNode]) -> str:
    """Upstream's table for nodes from `filter_nodes(..., upstream=True)`: cells as in the XML."""
    rows = [HEADER]
    for n in nodes:
        rows.append("\t".join((n.tag, n.name, upstream_text_cell(n.text), n.cls, n.description, n.position, n.size)))
    return "\n".join(rows)


_TOKEN = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate of BPE tokens (cl100k-like): words ~1 token per 6 letters,
    numbers 1 per 3 digits, each symbol 1. Errs high on tables like ours, so the trim is safe."""
    total = 0
    for m in _TOKEN.finditer(text):
        s = m.group()
        if s[0].isalpha():
            total += math.ceil(len(s) / 6)
        elif s[0].isdigit():
            total += math.ceil(len(s) / 3)
        else:
            total += 1
    return total


def trim_to_tokens(text: str, max_tokens: int) -> str:
    """Keep whole lines while the estimate stays within `max_tokens`; mark a cut with `[...]`."""
    # Every estimated token takes at least one character, so a text no longer than the budget
    # fits without counting (most screens: the count is a Python loop over regex matches).
    if max_tokens <= 0 or len(text) <= max_tokens or estimate_tokens(text) <= max_tokens:
        return text
    out: list[str] = []
    used = estimate_tokens(TRIM_MARK)
    for line in text.split("\n"):
        cost = estimate_tokens(line) + 1  # + the newline
        if used + cost > max_tokens:
            break
        out.append(line)
        used += cost
    out.append(TRIM_MARK)
    return "\n".join(out)


def linearize(xml: str | None, *, max_tokens: int = DEFAULT_MAX_TOKENS) -> str:
    """The TSV table of kept nodes for the prompt (header only when the tree is None/empty)."""
    if not xml or not xml.strip():
        return HEADER
    return trim_to_tokens(table(filter_nodes(xml)), max_tokens)
