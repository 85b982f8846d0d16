"""OSWorld scoring rules: and/or conjunction, infeasible and FAIL, postconfig before getters,
getters that find nothing. UNIT tests: the guest is an in-process fake, metrics are real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fake_guest import FakeGuest

from benchmarks.context import RunContext
from benchmarks.downloads import HostFiles
from benchmarks.schema import Task
from benchmarks.setup_steps import run_task_setup
from harness.base.errors import SandboxError, TaskError
from scoring import evaluate
from vm.types import ExecResult


def echo_guest(**files: bytes) -> FakeGuest:
    """Commands `echo X` print X (so vm_command_line results are chosen by the task)."""

    def handler(command: Any, shell: bool) -> ExecResult:
        text = command if isinstance(command, str) else " ".join(command)
        if text.startswith("echo "):
            return ExecResult(0, text[5:] + "\n")
        return ExecResult(127, "", "not found")

    return FakeGuest(files={f"/home/user/{k}": v for k, v in files.items()}, handler=handler)


def cmd_metric(word: str, want: str) -> tuple[dict, dict]:
    return ({"type": "vm_command_line", "command": f"echo {word}", "shell": True},
            {"type": "rule", "rules": {"expected": f"{want}\n"}})


def task(funcs: list[str] | str, results: Any = None, expected: Any = None, options: Any = None, *,
         conj: str | None = None, postconfig: list | None = None, config: list | None = None) -> Task:
    ev: dict[str, Any] = {"func": funcs}
    for key, value in (("result", results), ("expected", expected), ("options", options), ("conj", conj),
                       ("postconfig", postconfig)):
        if value is not None:
            ev[key] = value
    t = Task.model_validate({"id": "t", "instruction": "i", "evaluator": ev, "config": config or []})
    return t.bind(domain="os")


def multi(pairs: list[tuple[str, str]], conj: str) -> Task:
    results, expected = zip(*(cmd_metric(w, e) for w, e in pairs), strict=True)
    return task(["exact_match"] * len(pairs), list(results), list(expected), conj=conj)


@pytest.fixture
def ctx(tmp_path: Path) -> RunContext:
    return RunContext(work_root=tmp_path / "work", downloads=HostFiles(tmp_path / "cache"))


@pytest.mark.parametrize(
    ("pairs", "conj", "score", "ran"),
    [
        ([("a", "a"), ("b", "b")], "and", 1.0, 2),
        ([("a", "x"), ("b", "b")], "and", 0.0, 1),  # first 0 decides: the second never runs
        ([("a", "a"), ("b", "x"), ("c", "c")], "and", 0.0, 2),
        ([("a", "x"), ("b", "b")], "or", 1.0, 2),
        ([("a", "a"), ("b", "x")], "or", 1.0, 1),  # first 1 decides
        ([("a", "x"), ("b", "y")], "or", 0.0, 2),
    ],
)
async def test_and_or_conjunction(ctx: RunContext, pairs, conj: str, score: float, ran: int) -> None:
    guest = echo_guest()
    result = await evaluate(multi(pairs, conj), guest, ["pyautogui.click(1, 1)", "DONE"], ctx)
    assert result.score == score
    assert sum(k == "execute" for k, _ in guest.calls) == ran
    assert [d["score"] is None for d in result.details] == [i >= ran for i in range(len(pairs))]


async def test_and_is_the_mean_and_or_is_the_max_of_fractional_scores(ctx: RunContext, tmp_path: Path) -> None:
    def fuzzy(word: str, want: str) -> tuple[dict, dict]:
        return ({"type": "vm_command_line", "command": f"echo -n {word}", "shell": True},
                {"type": "rule", "rules": {"expected": want}})

    def handler(command: Any, shell: bool) -> ExecResult:
        return ExecResult(0, command.removeprefix("echo -n "))

    pairs = [fuzzy("abcd", "abcd"), fuzzy("abcd", "abxy")]  # ratios 1.0 and 0.5
    for conj, want in (("and", 0.75), ("or", 1.0)):
        t = task(["fuzzy_match", "fuzzy_match"], [p[0] for p in pairs], [p[1] for p in pairs], conj=conj)
        assert (await evaluate(t, FakeGuest(handler=handler), [], ctx)).score == pytest.approx(want)
    pairs = [fuzzy("abcd", "abxy"), fuzzy("abcd", "axyz")]  # 0.5 and 0.25
    t = task(["fuzzy_match", "fuzzy_match"], [p[0] for p in pairs], [p[1] for p in pairs], conj="or")
    assert (await evaluate(t, FakeGuest(handler=handler), [], ctx)).score == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("actions", "score"),
    [(["FAIL"], 1.0), (["pyautogui.click(1, 2)", "FAIL"], 1.0), ([{"action_type": "FAIL"}], 1.0),
     (["DONE"], 0.0), ([], 0.0), (["FAIL", "DONE"], 0.0)],
)
async def test_infeasible_scores_one_only_when_the_last_action_is_fail(ctx: RunContext, actions, score) -> None:
    result = await evaluate(task("infeasible"), FakeGuest(), actions, ctx)
    assert result.score == score


async def test_feasible_task_whose_last_action_is_fail_scores_zero_without_reading_state(ctx: RunContext) -> None:
    r, e = cmd_metric("ok", "ok")
    guest = echo_guest()
    assert (await evaluate(task("exact_match", r, e), guest, ["DONE"], ctx)).score == 1.0
    guest = echo_guest()
    result = await evaluate(task("exact_match", r, e), guest, ["FAIL"], ctx)
    assert result.score == 0.0 and guest.calls == [] and "FAIL" in result.reason


async def test_postconfig_runs_before_getters(ctx: RunContext) -> None:
    r, e = cmd_metric("ok", "ok")
    post = [{"type": "activate_window", "parameters": {"window_name": "Calc"}},
            {"type": "execute", "parameters": {"command": ["python", "-c", "save()"]}}]
    guest = echo_guest()
    await evaluate(task("exact_match", r, e, postconfig=post), guest, ["DONE"], ctx)
    assert [k for k, _ in guest.calls] == ["activate_window", "execute", "execute"]
    assert guest.calls[1][1] == ["python", "-c", "save()"] and guest.calls[2][1] == "echo ok"


async def test_getter_that_finds_nothing_scores_zero_instead_of_crashing(ctx: RunContext) -> None:
    t = task("compare_text_file", {"type": "vm_file", "path": "/home/user/missing.txt", "dest": "m.txt"},
             {"type": "cloud_file", "path": "unused.txt", "dest": "u.txt"})
    result = await evaluate(t, FakeGuest(), ["DONE"], ctx)
    assert result.score == 0.0
    assert "vm_file found nothing" in result.details[0]["note"]
    t = task("check_include_exclude", {"type": "cache_file", "path": "never-written.out"},
             {"type": "rule", "rules": {"include": [], "exclude": ["x"]}})
    assert (await evaluate(t, FakeGuest(), ["DONE"], ctx)).score == 0.0


async def test_or_continues_after_a_getter_finds_nothing(ctx: RunContext) -> None:
    missing = {"type": "vm_file", "path": "/nope", "dest": "nope"}
    r, e = cmd_metric("yes", "yes")
    t = task(["exact_match", "exact_match"], [missing, r], [{"type": "rule", "rules": {"expected": "x"}}, e], conj="or")
    assert (await evaluate(t, echo_guest(), [], ctx)).score == 1.0


async def test_vm_file_and_cloud_file_reach_a_file_metric(ctx: RunContext, tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "gold.txt").write_text("hello world\n")
    t = task("compare_text_file", {"type": "vm_file", "path": "/home/user/out.txt", "dest": "out.txt"},
             {"type": "cloud_file", "path": "gold.txt", "dest": "gold.txt"})
    t.bind(domain="os", assets_dir=assets)
    assert (await evaluate(t, echo_guest(**{"out.txt": b"hello world\n"}), ["DONE"], ctx)).score == 1.0
    assert (await evaluate(t, echo_guest(**{"out.txt": b"hello there\n"}), ["DONE"], ctx)).score == 0.0


async def test_multi_vm_file_saves_every_dest_and_gives_selected_ones(ctx: RunContext, tmp_path: Path) -> None:
    # compare_table's sheet_print reads <stem>-<sheet>.csv next to the workbook: both must land together.
    fixtures = Path(__file__).parents[1] / "fixtures" / "scoring"
    assets = tmp_path / "assets"
    assets.mkdir()
    for name in ("lo_values.xlsx", "lo_values-Sheet1.csv"):
        (assets / name).write_bytes((fixtures / name).read_bytes())
    t = task("compare_table",
             {"type": "vm_file", "multi": True, "path": ["/home/user/r.xlsx", "/home/user/r-Sheet1.csv"],
              "dest": ["r.xlsx", "r-Sheet1.csv"]},
             {"type": "cloud_file", "multi": "true", "path": ["lo_values.xlsx", "lo_values-Sheet1.csv"],
              "dest": ["gold.xlsx", "gold-Sheet1.csv"]},
             {"rules": [{"type": "sheet_print", "sheet_idx0": "RNSheet1", "sheet_idx1": "ENSheet1"}]})
    t.bind(domain="libreoffice_calc", assets_dir=assets)
    for source, want in (("lo_formulas", 1.0), ("lo_wrong", 0.0)):
        guest = FakeGuest(files={"/home/user/r.xlsx": (fixtures / f"{source}.xlsx").read_bytes(),
                                 "/home/user/r-Sheet1.csv": (fixtures / f"{source}-Sheet1.csv").read_bytes()})
        result = await evaluate(t, guest, ["DONE"], ctx)
        assert result.score == want, result.details


async def test_setup_stdout_file_is_read_by_cache_file_at_evaluation(ctx: RunContext) -> None:
    t = task("file_contains", {"type": "cache_file", "path": "probe.out"},
             {"type": "rule", "rules": {"expected": ["ready"]}},
             config=[{"type": "execute", "parameters": {"command": "echo ready", "shell": True, "stdout": "probe.out"}}])
    guest = echo_guest()
    await run_task_setup(t, guest, ctx)
    assert (await evaluate(t, guest, ["DONE"], ctx)).score == 1.0
    assert (await evaluate(t, echo_guest(), ["DONE"], ctx)).score == 0.0  # another sandbox: no setup output


async def test_a_metric_that_raises_on_a_corrupt_file_scores_zero_with_the_error(ctx: RunContext, tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    wb = openpyxl.Workbook()
    wb.save(assets / "gold.xlsx")
    t = task("compare_table", {"type": "vm_file", "path": "/home/user/r.xlsx", "dest": "r.xlsx"},
             {"type": "cloud_file", "path": "gold.xlsx", "dest": "gold.xlsx"},
             {"rules": [{"type": "sheet_data", "sheet_idx0": 0, "sheet_idx1": "EI0"}]})
    t.bind(domain="libreoffice_calc", assets_dir=assets)
    result = await evaluate(t, FakeGuest(files={"/home/user/r.xlsx": b"not a zip"}), ["DONE"], ctx)
    assert result.score == 0.0


async def test_unknown_metric_is_a_task_error_and_guest_failure_propagates(ctx: RunContext) -> None:
    r, e = cmd_metric("a", "a")
    with pytest.raises(TaskError, match="no_such_metric"):
        await evaluate(task("no_such_metric", r, e), echo_guest(), [], ctx)

    class Broken(FakeGuest):
        async def execute(self, command: Any, *, shell: bool = False, timeout: float = 120.0) -> ExecResult:
            raise SandboxError("guest gone")

    with pytest.raises(SandboxError, match="guest gone"):
        await evaluate(task("exact_match", r, e), Broken(), [], ctx)


async def test_details_are_json_ready(ctx: RunContext) -> None:
    import orjson

    result = await evaluate(multi([("a", "a"), ("b", "x")], "and"), echo_guest(), [], ctx)
    data = orjson.loads(orjson.dumps(result.details))
    assert data[0]["func"] == "exact_match" and data[0]["result_preview"] == "a" and data[1]["score"] == 0.0
