"""Jinja2 rendering of the report pages. Autoescape is on for every template: run files hold
model output and task text, both untrusted, and nothing of theirs is marked safe."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import orjson

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_FILES = ("report.css", "report.js")


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def f_num(value: Any, digits: int = 2) -> str:
    v = _finite(value)
    return "–" if v is None else f"{v:,.{digits}f}"


def f_big(value: Any) -> str:
    v = _finite(value)
    if v is None:
        return "–"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.2f}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:.1f}k"
    return f"{v:,.0f}"


def f_pct(value: Any) -> str:
    v = _finite(value)
    return "–" if v is None else f"{100 * v:.1f}%"


def f_usd(value: Any) -> str:
    v = _finite(value)
    return "–" if v is None else f"${v:,.4f}" if v < 1 else f"${v:,.2f}"  # cents of a cent below $1


def f_dur(value: Any) -> str:
    v = _finite(value)
    if v is None:
        return "–"
    if v < 60:
        return f"{v:.1f} s"
    minutes, seconds = divmod(round(v), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {seconds:02d}s"


def f_tok(value: Any) -> str:
    """Step tokens: a number, or the prompt/completion dict some agents record."""
    if isinstance(value, dict):
        parts = [f"{f_big(v)} {k.replace('_tokens', '')}" for k, v in value.items() if _finite(v) is not None]
        return " · ".join(parts) or "–"
    return f_big(value)


def f_when(value: Any) -> str:
    v = _finite(value)
    if v is None:
        return ""
    return dt.datetime.fromtimestamp(v, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def f_pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


def f_compact(value: Any) -> str:
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= 2000 else text[:2000] + "…"


def f_columns(rows: list[dict[str, Any]]) -> list[str]:
    """Union of the keys of a list of dicts, in first-seen order."""
    return list(dict.fromkeys(k for row in rows for k in row))


def t_inline(items: Any) -> bool:
    """A list short and flat enough to show on one line (judge letters, ids, small numbers)."""
    if not isinstance(items, list | tuple):
        return False
    total = 0
    for v in items:
        if isinstance(v, str):
            if "\n" in v or len(v) > 40:
                return False
            total += len(v) + 2
        elif v is None or isinstance(v, int | float | bool):
            total += 8
        else:
            return False
    return total <= 200


def f_without(mapping: Any, *keys: str) -> dict[str, Any]:
    if not isinstance(mapping, dict):
        return {}
    return {k: v for k, v in mapping.items() if k not in keys}


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its extension
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.ChainableUndefined,  # odd records (missing fields) render as empty
    )
    env.filters.update(num=f_num, big=f_big, pct=f_pct, usd=f_usd, dur=f_dur, tok=f_tok, when=f_when,
                       pretty=f_pretty, compact=f_compact, columns=f_columns, without=f_without)
    env.tests["inline"] = t_inline
    return env


def render(template: str, **context: Any) -> bytes:
    return environment().get_template(template).render(**context).encode()


@cache
def generator_version() -> str:
    """Hash of the report's code, templates and static files: pages built by another version of
    the generator are rebuilt, unchanged ones are skipped."""
    h = hashlib.sha256()
    for path in sorted([*HERE.glob("*.py"), *TEMPLATES.glob("*"), *STATIC.glob("*")]):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def static_files() -> dict[str, bytes]:
    return {name: (STATIC / name).read_bytes() for name in STATIC_FILES}
