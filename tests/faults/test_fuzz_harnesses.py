"""The bounded CI run of the coverage-guided fuzzers (fuzz/): 300 inputs per harness, libFuzzer seed 1.

``python -m fuzz --all --runs 300`` runs each harness from its seed corpus in a process forked
after one import; a crash, memory past 2 GiB or an input taking over 30 s fails it. The long
runs (``--seconds N``) and their figures are in docs/reliability.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="the fuzzers need atheris (pip install atheris)")

RUNS = 300
_REPO = Path(__file__).resolve().parents[2]


def test_every_harness_runs_300_inputs_without_a_crash(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "fuzz", "--all", "--runs", str(RUNS), "--seed", "1", "--corpus", str(tmp_path)],
        cwd=_REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    lines = run.stdout.splitlines()
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    assert [line.split(":")[0] for line in lines] == ["decoder", "frames", "meta", "events", "edf", "csv"]
    assert all(f"exit status 0; Done {RUNS} runs in " in line for line in lines), lines
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("oom-*"))
