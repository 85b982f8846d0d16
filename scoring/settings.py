"""How evaluation runs, as opposed to what it checks: the deadline of one getter and the worker
threads that blocking metric work (office parsing, SQLite, big JSON) shares.

A run's `RunContext` (benchmarks/context.py) carries these in its `scoring` slot without knowing
them; `settings_of(run)` gives them to getters and metrics, defaults when the run set none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio

GETTER_TIMEOUT_S = 300.0
METRIC_THREADS = 4  # parsers hold the GIL much of the time: more threads buy little


@dataclass
class ScoringSettings:
    getter_timeout: float = GETTER_TIMEOUT_S
    metric_threads: int = METRIC_THREADS
    _cpu: anyio.CapacityLimiter | None = field(default=None, repr=False)

    @property
    def cpu(self) -> anyio.CapacityLimiter:
        """Worker threads for blocking metric and getter work (made on first use, on the run's loop)."""
        if self._cpu is None:
            self._cpu = anyio.CapacityLimiter(self.metric_threads)
        return self._cpu


def settings_of(run: Any) -> ScoringSettings:
    """The scoring settings a RunContext carries (set to the defaults on first use)."""
    settings = getattr(run, "scoring", None)
    if not isinstance(settings, ScoringSettings):
        settings = ScoringSettings()
        run.scoring = settings
    return settings
