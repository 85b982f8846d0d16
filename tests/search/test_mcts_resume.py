"""A tree search cut off mid-task resumes from its log: the tree is rebuilt from search.jsonl with no
model call and no sandbox, and only the work that was not logged runs again."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
from mcts_rig import ScriptedModel, run_suite, search_log, tree_json, write_suite

from harness.base.jsonl import parse_jsonl
from harness.llm.sim import SimConfig, SimServer
from search.mcts.persist import rebuild
from search.mcts.tree import Tree

TASK = "sim-00001"


async def test_a_cut_search_resumes_from_its_log_without_asking_the_model_again(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite", [1])
    run_dir = tmp_path / "run"
    model = ScriptedModel(block_policy_after=3)  # root + 2 iterations expand; the 3rd hangs
    async with SimServer(SimConfig(policy=model)) as server:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: run_suite(suite, run_dir, server.url, "rmcts", options={"iterations": 12}))
                await model.blocked.wait()
                tg.cancel_scope.cancel()  # the run stops mid-iteration, like a killed process
        model.release.set()
        assert not (run_dir / "sim" / TASK / "result.json").exists()
        cut = search_log(run_dir, TASK)
        assert [x["event"] for x in cut] == ["root", "iteration", "iteration"]
        model.block_policy_after = None
        before = len(model.by_role("policy"))
        results = await run_suite(suite, run_dir, server.url, "rmcts", options={"iterations": 12})
        new_policy = model.by_role("policy")[before:]
    assert results[TASK]["score"] == 1.0
    outcome = tree_json(run_dir, TASK)["outcome"]
    assert outcome["rebuilt_iterations"] == 2
    # Only the unlogged iteration and the one after it asked for an expansion.
    assert outcome["llm"]["calls"]["policy"] == len(new_policy) == outcome["iterations"] - 2
    states = ["".join(p.get("text", "") for p in r["messages"][-1]["content"]) for r in new_policy]
    assert not any("state 0" in s for s in states)  # the root was not expanded again
    lines = search_log(run_dir, TASK)
    assert [x["i"] for x in lines if x["event"] == "iteration"] == list(range(outcome["iterations"]))
    assert lines[:3] == cut  # the new attempt's log continues the old one
    assert (run_dir / "sim" / TASK / "attempts" / "1" / "search.jsonl").is_file()
    for line in lines[:3]:
        assert (run_dir / "sim" / TASK / line["screenshot"]).is_file()


async def test_rebuilding_a_log_gives_back_the_same_tree_and_tolerates_a_torn_last_line(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite", [1])
    run_dir = tmp_path / "run"
    async with SimServer(SimConfig(policy=ScriptedModel())) as server:
        await run_suite(suite, run_dir, server.url, "mcts", options={"iterations": 12})
    data = (run_dir / "sim" / TASK / "search.jsonl").read_bytes()
    saved = {n["id"]: n for n in tree_json(run_dir, TASK)["nodes"]}
    tree = Tree()
    state = rebuild(tree, parse_jsonl(data + b'{"event": "iteration", "i": 9')[0], {}, with_image=False)
    assert state.stop is not None and state.stop["reason"] == "early_stop"
    assert set(tree.nodes) == set(saved)
    for node_id, node in tree.nodes.items():
        want = saved[node_id]
        assert (node.visits, round(node.q, 6), round(node.prior, 6), node.value, node.executed) == \
            (want["visits"], want["q"], want["prior"], want["value"], want["executed"])
        assert [c.id for c in node.children] == want["children"]
    assert json.loads(data.splitlines()[-1])["event"] == "stop"
