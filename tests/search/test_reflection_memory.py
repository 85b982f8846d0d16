"""Reflection memory: visibility by task start, concurrent writers, embedding and lexical retrieval,
the prompt block, and the two-call reflection on the most surprising steps."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from harness.llm.client import LLMClient
from harness.llm.sim import SimConfig, SimServer
from search.mcts import prompts as P
from search.mcts.llm_calls import CallMeter
from search.mcts.memory import Reflection, ReflectionMemory, Retriever, key_text, reflections_block
from search.mcts.options import MCTSOptions
from search.mcts.reflection import reflect
from search.mcts.tree import Tree
from search.prompt_agent import PreparedObservation


def record(task: str, instruction: str, state: str, text: str, *, at: float = 1.0) -> Reflection:
    return Reflection(0, at, task, instruction, state, "pyautogui.click(1, 2)", "after", text, False, 0.9)


def client(url: str, *, embedding: bool = True) -> LLMClient:
    cfg: dict[str, Any] = {"default_model": "sim-model",
                           "endpoints": [{"kind": "openai-compatible", "base_url": url, "models": ["*"]}]}
    if embedding:
        cfg["embedding_model"] = "sim-embed"
    return LLMClient.from_config(cfg)


async def test_a_task_sees_only_records_created_before_it_started(tmp_path: Path) -> None:
    memory = ReflectionMemory(tmp_path / "reflections.sqlite")
    await memory.add([record("t1", "a", "s", "early", at=10.0)])
    await memory.add([record("t2", "b", "s", "late", at=20.0)])
    assert [r.reflection for r in await memory.visible(before=15.0)] == ["early"]
    assert [r.reflection for r in await memory.visible(before=20.0)] == ["early"]  # same instant: not yet
    assert len(await memory.visible(before=21.0)) == 2


async def test_many_writers_on_one_file_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "reflections.sqlite"
    memories = [ReflectionMemory(path) for _ in range(4)]  # like four runs sharing one memory
    ids: list[int] = []

    async def writer(i: int) -> None:
        for j in range(10):
            ids.extend(await memories[i % 4].add([record(f"t{i}", "x", "s", f"{i}-{j}", at=float(j))] * 2))

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(writer, i)
    rows = await ReflectionMemory(path).visible(before=1e9)
    assert len(rows) == len(ids) == 160 and len(set(ids)) == 160


async def test_embedding_retrieval_returns_the_top_k_similar_records_above_the_floor(tmp_path: Path) -> None:
    rows = [
        record("t1", "Rename the file report.txt to summary.txt", "file manager window report.txt selected", "use F2"),
        record("t2", "Rename the file notes.txt to todo.txt", "file manager window notes.txt selected", "press F2 first"),
        record("t3", "Set the spreadsheet cell A1 to bold", "calc window sheet cell A1", "ctrl+b"),
    ]
    for i, r in enumerate(rows, 1):
        r.id = i
    rows[0].embedding_model, rows[0].embedding = "other-model", [1.0, 0.0]  # must be re-embedded
    async with SimServer(SimConfig()) as server, client(server.url) as llm:
        meter = CallMeter()
        retriever = Retriever(rows, llm, meter, embedding_model="sim-embed", k=2, min_score=0.5, lexical_min_score=0.3)
        found = await retriever.retrieve("Rename the file draft.txt to final.txt",
                                         "file manager window draft.txt selected", task_id="t9")
        assert [r.id for r, _ in found] == [1, 2] or [r.id for r, _ in found] == [2, 1]
        assert all(score >= 0.5 for _, score in found)
        none = await retriever.retrieve("zzz qqq", "www", task_id="t9")
        assert none == []
        assert retriever.mode == "embedding" and meter.calls["embed"] == 3  # rows once, then 2 queries
        embeds = [r for r in server.records if r.path.endswith("embeddings")]
        assert len(embeds) >= 2


async def test_without_an_embedding_model_word_overlap_ranks_the_records() -> None:
    rows = [record("t1", "Rename the file report.txt", "file manager", "a"),
            record("t2", "Make cell A1 bold in the sheet", "calc sheet", "b")]
    for i, r in enumerate(rows, 1):
        r.id = i
    retriever = Retriever(rows, None, CallMeter(), embedding_model=None, k=2, min_score=0.5, lexical_min_score=0.3)
    found = await retriever.retrieve("Rename the file report.txt", "file manager", task_id=None)
    assert [r.id for r, _ in found] == [1] and found[0][1] == pytest.approx(1.0)
    assert retriever.mode == "lexical"


def test_the_block_lists_objective_action_and_reflection_truncated() -> None:
    long = "word " * 400
    block = reflections_block([(record("t", "Do the thing", "s", long), 0.9)], P.REFLECTIONS_HEADER, 16)
    assert block is not None and block.startswith("REFLECTIONS:")
    lines = block.splitlines()
    assert lines[1] == "[1] OBJECTIVE: Do the thing"
    assert lines[2] == "ATTEMPTED ACTION: pyautogui.click(1, 2)"
    assert lines[3].startswith("REFLECTION: word") and len(lines[3]) <= 16 * 4 + 20
    assert reflections_block([], P.REFLECTIONS_HEADER, 16) is None
    assert key_text("T", "S") == "Task: T\nObservation:\nS"


async def test_reflection_asks_two_questions_for_each_surprising_step() -> None:
    seen: list[dict[str, Any]] = []

    def model(request: dict[str, Any]) -> str:
        seen.append(request)
        text = json.dumps(request["messages"][-1])
        return "I expected the dialog to open." if "EXPECTATION" in text else "It did not open; use the menu."

    tree = Tree()
    nodes = []
    parent = tree.root
    parent.obs, parent.a11y_text = PreparedObservation(table="state 0"), "state 0"
    for i, (q, v) in enumerate([(0.5, 0.45), (0.1, 0.9), (0.2, 0.2)]):
        node = tree.add_child(parent, [f"pyautogui.press('{i}')"], f"k{i}", prior=0.5, count=1, response="")
        node.q, node.value, node.visits = q, v, 1
        node.obs, node.a11y_text = PreparedObservation(table=f"state {i + 1}"), f"state {i + 1}"
        nodes.append(node)
        parent = node
    options = MCTSOptions(observation_type="a11y_tree", surprise_plus_abs_q=False, max_reflections=3)
    async with SimServer(SimConfig(policy=model)) as server, client(server.url) as llm:
        made = await reflect(nodes, instruction="Open the dialog", task_id="t1", success=True, options=options,
                             llm=llm, meter=CallMeter())
    # surprise: |0.45-0.5| = 0.05, |0.9-0.1| = 0.8, |+1-0.2| = 0.8 -> steps 1 and 2 (ties: earlier first)
    assert [r.action for r in made] == ["pyautogui.press('1')", "pyautogui.press('2')"]
    assert [r.surprise for r in made] == pytest.approx([0.8, 0.8])
    assert len(seen) == 4
    lessons = [r for r in seen if "LESSON" in json.dumps(r["messages"][-1])]
    assert len(lessons) == 2 and all(r["messages"][2]["content"][0]["text"] == "I expected the dialog to open."
                                     for r in lessons)
    assert made[0].reflection == "It did not open; use the menu."
    assert made[0].state_text == "state 1" and made[0].next_state_text == "state 2"
    assert "completed the task" in json.dumps(lessons[0]["messages"][-1])


def test_options_reject_unknown_knobs_and_presets_differ() -> None:
    from harness.base.errors import ConfigError
    from search.mcts.options import parse_options

    mcts, _ = parse_options("mcts", {"max_steps": 15, "llm": SimpleNamespace()})
    rmcts, _ = parse_options("rmcts", {"iterations": 5})
    assert (mcts.value_function, mcts.reflection, mcts.iterations) == ("single_debate", False, 60)
    assert (rmcts.value_function, rmcts.reflection, rmcts.iterations) == ("multi_debate", True, 5)
    with pytest.raises(ConfigError, match="unknown option 'iteration'"):
        parse_options("mcts", {"iteration": 5})
    with pytest.raises(ConfigError, match="option 'c_schedule'"):
        parse_options("mcts", {"c_schedule": "linear"})
