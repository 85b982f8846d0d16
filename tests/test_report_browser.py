"""The run report rendered in headless Chromium: real runs in, assertions on the rendered pages.

Screenshots of each page type are saved under the test's tmp dir and copied to /tmp/report-shots/.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import orjson
import pytest

from results.read import read_run
from results.report import build_report
from results.report.run_data import page_name
from tests.test_report_support import (
    chromium,
    needs_chromium,
    oracle_sim_run,
    prompt_sim_run,
    rmcts_sim_run,
    rmcts_tree,
)

pytestmark = needs_chromium

ROWS = "document.querySelectorAll('#task-table tbody tr.task-row')"
VISIBLE_ROWS = "Array.from(" + ROWS + ").filter(r => !r.hidden)"


async def test_oracle_run_report_has_one_row_per_task_and_task_pages_show_their_screenshots(tmp_path: Path) -> None:
    run_dir = await oracle_sim_run(tmp_path, tasks=6, domains=2)
    result = await anyio.to_thread.run_sync(build_report, run_dir)
    assert result.tasks == 6 and result.written == 6
    view = read_run(run_dir)
    async with chromium(tmp_path) as page:
        await page.goto(result.index)
        assert await page.eval(ROWS + ".length") == 6
        ids = await page.eval("Array.from(" + ROWS + ").map(r => r.dataset.domain + '/' + r.dataset.id)")
        assert sorted(ids) == sorted(f"{d}/{t}" for d, t in view.results)
        assert await page.eval("document.getElementById('success-rate').textContent") == "100.0%"
        # score by domain chart: one bar per domain plus the overall bar
        assert await page.eval("document.querySelectorAll('#domain-chart .domain-bar').length") == 3
        # domain filter
        await page.eval("{ const s = document.getElementById('filter-domain'); s.value = 'sim1';"
                        "s.dispatchEvent(new Event('change')) }")
        assert await page.eval(VISIBLE_ROWS + ".map(r => r.dataset.domain)") == ["sim1"] * 3
        await page.screenshot(tmp_path / "index-oracle.png")

        # a task page: every step screenshot is shown and loads from the run folder
        key = sorted(k for k in view.results if k[0] == "sim1")[0]  # a row the domain filter shows
        task_dir = run_dir / key[0] / key[1]
        pngs = sorted(p.name for p in task_dir.glob("step_*.png"))
        assert len(pngs) == 4  # the starting screen (step_0) and one after each of the three clicks
        await page.click(f'a[href="{page_name(key)}"]')
        await page.wait_for("document.getElementById('trajectory') !== null")
        images = await page.load_all_images()
        shown = {img["src"].rsplit("/", 1)[-1] for img in images}
        assert shown == set(pngs)
        assert all(img["w"] == 1920 and img["h"] == 1080 for img in images), images
        # every click of the oracle's solution is marked on the screen it was aimed at
        assert await page.eval("document.querySelectorAll('#trajectory .mark').length") == 3
        left = await page.eval("parseFloat(document.querySelector('#trajectory .mark').style.left)")
        first_click = orjson.loads((task_dir / "traj.jsonl").read_bytes().splitlines()[0])["action"]
        x = int(first_click.split("(")[1].split(",")[0])
        assert left == pytest.approx(100 * x / 1920, abs=0.01)
        assert "exact_match" in await page.eval("document.getElementById('evaluation').textContent")
        await page.screenshot(tmp_path / "task-oracle.png")


async def test_prompt_run_report_filters_failed_tasks_and_shows_model_reasoning_and_cost(tmp_path: Path) -> None:
    run_dir = await prompt_sim_run(tmp_path, tasks=6)
    view = read_run(run_dir)
    failed = sorted(f"{d}/{t}" for (d, t), r in view.results.items() if r["score"] < 1)
    assert 0 < len(failed) < 6, "the policy solves some tasks and fails others"
    result = await anyio.to_thread.run_sync(build_report, run_dir)
    async with chromium(tmp_path) as page:
        await page.goto(result.index)
        assert await page.eval(ROWS + ".length") == 6
        await page.eval("{ const c = document.getElementById('filter-failed'); c.checked = true;"
                        "c.dispatchEvent(new Event('change')) }")
        shown = await page.eval(VISIBLE_ROWS + ".map(r => r.dataset.domain + '/' + r.dataset.id)")
        assert sorted(shown) == failed
        assert await page.eval("document.getElementById('filter-count').textContent") == f"{len(failed)} of 6 tasks"
        # sort by score descending, then ascending (click the header twice)
        await page.click("th[data-key=score]")
        await page.eval("{ const c = document.getElementById('filter-failed'); c.checked = false;"
                        "c.dispatchEvent(new Event('change')) }")
        scores = await page.eval("Array.from(" + ROWS + ").map(r => parseFloat(r.dataset.score))")
        assert scores == sorted(scores, reverse=True)
        await page.click("th[data-key=score]")
        scores = await page.eval("Array.from(" + ROWS + ").map(r => parseFloat(r.dataset.score))")
        assert scores == sorted(scores)
        # tokens and cost by model
        model_row = await page.eval("Array.from(document.querySelectorAll('#model-table tbody td')).map(t => t.textContent)")
        assert model_row[0] == "sim-model" and model_row[-1].startswith("$") and model_row[-1] != "$0.0000"
        assert int(model_row[1]) >= 6  # calls: from the session's journaled LLM tallies
        assert "events.jsonl" in await page.eval("document.getElementById('model-source').textContent")
        # the model's markup in replies is shown as text, never run
        assert await page.eval("window.PWNED === undefined && !document.getElementById('pwned')")
        await page.screenshot(tmp_path / "index-prompt.png")

        failing = next(k for k, r in sorted(view.results.items()) if r["score"] < 1 and k[1].endswith("1"))
        await page.goto(result.index.parent / page_name(failing))
        text = await page.eval("document.getElementById('trajectory').innerText")
        assert "I would press OK." in text and "parse_error" in text
        assert "<script id=\"pwned\">" in text  # escaped markup is visible as text
        assert await page.eval("window.PWNED === undefined && !document.getElementById('pwned')")
        assert await page.eval("document.querySelector('#task-score').textContent") == "0.00"
        await page.screenshot(tmp_path / "task-prompt.png")


async def test_tree_view_shows_every_node_and_clicking_one_shows_its_screenshot_and_verdicts(tmp_path: Path) -> None:
    run_dir = await oracle_sim_run(tmp_path, tasks=2, domains=1)
    key = sorted(read_run(run_dir).results)[0]
    task_dir = run_dir / key[0] / key[1]
    tree = rmcts_tree(task_dir)
    (task_dir / "tree.json").write_bytes(orjson.dumps(tree))
    result = await anyio.to_thread.run_sync(build_report, run_dir)
    async with chromium(tmp_path) as page:
        await page.goto(result.index.parent / page_name(key))
        assert await page.eval("document.querySelectorAll('#tree-svg .node').length") == len(tree["nodes"])
        assert await page.eval("document.querySelectorAll('#tree-svg .node.chosen').length") == 4
        assert await page.eval("document.querySelectorAll('#tree-svg .edge.chosen').length") == 3
        radii = await page.eval("Array.from(document.querySelectorAll('#tree-svg .node circle')).map(c => +c.getAttribute('r'))")
        assert radii[0] == max(radii)  # the root has the most visits
        # the root is selected first; clicking node "2" shows its detail (and hides the root's)
        assert await page.eval("getComputedStyle(document.getElementById('node-0')).display") == "block"
        index_of_2 = await page.eval("Array.from(document.querySelectorAll('#tree-svg .node title'))"
                                     ".findIndex(t => t.textContent.startsWith('2:'))")
        await page.click(f'#tree-svg .node[data-node="{index_of_2}"] circle')
        assert await page.eval("getComputedStyle(document.getElementById('node-0')).display") == "none"
        detail = f"document.getElementById('node-{index_of_2}')"
        assert await page.eval(f"getComputedStyle({detail}).display") == "block"
        text = await page.eval(f"{detail}.innerText")
        assert "pyautogui.doubleClick(100, 600)" in text and "0.380" in text and "−0.400" not in text
        assert "-0.400" in text and "D" in text and "E" in text
        images = await page.load_all_images()
        assert images and all(img["w"] > 0 for img in images)
        # the double click is marked on the parent's (root's) screen
        assert await page.eval(f"{detail}.querySelectorAll('.mark.double').length") == 1
        # node 1 carries judge reasons (one hostile) and a reflection
        index_of_1 = await page.eval("Array.from(document.querySelectorAll('#tree-svg .node title'))"
                                     ".findIndex(t => t.textContent.startsWith('1:'))")
        await page.click(f'#tree-svg .node[data-node="{index_of_1}"] circle')
        text = await page.eval(f"document.getElementById('node-{index_of_1}').innerText")
        assert "Clicking the title bar does nothing" in text and "The dialog opened as intended." in text
        assert await page.eval("window.PWNED === undefined && !document.getElementById('pwned')")
        await page.eval("document.getElementById('tree-view').scrollIntoView()")
        await page.screenshot(tmp_path / "task-tree.png")


async def test_rmcts_run_report_draws_each_task_tree_with_its_chosen_path_and_reflections(tmp_path: Path) -> None:
    run_dir = await rmcts_sim_run(tmp_path, tasks=3)
    view = read_run(run_dir)
    assert len(view.results) == 3
    result = await anyio.to_thread.run_sync(build_report, run_dir)
    async with chromium(tmp_path) as page:
        retrieved = 0
        for key in sorted(view.results):
            tree = orjson.loads((run_dir / key[0] / key[1] / "tree.json").read_bytes())
            await page.goto(result.index.parent / page_name(key))
            assert await page.eval("document.querySelectorAll('#tree-svg .node').length") == len(tree["nodes"])
            chosen = {str(n) for n in tree["final_path"]} | {str(tree["root"])}
            drawn = await page.eval("Array.from(document.querySelectorAll('#tree-svg .node.chosen title'))"
                                    ".map(t => t.textContent.split(':')[0])")
            assert set(drawn) == chosen
            assert await page.eval("document.querySelectorAll('#tree-svg .edge.chosen').length") == len(chosen) - 1
            # click the last node of the chosen path: its screenshot, action, prior, Q and verdicts show
            last = str(tree["final_path"][-1])
            index = await page.eval("Array.from(document.querySelectorAll('#tree-svg .node title'))"
                                    f".findIndex(t => t.textContent.startsWith({last!r} + ':'))")
            await page.click(f'#tree-svg .node[data-node="{index}"] circle')
            detail = f"document.getElementById('node-{index}')"
            await page.wait_for(f"getComputedStyle({detail}).display === 'block'")
            text = await page.eval(f"{detail}.innerText")
            node = next(n for n in tree["nodes"] if str(n["id"]) == last)
            assert node["actions"][0] in text and "prior P" in text and "Q" in text
            assert "letters" in text and "oppose_first" in text  # the judges' verdicts
            images = await page.load_all_images()
            assert all(img["w"] == 1920 for img in images)
            assert f"node_{last}.png" in {img["src"].rsplit("/", 1)[-1] for img in images}
            retrieved += await page.eval("document.querySelectorAll('.reflection').length")
            assert await page.eval("window.PWNED === undefined && !document.getElementById('pwned')")
        # reflections stored by earlier tasks are retrieved by later ones, shown with their text
        assert retrieved > 0
        text = await page.eval("document.querySelector('.reflection').innerText")
        assert "prefer the plain control" in text
        await page.eval("document.getElementById('tree-view').scrollIntoView()")
        await page.screenshot(tmp_path / "task-rmcts-tree.png")


DOCKER_TASKS = {  # short oracle solutions: a shell clean-up, an editor edit, a one-step task
    ("os", "05e9c78a-76f1-5d43-91b3-b43f807010c1"),
    ("text_editor", "3bfb20ee-7873-54d7-b5f6-04f3954410cf"),
    ("os", "fffcd193-d536-5ab7-8272-6bd335fec796"),
}


@pytest.mark.docker
async def test_oracle_run_on_the_builtin_suite_in_docker_renders_real_desktop_screenshots(
        docker_engine, desktop_image, tmp_path: Path) -> None:
    import sys

    run_dir = tmp_path / "docker-run"
    with anyio.fail_after(900):
        done = await anyio.run_process(
            [sys.executable, "-m", "harness", "run", "--benchmark", "desktop-basics", "--agent", "oracle",
             "--run-dir", str(run_dir), "-q", "--concurrency", "3", "--tasks", ",".join(t for _, t in DOCKER_TASKS)],
            check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    view = read_run(run_dir)
    assert set(view.results) == DOCKER_TASKS
    result = await anyio.to_thread.run_sync(build_report, run_dir)
    async with chromium(tmp_path) as page:
        await page.goto(result.index)
        assert await page.eval(ROWS + ".length") == len(DOCKER_TASKS)
        await page.screenshot(tmp_path / "index-docker.png")
        key = ("text_editor", "3bfb20ee-7873-54d7-b5f6-04f3954410cf")
        await page.click(f'a[href="{page_name(key)}"]')
        await page.wait_for("document.getElementById('trajectory') !== null")
        images = await page.load_all_images()
        pngs = sorted(p.name for p in (run_dir / key[0] / key[1]).glob("step_*.png"))
        assert pngs and {img["src"].rsplit("/", 1)[-1] for img in images} == set(pngs)
        width = view.run["config"]["screen_width"]
        assert all(img["w"] == width for img in images), images
        assert "compare_text_file" in await page.eval("document.getElementById('evaluation').textContent")
        await page.screenshot(tmp_path / "task-docker.png")
