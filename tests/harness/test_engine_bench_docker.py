"""`bench engine --provider docker`: the scripted desktop model (every role tree search asks for,
read from prompts built by the agents' own prompt code), and a small rmcts bench on real
sandboxes (marked docker)."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from benchmarks.loader import load_suite, resolve_benchmark
from harness.bench.desktop_model import DETOUR, DesktopModel, Plan, plans
from harness.bench.engine import METRIC_KEYS, EngineBenchOptions, run_engine_bench
from harness.bench.engine_docker import DEFAULT_DOMAINS, agent_options_for, select_tasks
from harness.llm.sim import SimConfig, SimServer
from search import prompts as agent_prompts
from search.mcts import prompts as P
from search.mcts.value import context_content
from search.parsing import parse_reply
from search.prompt_agent import PreparedObservation, build_messages

BACKUP = "8b074e51-0a4c-561a-bf45-eff8894314bf"  # chmod +x, run it, DONE
INFEASIBLE = "fffcd193-d536-5ab7-8272-6bd335fec796"  # ["FAIL"]
OBS = PreparedObservation(table="tag\tname\ttext\nterminal\tTerminal\tuser@desktop:~$")


def task(task_id: str) -> tuple[str, list[str]]:
    from benchmarks.loader import load_suite, resolve_benchmark

    t = load_suite(resolve_benchmark("desktop-basics"), ids=[task_id]).tasks[0]
    return t.instruction, list(t.solution)


def policy_request(instruction: str, replies: list[str], n: int) -> dict:
    system = agent_prompts.task_prompt(agent_prompts.system_prompt("screenshot_a11y_tree", "pyautogui"), instruction)
    messages = build_messages(system, [(OBS, r) for r in replies], OBS, "screenshot_a11y_tree")
    return {"model": "sim-model", "n": n, "messages": messages}


def value_request(instruction: str, actions: list[str], ask: str, *, n: int = 1, extra: str | None = None) -> dict:
    content = context_content(instruction, [(OBS, [a]) for a in actions], OBS, images=False, detail="high")
    tail = [{"type": "text", "text": extra}] if extra else []
    return {"n": n, "messages": [{"role": "system", "content": [{"type": "text", "text": "judge"}]},
                                 {"role": "user", "content": [*content, *tail, {"type": "text", "text": ask}]}]}


def code(reply: str) -> list[str]:
    parsed = parse_reply(reply, "pyautogui")
    assert parsed.ok, reply
    return parsed.actions


# ---- the model, without Docker -------------------------------------------------------------------


def test_plan_counts_solution_actions_in_order_and_skips_detours() -> None:
    plan = Plan.of(["a = 1", "b = 2", "c = 3", "DONE"])
    assert plan.body == ("a = 1", "b = 2", "c = 3") and plan.terminal == "DONE"
    assert [plan.verdict(p) for p in ([], ["a = 1"], ["a = 1", "b = 2"], ["a=1", "b=2", "c=3"])] == ["D", "C", "B", "A"]
    assert plan.progress(["b = 2", "a = 1"]) == 1  # out of order: only the first counts
    assert plan.progress([DETOUR, "a = 1", DETOUR, "b  =  2"]) == 2  # detours skipped, formatting ignored
    assert plan.verdict(["a = 1", "DONE"]) == "E"  # stopped too early
    assert plan.verdict(["a = 1", "b = 2", "c = 3", "DONE"]) == "A"
    assert plan.verdict(["a = 1", "b = 2", "c = 3", "FAIL"]) == "E"
    infeasible = Plan.of(["FAIL"])
    assert [infeasible.verdict(p) for p in ([], [DETOUR], ["FAIL"], ["DONE"])] == ["D", "D", "A", "E"]


def test_policy_proposes_the_next_solution_action_and_a_detour_from_the_replies_on_the_path() -> None:
    instruction, solution = task(BACKUP)
    model = DesktopModel("desktop-basics")
    first = model(policy_request(instruction, [], 20))
    assert len(first) == 20
    assert [code(r) for r in first].count([solution[0]]) == 15
    assert [code(r) for r in first].count([DETOUR]) == 5
    # A detour on the path does not count as progress; the solution's first action does.
    after = model(policy_request(instruction, [first[3], first[0]], 20))
    assert code(after[0]) == [solution[1]] and code(after[3]) == [DETOUR]
    done = model(policy_request(instruction, [first[0], after[0]], 1))
    assert len(done) == 1 and code(done[0]) == ["DONE"]
    # The infeasible task says FAIL at once.
    fail_instruction, fail_solution = task(INFEASIBLE)
    assert fail_solution == ["FAIL"]
    assert code(model(policy_request(fail_instruction, [], 4))[0]) == ["FAIL"]
    assert code(model(policy_request("Water the plants on the balcony.", [], 1))[0]) == ["FAIL"]


def test_value_judges_and_debaters_score_the_actions_shown_on_the_path() -> None:
    instruction, solution = task(BACKUP)
    model = DesktopModel("desktop-basics")

    def single(actions: list[str]) -> str | None:
        return P.parse_evaluation(model(value_request(instruction, actions, P.SINGLE_ASK, n=3))[2])

    def judge(actions: list[str]) -> str | None:
        replies = model(value_request(instruction, actions, P.JUDGE_ASK, n=3, extra=P.opinions(("a", "x"), ("b", "y"))))
        assert len(replies) == 3
        return P.parse_status(replies[0])

    assert [single(p) for p in ([DETOUR], [solution[0]], [solution[0], DETOUR, solution[1]])] == ["D", "B", "A"]
    assert [judge(p) for p in ([DETOUR], [solution[0]], solution[:2], [*solution[:2], "DONE"])] == ["D", "B", "A", "A"]
    assert judge([solution[0], "DONE"]) == "E"
    fail_instruction, _ = task(INFEASIBLE)
    assert judge([DETOUR]) == "D" and judge(["FAIL"]) == "E"  # backup task: FAIL is wrong
    assert P.parse_status(model(value_request(fail_instruction, ["FAIL"], P.JUDGE_ASK))[0]) == "A"
    for ask in (P.SUPPORT_ASK, P.OPPOSE_ASK, P.EXPECT_ASK):
        (reply,) = model(value_request(instruction, [solution[0]], ask))
        assert "EVALUATION" not in reply and "STATUS CODE" not in reply and "ROLE:" not in reply and "```" not in reply


def test_every_suite_task_is_found_and_its_solution_replays_to_a_complete_verdict() -> None:
    known = plans("desktop-basics")
    assert len(known) == len(load_suite(resolve_benchmark("desktop-basics")).tasks)  # every task has a plan
    model = DesktopModel("desktop-basics")
    for instruction, plan in known.items():
        taken: list[str] = []
        for _ in range(len(plan.body) + 1):
            reply = model(policy_request(instruction, [f"```python\n{a}\n```" for a in taken], 1))[0]
            (action,) = code(reply)
            if action in ("DONE", "FAIL"):
                break
            taken.append(action)
        assert action == plan.terminal and list(taken) == list(plan.body), instruction
        final = model(value_request(instruction, [*taken, action], P.JUDGE_ASK))[0]
        assert P.parse_status(final) == "A", instruction


async def test_llm_sim_serves_the_model_by_its_spec_with_n_choices_and_embeddings() -> None:
    instruction, solution = task(BACKUP)
    async with SimServer(SimConfig(policy="harness.bench.desktop_model:policy")) as sim, aiohttp.ClientSession() as http:
        async with http.post(f"{sim.url}/chat/completions", json=policy_request(instruction, [], 8)) as r:
            body = await r.json()
        async with http.post(f"{sim.url}/embeddings", json={"model": "sim-embed", "input": ["a lesson"]}) as r:
            vectors = await r.json()
    choices = [c["message"]["content"] for c in body["choices"]]
    assert [code(c) for c in choices] == [[solution[0]]] * 3 + [[DETOUR]] + [[solution[0]]] * 3 + [[DETOUR]]
    assert len(vectors["data"][0]["embedding"]) == 256


def test_docker_bench_runs_the_short_domains_and_shows_the_model_the_whole_path() -> None:
    path, tasks = select_tasks("desktop-basics", 16, DEFAULT_DOMAINS)
    assert path.name == "desktop-basics" and len(tasks) == 16
    assert {t.domain for t in tasks} == {"os", "text_editor"} and all(t.solution for t in tasks)
    options, max_steps = agent_options_for("rmcts", tasks, {"iterations": 7})
    longest = max(len(t.solution) for t in tasks)
    assert options["max_trajectory_length"] >= max_steps > longest and options["value_context"] >= max_steps
    assert options["iterations"] == 7
    assert "value_context" not in agent_options_for("prompt", tasks, None)[0]
    with pytest.raises(Exception, match="only 17 tasks"):
        select_tasks("desktop-basics", 18, DEFAULT_DOMAINS)


# ---- on real sandboxes ----------------------------------------------------------------------------


@pytest.mark.docker
async def test_small_rmcts_bench_on_docker_solves_every_task_with_branching_trees(
        desktop_image: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    r = await run_engine_bench(EngineBenchOptions(
        sessions=2, tasks=3, agent="rmcts", provider="docker", agent_options={"iterations": 8},
        screen=(1280, 800), work_dir=work))
    assert set(METRIC_KEYS) <= r.keys()
    assert r["failures"] == 0 and r["tasks_done"] == 3, r
    assert r["utilization"] is None and r["tasks_per_hour"] > 0 and r["llm_calls_per_s"] > 0
    assert r["steps"] >= 3 and r["cpu_ms_per_step"] > 0 and r["loop_lag_samples"] > 10
    assert 1 <= r["containers_peak"] <= 2 and r["containers_left"] == 0
    trees = sorted((work / "run").glob("os/*/tree.json"))
    assert [t.parent.name for t in trees] == sorted(r["tasks"])
    branched = 0
    for path in trees:
        tree = json.loads(path.read_text())
        assert tree["stop_reason"] == "early_stop" and tree["outcome"]["final_replay_score"] == 1.0
        branched += sum(1 for n in tree["nodes"] if len(n["children"]) > 1)
        # The model saw every action of the path: the early stop is on the whole solution.
        assert tree["final"] and all(n["executed"] for n in tree["final"])
    assert branched > 0
    assert r["search"]["nodes_with_2plus_children"] == branched
