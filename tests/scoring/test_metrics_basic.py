"""Value metrics (exact/fuzzy/list/JSON/include-exclude), the accessibility-tree metric and the
rule_relativeTime date rules: each with a passing and a failing case."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from fake_guest import FakeGuest

from benchmarks.context import RunContext
from benchmarks.schema import GetterSpec
from scoring.getters.rules import apply_relative_time, resolve_day, rule_relative_time
from scoring.metrics.a11y import check_accessibility_tree
from scoring.metrics.basic import (
    check_direct_json_object,
    check_gnome_favorite_apps,
    check_include_exclude,
    check_moved_jpgs,
    exact_match,
    fuzzy_match,
    is_in_list,
    is_utc_0,
    literal_match,
    match_in_list,
)
from scoring.registry import check_metric, metric_names


def test_exact_match() -> None:
    assert exact_match("File exists.\n", {"expected": "File exists.\n"}) == 1.0
    assert exact_match("File exists.", {"expected": "File exists.\n"}) == 0.0


def test_is_in_list_and_match_in_list() -> None:
    assert is_in_list(["a.txt", "b.txt"], {"expected": "b.txt"}) == 1.0
    assert is_in_list(["a.txt"], {"expected": "b.txt"}) == 0.0
    assert match_in_list("b", {"expected": ["a", "b"]}) == 1.0
    assert match_in_list("c", {"expected": ["a", "b"]}) == 0.0


def test_literal_match_str_and_list() -> None:
    assert literal_match("Hello", "hello", ignore_case=True) == 1.0
    assert literal_match("Hello", "hello") == 0.0
    assert literal_match(["A", 1], ["a", "1"], type="list", ignore_case=True) == 1.0
    assert literal_match(["A"], ["A", "B"], type="list") == 0.0
    assert check_metric("literal_match", {"type": "dict"}) == ["metric:literal_match[type=dict]"]


def test_fuzzy_match_is_the_rapidfuzz_ratio() -> None:
    assert fuzzy_match("kitten", {"expected": "kitten"}) == 1.0
    assert fuzzy_match("kitten", {"expected": "sitting"}) == pytest.approx(1 - 5 / 13)  # InDel distance 5 over 13 chars


def test_check_include_exclude() -> None:
    rules = {"include": ["passed"], "exclude": ["Error:"]}
    assert check_include_exclude("check passed\n", rules) == 1.0
    assert check_include_exclude("check passed\nError: x", rules) == 0.0
    assert check_include_exclude("check failed", rules) == 0.0


def test_check_direct_json_object_exact_and_containment() -> None:
    rules = {"expected": {"from": "JFK", "to": "ORD"}}
    assert check_direct_json_object({"from": "JFK", "to": "ORD", "extra": 1}, rules) == 1.0
    assert check_direct_json_object("{'from': 'JFK', 'to': 'LAX'}", rules) == 0.0
    assert check_direct_json_object("{'from': 'JFK', 'to': 'ORD'}", rules) == 1.0
    contain = {"expected": {"toStation": ["STO", "ARN"], "time": "2024-05"}, "expect_in_result": True}
    assert check_direct_json_object({"toStation": ["ARN"], "time": "2024-05-06"}, contain) == 1.0
    assert check_direct_json_object({"toStation": ["CPH"], "time": "2024-05-06"}, contain) == 0.0
    unordered = {"expected": {"tags": ["b", "a"], "ignore_list_order": True}}
    assert check_direct_json_object({"tags": ["a", "b"]}, unordered) == 1.0
    assert check_direct_json_object({"tags": ["a"]}, unordered) == 0.0
    assert check_direct_json_object({"a": 1}, {"expected": {"a": "__EVALUATION_FAILED__"}}) == 0.0


def test_os_metrics() -> None:
    assert check_gnome_favorite_apps("['thunderbird.desktop', 'vim.desktop']\n", {"expected": ["vim.desktop", "thunderbird.desktop"]}) == 1.0
    assert check_gnome_favorite_apps("['vim.desktop']", {"expected": ["vim.desktop", "thunderbird.desktop"]}) == 0.0
    out = "Local time: Thu\n  Universal time: Thu\n        RTC time: Thu\n       Time zone: Atlantic/Faroe (WET, +0000)\n"
    assert is_utc_0(out) == 1.0
    assert is_utc_0(out.replace("+0000", "+0100")) == 0.0
    tree = {"type": "directory", "name": "photos", "children": [{"type": "file", "name": "a.jpg"}, {"type": "file", "name": "b.jpg"}]}
    assert check_moved_jpgs(tree, {"expected": ["b.jpg", "a.jpg"]}) == 1.0
    assert check_moved_jpgs(tree, {"expected": ["a.jpg"]}) == 0.0


A11Y = """<desktop-frame xmlns:st="https://accessibility.ubuntu.example.org/ns/state"
  xmlns:attr="https://accessibility.ubuntu.example.org/ns/attributes">
 <application name="Thunderbird">
  <frame name="Inbox">
   <page-tab-list attr:id="tabmail-tabs"><page-tab name="About Profiles" st:selected="true"/></page-tab-list>
   <label name="Account">anonym-x2024@outlook.com</label>
  </frame>
 </application>
</desktop-frame>"""


def test_check_accessibility_tree_xpath_and_css() -> None:
    css = [{"selectors": ['application[name=Thunderbird] page-tab-list[attr|id="tabmail-tabs"]>page-tab[name="About Profiles"]']}]
    assert check_accessibility_tree(A11Y, css) == 1.0
    css[0]["selectors"] = ['page-tab[name="Settings"]']
    assert check_accessibility_tree(A11Y, css) == 0.0
    xp = [{"xpath": "//application[@name='Thunderbird']//*[contains(text(), 'anonym-x2024@outlook.com')]"}]
    assert check_accessibility_tree(A11Y, xp) == 1.0
    assert check_accessibility_tree(A11Y, [{"xpath": "//label", "text": "anonym-x2024@outlook.com", "exact": True}]) == 1.0
    assert check_accessibility_tree(A11Y, [{"xpath": "//label", "text": "someone@else.com", "exact": True}]) == 0.0


@pytest.mark.parametrize(
    ("name", "today", "want"),
    [
        ("tomorrow", date(2024, 12, 31), date(2025, 1, 1)),
        ("10th next month", date(2024, 12, 20), date(2025, 1, 10)),
        ("next Monday", date(2024, 5, 6), date(2024, 5, 13)),  # a Monday: the following one
        ("next Monday", date(2024, 5, 8), date(2024, 5, 13)),
        ("next Friday", date(2024, 5, 10), date(2024, 5, 17)),  # a Friday
        ("next Saturday", date(2024, 5, 12), date(2024, 5, 18)),  # a Sunday
        ("next week Sunday", date(2024, 5, 8), date(2024, 5, 19)),
        ("this Saturday", date(2024, 5, 12), date(2024, 5, 18)),  # Sunday: upstream picked yesterday
        ("first monday four months later", date(2024, 8, 15), date(2024, 12, 2)),  # upstream built month 0
        ("first monday eight months later", date(2024, 5, 1), date(2025, 1, 6)),
    ],
)
def test_relative_days(name: str, today: date, want: date) -> None:
    assert resolve_day(name, today) == want


def test_relative_ranges_and_formats() -> None:
    rules = {"relativeTime": {"from": "next Monday split", "to": "next Friday split"},
             "expected": {"puDay": "{DayD}", "puMonth": "{Month0D}", "puYear": "{Year}",
                          "doDay": "{Day0D}", "doMonth": "{MonthFull}", "doYear": "{Year}", "x": "kept"}}
    out = apply_relative_time(rules, date(2024, 12, 26))  # a Thursday
    assert out["expected"] == {"puDay": "30", "puMonth": "12", "puYear": "2024", "doDay": "03",
                               "doMonth": "January", "doYear": "2025", "x": "kept"}
    assert rules["expected"]["puDay"] == "{DayD}"  # the task's own rules are not mutated
    single = {"relativeTime": {"from": "tomorrow"}, "expected": {"time": ["{DoW}, {Month} {Day0D}, {Year}", "{month}-weather"]}}
    assert apply_relative_time(single, date(2024, 3, 8))["expected"]["time"] == ["Sat, Mar 09, 2024", "march-weather"]


async def test_rule_relative_time_uses_the_pinned_clock(tmp_path: Path) -> None:
    ctx = RunContext(work_root=tmp_path, now=lambda: datetime(2024, 3, 8, 12, 0)).for_setup(None, object())
    spec = GetterSpec.model_validate({"type": "rule_relativeTime", "rules": {
        "relativeTime": {"from": "this month"}, "expected": {"time": "{month}-weather"}}})
    got = await rule_relative_time(FakeGuest(), spec, ctx)
    assert got["expected"]["time"] == "march-weather"
    assert check_direct_json_object({"time": "march-weather"}, got) == 1.0
    assert check_direct_json_object({"time": "april-weather"}, got) == 0.0


def test_registry_lists_every_metric_the_brief_requires() -> None:
    required = {"compare_table", "check_include_exclude", "exact_match", "check_direct_json_object", "compare_text_file",
                "compare_docx_files", "check_list", "is_in_list", "literal_match", "fuzzy_match", "compare_csv", "infeasible",
                "check_csv"}
    assert required <= set(metric_names())
