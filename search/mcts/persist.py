"""search.jsonl (one line per iteration) and rebuilding a tree from it when a task resumes.

Every line carries what the iteration added to the tree (the node it executed, its value and judge
outputs, the children its expansion created with their priors, its accessibility table), the
running budget use, and the measurements (replayed actions, sandboxes held). Replaying the lines
in order rebuilds the same tree with no LLM call and no sandbox; the search then continues from
the next iteration, and sandboxes reach the states it needs by replay as usual. An iteration cut
off by the crash is simply run again (its LLM calls come from the run's response cache).
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from search.mcts.expansion import Candidate
from search.mcts.tree import Node, Tree, backup
from search.prompt_agent import PreparedObservation

log = logging.getLogger(__name__)

SEARCH_LOG = "search.jsonl"
TREE_FILE = "tree.json"


def screenshot_name(node: Node) -> str:
    return f"node_{node.id}.png"


def children_json(children: list[Node]) -> list[dict[str, Any]]:
    return [{"id": c.id, "actions": c.actions, "key": c.key, "prior": c.prior, "count": c.count, "response": c.response}
            for c in children]


def add_children(tree: Tree, parent: Node, candidates: list[Candidate]) -> list[Node]:
    return [tree.add_child(parent, c.actions, c.key, prior=c.prior, count=c.count, response=c.response)
            for c in candidates]


@dataclass
class Rebuilt:
    lines: int = 0
    iterations: int = 0  # iterations completed (the next one to run)
    used_tokens: int = 0
    used_cost_usd: float = 0.0
    elapsed_s: float = 0.0
    stop: dict[str, Any] | None = None
    screenshots: list[str] | None = None


def parse_lines(data: bytes) -> list[dict[str, Any]]:
    """The log's records; a torn last line (crash mid-append) is dropped."""
    out = []
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            break
        if isinstance(obj, dict):
            out.append(obj)
    return out


def _check_children(tree: Tree, children: list[dict[str, Any]] | None) -> None:
    """Children get the next ids in order; a log that says otherwise does not belong to this tree."""
    start = len(tree.nodes)
    ids = [int(c["id"]) for c in children or []]
    if ids != list(range(start, start + len(ids))):
        raise ValueError(f"children ids {ids[:3]}... do not continue the tree at {start}")
    for c in children or []:
        float(c["prior"]), int(c["count"]), c["actions"], c["key"]  # all present


def _restore_children(tree: Tree, parent: Node, children: list[dict[str, Any]]) -> None:
    for c in children:
        tree.add_child(parent, c["actions"], c["key"], prior=float(c["prior"]), count=int(c["count"]),
                       response=c.get("response", ""))
    parent.expanded = True


def _restore_state(node: Node, line: dict[str, Any], shots: dict[str, bytes], with_image: bool) -> None:
    node.executed = True
    node.a11y_text = line.get("table") or ""
    node.screenshot = line.get("screenshot")
    node.reflections = list(line.get("reflections") or [])
    png = shots.get(node.screenshot or "")
    image = base64.b64encode(png).decode("ascii") if (png and with_image) else None
    node.obs = PreparedObservation(image_b64=image, table=line.get("table"))


def rebuild(tree: Tree, lines: list[dict[str, Any]], shots: dict[str, bytes], *, with_image: bool) -> Rebuilt:
    """Apply logged lines to a fresh tree. Stops at the first line that does not fit (and says so)."""
    state = Rebuilt()
    for line in lines:
        try:
            event = line.get("event")
            if event == "root":
                _check_children(tree, line.get("children"))
                _restore_state(tree.root, line, shots, with_image)
                tree.root.terminal = line.get("terminal")
                _restore_children(tree, tree.root, line.get("children") or [])
            elif event == "iteration":
                node = tree.nodes[int(line["node"])]
                value = float(line["value"])
                _check_children(tree, line.get("children"))
                _restore_state(node, line, shots, with_image)
                node.value = value
                node.judge = line.get("judge")
                node.terminal = line.get("terminal")
                node.iteration = int(line["i"])
                node.error = line.get("error")
                node.restore = line.get("state_restore")
                if line.get("children") is not None:
                    _restore_children(tree, node, line["children"])
                backup(node, node.value)
                state.iterations = int(line["i"]) + 1
            elif event == "revisit":
                node, value = tree.nodes[int(line["node"])], float(line["value"])
                backup(node, value)
                state.iterations = int(line["i"]) + 1
            elif event == "advance":
                tree.search_root = tree.nodes[int(line["root"])]
            elif event == "stop":
                state.stop = line
            else:
                continue
        except (KeyError, ValueError, TypeError) as e:
            log.warning("search log: line %d does not fit the tree (%s); resuming from there", state.lines + 1, e)
            break
        state.lines += 1
        state.used_tokens = int(line.get("used_tokens", state.used_tokens))
        state.used_cost_usd = float(line.get("used_cost_usd", state.used_cost_usd))
        state.elapsed_s = float(line.get("elapsed_s", state.elapsed_s))
    return state
