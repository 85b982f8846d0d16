"""`python -m harness bench export --tasks 1000`: how fast `export` turns a large run into training data.

It writes a run directory of `--tasks` finished rmcts tasks with the run store (run.json, journal,
attempt.json, traj.jsonl + step PNGs, result.json) and, per task, a search tree grown by the
search's own tree code (PUCT selection, running-mean backup, the best-child rule) over a synthetic
task: a hidden solution path of 3-6 steps, children that leave it are judged worse, the goal is
judged 1.0 and stops the search early, or the iteration budget does. tree.json, search.jsonl and
node screenshots have the search's layout and realistic sizes: multi-agent debate outputs, policy
replies with reasoning, accessibility tables of `--table-kb`, 1920x1080 PNGs of about `--png-kb`.
Then it exports the run (in this process, as the CLI does) and prints seconds, examples and bytes.
Screenshots come from a small pool of distinct images (writing 20,000 unique PNGs would make the
setup slow, not the export: the export reads every file either way).
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import math
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import orjson

from harness.base import aio
from results.export import ExportOptions, check_file, export_runs
from results.export.limits import Limits
from results.store import RunStore
from search.mcts.persist import children_json
from search.mcts.tree import Node, Tree, backup, best_path, c_at, node_json, select

_WORDS = ("window button menu file edit view panel dialog text field toolbar label icon tab list item "
          "cell sheet slide terminal folder open save close settings search").split()


def make_pngs(count: int, kb: int, seed: int) -> list[bytes]:
    """Distinct 1920x1080 screenshots of about `kb` KB: flat UI with a noisy region sized to `kb`."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    out = []
    side = int(math.sqrt(kb * 1024 / 3))  # random RGB hardly compresses: ~3 bytes per pixel
    for _ in range(count):
        img = Image.new("RGB", (1920, 1080), (rng.randrange(200, 250),) * 3)
        draw = ImageDraw.Draw(img)
        for _ in range(30):
            x, y = rng.randrange(1800), rng.randrange(1000)
            draw.rectangle((x, y, x + rng.randrange(40, 400), y + rng.randrange(20, 200)),
                           fill=tuple(rng.randrange(256) for _ in range(3)))
        img.paste(Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3)), (100, 100))
        buf = io.BytesIO()
        img.save(buf, "PNG", compress_level=1)
        out.append(buf.getvalue())
    return out


def _table(rng: random.Random, kb: int, state: str) -> str:
    rows = ["tag\tname\ttext\tclass\tdescription\tposition (top-left x&y)\tsize (w&h)", f"label\t{state}\t{state}\t\t\t(40, 40)\t(400, 20)"]
    size = sum(len(r) for r in rows)
    while size < kb * 1024:
        w = rng.sample(_WORDS, 3)
        row = f"push-button\t{w[0]} {w[1]}\t{w[2]}\t\t\t({rng.randrange(1900)}, {rng.randrange(1060)})\t(80, 24)"
        rows.append(row)
        size += len(row) + 1
    return "\n".join(rows)


def _reply(rng: random.Random, action: str) -> str:
    words = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(25, 60)))
    return f"The screen shows the {words}. The next step is to act on it.\n```python\n{action}\n```"


def _judge(rng: random.Random, value: float) -> dict[str, Any]:
    letter = "A" if value >= 1 else "B" if value > 0.6 else "C" if value > 0.3 else "D" if value > -0.5 else "E"

    def said(n: int) -> str:
        return " ".join(rng.choice(_WORDS) for _ in range(n))

    verdicts = {o: [f"Weighing both opinions: {said(40)}.\nSTATUS CODE: {letter}" for _ in range(3)]
                for o in ("oppose_first", "support_first")}
    return {"kind": "multi_debate", "letters": [letter] * 6,
            "debaters": {"support": said(70), "oppose": said(70)}, "verdicts": verdicts,
            "calls_s": {"support": 1.2, "oppose": 1.1, "oppose_first": 0.9, "support_first": 0.8}, "wall_s": 2.1}


def grow_tree(rng: random.Random, iterations: int, goal_depth: int) -> tuple[Tree, list[dict[str, Any]], Node | None]:
    """A search over a synthetic task with the search's own tree code; returns the tree, its
    search.jsonl lines and the early-stop node (if the goal was reached)."""
    tree = Tree()

    def expand(node: Node) -> None:
        k = max(2, int(4 * math.exp(-math.log(2) * node.depth / 3)))
        counts = sorted((rng.randrange(1, 12) for _ in range(k)), reverse=True)
        weights = [math.exp(math.log(c) / 5) for c in counts]
        right = rng.randrange(k) if node.key in ("good", "") else -1  # the child on the solution path
        for i, c in enumerate(counts):
            action = f"pyautogui.click({rng.randrange(1920)}, {rng.randrange(1080)})"
            child = tree.add_child(node, [action], action, prior=weights[i] / sum(weights), count=c,
                                   response=_reply(rng, action))
            child.key = "good" if i == right else "bad"
        node.expanded = True

    lines: list[dict[str, Any]] = []
    expand(tree.root)
    tree.root.key = ""
    lines.append({"event": "root", "node": 0, "children": children_json(tree.root.children), "terminal": None,
                  "table": None, "screenshot": "node_0.png", "reflections": []})
    early = None
    for i in range(iterations):
        leaf = select(tree.root, c_at("cosine", 1.0, 0.1, i, iterations))
        if leaf.executed:
            backup(leaf, leaf.value or 0.0)
            lines.append({"event": "revisit", "i": i, "node": leaf.id, "value": leaf.value})
            continue
        good = leaf.key == "good" and all(n.key == "good" for n in leaf.path()[1:])
        leaf.value = 1.0 if good and leaf.depth >= goal_depth else (0.3 + 0.6 * leaf.depth / goal_depth if good else
                                                                     rng.choice([-1.0, -0.2, 0.0, 0.2]))
        leaf.executed, leaf.iteration, leaf.screenshot = True, i, f"node_{leaf.id}.png"
        leaf.judge = {"value": _judge(rng, leaf.value)}
        if leaf.value < 1.0 and leaf.depth < goal_depth + 2:
            expand(leaf)
        backup(leaf, leaf.value)
        lines.append({"event": "iteration", "i": i, "node": leaf.id, "parent": leaf.parent.id if leaf.parent else None,
                      "depth": leaf.depth, "actions": leaf.actions, "value": leaf.value, "judge": leaf.judge,
                      "terminal": None, "error": None,
                      "children": children_json(leaf.children) if leaf.expanded else None,
                      "table": None, "screenshot": leaf.screenshot, "reflections": []})
        if leaf.value >= 1.0:
            early = leaf
            break
    return tree, lines, early


async def write_run(run_dir: Path, tasks: int, *, iterations: int, table_kb: int, pngs: list[bytes],
                    seed: int, concurrency: int = 16) -> None:
    config = {"agent": "rmcts", "observation_type": "screenshot_a11y_tree", "action_space": "pyautogui",
              "agent_options": {}, "screen_width": 1920, "screen_height": 1080, "benchmark": "bench-export"}
    store = await RunStore.open(run_dir, config, result_keys=[])
    limiter = anyio.Semaphore(concurrency)

    async def one(n: int) -> None:
        async with limiter:
            rng = random.Random(f"{seed}:{n}")
            domain, task_id = f"domain{n % 8}", f"task-{n:05d}"
            tree, lines, early = grow_tree(rng, iterations, rng.randrange(3, 7))
            for line in lines:  # the accessibility table of each state, as the search logs it
                if line["event"] in ("root", "iteration"):
                    line["table"] = _table(rng, table_kb, f"{task_id} node {line['node']}")
            path = early.path()[1:] if early else best_path(tree.root)
            attempt = await store.begin_attempt(domain, task_id)
            shots = {node.screenshot: pngs[(n * 31 + node.id) % len(pngs)]
                     for node in tree.nodes.values() if node.executed and node.screenshot}
            shots["node_0.png"] = pngs[n % len(pngs)]
            for name, png in shots.items():
                await attempt.write_file(name, png, durable=False)
            log = b"".join(orjson.dumps(x) + b"\n" for x in lines)
            await attempt.write_file("search.jsonl", log, durable=False)
            doc = {**tree.to_json(), "stop_reason": "early_stop" if early else "iterations",
                   "final_path": [x.id for x in path], "final": [node_json(x) for x in path]}
            await attempt.write_file("tree.json", orjson.dumps(doc, option=orjson.OPT_INDENT_2), durable=False)
            for step, node in enumerate(path, 1):
                await attempt.record_step({"step_num": step, "action": node.actions[0], "response": node.response,
                                           "info": {"node": node.id, "action_index": 0}},
                                          pngs[(n * 31 + node.id) % len(pngs)])
            await store.record_result(domain, task_id, {
                "score": 1.0 if early else 0.0, "steps": len(path), "tokens": {"prompt": 90_000, "completion": 9000},
                "instruction": f"Synthetic task {n}: reach the goal state of {task_id}."})

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.run_flusher)
            async with anyio.create_task_group() as work:
                for n in range(tasks):
                    work.start_soon(one, n)
            tg.cancel_scope.cancel()
    finally:
        await store.aclose()


def bench(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="export-bench-"))
    run_dir = root / "run"
    t0 = time.perf_counter()
    if not (run_dir / "run.json").exists():
        pngs = make_pngs(16, args.png_kb, args.seed)
        aio.run(functools.partial(write_run, run_dir, args.tasks, iterations=args.iterations, table_kb=args.table_kb,
                                  pngs=pngs, seed=args.seed))
    setup = time.perf_counter() - t0
    out = root / f"export-{args.format}-{args.images}.jsonl"
    options = ExportOptions(runs=(run_dir,), out=out, format=args.format, images=args.images,
                            min_score=args.min_score, max_examples=args.max_examples, workers=args.workers)
    report = export_runs(options)
    total = report.as_json()
    result: dict[str, Any] = {
        "tasks": args.tasks, "iterations": args.iterations, "format": args.format, "images": args.images,
        "setup_s": round(setup, 1), "export_s": report.seconds, "tasks_exported": report.tasks_exported,
        "tasks_skipped": len(report.skipped), "examples": total["examples"], "bytes": total["bytes"],
        "images_in_examples": total["images"], "tokens_estimate": total["tokens_estimate"],
        "examples_per_s": round(total["examples"] / report.seconds, 1) if report.seconds else None,
        "run_dir": str(run_dir), "out": str(out),
    }
    if args.check:
        t1 = time.perf_counter()
        checked = check_file(out, Limits(), allow_image_paths=args.images == "path")
        result["check_s"] = round(time.perf_counter() - t1, 2)
        result["check_ok"] = checked.ok
    if not args.keep and not args.dir:
        shutil.rmtree(root, ignore_errors=True)
        result["run_dir"] = result["out"] = "(removed; --keep to keep)"
    return result


def _main(args: argparse.Namespace) -> int:
    print(json.dumps(bench(args), indent=1))
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tasks", type=int, default=1000)
    p.add_argument("--iterations", type=int, default=20, help="search budget per task (the goal may stop it early)")
    p.add_argument("--format", default="exploratory", choices=["exploratory", "imitation", "trajectories"])
    p.add_argument("--images", default="path", choices=["data-url", "path"])
    p.add_argument("--min-score", type=float, default=None)
    p.add_argument("--max-examples", type=int, default=None)
    p.add_argument("--png-kb", type=int, default=120, help="screenshot size (a desktop PNG is 100-150 KB)")
    p.add_argument("--table-kb", type=int, default=6, help="accessibility table size per state")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", action="store_true", help="also time `export --check` on the output")
    p.add_argument("--dir", help="work folder (kept; a run already there is reused)")
    p.add_argument("--keep", action="store_true", help="keep the temp folder")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export speed: a synthetic run of rmcts trees exported to fine-tuning JSONL",
                       description=__doc__.splitlines()[0])
    add_arguments(p)
    p.set_defaults(func=_main)
