"""`--agent osworld:MODULE:CLASS` on simulated sandboxes: an OSWorld-interface class runs unchanged
(constructor from run.py's arguments, reset, synchronous predict in threads) and leaves OSWorld's
results files. The same claims on Docker sandboxes: tests/test_osworld_agent_docker.py."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import anyio
import pytest

from benchmarks.sim_suite import sim_task, write_sim_suite
from harness.base.errors import ConfigError
from harness.config import make_config
from harness.runner import build_agent, execute_run

AGENTS = Path(__file__).parent / "fixtures" / "osworld_agents"
NAME = "osworld:scripted_osworld_agent:ScriptedAgent"
OSWORLD_KEYS = ["step_num", "action_timestamp", "action", "response", "reward", "done", "info", "screenshot_file"]


def scripted_class():
    if str(AGENTS) not in sys.path:
        sys.path.insert(0, str(AGENTS))
    return importlib.import_module("scripted_osworld_agent").ScriptedAgent


def run(config: dict) -> int:
    return anyio.run(lambda: execute_run(make_config(config), show_summary=False))


def results(run_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in run_dir.glob("*/*/result.json")}


def test_osworld_class_scores_as_its_actions_deserve_on_sim(tmp_path: Path) -> None:
    suite = write_sim_suite(tmp_path / "suite", tasks=5, steps=3)
    tasks = [sim_task(i, steps=3) for i in range(5)]
    solution = [a for a in tasks[0]["solution"] if a != "DONE"]
    plans = {
        # one action per predict call, as most upstream agents answer
        tasks[0]["instruction"]: {"steps": [[a] for a in solution]},
        # all actions in one call: one step_num, three screenshots
        tasks[1]["instruction"]: {"steps": [[a for a in tasks[1]["solution"] if a != "DONE"]]},
        # WAIT and an early DONE: the goal is not reached
        tasks[2]["instruction"]: {"steps": [["WAIT"], ["DONE"]]},
        # a malformed computer_13 dict is a wasted step with its reason, then the solution
        tasks[3]["instruction"]: {"steps": [[{"action_type": "JUMP", "parameters": {}}],
                                            *[[a] for a in tasks[3]["solution"] if a != "DONE"]]},
        tasks[4]["instruction"]: {"raise": "the model is down"},
    }
    (tmp_path / "plans.json").write_text(json.dumps(plans))
    run_dir = tmp_path / "run"
    cls = scripted_class()
    cls.barrier, cls.max_in_predict, cls.seen = None, 0, []
    code = run({"benchmark": str(suite), "agent": NAME, "agent_path": str(AGENTS), "provider": "sim",
                "concurrency": 5, "run_dir": run_dir, "quiet": True, "max_steps": 6, "model": "scripted",
                "agent_options": {"plans": str(tmp_path / "plans.json"), "settle_s": 0, "eval_settle_s": 0,
                                  "predict_sleep": 0.2, "gate": 5}})
    assert code == 0
    got = results(run_dir)
    scores = {tid: r["score"] for tid, r in got.items()}
    assert scores == {"sim-00000": 1.0, "sim-00001": 1.0, "sim-00002": 0.0, "sim-00003": 1.0, "sim-00004": 0.0}
    assert "the model is down" in got["sim-00004"]["error"] and got["sim-00004"]["error"].startswith("agent:")
    assert cls.max_in_predict == 5  # five predicts blocked at once in worker threads
    # the constructor got run.py's arguments with its defaults; obs has upstream's keys
    assert all(keys == ["accessibility_tree", "instruction", "screenshot", "terminal"] and a11y and same
               for _, keys, a11y, same in cls.seen)

    folder = run_dir / "sim" / "sim-00001"
    lines = [json.loads(x) for x in (folder / "traj.jsonl").read_text().splitlines()]
    assert [list(x)[:8] for x in lines] == [OSWORLD_KEYS] * len(lines)
    assert [x["step_num"] for x in lines] == [1, 1, 1, 2]  # step_num counts predict calls, as upstream
    for x in lines:
        assert x["screenshot_file"].startswith(f"step_{x['step_num']}_{x['action_timestamp']}")
        assert (folder / x["screenshot_file"]).is_file()
    assert lines[-1]["action"] == "DONE" and lines[-1]["done"] is True and lines[-1]["info"]["done"] is True
    assert "reset (vm_ip=None)" in (folder / "runtime.log").read_text()

    bad = json.loads((run_dir / "sim" / "sim-00003" / "traj.jsonl").read_text().splitlines()[0])
    assert bad["action"] == "WAIT" and "JUMP" in bad["info"]["action_error"]


def test_constructor_options_are_checked_before_the_run(tmp_path: Path) -> None:
    (tmp_path / "plans.json").write_text("{}")
    base = {"benchmark": "desktop-basics", "agent": NAME, "agent_path": str(AGENTS), "model": "m1"}
    agent = build_agent(make_config({**base, "agent_options": {"plans": str(tmp_path / "plans.json"),
                                                               "temperature": 0.5}}))
    assert agent.spec.kwargs == {"model": "m1", "max_tokens": 1500, "top_p": 0.9, "temperature": 0.5,
                                 "action_space": "pyautogui", "observation_type": "screenshot_a11y_tree",
                                 "max_trajectory_length": 3, "plans": str(tmp_path / "plans.json")}
    assert agent.spec.runner["settle_s"] == 60.0 and agent.spec.runner["sleep_after_execution"] == 0.0
    with pytest.raises(ConfigError, match="does not take it"):
        build_agent(make_config({**base, "agent_options": {"plans": "x", "nonsense": 1}}))
    with pytest.raises(ConfigError, match="needs plans"):
        build_agent(make_config(base))
    with pytest.raises(ConfigError, match="conflicts with --model"):
        build_agent(make_config({**base, "agent_options": {"plans": "x", "model": "m2"}}))
    with pytest.raises(ConfigError, match="no class Nope"):
        build_agent(make_config({**base, "agent": "osworld:scripted_osworld_agent:Nope"}))
    with pytest.raises(ConfigError, match="cannot import"):
        build_agent(make_config({**base, "agent": "osworld:no_such_module_26:Agent"}))


def test_a_hung_predict_ends_at_the_task_deadline_and_its_instance_is_not_reused(tmp_path: Path) -> None:
    suite = write_sim_suite(tmp_path / "suite", tasks=2, steps=1)
    tasks = [sim_task(i, steps=1) for i in range(2)]
    plans = {t["instruction"]: {"steps": [[a] for a in t["solution"] if a != "DONE"]} for t in tasks}
    (tmp_path / "plans.json").write_text(json.dumps(plans))
    cls = scripted_class()
    cls.barrier, cls.max_in_predict, cls.seen, cls.instances = None, 0, [], 0
    run_dir = tmp_path / "run"
    code = run({"benchmark": str(suite), "agent": NAME, "agent_path": str(AGENTS), "provider": "sim", "model": "m",
                "concurrency": 1, "run_dir": run_dir, "quiet": True, "task_timeout": 2,
                "agent_options": {"plans": str(tmp_path / "plans.json"), "settle_s": 0, "eval_settle_s": 0,
                                  "predict_sleep": 20}})
    assert code == 0
    got = results(run_dir)
    assert all("timeout" in r["error"] for r in got.values()), got
    assert cls.instances == 2  # the abandoned instance (its thread still sleeping) was not handed to task 2
