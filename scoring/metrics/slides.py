"""compare_pptx_files: OSWorld's slide-by-slide comparison of two presentations (python-pptx).

python-pptx is the library upstream uses and a well-kept one (typed, maintained, pure Python);
reading the same properties through it keeps our verdicts equal to upstream's.

The first difference decides (score 0); `pptx_difference` says which one, for tests and logs.
Upstream's task-specific position options (title/table at the bottom, picture right/top, ...)
keep their fixed slide numbers, texts and EMU thresholds: they exist for single OSWorld tasks.
"""

from __future__ import annotations

import logging
from typing import Any

from pptx import Presentation
from pptx.enum.shapes import MSO_SHAPE_TYPE
from pptx.enum.text import PP_ALIGN

from scoring.badinput import load
from scoring.registry import metric

log = logging.getLogger("scoring.metrics.slides")

_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
TRUE_BY_DEFAULT = ("examine_number_of_slides", "examine_shape", "examine_text", "examine_indent",
                   "examine_font_name", "examine_font_size", "examine_font_bold", "examine_font_italic",
                   "examine_color_rgb", "examine_font_underline", "examine_strike_through",
                   "examine_alignment", "examine_bullets", "examine_background_color", "examine_note",
                   "examine_run_count")
FALSE_BY_DEFAULT = ("examine_title_bottom_position", "examine_table_bottom_position",
                    "examine_right_position", "examine_top_position", "examine_shape_for_shift_size",
                    "examine_image_size", "examine_modify_height")
OTHER_OPTIONS = ("approximately_tolerance", "enable_debug", "examine_aligment")


class Differs(Exception):
    """The first difference found (its message says where)."""


def _options(options: dict[str, Any]) -> dict[str, Any]:
    opts = {k: bool(options.get(k, True)) for k in TRUE_BY_DEFAULT}
    opts.update({k: bool(options.get(k, False)) for k in FALSE_BY_DEFAULT})
    if "examine_aligment" in options and "examine_alignment" not in options:
        opts["examine_alignment"] = bool(options["examine_aligment"])  # an OSWorld task's typo, meant as this
    opts["tol"] = float(options.get("approximately_tolerance", 0.005))
    return opts


def _check(options: dict[str, Any]) -> list[str]:
    known = set(TRUE_BY_DEFAULT) | set(FALSE_BY_DEFAULT) | set(OTHER_OPTIONS)
    # "_note" and other "_" keys are task authors' comments (upstream reads only the names it knows)
    return [f"unknown option {k}" for k in options if k not in known and not str(k).startswith("_")]


def rgb_of(color: Any) -> Any:
    """The explicit RGB of a python-pptx colour, or None (no colour, or a theme colour)."""
    try:
        return color.rgb
    except AttributeError:
        return None


def _close(a: int | None, b: int | None, tol: float) -> bool:
    """Upstream's relative tolerance; exactly one zero (or None) means different."""
    if a == b:
        return True
    if not a or not b:
        return False
    return abs(a - b) / max(abs(a), abs(b)) <= tol


def _v(x: int | None) -> int:
    return x or 0  # a shape without its own offset (an inheriting placeholder) counts as 0


def _same_box(s1: Any, s2: Any, tol: float) -> bool:
    return all(_close(getattr(s1, k), getattr(s2, k), tol) for k in ("left", "top", "width", "height"))


def _texty(shape: Any) -> bool:
    """Shapes with a text frame (upstream: `hasattr(shape, "text")`): not pictures, tables, groups."""
    return bool(getattr(shape, "has_text_frame", False))


def _text_shapes(shapes: Any) -> list[Any]:
    """Text shapes, including those inside groups (depth first)."""
    out = []
    for shape in shapes:
        if _texty(shape):
            out.append(shape)
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            out += _text_shapes(shape.shapes)
    return out


def _background(slide: Any) -> Any:
    """Solid background colour of the slide, else of its master; None otherwise."""
    for owner in (slide, slide.slide_layout.slide_master):
        fill = owner.background.fill  # python-pptx turns a missing or theme background into "no fill"
        if fill.type == 1:  # MSO_FILL.SOLID
            rgb = rgb_of(fill.fore_color)
            return rgb if rgb is not None else ("theme", fill.fore_color.theme_color)
        if fill.type != 5:  # not "inherit": a gradient, picture or pattern counts as no colour
            return None
    return None


def _notes(slide: Any) -> str:
    if not slide.has_notes_slide or slide.notes_slide.notes_text_frame is None:
        return ""
    return slide.notes_slide.notes_text_frame.text.strip()


def _bullets(slide: Any) -> list[tuple[str, str, str]]:
    """(level, bullet char, text) of each non-empty paragraph of the slide (bullet colour ignored)."""
    out = []
    for p in slide._element.iter(f"{{{_A}}}p"):
        text = "".join(t.text or "" for t in p.iter(f"{{{_A}}}t"))
        if not text.strip():
            continue
        ppr = p.find(f"{{{_A}}}pPr")
        char = ppr.find(f"{{{_A}}}buChar") if ppr is not None else None
        level = ppr.get("lvl") if ppr is not None else None
        out.append((level or "0", char.get("char") if char is not None else "", text))
    return out


def _bool_differs(a: Any, b: Any) -> bool:
    return bool(a) != bool(b)  # None and False both mean "off"


def _underline_differs(a: Any, b: Any) -> bool:
    if a == b:
        return False
    if a is not None and b is not None:
        return True
    return a is True or b is True  # upstream: None vs False (or vs another style) passes


def _strike(run: Any) -> str:
    return run.font._rPr.get("strike", "noStrike") if run.font._rPr is not None else "noStrike"


def _runs(p1: Any, p2: Any) -> tuple[list[Any], list[Any]]:
    """The runs to compare: none when both paragraphs are blank (upstream keeps only runs with
    text there, so an empty run left by an editor equals no run)."""
    if not p1.text.strip() and not p2.text.strip():
        return [], []
    return list(p1.runs), list(p2.runs)


def _compare_runs(r1: Any, r2: Any, o: dict[str, Any], where: str) -> None:
    f1, f2 = r1.font, r2.font
    if o["examine_font_name"] and f1.name != f2.name:
        raise Differs(f"{where}: font {f1.name!r} vs {f2.name!r}")
    if o["examine_font_size"] and f1.size != f2.size:
        raise Differs(f"{where}: font size {f1.size} vs {f2.size}")
    if o["examine_font_bold"] and _bool_differs(f1.bold, f2.bold):
        raise Differs(f"{where}: bold {f1.bold} vs {f2.bold}")
    if o["examine_font_italic"] and _bool_differs(f1.italic, f2.italic):
        raise Differs(f"{where}: italic {f1.italic} vs {f2.italic}")
    c1, c2 = rgb_of(f1.color), rgb_of(f2.color)
    if o["examine_color_rgb"] and c1 is not None and c2 is not None and c1 != c2:
        raise Differs(f"{where}: colour {c1} vs {c2}")
    if o["examine_font_underline"] and _underline_differs(f1.underline, f2.underline):
        raise Differs(f"{where}: underline {f1.underline} vs {f2.underline}")
    if o["examine_strike_through"] and _strike(r1) != _strike(r2):
        raise Differs(f"{where}: strike {_strike(r1)} vs {_strike(r2)}")


def _compare_table(t1: Any, t2: Any, o: dict[str, Any], where: str) -> None:
    # Upstream checks a cell run's bold, italic and underline always, its colour under examine_color_rgb.
    cell_style = {**o, "examine_font_bold": True, "examine_font_italic": True, "examine_font_underline": True,
                  "examine_font_name": False, "examine_font_size": False, "examine_strike_through": False}
    if len(t1.rows) != len(t2.rows) or len(t1.columns) != len(t2.columns):
        raise Differs(f"{where}: table {len(t1.rows)}x{len(t1.columns)} vs {len(t2.rows)}x{len(t2.columns)}")
    for i in range(len(t1.rows)):
        for j in range(len(t1.columns)):
            p1, p2 = t1.cell(i, j).text_frame.paragraphs, t2.cell(i, j).text_frame.paragraphs
            cell = f"{where} cell ({i},{j})"
            if len(p1) != len(p2):
                raise Differs(f"{cell}: {len(p1)} vs {len(p2)} paragraphs")
            for a, b in zip(p1, p2, strict=True):
                runs1, runs2 = _runs(a, b)
                if o["examine_run_count"] and len(runs1) != len(runs2):
                    raise Differs(f"{cell}: {len(runs1)} vs {len(runs2)} runs")
                for r1, r2 in zip(runs1, runs2, strict=False):  # without the count: the common ones
                    _compare_runs(r1, r2, cell_style, cell)


def _align(p: Any) -> Any:
    return p.alignment if p.alignment is not None else PP_ALIGN.LEFT


def _compare_text(s1: Any, s2: Any, o: dict[str, Any], where: str) -> bool:
    """Text, paragraphs and runs of two text shapes; True when some run was compared."""
    if o["examine_text"] and s1.text.strip() != s2.text.strip():
        raise Differs(f"{where}: text {s1.text.strip()[:60]!r} vs {s2.text.strip()[:60]!r}")
    ps1, ps2 = s1.text_frame.paragraphs, s2.text_frame.paragraphs
    if len(ps1) != len(ps2):
        raise Differs(f"{where}: {len(ps1)} vs {len(ps2)} paragraphs")
    any_run = False
    for k, (p1, p2) in enumerate(zip(ps1, ps2, strict=True)):
        at = f"{where} paragraph {k + 1}"
        if o["examine_alignment"] and _align(p1) != _align(p2):
            raise Differs(f"{at}: alignment {_align(p1)} vs {_align(p2)}")
        if o["examine_text"] and p1.text != p2.text:
            raise Differs(f"{at}: text {p1.text[:60]!r} vs {p2.text[:60]!r}")
        if o["examine_indent"] and p1.level != p2.level:
            raise Differs(f"{at}: level {p1.level} vs {p2.level}")
        runs1, runs2 = _runs(p1, p2)
        if len(runs1) != len(runs2):  # always, as upstream: examine_run_count is for table cells only
            raise Differs(f"{at}: {len(runs1)} vs {len(runs2)} runs")
        for r1, r2 in zip(runs1, runs2, strict=True):
            _compare_runs(r1, r2, o, at)
            any_run = True
    return any_run


def _positions(s1: Any, s2: Any, slide_no: int, o: dict[str, Any], where: str) -> None:
    """The position and size options, in upstream's order (result = s1, expected = s2)."""
    tol = o["tol"]
    same = _same_box(s1, s2, tol)
    texty = _texty(s1) and _texty(s2)
    if o["examine_title_bottom_position"]:
        if texty and s1.text == s2.text:
            if s1.text == "Product Comparison" and (_v(s1.top) <= _v(s2.top) or _v(s1.top) < 3600000):
                raise Differs(f"{where}: title not moved to the bottom")
        elif not same:
            raise Differs(f"{where}: position/size differ")
    if o["examine_table_bottom_position"]:
        tables = s1.shape_type == MSO_SHAPE_TYPE.TABLE and s2.shape_type == MSO_SHAPE_TYPE.TABLE
        if slide_no == 3 and tables:
            if _v(s1.top) <= _v(s2.top) or _v(s1.top) < 3600000:
                raise Differs(f"{where}: table not moved to the bottom")
        elif not same:
            raise Differs(f"{where}: position/size differ")
    if o["examine_right_position"] and slide_no == 2 and not _texty(s1) and not _texty(s2):
        if _v(s1.left) <= _v(s2.left) or _v(s1.left) < 4320000:
            raise Differs(f"{where}: not moved to the right")
    pictures = s1.shape_type == MSO_SHAPE_TYPE.PICTURE and s2.shape_type == MSO_SHAPE_TYPE.PICTURE
    if o["examine_top_position"] and slide_no == 2 and pictures:
        if _v(s1.top) >= _v(s2.top) or _v(s1.top) > 1980000:
            raise Differs(f"{where}: picture not moved to the top")
    if o["examine_shape_for_shift_size"] and not same:
        if not (texty and s1.text == s2.text == "Elaborate on what you want to discuss."):
            raise Differs(f"{where}: position/size differ")
    if o["examine_shape"] and not same:
        raise Differs(f"{where}: position/size ({s1.left},{s1.top},{s1.width},{s1.height}) vs "
                      f"({s2.left},{s2.top},{s2.width},{s2.height})")
    if o["examine_image_size"]:
        if pictures:
            if not (_close(s1.width, s2.width, tol) and _close(s1.height, s2.height, tol)):
                raise Differs(f"{where}: picture size differs")
        elif not same:
            raise Differs(f"{where}: position/size differ")
    if o["examine_modify_height"]:
        freeforms = s1.shape_type == MSO_SHAPE_TYPE.FREEFORM and s2.shape_type == MSO_SHAPE_TYPE.FREEFORM
        if (not _texty(s1) and not _texty(s2)) or freeforms:
            if not _close(s1.height, s2.height, tol):
                raise Differs(f"{where}: height {s1.height} vs {s2.height}")
        elif not same:
            raise Differs(f"{where}: position/size differ")


def _compare_slide(sl1: Any, sl2: Any, n: int, o: dict[str, Any]) -> None:
    where = f"slide {n}"
    if o["examine_background_color"] and _background(sl1) != _background(sl2):
        raise Differs(f"{where}: background {_background(sl1)} vs {_background(sl2)}")
    if o["examine_note"] and _notes(sl1) != _notes(sl2):
        raise Differs(f"{where}: notes {_notes(sl1)[:60]!r} vs {_notes(sl2)[:60]!r}")
    if len(sl1.shapes) != len(sl2.shapes):
        raise Differs(f"{where}: {len(sl1.shapes)} vs {len(sl2.shapes)} shapes")
    any_run = False
    for k, (s1, s2) in enumerate(zip(sl1.shapes, sl2.shapes, strict=True)):
        at = f"{where} shape {k + 1}"
        _positions(s1, s2, n, o, at)
        if s1.shape_type == MSO_SHAPE_TYPE.TABLE and s2.shape_type == MSO_SHAPE_TYPE.TABLE:
            _compare_table(s1.table, s2.table, o, at)
        if _texty(s1) and _texty(s2):
            any_run = _compare_text(s1, s2, o, at) or any_run
    if o["examine_bullets"] and any_run and _bullets(sl1) != _bullets(sl2):
        raise Differs(f"{where}: bullets differ")
    # Text inside groups too: count always, text and alignment with examine_alignment.
    t1, t2 = _text_shapes(sl1.shapes), _text_shapes(sl2.shapes)
    if len(t1) != len(t2):
        raise Differs(f"{where}: {len(t1)} vs {len(t2)} text shapes (groups included)")
    if o["examine_alignment"]:
        for k, (s1, s2) in enumerate(zip(t1, t2, strict=True)):
            at = f"{where} text shape {k + 1}"
            if o["examine_text"] and s1.text.strip() != s2.text.strip():
                raise Differs(f"{at}: text {s1.text.strip()[:60]!r} vs {s2.text.strip()[:60]!r}")
            ps1, ps2 = s1.text_frame.paragraphs, s2.text_frame.paragraphs
            if len(ps1) != len(ps2):
                raise Differs(f"{at}: {len(ps1)} vs {len(ps2)} paragraphs")
            for p1, p2 in zip(ps1, ps2, strict=True):
                if _align(p1) != _align(p2):
                    raise Differs(f"{at}: alignment {_align(p1)} vs {_align(p2)}")


def pptx_difference(file1: str, file2: str, **options: Any) -> str | None:
    """The first difference compare_pptx_files finds between two presentations, or None."""
    o = _options(options)
    prs1 = load(Presentation, file1, "pptx presentation")
    prs2 = load(Presentation, file2, "pptx presentation")
    try:
        if o["examine_number_of_slides"] and len(prs1.slides) != len(prs2.slides):
            raise Differs(f"{len(prs1.slides)} vs {len(prs2.slides)} slides")
        for n, (sl1, sl2) in enumerate(zip(prs1.slides, prs2.slides, strict=False), start=1):
            _compare_slide(sl1, sl2, n, o)
    except Differs as d:
        return str(d)
    return None


@metric("compare_pptx_files", check=_check)
def compare_pptx_files(file1: str, file2: str, **options: Any) -> float:
    """1 when two presentations agree slide by slide (shapes, text, fonts, tables, notes,
    background; options examine_* switch checks, as upstream), else 0."""
    diff = pptx_difference(file1, file2, **options)
    if diff is not None:
        log.debug("compare_pptx_files: %s", diff)
    return float(diff is None)

