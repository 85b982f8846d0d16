"""Text, CSV, JSON and SQLite metrics on real files: each with a passing and a failing case."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from scoring.metrics.text import (
    check_csv,
    check_json,
    check_json_keybindings,
    check_json_settings,
    check_line_number,
    check_list,
    compare_csv,
    compare_python_pure_text,
    compare_text_file,
    diff_text_file,
    file_contains,
    run_sqlite3,
)


def w(tmp_path: Path, name: str, text: str | bytes) -> str:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(p)


def test_compare_text_file(tmp_path: Path) -> None:
    gold = w(tmp_path, "g.txt", "Hello world\nsecond line\n")
    assert compare_text_file(w(tmp_path, "a.txt", "Hello world\r\nsecond line\r\n"), gold) == 1.0  # universal newlines
    assert compare_text_file(w(tmp_path, "b.txt", "Hello  world\tsecond line"), gold) == 0.0
    assert compare_text_file(w(tmp_path, "c.txt", "hello  world\tSECOND line"), gold, ignore_blanks=True, ignore_case=True) == 1.0


def test_diff_text_file_is_a_line_ratio(tmp_path: Path) -> None:
    gold = w(tmp_path, "g.txt", "a\nb\nc\nd\n")
    assert diff_text_file(w(tmp_path, "s.txt", "a\nb\nc\nd\n"), gold) == 1.0
    assert diff_text_file(w(tmp_path, "h.txt", "a\nb\nx\ny\n"), gold) == pytest.approx(0.5)


def test_file_contains_and_check_list(tmp_path: Path) -> None:
    path = w(tmp_path, "apt.out", "Reading package lists...\nvim is already the newest version\n")
    assert file_contains(path, {"expected": ["package lists", "newest"]}) == 1.0
    assert file_contains(path, {"expected": ["package lists", "E: Unable"]}) == 0.0
    assert check_list(path, {"expect": [r"^vim is", r"lists\.\.\."], "unexpect": [r"^E:"]}) == 1.0
    assert check_list(path, {"expect": [r"^emacs"]}) == 0.0
    assert check_list(path, {"expect": [r"vim"], "unexpect": [r"Reading"]}) == 0.0


def test_check_csv_records(tmp_path: Path) -> None:
    path = w(tmp_path, "acc.csv", "name,email\nAnn,ann@example.org\nBob,bob@example.org\n")
    assert check_csv(path, {"expect": [{"name": "Ann"}, {"email": "bob@example.org"}], "unexpect": [{"name": "Eve"}]}) == 1.0
    assert check_csv(path, {"expect": [{"name": "Ann", "email": "bob@example.org"}]}) == 0.0
    assert check_csv(path, {"expect": [], "unexpect": [{"name": "Bob"}]}) == 0.0


def test_compare_csv_with_options_and_alternatives(tmp_path: Path) -> None:
    gold = w(tmp_path, "g.csv", "id,name\n1,Ann\n")
    assert compare_csv(w(tmp_path, "a.csv", b"\xef\xbb\xbfid,name\r\n1,Ann\r\n"), gold) == 1.0  # BOM + CRLF
    loose = w(tmp_path, "b.csv", "ID,Name \n1,ann\n")
    assert compare_csv(loose, gold) == 0.0
    assert compare_csv(loose, gold, strict=False, ignore_case=True) == 1.0
    other = w(tmp_path, "o.csv", "id,name\n1,Bob\n")
    assert compare_csv(other, [gold, other]) == 1.0
    accented = w(tmp_path, "u.csv", "id,name\n1,Ren\xe9\n")
    assert compare_csv(w(tmp_path, "latin.csv", "id,name\n1,Ren\xe9\n".encode("latin-1")), accented) == 1.0


def test_check_line_number(tmp_path: Path) -> None:
    path = w(tmp_path, "log.txt", "12:00:01 start\nno time\n23:59:60 leap\n24:00:00 invalid\n")
    assert check_line_number(path, {"expected": 2}) == 1.0
    assert check_line_number(path, {"expected": "3"}) == 0.0


def test_compare_python_pure_text(tmp_path: Path) -> None:
    gold = w(tmp_path, "g.py", "def f():\n    return 1\n")
    assert compare_python_pure_text(w(tmp_path, "a.py", "#!/usr/bin/env python3\n\ndef f():\n\treturn 1   \n\n"), gold) == 1.0
    assert compare_python_pure_text(w(tmp_path, "b.py", "```python\ndef f():\n    return 1\n```\n"), gold) == 0.0


def test_check_json_rules(tmp_path: Path) -> None:
    path = w(tmp_path, "settings.json", json.dumps({"editor": {"fontSize": 14, "theme": "Dark+"}, "files": ["a", "b"]}))
    rules = {"expect": [{"key": ["editor", "fontSize"], "method": "eq", "ref": 14},
                        {"key": ["editor", "theme"], "method": "re", "ref": "^Dark"}],
             "unexpect": [{"key": ["editor", "wordWrap"], "method": "eq", "ref": "on"}]}
    assert check_json(path, rules) == 1.0
    assert check_json(path, {"expect": [{"key": ["editor", "fontSize"], "method": "gt", "ref": 14}]}) == 0.0
    assert check_json(path, {"expect": [{"key": ["missing"], "method": "eq", "ref": 1}]}) == 0.0
    yml = w(tmp_path, "c.yaml", "server:\n  port: 8080\n")
    assert check_json(yml, {"expect": [{"key": ["server", "port"], "method": "eq", "ref": 8080}]}, is_yaml=True) == 1.0
    assert check_json(w(tmp_path, "bad.json", "{oops"), rules) == 0.0


def test_check_json_settings_and_keybindings(tmp_path: Path) -> None:
    settings = w(tmp_path, "s.json", json.dumps({"editor.wordWrap": "on", "x": 1}))
    assert check_json_settings(settings, {"expected": {"editor.wordWrap": "on"}}) == 1.0
    assert check_json_settings(settings, {"expected": {"editor.wordWrap": "off"}}) == 0.0
    kb = {"key": "ctrl+j", "command": "workbench.action.togglePanel"}
    keys = w(tmp_path, "k.json", "// Place your key bindings in this file\n" + json.dumps([kb]))
    assert check_json_keybindings(keys, {"expected": kb}) == 1.0
    assert check_json_keybindings(keys, {"expected": dict(kb, key="ctrl+k")}) == 0.0


def test_run_sqlite3_reads_a_copy_read_only(tmp_path: Path) -> None:
    db = tmp_path / "places.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("create table t (url text)")
    conn.execute("insert into t values ('https://example.org')")
    conn.commit()
    conn.close()
    assert run_sqlite3(str(db), {"sql": "select count(*) from t where url like '%example.org%'"}) == 1.0
    assert run_sqlite3(str(db), {"sql": "select count(*) from t where url like '%nope%'"}) == 0.0
    with pytest.raises(sqlite3.OperationalError):
        run_sqlite3(str(db), {"sql": "delete from t"})


def test_check_thunderbird_prefs(tmp_path: Path) -> None:
    from scoring.metrics.thunderbird import check_thunderbird_prefs

    prefs = w(tmp_path, "prefs.js", '// Mozilla User Preferences\nuser_pref("mail.spellcheck.inline", false);\n'
                                    'user_pref("mailnews.default_sort_order", 2);\n')
    rule = {"expect": {"mail.spellcheck.inline": {"method": "eq", "ref": False}},
            "unexpect": {"mailnews.default_sort_order": {"method": "eq", "ref": 1}}}
    assert check_thunderbird_prefs(prefs, rule) == 1.0
    rule["unexpect"]["mailnews.default_sort_order"]["ref"] = 2
    assert check_thunderbird_prefs(prefs, rule) == 0.0
    assert check_thunderbird_prefs(prefs, {"expect": {"absent.key": {"method": "eq", "ref": 1}}}) == 0.0


def test_check_config_status_for_gimp_config(tmp_path: Path) -> None:
    from scoring.metrics.apps import check_config_status

    cfg = w(tmp_path, "sessionrc", "# GIMP sessionrc\n\n(hide-docks yes)\n(session-info \"toplevel\" no)\n")
    assert check_config_status(cfg, {"key": "hide-docks", "value": "yes"}) == 1.0
    assert check_config_status(cfg, {"key": "hide-docks", "value": "no"}) == 0.0
    assert check_config_status(cfg, {"key": ["session-info", '"toplevel"'], "value": "no"}) == 1.0
