"""The package layers of docs/design/layers.md hold at import time, not only in lint-imports."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE = ("harness.base",)  # dependency-free base modules any layer may use
# package -> the project packages it may pull in (its own and those below it)
BELOW = {
    "vm": ("vm",),
    "benchmarks": ("benchmarks", "vm"),
    "scoring": ("scoring", "benchmarks", "vm"),
    "search": ("search", "vm"),
    "results": ("results", "search", "scoring", "benchmarks", "vm"),
}
PROJECT = ("harness", "vm", "search", "scoring", "benchmarks", "results")

_PROBE = """
import importlib, pkgutil, sys
pkg = importlib.import_module(sys.argv[1])
for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
    if ".suites." in info.name or info.name.endswith(".guest.__main__"):
        continue  # task assets and the guest's entry point are not library code
    importlib.import_module(info.name)
print("\\n".join(sorted(sys.modules)))
"""


@pytest.mark.parametrize("package", sorted(BELOW))
def test_importing_a_package_pulls_in_no_higher_layer(package: str) -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE, package], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = [m for m in out.stdout.split() if m.split(".")[0] in PROJECT]
    allowed = (*BELOW[package], *BASE)
    higher = [m for m in loaded if m != "harness" and not any(m == a or m.startswith(a + ".") for a in allowed)]
    assert higher == [], f"importing {package} pulled in {higher}"
    assert any(m.startswith(package + ".") for m in loaded)  # the probe really imported the package's modules


def test_the_layer_contracts_place_every_harness_module_in_both_contracts() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    packages, internal = contracts[0], contracts[1]
    top = {m.strip() for m in packages["layers"][0].replace("|", ":").split(":")}
    inner = {f"harness.{m.strip()}" for layer in internal["layers"] for m in layer.replace("|", ":").split(":")}
    assert internal.get("exhaustive") is True
    assert top | {packages["layers"][-1]} == inner
    on_disk = {f"harness.{p.stem if p.is_file() else p.name}" for p in (ROOT / "harness").iterdir()
               if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert on_disk == inner
