"""compare_table's rules over sheet objects openpyxl reads: chart, pivot_table, style.

chart and pivot_table follow upstream's utils.load_charts / load_pivot_tables: each object is
keyed by its data source (series references; pivot cache range and sheet) and the listed
properties are compared. openpyxl reads both from the file (charts only when not read-only).

style compares the listed cell styles of every cell, as upstream. Conditional formatting is
where we differ: upstream evaluates each `expression` rule's formula per cell with the
`formulas` package (a formula engine we do not carry) and compares the styles of the cells it
activates; we compare the rules themselves (ranges, type, operator, formula text and the listed
styles of their formats). Identical rules give identical results either way; an agent's
different but equivalent formula passes upstream and fails here.
"""

from __future__ import annotations

import itertools
from typing import Any

from openpyxl.cell.cell import MergedCell
from openpyxl.utils.cell import coordinate_to_tuple
from openpyxl.worksheet.worksheet import Worksheet

OBJECT_RULES = ("chart", "pivot_table", "style")
STYLE_PROPS = ("number_format", "font_name", "font_family", "font_color", "font_bold", "font_italic",
               "font_underline", "font_size", "fill_type", "bgcolor", "fgcolor", "hyperlink", "merge")
CHART_PROPS = ("title", "legend", "anchor", "width", "height", "type", "direction", "xtitle", "ytitle", "ztitle")
PIVOT_PROPS = ("name", "show_total", "show_empty_row", "show_empty_col", "show_headers", "location", "selection",
               "filter", "ordered", "col_fields", "row_fields", "data_fields", "data_fields_name")


def check_rule(r: dict[str, Any]) -> list[str]:
    """Unsupported props of a chart/pivot_table/style rule, for compare_table's check hook."""
    kind = r.get("type")
    allowed, key = {"chart": (CHART_PROPS, "chart_props"), "pivot_table": (PIVOT_PROPS, "pivot_props"),
                    "style": (STYLE_PROPS, "props")}[kind]
    return [f"{kind}.{p}" for p in r.get(key) or [] if p not in allowed]


def _ref(data: Any) -> str:
    for kind in ("numRef", "strRef"):
        ref = getattr(data, kind, None)
        if ref is not None and getattr(ref, "f", None) is not None:
            return ref.f
    return ""


def _title(title: Any) -> Any:
    try:
        return title.tx.rich.p[0].r[0].t
    except (AttributeError, IndexError, TypeError):
        return None


def charts(ws: Worksheet | None, props: list[str]) -> dict[str, dict[str, Any]]:
    """{series sources: {prop: value}} for each chart of the sheet."""
    out: dict[str, dict[str, Any]] = {}
    for ch in getattr(ws, "_charts", []) if ws is not None else []:
        key = ";".join(f"{_ref(s.val)},{_ref(s.cat)}" for s in ch.series)
        info: dict[str, Any] = {}
        for p in props:
            if p in ("title", "xtitle", "ytitle", "ztitle"):
                owner = ch if p == "title" else getattr(ch, {"xtitle": "x_axis", "ytitle": "y_axis", "ztitle": "z_axis"}[p], None)
                info[p] = _title(getattr(owner, "title", None))
            elif p == "legend":
                info[p] = ch.legend.position if ch.legend is not None else None
            elif p == "anchor":  # upstream's list (to.row twice) kept so results agree
                a = ch.anchor
                info[p] = [getattr(a, "editAs", None), a._from.col, a.to.row, a.to.col, a.to.row] if hasattr(a, "to") else None
            elif p in ("width", "height"):
                info[p] = getattr(ch, p)
            elif p == "type":
                info[p] = ch.tagname
            elif p == "direction":
                info[p] = getattr(ch, "barDir", None)
        out[key] = info
    return out


def pivots(ws: Worksheet | None, props: list[str]) -> dict[str, dict[str, Any]]:
    """{cache source: {prop: value}} for each pivot table of the sheet (upstream's field indices,
    shifted past empty leading/trailing pivot fields)."""
    out: dict[str, dict[str, Any]] = {}
    wanted = set(props)
    for pvt in getattr(ws, "_pivots", []) if ws is not None else []:
        raw = [[(item.h, item.x) for item in (f.items or []) if item.x is not None] for f in pvt.pivotFields]
        trimmed = list(itertools.dropwhile(lambda r: not r, raw))
        left = len(raw) - len(trimmed)
        selection = list(itertools.dropwhile(lambda r: not r, reversed(trimmed)))[::-1]
        right = len(trimmed) - len(selection)
        source = pvt.cache.cacheSource
        ws_source = source.worksheetSource
        start, end = (ws_source.ref or ":").split(":")
        r1, c1 = coordinate_to_tuple(start)
        r2, c2 = coordinate_to_tuple(end)
        key = f"{source.type};{(r1, c1 + left)}:{(r2, c2 - right)};{ws_source.sheet}"
        info: dict[str, Any] = {}
        simple = {"name": "name", "show_total": "visualTotals", "show_empty_row": "showEmptyRow",
                  "show_empty_col": "showEmptyCol", "show_headers": "showHeaders", "location": "location"}
        for p, attr in simple.items():
            if p in wanted:
                info[p] = getattr(pvt, attr)
        if wanted & {"filter", "selection"}:
            info["selection"] = selection if "ordered" in wanted else [set(r) for r in selection]
        if "filter" in wanted:
            info["filter_fields"] = {f.fld for f in pvt.pageFields}
        if "col_fields" in wanted:
            info["col_fields"] = [f.x - left for f in pvt.colFields]
        if "row_fields" in wanted:
            info["row_fields"] = [f.x - left for f in pvt.rowFields]
        if "data_fields" in wanted:
            named = "data_fields_name" in wanted
            info["data_fields"] = [f"{f.fld - left:d};{f.name if named else ''};{f.subtotal};{f.showDataAs}"
                                   for f in pvt.dataFields]
        out[key] = info
    return out


def read_cell_style(name: str, cell: Any, dxf: Any = None) -> Any:
    """Upstream's _read_cell_style: one listed style of a cell, or of a conditional format's
    differential style `dxf` (then `cell` may be None: the rule, not a cell, is compared).

    A cell's fill colour is its pattern's fgColor whether the rule says `bgcolor` or `fgcolor`
    (bgColor of a solid fill is the same whatever colour was picked); a differential style's is
    its bgColor, as LibreOffice and Excel write conditional fills."""
    src = dxf if dxf is not None else cell
    has_value = cell is None or cell.value is not None
    match name:
        case "merge":
            return isinstance(cell, MergedCell)
        case "number_format":
            if dxf is not None:
                return dxf.numFmt.formatCode if dxf.numFmt is not None else None
            return cell.number_format if has_value and cell.data_type == "n" else None
        case "font_name" | "font_family" | "font_bold" | "font_italic" | "font_underline" | "font_size":
            font = src.font
            attr = {"font_name": "name", "font_family": "family", "font_bold": "bold", "font_italic": "italic",
                    "font_underline": "underline", "font_size": "size"}[name]
            return getattr(font, attr, None) if has_value and font is not None else None
        case "font_color":
            font = src.font
            return font.color.rgb if has_value and font is not None and font.color is not None else None
        case "fill_type":
            return getattr(src.fill, "tagname", None)
        case "bgcolor" | "fgcolor":
            color = getattr(src.fill, "bgColor" if dxf is not None else "fgColor", None)
            return getattr(color, "rgb", None)
        case "hyperlink":
            if dxf is not None:
                return None
            return cell.hyperlink or ("" if has_value else None)  # upstream's precedence
    raise ValueError(f"unsupported cell style {name!r}")


def styles(ws: Worksheet | None, props: list[str]) -> tuple[dict[str, list[Any]], list[Any]]:
    """({cell: [listed styles]}, conditional-format rules with their formats' listed styles)."""
    if ws is None:
        return {}, []
    cells = {c.coordinate: [read_cell_style(p, c) for p in props] for col in ws.iter_cols() for c in col}
    rules = []
    for cf in ws.conditional_formatting:
        for rule in cf.rules:
            fmt = [read_cell_style(p, None, rule.dxf) for p in props] if rule.dxf is not None else None
            rules.append((str(cf.sqref), rule.type, rule.operator, tuple(rule.formula or ()), fmt))
    return cells, sorted(rules, key=repr)


def object_rule_ok(sheet: Any, r: dict[str, Any]) -> bool:
    """One chart/pivot_table/style rule; `sheet(idx)` opens a sheet (formulas view)."""
    w1, w2 = sheet(r["sheet_idx0"]), sheet(r["sheet_idx1"])
    if r["type"] == "chart":
        props = r.get("chart_props", [])
        return charts(w1, props) == charts(w2, props)
    if r["type"] == "pivot_table":
        props = r.get("pivot_props", [])
        return pivots(w1, props) == pivots(w2, props)
    props = r.get("props", [])
    return styles(w1, props) == styles(w2, props)
