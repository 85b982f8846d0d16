"""A search tree as the export needs it, and ExACT's linearization of the search into one episode.

The search order is the order in which nodes were executed and judged (`iteration` in tree.json,
one new node per iteration). Each iteration is a traversal from the root to its new node; the
episode replays them in order. Between consecutive traversals the agent backtracks from where
it stands to the deepest common ancestor of the two nodes, then moves forward to the next one.
The last traversal ends on the search's answer (its final path): if the search found it earlier
and kept exploring, one more traversal goes back to it.

Left out on purpose: revisits (a terminal node backed up again adds no state), and traversals into
a DONE/FAIL node that is not the answer (a fine-tuned agent's DONE ends its episode, so
"DONE, then back" would teach it to stop early). Both are counted in the move list's notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STOPS = ("DONE", "FAIL")


@dataclass
class TNode:
    id: int
    parent: int | None
    depth: int
    actions: list[Any]
    response: str
    value: float | None
    judge: dict[str, Any] | None
    screenshot: str | None
    iteration: int | None
    terminal: str | None
    executed: bool
    visits: int
    q: float
    count: int
    prior: float
    children: list[int] = field(default_factory=list)
    table: str | None = None  # from search.jsonl


@dataclass
class TreeData:
    nodes: dict[int, TNode]
    final_path: list[int]  # node ids, root excluded
    notes: list[str] = field(default_factory=list)

    def path(self, node_id: int) -> list[int]:
        """Root .. node (ids)."""
        out: list[int] = []
        cur: int | None = node_id
        while cur is not None:
            out.append(cur)
            cur = self.nodes[cur].parent
        return out[::-1]

    def order(self) -> list[int]:
        """Executed non-root nodes in the order the search executed them."""
        done = [n for n in self.nodes.values() if n.executed and n.parent is not None]
        if any(n.iteration is None for n in done):
            self.notes.append("some nodes have no iteration number: search order taken from node ids")
            return [n.id for n in sorted(done, key=lambda n: n.id)]
        return [n.id for n in sorted(done, key=lambda n: (n.iteration, n.id))]

    def executed_count(self) -> int:
        return sum(1 for n in self.nodes.values() if n.executed)


def _num(x: Any, default: float | None) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else default


def tree_from_doc(doc: dict[str, Any]) -> TreeData:
    """tree.json (search/mcts/tree.py node_json) -> TreeData. Raises ValueError if it does not hold."""
    nodes: dict[int, TNode] = {}
    for raw in doc["nodes"]:
        if not isinstance(raw, dict):
            raise ValueError("a node is not an object")
        nid = int(raw["id"])
        parent = raw.get("parent")
        actions = raw.get("actions")
        nodes[nid] = TNode(
            id=nid, parent=int(parent) if parent is not None else None, depth=int(raw.get("depth") or 0),
            actions=list(actions) if isinstance(actions, list) else [],
            response=str(raw.get("response") or ""), value=_num(raw.get("value"), None),
            judge=raw.get("judge") if isinstance(raw.get("judge"), dict) else None,
            screenshot=raw.get("screenshot") if isinstance(raw.get("screenshot"), str) else None,
            iteration=int(raw["iteration"]) if isinstance(raw.get("iteration"), int) else None,
            terminal=raw.get("terminal") if isinstance(raw.get("terminal"), str) else None,
            executed=bool(raw.get("executed", raw.get("value") is not None or parent is None)),
            visits=int(raw.get("visits") or 0), q=_num(raw.get("q"), 0.0) or 0.0, count=int(raw.get("count") or 0),
            prior=_num(raw.get("prior"), 0.0) or 0.0,
        )
    for n in nodes.values():
        if n.parent is not None:
            if n.parent not in nodes:
                raise ValueError(f"node {n.id}: parent {n.parent} is not in the tree")
            nodes[n.parent].children.append(n.id)
    roots = [n for n in nodes.values() if n.parent is None]
    if len(roots) != 1:
        raise ValueError(f"{len(roots)} root nodes; expected 1")
    final = doc.get("final_path")
    if not isinstance(final, list) and isinstance(doc.get("final"), list):
        final = [f.get("id") for f in doc["final"] if isinstance(f, dict)]
    data = TreeData(nodes, [])
    if isinstance(final, list) and all(isinstance(i, int) and i in nodes for i in final):
        data.final_path = list(final)
    return data


def tree_from_log(lines: list[dict[str, Any]]) -> TreeData:
    """Rebuild from search.jsonl with the search's own resume code (no screenshots needed)."""
    from search.mcts.persist import rebuild  # only when tree.json is unusable
    from search.mcts.tree import Tree, node_json

    tree = Tree()
    state = rebuild(tree, lines, {}, with_image=False)
    if state.lines == 0:
        raise ValueError("search.jsonl has no usable line")
    return tree_from_doc({"nodes": [node_json(n) for n in tree.nodes.values()]})


def add_log(tree: TreeData, lines: list[dict[str, Any]]) -> None:
    """Accessibility tables (and screenshots tree.json lacks) from the search log."""
    for line in lines:
        if line.get("event") not in ("root", "iteration"):
            continue
        node = tree.nodes.get(line.get("node")) if isinstance(line.get("node"), int) else None
        if node is None:
            continue
        if isinstance(line.get("table"), str):
            node.table = line["table"]
        if node.screenshot is None and isinstance(line.get("screenshot"), str):
            node.screenshot = line["screenshot"]


def best_path(tree: TreeData) -> list[int]:
    """The search's answer rule when no final path was recorded: evaluated children, most visits, Q."""
    out: list[int] = []
    node = next(n for n in tree.nodes.values() if n.parent is None)
    while True:
        kids = [tree.nodes[c] for c in node.children if tree.nodes[c].value is not None]
        if not kids:
            return out
        node = max(kids, key=lambda c: (c.visits, c.q))
        out.append(node.id)


@dataclass
class Move:
    """One decision of the linearized search: an assistant turn taken at state `at`."""

    kind: str  # "forward" (execute `child`'s actions), "backtrack" (to `to`), "stop" (the DONE/FAIL child)
    at: int
    child: int | None = None
    to: int | None = None
    steps: int = 0  # backtrack: how many steps back


def _is_stop(node: TNode) -> bool:
    return bool(node.actions) and all(isinstance(a, str) and a in STOPS for a in node.actions)


def exploratory_moves(tree: TreeData) -> tuple[list[Move], dict[str, int]]:
    """The search replayed as traversals with backtracks (see the module doc)."""
    stats = {"traversals": 0, "backtracks": 0, "skipped_terminal": 0}
    final = tree.final_path
    on_final = set(final)
    targets = []
    for nid in tree.order():
        node = tree.nodes[nid]
        if (node.terminal in ("done", "fail") or _is_stop(node)) and nid not in on_final:
            stats["skipped_terminal"] += 1
            continue
        targets.append(nid)
    if final and (not targets or targets[-1] != final[-1]):
        targets.append(final[-1])
    root = next(n.id for n in tree.nodes.values() if n.parent is None)
    moves: list[Move] = []
    cursor = root
    cursor_path = [root]
    for target in targets:
        path = tree.path(target)
        common = 0
        while common < min(len(path), len(cursor_path)) and path[common] == cursor_path[common]:
            common += 1
        lca = path[common - 1]
        if cursor != lca:
            moves.append(Move("backtrack", cursor, to=lca, steps=len(cursor_path) - common))
            stats["backtracks"] += 1
        for child in path[common:]:
            moves.append(Move("forward", tree.nodes[child].parent or root, child=child))
        cursor, cursor_path = target, path
        stats["traversals"] += 1
    if final and cursor == final[-1]:
        end = tree.nodes[cursor]
        if end.terminal not in ("done", "fail") and not _is_stop(end):
            stops = [tree.nodes[c] for c in end.children if _is_stop(tree.nodes[c])]
            if stops:  # the policy's own DONE/FAIL proposal at the answer state
                best = max(stops, key=lambda c: (c.count, c.prior))
                moves.append(Move("stop", cursor, child=best.id))
    return moves, stats


def imitation_moves(tree: TreeData) -> list[Move]:
    """The answer path only, forward (the flat baseline)."""
    moves, prev = [], next(n.id for n in tree.nodes.values() if n.parent is None)
    for nid in tree.final_path:
        moves.append(Move("forward", prev, child=nid))
        prev = nid
    return moves
