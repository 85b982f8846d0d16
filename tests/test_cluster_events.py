"""The head's checks of what a cluster worker streams (harness/cluster/events.py): every shape a
worker of another version, or a hostile one, could send is refused with a reason, never written;
the events a real worker sends pass unchanged. (End to end over Ray: tests/test_task_faults.py.)"""

from __future__ import annotations

import math

import pytest

from harness.cluster import events
from harness.cluster.events import MalformedEvent

GOOD_RESULT = {"score": 1.0, "error": None, "steps": 4, "tokens": {"prompt": 10, "completion": 2}, "cost_usd": 0.0,
               "last_action": "DONE", "evaluation": [{"index": 0, "score": 1.0}], "eval_error": None, "notes": []}


@pytest.mark.parametrize("event", [
    ("step", {"step_num": 3, "action": "pyautogui.click(1, 2)"}, b"\x89PNG"),
    ("step", {"action": "WAIT"}, None),
    ("file", "tree.json", b"{}", True),
    ("file", "step_0.png", bytearray(b"\x89PNG"), False),
    ("step", {"step_num": 2, "screenshot_file": "step_2_20261206@085515.png"}, b"\x89PNG"),
    ("jsonl", "search.jsonl", {"node": 1}),
    ("result", GOOD_RESULT, 2.5),
    ("result", {"score": 0.0, "error": "evaluation: TaskError: x", "fault": "task", "phase": "evaluation",
                "eval_error": "TaskError: x", "steps": 0}, 0),
    ("error", "sandbox", "guest gone"),
])
def test_events_a_worker_sends_pass(event: tuple) -> None:
    parsed = events.parse(event)
    assert parsed[0] == event[0]


@pytest.mark.parametrize(("event", "why"), [
    ("step", "expected a tuple"),
    ((), "expected a tuple"),
    ((7, 1), "expected a tuple"),
    (("step", {"step_num": 1}), "expected 2 fields"),
    (("step", ["not", "a", "dict"], None), "expected a record"),
    (("step", {"step_num": 0}, None), "step_num"),
    (("step", {"step_num": -1}, None), "step_num"),
    (("step", {"step_num": True}, None), "step_num"),
    (("step", {"step_num": 10**9}, None), "step_num"),
    (("step", {"step_num": 1}, "png as text"), "expected bytes"),
    (("step", {"step_num": 1, "screenshot_file": "../../x.png"}, b"\x89PNG"), "file name"),
    (("file", "../../run.json", b"x", True), "file name"),
    (("file", "/etc/passwd", b"x", True), "file name"),
    (("file", ".hidden", b"x", True), "file name"),
    (("file", "a\x1b[2Jb", b"x", True), "file name"),
    (("file", "x" * 201, b"x", True), "file name"),
    (("file", "result.json", b"x", True), "reserved"),
    (("file", "traj.jsonl", b"x", True), "reserved"),
    (("jsonl", "attempt.json", {}), "reserved"),
    (("file", "a.bin", b"x", "yes"), "durable"),
    (("jsonl", "x.jsonl", {1: "a key that is not text"}), "not JSON"),
    (("result", [1.0], 1.0), "expected a mapping"),
    (("result", {"score": 1.5}, 1.0), "result score"),
    (("result", {"score": math.nan}, 1.0), "result score"),
    (("result", {"score": "1"}, 1.0), "result score"),
    (("result", {"score": True}, 1.0), "result score"),
    (("result", {"score": 1.0, "node": "forged"}, 1.0), "unexpected field 'node'"),
    (("result", {"score": 1.0, "attempts": 1}, 1.0), "unexpected field 'attempts'"),
    (("result", {"score": 0.0, "fault": "nobody"}, 1.0), "result fault"),
    (("result", {"score": 0.0, "phase": "lunch"}, 1.0), "result phase"),
    (("result", {"score": 0.0, "error": 3}, 1.0), "result error"),
    (("result", {"score": 0.0, "steps": -1}, 1.0), "result steps"),
    (("result", {"score": 0.0, "tokens": {"prompt": 1, "evil": 2}}, 1.0), "result tokens"),
    (("result", {"score": 0.0, "cost_usd": math.inf}, 1.0), "cost_usd"),
    (("result", {"score": 1.0}, -5), "worker seconds"),
    (("error", "other", 42), "error"),
    (("error", "crash", "x"), "error"),
])
def test_malformed_events_are_refused_with_a_reason(event: object, why: str) -> None:
    with pytest.raises(MalformedEvent, match=why):
        events.parse(event)


def test_an_unknown_kind_is_skipped_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    assert events.parse(("telemetry-v9", {"cpu": 1})) == ("telemetry-v9",)
    events.unknown("telemetry-v9")
    events.unknown("telemetry-v9")
    assert sum("telemetry-v9" in r.getMessage() for r in caplog.records) == 1
