"""Writer metrics on real .docx files (python-docx) and a LibreOffice-saved .odt fixture."""

from __future__ import annotations

from pathlib import Path

import docx
import pytest
from docx.enum.text import WD_BREAK, WD_PARAGRAPH_ALIGNMENT
from helpers import saved

from scoring.metrics.docs import (
    compare_docx_files,
    compare_docx_files_and_ignore_new_lines,
    compare_docx_tables,
    compare_font_names,
    compare_line_spacing,
    contains_page_break,
    has_page_numbers_in_footers,
    is_first_line_centered,
)

FIX = Path(__file__).parents[1] / "fixtures" / "scoring"


def write(path: Path, paragraphs: list[str], *, build=None) -> str:
    d = docx.Document()
    for text in paragraphs:
        d.add_paragraph(text)
    return saved(d, path, build)


def test_compare_docx_files_ignores_blank_differences_by_default(tmp_path: Path) -> None:
    gold = write(tmp_path / "g.docx", ["Quarterly report", "Sales rose by 5%."])
    spaced = write(tmp_path / "s.docx", ["Quarterly  report", "", "Sales rose by 5%.  "])
    changed = write(tmp_path / "c.docx", ["Quarterly report", "Sales rose by 6%."])
    assert compare_docx_files(spaced, gold) == 1.0
    assert compare_docx_files(changed, gold) == 0.0
    assert compare_docx_files(spaced, gold, ignore_blanks=False) == 0.0  # paragraph by paragraph


def test_compare_docx_files_options(tmp_path: Path) -> None:
    gold = write(tmp_path / "g.docx", ["Alpha", "Beta"])
    upper_swapped = write(tmp_path / "u.docx", ["BETA", "ALPHA"])
    assert compare_docx_files(upper_swapped, gold, ignore_case=True, ignore_order=False) == 0.0
    assert compare_docx_files(upper_swapped, gold, ignore_case=True, ignore_order=True) == 1.0
    # upstream sorts before folding case: "Beta" < "alpha", so this order differs from the gold's
    mixed = write(tmp_path / "m.docx", ["alpha", "Beta"])
    assert compare_docx_files(mixed, gold, ignore_case=True, ignore_order=True) == 0.0
    near = write(tmp_path / "n.docx", ["Alpha", "Beto"])
    assert 0.8 < compare_docx_files(near, gold, content_only=True) < 1.0
    assert compare_docx_files(near, gold, ignore_blanks=False, fuzzy_match=True) == pytest.approx(0.875)
    gaps = write(tmp_path / "e.docx", ["Alpha", "", "Beta"])
    assert compare_docx_files(gaps, gold, ignore_blanks=False) == 0.0
    assert compare_docx_files(gaps, gold, ignore_blanks=False, delete_empty_lines=True) == 1.0


def test_compare_docx_files_reads_libreoffice_odt_and_rejects_mixed_types(tmp_path: Path) -> None:
    odt = str(FIX / "lo_doc.odt")
    same = write(tmp_path / "same.docx", ["Quarterly report", "Sales rose by 5%.", "Costs fell."])
    assert compare_docx_files(odt, odt) == 1.0
    assert compare_docx_files(odt, same) == 0.0  # upstream: mismatched types score 0
    other = tmp_path / "other.odt"
    other.write_bytes(b"not a zip")
    assert compare_docx_files(str(other), odt) == 0.0


def test_compare_docx_files_and_ignore_new_lines(tmp_path: Path) -> None:
    gold = write(tmp_path / "g.docx", ["One", "Two"])
    assert compare_docx_files_and_ignore_new_lines(write(tmp_path / "a.docx", ["One", "", "", "Two"]), gold) == 1.0
    assert compare_docx_files_and_ignore_new_lines(write(tmp_path / "b.docx", ["One", "Three"]), gold) == 0.0


def _table(values: list[list[str]]):
    def build(d) -> None:
        t = d.add_table(rows=len(values), cols=len(values[0]))
        for i, row in enumerate(values):
            for j, v in enumerate(row):
                t.cell(i, j).text = v

    return build


def test_compare_docx_tables(tmp_path: Path) -> None:
    gold = write(tmp_path / "g.docx", ["t"], build=_table([["a", "b"], ["1", "2"]]))
    same = write(tmp_path / "s.docx", ["x"], build=_table([["a ", "b"], ["1", " 2"]]))
    other = write(tmp_path / "o.docx", ["t"], build=_table([["a", "b"], ["1", "3"]]))
    assert compare_docx_tables(same, gold) == 1.0
    assert compare_docx_tables(other, gold) == 0.0


def _spacing(value: float):
    def build(d) -> None:
        for p in d.paragraphs:
            p.paragraph_format.line_spacing = value

    return build


def test_compare_line_spacing(tmp_path: Path) -> None:
    gold = write(tmp_path / "g.docx", ["a", "b"], build=_spacing(2.0))
    assert compare_line_spacing(write(tmp_path / "s.docx", ["a", "b"], build=_spacing(2.0)), gold) == 1.0
    assert compare_line_spacing(write(tmp_path / "o.docx", ["a", "b"], build=_spacing(1.5)), gold) == 0.0


def test_contains_page_break(tmp_path: Path) -> None:
    def brk(d) -> None:
        d.paragraphs[0].add_run().add_break(WD_BREAK.PAGE)

    with_break = write(tmp_path / "b.docx", ["a", "b"], build=brk)
    assert contains_page_break(with_break) == 1.0
    assert contains_page_break(with_break, {"page_break_count": 2}) == 0.0
    assert contains_page_break(write(tmp_path / "n.docx", ["a", "b"])) == 0.0


def test_compare_font_names(tmp_path: Path) -> None:
    def font(name: str):
        def build(d) -> None:
            for p in d.paragraphs:
                for r in p.runs:
                    r.font.name = name

        return build

    assert compare_font_names(write(tmp_path / "a.docx", ["x", "y"], build=font("Liberation Serif")),
                              {"font_name": "Liberation Serif"}) == 1.0
    assert compare_font_names(write(tmp_path / "b.docx", ["x", "y"], build=font("DejaVu Sans")),
                              {"font_name": "Liberation Serif"}) == 0.0


def test_is_first_line_centered(tmp_path: Path) -> None:
    def center(d) -> None:
        d.paragraphs[0].alignment = WD_PARAGRAPH_ALIGNMENT.CENTER

    assert is_first_line_centered(write(tmp_path / "c.docx", ["Title", "body"], build=center)) == 1.0
    assert is_first_line_centered(write(tmp_path / "l.docx", ["Title", "body"])) == 0.0


def test_has_page_numbers_in_footers(tmp_path: Path) -> None:
    def footer(text: str):
        def build(d) -> None:
            d.sections[0].footer.paragraphs[0].text = text

        return build

    assert has_page_numbers_in_footers(write(tmp_path / "a.docx", ["x"], build=footer("Page 1"))) == 1.0
    assert has_page_numbers_in_footers(write(tmp_path / "b.docx", ["x"], build=footer("Confidential"))) == 0.0
