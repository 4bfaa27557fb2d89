"""Run benchmark modules ``bench/bench_<name>.py`` and print their figures.

``python -m bench [NAME ...] [--quick] [--json]``: no NAME runs them all; ``--quick`` asks each for a
short run; ``--json`` prints one JSON object per benchmark and line, ``{"name", "figures", "peers",
"machine", "run"}`` (``run``: quick or not, wall and CPU seconds, load average at its start; NaN is
written as null). Each module has ``run(quick: bool) -> dict`` returning ``{"name", "figures",
"peers"}``; the figures issue 9 names (:data:`REQUIRED_FIGURES`) are checked. A benchmark that fails
or lacks a required figure is reported on stderr, the others still run, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import resource
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "QUICK_SUITE",
    "REQUIRED_FIGURES",
    "available",
    "format_table",
    "machine",
    "main",
    "missing_figures",
    "run_benchmark",
]

_PREFIX = "bench_"

REQUIRED_FIGURES: Mapping[str, tuple[str, ...]] = {
    "decoder": ("mb_per_s",),
    "live_pipeline": ("x_realtime", "block_p99_ms"),
    "offline_analysis": ("x_realtime", "speedup_vs_neurokit2"),
    "end_to_end": ("latency_p99_ms",),
    "memory": ("growth_mb",),
    "gui": ("fps",),
}
"""Figure keys each benchmark must report (issue 9's names, used by docs/benchmarks.md)."""

QUICK_SUITE: tuple[str, ...] = tuple(REQUIRED_FIGURES)
"""What ``--quick`` without NAME runs: the speed, latency and memory suite of issue 9, under two minutes
of CPU. The accuracy, export and IMU benchmarks measure other things and take longer even when quick;
name them (or pass ``--all``) to run them."""


def available(package: str = "bench") -> list[str]:
    """Names of the benchmarks in ``package``'s folder, sorted."""
    module = importlib.import_module(package)
    folders = [Path(p) for p in module.__path__]
    return sorted({p.stem[len(_PREFIX) :] for folder in folders for p in folder.glob(f"{_PREFIX}*.py")})


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: fall back to what platform knows
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def missing_figures(result: Mapping[str, Any], required: Mapping[str, Sequence[str]] = REQUIRED_FIGURES) -> list[str]:
    """The figure keys ``required`` names for this result's benchmark that it does not report."""
    figures = result.get("figures", {})
    return [key for key in required.get(str(result.get("name")), ()) if key not in figures]


def run_benchmark(
    name: str, quick: bool, *, package: str = "bench", required: Mapping[str, Sequence[str]] = REQUIRED_FIGURES
) -> dict[str, Any]:
    """Import ``<package>.bench_<name>`` and return what its ``run(quick)`` returns, checked.

    Raises
    ------
    ValueError
        The result lacks ``name``, ``figures`` or ``peers``, names another benchmark, or lacks a
        figure of :data:`REQUIRED_FIGURES`.
    """
    module = importlib.import_module(f"{package}.{_PREFIX}{name}")
    result: dict[str, Any] = module.run(quick)
    missing = {"name", "figures", "peers"} - set(result)
    if missing:
        raise ValueError(f"benchmark {name!r} returned no {', '.join(sorted(missing))}")
    if result["name"] != name:
        raise ValueError(f"benchmark {name!r} calls itself {result['name']!r}")
    lacking = missing_figures(result, required)
    if lacking:
        raise ValueError(f"benchmark {name!r} reports no {', '.join(lacking)}")
    return result


def _json_safe(value: Any) -> Any:
    """NaN and infinities as null (strict JSON); numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def format_table(result: Mapping[str, Any]) -> str:
    """A readable table of one benchmark's figures and peers."""
    rows = [(k, _format_value(v)) for k, v in result["figures"].items()]
    rows += [(f"peer: {k}", _format_value(v)) for k, v in result["peers"].items()]
    width = max((len(k) for k, _ in rows), default=0)
    about = result.get("run")
    lines = [f"== {result['name']}" + (f"  ({about['wall_s']:.1f} s)" if about else "")]
    lines += [f"  {k:<{width}}  {v:>14}" for k, v in rows]
    return "\n".join(lines)


def _cpu_s() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def main(
    argv: Sequence[str] | None = None,
    *,
    package: str = "bench",
    required: Mapping[str, Sequence[str]] = REQUIRED_FIGURES,
    quick_suite: Sequence[str] = QUICK_SUITE,
) -> int:
    """Entry point of ``python -m bench``; returns the exit code."""
    names = available(package)
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: all of {', '.join(names)})"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"short runs; without NAME only {', '.join(n for n in quick_suite if n in names)}",
    )
    parser.add_argument("--all", action="store_true", help="with --quick: every benchmark, not only the quick suite")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(names))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; available: {', '.join(names)}")
    chosen = args.names or ([n for n in names if n in quick_suite] if args.quick and not args.all else names)
    about = machine()
    if not args.json:
        print(f"{about['cpu']}, {about['cores']} cores, Python {about['python']}, numpy {about['numpy']}")
    failed = 0
    for name in chosen:
        load = os.getloadavg()[0]
        wall0, cpu0 = time.perf_counter(), _cpu_s()
        try:
            result = run_benchmark(name, args.quick, package=package, required=required)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            print(f"bench: {name}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            failed += 1
            continue
        result["run"] = {
            "quick": args.quick,
            "wall_s": time.perf_counter() - wall0,
            "cpu_s": _cpu_s() - cpu0,
            "load_average_1min": load,
        }
        if args.json:
            print(json.dumps(_json_safe({**result, "machine": about}), allow_nan=False), flush=True)
        else:
            print(format_table(result), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
