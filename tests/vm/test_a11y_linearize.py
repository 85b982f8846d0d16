"""Accessibility linearization on a hand-written tree in OSWorld's namespaces (tests/fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from search.a11y import (
    HEADER,
    TRIM_MARK,
    A11yParseError,
    estimate_tokens,
    filter_nodes,
    linearize,
    trim_to_tokens,
)

FIXTURE = (Path(__file__).parents[1] / "fixtures" / "a11y_gedit.xml").read_text()

EXPECTED_ROWS = [
    "push-button\tActivities\tActivities\tpanel-button\t\t(0, 0)\t(107, 32)",
    'label\tMar 3  10:24\t""\t\t\t(900, 6)\t(120, 20)',
    'push-button\tOpen\t""\t\t\t(78, 35)\t(83, 34)',
    'toggle-button\tSave\t""\t\t\t(1700, 35)\t(60, 34)',  # checkable, not enabled: kept
    'menu\tFile\t""\t\t\t(70, 73)\t(40, 24)',  # expandable
    'text\t\t"Shopping list:\\n\\t""milk"" and eggs"\tview\tDocument text\t(70, 97)\t(1850, 950)',
    'check-box\tWrap lines\t""\t\t\t(100, 1050)\t(120, 20)',
    'entry\tFind\t""\t\t\t(400, 1050)\t(200, 24)',  # editable only
    'document-web\tHelp\t""\t\t\t(0, 0)\t(10, 10)',
    "paragraph\t\tLine 1, Col 13\t\t\t(620, 1050)\t(300, 20)",
]


def test_linearized_table_has_exactly_the_kept_nodes_in_document_order() -> None:
    lines = linearize(FIXTURE).split("\n")
    assert lines[0] == HEADER == "tag\tname\ttext\tclass\tdescription\tposition (top-left x&y)\tsize (w&h)"
    assert lines[1:] == EXPECTED_ROWS


def test_filter_drops_hidden_disabled_offscreen_sizeless_nameless_and_unlisted_roles() -> None:
    names = {n.name for n in filter_nodes(FIXTURE)}
    # not showing / not visible / no enabled-editable-expandable-checkable / negative coords /
    # zero size / no geometry / unlisted roles (panel, menu-bar, frame)
    for dropped in ("Hidden", "System", "Disabled", "Recent", "Zero", "NoGeometry", "Top Bar",
                    "notes.txt (~/Desktop) - gedit"):
        assert dropped not in names
    assert len(filter_nodes(FIXTURE)) == len(EXPECTED_ROWS)


def test_image_nodes_without_a_name_are_kept_only_for_set_of_marks() -> None:
    plain = filter_nodes(FIXTURE)
    with_images = filter_nodes(FIXTURE, check_image=True)
    extra = [n for n in with_images if n not in plain]
    assert [(n.tag, n.x, n.y) for n in extra] == [("push-button", 1860, 35)]


def test_every_row_has_seven_cells_even_with_tabs_and_newlines_in_text() -> None:
    for row in linearize(FIXTURE).split("\n"):
        assert row.count("\t") == 6


def test_trim_keeps_whole_rows_within_the_budget_and_marks_the_cut() -> None:
    full = linearize(FIXTURE, max_tokens=0)
    budget = estimate_tokens(full) // 2
    trimmed = linearize(FIXTURE, max_tokens=budget)
    assert trimmed.endswith("\n" + TRIM_MARK)
    assert estimate_tokens(trimmed) <= budget
    kept = trimmed.split("\n")[:-1]
    assert kept[0] == HEADER and 1 <= len(kept) - 1 < len(EXPECTED_ROWS)
    assert kept[1:] == EXPECTED_ROWS[: len(kept) - 1]
    assert trim_to_tokens(full, estimate_tokens(full)) == full


def test_token_estimate_grows_with_text_and_is_not_below_chars_over_five() -> None:
    big = "\n".join([linearize(FIXTURE)] * 50)
    assert estimate_tokens(big) >= len(big) / 5
    assert estimate_tokens(big) > estimate_tokens(linearize(FIXTURE))


def test_empty_or_missing_tree_gives_only_the_header() -> None:
    assert linearize(None) == HEADER
    assert linearize("  ") == HEADER
    assert linearize("<desktop-frame/>") == HEADER


@pytest.mark.parametrize("xml, fragment", [
    ("<desktop-frame><push-button name='x'>", "malformed XML"),
    ('<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "not allowed"),
])
def test_bad_xml_raises_a_clear_error(xml: str, fragment: str) -> None:
    with pytest.raises(A11yParseError, match=fragment):
        linearize(xml)


async def test_sim_sandbox_tree_linearizes_to_its_state_label() -> None:
    from vm.sim import Scenario, SimProvider

    box = await SimProvider(screen_size=(800, 600)).start()
    box.load(Scenario.parse("chain-3-s1"))
    table = linearize((await box.observe()).accessibility_tree)
    assert table.split("\n")[1:] == ["label\tchain-3-s1 state 0\tchain-3-s1 state 0\t\t\t(40, 40)\t(400, 20)"]
