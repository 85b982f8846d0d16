"""The suite's own Thunderbird profile on a real sandbox: Thunderbird opens it (no new profile, no
account wizard: setup waits for the Inbox window), a starred message lands in the Inbox mbox and
check_thunderbird_folder sees it; the untouched start scores 0."""

from __future__ import annotations

import anyio
import pytest

from benchmarks.context import RunContext
from benchmarks.loader import load_suite, resolve_benchmark
from benchmarks.setup_steps import run_task_setup
from scoring import evaluate


@pytest.mark.docker
async def test_suite_profile_opens_and_a_star_is_scored_from_the_inbox_mbox(docker_provider, tmp_path):
    task = next(t for t in load_suite(resolve_benchmark("desktop-basics")).tasks
                if t.source == "desktop-basics:star-bob-email")
    ctx = RunContext(work_root=tmp_path)
    scores: dict[str, float] = {}
    profiles: dict[str, str] = {}

    async def attempt(mode: str) -> None:
        box = await docker_provider.start()
        try:
            await run_task_setup(task, box.guest, ctx)
            listing = await box.guest.execute("ls /home/user/.thunderbird", shell=True)
            profiles[mode] = listing.output
            actions = list(task.solution or []) if mode == "oracle" else ["DONE"]
            for action in actions[:-1]:
                assert (await box.execute(action)).ok, action
            scores[mode] = (await evaluate(task, box.guest, actions, ctx)).score
        finally:
            with anyio.CancelScope(shield=True):
                await docker_provider.stop(box)

    with anyio.fail_after(150):
        async with anyio.create_task_group() as tg:
            for mode in ("oracle", "noop"):
                tg.start_soon(attempt, mode)
    assert scores == {"oracle": 1.0, "noop": 0.0}
    for listing in profiles.values():  # Thunderbird used our profile instead of making its own
        assert "t5q2a5hp.default-release" in listing and "default-default" not in listing
