"""Episodes: the conversations the three formats export, before any image is read.

An episode is the system prompt plus a list of turns; a turn is what the agent saw (a screenshot
file and/or an accessibility table) and what it answered. Example k of an episode is its first
k+1 turns with only the last answer trained. The system prompt is the one the attempt recorded
(system_prompt.txt: the prompt agent's, whatever its profile or prompts file, with a user-set
password masked; used only when its hash is the one the step recorded); without it, it is
rebuilt with the agents' own prompt code (search/prompts.py), and an attempt whose recorded
`system_sha256` says the model saw another one is skipped, not exported with the wrong prompt.

- exploratory: the search replayed (traversal.py); every answer at a judged state starts with the
  judges' reasoning, and backtracks are explicit `BACKTRACK k` answers;
- imitation: the answer path only, the policy's replies as they were;
- trajectory: each recorded attempt (traj.jsonl, moved-aside attempts too), for any agent.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from results.export.source import SkipTask, TaskFiles
from results.export.tokens import image_size
from results.export.traversal import (
    TNode,
    TreeData,
    add_log,
    best_path,
    exploratory_moves,
    imitation_moves,
    tree_from_doc,
    tree_from_log,
)
from search import prompts
from search.prompt_source import SYSTEM_PROMPT_FILE, sha256

FORMATS = ("exploratory", "imitation", "trajectories")
EVAL_HEADER = "STATE EVALUATION:"
_MARKER = re.compile(r"^\s*(STATUS CODE|EVALUATION)\s*:\s*[A-E]\W*\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass
class Obs:
    image: Path | None
    table: str | None
    note: str = ""  # said before the observation (e.g. after a backtrack)


@dataclass
class Turn:
    obs: Obs
    reply: str
    meta: dict[str, Any]


@dataclass
class Episode:
    task: TaskFiles
    kind: str
    system: str
    turns: list[Turn]
    attempt: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def code_of(actions: list[Any]) -> str:
    """An answer for recorded actions without a model reply (scripted agents)."""
    if actions and all(isinstance(a, str) and a in ("WAIT", "DONE", "FAIL") for a in actions):
        return "\n".join(f"```{a}```" for a in actions)
    body = "\n".join(a if isinstance(a, str) else str(a) for a in actions)
    return f"```python\n{body}\n```"


def system_text(task: TaskFiles, observation_type: str, screen: tuple[int, int]) -> str:
    s = task.run
    try:
        base = prompts.system_prompt(observation_type, s.action_space, screen_size=screen, password=s.password)
    except ValueError as e:
        raise SkipTask(f"cannot rebuild the agent's prompt: {e}") from e
    return prompts.task_prompt(base, task.instruction)


def _recorded_system(folder: Path, info: dict[str, Any], *, password_masked: bool) -> str | None:
    """The attempt's system_prompt.txt when its hash is the one the step recorded (an edited or
    swapped file is not trusted); None without a file, or when it predates password masking and
    the run set a password (the file may show it)."""
    try:
        text = (folder / SYSTEM_PROMPT_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    want = info.get("system_file_sha256")
    if want is None and password_masked:
        return None
    want = want if want is not None else info.get("system_sha256")
    if isinstance(want, str) and sha256(text) != want:
        return None
    return text


def attempt_system(task: TaskFiles, folder: Path, first: dict[str, Any], observation_type: str,
                   screen: tuple[int, int]) -> str | None:
    """The system prompt one attempt sent: its recorded file, else ours rebuilt when the step's
    `system_sha256` (if any) shows it is the same text; None when the model saw another one.
    Examples that show another observation than the agent's (say screenshots where it saw tables)
    get ours for what they show, as the export's notes say."""
    same_view = observation_type == task.run.observation_type
    info = first.get("info") if isinstance(first.get("info"), dict) else {}
    if same_view:
        recorded = _recorded_system(folder, info, password_masked=task.run.password_masked)
        if recorded is not None:
            return recorded
    rebuilt = system_text(task, observation_type, screen)
    if not same_view:
        return rebuilt
    seen = info.get("system_sha256")
    return rebuilt if not isinstance(seen, str) or seen == sha256(rebuilt) else None


def judge_text(node: TNode) -> str | None:
    """The judges' reasoning at a node: the reply whose verdict is the most common one, without
    its verdict line, and the value it led to."""
    value = (node.judge or {}).get("value")
    if not isinstance(value, dict) or node.value is None:
        return None
    letters = value.get("letters") if isinstance(value.get("letters"), list) else []
    if isinstance(value.get("verdicts"), dict):  # multi-agent debate: judge replies, both orders
        texts = [t for order in value["verdicts"].values() if isinstance(order, list) for t in order]
    else:  # single-agent debate
        texts = value.get("replies") if isinstance(value.get("replies"), list) else []
    texts = [t for t in texts if isinstance(t, str)]
    if not texts:
        return None
    pick = texts[0]
    counts = Counter(x for x in letters if x)
    if counts and len(letters) == len(texts):
        top = counts.most_common(1)[0][0]
        pick = texts[letters.index(top)]
    reasoning = _MARKER.sub("", pick).strip()
    return f"{EVAL_HEADER} {reasoning} [value {node.value:+.2f}]"


def _reply(node: TNode) -> str:
    return node.response.strip() or code_of(node.actions)


def _shot(task: TaskFiles, name: str | None) -> Path | None:
    return task.dir / name if name and "/" not in name and not name.startswith(".") else None


def load_tree(task: TaskFiles) -> TreeData:
    doc = task.tree_doc()
    lines = task.search_log()
    try:
        tree = tree_from_doc(doc) if doc is not None else tree_from_log(lines)
    except (KeyError, ValueError, TypeError) as e:
        raise SkipTask(f"search tree unusable ({e})") from e
    add_log(tree, lines)
    if not lines:
        tree.notes.append("no search.jsonl: accessibility tables missing")
    if not tree.final_path:
        steps = [t.get("info", {}).get("node") for t in task.traj() if isinstance(t.get("info"), dict)
                 and t["info"].get("action_index", 0) == 0]
        if steps and all(isinstance(s, int) and s in tree.nodes for s in steps):
            tree.final_path = steps
            tree.notes.append("final path taken from traj.jsonl")
        else:
            tree.final_path = best_path(tree)
            tree.notes.append("final path recomputed with the best-child rule")
    if any(tree.nodes[n].judge is None or "value" not in (tree.nodes[n].judge or {}) for n in tree.order()):
        tree.notes.append("some judged nodes have no judge outputs: their answers carry no evaluation")
    return tree


def _obs(task: TaskFiles, node: TNode, note: str = "") -> Obs:
    return Obs(_shot(task, node.screenshot), node.table, note)


def tree_episode(task: TaskFiles, kind: str, observation_type: str, screen: tuple[int, int]) -> Episode:
    tree = load_tree(task)
    if kind == "exploratory":
        moves, stats = exploratory_moves(tree)
    else:
        moves, stats = imitation_moves(tree), {}
    system = system_text(task, observation_type, screen)
    turns: list[Turn] = []
    note = ""
    for m in moves:
        here = tree.nodes[m.at]
        prefix = judge_text(here) if kind == "exploratory" else None
        meta: dict[str, Any] = {"kind": m.kind, "node": m.at}
        if m.kind == "backtrack":
            assert m.to is not None
            body = (f"This state is unlikely to lead to success; go back {m.steps} step(s) and try another "
                    f"action.\n```BACKTRACK {m.steps}```")
            meta.update(to=m.to, steps=m.steps)
        else:
            assert m.child is not None
            child = tree.nodes[m.child]
            body = _reply(child)
            meta.update(child=child.id, actions=child.actions)
        reply = f"{prefix}\n\n{body}" if prefix else body
        turns.append(Turn(_obs(task, here, note), reply, meta))
        note = f"You went back {m.steps} step(s) to an earlier state. " if m.kind == "backtrack" else ""
    if not turns:
        raise SkipTask("the search tree has no path to export")
    episode = Episode(task, kind, system, turns, meta={"nodes": len(tree.nodes), "executed": tree.executed_count(),
                                                        **stats})
    task.notes.extend(tree.notes)
    return episode


def _decisions(lines: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """traj lines grouped by model reply: a line with action_index > 0 continues the previous one."""
    out: list[list[dict[str, Any]]] = []
    for line in lines:
        info = line.get("info") if isinstance(line.get("info"), dict) else {}
        if out and isinstance(info.get("action_index"), int) and info["action_index"] > 0:
            out[-1].append(line)
        else:
            out.append([line])
    return out


def trajectory_episodes(task: TaskFiles, observation_type: str, screen: tuple[int, int], *,
                        final_only: bool = False, kind: str = "trajectory") -> list[Episode]:
    """Every attempt's steps (moved-aside attempts first), or the final attempt only."""
    folders: list[tuple[int | None, Path]] = [] if final_only else [(n, p) for n, p in task.attempt_dirs()]
    folders.append((task.result.get("attempts") if isinstance(task.result.get("attempts"), int) else None, task.dir))
    episodes = []
    refused: list[str] = []
    for number, folder in folders:
        final = folder == task.dir
        decisions = _decisions(task.traj(folder))
        if not decisions:
            continue
        system = attempt_system(task, folder, decisions[0][0], observation_type, screen)
        if system is None:
            refused.append("final attempt" if final else f"attempt {number}")
            continue
        before = _shot(task, "step_0.png") if final else folder / "step_0.png"
        prev: Path | None = before if before is not None and before.is_file() else None
        turns = []
        for group in decisions:
            first, last = group[0], group[-1]
            actions = [g.get("action") for g in group]
            reply = str(first.get("response") or "").strip() or code_of(actions)
            meta = {"kind": "step", "step": first.get("step_num"), "actions": actions,
                    "reward": last.get("reward"), "done": bool(last.get("done"))}
            turns.append(Turn(Obs(prev, None), reply, meta))
            name = last.get("screenshot_file")
            shot = folder / name if isinstance(name, str) and "/" not in name and name else None
            prev = shot if shot is not None and shot.is_file() else prev
        score = task.score if final else None
        episodes.append(Episode(task, kind, system, turns, attempt=number,
                                meta={"final_attempt": final, "score": score}))
    if refused:
        task.notes.append(f"{', '.join(refused)}: {SYSTEM_PROMPT_FILE} missing and the rebuilt system prompt "
                          "differs from the one the model saw (system_sha256): another prompts file or version")
    if not episodes:
        raise SkipTask(task.notes[-1] if refused else "no recorded steps (traj.jsonl empty or missing)")
    return episodes


def build_episodes(task: TaskFiles, fmt: str, observation_type: str) -> list[Episode]:
    screen = task.run.screen
    first = task.dir / "node_0.png"
    if not first.is_file():
        first = task.dir / "step_0.png"
    try:
        with open(first, "rb") as f:
            screen = image_size(f.read(64)) or screen  # the size the agent saw, not the configured one
    except OSError:
        pass
    if fmt == "trajectories":
        return trajectory_episodes(task, observation_type, screen)
    if task.has_tree():
        return [tree_episode(task, fmt, observation_type, screen)]
    if fmt == "imitation":  # agents without a tree: the recorded (final) trajectory is the path
        return trajectory_episodes(task, observation_type, screen, final_only=True, kind="imitation")
    raise SkipTask(f"no search tree (agent {task.run.agent}); exploratory needs tree.json or search.jsonl")
