"""An explicit option never silently loses (issue 22, item 6), and a prompts file is read once.

`--agent-option observation_type|action_space|max_steps` sets the run's field or, when the field
is given too with another value, stops with one line; prompts files that are too big, not regular
files, or nested too deeply are one line; a Ray worker builds its agent from the head's prompt
text and hash, never from the path (which need not exist on its machine).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.sim_suite import write_sim_suite
from harness.base.errors import ConfigError
from harness.config import make_config
from harness.runner import build_agent
from search.prompt_source import PromptSet, load_prompt_set, sha256

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = "Shipped prompt; sudo password is {CLIENT_PASSWORD}."


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_an_agent_option_that_contradicts_a_run_option_is_one_line_before_anything_is_written(tmp_path: Path) -> None:
    suite = write_sim_suite(tmp_path / "suite", tasks=1)
    for flag, option in (("--observation-type=screenshot", "observation_type=som"),
                         ("--action-space=computer_13", "action_space=pyautogui"),
                         ("--max-steps=5", "max_steps=9")):
        run_dir = tmp_path / f"run-{option.split('=')[0]}"
        proc = harness("run", "--benchmark", str(suite), "--agent", "noop", "--provider", "sim", flag,
                       "--agent-option", option, "--run-dir", str(run_dir), "-q")
        err = proc.stderr.strip()
        assert proc.returncode == 2 and len(err.splitlines()) == 1, err
        assert f"--agent-option {option}" in err and "contradicts" in err, err
        assert not run_dir.exists()


def test_an_agent_option_alone_sets_the_run_field_the_agent_is_built_from() -> None:
    config = make_config({"benchmark": "x", "agent": "prompt",
                          "agent_options": {"observation_type": "a11y_tree", "max_steps": 7}})
    assert (config.observation_type, config.max_steps) == ("a11y_tree", 7)
    agent = build_agent(config)
    assert (agent.options.observation_type, agent.options.max_steps) == ("a11y_tree", 7)
    same = make_config({"benchmark": "x", "max_steps": 7, "agent_options": {"max_steps": "7"}})
    assert same.max_steps == 7


@pytest.mark.parametrize("kind", ["huge", "fifo", "deep_parens", "long_chain", "deep_unary"])
def test_a_prompts_file_that_cannot_be_read_as_constants_is_one_config_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "prompts.py"
    name = "SYS_PROMPT_IN_A11Y_OUT_CODE"
    if kind == "huge":
        path.write_text(f"{name} = '" + "x" * (5 << 20) + "'\n")
    elif kind == "fifo":
        os.mkfifo(path)  # reading it would block forever: refused from its stat
    elif kind == "deep_parens":
        path.write_text(f"{name} = " + "(" * 10_000 + "'x'" + ")" * 10_000 + "\n")
    elif kind == "long_chain":
        path.write_text(f"{name} = " + " + ".join(["'a'"] * 200_000) + "\n")
    else:
        path.write_text(f"{name} = " + "-" * 100_000 + "1\n")
    with pytest.raises(ConfigError) as err:
        load_prompt_set(str(path), "a11y_tree", "pyautogui")
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_worker_builds_its_agent_from_the_head_prompt_text_not_the_path(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.py"
    prompts.write_text(f"SYS_PROMPT_IN_A11Y_OUT_CODE = {TEMPLATE!r}\n")
    config = make_config({"benchmark": "x", "agent": "prompt", "observation_type": "a11y_tree",
                          "agent_options": {"prompts_from": str(prompts)}})
    head = build_agent(config)
    assert head.prompt_set.sha256 == sha256(TEMPLATE)
    prompts.unlink()  # the path does not exist on the worker's machine
    worker = build_agent(config, prompt_set=head.prompt_set)
    assert worker.prompt_set == head.prompt_set and worker.prompt_info()["sha256"] == sha256(TEMPLATE)
    tampered = PromptSet(source=head.prompt_set.source, name=head.prompt_set.name, template=TEMPLATE + "!",
                         sha256=head.prompt_set.sha256)
    with pytest.raises(ConfigError, match="does not match its hash"):
        build_agent(config, prompt_set=tampered)
    other = make_config({"benchmark": "x", "agent": "prompt", "observation_type": "screenshot",
                         "agent_options": {"prompts_from": str(prompts)}})
    with pytest.raises(ConfigError, match="not SYS_PROMPT_IN_SCREENSHOT_OUT_CODE"):
        build_agent(other, prompt_set=head.prompt_set)


@pytest.mark.ray
async def test_a_ray_run_with_prompts_from_uses_the_head_template_on_every_worker(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    import json

    import anyio
    from test_prompt_parity_cli import solve

    from harness.llm.sim import SimConfig, SimServer

    prompts = tmp_path / "prompts.py"
    prompts.write_text(f"SYS_PROMPT_IN_A11Y_OUT_CODE = {TEMPLATE!r}\n")
    suite = write_sim_suite(tmp_path / "suite", tasks=4)
    run_dir = tmp_path / "run"
    systems: list[str] = []

    def policy(request: dict) -> str:
        systems.append(request["messages"][0]["content"][0]["text"])
        return solve(request)

    async with SimServer(SimConfig(policy=policy)) as server:
        pfile = tmp_path / "providers.json"
        pfile.write_text(json.dumps({"default_model": "sim-model", "endpoints": [
            {"kind": "openai-compatible", "base_url": server.url, "models": ["*"]}]}))
        with anyio.fail_after(300):
            proc = await anyio.run_process(
                [sys.executable, "-m", "harness", "run", "--benchmark", str(suite), "--agent", "prompt",
                 "--provider", "sim", "--providers-file", str(pfile), "--observation-type", "a11y_tree",
                 "--max-steps", "6", "--agent-option", "settle_s=0", "--agent-option", f"prompts_from={prompts}",
                 "--run-dir", str(run_dir), "--ray", "local:2", "-q"], cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    results = [json.loads(p.read_text()) for p in run_dir.glob("sim/*/result.json")]
    assert len(results) == 4 and all(r["score"] == 1.0 for r in results), results
    assert all(r.get("node") for r in results)  # each ran on a cluster worker
    rendered = TEMPLATE.replace("{CLIENT_PASSWORD}", "password")
    assert systems and all(s.startswith(rendered) for s in systems)
