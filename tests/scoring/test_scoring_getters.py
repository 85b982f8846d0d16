"""Getters against an in-process fake guest (UNIT tests of their logic; no sandbox)."""

from __future__ import annotations

from pathlib import Path

import anyio
import openpyxl
import pytest
from fake_guest import FakeGuest

from benchmarks.context import RunContext, TaskContext
from benchmarks.downloads import HostFiles
from benchmarks.schema import GetterSpec, Task
from harness.base.errors import TaskError
from scoring.evaluate import NothingFound, fetch_state
from scoring.registry import check_getter
from vm.types import ExecResult


def ctx_for(tmp_path: Path, assets: Path | None = None) -> TaskContext:
    task = Task.model_validate({"id": "t", "instruction": "i", "evaluator": {"func": "infeasible"}}).bind(
        domain="os", assets_dir=assets)
    return RunContext(work_root=tmp_path / "w", downloads=HostFiles(tmp_path / "c")).for_evaluation(task, object())


def spec(**kw) -> GetterSpec:
    return GetterSpec.model_validate(kw)


async def test_vm_file_single_missing_and_relative_paths(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path)
    guest = FakeGuest(files={"/home/user/Desktop/a.txt": b"A"})
    path = await fetch_state(spec(type="vm_file", path="Desktop/a.txt", dest="a.txt"), guest, ctx)
    assert await anyio.Path(path).read_bytes() == b"A" and Path(path).parent == ctx.work_dir.resolve()
    with pytest.raises(NothingFound, match="vm_file found nothing"):
        await fetch_state(spec(type="vm_file", path="/home/user/none.txt", dest="n.txt"), guest, ctx)


async def test_vm_file_multi_gives_keeps_missing_entries_as_none(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path)
    guest = FakeGuest(files={"/a": b"1", "/c": b"3"})
    got = await fetch_state(spec(type="vm_file", multi=True, path=["/a", "/b", "/c"], dest=["a", "b", "c"], gives=[0, 1, 2]),
                            guest, ctx)
    assert [Path(p).name if p else None for p in got] == ["a", None, "c"]
    only_first = await fetch_state(spec(type="vm_file", multi=True, path=["/a", "/c"], dest=["a", "c"]), guest, ctx)
    assert isinstance(only_first, str) and (ctx.work_dir / "c").read_bytes() == b"3"  # saved though not given


async def test_vm_file_dest_cannot_escape_the_cache_folder(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="must stay inside"):
        await fetch_state(spec(type="vm_file", path="/a", dest="../../x"), FakeGuest(files={"/a": b"1"}), ctx_for(tmp_path))


async def test_cloud_file_from_assets_multi(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "g1.txt").write_text("one")
    (assets / "g2.txt").write_text("two")
    ctx = ctx_for(tmp_path, assets)
    got = await fetch_state(spec(type="cloud_file", multi=True, path=["g1.txt", "g2.txt"], dest=["x1", "x2"], gives=[1, 0]),
                            FakeGuest(), ctx)
    assert [await anyio.Path(p).read_text() for p in got] == ["two", "one"]
    with pytest.raises(TaskError, match="escapes"):
        await fetch_state(spec(type="cloud_file", path="../w", dest="x"), FakeGuest(), ctx)


async def test_command_getters_return_stdout_or_stderr_and_none_when_it_cannot_run(tmp_path: Path) -> None:
    def handler(command, shell):
        if command == "missing-binary":
            return ExecResult(returncode=-1, error="not found", status="error")
        return ExecResult(returncode=1, output="out\n", error="Error: boom\n")

    guest = FakeGuest(handler=handler)
    ctx = ctx_for(tmp_path)
    assert await fetch_state(spec(type="vm_command_line", command="x", shell=True), guest, ctx) == "out\n"
    assert await fetch_state(spec(type="vm_command_error", command="x", shell=True), guest, ctx) == "Error: boom\n"
    with pytest.raises(NothingFound):
        await fetch_state(spec(type="vm_command_line", command="missing-binary"), guest, ctx)


async def test_desktop_getters(tmp_path: Path) -> None:
    guest = FakeGuest(screen=(1280, 720))
    guest.a11y = "<desktop-frame/>"
    guest.tree = {"type": "directory", "name": "x", "children": []}
    guest.windows = {"vlc": (1280, 720)}
    ctx = ctx_for(tmp_path)
    assert await fetch_state(spec(type="vm_screen_size"), guest, ctx) == {"width": 1280, "height": 720}
    assert await fetch_state(spec(type="vm_window_size", app_class_name="vlc"), guest, ctx) == {"width": 1280, "height": 720}
    assert await fetch_state(spec(type="accessibility_tree"), guest, ctx) == "<desktop-frame/>"
    assert await fetch_state(spec(type="list_directory", path="~/Pictures"), guest, ctx) == guest.tree
    assert guest.calls[-1] == ("list_directory", "/home/user/Pictures")
    with pytest.raises(NothingFound):
        await fetch_state(spec(type="vm_window_size", app_class_name="gimp"), guest, ctx)


async def test_content_from_vm_file_last_row(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    for row in (["Name", "Papers"], ["Ann", 12], ["Bob", 7]):
        wb.active.append(row)
    wb.save(tmp_path / "s.xlsx")
    guest = FakeGuest(files={"/home/user/s.xlsx": (tmp_path / "s.xlsx").read_bytes()})
    got = await fetch_state(spec(type="content_from_vm_file", path="/home/user/s.xlsx", file_type="xlsx",
                                 file_content="last_row"), guest, ctx_for(tmp_path))
    assert got == ["Bob", "7"]
    assert check_getter(spec(type="content_from_vm_file", path="/x.csv", file_type="csv", file_content="last_row")) == [
        "getter:content_from_vm_file[file_type=csv file_content=last_row]"]


def test_unknown_getter_is_reported_by_name() -> None:
    assert check_getter(spec(type="googledrive_file")) == ["getter:googledrive_file"]
    assert check_getter(spec(type="vm_file", multi=True, path=["a"], dest="a")) == [
        "getter:vm_file[multi needs equal-length path and dest lists]"]


async def test_app_config_getters_read_from_the_users_home(tmp_path: Path) -> None:
    guest = FakeGuest(files={"/home/user/.config/GIMP/2.10/sessionrc": b"(hide-docks yes)\n",
                             "/home/user/.config/vlc/vlcrc": b"qt-minimal-view=1\n"})
    ctx = ctx_for(tmp_path)
    gimp = await fetch_state(spec(type="gimp_config_file", file_name="sessionrc", dest="sessionrc"), guest, ctx)
    vlc = await fetch_state(spec(type="vlc_config", dest="vlcrc"), guest, ctx)
    assert await anyio.Path(gimp).read_text() == "(hide-docks yes)\n"
    assert await anyio.Path(vlc).read_text() == "qt-minimal-view=1\n"
    with pytest.raises(NothingFound):
        await fetch_state(spec(type="gimp_config_file", file_name="gimprc", dest="gimprc"), guest, ctx)
