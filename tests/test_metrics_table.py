"""compare_table on real workbooks: LibreOffice-saved fixtures (cached formula values, CSV export)
and openpyxl-built ones for the structural rules. Each rule has a passing and a failing case."""

from __future__ import annotations

import shutil
from pathlib import Path

import openpyxl
import pytest
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation

from scoring.metrics.table import _check_options, compare_table
from scoring.metrics.table_read import last_row_as_strings

FIX = Path(__file__).parent / "fixtures" / "scoring"


def lo(tmp_path: Path, name: str, as_name: str | None = None) -> str:
    """Copy a LibreOffice fixture (and its CSV exports) into tmp_path, optionally renamed."""
    stem = as_name or name
    for src in FIX.glob(f"{name}*"):
        shutil.copy(src, tmp_path / src.name.replace(name, stem, 1))
    return str(tmp_path / f"{stem}.xlsx")


def book(path: Path, rows: list[list], *, title: str = "Sheet1", more: dict[str, list[list]] | None = None,
         edit=None) -> str:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for r in rows:
        ws.append(r)
    for name, extra in (more or {}).items():
        s = wb.create_sheet(name)
        for r in extra:
            s.append(r)
    if edit:
        edit(ws)
    wb.save(path)
    return str(path)


def test_sheet_data_compares_libreoffice_cached_formula_results_with_plain_values(tmp_path: Path) -> None:
    rules = {"rules": [{"type": "sheet_data", "sheet_idx0": 0, "sheet_idx1": "EI0"}]}
    gold = lo(tmp_path, "lo_values")
    assert compare_table(lo(tmp_path, "lo_formulas"), gold, **rules) == 1.0
    assert compare_table(lo(tmp_path, "lo_wrong"), gold, **rules) == 0.0


def test_sheet_data_rounds_to_precision_and_keeps_blank_rows(tmp_path: Path) -> None:
    gold = book(tmp_path / "g.xlsx", [["x", "y"], [1, 0.123456], [2, 3]])
    close = book(tmp_path / "c.xlsx", [["x", "y"], [1.0, 0.12346], [2, 3]])
    gap = book(tmp_path / "b.xlsx", [["x", "y"], [1.0, 0.12346], [], [2, 3]])
    off = book(tmp_path / "o.xlsx", [["x", "y"], [1, 0.1239], [2, 3]])
    rules = [{"type": "sheet_data", "sheet_idx0": "RI0", "sheet_idx1": "EI0"}]
    assert compare_table(close, gold, rules=rules) == 1.0
    assert compare_table(gap, gold, rules=rules) == 0.0  # pandas keeps a blank row between data
    assert compare_table(off, gold, rules=rules) == 0.0
    assert compare_table(off, gold, rules=[dict(rules[0], precision=2)]) == 1.0


def test_sheet_data_by_sheet_name_and_missing_sheet_fails(tmp_path: Path) -> None:
    gold = book(tmp_path / "g.xlsx", [["a"]], more={"Sheet2": [["Total Revenue"], [10]]})
    good = book(tmp_path / "r.xlsx", [["a"]], more={"Sheet2": [["Total Revenue"], [10]]})
    none = book(tmp_path / "n.xlsx", [["a"]])
    rules = [{"type": "sheet_data", "sheet_idx0": "RNSheet2", "sheet_idx1": "ENSheet2"}]
    assert compare_table(good, gold, rules=rules) == 1.0
    assert compare_table(none, gold, rules=rules) == 0.0


def test_sheet_name_rule(tmp_path: Path) -> None:
    gold = book(tmp_path / "g.xlsx", [[1]], more={"Data": [[1]]})
    assert compare_table(book(tmp_path / "a.xlsx", [[1]], more={"Data": [[1]]}), gold, rules=[{"type": "sheet_name"}]) == 1.0
    assert compare_table(book(tmp_path / "b.xlsx", [[1]], more={"data": [[1]]}), gold, rules=[{"type": "sheet_name"}]) == 0.0


def test_sheet_print_reads_the_csv_export_next_to_each_workbook(tmp_path: Path) -> None:
    rules = [{"type": "sheet_print", "sheet_idx0": "RNSheet1", "sheet_idx1": "ENSheet1"}]
    gold = lo(tmp_path, "lo_values", "gold")
    assert compare_table(lo(tmp_path, "lo_formulas", "mine"), gold, rules=rules) == 1.0
    assert compare_table(lo(tmp_path, "lo_wrong", "bad"), gold, rules=rules) == 0.0
    (tmp_path / "mine-Sheet1.csv").unlink()
    assert compare_table(str(tmp_path / "mine.xlsx"), gold, rules=rules) == 0.0


def test_check_cell_value_and_styles_on_a_libreoffice_file(tmp_path: Path) -> None:
    ok = [{"type": "check_cell", "sheet_idx": 0, "coordinate": "F2", "props": {"value": {"method": "approx:0.01", "ref": 435}}},
          {"type": "check_cell", "sheet_idx": 0, "coordinate": "G4", "props": {"merge": {"method": "eq", "ref": True}}},
          {"type": "check_cell", "sheet_idx": 0, "coordinate": "F4", "props": {"font_bold": {"method": "eq", "ref": True},
                                                                               "value": {"method": "eq", "ref": "merged"}}}]
    assert compare_table(lo(tmp_path, "lo_formulas"), **{"rules": ok}) == 1.0
    assert compare_table(lo(tmp_path, "lo_wrong"), rules=ok) == 0.0  # 456.75, not 435
    not_merged = [{"type": "check_cell", "sheet_idx": 0, "coordinate": "F3", "props": {"merge": {"method": "eq", "ref": True}}}]
    assert compare_table(lo(tmp_path, "lo_formulas"), rules=not_merged) == 0.0


def test_check_cell_colors_regex_and_ranges(tmp_path: Path) -> None:
    def style(ws) -> None:
        ws["A1"].font = Font(color="FFFF0000")
        ws["A1"].fill = PatternFill("solid", fgColor="FF00FF00")

    path = book(tmp_path / "s.xlsx", [["Total: 42", 7]], edit=style)
    props = {"font_color": {"method": "eq", "ref": "FFFF0000"}, "bgcolor": {"method": "eq", "ref": "FF00FF00"},
             "value": {"method": "re.I", "ref": r"^total: \d+$"}}
    assert compare_table(path, rules=[{"type": "check_cell", "sheet_idx": 0, "coordinate": "A1", "props": props}]) == 1.0
    assert compare_table(path, rules=[{"type": "check_cell", "sheet_idx": 0, "coordinate": "B1",
                                       "props": {"value": {"method": "range.et", "ref": [7, 8]}}}]) == 1.0
    assert compare_table(path, rules=[{"type": "check_cell", "sheet_idx": 0, "coordinate": "B1",
                                       "props": {"value": {"method": "range.te", "ref": [7, 8]}}}]) == 0.0
    props["font_color"]["ref"] = "FF0000FF"
    assert compare_table(path, rules=[{"type": "check_cell", "sheet_idx": 0, "coordinate": "A1", "props": props}]) == 0.0


def test_sheet_fuzzy_normalizes_and_matches_ranges(tmp_path: Path) -> None:
    gold = book(tmp_path / "g.xlsx", [["Name", "Street", "Phone"], ["Ann", "12 Main Road", "+1 (555) 123-4567"]])
    mine = book(tmp_path / "m.xlsx", [["Name", "Street", "Phone"], ["ann", "12 Main Rd", "15551234567"]])
    rules = [{"type": "sheet_fuzzy", "sheet_idx0": "RNSheet1", "sheet_idx1": "ENSheet1", "rules": [
        {"range": ["A1:A2"], "type": "exact_match", "ignore_case": True},
        {"range": ["B2"], "type": "fuzzy_match", "threshold": 85, "normalization": [["Rd", "Road"]]},
        {"range": ["C2"], "type": "includes", "trim_leadings": "+ ", "ignore_chars": " ()-"}]}]
    assert compare_table(mine, gold, rules=rules) == 1.0
    rules[0]["rules"][0]["ignore_case"] = False
    assert compare_table(mine, gold, rules=rules) == 0.0


def test_freeze_zoom_data_validation_and_row_props(tmp_path: Path) -> None:
    def frozen(ws) -> None:
        ws.freeze_panes = "B2"
        ws.sheet_view.zoomScale = 150
        ws.row_dimensions[3].hidden = True
        dv = DataValidation(type="list", formula1='"Pass,Fail,Held"')
        dv.add("D2:D29")
        ws.add_data_validation(dv)

    gold = book(tmp_path / "g.xlsx", [[1, 2], [3, 4], [5, 6]], edit=frozen)
    same = book(tmp_path / "s.xlsx", [[1, 2], [3, 4], [5, 6]], edit=frozen)
    plain = book(tmp_path / "p.xlsx", [[1, 2], [3, 4], [5, 6]])
    freeze = [{"type": "freeze", "sheet_idx0": 0, "sheet_idx1": "EI0"}]
    rows = [{"type": "row_props", "sheet_idx0": 0, "sheet_idx1": "EI0", "props": ["hidden"]}]
    zoom = [{"type": "zoom", "sheet_idx": 0, "method": "gt", "ref": 120}]
    dv = [{"type": "data_validation", "sheet_idx": 0, "dv_props": [{
        "ranges": {"method": "spreadsheet_range", "ref": ["D2:D29", "D1:D1048576"]},
        "type": {"method": "eq", "ref": "list"},
        "formula1": {"method": "str_set_eq", "ref": ["Pass", "Fail", "Held"]}}]}]
    for rules in (freeze, rows, zoom, dv):
        assert compare_table(same, gold, rules=rules) == 1.0, rules
        assert compare_table(plain, gold, rules=rules) == 0.0, rules


def test_unreadable_or_missing_result_scores_zero(tmp_path: Path) -> None:
    gold = book(tmp_path / "g.xlsx", [[1]])
    (tmp_path / "bad.xlsx").write_bytes(b"garbage")
    rules = [{"type": "sheet_data", "sheet_idx0": 0, "sheet_idx1": "EI0"}]
    assert compare_table(str(tmp_path / "bad.xlsx"), gold, rules=rules) == 0.0
    assert compare_table(str(tmp_path / "none.xlsx"), gold, rules=rules) == 0.0


def test_rules_this_build_cannot_run_are_reported_not_guessed(tmp_path: Path) -> None:
    assert _check_options({"rules": [{"type": "sparkline"}, {"type": "sheet_data"}, {"type": "filter"}]}) == ["sparkline", "filter"]
    assert _check_options({"rules": [{"type": "chart", "chart_props": ["title", "colour"]}]}) == ["chart.colour"]
    assert _check_options({"rules": [{"type": "check_cell", "props": {"value": {"method": "approx:x"}}}]}) == ["method approx:x"]
    path = book(tmp_path / "a.xlsx", [[1]])
    with pytest.raises(ValueError, match="sparkline"):
        compare_table(path, path, rules=[{"type": "sparkline", "sheet_idx0": 0, "sheet_idx1": "EI0"}])


def test_content_from_vm_file_last_row_like_pandas(tmp_path: Path) -> None:
    from datetime import datetime

    path = book(tmp_path / "a.xlsx", [["Name", "Count", "When", "Note"], ["a", 1, datetime(2024, 1, 2), None],
                                      ["b", 2.5, datetime(2024, 3, 4, 5, 6, 7), "x"]])
    assert last_row_as_strings(path) == ["b", "2.5", "2024-03-04 05:06:07", "x"]
    path = book(tmp_path / "b.xlsx", [["Name", "Count", "Int"], ["a", 3.5, 1], ["c", 4, 2]])
    assert last_row_as_strings(path) == ["c", "4.0", "2"]  # pandas: a float64 column prints 4.0
    path = book(tmp_path / "c.xlsx", [["Name", "Count"], ["a", 3], ["c", None]])
    assert last_row_as_strings(path) == ["c", "nan"]
