"""`--record`: each task's screen is recorded in its sandbox (ffmpeg x11grab, after setup, before
evaluation) to recording.mp4 in the task folder; it plays (ffprobe reads a duration > 0) and the
report's task page shows it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.config import make_config
from harness.runner import execute_run
from results.report import build_report
from tests.test_osworld_agent_sim import results

pytestmark = pytest.mark.docker

TASKS = ["05e9c78a-76f1-5d43-91b3-b43f807010c1", "19de64a9-7b78-53ea-92fb-3f95a170afe3"]  # os: two terminal tasks


def duration_s(image: str, mp4: Path) -> float:
    """ffprobe of the desktop image (the host has none), on the file mounted read-only."""
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", f"{mp4.parent}:/v:ro", "--entrypoint",
                          "ffprobe", image, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                          f"/v/{mp4.name}"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return float(out.stdout.strip())


async def test_record_writes_a_playable_mp4_per_task_shown_in_the_report(docker_engine, desktop_image, tmp_path):
    run_dir = tmp_path / "run"
    code = await execute_run(make_config({"benchmark": "desktop-basics", "agent": "oracle", "tasks": TASKS,
                                          "concurrency": 2, "run_dir": run_dir, "quiet": True, "record": True}),
                             show_summary=False)
    assert code == 0
    assert {t: r["score"] for t, r in results(run_dir).items()} == dict.fromkeys(TASKS, 1.0)
    for task_id in TASKS:
        mp4 = run_dir / "os" / task_id / "recording.mp4"
        seconds = duration_s(desktop_image, mp4)
        print(f"{task_id}: recording {mp4.stat().st_size} bytes, {seconds:.1f} s")
        assert seconds > 0
    report_pages_show_the_recordings(run_dir)


def report_pages_show_the_recordings(run_dir: Path) -> None:
    index = build_report(run_dir).index
    pages = [p.read_text() for p in index.parent.rglob("*.html")]
    with_video = [p for p in pages if "<video" in p]
    assert len(with_video) == len(TASKS) and all("recording.mp4" in page for page in with_video)
