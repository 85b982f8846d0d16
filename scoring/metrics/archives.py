"""Archive metrics: compare_archive (unpack, compare member files with another metric),
compare_zip_files (names equal, PDFs by text, the rest byte-equal), compare_epub."""

from __future__ import annotations

import difflib
import os
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lxml.html

from scoring.badinput import BadInput, opened
from scoring.metrics.pdf import pdf_text
from scoring.registry import get_metric, metric, metrics

# compare_archive's file_type -> the metric that compares two member files (as upstream).
FILE_TYPE_METRICS = {"text": "compare_text_file", "pdf": "compare_pdfs", "docx": "compare_docx_files",
                     "ppt": "compare_pptx_files", "image": "compare_images", "csv": "compare_csv",
                     "table": "compare_table", "audio": "compare_audios", "video": "compare_videos"}


@contextmanager
def unpacked(path: str | None, what: str = "archive") -> Iterator[str]:
    """The archive unpacked into a temporary folder (members cannot escape it)."""
    with tempfile.TemporaryDirectory(prefix="cua-archive-") as folder:
        with opened(path, what):
            if zipfile.is_zipfile(path):  # type: ignore[arg-type]
                with zipfile.ZipFile(path) as z:  # type: ignore[arg-type]
                    z.extractall(folder)  # member names are sanitized: nothing lands outside
            else:
                with tarfile.open(path) as t:  # type: ignore[arg-type]
                    t.extractall(folder, filter="data")  # no absolute paths, links out or devices
        yield folder


def _check_archive(options: dict[str, Any]) -> list[str]:
    kind = options.get("file_type", "text")
    name = FILE_TYPE_METRICS.get(kind)
    if name is None:
        return [f"file_type {kind}"]
    return [] if name in metrics() else [f"file_type {kind} needs metric {name}"]


@metric("compare_archive", check=_check_archive)
def compare_archive(result: str | None, expected: str, **options: Any) -> float:
    """Unpacked archives list the same files (under options.file_path); the mean of
    options.file_type's metric over the pairs (remaining options go to that metric)."""
    options = dict(options)
    sub = options.pop("file_path", "")
    compare = get_metric(FILE_TYPE_METRICS[options.pop("file_type", "text")]).fn
    with unpacked(expected, "gold archive") as gold, unpacked(result) as mine:
        try:
            mine_files = sorted(os.listdir(os.path.join(mine, sub)))
        except OSError as e:
            raise BadInput(f"{result}: no folder {sub!r} inside the archive", result) from e
        gold_files = sorted(os.listdir(os.path.join(gold, sub)))
        if mine_files != gold_files:
            return 0.0
        if not mine_files:
            return 1.0  # upstream divides by zero here; two empty archives are equal
        total = 0.0
        for name in mine_files:
            a, b = os.path.join(mine, sub, name), os.path.join(gold, sub, name)
            try:
                total += float(compare(a, b, **options) or 0.0)
            except BadInput:
                continue  # one unreadable member scores 0, the others still count
        return total / len(mine_files)


@metric("compare_zip_files")
def compare_zip_files(result: str | None, expected: str, **_: Any) -> float:
    """Same member names; each .pdf's text similarity >= 0.95 (difflib), other members byte-equal."""
    with opened(expected, "gold zip"):
        gold = zipfile.ZipFile(expected)
    with gold, opened(result, "zip"):
        mine = zipfile.ZipFile(result)  # type: ignore[arg-type]
        with mine:
            if set(mine.namelist()) != set(gold.namelist()):
                return 0.0
            for name in mine.namelist():
                a, b = mine.read(name), gold.read(name)
                if name.lower().endswith(".pdf"):
                    if _pdf_ratio(a, b) < 0.95:
                        return 0.0
                elif a != b:
                    return 0.0
    return 1.0


def _pdf_ratio(a: bytes, b: bytes) -> float:
    with tempfile.TemporaryDirectory(prefix="cua-zip-") as folder:
        texts = []
        for i, data in enumerate((a, b)):
            path = os.path.join(folder, f"{i}.pdf")
            with open(path, "wb") as f:
                f.write(data)
            try:
                texts.append(pdf_text(path))
            except BadInput:
                return 0.0
    return difflib.SequenceMatcher(None, texts[0], texts[1]).ratio()


def _epub_parts(path: str | None, what: str) -> list[tuple[str, list[str]]]:
    """(name, lines) of toc.ncx without navPoint lines and content.opf without dc:identifier
    lines (each when present at the top level), and each .html pretty-printed after removing
    newlines, sorted by name (upstream's process_epub)."""
    parts: list[tuple[str, list[str]]] = []
    with opened(path, what), zipfile.ZipFile(path) as z:  # type: ignore[arg-type]
        names = z.namelist()
        for name, drop in (("toc.ncx", "navPoint"), ("content.opf", "dc:identifier")):
            if name in names:
                parts.append((name, [ln for ln in z.read(name).decode().splitlines() if drop not in ln]))
        for name in names:
            if name.endswith(".html"):
                text = z.read(name).decode().replace("\n", "").replace("\r", "")
                html = lxml.html.tostring(lxml.html.fromstring(text.encode()), pretty_print=True, encoding="unicode")
                parts.append((name, html.splitlines()))
    return sorted(parts)


@metric("compare_epub")
def compare_epub(result: str | None, expected: str) -> float:
    """Mean of difflib line ratios over the epubs' toc, package file and HTML files, paired by name
    order (upstream's current main; it multiplied them until mid-2025)."""
    gold = _epub_parts(expected, "gold epub")
    mine = _epub_parts(result, "epub")
    if not mine or len(mine) != len(gold):
        return 0.0  # upstream zips the lists and ignores gold files the result lacks
    ratios = [difflib.SequenceMatcher(a=a, b=b).ratio() for (_, a), (_, b) in zip(mine, gold, strict=True)]
    return sum(ratios) / len(ratios)
