"""mcts / rmcts end to end on simulated sandboxes: the real engine, pool, setup steps, evaluator, run
store and LLM client, with llm-sim playing the model (tests/mcts_rig.py). The task `chain-3-trap`:
the first action the model likes most leads to a dead end; only backtracking solves it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from mcts_rig import ScriptedModel, role_of, run_suite, search_log, tree_json, write_suite

from harness.llm.sim import SimConfig, SimServer
from vm.sim import Scenario

TASK = "sim-00001"
SC = Scenario.parse("chain-3-trap-s1")


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    return write_suite(tmp_path / "suite", [1])


async def test_prompt_agent_takes_the_tempting_trap_and_fails(suite: Path, tmp_path: Path) -> None:
    model = ScriptedModel()
    async with SimServer(SimConfig(policy=model)) as server:
        results = await run_suite(suite, tmp_path / "run", server.url, "prompt")
    assert results[TASK]["score"] == 0.0
    assert results[TASK]["last_action"] != "DONE"


@pytest.mark.parametrize("agent", ["mcts", "rmcts"])
async def test_tree_search_backtracks_out_of_the_trap_and_solves_the_task_within_budget(
        agent: str, suite: Path, tmp_path: Path) -> None:
    model = ScriptedModel()
    run_dir = tmp_path / "run"
    async with SimServer(SimConfig(policy=model)) as server:
        results = await run_suite(suite, run_dir, server.url, agent, options={"iterations": 12})
    result = results[TASK]
    assert result["score"] == 1.0 and result["error"] is None
    lines = search_log(run_dir, TASK)
    iterations = [x for x in lines if x["event"] == "iteration"]
    # The trap was tried first (most proposed: highest prior), judged a dead end, then abandoned.
    assert iterations[0]["actions"] == [SC.trap_action()] and iterations[0]["value"] == -1.0
    assert iterations[1]["actions"] == [SC.correct_action(0)]
    assert lines[-1] == {**lines[-1], "event": "stop", "reason": "early_stop"}
    assert len(iterations) <= 12
    # The final replay ran the solution in the clean home sandbox, recorded step by step.
    traj = [json.loads(x) for x in (run_dir / "sim" / TASK / "traj.jsonl").read_text().splitlines()]
    assert [t["action"] for t in traj] == SC.solution()[:3]
    assert all(t["info"]["replay"] == 1 for t in traj)
    assert result["steps"] == 3 and result["tokens"]["prompt"] > 0


async def test_each_expansion_is_one_request_with_n_completions(suite: Path, tmp_path: Path) -> None:
    model = ScriptedModel()
    async with SimServer(SimConfig(policy=model)) as server:
        await run_suite(suite, tmp_path / "run", server.url, "mcts", options={"iterations": 12})
        chat = [r for r in server.records if r.path.endswith("chat/completions")]
    expansions = [x for x in search_log(tmp_path / "run", TASK) if x["event"] in ("root", "iteration")
                  and x.get("children") is not None]
    policy = model.by_role("policy")
    assert len(policy) == len(expansions)  # ONE request per expansion ...
    assert [r.get("n") for r in policy] == [20] * len(policy)  # ... asking n = max(2*bf, 20) samples
    assert len(chat) == len(model.requests)  # the client sent one HTTP request per call (no fan-out)
    assert all(r.get("n") == 10 and r.get("temperature") == 0.7 for r in model.by_role("value"))
    assert all((r["temperature"], r["top_p"]) == (1.0, 0.9) for r in policy)


async def test_servers_without_n_get_single_requests_and_the_search_is_the_same(suite: Path, tmp_path: Path) -> None:
    runs = {}
    for no_n in (False, True):
        model = ScriptedModel()
        run_dir = tmp_path / f"run-{no_n}"
        async with SimServer(SimConfig(policy=model, no_n=no_n)) as server:
            results = await run_suite(suite, run_dir, server.url, "mcts", options={"iterations": 12})
            runs[no_n] = ([x.get("actions") for x in search_log(run_dir, TASK)],
                          sum(1 for r in server.records if r.path.endswith("chat/completions")), results[TASK]["score"])
    assert runs[True][0] == runs[False][0] and runs[True][2] == runs[False][2] == 1.0
    assert runs[True][1] > 5 * runs[False][1]  # n=20 and n=10 requests became single ones


async def test_multi_agent_debate_runs_debaters_and_both_judge_orders_concurrently(suite: Path, tmp_path: Path) -> None:
    model = ScriptedModel()
    async with SimServer(SimConfig(policy=model, latency_ms=150)) as server:
        await run_suite(suite, tmp_path / "run", server.url, "rmcts", options={"iterations": 12})
    outcome = tree_json(tmp_path / "run", TASK)["outcome"]
    # 4 calls of >= 150 ms per judgement in 2 concurrent rounds: wall ~ half the sum of the calls.
    assert outcome["value_calls_s"] >= 4 * 0.15 * outcome["iterations"]
    assert outcome["value_wall_s"] < 0.7 * outcome["value_calls_s"]
    judges = model.by_role("judge")
    assert len(judges) == 2 * outcome["iterations"]
    assert all(r["n"] == 3 and r["temperature"] == 1.0 for r in judges)
    orders = {text.split("OPINION 1 (")[1].split(")")[0] for r in judges
              for text in [json.dumps(r["messages"][-1]["content"])]}
    assert orders == {"supporting", "opposing"}  # both orderings were asked
    debaters = model.by_role("debate")
    assert all(r.get("n", 1) == 1 and r["temperature"] == 0.1 for r in debaters)


async def test_tree_json_and_search_log_describe_every_node_and_iteration(suite: Path, tmp_path: Path) -> None:
    model = ScriptedModel()
    run_dir = tmp_path / "run"
    async with SimServer(SimConfig(policy=model)) as server:
        await run_suite(suite, run_dir, server.url, "rmcts", options={"iterations": 12},
                        observation_type="screenshot_a11y_tree")
    tree = tree_json(run_dir, TASK)
    nodes = {n["id"]: n for n in tree["nodes"]}
    executed = [n for n in nodes.values() if n["executed"] and n["id"] != 0]
    assert executed and all(n["value"] is not None and n["judge"]["value"]["letters"] for n in executed)
    for n in executed:
        assert (run_dir / "sim" / TASK / n["screenshot"]).is_file()
        assert n["visits"] >= 1 and 0 < n["prior"] <= 1
    trap = next(n for n in executed if n["actions"] == [SC.trap_action()])
    assert trap["value"] == -1.0 and trap["q"] == -1.0 and trap["count"] == 12
    assert tree["final_path"] == [n["id"] for n in tree["final"]] and tree["stop_reason"] == "early_stop"
    lines = search_log(run_dir, TASK)
    iterations = [x for x in lines if x["event"] == "iteration"]
    assert [x["i"] for x in iterations] == list(range(len(iterations)))
    assert all({"replayed", "sandboxes", "value", "children", "used_tokens"} <= set(x) for x in iterations)
    # the judge sees screenshots when the observation has them
    judge = model.by_role("judge")[0]
    assert any(p.get("type") == "image_url" for p in judge["messages"][-1]["content"])


async def test_reflections_of_a_task_reach_the_policy_of_tasks_that_start_after_it(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite", [1, 2])
    model = ScriptedModel()
    run_dir = tmp_path / "run"
    async with SimServer(SimConfig(policy=model)) as server:
        results = await run_suite(suite, run_dir, server.url, "rmcts", options={"iterations": 12})
    assert {r["score"] for r in results.values()} == {1.0}
    with sqlite3.connect(run_dir / "reflections.sqlite") as db:
        rows = db.execute("SELECT task_id, reflection, embedding_model FROM reflections ORDER BY id").fetchall()
    assert rows and {r[0] for r in rows} <= {"sim-00001", "sim-00002"} and rows[0][2] == "sim-embed"
    first = [r for r in model.by_role("policy") if "s1)" in json.dumps(r["messages"][0])]
    second = [r for r in model.by_role("policy") if "s2)" in json.dumps(r["messages"][0])]
    assert first and second
    assert not any("REFLECTIONS:" in json.dumps(r) for r in first)  # nothing stored before task 1 ended
    shown = [r for r in second if "REFLECTIONS:" in json.dumps(r["messages"][-1])]
    assert shown, "task 2 started after task 1 ended: its policy prompts carry task 1's reflections"
    assert "ATTEMPTED ACTION" in json.dumps(shown[0]["messages"][-1]["content"][0])
    tree2 = tree_json(run_dir, "sim-00002")
    assert any(n["reflections"] for n in tree2["nodes"])
    reflection_calls = model.by_role("reflection")
    assert len(reflection_calls) == 2 * len(rows)  # two calls per reflection


async def test_concurrent_tasks_do_not_see_each_others_reflections(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite", [1, 2])
    model = ScriptedModel()
    async with SimServer(SimConfig(policy=model)) as server:
        results = await run_suite(suite, tmp_path / "run", server.url, "rmcts", concurrency=2, capacity=6,
                                  options={"iterations": 12}, embedding=False)
    assert {r["score"] for r in results.values()} == {1.0}
    assert not any("REFLECTIONS:" in json.dumps(r) for r in model.by_role("policy"))
    assert tree_json(tmp_path / "run", "sim-00001")["outcome"]["retrieval"] == "lexical"


async def test_budgets_stop_the_search_and_the_best_child_path_is_replayed(suite: Path, tmp_path: Path) -> None:
    model = ScriptedModel()
    async with SimServer(SimConfig(policy=model)) as server:
        results = await run_suite(suite, tmp_path / "a", server.url, "mcts", options={"iterations": 2})
        tokens = await run_suite(suite, tmp_path / "b", server.url, "mcts", options={"token_budget": 1})
    assert tree_json(tmp_path / "a", TASK)["stop_reason"] == "iterations"
    path = tree_json(tmp_path / "a", TASK)["final"]
    # After 2 iterations: the trap (-1) and the right click (0.2) are evaluated; the best child by
    # visits ties at 1, then Q picks the right click.
    assert [n["actions"] for n in path] == [[SC.correct_action(0)]]
    assert results[TASK]["score"] == 0.0 and results[TASK]["steps"] == 1
    # A failed final replay is replayed again in a fresh sandbox, 3 times in all, each recorded.
    assert tree_json(tmp_path / "a", TASK)["outcome"]["final_replays"] == 3
    traj = [json.loads(x) for x in (tmp_path / "a" / "sim" / TASK / "traj.jsonl").read_text().splitlines()]
    assert [t["info"]["replay"] for t in traj] == [1, 2, 3]
    assert tree_json(tmp_path / "b", TASK)["stop_reason"] == "tokens"
    assert tokens[TASK]["steps"] == 0


async def test_root_advance_commits_the_best_child(suite: Path, tmp_path: Path) -> None:
    model = ScriptedModel()
    async with SimServer(SimConfig(policy=model)) as server:
        results = await run_suite(suite, tmp_path / "run", server.url, "mcts",
                                  options={"iterations": 12, "root_advance_every": 2})
    advances = [x for x in search_log(tmp_path / "run", TASK) if x["event"] == "advance"]
    assert advances and results[TASK]["score"] == 1.0


def test_model_roles_are_told_apart() -> None:
    assert role_of({"messages": [{"role": "user", "content": "x EVALUATION: X"}]}) == "value"


async def test_forking_snapshots_gives_the_same_search_as_replaying(suite: Path, tmp_path: Path) -> None:
    runs = {}
    for mode in ("replay", "fork"):
        model = ScriptedModel()
        run_dir = tmp_path / f"run-{mode}"
        async with SimServer(SimConfig(policy=model)) as server:
            results = await run_suite(suite, run_dir, server.url, "rmcts",
                                      options={"iterations": 12, "state_restore": mode})
        lines = [x for x in search_log(run_dir, TASK) if x["event"] == "iteration"]
        nodes = {n["id"]: n for n in tree_json(run_dir, TASK)["nodes"]}
        runs[mode] = {"score": results[TASK]["score"], "lines": lines, "nodes": nodes,
                      "path": [(x["actions"], x["value"]) for x in lines]}
    assert runs["fork"]["path"] == runs["replay"]["path"] and runs["fork"]["score"] == runs["replay"]["score"] == 1.0
    kinds = {mode: [x["state_restore"]["kind"] for x in run["lines"]] for mode, run in runs.items()}
    assert "fork" in kinds["fork"] and "fork" not in kinds["replay"]
    # The restore each expansion used is in tree.json, where the report shows a node's fields.
    assert [n["restore"]["kind"] for n in runs["fork"]["nodes"].values() if n.get("restore")] == kinds["fork"]
    assert all(x["fork_off"] is None for x in runs["fork"]["lines"])
