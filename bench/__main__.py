"""Run benchmark modules ``bench/bench_<name>.py`` and print their figures.

``python -m bench [NAME ...] [--quick] [--json]``: no NAME runs them all; ``--quick`` asks each for a
run of a few seconds; ``--json`` prints one JSON object per benchmark and line, with the machine.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["available", "machine", "main", "run_benchmark"]

_PREFIX = "bench_"


def available() -> list[str]:
    """Names of the benchmarks in this folder, sorted."""
    return sorted(p.stem[len(_PREFIX) :] for p in Path(__file__).parent.glob(f"{_PREFIX}*.py"))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: fall back to what platform knows
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def run_benchmark(name: str, quick: bool) -> dict[str, Any]:
    """Import ``bench.bench_<name>`` and return what its ``run(quick)`` returns."""
    module = importlib.import_module(f"bench.{_PREFIX}{name}")
    result: dict[str, Any] = module.run(quick)
    missing = {"name", "figures", "peers"} - set(result)
    if missing:
        raise ValueError(f"benchmark {name!r} returned no {', '.join(sorted(missing))}")
    return result


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def format_table(result: dict[str, Any]) -> str:
    """A readable table of one benchmark's figures and peers."""
    rows = [(k, _format_value(v)) for k, v in result["figures"].items()]
    rows += [(f"peer: {k}", _format_value(v)) for k, v in result["peers"].items()]
    width = max((len(k) for k, _ in rows), default=0)
    lines = [f"== {result['name']}"]
    lines += [f"  {k:<{width}}  {v:>14}" for k, v in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench``; returns the exit code."""
    names = available()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: all of {', '.join(names)})"
    )
    parser.add_argument("--quick", action="store_true", help="a short run of a few seconds each")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(names))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; available: {', '.join(names)}")
    about = machine()
    if not args.json:
        print(f"{about['cpu']}, {about['cores']} cores, Python {about['python']}, numpy {about['numpy']}")
    for name in args.names or names:
        result = run_benchmark(name, args.quick)
        if args.json:
            print(json.dumps({**result, "machine": about}), flush=True)
        else:
            print(format_table(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
