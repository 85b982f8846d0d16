"""Chrome metrics: for each, inputs that score 1 and inputs that score 0 (OSWorld's semantics)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.url_compare import compare_urls
from scoring.metrics import chrome as m
from scoring.registry import check_metric

TABS = [{"title": "A", "url": "https://www.Example.com/"}, {"title": "B", "url": "http://b.org/x?q=1"}]


def test_compare_urls_normalizes_scheme_case_www_and_root_path_but_keeps_query() -> None:
    assert compare_urls("example.com", "HTTP://www.example.com/")
    assert compare_urls(None, None) and not compare_urls(None, "a.com")
    assert not compare_urls("a.com/?q=1", "a.com/?q=2")
    assert not compare_urls("https://a.com", "http://a.com")


def test_is_expected_tabs_ignores_order_but_not_count() -> None:
    assert m.is_expected_tabs(TABS, {"type": "url", "urls": ["b.org/x?q=1", "https://example.com"]}) == 1
    assert m.is_expected_tabs(TABS, {"type": "url", "urls": ["https://example.com"]}) == 0
    assert m.is_expected_tabs([], {"type": "url", "urls": []}) == 0
    with pytest.raises(TypeError):
        m.is_expected_tabs(TABS, {"type": "title", "urls": []})


def test_active_tab_metrics_exact_approximate_pattern_and_search_query() -> None:
    info = {"url": "https://www.site.com/a?x=1", "title": "t", "content": "<p>Cart: Dota 2, Portal</p>"}
    assert m.is_expected_active_tab(info, {"type": "url", "url": "https://site.com/a?x=1"}) == 1
    assert m.is_expected_active_tab("https://site.com/a", {"type": "url", "url": "https://site.com/a?x=1"}) == 0
    assert m.is_expected_active_tab_approximate(info, {"type": "url", "url": "https://www.site.com/a?y=2"}) == 1
    assert m.is_expected_active_tab_approximate(info, {"type": "url", "url": "https://site.com/a"}) == 0  # www kept
    assert m.is_expected_url_pattern_match(info, {"expected": [r"site\.com", r"x=\d"]}) == 1
    assert m.is_expected_url_pattern_match("https://site.com/b", {"expected": [r"site\.com", r"/a"]}) == 0
    assert m.is_expected_url_pattern_match(None, {"expected": []}) == 0
    assert m.is_expected_search_query(info, {"expect": {"pattern": r"x=1"}}) == 1
    assert m.is_expected_search_query(info, {"expect": {"pattern": r"q=shoes"}}) == 0
    assert m.is_added_to_steam_cart(info, {"items": ["Dota 2", "Portal"]}) == 1
    assert m.is_added_to_steam_cart(info, {"items": ["Dota 2", "Half-Life"]}) == 0


BOOKMARKS = {"bookmark_bar": {"children": [
    {"type": "folder", "name": "Liked Authors", "children": [
        {"type": "url", "url": "https://a.example/1"}, {"type": "url", "url": "https://b.example/2"}]},
    {"type": "folder", "name": "Work", "children": []},
    {"type": "url", "url": "https://news.example/", "name": "News"}]}}


def test_is_expected_bookmarks_folders_urls_and_liked_authors_alternatives() -> None:
    assert m.is_expected_bookmarks(BOOKMARKS, {"type": "bookmark_bar_folders_names", "names": ["Work", "Liked Authors"]}) == 1
    assert m.is_expected_bookmarks(BOOKMARKS, {"type": "bookmark_bar_folders_names", "names": ["Work"]}) == 0
    assert m.is_expected_bookmarks(BOOKMARKS, {"type": "bookmark_bar_websites_urls", "urls": ["https://news.example/"]}) == 1
    assert m.is_expected_bookmarks(BOOKMARKS, {"type": "bookmark_bar_websites_urls", "urls": ["https://news.example"]}) == 0
    rule = {"type": "liked_authors_websites_urls",
            "urls": [["https://a.example/0", "https://a.example/1"], "https://b.example/2"]}
    assert m.is_expected_bookmarks(BOOKMARKS, rule) == 1
    rule["urls"] = ["https://a.example/1"]
    assert m.is_expected_bookmarks(BOOKMARKS, rule) == 0
    assert m.is_expected_bookmarks([], {"type": "bookmark_bar_folders_names", "names": []}) == 0


def test_cookies_history_extensions_and_shortcuts() -> None:
    cookies = [(0, ".amazon.com", "", "session"), (0, "news.example", "", "id")]
    assert m.is_cookie_deleted(cookies, {"type": "domains", "domains": [".google.com"]}) == 1
    assert m.is_cookie_deleted(cookies, {"type": "domains", "domains": [".amazon.com"]}) == 0
    history = [("https://www.youtube.com/watch?v=1", "v", 1), ("https://docs.python.org/", "py", 2)]
    assert m.check_history_deleted(history, {"type": "keywords", "keywords": ["amazon"]}) == 1
    assert m.check_history_deleted(history, {"type": "keywords", "keywords": ["youtube"]}) == 0
    assert m.is_expected_installed_extensions(["uBlock", "Dark Reader"], {"expected": ["Dark Reader"]}) == 1
    assert m.is_expected_installed_extensions(["uBlock"], {"expected": ["Dark Reader"]}) == 0
    listing = "ms-python.python\nms-toolsai.jupyter\n"
    assert m.is_extension_installed(listing, {"type": "contain", "expected": "ms-python.python"}) == 1
    assert m.is_extension_installed(listing, {"type": "not_contain", "expected": "ms-python.python"}) == 0
    shortcuts = {"game.desktop": "[Desktop Entry]\nName=Play 2048\nExec=chromium --app=x\n"}
    assert m.is_shortcut_on_desktop(shortcuts, {"type": "name", "name": "Play 2048"}) == 1
    assert m.is_shortcut_on_desktop(shortcuts, {"type": "name", "name": "Play"}) == 0  # whole line
    assert m.is_shortcut_on_desktop(shortcuts, {"type": "exec", "exec": "chromium --app=x"}) == 1


def test_settings_metrics_font_size_and_experiments() -> None:
    assert m.check_font_size({"default_font_size": 20}, {"type": "value", "value": 20}) == 1
    assert m.check_font_size({"default_font_size": 16}, {"type": "value", "value": 20}) == 0
    assert m.check_font_size({"default_font_size": 20}, {"type": "range", "min": 16, "max": 24}) == 1
    assert m.check_font_size({"default_font_size": 24}, {"type": "range", "min": 16, "max": 24}) == 0  # strict
    flags = ["read-anything@1", "smooth-scrolling@2"]
    assert m.check_enabled_experiments(flags, {"type": "names", "names": ["read-anything", "smooth-scrolling"]}) == 1
    assert m.check_enabled_experiments(flags, {"type": "names", "names": ["smooth-scrolling", "read-anything"]}) == 0


def test_compare_htmls_matches_trees_and_can_ignore_sdnum(tmp_path: Path) -> None:
    def page(name: str, body: str) -> str:
        path = tmp_path / name
        path.write_text(f"<html><head><title>T</title></head><body>{body}</body></html>", encoding="utf-8")
        return str(path)

    a = page("a.html", '<table><tr><td sdnum="1033;0;0.00">1</td><td>x</td></tr></table>')
    same = page("b.html", '<table><tr><td sdnum="1033;0;0.00">1</td><td>x</td></tr></table>')
    other_num = page("c.html", '<table><tr><td sdnum="1033;0;@">1</td><td>x</td></tr></table>')
    other_text = page("d.html", '<table><tr><td sdnum="1033;0;0.00">1</td><td>y</td></tr></table>')
    assert m.compare_htmls(a, same) == 1
    assert m.compare_htmls(a, other_num) == 0
    assert m.compare_htmls(a, other_num, ignore_sdnum=True) == 1
    assert m.compare_htmls(a, other_text, ignore_sdnum=True) == 0


def test_check_hooks_report_unknown_options() -> None:
    assert check_metric("is_expected_tabs", {}) == []
    assert check_metric("is_expected_tabs", {"strict": True}) == ["metric:is_expected_tabs[unknown option 'strict']"]
    assert check_metric("compare_htmls", {"ignore_sdnum": True}) == []
