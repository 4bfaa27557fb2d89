"""Resident memory of this process, for the benchmarks that watch it grow."""

from __future__ import annotations

import math

__all__ = ["rss_mb"]


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
