"""This process's peak memory, as benchmarks and tests report it."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    """Peak resident set of this process image, in MB: /proc's VmHWM. Not getrusage's ru_maxrss,
    which Linux carries over fork and exec from the parent (a process started by a 650 MB pytest
    reported 650 MB at once)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no /proc: the best there is
