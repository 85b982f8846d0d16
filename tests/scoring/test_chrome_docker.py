"""Chrome in a real sandbox, driven the way OSWorld's task files drive it: our setup-step runner runs
`google-chrome --remote-debugging-port=1337` and `socat` 9222->1337, then chrome_open_tabs /
chrome_close_tabs on pages served inside the sandbox on its own loopback; the getters read the
tabs over DevTools (through the guest's socket) and the profile files, and the metrics score them."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from helpers import setup_context

from benchmarks.schema import GetterSpec
from benchmarks.setup_steps import run_setup
from scoring.evaluate import fetch_state
from scoring.metrics import chrome as m

pytestmark = pytest.mark.docker

SITE = "/tmp/site"
BASE = "http://127.0.0.1:8000"
PAGES = {name: f"<!DOCTYPE html><html><head><title>Page {name}</title></head><body><h1>{name}</h1></body></html>"
         for name in ("a", "b", "c")}
PROFILE = "/home/user/.config/google-chrome/Default"
BOOKMARKS = {"version": 1, "roots": {
    "bookmark_bar": {"children": [{"type": "folder", "name": "Work", "id": "4", "children": []},
                                  {"type": "url", "name": "A", "id": "5", "url": f"{BASE}/a.html"}],
                     "name": "Bookmarks bar", "type": "folder", "id": "1"},
    "other": {"children": [], "name": "Other bookmarks", "type": "folder", "id": "2"},
    "synced": {"children": [], "name": "Mobile bookmarks", "type": "folder", "id": "3"}}}


def spec(**kw) -> GetterSpec:
    return GetterSpec.model_validate(kw)


async def _wait_for_server(guest) -> None:
    probe = f"import urllib.request; urllib.request.urlopen('{BASE}/a.html', timeout=2)"
    with anyio.fail_after(20):
        while True:
            if (await guest.execute(["python3", "-c", probe], timeout=10)).ok:
                return
            await anyio.sleep(0.2)


async def test_osworld_chrome_steps_getters_and_metrics_in_a_real_sandbox(docker_provider, tmp_path: Path) -> None:
    ctx = setup_context(tmp_path, "chrome")
    box = await docker_provider.start()
    guest = box.guest
    try:
        with anyio.fail_after(85):
            for name, html in PAGES.items():
                await guest.upload(f"{SITE}/{name}.html", html.encode())
            await guest.upload(f"{PROFILE}/Bookmarks", json.dumps(BOOKMARKS).encode())
            await guest.upload(f"{PROFILE}/Preferences", json.dumps({"enable_do_not_track": True}).encode())
            await guest.launch(["python3", "-m", "http.server", "--bind", "127.0.0.1", "8000", "--directory", SITE])
            await _wait_for_server(guest)

            await run_setup([
                {"type": "update_browse_history", "parameters": {"history": [
                    {"url": "https://www.youtube.com/watch?v=42", "title": "Video", "visit_time_from_now_in_seconds": 600}]}},
                {"type": "launch", "parameters": {"command": ["google-chrome", "--remote-debugging-port=1337"]}},
                {"type": "launch", "parameters": {"command": ["socat", "tcp-listen:9222,fork", "tcp:localhost:1337"]}},
                {"type": "chrome_open_tabs", "parameters": {"urls_to_open": [f"{BASE}/{n}.html" for n in PAGES]}},
                {"type": "chrome_close_tabs", "parameters": {"urls_to_close": [f"{BASE}/b.html"]}},
            ], guest, ctx)

            tabs = await fetch_state(spec(type="open_tabs_info"), guest, ctx)
            assert [t["title"] for t in tabs] == ["Page a", "Page c"], tabs  # the launch tab was closed
            assert m.is_expected_tabs(tabs, {"type": "url", "urls": [f"{BASE}/a.html", f"{BASE}/c.html"]}) == 1
            assert m.is_expected_tabs(tabs, {"type": "url", "urls": [f"{BASE}/{n}.html" for n in PAGES]}) == 0

            active = None
            with anyio.move_on_after(20):  # the address bar reaches the accessibility tree shortly after
                while active is None:
                    try:
                        active = await fetch_state(spec(type="active_tab_info", goto_prefix="http://"), guest, ctx)
                    except Exception:
                        await anyio.sleep(0.5)
            assert active is not None and active["title"] == "Page c" and "<h1>c</h1>" in active["content"]
            assert m.is_expected_active_tab(active, {"type": "url", "url": f"{BASE}/c.html"}) == 1
            assert m.is_expected_active_tab(active, {"type": "url", "url": f"{BASE}/a.html"}) == 0

            marks = await fetch_state(spec(type="bookmarks"), guest, ctx)
            assert m.is_expected_bookmarks(marks, {"type": "bookmark_bar_folders_names", "names": ["Work"]}) == 1
            assert m.is_expected_bookmarks(marks, {"type": "bookmark_bar_websites_urls", "urls": [f"{BASE}/c.html"]}) == 0

            history = await fetch_state(spec(type="history", dest="History"), guest, ctx)
            assert m.check_history_deleted(history, {"type": "keywords", "keywords": ["youtube"]}) == 0
            assert m.check_history_deleted(history, {"type": "keywords", "keywords": ["amazon"]}) == 1

            assert await fetch_state(spec(type="enable_do_not_track"), guest, ctx) == "true"
    finally:
        with anyio.CancelScope(shield=True):
            await docker_provider.stop(box)
