"""`rule` (the task's own expected value) and `rule_relativeTime` (dates relative to today).

rule_relativeTime fills `{DoW}`, `{Month}`, `{Day0D}`, ... placeholders of `rules.expected` with a
date computed from the guest's clock (or `rules.timezone` on the host). Fixed upstream bugs:
"first monday N months later" for months that wrap to December (upstream builds month 0) and
"this Saturday" on a Sunday (upstream picks yesterday; we pick the coming Saturday).
"""

from __future__ import annotations

import copy
import logging
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from benchmarks.context import TaskContext
from benchmarks.schema import GetterSpec
from harness.base.errors import TaskError
from scoring.registry import getter
from vm.types import Guest

log = logging.getLogger("scoring.getters.rules")

DOW = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTH = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
MONTH_FULL = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December"]

RELATIVE_NAMES = frozenset({
    "tomorrow", "5th next month", "10th next month", "11th next month", "this month", "this Saturday",
    "this Sunday", "next Monday", "next Friday", "next Saturday", "next Sunday", "next week Friday",
    "next week Saturday", "next week Sunday", "first monday four months later",
    "first monday eight months later", "next Monday split", "next Friday split",
})


@getter("rule", check=lambda s: [] if "rules" in s and s["rules"] is not None else ["rules is required"])
async def rule(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> Any:
    """The task's `rules` value as-is."""
    return copy.deepcopy(spec.rules)


def _next_month_day(now: date, day: int) -> date:
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return date(year, month, day)


def _first_monday_after_months(now: date, months: int) -> date:
    index = now.month - 1 + months
    first = date(now.year + index // 12, index % 12 + 1, 1)
    return first + timedelta(days=(7 - first.weekday()) % 7)


def resolve_day(name: str, now: date, *, paired_from: tuple[str, date] | None = None) -> date:
    """The date `name` means on `now`; `paired_from` is the range start when `name` is its end."""
    wd = now.weekday()
    if paired_from is not None:
        from_name, from_day = paired_from
        if name in ("next Friday", "next Friday split") and from_name in ("next Monday", "next Monday split"):
            return from_day + timedelta(days=4)
        if name in ("next Sunday", "next week Sunday") and from_name in (
                "next Friday", "next Saturday", "next week Friday", "next week Saturday"):
            return from_day + timedelta(days=6 - from_day.weekday())
        if name == "this Sunday" and from_name == "this Saturday":
            return from_day + timedelta(days=1)
    match name:
        case "tomorrow":
            return now + timedelta(days=1)
        case "this month":
            return now
        case "5th next month" | "10th next month" | "11th next month":
            return _next_month_day(now, int(name.split("th")[0]))
        case "this Saturday":
            return now + timedelta(days=(5 - wd) % 7)
        case "this Sunday":
            return now + timedelta(days=6 - wd)
        case "next Monday" | "next Monday split":
            return now + timedelta(days=7 - wd)
        case "next Friday" | "next Friday split":
            return now + timedelta(days=4 - wd if wd < 4 else 7 - wd + 4)
        case "next Saturday":
            return now + timedelta(days=5 - wd if wd < 5 else (7 if wd == 5 else 6))
        case "next Sunday":
            return now + timedelta(days=6 - wd if wd < 6 else 7)
        case "next week Friday":
            return now + timedelta(days=7 - wd + 4)
        case "next week Saturday":
            return now + timedelta(days=7 - wd + 5)
        case "next week Sunday":
            return now + timedelta(days=7 - wd + 6)
        case "first monday four months later":
            return _first_monday_after_months(now, 4)
        case "first monday eight months later":
            return _first_monday_after_months(now, 8)
    raise TaskError(f"unknown relative time {name!r}")


def format_day(template: str, day: date) -> str:
    """Upstream's placeholders, each replaced once, in upstream's order."""
    for key, value in (
        ("{DoW}", DOW[day.weekday()]),
        ("{Month}", MONTH[day.month - 1]),
        ("{DayD}", str(day.day)),
        ("{Year}", str(day.year)),
        ("{Month0D}", f"{day.month:02d}"),
        ("{month}", MONTH_FULL[day.month - 1].lower()),
        ("{MonthFull}", MONTH_FULL[day.month - 1]),
        ("{Day0D}", f"{day.day:02d}"),
        ("{MonthD}", str(day.month)),
    ):
        template = template.replace(key, value, 1)
    return template


def _fmt(value: Any, day: date) -> Any:
    return [format_day(v, day) for v in value] if isinstance(value, list) else format_day(str(value), day)


def apply_relative_time(rules: dict[str, Any], now: date) -> dict[str, Any]:
    """A copy of `rules` with the placeholders of `rules["expected"]` filled for `now`."""
    rules = copy.deepcopy(rules)
    rel = rules["relativeTime"]
    expected = rules["expected"]
    start_name = rel["from"]
    start = resolve_day(start_name, now)
    if "to" not in rel:
        expected["time"] = _fmt(expected["time"], start)
        return rules
    if start_name == "next Monday split":
        for key in ("puDay", "puMonth", "puYear"):
            expected[key] = _fmt(expected[key], start)
    else:
        expected["from"] = _fmt(expected["from"], start)
    end_name = rel["to"]
    end = resolve_day(end_name, now, paired_from=(start_name, start))
    if end_name == "next Friday split":
        for key in ("doDay", "doMonth", "doYear"):
            expected[key] = _fmt(expected[key], end)
    else:
        expected["to"] = _fmt(expected["to"], end)
    return rules


def _check_relative(spec: dict[str, Any]) -> list[str]:
    rules = spec.get("rules")
    if not isinstance(rules, dict) or not isinstance(rules.get("relativeTime"), dict) or "expected" not in rules:
        return ["rules needs relativeTime and expected"]
    rel = rules["relativeTime"]
    return [f"unknown relative time {v!r}" for k, v in rel.items() if k in ("from", "to") and v not in RELATIVE_NAMES]


async def _guest_now(guest: Guest, ctx: TaskContext) -> datetime | None:
    code = "from datetime import datetime; print(datetime.now().astimezone().isoformat())"
    try:
        result = await guest.execute(["python3", "-c", code], timeout=30)
        return datetime.fromisoformat(result.output.strip()) if result.ok and result.output.strip() else None
    except ValueError:
        return None


@getter("rule_relativeTime", check=_check_relative)
async def rule_relative_time(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> dict[str, Any]:
    """`rules` with date placeholders filled relative to today (the guest's clock, or rules.timezone)."""
    rules = spec.rules
    now = ctx.now()
    if now is None and isinstance(rules, dict) and rules.get("timezone"):
        try:
            now = datetime.now(ZoneInfo(str(rules["timezone"])))
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown timezone %r; using the guest's clock", rules["timezone"])
    if now is None:
        now = await _guest_now(guest, ctx) or datetime.now().astimezone()
    return apply_relative_time(rules, now.date())
