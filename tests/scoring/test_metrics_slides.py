"""compare_pptx_files on real .pptx files built here with python-pptx: each option catches its
difference (0) and, switched off, lets it pass (1); tables and groups are always compared; an
unreadable file is BadInput (scores 0 with the reason)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from PIL import Image
from pptx import Presentation
from pptx.dml.color import RGBColor
from pptx.enum.text import PP_ALIGN
from pptx.util import Emu, Pt

from scoring.badinput import BadInput
from scoring.metrics.slides import compare_pptx_files, pptx_difference

_A = "http://schemas.openxmlformats.org/drawingml/2006/main"


def _png() -> io.BytesIO:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, format="PNG")
    buf.seek(0)
    return buf


def build(path: Path, edit: Callable[[Any], None] | None = None) -> str:
    """Slide 1: title, 2-bullet body, text box, group with a text box, notes; slide 2: a picture;
    slide 3: a 2x2 table. `edit` changes the presentation before it is saved."""
    prs = Presentation()
    s1 = prs.slides.add_slide(prs.slide_layouts[1])
    s1.shapes.title.text = "Quarterly Review"
    body = s1.placeholders[1].text_frame
    body.text = "Revenue grew"
    body.add_paragraph().text = "Costs fell"
    box = s1.shapes.add_textbox(Emu(914400), Emu(4572000), Emu(2743200), Emu(457200))
    box.text_frame.text = "Hello world"
    group = s1.shapes.add_group_shape()
    inner = group.shapes.add_textbox(Emu(914400), Emu(5486400), Emu(1828800), Emu(457200))
    inner.text_frame.text = "In a group"
    s1.notes_slide.notes_text_frame.text = "Speak slowly"
    s2 = prs.slides.add_slide(prs.slide_layouts[6])
    s2.shapes.add_picture(_png(), Emu(914400), Emu(2743200), Emu(1828800), Emu(1828800))
    s3 = prs.slides.add_slide(prs.slide_layouts[6])
    table = s3.shapes.add_table(2, 2, Emu(914400), Emu(1828800), Emu(3657600), Emu(914400)).table
    for i, text in enumerate(["a", "b", "c", "d"]):
        table.cell(i // 2, i % 2).text = text
    if edit:
        edit(prs)
    prs.save(str(path))
    return str(path)


def shape(prs: Any, slide: int, index: int) -> Any:
    return prs.slides[slide].shapes[index]


def run(prs: Any, slide: int = 0, index: int = 2) -> Any:
    return shape(prs, slide, index).text_frame.paragraphs[0].runs[0]


@pytest.fixture
def gold(tmp_path: Path) -> str:
    return build(tmp_path / "gold.pptx")


def test_identical_presentations_score_1(tmp_path: Path, gold: str) -> None:
    assert compare_pptx_files(build(tmp_path / "same.pptx"), gold) == 1.0


def _set_level(p: Any) -> None:
    shape(p, 0, 1).text_frame.paragraphs[1].level = 1


def _set_bullet(p: Any) -> None:
    ppr = shape(p, 0, 2).text_frame.paragraphs[0]._p.get_or_add_pPr()
    etree.SubElement(ppr, f"{{{_A}}}buChar", char="*")


def _strike(p: Any) -> None:
    run(p).font._rPr.set("strike", "sngStrike")


def _background(p: Any) -> None:
    fill = p.slides[0].background.fill
    fill.solid()
    fill.fore_color.rgb = RGBColor(0, 0, 255)


# option -> (an edit only that option notices, other options that must be off for it to pass)
CASES: dict[str, tuple[Callable[[Any], None], dict[str, bool]]] = {
    "examine_number_of_slides": (lambda p: p.slides.add_slide(p.slide_layouts[6]), {}),
    "examine_shape": (lambda p: setattr(shape(p, 0, 2), "left", Emu(1828800)), {}),
    "examine_text": (lambda p: setattr(run(p), "text", "Hello there"), {"examine_bullets": False}),
    "examine_indent": (_set_level, {"examine_bullets": False}),
    "examine_font_name": (lambda p: setattr(run(p).font, "name", "DejaVu Serif"), {}),
    "examine_font_size": (lambda p: setattr(run(p).font, "size", Pt(40)), {}),
    "examine_font_bold": (lambda p: setattr(run(p).font, "bold", True), {}),
    "examine_font_italic": (lambda p: setattr(run(p).font, "italic", True), {}),
    "examine_font_underline": (lambda p: setattr(run(p).font, "underline", True), {}),
    "examine_strike_through": (_strike, {}),
    "examine_alignment": (lambda p: setattr(shape(p, 0, 2).text_frame.paragraphs[0], "alignment", PP_ALIGN.CENTER), {}),
    "examine_bullets": (_set_bullet, {}),
    "examine_background_color": (_background, {}),
    "examine_note": (lambda p: setattr(p.slides[0].notes_slide.notes_text_frame, "text", "Speak fast"), {}),
}


@pytest.mark.parametrize("option", sorted(CASES))
def test_each_default_option_catches_its_difference_and_can_be_switched_off(tmp_path: Path, gold: str, option: str) -> None:
    edit, also_off = CASES[option]
    changed = build(tmp_path / "changed.pptx", edit)
    assert compare_pptx_files(changed, gold) == 0.0, option
    assert compare_pptx_files(changed, gold, **{option: False}, **also_off) == 1.0, pptx_difference(
        changed, gold, **{option: False}, **also_off)


def test_colour_is_compared_only_when_both_runs_have_an_rgb(tmp_path: Path, gold: str) -> None:
    def red(p: Any) -> None:
        run(p).font.color.rgb = RGBColor(255, 0, 0)

    def blue(p: Any) -> None:
        run(p).font.color.rgb = RGBColor(0, 0, 255)

    red_file, blue_file = build(tmp_path / "red.pptx", red), build(tmp_path / "blue.pptx", blue)
    assert compare_pptx_files(red_file, blue_file) == 0.0
    assert compare_pptx_files(red_file, blue_file, examine_color_rgb=False) == 1.0
    assert compare_pptx_files(red_file, gold) == 1.0  # gold's run has no explicit colour


def test_bold_none_and_false_are_the_same(tmp_path: Path, gold: str) -> None:
    off = build(tmp_path / "off.pptx", lambda p: setattr(run(p).font, "bold", False))
    assert compare_pptx_files(off, gold) == 1.0


def test_tables_are_compared_cell_by_cell_whatever_the_options(tmp_path: Path, gold: str) -> None:
    def bold_cell(p: Any) -> None:
        shape(p, 2, 0).table.cell(0, 0).text_frame.paragraphs[0].runs[0].font.bold = True

    changed = build(tmp_path / "bold_cell.pptx", bold_cell)
    assert compare_pptx_files(changed, gold, examine_font_bold=False) == 0.0
    assert "cell (0,0)" in (pptx_difference(changed, gold) or "")


def test_text_inside_groups_is_compared_by_alignment(tmp_path: Path, gold: str) -> None:
    def centre(p: Any) -> None:
        shape(p, 0, 3).shapes[0].text_frame.paragraphs[0].alignment = PP_ALIGN.CENTER

    changed = build(tmp_path / "group.pptx", centre)
    assert "text shape" in (pptx_difference(changed, gold) or "")
    assert compare_pptx_files(changed, gold, examine_alignment=False) == 1.0
    assert compare_pptx_files(changed, gold, examine_aligment=False) == 1.0  # an OSWorld task's spelling


def test_position_tolerance_is_relative(tmp_path: Path, gold: str) -> None:
    nudged = build(tmp_path / "nudged.pptx", lambda p: setattr(shape(p, 0, 2), "left", Emu(914400 + 2000)))
    assert compare_pptx_files(nudged, gold) == 1.0  # 0.2 % < 0.5 %
    assert compare_pptx_files(nudged, gold, approximately_tolerance=0.001) == 0.0


def _deck_with(path: Path, slides: list[Callable[[Any], None]]) -> str:
    prs = Presentation()
    for fill in slides:
        fill(prs.slides.add_slide(prs.slide_layouts[6]))
    prs.save(str(path))
    return str(path)


def _title_box(top: int) -> Callable[[Any], None]:
    def fill(slide: Any) -> None:
        slide.shapes.add_textbox(Emu(914400), Emu(top), Emu(3657600), Emu(457200)).text_frame.text = "Product Comparison"
    return fill


def _picture(left: int, top: int, size: int = 914400, height: int | None = None) -> Callable[[Any], None]:
    return lambda slide: slide.shapes.add_picture(_png(), Emu(left), Emu(top), Emu(size), Emu(height or size))


def _table(top: int) -> Callable[[Any], None]:
    return lambda slide: slide.shapes.add_table(2, 2, Emu(914400), Emu(top), Emu(3657600), Emu(914400))


def _text(text: str, width: int) -> Callable[[Any], None]:
    def fill(slide: Any) -> None:
        slide.shapes.add_textbox(Emu(914400), Emu(914400), Emu(width), Emu(457200)).text_frame.text = text
    return fill


def _empty(slide: Any) -> None:
    return None


# option -> (result slides that pass, result slides that fail, expected slides)
POSITION_CASES = {
    "examine_title_bottom_position": ([_title_box(4000000)], [_title_box(914400)], [_title_box(914400)]),
    "examine_table_bottom_position": ([_empty, _empty, _table(4000000)], [_empty, _empty, _table(1828800)],
                                      [_empty, _empty, _table(1828800)]),
    "examine_right_position": ([_empty, _picture(5000000, 914400)], [_empty, _picture(914400, 914400)],
                               [_empty, _picture(914400, 914400)]),
    "examine_top_position": ([_empty, _picture(914400, 457200)], [_empty, _picture(914400, 2743200)],
                             [_empty, _picture(914400, 2743200)]),
    "examine_shape_for_shift_size": ([_text("Elaborate on what you want to discuss.", 5000000)],
                                     [_text("Something else", 5000000)], None),
    "examine_image_size": ([_picture(3000000, 3000000)], [_picture(914400, 914400, 1828800)], [_picture(914400, 914400)]),
    "examine_modify_height": ([_picture(3000000, 914400, 914400, 1828800)], [_picture(914400, 914400, 914400, 2743200)],
                              [_picture(914400, 914400, 914400, 1828800)]),
}


@pytest.mark.parametrize("option", sorted(POSITION_CASES))
def test_task_specific_position_options(tmp_path: Path, option: str) -> None:
    good, bad, expected = POSITION_CASES[option]
    if expected is None:  # shift_size: the expected deck has the same texts at the original width
        gold = _deck_with(tmp_path / "gold.pptx", [_text("Elaborate on what you want to discuss.", 2743200)])
        bad_gold = _deck_with(tmp_path / "gold2.pptx", [_text("Something else", 2743200)])
    else:
        gold = bad_gold = _deck_with(tmp_path / "gold.pptx", expected)
    passing, failing = _deck_with(tmp_path / "good.pptx", good), _deck_with(tmp_path / "bad.pptx", bad)
    assert compare_pptx_files(passing, gold, examine_shape=False, **{option: True}) == 1.0, pptx_difference(
        passing, gold, examine_shape=False, **{option: True})
    assert compare_pptx_files(failing, bad_gold, examine_shape=False, **{option: True}) == 0.0


def test_shape_count_differs_scores_0(tmp_path: Path, gold: str) -> None:
    more = build(tmp_path / "more.pptx", lambda p: p.slides[1].shapes.add_textbox(0, 0, 914400, 914400))
    assert compare_pptx_files(more, gold, examine_shape=False) == 0.0


def test_unreadable_presentation_is_bad_input_with_the_reason(tmp_path: Path, gold: str) -> None:
    broken = tmp_path / "broken.pptx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(BadInput, match=r"broken\.pptx"):
        compare_pptx_files(str(broken), gold)
    with pytest.raises(BadInput):
        compare_pptx_files(str(tmp_path / "missing.pptx"), gold)


def test_unknown_options_are_reported_by_the_check_hook() -> None:
    from scoring.registry import check_metric

    assert check_metric("compare_pptx_files", {"examine_shape": False, "examine_aligment": False}) == []
    assert check_metric("compare_pptx_files", {"examine_colour": True}) == [
        "metric:compare_pptx_files[unknown option examine_colour]"]
