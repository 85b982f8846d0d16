"""The search tree: nodes, PUCT selection, running-mean backup, the best-child rule, tree.json.

A node is the state reached by its path of steps from the root. Statistics follow ExACT: a node's
`visits` is N(s, a) for the edge into it (and N(s) for its state), `q` is Q(s, a), `prior` is
P(s, a), `value` is V(s) from the value function (evaluated once, when the node is first reached).
Children are lazy: created with their prior at expansion, executed only when first selected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Node:
    id: int
    parent: Node | None = None
    actions: list[Any] = field(default_factory=list)  # this step's actions ([] for the root)
    key: str = ""
    prior: float = 1.0
    count: int = 0  # policy samples that proposed this step
    response: str = ""
    depth: int = 0
    visits: int = 0
    q: float = 0.0
    value: float | None = None
    executed: bool = False  # the transition ran and the state was observed
    expanded: bool = False
    terminal: str | None = None  # why no children: "done", "fail", "max_depth", "no_valid_action"
    children: list[Node] = field(default_factory=list)
    judge: dict[str, Any] | None = None
    screenshot: str | None = None
    reflections: list[int] = field(default_factory=list)
    iteration: int | None = None
    error: str | None = None
    restore: dict[str, Any] | None = None  # how the parent's state was reached: hit/replay/fork/fresh, seconds
    obs: Any = None  # PreparedObservation of this state (memory only)
    a11y_text: str = ""  # the state's accessibility table (memory only; reflection and retrieval)

    def path(self) -> list[Node]:
        """Root .. self."""
        out, node = [], self
        while node is not None:
            out.append(node)
            node = node.parent
        return out[::-1]

    def action_path(self) -> list[Any]:
        """Every action from the start state to this node's state."""
        return [a for n in self.path()[1:] for a in n.actions]


def c_at(schedule: str, c: float, c_end: float, i: int, n: int) -> float:
    """PUCT constant at iteration i of n: constant c, or cosine from c down to c_end
    (c * cos(arccos(c_end / c) * i / n); with c = 1 that is ExACT's cos(arccos(0.1) * i / n))."""
    if schedule == "constant" or c <= 0 or n <= 0:
        return c
    ratio = max(-1.0, min(1.0, c_end / c))
    return c * math.cos(math.acos(ratio) * min(i, n) / n)


def puct(q: float, prior: float, parent_visits: int, child_visits: int, c: float) -> float:
    """Q + c*P when N(s) = 0, else Q + c*P*sqrt(N(s)) / (1 + N(s, a))."""
    if parent_visits == 0:
        return q + c * prior
    return q + c * prior * math.sqrt(parent_visits) / (1 + child_visits)


def select_child(node: Node, c: float) -> Node:
    """argmax PUCT over the children; ties go to the earlier child (higher count)."""
    best, best_score = node.children[0], -math.inf
    for child in node.children:
        score = puct(child.q, child.prior, node.visits, child.visits, c)
        if score > best_score:
            best, best_score = child, score
    return best


def select(root: Node, c: float) -> Node:
    """Walk down by PUCT to the first node not yet executed, or to an executed node with no
    children (terminal or not expandable), which is then re-backed-up."""
    node = root
    while node.executed and node.children:
        node = select_child(node, c)
    return node


def backup(leaf: Node, value: float) -> None:
    """Undiscounted running mean on every edge from the root to the leaf: Q = (N*Q + v) / (N + 1)."""
    for node in leaf.path():
        node.q = (node.visits * node.q + value) / (node.visits + 1)
        node.visits += 1


def best_child(node: Node) -> Node | None:
    """Prefer evaluated children, then more visits, then higher Q."""
    evaluated = [c for c in node.children if c.value is not None]
    if not evaluated:
        return None
    return max(evaluated, key=lambda c: (c.visits, c.q))


def best_path(root: Node) -> list[Node]:
    """Follow the best child from `root` while one is evaluated (root excluded)."""
    out, node = [], root
    while (child := best_child(node)) is not None:
        out.append(child)
        node = child
    return out


class Tree:
    def __init__(self) -> None:
        self.root = Node(0, executed=True)
        self.nodes: dict[int, Node] = {0: self.root}
        self.search_root = self.root  # moves down on root advance

    def add_child(self, parent: Node, actions: list[Any], key: str, *, prior: float, count: int, response: str) -> Node:
        node = Node(len(self.nodes), parent, list(actions), key, prior, count, response, depth=parent.depth + 1)
        self.nodes[node.id] = node
        parent.children.append(node)
        return node

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root.id,
            "search_root": self.search_root.id,
            "nodes": [node_json(n) for n in self.nodes.values()],
        }


def node_json(n: Node) -> dict[str, Any]:
    return {
        "id": n.id,
        "parent": n.parent.id if n.parent else None,
        "depth": n.depth,
        "actions": n.actions,
        "prior": round(n.prior, 6),
        "count": n.count,
        "visits": n.visits,
        "q": round(n.q, 6),
        "value": n.value,
        "executed": n.executed,
        "expanded": n.expanded,
        "terminal": n.terminal,
        "iteration": n.iteration,
        "children": [c.id for c in n.children],
        "judge": n.judge,
        "screenshot": n.screenshot,
        "reflections": n.reflections,
        "response": n.response,
        "error": n.error,
        "restore": n.restore,
    }
