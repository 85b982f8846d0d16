"""Chrome profile getters and update_browse_history against a fake guest holding real profile files:
Preferences / Local State / Bookmarks JSON as Chrome writes them, and History / Cookies sqlite
databases with Chrome's own schema (no sandbox)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fake_guest import FakeGuest

from benchmarks.chrome_history import Visit, build_history, chrome_time
from benchmarks.context import RunContext, TaskContext
from benchmarks.downloads import HostFiles
from benchmarks.schema import GetterSpec, Task
from benchmarks.setup_steps import run_setup
from harness.base.errors import SandboxError
from scoring.evaluate import NothingFound, evaluate, fetch_state
from scoring.getters import chrome_tabs
from scoring.getters.chrome_url import address_bar_url, dash_part, macys_path, parse_query
from scoring.registry import check_getter

PROFILE = "/home/user/.config/google-chrome"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

PREFERENCES = {
    "default_search_provider_data": {"template_url_data": {"short_name": "Bing", "keyword": "bing.com"}},
    "profile": {"name": "Thomas", "default_content_setting_values": {"cookies": 4}},
    "webkit": {"webprefs": {"default_font_size": 20, "minimum_font_size": 6}},
    "enable_do_not_track": True,
    "safebrowsing": {"enabled": True, "enhanced": False},
    "session": {"restore_on_startup": 5, "startup_urls": []},
    "extensions": {"settings": {
        "abc": {"path": "/home/user/Desktop/helloExtension", "manifest": {"name": "Hello Extension", "version": "1.0"}},
        "def": {"path": "def/1.2_0", "manifest": {"name": "Dark Reader", "version": "1.2"}}}},
    "browser": {"theme": {"color_scheme2": 2}},
}
LOCAL_STATE = {"browser": {"enabled_labs_experiments": ["read-anything@1", "smooth-scrolling@2"]},
               "intl": {"app_locale": "de"}}
BOOKMARKS = {"checksum": "0", "version": 1, "roots": {
    "bookmark_bar": {"children": [{"type": "url", "name": "News", "url": "https://news.example/", "id": "5"}],
                     "name": "Bookmarks bar", "type": "folder", "id": "1"},
    "other": {"children": [], "name": "Other bookmarks", "type": "folder", "id": "2"},
    "synced": {"children": [], "name": "Mobile bookmarks", "type": "folder", "id": "3"}}}
COOKIES_SCHEMA = """
CREATE TABLE meta(key LONGVARCHAR NOT NULL UNIQUE PRIMARY KEY, value LONGVARCHAR);
CREATE TABLE cookies(creation_utc INTEGER NOT NULL,host_key TEXT NOT NULL,top_frame_site_key TEXT NOT NULL,
  name TEXT NOT NULL,value TEXT NOT NULL,encrypted_value BLOB NOT NULL,path TEXT NOT NULL,expires_utc INTEGER NOT NULL,
  is_secure INTEGER NOT NULL,is_httponly INTEGER NOT NULL,last_access_utc INTEGER NOT NULL,has_expires INTEGER NOT NULL,
  is_persistent INTEGER NOT NULL,priority INTEGER NOT NULL,samesite INTEGER NOT NULL,source_scheme INTEGER NOT NULL,
  source_port INTEGER NOT NULL,last_update_utc INTEGER NOT NULL,source_type INTEGER NOT NULL,
  has_cross_site_ancestor INTEGER NOT NULL);
CREATE UNIQUE INDEX cookies_unique_index ON cookies(host_key, top_frame_site_key, has_cross_site_ancestor, name,
  path, source_scheme, source_port);
"""


def ctx_for(tmp_path: Path) -> TaskContext:
    task = Task.model_validate({"id": "t", "instruction": "i", "evaluator": {"func": "infeasible"}}).bind(domain="chrome")
    run = RunContext(work_root=tmp_path / "w", downloads=HostFiles(tmp_path / "c"), now=lambda: NOW)
    return run.for_evaluation(task, object())


def spec(**kw) -> GetterSpec:
    return GetterSpec.model_validate(kw)


def cookies_db(path: Path, hosts: list[str]) -> bytes:
    conn = sqlite3.connect(path)
    conn.executescript(COOKIES_SCHEMA)
    conn.execute("INSERT INTO meta VALUES ('version', '24')")
    t = chrome_time(NOW)
    for i, host in enumerate(hosts):
        conn.execute("INSERT INTO cookies VALUES (?,?,'',?,'v',x'',  '/',?,1,0,?,1,1,1,0,2,443,?,0,0)",
                     (t + i, host, f"c{i}", t + 10**12, t, t))
    conn.commit()
    conn.close()
    return path.read_bytes()


@pytest.fixture
def guest(tmp_path: Path) -> FakeGuest:
    return FakeGuest(files={
        f"{PROFILE}/Default/Preferences": json.dumps(PREFERENCES).encode(),
        f"{PROFILE}/Local State": json.dumps(LOCAL_STATE).encode(),
        f"{PROFILE}/Default/Bookmarks": json.dumps(BOOKMARKS, indent=3).encode(),
        f"{PROFILE}/Default/Cookies": cookies_db(tmp_path / "Cookies", [".amazon.com", "news.example"]),
    })


async def test_settings_getters_read_preferences_and_local_state(tmp_path: Path, guest: FakeGuest) -> None:
    ctx = ctx_for(tmp_path)
    expected = {
        "default_search_engine": "Bing", "profile_name": "Thomas", "enable_do_not_track": "true",
        "enable_safe_browsing": "true", "enable_enhanced_safety_browsing": "false", "new_startup_page": "true",
        "data_delete_automacally": "true", "chrome_language": "de",
        "enabled_experiments": ["read-anything@1", "smooth-scrolling@2"],
        "chrome_font_size": {"default_font_size": 20, "minimum_font_size": 6},
        "find_unpacked_extension_path": ["/home/user/Desktop/helloExtension", "def/1.2_0"],
        "find_installed_extension_name": ["Hello Extension", "Dark Reader"],
        "bookmarks": BOOKMARKS["roots"],
    }
    for kind, value in expected.items():
        assert await fetch_state(spec(type=kind), guest, ctx) == value, kind


async def test_settings_getters_fall_back_like_upstream_without_a_profile(tmp_path: Path) -> None:
    ctx, empty = ctx_for(tmp_path), FakeGuest()
    assert await fetch_state(spec(type="default_search_engine"), empty, ctx) == "Google"
    assert await fetch_state(spec(type="chrome_language"), empty, ctx) == "en-US"
    assert await fetch_state(spec(type="enable_do_not_track"), empty, ctx) == "false"
    assert await fetch_state(spec(type="bookmarks"), empty, ctx) == []
    with pytest.raises(NothingFound):
        await fetch_state(spec(type="cookie_data", dest="Cookies"), empty, ctx)


async def test_cookie_rows_come_from_chromes_cookies_database(tmp_path: Path, guest: FakeGuest) -> None:
    rows = await fetch_state(spec(type="cookie_data", dest="Cookies"), guest, ctx_for(tmp_path))
    assert [r[1] for r in rows] == [".amazon.com", "news.example"]


async def test_update_browse_history_builds_chromes_history_offline_and_history_reads_it(
        tmp_path: Path, guest: FakeGuest) -> None:
    ctx = ctx_for(tmp_path)
    steps = [{"type": "update_browse_history", "parameters": {"history": [
        {"url": "https://www.youtube.com/watch?v=1", "title": "Video", "visit_time_from_now_in_seconds": 3600},
        {"url": "https://docs.python.org/3/", "title": "Python", "visit_time_from_now_in_seconds": 60}]}}]
    await run_setup(steps, guest, ctx)
    assert ("execute", ["rm", "-f", f"{PROFILE}/Default/History-journal"]) in guest.calls
    rows = await fetch_state(spec(type="history", dest="History"), guest, ctx)
    assert rows == [("https://www.youtube.com/watch?v=1", "Video", chrome_time(NOW - timedelta(hours=1))),
                    ("https://docs.python.org/3/", "Python", chrome_time(NOW - timedelta(minutes=1)))]
    db = sqlite3.connect(ctx.work_path("History"))
    assert dict(db.execute("SELECT key, value FROM meta")) == {"mmap_status": "-1", "version": "70",
                                                               "last_compatible_version": "16"}
    assert db.execute("SELECT url, transition FROM visits ORDER BY id").fetchall() == [(1, 805306368), (2, 805306368)]
    db.close()


def test_chrome_time_counts_microseconds_from_1601() -> None:
    assert chrome_time(datetime(1601, 1, 1, tzinfo=UTC)) == 0
    assert chrome_time(datetime(1970, 1, 1, tzinfo=UTC)) == 11644473600 * 10**6


def test_build_history_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "History"
    build_history(path, [Visit("a", "A", 1)], now=NOW)
    build_history(path, [Visit("b", "B", 1)], now=NOW)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT url FROM urls").fetchall() == [("b",)]


async def test_shortcuts_on_desktop_reads_desktop_entries(tmp_path: Path) -> None:
    g = FakeGuest(files={"/home/user/Desktop/game.desktop": b"[Desktop Entry]\nName=2048\n",
                         "/home/user/Desktop/notes.txt": b"x"})
    g.tree = {"name": "Desktop", "type": "directory", "children": [
        {"name": "game.desktop", "type": "file"}, {"name": "notes.txt", "type": "file"}]}
    assert await fetch_state(spec(type="shortcuts_on_desktop"), g, ctx_for(tmp_path)) == {
        "game.desktop": "[Desktop Entry]\nName=2048\n"}


A11Y = """<desktop-frame xmlns:st="https://accessibility.ubuntu.example.org/ns/state">
<application name="{app}"><frame name="Page - Chromium"><entry name="Address and search bar"
 st:focused="false">{url}</entry></frame></application></desktop-frame>"""


def test_address_bar_url_accepts_chromium_and_google_chrome() -> None:
    assert address_bar_url(A11Y.format(app="Chromium", url="127.0.0.1:8000/a.html"), "http://") == \
        "http://127.0.0.1:8000/a.html"
    assert address_bar_url(A11Y.format(app="Google Chrome", url="example.com/x")) == "https://example.com/x"
    assert address_bar_url(A11Y.format(app="Firefox", url="example.com/x")) is None
    assert address_bar_url(A11Y.format(app="Chromium", url="")) is None


async def test_url_getters_parse_the_address_bar(tmp_path: Path) -> None:
    g = FakeGuest()
    g.a11y = A11Y.format(app="Chromium", url="www.site.com/flights/search?from=JFK&amp;to=ORD,SEA")
    ctx = ctx_for(tmp_path)
    got = await fetch_state(spec(type="active_tab_url_parse", goto_prefix="https://", parse_keys=["from", "to"],
                                 replace={"from": "start"}), g, ctx)
    assert got == {"to": "ORD,SEA", "start": "JFK"}
    assert parse_query("https://a/?k=x,y", {"parse_keys": ["k", "z"], "split_list": True}) == {"k": ["x", "y"], "z": [""]}
    assert await fetch_state(spec(type="url_dashPart", partIndex=4, needDeleteId=True, returnType="json", key="p"),
                             g, ctx) == {"p": "search"}
    assert dash_part("https://a/b", {"partIndex": 9, "returnType": "string"}) is None
    parsed = macys_path("https://www.macys.com/shop/mens-clothing/shirts/Product_department,Price_discount_range/"
                        "Shirts,50_PERCENT_ off %26 more", ["Price_discount_range", "Product_department"])
    assert parsed == {"mens_clothing": True, "shirts": True, "short_sleeve": None,
                      "Price_discount_range": "50_PERCENT_ off & more", "Product_department": "Shirts"}
    g.a11y = None
    with pytest.raises(NothingFound):
        await fetch_state(spec(type="active_url_from_accessTree"), g, ctx)


def test_getter_check_hooks_report_unknown_or_missing_options() -> None:
    assert check_getter(spec(type="cookie_data", dest="Cookies")) == []
    assert check_getter(spec(type="bookmarks", colour="red")) == ["getter:bookmarks[unknown option 'colour']"]
    assert check_getter(spec(type="url_dashPart", partIndex=1, returnType="list")) == [
        "getter:url_dashPart[returnType must be string or json]"]
    assert check_getter(spec(type="active_tab_html_parse", category="class", class_singleObject={"a": "b"})) == []
    assert check_getter(spec(type="page_info")) == ["getter:page_info[url is required]"]
    assert check_getter(spec(type="gotoRecreationPage_and_get_html_content", selector="class", **{"class": "x"})) == [
        "getter:gotoRecreationPage_and_get_html_content[scripted flow on the live www.recreation.gov site is not implemented]"]


class DeadDevTools(FakeGuest):
    """A guest whose DevTools port never answers."""

    async def tunnel_request(self, port, method, path, *, body=None, headers=None, timeout=30.0):
        return 502, b"connection refused"


async def test_a_dead_devtools_endpoint_relaunches_chrome_then_fails_the_getter_not_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chrome_tabs, "CONNECT_TIMEOUT_S", 0.3)
    g, ctx = DeadDevTools(), ctx_for(tmp_path)
    with pytest.raises(NothingFound, match=r"BrowserUnavailable: .*relaunching google-chrome"):
        await fetch_state(spec(type="open_tabs_info"), g, ctx)
    assert ("launch", ["google-chrome", "--remote-debugging-port=1337"]) in g.calls
    g.a11y = A11Y.format(app="Chromium", url="example.com")
    with pytest.raises(NothingFound, match="found nothing"):  # active_tab_info: None, as upstream
        await fetch_state(spec(type="active_tab_info"), g, ctx)
    task = Task.model_validate({"id": "t2", "instruction": "i", "evaluator": {
        "func": "is_expected_tabs", "result": {"type": "open_tabs_info"},
        "expected": {"type": "rule", "rules": {"type": "url", "urls": ["example.com"]}}}})
    result = await evaluate(task, g, ["DONE"], ctx)
    assert result.score == 0 and "DevTools" in (result.metrics[0].note or "")


async def test_chrome_open_tabs_fails_as_infrastructure_when_devtools_never_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import steps_chrome

    monkeypatch.setattr(steps_chrome, "CONNECT_TIMEOUT_S", 0.3)
    steps = [{"type": "chrome_open_tabs", "parameters": {"urls_to_open": ["http://127.0.0.1:8000/"]}}]
    with pytest.raises(SandboxError, match=r"config step 0 \(chrome_open_tabs\): Chrome DevTools: .*did not answer"):
        await run_setup(steps, DeadDevTools(), ctx_for(tmp_path))
