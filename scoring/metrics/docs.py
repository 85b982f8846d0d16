"""Word-processor metrics over .docx (python-docx) and, for compare_docx_files, .odt."""

from __future__ import annotations

import re
import zipfile
from typing import Any

from docx import Document
from docx.enum.text import WD_PARAGRAPH_ALIGNMENT
from lxml import etree
from rapidfuzz import fuzz

from harness.base.errors import TaskError
from scoring.badinput import load
from scoring.registry import metric

_ODF_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _odt_paragraphs(path: str) -> list[str]:
    """Paragraph texts of an .odt: direct text and direct <text:span> text, as upstream's odfpy walk."""
    with zipfile.ZipFile(path) as z:
        root = etree.fromstring(z.read("content.xml"))
    out = []
    for p in root.iter(f"{{{_ODF_TEXT}}}p"):
        parts = [p.text or ""]
        for child in p:
            if child.tag == f"{{{_ODF_TEXT}}}span":
                parts.append(child.text or "")
            parts.append(child.tail or "")
        out.append("".join(parts))
    return out


def _paragraphs(path: str) -> list[str]:
    if path.endswith(".docx"):
        return [p.text for p in Document(path).paragraphs]
    if path.endswith(".odt"):
        return _odt_paragraphs(path)
    raise ValueError(f"{path}: expected a .docx or .odt file")


def _squash(paragraphs: list[str]) -> str:
    return re.sub(r"\s+", " ", "\n".join(paragraphs)).strip()


@metric("compare_docx_files")
def compare_docx_files(file1: str, file2: str, **options: Any) -> float:
    """Documents' paragraph text equal (options: ignore_blanks=True, ignore_case, ignore_order,
    content_only and fuzzy_match give a similarity, delete_empty_lines)."""
    ignore_blanks = options.get("ignore_blanks", True)
    ignore_case = options.get("ignore_case", False)
    if not (file1.endswith(".docx") and file2.endswith(".docx")) and not (
            file1.endswith(".odt") and file2.endswith(".odt")):
        return 0.0  # mismatched or unsupported types, as upstream
    try:
        p1, p2 = _paragraphs(file1), _paragraphs(file2)
    except (zipfile.BadZipFile, KeyError, ValueError, etree.XMLSyntaxError):
        return 0.0
    if options.get("ignore_order", False):
        p1, p2 = sorted(p1), sorted(p2)
    if options.get("delete_empty_lines", False):
        p1, p2 = [p for p in p1 if p.strip()], [p for p in p2 if p.strip()]
    if options.get("content_only", False) or ignore_blanks:
        t1, t2 = _squash(p1), _squash(p2)
        if ignore_case:
            t1, t2 = t1.lower(), t2.lower()
        if options.get("content_only", False) or options.get("fuzzy_match", False):
            return fuzz.ratio(t1, t2) / 100.0
        return float(t1 == t2)
    if len(p1) != len(p2):
        return 0.0
    if ignore_case:
        p1, p2 = [p.lower() for p in p1], [p.lower() for p in p2]
    if options.get("fuzzy_match", False):
        return sum(fuzz.ratio(a, b) / 100.0 for a, b in zip(p1, p2, strict=True)) / len(p1) if p1 else 1.0
    return float(p1 == p2)


@metric("compare_docx_files_and_ignore_new_lines")
def compare_docx_files_and_ignore_new_lines(file1: str, file2: str, **options: Any) -> float:
    """compare_docx_files after dropping empty paragraphs (docx only)."""
    if not (file1.endswith(".docx") and file2.endswith(".docx")):
        return 0.0
    p1 = [p for p in _paragraphs(file1) if p != ""]
    p2 = [p for p in _paragraphs(file2) if p != ""]
    if options.get("ignore_blanks", True):
        return float(_squash(p1) == _squash(p2))
    return float(p1 == p2)


@metric("compare_docx_tables")
def compare_docx_tables(file1: str, file2: str) -> float:
    """Same number of tables, same shapes, same stripped cell texts."""
    t1, t2 = Document(file1).tables, Document(file2).tables
    if len(t1) != len(t2):
        return 0.0
    for a, b in zip(t1, t2, strict=True):
        if len(a.rows) != len(b.rows) or len(a.columns) != len(b.columns):
            return 0.0
        for i in range(len(a.rows)):
            for j in range(len(a.columns)):
                if a.cell(i, j).text.strip() != b.cell(i, j).text.strip():
                    return 0.0
    return 1.0


@metric("compare_line_spacing")
def compare_line_spacing(file1: str, file2: str) -> float:
    """Same text (compare_docx_files) and the same line spacing in every paragraph."""
    if not compare_docx_files(file1, file2):
        return 0.0
    d1, d2 = Document(file1).paragraphs, Document(file2).paragraphs
    if len(d1) != len(d2):
        return 0.0
    return float(all(a.paragraph_format.line_spacing == b.paragraph_format.line_spacing
                     for a, b in zip(d1, d2, strict=True)))


@metric("contains_page_break")
def contains_page_break(path: str, rules: dict[str, Any] | None = None) -> float:
    """The document has a page break (rules.page_break_count: exactly that many)."""
    count = sum(1 for p in Document(path).paragraphs for run in p.runs
                for br in run.element.iter(f"{_W}br") if br.get(f"{_W}type") == "page")
    want = (rules or {}).get("page_break_count")
    if want is not None and count != want:
        return 0.0
    return float(count > 0)


@metric("compare_font_names")
def compare_font_names(path: str, rules: dict[str, Any]) -> float:
    """Every run of every paragraph uses rules.font_name."""
    want = rules["font_name"]
    return float(all(run.font.name == want for p in Document(path).paragraphs for run in p.runs))


@metric("is_first_line_centered")
def is_first_line_centered(path: str) -> float:
    """The first paragraph is centered."""
    paragraphs = Document(path).paragraphs
    return float(bool(paragraphs) and paragraphs[0].paragraph_format.alignment == WD_PARAGRAPH_ALIGNMENT.CENTER)


@metric("has_page_numbers_in_footers")
def has_page_numbers_in_footers(path: str) -> float:
    """Every section's footer's first paragraph contains a digit."""
    for section in Document(path).sections:
        paragraphs = section.footer.paragraphs
        if not any(ch.isdigit() for ch in (paragraphs[0].text if paragraphs else "")):
            return 0.0
    return 1.0


def _record_lines(path: str) -> list[str]:
    """The non-blank paragraphs of a docx, stripped."""
    return [t for p in load(Document, path, "docx").paragraphs if (t := p.text.strip())]


def _train_ids(lines: list[str]) -> list[str]:
    """Field 2 of each line of exactly four comma-separated fields (time, train, station, platform)."""
    return [fields[1].strip() for line in lines if len(fields := line.split(",")) == 4]


@metric("compare_unique_train_records")
def compare_unique_train_records(path: str, expected: list[str]) -> float:
    """The duplicate train records are gone: every line was in the original, no train id twice,
    the same ids and number of lines as the gold (expected = [gold docx, original docx])."""
    if not isinstance(expected, list) or len(expected) < 2:
        raise TaskError("compare_unique_train_records: expected must give [gold docx, original docx]")
    lines, gold = _record_lines(path), _record_lines(expected[0])
    original = set(_record_lines(expected[1]))
    ids = _train_ids(lines)
    return float(set(lines) <= original and len(ids) == len(set(ids))
                 and set(ids) == set(_train_ids(gold)) and len(lines) == len(gold))
