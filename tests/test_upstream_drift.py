"""scripts/upstream_drift.py on a made-up checkout (the script itself is never run against upstream in CI)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "upstream_drift.py"


def _drift():
    spec = importlib.util.spec_from_file_location("upstream_drift", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _checkout(root: Path, table: str) -> Path:
    for package in ("metrics", "getters"):
        (root / "desktop_env/evaluators" / package).mkdir(parents=True, exist_ok=True)
    m = root / "desktop_env/evaluators/metrics"
    (m / "__init__.py").write_text("from .table import compare_table, compare_csv\nfrom .docs import compare_docx_files\n")
    (m / "table.py").write_text(table)
    (m / "docs.py").write_text("def compare_docx_files(a, b, **options):\n    return 1.0\n")
    (root / "desktop_env/evaluators/getters/__init__.py").write_text("from .file import get_vm_file\n")
    (root / "desktop_env/evaluators/getters/file.py").write_text("def get_vm_file(env, config):\n    return None\n")
    return root


def test_drift_lists_signature_and_code_changes_and_new_names(tmp_path: Path, capsys) -> None:
    drift = _drift()
    old = _checkout(tmp_path / "old", "def compare_table(result, expected=None, **options):\n    return 0.0\n"
                                      "def compare_csv(a, b):\n    # a comment\n    return 1\n")
    new = _checkout(tmp_path / "new", "def compare_table(result, expected=None, **options):\n    return 1.0\n"
                                      "def compare_csv(a, b, strict=True):\n    return 1\n")
    ref = tmp_path / "ref.json"
    assert drift.main([str(old), "--write", "--reference", str(ref)]) == 0
    assert json.loads(ref.read_text())["metrics"]["compare_csv"]["signature"] == "(a, b)"
    assert drift.main([str(old), "--reference", str(ref)]) == 0
    assert "no drift" in capsys.readouterr().out
    assert drift.main([str(new), "--reference", str(ref)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == ["metrics: signature compare_csv(a, b)  ->  compare_csv(a, b, strict=True)",
                   "metrics: code    compare_table  (table.py)"]
