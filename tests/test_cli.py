"""The biofeed command: one clear line and a non-zero exit for every user error; the record path
from a simulated board through a real pseudo-terminal into a recording that `info` summarises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import tty

import numpy as np
import pytest

from biofeed.cli import main
from biofeed.record.reader import open_recording
from biofeed.sim.device import SimulatedDevice

BIOFEED = [sys.executable, "-m", "biofeed"]


def _run(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BIOFEED, *args], capture_output=True, text=True, timeout=timeout_s, check=False)


def _one_clear_line(stderr: str) -> None:
    """Exactly one error line and no traceback (notices such as the board check may precede it)."""
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("biofeed: error:")]
    assert len(errors) == 1, stderr
    assert all(line.startswith("biofeed: ") for line in stderr.splitlines() if line.strip()), stderr


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["record", "--device", "usb:///dev/x", "--out", "{tmp}/r"], 2, "unknown source scheme"),
        (["record", "--device", "serial:///dev/no-such-port-biofeed", "--out", "{tmp}/r"], 1, "no such port"),
        (["record", "--device", "sim://no-such-scenario", "--out", "{tmp}/r"], 2, "pandiculation"),
        (["info", "{tmp}"], 1, "not a biofeed recording"),
        (["info", "{tmp}/missing"], 1, "missing"),
        (["record", "--device", "replay://{tmp}", "--out", "{tmp}/r"], 1, "not a biofeed recording"),
    ],
)
def test_user_errors_are_one_line_and_non_zero(tmp_path, capsys, args, code, words):
    assert main([a.format(tmp=tmp_path) for a in args]) == code
    err = capsys.readouterr().err
    _one_clear_line(err)
    assert words in err


def test_bad_arguments_exit_2_with_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["record", "--device", "sim://rest", "--out", "x", "--duration", "-3"])
    assert info.value.code == 2
    assert "must be positive" in capsys.readouterr().err


def test_sim_out_then_info_json(tmp_path, capsys):
    out = tmp_path / "rec"
    truth = tmp_path / "truth.json"
    assert main(["sim", "--out", str(out), "--scenario", "rest", "--duration", "4", "--truth", str(truth)]) == 0
    assert json.loads(truth.read_text())["scenario"] == "rest"
    capsys.readouterr()
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["corrupt_frames"] == 0
    streams = {s["name"]: s for s in info["streams"]}
    assert streams["emg"]["n_samples"] == 8000 and streams["emg"]["sample_rate_hz"] == 2000
    assert streams["imu_thoracic"]["n_samples"] == 400
    assert all(s["gaps"] == 0 and s["samples_lost"] == 0 for s in streams.values())


def test_record_from_the_in_process_simulator_and_replay_it(tmp_path, capsys):
    first, second = tmp_path / "a", tmp_path / "b"
    assert (
        main(["record", "--device", "sim://pandiculation?seed=2&speed=0", "--out", str(first), "--duration", "5"]) == 0
    )
    assert main(["record", "--device", f"replay://{first}", "--out", str(second)]) == 0
    capsys.readouterr()
    infos = []
    for path in (first, second):
        assert main(["info", str(path), "--json"]) == 0
        infos.append({s["name"]: s for s in json.loads(capsys.readouterr().out)["streams"]})
    assert infos[0] == infos[1]
    assert infos[0]["emg"]["n_samples"] >= 10000


def _info_json(path) -> dict:
    result = _run("info", str(path), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_sim_pty_into_record_over_serial(tmp_path):
    """The issue's acceptance path, at 3 device seconds: `sim --pty` + `record --device serial://`."""
    sim = subprocess.Popen(
        [*BIOFEED, "sim", "--pty", "--scenario", "pandiculation", "--duration", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = sim.stdout.readline()
        assert first_line.startswith("pty: "), first_line + sim.stderr.read()
        pty_path = first_line.split(" ", 1)[1].strip()
        out = tmp_path / "rec"
        result = _run("record", "--device", f"serial://{pty_path}", "--out", str(out), "--duration", "3")
        assert result.returncode == 0, result.stderr
    finally:
        sim.terminate()
        sim.wait(10)
    info = _info_json(out)
    assert info["corrupt_frames"] == 0
    for stream in info["streams"]:
        assert stream["gaps"] == 0 and stream["samples_lost"] == 0
        assert stream["n_samples"] >= 3 * stream["sample_rate_hz"]
        assert stream["n_samples"] / stream["duration_s"] == pytest.approx(stream["sample_rate_hz"])


def test_bytes_corrupted_on_the_way_lose_only_the_damaged_frames(tmp_path):
    data = SimulatedDevice("pandiculation", seed=5, duration_s=6.0).frames_until(6.0)
    frames = [f for f in data.split(b"\x00") if f]
    rng = np.random.default_rng(11)
    emg_frames = [i for i, f in enumerate(frames) if len(f) > 120 and 10 < i < 400]  # within the first 3 s
    damaged = sorted(rng.choice(emg_frames[::2], size=7, replace=False).tolist())  # never adjacent: one gap each
    wire = bytearray(b"\x00")
    for i, frame in enumerate(frames):
        if i in damaged:
            frame = bytearray(frame)
            frame[len(frame) // 2] ^= 0x5A if frame[len(frame) // 2] != 0x5A else 0x33  # never 0x00
        wire += bytes(frame) + b"\x00"

    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    out = tmp_path / "rec"
    recorder = subprocess.Popen(
        [*BIOFEED, "record", "--device", f"serial://{path}", "--out", str(out), "--duration", "3.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # pyserial flushes the port's input queue when it opens it: write only once the recorder has
    # opened the port, which it announces by asking the device for its INFO.
    assert _read_until_delimiter_after_frame(master)
    writer = threading.Thread(target=_write_all, args=(master, bytes(wire)), daemon=True)
    writer.start()
    try:
        _, stderr = recorder.communicate(timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    assert recorder.returncode == 0, stderr
    info = _info_json(out)
    streams = {s["name"]: s for s in info["streams"]}
    assert info["corrupt_frames"] == len(damaged)
    assert streams["emg"]["gaps"] == len(damaged)
    assert streams["emg"]["samples_lost"] == 20 * len(damaged)
    assert streams["imu_thoracic"]["samples_lost"] == 0


def _read_until_delimiter_after_frame(fd: int) -> bytes:
    received = b""
    while len([f for f in received.split(b"\x00") if f]) < 1 or not received.endswith(b"\x00"):
        received += os.read(fd, 64)
    return received


def _write_all(fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view[:4096]) :]
    except OSError:
        pass  # the reader stopped at its duration and the test closed the pty


def test_unplugging_mid_recording_keeps_everything_and_says_so_in_one_line(tmp_path):
    data = SimulatedDevice("rest", seed=9, duration_s=2.0).frames_until(2.0)
    master, slave = os.openpty()
    tty.setraw(slave)
    out = tmp_path / "rec"
    recorder = subprocess.Popen(
        [*BIOFEED, "record", "--device", f"serial://{os.ttyname(slave)}", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert _read_until_delimiter_after_frame(master)
    _write_all(master, data)
    os.close(slave)
    os.close(master)  # the board is gone: the recorder's next read fails
    stdout, stderr = recorder.communicate(timeout=60)
    assert recorder.returncode == 1
    _one_clear_line(stderr)
    assert "device went away" in stderr and str(out) in stderr
    assert "emg" in stdout  # the summary still prints
    # The kernel drops what was still queued in the pty when it hung up (as with a real unplug):
    # what the recorder read must be in the recording, as an unbroken prefix of what was sent.
    sent = [f for f in data.split(b"\x00") if f]
    recorded = [r.frame for r in open_recording(out).frames()]
    assert 0 < len(recorded) <= len(sent) and recorded == sent[: len(recorded)]
    info = _info_json(out)
    assert info["corrupt_frames"] == 0 and info["torn_tail_bytes"] == 0
    assert all(s["gaps"] == 0 and s["n_samples"] > 0 for s in info["streams"])


def test_scan_lists_ports_or_says_there_are_none(capsys):
    assert main(["scan", "--ble-timeout", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (lines and all(line.startswith("serial://") for line in lines)) or lines == ["no serial ports found"]


def test_live_renders_a_screenshot_through_the_command(tmp_path, capsys):
    png = tmp_path / "live.png"
    args = ["live", "--device", "sim://pandiculation?speed=0", "--duration", "15", "--screenshot", str(png)]
    assert main(args) == 0
    assert png.stat().st_size > 10_000
    assert main(["live", "--device", "sim://rest?speed=0", "--screenshot", str(png)]) == 2
    assert "--duration" in capsys.readouterr().err
