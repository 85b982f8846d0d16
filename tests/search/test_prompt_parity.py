"""Parity kit: the prompt agent under `profile=default` (ours) and `profile=osworld` (OSWorld's
runner), fed the same model replies (written here), differs exactly where docs/design/prompt-agent.md
says: sampling, parsing and what the history shows, the accessibility table and its cut, the
settle wait, provider errors, message shapes per model family, and prompts from the user's files.

End-to-end tests use the real LLM client against the in-process llm-sim and a sim sandbox."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmarks.schema import Task
from benchmarks.sim_suite import sim_task
from harness.base.errors import ConfigError, ProviderError
from harness.llm.client import LLMClient
from harness.llm.sim import SimConfig, SimFault, SimServer
from harness.task_env import SandboxTaskEnv
from results.store import RunStore
from search import tokens
from search.a11y import filter_nodes, osworld_table, table, trim_to_tokens
from search.adapters import adapt, family_of
from search.parsing import parse_reply
from search.parsing_osworld import parse_reply_osworld
from search.prompt_agent import PromptAgentOptions, make_prompt_agent
from search.prompt_source import sha256
from tests.search.test_prompt_agent import SCENARIO, SOLUTION, Policy
from tests.search.test_prompt_agent import Rig as AgentRig
from vm.sim import SimProvider

# --- 1. sampling defaults --------------------------------------------------------------------------


def test_osworld_profile_samples_at_runner_defaults_and_an_explicit_temperature_wins() -> None:
    ours, theirs = PromptAgentOptions(), PromptAgentOptions(profile="osworld")
    assert (ours.temperature, ours.top_p, ours.max_tokens, ours.settle_s) == (0.5, 0.9, 1500, 0.0)
    assert (theirs.temperature, theirs.top_p, theirs.max_tokens, theirs.settle_s) == (1.0, 0.9, 1500, 60.0)
    assert (theirs.parsing, theirs.linearization, theirs.provider_errors, theirs.message_format) == \
        ("osworld", "osworld", "wasted_step", "auto")
    explicit = PromptAgentOptions(profile="osworld", temperature=0.2, settle_s=0, parsing="ours")
    assert (explicit.temperature, explicit.settle_s, explicit.parsing) == (0.2, 0.0, "ours")
    with pytest.raises(ConfigError, match="option 'profile'"):
        make_prompt_agent({"profile": "upstream"})


# --- 2. parsing ----------------------------------------------------------------------------------

# (reply, actions under ours, actions under osworld); None = a parse error under that profile.
PYAUTOGUI_CASES = [
    ("I checked every menu; this cannot be done.\nFAIL", ["FAIL"], []),
    ("Done.\n**DONE**", ["DONE"], []),
    ("pyautogui.click(10, 20)", ["pyautogui.click(10, 20)"], []),
    ("```python\npyautogui.typewrite('a; b')\n```", ["pyautogui.typewrite('a; b')"], ["pyautogui.typewrite('a\nb')"]),
    ("```bash\nls -l\n```", None, ["ls -l"]),
    ("```python\n# just thinking\n```", None, ["# just thinking"]),
    ("", None, []),
    ("```python\npyautogui.click(1, 2)\nDONE\n```", ["pyautogui.click(1, 2)", "DONE"], ["pyautogui.click(1, 2)", "DONE"]),
    ("Waiting.\n```WAIT```", ["WAIT"], ["WAIT"]),
    ("FAIL", ["FAIL"], ["FAIL"]),
]


@pytest.mark.parametrize(("reply", "ours", "theirs"), PYAUTOGUI_CASES)
def test_pyautogui_replies_parse_as_documented_under_each_profile(reply: str, ours: list[str] | None,
                                                                  theirs: list[str]) -> None:
    mine = parse_reply(reply, "pyautogui")
    assert (mine.actions if mine.ok else None) == ours
    upstream = parse_reply_osworld(reply, "pyautogui")
    assert upstream.ok and upstream.actions == theirs  # upstream's code parser never fails


def test_computer13_json_in_prose_counts_only_under_ours() -> None:
    reply = 'Click it: {"action_type": "CLICK", "parameters": {"x": 5, "y": 5}}'
    assert parse_reply(reply, "computer_13").actions == [{"action_type": "CLICK", "parameters": {"x": 5, "y": 5}}]
    assert not parse_reply_osworld(reply, "computer_13").ok
    fenced = '```json\n{"action_type": "click", "parameters": {"x": 5, "y": 5}}\n```'
    assert parse_reply(fenced, "computer_13").actions[0]["action_type"] == "CLICK"  # ours normalizes case
    assert parse_reply_osworld(fenced, "computer_13").actions[0]["action_type"] == "click"  # upstream does not


# --- 3. the accessibility table ------------------------------------------------------------------

ST = "https://accessibility.ubuntu.example.org/ns/state"
CP = "https://accessibility.ubuntu.example.org/ns/component"
AT = "https://accessibility.ubuntu.example.org/ns/attributes"
SHOWN = 'st:showing="true" st:visible="true" st:enabled="true"'
TREE = (
    f'<desktop-frame xmlns:st="{ST}" xmlns:cp="{CP}" xmlns:attr="{AT}">'
    f'<push-button name="Save&#9;As" {SHOWN} attr:class="GtkButton" attr:description="saves" '
    'cp:screencoord="(10, 20)" cp:size="(30, 40)"/>'
    f'<label {SHOWN} cp:screencoord="(1, 2)" cp:size="(3, 4)">  </label>'
    f'<paragraph {SHOWN} cp:screencoord="(5,6)" cp:size="(7, 8)">line one\nsays "hi"</paragraph>'
    "</desktop-frame>"
)


def test_osworld_table_keeps_upstream_cells_and_leaves_class_and_description_empty() -> None:
    ours = table(filter_nodes(TREE)).split("\n")
    assert ours[1:] == [
        "push-button\tSave\\tAs\t\"\"\tGtkButton\tsaves\t(10, 20)\t(30, 40)",
        'paragraph\t\t"line one\\nsays ""hi"""\t\t\t(5, 6)\t(7, 8)',
    ]
    theirs = osworld_table(filter_nodes(TREE, upstream=True))
    assert theirs.split("\n")[1:] == [
        "push-button\tSave\tAs\t\"\"\t\t\t(10, 20)\t(30, 40)",  # class/description empty, tab raw
        "label\t\t  \t\t\t(1, 2)\t(3, 4)",  # whitespace-only text is text upstream
        'paragraph\t\t"line one',  # a newline inside a cell starts a new row, as upstream
        'says ""hi"""\t\t\t(5,6)\t(7, 8)',  # coordinates as the XML writes them
    ]


def _big_table(rows: int = 400) -> str:
    return "\n".join(["tag\tname"] + [f"push-button\tButton number {i} of the toolbar\t(1{i}, 2{i})" for i in range(rows)])


def test_without_a_cached_encoding_the_cut_uses_the_estimate_and_never_downloads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))
    try:
        import requests

        def no_network(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError(f"a download was attempted: {args}")

        monkeypatch.setattr(requests, "get", no_network)
    except ImportError:
        pass
    tokens._reset_for_tests()
    try:
        assert tokens.counter_name() == tokens.COUNTER_ESTIMATE
        assert tokens.why_estimate()  # says why (tiktoken missing, or the encoding not cached)
        big = _big_table()
        cut, counter = tokens.cut_to_tokens(big, 500)
        assert counter == tokens.COUNTER_ESTIMATE and cut.endswith("[...]\n")
        kept = cut.removesuffix("[...]\n")
        assert big.startswith(kept) and 0 < tokens.estimate_tokens(kept) <= 500
        assert tokens.estimate_tokens(big[: len(kept) + 8]) > 500  # it kept as much as fits
        ours = trim_to_tokens(big, 500)
        assert ours.endswith("\n[...]") and all(line in big.split("\n") for line in ours.split("\n")[:-1])
        assert tokens.cut_to_tokens("short", 500) == ("short", tokens.COUNTER_ESTIMATE)
    finally:
        tokens._reset_for_tests()


def test_with_a_cached_encoding_the_cut_keeps_exactly_max_tokens_tiktoken_tokens() -> None:
    tokens._reset_for_tests()
    if tokens.encoding() is None:
        pytest.skip(f"tiktoken's gpt-4 encoding is not available offline here: {tokens.why_estimate()}")
    cut, counter = tokens.cut_to_tokens(_big_table(), 300)
    assert counter == tokens.COUNTER_TIKTOKEN and cut.endswith("[...]\n")
    assert len(tokens.encoding().encode(cut.removesuffix("[...]\n"))) == 300


# --- 4. message shapes per model family --------------------------------------------------------------


def _chat() -> list[dict[str, Any]]:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}}
    return [
        {"role": "system", "content": [{"type": "text", "text": "SYSTEM"}]},
        {"role": "user", "content": [{"type": "text", "text": "OBS1"}, image]},
        {"role": "assistant", "content": [{"type": "text", "text": "REPLY1"}]},
        {"role": "user", "content": [{"type": "text", "text": "OBS2"}, image]},
    ]


def test_model_families_are_detected_by_name() -> None:
    assert [family_of(m) for m in ("gpt-4o", "claude-3-7-sonnet", "anthropic/claude-x", "gemini-1.5-pro-latest",
                                   "gemini-2.5-pro", "gemini-pro", "gemini-pro-vision", None)] == \
        ["openai", "claude", "claude", "gemini", "gemini", "gemini-pro", "gemini-pro-vision", "openai"]


def test_adapters_reshape_the_chat_as_upstream_does_per_family() -> None:
    chat = _chat()
    assert adapt(chat, "openai") == (chat, {})
    claude, extra = adapt(chat, "claude")
    assert extra == {} and [m["role"] for m in claude] == ["user", "assistant", "user"]
    assert [p.get("text") for p in claude[0]["content"]] == ["SYSTEM", "OBS1", None]
    gemini, extra = adapt(chat, "gemini")
    assert extra == {"max_tokens": None} and gemini[0]["role"] == "system"
    assert [p["type"] for p in gemini[1]["content"]] == ["image_url", "text"]
    pro, _ = adapt(chat, "gemini-pro")
    assert pro[0]["content"] == [{"type": "text", "text": "SYSTEM\nOBS1"}]
    assert all(p["type"] == "text" for m in pro for p in m["content"])
    vision, extra = adapt(chat, "gemini-pro-vision")
    assert extra == {"max_tokens": None} and len(vision) == 1 and vision[0]["role"] == "user"
    assert vision[0]["content"][0]["text"] == "<|user|>\nSYSTEM\nOBS1\n<|model|>\nREPLY1\n<|user|>\nOBS2\n"
    assert [p["type"] for p in vision[0]["content"]] == ["text", "image_url"]
    assert chat == _chat()  # the input is not modified


def test_gemini_pro_is_refused_with_images_at_construction() -> None:
    with pytest.raises(ConfigError, match="text only"):
        make_prompt_agent({"profile": "osworld", "model": "gemini-pro", "observation_type": "screenshot"})
    make_prompt_agent({"profile": "osworld", "model": "gemini-pro", "observation_type": "a11y_tree"})


# --- 5. prompts from the user's files ------------------------------------------------------------------

PROMPTS_PY = '''"""A user's prompts file (test text, not OSWorld's)."""
import sys
SYS_PROMPT_IN_A11Y_OUT_CODE = """
Parity test system prompt; password {CLIENT_PASSWORD}; JSON {"a": 1} stays.
""".strip()
SYS_PROMPT_IN_BOTH_OUT_CODE = "both " + "parts"
NOT_A_STRING = len("x")
raise SystemExit("this file must never be executed")
'''


def test_prompts_py_is_read_as_data_never_executed(tmp_path: Path) -> None:
    path = tmp_path / "prompts.py"
    path.write_text(PROMPTS_PY)
    agent = make_prompt_agent({"prompts_from": str(path), "observation_type": "a11y_tree", "password": "pw1"})
    template = 'Parity test system prompt; password {CLIENT_PASSWORD}; JSON {"a": 1} stays.'
    assert agent.prompt_set.render("pw1") == template.replace("{CLIENT_PASSWORD}", "pw1")
    assert agent.describe()["prompts"] == {"source": str(path.resolve()), "name": "SYS_PROMPT_IN_A11Y_OUT_CODE",
                                           "sha256": sha256(template)}
    both = make_prompt_agent({"prompts_from": str(path), "observation_type": "screenshot_a11y_tree"})
    assert both.prompt_set.template == "both parts"
    ours = make_prompt_agent({}).describe()["prompts"]
    assert ours["source"] == "builtin" and len(ours["sha256"]) == 64


def test_a_folder_of_templates_supplies_the_prompt(tmp_path: Path) -> None:
    (tmp_path / "SYS_PROMPT_IN_SOM_OUT_TAG.txt").write_text("som prompt from a folder")
    agent = make_prompt_agent({"prompts_from": str(tmp_path), "observation_type": "som"})
    assert agent.prompt_set.template == "som prompt from a folder"


@pytest.mark.parametrize(("content", "options", "message"), [
    (None, {}, "no such file or folder"),
    ("SYS_PROMPT_IN_BOTH_OUT_CODE = 'x'\ndef broken(:\n", {}, "line 2 not parseable as Python"),
    ("OTHER = 'x'\n", {}, "no module-level string constant SYS_PROMPT_IN_BOTH_OUT_CODE"),
    ("SYS_PROMPT_IN_SCREENSHOT_OUT_ACTION = 'x'\n", {"action_space": "computer_13"},
     "SYS_PROMPT_IN_BOTH_OUT_ACTION .needed for observation_type=screenshot_a11y_tree, action_space=computer_13"),
    ("SYS_PROMPT_IN_BOTH_OUT_CODE = '   '\n", {}, "is empty"),
])
def test_bad_prompt_files_fail_at_construction_with_one_line_naming_the_file(
        tmp_path: Path, content: str | None, options: dict[str, Any], message: str) -> None:
    path = tmp_path / "prompts.py"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message) as info:
        make_prompt_agent({"prompts_from": str(path), **options})
    assert "\n" not in str(info.value) and str(path) in str(info.value)


# --- end to end: real client, llm-sim, sim sandbox ------------------------------------------------------


@dataclass
class Run:
    outcome: Any
    box: Any
    traj: list[dict[str, Any]]
    observe_times: list[float]
    started: float


class Rig(AgentRig):
    """test_prompt_agent's rig, timing each observation and scoring with any evaluator."""

    async def run(self, *, max_steps: int = 15, evaluator: dict[str, Any] | None = None,  # type: ignore[override]
                  **options: Any) -> Run:
        self.runs += 1
        spec = sim_task(1, steps=3, seed=1)
        if evaluator is not None:
            spec["evaluator"] = evaluator
        task = Task.model_validate(spec)
        providers = {"default_model": "sim-model",
                     "endpoints": [{"kind": "openai-compatible", "base_url": self.server.url, "models": ["*"]}]}
        client = LLMClient.from_config(providers, cache_path=self.tmp / f"cache-{self.runs}.sqlite")
        run_dir = self.tmp / f"run-{self.runs}"
        times: list[float] = []
        async with client:
            store = await RunStore.open(run_dir, {"agent": "prompt"}, result_keys=[])
            try:
                box = await SimProvider(screen_size=(1280, 720)).start()
                await box.guest.execute(["sim", "scenario", SCENARIO])
                attempt = await store.begin_attempt("sim", task.id)
                env = SandboxTaskEnv(task, box, attempt, max_steps=max_steps)
                observe = env.observe

                async def timed_observe() -> Any:
                    times.append(time.monotonic())
                    return await observe()

                env.observe = timed_observe  # type: ignore[method-assign]
                agent = make_prompt_agent({"llm": client, "max_steps": max_steps, **options})
                started = time.monotonic()
                outcome = await agent.solve(task, env)
            finally:
                await store.aclose()
        path = run_dir / "sim" / task.id / "traj.jsonl"
        traj = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        return Run(outcome, box, traj, times, started)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    policy = Policy()
    async with SimServer(SimConfig(policy=policy)) as server:
        yield Rig(policy, server, tmp_path)


OSWORLD = {"profile": "osworld", "settle_s": 0}


async def test_requests_carry_each_profiles_sampling(rig: Rig) -> None:
    await rig.run(**OSWORLD)
    await rig.run()
    temps = [(r["temperature"], r["top_p"], r["max_tokens"]) for r in rig.policy.requests]
    assert temps[0] == (1.0, 0.9, 1500) and temps[-1] == (0.5, 0.9, 1500)


async def test_prose_fail_on_an_infeasible_task_scores_1_under_ours_and_0_under_osworld(rig: Rig) -> None:
    from scoring import evaluate

    infeasible = {"func": "infeasible"}
    prose = "Every menu was checked; this setting does not exist.\nFAIL"
    scores = {}
    for name, options in (("default", {}), ("osworld", OSWORLD)):
        rig.policy.script = [prose]
        run = await rig.run(max_steps=1, evaluator=infeasible, **options)
        task = Task.model_validate({**sim_task(1, steps=3, seed=1), "evaluator": infeasible})
        scores[name] = (await evaluate(task, run.box.guest, run.outcome.actions, None)).score  # type: ignore[arg-type]
        if name == "osworld":
            assert run.traj[0]["action"] == "WAIT" and run.traj[0]["info"]["no_action"] is True
            assert run.traj[0]["response"] == prose
    assert scores == {"default": 1.0, "osworld": 0.0}


async def test_history_shows_an_unparsed_reply_under_osworld_and_a_placeholder_under_ours(rig: Rig) -> None:
    for options in ({}, OSWORLD):
        rig.policy.requests.clear()
        rig.policy.script = ["Let me think about the layout first."]
        await rig.run(**options)
        assert rig.policy.requests[1]["messages"][2]["content"][0]["text"] == (
            "Let me think about the layout first." if options else "No valid action")


async def test_osworld_table_reaches_the_model_and_the_counter_is_recorded(rig: Rig) -> None:
    run = await rig.run(observation_type="a11y_tree", **OSWORLD)
    text = rig.policy.requests[0]["messages"][-1]["content"][0]["text"]
    assert "label\tchain-3-s1 state 0\tchain-3-s1 state 0\t\t\t(40, 40)\t(400, 20)" in text
    assert run.traj[0]["info"]["table_counter"] == tokens.counter_name()
    assert re.fullmatch(r"[0-9a-f]{64}", run.traj[0]["info"]["system_sha256"])


async def test_first_observation_comes_only_after_the_settle_wait(rig: Rig) -> None:
    run = await rig.run(profile="osworld", settle_s=0.4)
    assert run.box.state == "goal"
    assert run.observe_times[0] - run.started >= 0.4
    quick = await rig.run()
    assert quick.observe_times[0] - quick.started < 0.4


def _refuse_once() -> Callable[[dict[str, Any]], str]:
    def refuse(request: dict[str, Any]) -> str:
        raise SimFault(400, "Invalid value for 'messages'.", code="invalid_request_error")
    return refuse


async def test_provider_error_wastes_one_step_under_osworld_and_ends_the_task_under_ours(rig: Rig) -> None:
    rig.policy.script = [_refuse_once()]
    run = await rig.run(**OSWORLD)
    assert run.box.state == "goal"
    first = run.traj[0]
    assert (first["action"], first["response"], first["info"]["no_action"]) == ("WAIT", "", True)
    assert "Invalid value" in first["info"]["provider_error"]
    assert run.outcome.extra["llm_calls"] == 5 and run.outcome.actions == ["WAIT", *SOLUTION]
    # the next call's history shows upstream's placeholder for the empty reply
    assert rig.policy.requests[1]["messages"][2]["content"][0]["text"] == "No valid action"
    # the wasted step counts toward max_steps
    rig.policy.script = [_refuse_once()]
    capped = await rig.run(max_steps=1, **OSWORLD)
    assert capped.outcome.extra["llm_calls"] == 1 and len(capped.traj) == 1 and capped.box.state == "0"
    rig.policy.script = [_refuse_once()]
    with pytest.raises(ProviderError):
        await rig.run()


async def test_claude_models_get_no_system_message_under_osworld(rig: Rig) -> None:
    await rig.run(model="claude-3-7-sonnet", **OSWORLD)
    first = rig.policy.requests[0]["messages"]
    assert [m["role"] for m in first] == ["user"]
    assert first[0]["content"][0]["text"].startswith("You are an agent")
    await rig.run(model="claude-3-7-sonnet")
    assert rig.policy.requests[-1]["messages"][0]["role"] == "system"  # ours sends the chat as built


async def test_a_user_prompts_file_is_the_system_prompt_sent(rig: Rig, tmp_path: Path) -> None:
    path = tmp_path / "prompts.py"
    path.write_text(PROMPTS_PY)
    run = await rig.run(prompts_from=str(path), observation_type="a11y_tree", password="pw2", **OSWORLD)
    system = rig.policy.requests[0]["messages"][0]["content"][0]["text"]
    assert system.startswith('Parity test system prompt; password pw2; JSON {"a": 1} stays.')
    assert run.traj[0]["info"]["system_sha256"] == sha256(system)
