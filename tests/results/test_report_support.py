"""Support for the report tests (no tests here): real runs to report on, and headless Chromium.

Chromium is Debian's `chromium` (installed by scripts/setup.sh; the tests install nothing). It is
driven over the DevTools protocol on loopback with aiohttp: one browser websocket, one page
session (flattened), commands answered by id.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from anyio.abc import Process

from benchmarks.sim_suite import write_sim_suite
from harness.base.aio import stop_process
from harness.config import make_config
from harness.runner import execute_run
from vm.sim import Scenario

CHROMIUM = Path("/usr/bin/chromium")
SHOTS_DIR = Path("/tmp/report-shots")  # copies of the artifacts, to look at by hand
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is absent: run scripts/setup.sh (installs Debian's chromium)"
)
_DEVTOOLS = re.compile(rb"DevTools listening on (ws://127\.0\.0\.1:\d+/devtools/browser/[\w-]+)")


# ---- runs ----------------------------------------------------------------------------------------

async def oracle_sim_run(root: Path, *, tasks: int = 6, domains: int = 2, run_name: str = "oracle-run",
                         ids: list[str] | None = None, latency_ms: float = 0.0) -> Path:
    """A real run: the oracle agent on a generated sim suite (sim provider, real engine and store)."""
    suite = root / "suite"
    if not suite.exists():
        write_sim_suite(suite, tasks=tasks, steps=3, trap_every=3, domains=domains)
    run_dir = root / run_name
    config = make_config({"benchmark": str(suite), "agent": "oracle", "provider": "sim", "run_dir": run_dir,
                          "quiet": True, "concurrency": 3, "tasks": ids or [], "sim_latency_ms": latency_ms})
    with anyio.fail_after(120):
        assert await execute_run(config, show_summary=False) == 0
    return run_dir


_STATE = re.compile(r"(chain-\d+(?:-trap)?-s\d+) state (\w+)")
HOSTILE = '<script id="pwned">window.PWNED=1</script><img src=x onerror="window.PWNED=2">'


def _last_text(request: dict[str, Any]) -> str:
    content = request["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def mixed_policy(request: dict[str, Any]) -> str:
    """The model for the prompt-agent run: solves plain tasks, falls into every trap and then gives
    up, and answers seed-1 tasks with prose (a parse error per step) laced with markup."""
    m = _STATE.search(_last_text(request))
    if not m:
        return "I cannot see the app.\n```FAIL```"
    scenario, state = Scenario.parse(m.group(1)), m.group(2)
    if state == "goal":
        return "The app shows its goal state.\n```DONE```"
    if state == "trap":
        return f"Dead end; giving up. {HOSTILE}\n```FAIL```"
    if scenario.trap:
        return f"The highlighted button looks right.\n```python\n{scenario.trap_action()}\n```"
    if scenario.seed == 1:
        return f"I would press OK. {HOSTILE}"
    return f"State {state}: the next control is here.\n```python\n{scenario.correct_action(int(state))}\n```"


async def _priced_sim_run(root: Path, name: str, policy: Any, *, tasks: int, trap_every: int, domains: int,
                          run_name: str, timeout: float, **config: Any) -> Path:
    """A real run on sim sandboxes with llm-sim as the priced model (so cost shows); returns its folder."""
    from harness.llm.sim import SimConfig, SimServer

    suite = root / f"{name}-suite"
    write_sim_suite(suite, tasks=tasks, steps=2, trap_every=trap_every, domains=domains)
    run_dir = root / run_name
    async with SimServer(SimConfig(policy=policy)) as sim:
        providers = root / f"{name}-providers.json"
        providers.write_text(json.dumps({
            "default_model": "sim-model", "embedding_model": "sim-embed",
            "endpoints": [{"kind": "openai-compatible", "base_url": sim.url, "models": ["*"], "api_key": "sk-report-test"}],
            "prices": {"sim-model": {"input_per_mtok": 2.5, "output_per_mtok": 10.0}},
        }))
        run_config = make_config({"benchmark": str(suite), "model": "sim-model", "provider": "sim", "quiet": True,
                                  "providers_file": str(providers), "run_dir": run_dir, **config})
        with anyio.fail_after(timeout):
            assert await execute_run(run_config, show_summary=False) == 0
    return run_dir


async def prompt_sim_run(root: Path, *, tasks: int = 6, run_name: str = "prompt-run") -> Path:
    """A real run of the prompt agent against llm-sim (priced, so cost shows), sim sandboxes."""
    return await _priced_sim_run(root, "prompt", mixed_policy, tasks=tasks, trap_every=3, domains=2, run_name=run_name,
                                 timeout=120, agent="prompt", max_steps=4, concurrency=3)


def rmcts_tree(task_dir: Path) -> dict[str, Any]:
    """A tree.json as the R-MCTS agent writes it, with node screenshots from the task's steps.

    7 nodes: root -> a (chosen) -> c (chosen) -> e (chosen), root -> b -> d, a -> f (unvisited).
    """
    shots = sorted(p.name for p in task_dir.glob("step_*.png"))
    shot = (lambda i: shots[i % len(shots)]) if shots else (lambda i: None)
    nodes = [
        {"id": "0", "parent": None, "action": None, "visits": 9, "Q": 0.41, "value": 0.1, "screenshot": shot(0)},
        {"id": "1", "parent": "0", "action": "pyautogui.click(640, 360)", "prior": 0.62, "visits": 6, "Q": 0.7,
         "value": 0.5, "screenshot": shot(1),
         "judge": {"verdicts": ["B", "A", "B"], "scores": [0.5, 1.0, 0.5],
                   "reasons": ["The dialog opened as intended.", HOSTILE]},
         "reflections": [{"objective": "Rename the file", "action": "pyautogui.click(10, 10)",
                          "reflection": "Clicking the title bar does nothing; use the menu."}]},
        {"id": "2", "parent": "0", "action": "pyautogui.doubleClick(100, 600)", "prior": 0.38, "visits": 2,
         "Q": -0.4, "value": -0.6, "screenshot": shot(2), "judge": ["D", "E"]},
        {"id": "3", "parent": "1", "action": "pyautogui.typewrite('report.txt')", "prior": 0.9, "visits": 4,
         "Q": 0.85, "value": 0.8, "screenshot": shot(3)},
        {"id": "4", "parent": "2", "action": "pyautogui.press('esc')", "prior": 1.0, "visits": 1, "Q": -0.2,
         "value": -0.2},
        {"id": "5", "parent": "3", "action": "pyautogui.moveTo(1200, 40)\npyautogui.click()", "prior": 1.0,
         "visits": 2, "Q": 1.0, "value": 1.0, "screenshot": shot(4)},
        {"id": "6", "parent": "1", "action": "pyautogui.scroll(-3, 300, 400)", "prior": 0.1, "visits": 0},
    ]
    return {"nodes": nodes, "chosen_path": ["0", "1", "3", "5"], "iterations": 9, "budget": 10}


# ---- Chromium over the DevTools protocol ---------------------------------------------------------

class Page:
    """One browser tab: navigate, evaluate JavaScript, click, capture a full-page screenshot."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: str) -> None:
        self._ws = ws
        self._session = session
        self._ids = itertools.count(1000)

    async def send(self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 30) -> dict[str, Any]:
        return await _command(self._ws, self._ids, method, params, session=self._session, timeout=timeout)

    async def eval(self, expression: str) -> Any:
        reply = await self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                     "awaitPromise": True})
        if "exceptionDetails" in reply:
            raise AssertionError(f"JavaScript failed: {expression[:120]}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def wait_for(self, expression: str, *, timeout: float = 20) -> Any:
        """Poll a JavaScript condition until it is truthy (a deadline, no fixed sleeps)."""
        with anyio.fail_after(timeout):
            while True:
                value = await self.eval(expression)
                if value:
                    return value
                await anyio.sleep(0.05)

    async def click(self, selector: str) -> None:
        """A real mouse click (press + release) at the centre of the element, scrolled into view."""
        box = await self.eval(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            "e.scrollIntoView({block: 'center', inline: 'center'}); const r = e.getBoundingClientRect();"
            "return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()")
        assert box is not None, f"no element matches {selector}"
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent",
                            {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1})

    async def goto(self, path: Path) -> None:
        url = Path(await anyio.Path(path).resolve()).as_uri()
        await self.send("Page.navigate", {"url": url})
        await self.wait_for("document.readyState === 'complete' && document.location.protocol === 'file:'")

    async def load_all_images(self) -> list[dict[str, Any]]:
        """Make lazy images eager, wait until every image settled; return their src/size."""
        await self.eval("document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
        await self.wait_for("Array.from(document.images).every(i => i.complete)")
        return await self.eval(
            "Array.from(document.images).map(i => ({src: i.getAttribute('src'), w: i.naturalWidth, h: i.naturalHeight}))")

    async def screenshot(self, target: Path, *, max_height: int = 6000) -> Path:
        metrics = await self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        height = min(int(size["height"]) + 1, max_height)
        reply = await self.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1400, "height": height, "scale": 1}})
        await anyio.Path(target).write_bytes(base64.b64decode(reply["data"]))
        await anyio.Path(SHOTS_DIR).mkdir(parents=True, exist_ok=True)
        await anyio.to_thread.run_sync(shutil.copy, target, SHOTS_DIR / target.name)
        return target


async def _command(ws: aiohttp.ClientWebSocketResponse, ids: Any, method: str, params: dict[str, Any] | None,
                   *, session: str | None = None, timeout: float = 30) -> dict[str, Any]:
    ident = next(ids)
    message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
    if session:
        message["sessionId"] = session
    await ws.send_str(json.dumps(message))
    with anyio.fail_after(timeout):
        while True:
            raw = await ws.receive()
            if raw.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"DevTools connection ended while waiting for {method}: {raw.type}")
            reply = json.loads(raw.data)
            if reply.get("id") == ident:  # events (no id) and other replies are skipped
                if "error" in reply:
                    raise AssertionError(f"DevTools {method}: {reply['error']}")
                return reply.get("result", {})


async def _devtools_url(process: Process) -> str:
    assert process.stderr is not None
    seen = b""
    with anyio.fail_after(30):
        async for chunk in process.stderr:
            seen += chunk
            m = _DEVTOOLS.search(seen)
            if m:
                return m.group(1).decode()
    raise AssertionError(f"chromium exited before DevTools listened: {seen[-2000:].decode(errors='replace')}")


async def _drain(stream: Any) -> None:
    async for _ in stream:  # keep Chromium's stderr pipe from filling up
        pass


@asynccontextmanager
async def chromium(tmp: Path) -> AsyncIterator[Page]:
    """Headless Chromium (no network: loopback DevTools only, background services off)."""
    profile = tmp / "chromium-profile"
    profile.mkdir(parents=True, exist_ok=True)
    args = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-extensions",
            f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
            "--window-size=1400,1000", "about:blank"]
    process = await anyio.open_process(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, env={**os.environ, "HOME": str(tmp)})
    try:
        url = await _devtools_url(process)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_drain, process.stderr)
            async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=64 * 2**20) as ws:
                ids = itertools.count(1)
                target = await _command(ws, ids, "Target.createTarget", {"url": "about:blank"})
                attached = await _command(ws, ids, "Target.attachToTarget",
                                          {"targetId": target["targetId"], "flatten": True})
                page = Page(ws, attached["sessionId"])
                await page.send("Page.enable")
                await page.send("Emulation.setDeviceMetricsOverride",
                                {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
                yield page
            tg.cancel_scope.cancel()
    finally:
        await stop_process(process)


def tiny_png(width: int = 192, height: int = 108, shade: int = 90) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (40, shade, 120)).save(buf, format="PNG")
    return buf.getvalue()


async def synthetic_run(run_dir: Path, *, tasks: int, steps: int = 3, domains: int = 4,
                        instruction: str = "Do task {i}", response: str = "clicking", error_every: int = 0) -> Path:
    """A run directory written through the real RunStore (no engine): for scale and odd content."""
    from results.store import RunStore

    png = tiny_png()
    keys = [(f"domain{i % domains}", f"task-{i:05d}") for i in range(tasks)]
    config = {"benchmark": "synthetic", "agent": "synthetic", "model": "m", "screen_width": 1920, "screen_height": 1080}
    store = await RunStore.open(run_dir, config, result_keys=[])
    try:
        store.pending(keys)
        for i, (domain, task_id) in enumerate(keys):
            attempt = await store.begin_attempt(domain, task_id)
            for n in range(1, steps + 1):
                await attempt.record_step({"action": f"pyautogui.click({100 + n * 10}, {200 + i % 500})",
                                           "response": response, "tokens": 100}, png)
            failed = bool(error_every) and i % error_every == 0
            await store.record_result(domain, task_id, {
                "score": 0.0 if failed else 1.0, "steps": steps, "tokens": {"prompt": 1000, "completion": 50},
                "cost_usd": 0.01, "seconds": 2.5, "error": "agent: boom" if failed else None,
                "instruction": instruction.format(i=i)})
    finally:
        await store.aclose()
    return run_dir


def _all_text(request: dict[str, Any]) -> tuple[str, str]:
    texts = []
    for m in request["messages"]:
        c = m["content"]
        texts.append(c if isinstance(c, str) else "".join(p.get("text", "") for p in c if isinstance(p, dict)))
    return "\n".join(texts), texts[-1]


def rmcts_policy(request: dict[str, Any]) -> str | list[str]:
    """llm-sim as policy, debaters, judge and reflector for R-MCTS on sim tasks: the policy samples
    the right control three times as often as a wrong one; the judge grades the state it is shown."""
    text, last = _all_text(request)
    states = _STATE.findall(text)
    name, state = states[-1] if states else ("", "0")
    if "ROLE: SUPPORTING DEBATER" in last:
        return "The last click advanced the app; it is on track."
    if "ROLE: OPPOSING DEBATER" in last:
        return f"The goal state is not shown yet. {HOSTILE}"
    if "ROLE: REFLECTION (EXPECTATION)" in last:
        return "I expected the app to advance to the next state."
    if "ROLE: REFLECTION (LESSON)" in last:
        return "The tempting button leads to a dead end; prefer the plain control."
    if "STATUS CODE" in last or "EVALUATION" in last:
        code = {"goal": "A", "trap": "E", "0": "C"}.get(state, "B")
        return f"Weighing what I see.\n{'STATUS CODE' if 'STATUS CODE' in last else 'EVALUATION'}: {code}"
    if not name:
        return "```FAIL```"
    if state in ("goal", "trap"):
        return "```DONE```" if state == "goal" else "```FAIL```"
    scenario = Scenario.parse(name)
    good = f"Next control.\n```python\n{scenario.correct_action(int(state))}\n```"
    wrong = scenario.trap_action() if scenario.trap and state == "0" else "pyautogui.click(5, 5)"
    bad = f"Maybe this one.\n```python\n{wrong}\n```"
    return [bad if i % 4 == 0 else good for i in range(int(request.get("n") or 1))]


async def rmcts_sim_run(root: Path, *, tasks: int = 3, run_name: str = "rmcts-run") -> Path:
    """A real R-MCTS run (policy, multi-agent debate, reflection memory) on llm-sim and sim sandboxes."""
    return await _priced_sim_run(
        root, "rmcts", rmcts_policy, tasks=tasks, trap_every=2, domains=1, run_name=run_name, timeout=180,
        agent="rmcts", max_steps=5, concurrency=1,
        agent_options={"iterations": 6, "branching_factor": 2, "min_samples": 4, "max_sandboxes": 3, "final_replays": 1})
