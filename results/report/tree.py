"""The search tree of a tree-search agent (`tree.json`), normalized and laid out for an SVG view.

`tree.json` is written by the agent, whose format may grow: this module accepts a flat list of
nodes with parent links (`{"nodes": [...]}`) or nested `children`, several spellings of each
statistic (visits/N, Q/q, prior/P, value/V), and shows any field it does not know as-is. Nodes
without an id get their index; a parent that does not exist makes the node a root.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from results.report.pointer import Point, action_points, action_text

_ID = ("id", "node_id", "key")
_PARENT = ("parent", "parent_id")
_ACTION = ("action", "action_code", "code", "actions")  # `actions`: a step of several actions
_PRIOR = ("prior", "P", "p")
_VISITS = ("visits", "N", "n", "visit_count")
_Q = ("Q", "q", "q_value")
_VALUE = ("value", "V", "v")
_JUDGE = ("judge", "judges", "verdicts", "judge_verdicts", "debate", "evaluation")
_REFLECT = ("reflections", "retrieved_reflections")
_SHOT = ("screenshot", "screenshot_file", "image")
_CHOSEN_NODE = ("chosen", "on_path", "selected", "best")
_CHOSEN_TOP = ("final_path", "chosen_path", "best_path", "chosen", "path")
_RESPONSE = ("response", "reply")
_KNOWN = {*_ID, *_PARENT, *_ACTION, *_PRIOR, *_VISITS, *_Q, *_VALUE, *_JUDGE, *_REFLECT, *_SHOT,
          *_CHOSEN_NODE, *_RESPONSE, "children", "depth"}
# Top-level fields not shown as search settings: the nodes themselves and copies of them.
_META_HIDDEN = {"nodes", "root", "final"}

# Layout in SVG user units: columns narrow as leaves multiply (small trees stay readable).
MIN_X_STEP, MAX_X_STEP, TARGET_WIDTH, Y_STEP, MARGIN = 34, 110, 640, 70, 30


@dataclass
class TreeNode:
    id: str
    parent: str | None
    action: str = ""
    points: list[Point] = field(default_factory=list)
    prior: float | None = None
    visits: float | None = None
    q: float | None = None
    value: float | None = None
    judge: Any = None
    reflections: Any = None  # texts or records; ids of a reflection store are resolved by the caller
    response: str = ""  # the policy's reply that proposed this step
    screenshot: str | None = None  # relative to the task folder, checked by the caller
    extra: dict[str, Any] = field(default_factory=dict)
    chosen: bool = False
    children: list[str] = field(default_factory=list)
    depth: int = 0
    x: float = 0.0
    y: float = 0.0

    @property
    def radius(self) -> float:
        visits = self.visits if self.visits and self.visits > 0 else 0.0
        return min(24.0, 6.0 + 3.0 * math.sqrt(visits))

    @property
    def color(self) -> str:
        """Red (-1) through yellow (0) to green (+1); grey when the node was never evaluated."""
        # Q of a never-visited child is its initial 0, not a judgement: grey, like no value at all.
        v = self.value if self.value is not None else (self.q if self.visits else None)
        if v is None:
            return "#9aa0a6"
        hue = max(0.0, min(1.0, (v + 1) / 2)) * 120
        return f"hsl({hue:.0f}, 70%, 45%)"


@dataclass
class Tree:
    nodes: list[TreeNode]  # depth-first order from the roots
    width: float
    height: float
    meta: dict[str, Any]  # top-level fields other than the nodes (budget, iterations, ...)
    problems: list[str]

    @property
    def by_id(self) -> dict[str, TreeNode]:
        return {n.id: n for n in self.nodes}

    def edges(self) -> list[tuple[TreeNode, TreeNode]]:
        index = self.by_id
        return [(index[n.parent], n) for n in self.nodes if n.parent is not None and n.parent in index]


def _first(raw: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if name in raw and raw[name] is not None:
            return raw[name]
    return None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value) if isinstance(value, str) else None
        except ValueError:
            return None
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _flatten(raw: Any, parent: str | None, out: list[tuple[dict[str, Any], str | None]]) -> None:
    """Nested `children` lists become a flat list of (node, parent id)."""
    if not isinstance(raw, dict):
        return
    out.append((raw, parent))
    children = raw.get("children")
    if isinstance(children, list) and any(isinstance(c, dict) for c in children):
        own = _first(raw, _ID)
        own_id = str(own) if own is not None else f"#{len(out) - 1}"
        raw.setdefault("id", own_id)
        for child in children:
            _flatten(child, own_id, out)


def _raw_nodes(doc: Any) -> tuple[list[tuple[dict[str, Any], str | None]], dict[str, Any]]:
    if isinstance(doc, list):
        items, meta = doc, {}
    elif isinstance(doc, dict) and isinstance(doc.get("nodes"), list):
        items, meta = doc["nodes"], {k: v for k, v in doc.items() if k != "nodes"}
    elif isinstance(doc, dict) and isinstance(doc.get("root"), dict):
        items, meta = [doc["root"]], {k: v for k, v in doc.items() if k != "root"}
    elif isinstance(doc, dict):
        items, meta = [doc], {}
    else:
        return [], {}
    flat: list[tuple[dict[str, Any], str | None]] = []
    for item in items:
        _flatten(item, None, flat)
    return flat, meta


def _chosen_ids(meta: dict[str, Any], nodes: list[TreeNode]) -> set[str]:
    path = _first(meta, _CHOSEN_TOP)
    if not isinstance(path, list) or not path:
        return set()
    index = {n.id: n for n in nodes}
    as_ids = [str(p) for p in path if not isinstance(p, dict | list)]
    if as_ids and all(p in index for p in as_ids):
        # The path may leave out the root (and, after the search root advanced, its ancestors).
        chosen_ids = set(as_ids)
        node: TreeNode | None = index[as_ids[0]]
        while node is not None and node.parent is not None:
            chosen_ids.add(node.parent)
            node = index.get(node.parent)
        return chosen_ids
    # A path of actions: walk down from the root matching each action text.
    chosen: set[str] = set()
    children: dict[str | None, list[TreeNode]] = {}
    for n in nodes:
        children.setdefault(n.parent, []).append(n)
    roots = children.get(None, [])
    if len(roots) != 1:
        return set()
    current = roots[0]
    chosen.add(current.id)
    for step in path:
        text = action_text(step)
        nxt = next((c for c in children.get(current.id, []) if c.action == text), None)
        if nxt is None:
            break
        chosen.add(nxt.id)
        current = nxt
    return chosen


def parse_tree(doc: Any) -> Tree:
    """Normalize a tree.json document; never raises on odd content (problems are listed)."""
    flat, meta = _raw_nodes(doc)
    problems: list[str] = []
    nodes: list[TreeNode] = []
    seen: set[str] = set()
    for index, (raw, nested_parent) in enumerate(flat):
        ident = _first(raw, _ID)
        node_id = str(ident) if ident is not None else f"#{index}"
        if node_id in seen:
            problems.append(f"node {node_id!r} appears twice; the second is shown as #{index}")
            node_id = f"#{index}"
        seen.add(node_id)
        parent = _first(raw, _PARENT)
        parent_id = nested_parent if nested_parent is not None else (str(parent) if parent is not None else None)
        action = _first(raw, _ACTION)
        actions = action if isinstance(action, list) else ([] if action is None else [action])
        shot = _first(raw, _SHOT)
        response = _first(raw, _RESPONSE)
        nodes.append(TreeNode(
            id=node_id,
            parent=parent_id,
            action="\n".join(action_text(a) for a in actions),
            points=[p for a in actions for p in action_points(a)],
            prior=_num(_first(raw, _PRIOR)),
            visits=_num(_first(raw, _VISITS)),
            q=_num(_first(raw, _Q)),
            value=_num(_first(raw, _VALUE)),
            judge=_first(raw, _JUDGE),
            reflections=_first(raw, _REFLECT),
            response=response if isinstance(response, str) else "",
            screenshot=shot if isinstance(shot, str) and shot else None,
            extra={k: v for k, v in raw.items() if k not in _KNOWN},
            chosen=bool(_first(raw, _CHOSEN_NODE)),
        ))
    index = {n.id: n for n in nodes}
    for n in nodes:
        if n.parent is not None and (n.parent not in index or n.parent == n.id):
            problems.append(f"node {n.id!r}: parent {n.parent!r} is not in the tree; shown as a root")
            n.parent = None
    chosen = _chosen_ids(meta, nodes)
    for n in nodes:
        n.chosen = n.chosen or n.id in chosen
    ordered = _layout(nodes, problems)
    width = max((n.x for n in ordered), default=0) + MARGIN
    height = max((n.y for n in ordered), default=0) + MARGIN
    shown_meta = {k: v for k, v in meta.items() if k not in _META_HIDDEN}
    return Tree(nodes=ordered, width=width, height=height, meta=shown_meta, problems=problems)


def _layout(nodes: list[TreeNode], problems: list[str]) -> list[TreeNode]:
    """Leaves on consecutive columns in depth-first order, parents centred over their children."""
    kids: dict[str | None, list[TreeNode]] = {}
    for n in nodes:
        kids.setdefault(n.parent, []).append(n)
    for n in nodes:
        n.children = [c.id for c in kids.get(n.id, [])]
    leaves = sum(1 for n in nodes if not n.children)
    x_step = max(MIN_X_STEP, min(MAX_X_STEP, TARGET_WIDTH / max(1, leaves)))
    ordered: list[TreeNode] = []
    column = 0
    visited: set[str] = set()
    # Iterative DFS (trees can be deep); a cycle cannot occur since every parent link points to an
    # existing node and roots are the entry points, but a parent loop without a root is caught below.
    for root in kids.get(None, []):
        stack: list[tuple[TreeNode, int, bool]] = [(root, 0, False)]
        while stack:
            node, depth, done = stack.pop()
            if done:
                children = [c for c in kids.get(node.id, []) if c.id in visited]
                if children:
                    node.x = (children[0].x + children[-1].x) / 2
                continue
            if node.id in visited:
                continue
            visited.add(node.id)
            node.depth = depth
            node.y = MARGIN + depth * Y_STEP
            ordered.append(node)
            children = kids.get(node.id, [])
            if not children:
                node.x = MARGIN + column * x_step
                column += 1
            stack.append((node, depth, True))
            for child in reversed(children):
                stack.append((child, depth + 1, False))
    unreached = [n for n in nodes if n.id not in visited]
    if unreached:
        problems.append(f"{len(unreached)} node(s) are in a parent cycle and are not drawn")
    return ordered
