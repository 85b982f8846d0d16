"""GIMP and the desktop background on a real sandbox: the flip-horizontal task's reference solution,
driven through GIMP's menus, exports a mirror that scores 1; vm_wallpaper reads the picture the
session's GNOME setting names (the guest has no /wallpaper endpoint)."""

from __future__ import annotations

import anyio
import pytest

from benchmarks.context import RunContext
from benchmarks.loader import load_suite, resolve_benchmark
from benchmarks.schema import Task
from benchmarks.setup_steps import run_task_setup
from scoring import evaluate

pytestmark = pytest.mark.docker


async def test_flip_horizontal_reference_solution_scores_1_in_real_gimp(docker_provider, tmp_path) -> None:
    task = next(t for t in load_suite(resolve_benchmark("desktop-basics")).tasks
                if t.source == "desktop-basics:flip-horizontal")
    ctx = RunContext(work_root=tmp_path)
    box = await docker_provider.start()
    try:
        with anyio.fail_after(150):
            await run_task_setup(task, box.guest, ctx)
            for action in task.solution or []:
                result = await box.execute(action)
                assert action == "DONE" or result.ok, f"{action[:60]!r} failed: {result.error[-300:]}"
            scored = await evaluate(task, box.guest, list(task.solution or []), ctx)
        assert scored.score == 1.0, scored.to_dict()
    finally:
        with anyio.CancelScope(shield=True):
            await docker_provider.stop(box)


async def test_vm_wallpaper_returns_the_picture_gsettings_was_set_to(docker_provider, tmp_path) -> None:
    picture = b"\x89PNG\r\n\x1a\n" + b"wallpaper bytes"
    box = await docker_provider.start()
    try:
        await box.guest.upload("/home/user/Pictures/bg one.png", picture)
        set_it = await box.guest.execute(
            "gsettings set org.gnome.desktop.background picture-uri 'file:///home/user/Pictures/bg%20one.png'",
            shell=True)
        assert set_it.ok, set_it.error
        task = Task.model_validate({"id": "w", "instruction": "i", "evaluator": {
            "func": "compare_image_list", "result": {"type": "vm_wallpaper", "dest": "bg.png"},
            "expected": {"type": "vm_file", "path": "/home/user/Pictures/bg one.png", "dest": "gold.png"}}})
        tctx = RunContext(work_root=tmp_path).for_evaluation(task.bind(domain="os"), box.guest)
        from scoring.getters.wallpaper import vm_wallpaper

        path = await vm_wallpaper(box.guest, task.evaluator.metric_specs()[0].result, tctx)
        assert path is not None
        assert await anyio.Path(path).read_bytes() == picture
    finally:
        with anyio.CancelScope(shield=True):
            await docker_provider.stop(box)
