"""Live progress: a rich panel on a terminal, plain log lines otherwise, nothing with -q."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import anyio

from harness.engine import EngineStats


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class Progress:
    def __init__(self, stats: EngineStats, *, pool_stats: Callable[[], dict[str, int]] | None = None,
                 llm_stats: Callable[[], dict[str, Any]] | None = None, quiet: bool = False,
                 interval: float = 0.5, plain_interval: float = 15.0) -> None:
        self.stats = stats
        self.pool_stats = pool_stats
        self.llm_stats = llm_stats
        self.quiet = quiet
        self.interval = interval
        self.plain_interval = plain_interval
        self._t0 = time.monotonic()
        self._done0: int | None = None

    def snapshot(self) -> dict[str, Any]:
        s = self.stats
        elapsed = time.monotonic() - self._t0
        if self._done0 is None:
            self._done0 = s.done
        finished_here = s.done - self._done0
        rate = finished_here / elapsed if elapsed > 0 and finished_here else 0.0
        eta = (s.total - s.done) / rate if rate else None
        snap: dict[str, Any] = {
            "done": s.done, "total": s.total, "success": s.success_rate, "in_flight": s.in_flight,
            "infra_failures": s.infra_failures, "errors": s.errors, "elapsed": elapsed, "eta": eta,
        }
        if self.pool_stats:
            snap["pool"] = self.pool_stats()
        if self.llm_stats:
            snap["llm"] = self.llm_stats()
        return snap

    def line(self) -> str:
        n = self.snapshot()
        parts = [f"{n['done']}/{n['total']} done", f"success {n['success']:.1%}", f"in flight {n['in_flight']}"]
        if "pool" in n:
            p = n["pool"]
            parts.append(f"sandboxes busy {p.get('busy', 0)} warm {p.get('warm', 0)} starting {p.get('starting', 0)}")
        if "llm" in n:
            q = n["llm"]
            parts.append(f"llm in flight {q.get('in_flight', 0)} waiting {q.get('waiting', 0)}")
            parts.append(f"tokens {q.get('prompt_tokens', 0) + q.get('completion_tokens', 0)}")
            parts.append(f"cost ${q.get('cost_usd', 0.0):.4f}")
        if n["infra_failures"]:
            parts.append(f"infra retries {n['infra_failures']}")
        parts.append(f"ETA {_fmt_eta(n['eta'])}")
        return " | ".join(parts)

    async def run(self) -> None:
        """Render until cancelled."""
        if self.quiet:
            await anyio.sleep_forever()
        if sys.stdout.isatty():
            await self._run_rich()
        else:
            while True:
                await anyio.sleep(self.plain_interval)
                print(f"[progress] {self.line()}", flush=True)

    async def _run_rich(self) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.table import Table

        def render() -> Table:
            n = self.snapshot()
            t = Table.grid(padding=(0, 2))
            t.add_row("tasks", f"{n['done']}/{n['total']} done, {n['in_flight']} in flight, ETA {_fmt_eta(n['eta'])}")
            t.add_row("success", f"{n['success']:.1%} (errors {n['errors']}, infra retries {n['infra_failures']})")
            if "pool" in n:
                p = n["pool"]
                t.add_row("sandboxes", f"busy {p.get('busy', 0)}  warm {p.get('warm', 0)}  starting {p.get('starting', 0)}"
                          f"  / capacity {p.get('capacity', '-')}")
            if "llm" in n:
                q = n["llm"]
                t.add_row("llm", f"in flight {q.get('in_flight', 0)}  waiting {q.get('waiting', 0)}  "
                          f"tokens {q.get('prompt_tokens', 0) + q.get('completion_tokens', 0)}  cost ${q.get('cost_usd', 0.0):.4f}")
            return t

        with Live(render(), console=Console(), refresh_per_second=4, transient=True) as live:
            while True:
                await anyio.sleep(self.interval)
                live.update(render())
