"""`python -m bench --quick --json` itself, as issue 9 asks: it runs on a fresh clone within CI time.

No figure is asserted (speed is not a test): the suite must run to the end, exit 0, and give one
JSON object per benchmark with the names and figure keys the issue fixes. A peer that is not
installed (neurokit2, biosppy: the benchmark-only ``peers`` extra) leaves its ratio as null.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import QUICK_SUITE, REQUIRED_FIGURES

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
def test_the_quick_suite_runs_and_reports_every_required_figure(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "BIOFEED_BENCH_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=880,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["name"] for r in results] == sorted(QUICK_SUITE)
    for result in results:
        assert set(result) >= {"name", "figures", "peers", "machine"}
        missing = [k for k in REQUIRED_FIGURES[result["name"]] if k not in result["figures"]]
        assert not missing, f"{result['name']} lacks {missing}"
