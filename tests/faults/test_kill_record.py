"""``kill -9`` of ``biofeed record`` at seeded random moments: nothing received up to a second before is lost.

Twenty kills: 19 of ``record`` runs forked from a process that has imported the command's code path
(tests/faults/record_forkserver.py: the child runs ``biofeed.cli.main``, exactly what the console
script runs) and one of the ``biofeed`` console script itself. Each run records the simulated
board (``sim://pandiculation?speed=2``, deterministic by its seed), so the frames it sent are
regenerated here and the recording must hold exactly them, in order, up to the kill.

A ``kill -9`` cannot tear a record (each is one ``write``); a power loss can, losing what was not
yet fsynced. So each killed recording is also cut at a seeded random byte within its last second
(what a power loss leaves at worst): ``biofeed info`` reports the torn tail and every record before it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from biofeed import cli
from biofeed.record.frames_file import FILE_HEADER_SIZE, RECORD_OVERHEAD
from biofeed.record.reader import open_recording
from biofeed.sim.device import SimulatedDevice
from tests.faults.wire import frames_of

N_KILLS = 20
SPEED = 2.0
SECONDS_KEPT_S = 1.0
"""The promise: every frame that arrived up to this long before the kill is in the recording."""
DEVICE_URL = f"sim://pandiculation?seed=3&duration=60&speed={SPEED:g}"
KILL_AFTER_S = (0.4, 1.4)
"""Seeded range of the kill moment, host seconds after the run started."""

_REPO = Path(__file__).resolve().parents[2]


class ForkServer:
    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.record_forkserver"],
            cwd=_REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _ask(self, request: dict[str, object]) -> dict[str, int]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        answer: dict[str, int] = json.loads(self._process.stdout.readline())
        return answer

    def fork(self, argv: list[str], log: Path) -> int:
        return self._ask({"argv": argv, "log": str(log)})["pid"]

    def reap(self, pid: int) -> int:
        return self._ask({"reap": pid})["status"]

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(30)


@pytest.fixture(scope="module")
def forkserver() -> Iterator[ForkServer]:
    server = ForkServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def sent_frames() -> list[bytes]:
    """Every frame the simulated board sends in the longest run (it is deterministic by its seed)."""
    device = SimulatedDevice("pandiculation", seed=3, duration_s=60)
    return frames_of(device.frames_until((KILL_AFTER_S[1] + 2.0) * SPEED))


def _kill_moments() -> list[float]:
    return list(np.random.default_rng(20261121).uniform(*KILL_AFTER_S, size=N_KILLS))


def _check_killed_recording(folder: Path, killed_at: float, sent: list[bytes], started_at: float) -> None:
    if not (folder / "frames.bin").exists():
        # killed before the first frame was stored: then it was also within a second of starting
        assert killed_at - started_at < KILL_AFTER_S[0] + SECONDS_KEPT_S, f"no frames in {folder}"
        return
    recording = open_recording(folder)  # opens: recording.json was there before frames.bin
    records = list(recording.frames())
    assert recording.skipped_bytes == 0
    assert recording.torn_tail_bytes == 0  # a kill cannot tear a record: each is one write
    frames = [r.frame for r in records]
    assert frames == sent[: len(frames)], "the recording differs from what the simulator sent"
    assert records, f"an empty recording after {killed_at - started_at:.2f} s"
    assert records[-1].received_at >= killed_at - SECONDS_KEPT_S, (
        f"the last stored frame arrived {killed_at - records[-1].received_at:.2f} s before the kill"
    )


def _check_power_cut(folder: Path, cut_fraction: float, capsys: pytest.CaptureFixture[str]) -> None:
    """Cut frames.bin inside its last second, as an unsynced power loss would; info reports the tail."""
    records = list(open_recording(folder).frames())
    last_s = records[-1].received_at
    in_last_second = [i for i, r in enumerate(records) if r.received_at >= last_s - SECONDS_KEPT_S]
    ends = np.cumsum([FILE_HEADER_SIZE] + [RECORD_OVERHEAD + len(r.frame) for r in records])
    first, size = ends[in_last_second[0]], ends[-1]
    cut = int(first + cut_fraction * (size - first))
    os.truncate(folder / "frames.bin", cut)
    whole = int(np.searchsorted(ends, cut, side="right")) - 1  # records fully before the cut
    assert cli.main(["info", "--json", str(folder)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["torn_tail_bytes"] == cut - ends[whole]
    assert [r.frame for r in open_recording(folder).frames()] == [r.frame for r in records[:whole]]


def test_kill_9_of_record_loses_nothing_received_a_second_before(
    tmp_path: Path, forkserver: ForkServer, sent_frames: list[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    cuts = np.random.default_rng(7).uniform(0.0, 1.0, size=N_KILLS)
    with_frames = 0
    for run, kill_after_s in enumerate(_kill_moments()):
        folder = tmp_path / f"run{run:02d}"
        argv = ["record", "--device", DEVICE_URL, "--out", str(folder)]
        started_at = time.time()
        if run == 0:  # the console script itself, imports and all
            script = Path(sys.executable).with_name("biofeed")
            process = subprocess.Popen([str(script), *argv], stdout=subprocess.DEVNULL)
            while not (folder / "frames.bin").exists() and process.poll() is None:
                time.sleep(0.05)  # its imports take seconds on a busy machine: count from its start
            started_at = time.time()
            time.sleep(kill_after_s)
            killed_at = time.time()
            process.send_signal(signal.SIGKILL)
            assert process.wait(30) == -signal.SIGKILL
        else:
            pid = forkserver.fork(argv, tmp_path / f"run{run:02d}.log")
            time.sleep(kill_after_s)  # the fault is a moment in wall time
            killed_at = time.time()
            os.kill(pid, signal.SIGKILL)
            status = forkserver.reap(pid)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
                tmp_path / f"run{run:02d}.log"
            ).read_text()
        _check_killed_recording(folder, killed_at, sent_frames, started_at)
        if (folder / "frames.bin").exists() and list(open_recording(folder).frames()):
            with_frames += 1
            _check_power_cut(folder, float(cuts[run]), capsys)
    assert with_frames >= N_KILLS - 2  # the kill moments are meant to fall while frames flow
