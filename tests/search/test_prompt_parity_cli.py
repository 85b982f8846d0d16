"""`python -m harness run --agent prompt --agent-option profile=osworld --agent-option prompts_from=...`
as a user runs it: sim sandboxes, llm-sim as the model. A bad prompts file stops the run with one
line before anything is written; a good one is recorded (with its hash) in run.json and the report."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import anyio

from benchmarks.sim_suite import write_sim_suite
from harness.llm.sim import SimConfig, SimServer
from results.report.build import build_report
from search.prompt_source import sha256
from search.tokens import counter_name

REPO = Path(__file__).resolve().parents[2]
STATE = re.compile(r"(chain-\S+) state (\w+)")
TEMPLATE = "CLI parity prompt for a11y and code; sudo password is {CLIENT_PASSWORD}."


def solve(request: dict[str, Any]) -> str:
    content = request["messages"][-1]["content"]
    text = "".join(p.get("text", "") for p in content) if isinstance(content, list) else content
    from vm.sim import Scenario

    name, state = STATE.search(text).groups()
    if state == "goal":
        return "```DONE```"
    return f"```python\n{Scenario.parse(name).solution()[int(state)]}\n```"


async def _run(tmp: Path, url: str, run_dir: Path, prompts_from: Path) -> Any:
    suite = write_sim_suite(tmp / "suite", tasks=1)
    pfile = tmp / "providers.json"
    pfile.write_text(json.dumps({"default_model": "sim-model",
                                 "endpoints": [{"kind": "openai-compatible", "base_url": url, "models": ["*"]}]}))
    with anyio.fail_after(120):
        return await anyio.run_process(
            [sys.executable, "-m", "harness", "run", "--benchmark", str(suite), "--agent", "prompt",
             "--provider", "sim", "--providers-file", str(pfile), "--observation-type", "a11y_tree",
             "--max-steps", "6", "--agent-option", "profile=osworld", "--agent-option", "settle_s=0",
             "--agent-option", f"prompts_from={prompts_from}", "--run-dir", str(run_dir), "-q"],
            cwd=REPO, check=False)


async def test_bad_prompts_file_exits_with_one_line_before_any_task_and_a_good_one_is_recorded(tmp_path: Path) -> None:
    requests: list[dict[str, Any]] = []

    def policy(request: dict[str, Any]) -> str:
        requests.append(request)
        return solve(request)

    async with SimServer(SimConfig(policy=policy)) as server:
        for name, content, expected in (
            ("missing.py", None, "no such file or folder"),
            ("broken.py", "SYS_PROMPT_IN_A11Y_OUT_CODE = (\n", "not parseable as Python"),
            ("other.py", "SYS_PROMPT_IN_BOTH_OUT_CODE = 'x'\n", "no module-level string constant SYS_PROMPT_IN_A11Y_OUT_CODE"),
        ):
            path = tmp_path / name
            if content is not None:
                path.write_text(content)
            run_dir = tmp_path / f"run-{name}"
            proc = await _run(tmp_path, server.url, run_dir, path)
            err = proc.stderr.decode().strip()
            assert proc.returncode != 0
            assert len(err.splitlines()) == 1 and expected in err and str(path) in err, err
            assert not run_dir.exists()  # nothing written: no run.json, no task result
        assert not requests  # no model call was made

        good = tmp_path / "prompts.py"
        good.write_text(f"SYS_PROMPT_IN_A11Y_OUT_CODE = {TEMPLATE!r}\n")
        run_dir = tmp_path / "run-good"
        proc = await _run(tmp_path, server.url, run_dir, good)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    run = json.loads((run_dir / "run.json").read_text())
    assert run["config"]["agent_options"]["prompts_from"] == str(good)
    agent = run["agent"]
    assert agent["prompts"] == {"source": str(good.resolve()), "name": "SYS_PROMPT_IN_A11Y_OUT_CODE",
                                "sha256": sha256(TEMPLATE)}
    assert (agent["profile"], agent["temperature"], agent["settle_s"]) == ("osworld", 1.0, 0)
    assert agent["table_counter"] == counter_name()
    [result] = list(run_dir.glob("sim/*/result.json"))
    assert json.loads(result.read_text())["score"] == 1.0
    system = requests[0]["messages"][0]["content"][0]["text"]
    assert system.startswith(TEMPLATE.replace("{CLIENT_PASSWORD}", "password"))
    report = build_report(run_dir)
    html = report.index.read_text()
    assert sha256(TEMPLATE)[:16] in html and "SYS_PROMPT_IN_A11Y_OUT_CODE" in html
    assert f"counted by {counter_name()}" in html and "osworld" in html

    # The prompts file edited between sessions: resuming would mix two prompts in one score, so the
    # run refuses with one line and leaves the finished task as it was.
    good.write_text(f"SYS_PROMPT_IN_A11Y_OUT_CODE = {(TEMPLATE + ' Edited.')!r}\n")
    before = result.read_bytes()
    with anyio.fail_after(120):
        proc = await anyio.run_process([sys.executable, "-m", "harness", "resume", str(run_dir)],
                                       cwd=REPO, check=False)
    err = proc.stderr.decode().strip()
    assert proc.returncode != 0 and len(err.splitlines()) == 1, err
    assert "agent.prompts.sha256" in err and sha256(TEMPLATE)[:12] in err, err
    assert result.read_bytes() == before
