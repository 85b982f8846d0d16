"""PDF, archive, code, Writer-format, system and chart/style metrics on real files we build."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pymupdf
import pytest
from docx import Document
from docx.shared import Pt, RGBColor
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font

from scoring.badinput import BadInput
from scoring.metrics.archives import compare_archive, compare_epub, compare_zip_files
from scoring.metrics.code import check_python_file_by_test_suite, compare_result_files
from scoring.metrics.docs_format import (
    _lab,
    check_italic_font_size_14,
    delta_e_2000,
    evaluate_colored_words_in_tables,
    evaluate_strike_through_last_paragraph,
    find_default_font,
)
from scoring.metrics.pdf import check_pdf_pages, compare_pdf_images, compare_pdfs
from scoring.metrics.system import check_text_enlarged, compare_time_in_speedtest_results, is_in_vm_clickboard
from scoring.metrics.table import compare_table


def pdf(path: Path, pages: list[str]) -> str:
    doc = pymupdf.open()
    for text in pages:
        doc.new_page().insert_text((72, 72), text)
    doc.save(path)
    return str(path)


def test_pdf_metrics_score_text_pages_and_pixels(tmp_path: Path) -> None:
    a = pdf(tmp_path / "a.pdf", ["hello world", "page two"])
    b = pdf(tmp_path / "b.pdf", ["hello world", "page two"])
    c = pdf(tmp_path / "c.pdf", ["goodbye"])
    assert compare_pdfs(a, b) == 1.0 and compare_pdfs(c, b) < 0.5
    assert check_pdf_pages(a, {"relation": "eq", "ref_value": 2}) == 1.0
    assert check_pdf_pages(c, {"relation": "gt", "ref_value": 1}) == 0.0
    assert compare_pdf_images(a, b) == 1.0 and compare_pdf_images(c, b) == 0.0
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 garbage")
    with pytest.raises(BadInput):
        check_pdf_pages(str(tmp_path / "bad.pdf"), {"relation": "eq", "ref_value": 1})
    assert compare_pdfs([str(tmp_path / "bad.pdf"), a], [b, b]) == 0.5  # the unreadable pair adds 0


def zip_of(path: Path, files: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return str(path)


def test_archives_compare_members_by_type(tmp_path: Path) -> None:
    one = Path(pdf(tmp_path / "1.pdf", ["chapter one"])).read_bytes()
    two = Path(pdf(tmp_path / "2.pdf", ["chapter two"])).read_bytes()
    gold = zip_of(tmp_path / "g.zip", {"book/1.pdf": one, "book/2.pdf": two})
    same = zip_of(tmp_path / "s.zip", {"book/1.pdf": one, "book/2.pdf": two})
    short = zip_of(tmp_path / "m.zip", {"book/1.pdf": one})
    assert compare_archive(same, gold, file_path="book", file_type="pdf") == 1.0
    assert compare_archive(short, gold, file_path="book", file_type="pdf") == 0.0
    assert compare_zip_files(same, gold) == 1.0 and compare_zip_files(short, gold) == 0.0
    (tmp_path / "junk.zip").write_bytes(b"junk")
    with pytest.raises(BadInput):
        compare_archive(str(tmp_path / "junk.zip"), gold, file_type="pdf")


def epub(path: Path, body: str) -> str:
    return zip_of(path, {"toc.ncx": b"<ncx>\n<navPoint/>\n</ncx>", "content.opf": b"<package>\n<dc:identifier>x</dc:identifier>\n</package>",
                         "ch1.html": f"<html><body><p>{body}</p></body></html>".encode()})


def test_compare_epub_ignores_ids_and_a_corrupt_epub_is_bad_input(tmp_path: Path) -> None:
    gold = epub(tmp_path / "g.epub", "text")
    assert compare_epub(epub(tmp_path / "a.epub", "text"), gold) == 1.0
    assert compare_epub(epub(tmp_path / "b.epub", "other"), gold) < 1.0
    (tmp_path / "c.epub").write_bytes(b"nope")
    with pytest.raises(BadInput):  # upstream scores a corrupt epub 1.0
        compare_epub(str(tmp_path / "c.epub"), gold)


def test_python_test_suite_runs_in_a_child_with_a_timeout(tmp_path: Path) -> None:
    (tmp_path / "game.py").write_text("def speed():\n    return 3\n")
    (tmp_path / "hang.py").write_text("def speed():\n    while True: pass\n")
    (tmp_path / "t.py").write_text("import game\ndef test():\n    return game.speed() == 3\n")
    (tmp_path / "th.py").write_text("import hang\ndef test():\n    return hang.speed() == 3\n")
    (tmp_path / "tm.py").write_text("import no_such_library_xyz\ndef test():\n    return True\n")
    assert check_python_file_by_test_suite([str(tmp_path / "game.py")], str(tmp_path / "t.py")) == 1.0
    (tmp_path / "game.py").write_text("def speed():\n    return 4\n")
    assert check_python_file_by_test_suite([str(tmp_path / "game.py")], str(tmp_path / "t.py")) == 0.0
    import scoring.metrics.code as code

    code.TEST_TIMEOUT, old = 2.0, code.TEST_TIMEOUT
    try:
        assert check_python_file_by_test_suite([str(tmp_path / "hang.py")], str(tmp_path / "th.py")) == 0.0
    finally:
        code.TEST_TIMEOUT = old
    with pytest.raises(RuntimeError, match="host lacks"):  # every agent would fail: our problem
        check_python_file_by_test_suite([str(tmp_path / "game.py")], str(tmp_path / "tm.py"))


def test_result_files_accept_a_sentence_around_the_number(tmp_path: Path) -> None:
    (tmp_path / "g.txt").write_text("42.5\n")
    (tmp_path / "a.txt").write_text("The answer is 42.5")
    (tmp_path / "b.txt").write_text("41")
    assert compare_result_files(str(tmp_path / "a.txt"), str(tmp_path / "g.txt")) == 1.0
    assert compare_result_files(str(tmp_path / "b.txt"), str(tmp_path / "g.txt")) == 0.0


def test_writer_format_checks(tmp_path: Path) -> None:
    def doc(path: Path, strike: bool, colour: tuple[int, int, int], italic_pt: int) -> str:
        d = Document()
        d.add_paragraph("intro").runs[0].italic = True
        d.paragraphs[0].runs[0].font.size = Pt(italic_pt)
        d.add_paragraph("last words").runs[0].font.strike = strike
        cell = d.add_table(rows=1, cols=1).cell(0, 0)
        cell.paragraphs[0].add_run("apple").font.color.rgb = RGBColor(*colour)
        d.save(path)
        return str(path)

    good = doc(tmp_path / "g.docx", True, (255, 0, 0), 14)
    bad = doc(tmp_path / "b.docx", False, (0, 0, 255), 12)
    assert evaluate_strike_through_last_paragraph(good, good) == 1.0
    assert evaluate_strike_through_last_paragraph(bad, bad) == 0.0
    assert evaluate_colored_words_in_tables(good, good) == 1.0 and evaluate_colored_words_in_tables(bad, bad) == 0.0
    assert check_italic_font_size_14(good, good) == 1.0 and check_italic_font_size_14(bad, bad) == 0.0
    assert delta_e_2000(_lab((255, 0, 0)), _lab((255, 0, 0))) == 0.0
    assert abs(delta_e_2000((50, 2.6772, -79.7751), (50, 0, -82.7485)) - 2.0425) < 1e-3  # Sharma et al. pair 1


def test_system_checks(tmp_path: Path) -> None:
    import datetime as dt

    assert check_text_enlarged("1.25\n") == 1.0 and check_text_enlarged("1.0") == 0.0
    assert is_in_vm_clickboard({"expected": "/a/b.docx"}, "/a/b.docx\n") == 1.0
    now = dt.datetime.now().strftime("%H:%M")
    (tmp_path / "s.csv").write_text(f"a,date\n1,2024-01-01 {now}\n")
    assert compare_time_in_speedtest_results(str(tmp_path / "s.csv"), "60") == 1.0
    (tmp_path / "r.xcu").write_text('<items xmlns:oor="http://openoffice.org/2001/registry"><item oor:path='
                                    '"/org.openoffice.Office.Writer/DefaultFont"><prop oor:name="Standard"><value>'
                                    'Times New Roman</value></prop></item></items>')
    assert find_default_font(str(tmp_path / "r.xcu"), {"font_name": "Times New Roman"}) == 1.0


def test_compare_table_chart_and_style_rules(tmp_path: Path) -> None:
    def book(path: Path, title: str, bold: bool) -> str:
        wb = openpyxl.Workbook()
        ws = wb.active
        for i in range(1, 5):
            ws.append([f"r{i}", i])
        ws["B1"].font = Font(bold=bold)
        ch = BarChart()
        ch.title = title
        ch.add_data(Reference(ws, min_col=2, min_row=1, max_row=4))
        ch.set_categories(Reference(ws, min_col=1, min_row=1, max_row=4))
        ws.add_chart(ch, "D2")
        wb.save(path)
        return str(path)

    gold, same, other = book(tmp_path / "g.xlsx", "Sales", True), book(tmp_path / "a.xlsx", "Sales", True), \
        book(tmp_path / "b.xlsx", "Cost", False)
    chart = [{"type": "chart", "sheet_idx0": 0, "sheet_idx1": "EI0", "chart_props": ["type", "title"]}]
    style = [{"type": "style", "sheet_idx0": 0, "sheet_idx1": "EI0", "props": ["font_bold"]}]
    assert compare_table(same, gold, rules=chart) == 1.0 and compare_table(other, gold, rules=chart) == 0.0
    assert compare_table(same, gold, rules=style) == 1.0 and compare_table(other, gold, rules=style) == 0.0
