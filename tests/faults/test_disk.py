"""The disk filling up and a read-only output folder: one clear error line, exit 1, what was written stays readable.

The disk is a real 192 KiB tmpfs mounted for the test (root only); where mounting is not allowed,
a ``biofeed record`` subprocess runs under ``RLIMIT_FSIZE`` instead (its files cannot grow past the
limit, which the kernel reports as EFBIG), and the read-only folder is a folder without write
permission. Each test says in its output which one ran.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from biofeed import cli
from biofeed.record.reader import open_recording
from biofeed.sim.device import SimulatedDevice
from tests.faults.wire import frames_of

DISK_BYTES = 192 * 1024
DEVICE_URL = "sim://pandiculation?seed=5&duration=30&speed=0"
"""30 device seconds are about 570 KB of frames: three times the disk."""


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(exist_ok=True)
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


@contextlib.contextmanager
def _tmpfs(path: Path, options: str) -> Iterator[bool]:
    mounted = _mount_tmpfs(path, options)
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(path)], check=True)


def _sent_frames(seconds: float) -> list[bytes]:
    return frames_of(SimulatedDevice("pandiculation", seed=5, duration_s=30).frames_until(seconds))


def _record_under_fsize_limit(out: Path) -> tuple[int, str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (DISK_BYTES, DISK_BYTES))

    done = subprocess.run(
        [sys.executable, "-m", "biofeed", "record", "--device", DEVICE_URL, "--out", str(out)],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stderr


def _say(what: str, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():  # which fault ran, in the suite's output
        print(f"\n{__name__}: {what}")


def _error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.startswith("biofeed: error:")]


def test_a_full_disk_stops_the_recording_with_one_clear_line_and_keeps_what_was_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    disk = tmp_path / "disk"
    out = disk / "rec"
    with _tmpfs(disk, f"size={DISK_BYTES},mode=0700") as mounted:
        if mounted:
            _say("fault: a real tmpfs of 192 KiB filled up", capsys)
            code = cli.main(["record", "--device", DEVICE_URL, "--out", str(out)])
            stderr = capsys.readouterr().err
            reason = "the disk is full"
        else:
            _say("fault: RLIMIT_FSIZE of 192 KiB on a biofeed record subprocess (no tmpfs mount allowed)", capsys)
            code, stderr = _record_under_fsize_limit(out)
            reason = "size limit"
        errors = _error_lines(stderr)
        assert code == 1
        assert len(errors) == 1, stderr
        assert re.search(r"cannot write (frames\.bin|events\.jsonl)", errors[0]) and reason in errors[0]
        assert "what was written before stays readable" in errors[0]

        recording = open_recording(out)
        frames = [r.frame for r in recording.frames()]
        assert recording.skipped_bytes == 0
        assert len(frames) > 1000  # most of the disk holds frames
        assert frames == _sent_frames(30.0)[: len(frames)]  # every one of them, as sent
        assert recording.device_info is not None  # recording.json kept its last version
        assert cli.main(["info", str(out)]) == 0


def test_a_read_only_output_folder_is_refused_with_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    disk = tmp_path / "ro"
    with _tmpfs(disk, "size=64k,ro") as mounted:
        if mounted:
            _say("fault: a read-only tmpfs", capsys)
            reason = "the file system is read-only"
        else:
            _say("fault: a folder without write permission (mounting a tmpfs is not allowed)", capsys)
            disk.chmod(0o500)
            reason = "permission denied"
        code = cli.main(["record", "--device", DEVICE_URL, "--out", str(disk / "rec")])
        errors = _error_lines(capsys.readouterr().err)
        assert code == 1
        assert errors == [f"biofeed: error: {disk / 'rec'}: cannot create the recording folder: {reason}"]
        assert not (disk / "rec").exists()
