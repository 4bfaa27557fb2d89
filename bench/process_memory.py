"""Resident memory of this process, for the benchmarks that watch it grow."""

from __future__ import annotations

import math
import resource

__all__ = ["peak_rss_mb", "rss_mb"]


def rss_mb() -> float:
    """The process's resident set size now (``VmRSS``), in MB; NaN where ``/proc`` has none."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass  # not Linux: no /proc
    return math.nan


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (``ru_maxrss``), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
