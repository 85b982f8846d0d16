"""What changed in upstream OSWorld's metrics and getters since the version we follow.

    python scripts/upstream_drift.py PATH/TO/OSWorld            # report against the reference
    python scripts/upstream_drift.py PATH/TO/OSWorld --write    # make that checkout the reference

Reads (never imports) `desktop_env/evaluators/{metrics,getters}/` of a checkout: the names each
package's `__init__.py` exports, each one's signature, and a digest of its code (the AST of the
function, so formatting and comments do not count, a changed default or branch does). The
reference, `scripts/upstream_reference.json`, is the checkout our metrics were last compared
with. The report lists names added, removed, whose signature changed and whose code changed, so
the next sync is a reviewed list. Not run in CI (it needs an upstream checkout).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import sys
from pathlib import Path

REFERENCE = Path(__file__).with_name("upstream_reference.json")
PACKAGES = ("metrics", "getters")


def _exports(init: Path) -> dict[str, str]:
    """{exported name: module file stem} from `from .module import a, b` lines of __init__.py."""
    out: dict[str, str] = {}
    for node in ast.walk(ast.parse(init.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            for alias in node.names:
                out[alias.asname or alias.name] = node.module.split(".")[0]
    return out


def _signature(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    args = ast.unparse(fn.args)
    ret = f" -> {ast.unparse(fn.returns)}" if fn.returns is not None else ""
    return f"({args}){ret}"


def scan(checkout: Path) -> dict[str, dict[str, dict[str, str]]]:
    """{package: {name: {"module", "signature", "digest"}}} of one upstream checkout."""
    base = checkout / "desktop_env" / "evaluators"
    if not base.is_dir():
        raise SystemExit(f"{checkout}: no desktop_env/evaluators/ (expected an OSWorld checkout)")
    result: dict[str, dict[str, dict[str, str]]] = {}
    for package in PACKAGES:
        folder = base / package
        defs: dict[tuple[str, str], ast.FunctionDef | ast.AsyncFunctionDef] = {}
        for path in sorted(folder.glob("*.py")):
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except SyntaxError as e:
                raise SystemExit(f"{path}: cannot parse ({e.msg}, line {e.lineno})") from e
            for node in tree.body:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    defs[(path.stem, node.name)] = node
        entries: dict[str, dict[str, str]] = {}
        for name, module in sorted(_exports(folder / "__init__.py").items()):
            fn = defs.get((module, name))
            if fn is None:  # a class, a constant or a re-export: listed, not compared
                entries[name] = {"module": module, "signature": "?", "digest": "?"}
                continue
            digest = hashlib.sha256(ast.dump(fn).encode()).hexdigest()[:16]
            entries[name] = {"module": module, "signature": _signature(fn), "digest": digest}
        result[package] = entries
    return result


def diff(old: dict[str, dict[str, dict[str, str]]], new: dict[str, dict[str, dict[str, str]]]) -> list[str]:
    lines: list[str] = []
    for package in PACKAGES:
        a, b = old.get(package, {}), new.get(package, {})
        for name in sorted(set(a) | set(b)):
            if name not in a:
                lines.append(f"{package}: added   {name}{b[name]['signature']}  ({b[name]['module']}.py)")
            elif name not in b:
                lines.append(f"{package}: removed {name}{a[name]['signature']}")
            elif a[name]["signature"] != b[name]["signature"]:
                lines.append(f"{package}: signature {name}{a[name]['signature']}  ->  {name}{b[name]['signature']}")
            elif a[name]["digest"] != b[name]["digest"]:
                lines.append(f"{package}: code    {name}  ({b[name]['module']}.py)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="an upstream OSWorld checkout")
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--write", action="store_true", help="record this checkout as the reference")
    parser.add_argument("--source", default="", help="with --write: where the checkout came from (repo@commit)")
    args = parser.parse_args(argv)
    current = scan(args.checkout)
    if args.write:
        record = {"source": args.source or str(args.checkout), **current}
        args.reference.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {args.reference}: " + ", ".join(f"{len(v)} {k}" for k, v in current.items()))
        return 0
    try:
        reference = json.loads(args.reference.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"{args.reference}: cannot read the reference ({e})") from e
    changes = diff(reference, current)
    print("\n".join(changes) if changes else "no drift: every metric and getter matches the reference")
    return 1 if changes else 0


if __name__ == "__main__":
    sys.exit(main())
