"""The computer-use agents (Anthropic's `computer` tool over Messages, OpenAI's
`computer_use_preview` over Responses) solve scripted desktop-basics tasks on Docker sandboxes
against llm-sim: the server's requests/min limit is held (no 429), cost is recorded, the model sees
screenshots at its tool's resolution, a malformed tool call is a wasted step with its reason (and
the model is told), and OpenAI's pending safety checks are acknowledged on the next turn."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pytest

from harness.config import make_config
from harness.llm.sim import SimConfig, SimServer
from harness.runner import execute_run
from tests.test_osworld_agent_sim import results

pytestmark = pytest.mark.docker

SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "suites" / "desktop-basics" / "examples" / "os"
FOLDERS = "19de64a9-7b78-53ea-92fb-3f95a170afe3"
EXECUTABLE = "8b074e51-0a4c-561a-bf45-eff8894314bf"
MS_STORE = "fffcd193-d536-5ab7-8272-6bd335fec796"  # infeasible
COPY_PDFS = "ea80569c-656a-58fb-81ad-e9b8917f1fe6"
TASKS = [FOLDERS, EXECUTABLE, MS_STORE, COPY_PDFS]
MKDIR = "mkdir -p ~/projects/garden-planner/src ~/projects/garden-planner/docs ~/projects/garden-planner/tests\n"
RPM, WINDOW_S = 4, 5.0


def instruction(task_id: str) -> str:
    return json.loads((SUITE / f"{task_id}.json").read_text())["instruction"]


def png_size(data_b64: str) -> tuple[int, int]:
    head = base64.b64decode(data_b64[:44])
    return struct.unpack(">II", head[16:24])


# Per task: the tool inputs the scripted model sends, one per turn; then its final text.
CLAUDE = {
    FOLDERS: ([{"action": "type", "text": MKDIR}], "Done."),
    EXECUTABLE: ([{"action": "left_click", "coordinate": [5000, 5000]},  # off the 1280x720 display
                  {"action": "type", "text": "chmod +x ~/bin/backup.sh\n"}], "Done."),
    MS_STORE: ([], "FAIL: there is no Microsoft Store on Ubuntu."),
    COPY_PDFS: ([{"action": "type", "text": "mkdir -p ~/Documents/papers && cp ~/Downloads/*.pdf ~/Documents/papers/"},
                 {"action": "key", "text": "Return"}], "Done."),
}
OPENAI = {
    FOLDERS: [{"type": "type", "text": MKDIR}],
    EXECUTABLE: [{"type": "keypress", "keys": ["NO_SUCH_KEY"]}, {"type": "type", "text": "chmod +x ~/bin/backup.sh"},
                 {"type": "keypress", "keys": ["ENTER"]}],
    MS_STORE: [],  # answers with a message at once: DONE, and an infeasible task scores 0 for it
    COPY_PDFS: [{"type": "type", "text": "mkdir -p ~/Documents/papers && cp ~/Downloads/*.pdf ~/Documents/papers/\n"}],
}


class Script:
    """The scripted model behind llm-sim, for both API shapes; it keeps what it was sent."""

    def __init__(self) -> None:
        self.by_instruction = {instruction(t): t for t in TASKS}
        self.image_sizes: set[tuple[int, int]] = set()
        self.tool_errors: list[str] = []
        self.acknowledged: list[str] = []

    def __call__(self, request: dict) -> object:
        if request["_sim_api"] == "anthropic_messages":
            return self.claude(request)
        return self.openai(request)

    def claude(self, request: dict) -> object:
        messages = request["messages"]
        task = self.by_instruction[messages[0]["content"][0]["text"]]
        for message in messages:
            for block in message["content"] if message["role"] == "user" else []:
                inner = block.get("content", []) if block.get("type") == "tool_result" else [block]
                for part in inner:
                    if part.get("type") == "image":
                        self.image_sizes.add(png_size(part["source"]["data"]))
                if block.get("is_error"):
                    self.tool_errors.append(block["content"][0]["text"])
        turn = sum(1 for m in messages if m["role"] == "assistant")
        steps, final = CLAUDE[task]
        if turn >= len(steps):
            return final
        return {"content": [{"type": "text", "text": f"turn {turn}"},
                            {"type": "tool_use", "id": f"toolu_{turn}", "name": "computer", "input": steps[turn]}]}

    def openai(self, request: dict) -> object:
        items = request["input"]
        task = self.by_instruction[items[0]["content"][0]["text"]]
        for item in items:
            for check in item.get("acknowledged_safety_checks", []):
                self.acknowledged.append(check["id"])
        turn = sum(1 for i in items if i.get("type") == "computer_call")
        steps = OPENAI[task]
        if turn >= len(steps):
            return "The task is complete."
        checks = [{"id": f"sc_{task[:4]}", "code": "malicious_instructions", "message": "check"}] if turn == 0 else []
        return {"output": [
            {"type": "reasoning", "id": f"rs_{turn}", "summary": [{"type": "summary_text", "text": f"turn {turn}"}]},
            {"type": "computer_call", "id": f"cu_{turn}", "call_id": f"call_{turn}", "action": steps[turn],
             "pending_safety_checks": checks, "status": "completed"}]}


async def run_agent(agent: str, model: str, script: Script, tmp_path: Path) -> tuple[dict, SimServer]:
    async with SimServer(SimConfig(policy=script, rpm=RPM, window_s=WINDOW_S, api_key="sim-key")) as sim:
        providers = tmp_path / f"{agent}-providers.json"
        providers.write_text(json.dumps({
            "endpoints": [{"name": "sim", "kind": "openai-compatible", "base_url": sim.url, "api_key": "sim-key",
                           "rpm": RPM, "window_s": WINDOW_S}],
            "prices": {model: {"input_per_mtok": 3.0, "output_per_mtok": 15.0}}}))
        run_dir = tmp_path / agent
        code = await execute_run(make_config({
            "benchmark": "desktop-basics", "agent": agent, "tasks": TASKS, "concurrency": 4, "run_dir": run_dir,
            "quiet": True, "max_steps": 6, "providers_file": str(providers), "agent_options": {"model": model}}),
            show_summary=False)
        assert code == 0
        return results(run_dir), sim


def traj(run_dir: Path, task_id: str) -> list[dict]:
    return [json.loads(x) for x in (next(run_dir.glob(f"*/{task_id}")) / "traj.jsonl").read_text().splitlines()]


async def test_claude_computer_use_solves_scripted_tasks_within_the_rate_limit(docker_engine, desktop_image, tmp_path):
    script = Script()
    got, sim = await run_agent("claude-computer-use", "claude-sim", script, tmp_path)
    assert {t: r["score"] for t, r in got.items()} == {FOLDERS: 1.0, EXECUTABLE: 1.0, MS_STORE: 1.0, COPY_PDFS: 1.0}, got
    assert not any(r.get("error") for r in got.values())
    assert script.image_sizes == {(1280, 720)}  # screenshots at the tool's resolution, not the screen's 1920x1080
    statuses = [r.status for r in sim.records]
    assert statuses == [200] * len(statuses) and sim.max_in_window(WINDOW_S) <= RPM < len(statuses)
    assert all(r["cost_usd"] > 0 for r in got.values())
    wasted = traj(tmp_path / "claude-computer-use", EXECUTABLE)[0]
    assert wasted["action"] == "WAIT" and "outside the 1280x720 display" in wasted["info"]["tool_error"]
    assert any("outside the 1280x720 display" in e for e in script.tool_errors)  # the model was told


async def test_openai_computer_use_solves_scripted_tasks_within_the_rate_limit(docker_engine, desktop_image, tmp_path):
    script = Script()
    got, sim = await run_agent("openai-computer-use", "cua-sim", script, tmp_path)
    assert {t: r["score"] for t, r in got.items()} == {FOLDERS: 1.0, EXECUTABLE: 1.0, MS_STORE: 0.0, COPY_PDFS: 1.0}, got
    assert not any(r.get("error") for r in got.values())
    statuses = [r.status for r in sim.records]
    assert statuses == [200] * len(statuses) and sim.max_in_window(WINDOW_S) <= RPM < len(statuses)
    assert all(r["cost_usd"] > 0 for r in got.values())
    wasted = traj(tmp_path / "openai-computer-use", EXECUTABLE)[0]
    assert wasted["action"] == "WAIT" and "NO_SUCH_KEY" in wasted["info"]["tool_error"]
    assert wasted["info"]["safety_checks"][0]["code"] == "malicious_instructions"
    assert {f"sc_{t[:4]}" for t in (FOLDERS, EXECUTABLE, COPY_PDFS)} <= set(script.acknowledged)
