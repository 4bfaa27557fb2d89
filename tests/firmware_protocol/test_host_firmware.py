"""The host build of the firmware loop (biofeed-fw-host): its byte stream decodes with the Python codec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tty
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from biofeed.protocol import (
    ControlCommand,
    ControlPayload,
    InfoPayload,
    MarkerPayload,
    Packet,
    PacketType,
    SampleFormat,
    decode_frame,
    decode_samples,
    encode_frame,
)

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware_protocol"
TICK_RATE_HZ = 2000
DURATION_S = 5
NOMINAL_RATE_HZ = {1: 2000, 2: 100, 3: 100}
FRAME_BYTES = {1: 136, 2: 76, 3: 76}  # PROTOCOL.md section 7


@pytest.fixture(scope="module")
def host_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build_dir = tmp_path_factory.mktemp("firmware_host")
    result = subprocess.run(
        ["make", "-C", str(FIRMWARE_DIR), "host", f"BUILD_DIR={build_dir}"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return build_dir / "biofeed-fw-host"


def _run(binary: Path, *args: str, stdin_path: Path | None = None) -> bytes:
    with open(stdin_path or "/dev/null", "rb") as stdin:
        result = subprocess.run([str(binary), *args], stdin=stdin, capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


@dataclass(frozen=True)
class Stream:
    """What the test reads back from one run: packets in order and frame sizes."""

    packets: list[Packet]
    frame_sizes: list[int]


def _decode_all(output: bytes) -> Stream:
    assert output[:1] == b"\x00", "the stream starts with one 0x00"
    assert output.endswith(b"\x00")
    frames = [frame for frame in output[1:-1].split(b"\x00")]
    assert all(frames), "no empty frames after the first 0x00"
    return Stream([decode_frame(frame) for frame in frames], [len(frame) + 1 for frame in frames])


def _samples(packets: list[Packet], stream_id: int) -> tuple[list[int], npt.NDArray[np.int32]]:
    """First sample indices of the stream's blocks, and all its counts, shape (n_channels, n_samples)."""
    blocks = [p for p in packets if p.type in (PacketType.EMG, PacketType.IMU) and p.stream_id == stream_id]
    fmt, n_channels = (SampleFormat.INT24, 2) if stream_id == 1 else (SampleFormat.INT16, 6)
    counts = [decode_samples(p.payload, fmt, n_channels) for p in blocks]
    return [p.first_sample_index for p in blocks], np.concatenate(counts, axis=1)


@pytest.fixture(scope="module")
def five_seconds(host_binary: Path) -> bytes:
    return _run(host_binary, "--duration", str(DURATION_S), "--seed", "7", "--button-every", "2")


def test_every_frame_decodes_and_info_is_the_reference_vector(five_seconds: bytes) -> None:
    stream = _decode_all(five_seconds)
    first = stream.packets[0]
    assert (first.type, first.flags, first.seq) == (PacketType.INFO, 0, 0)
    vectors = json.loads((FIRMWARE_DIR / "vectors" / "vectors.json").read_text(encoding="utf-8"))
    reference = next(v for v in vectors["valid"] if v["name"] == "info_reference_device")
    assert first.payload == bytes.fromhex(reference["packet_hex"])[12:-2]
    infos = [p for p in stream.packets if p.type == PacketType.INFO]
    # At start, then after each full second (periodic flag): 0, 1, 2, 3, 4 s.
    assert [p.flags for p in infos] == [0] + [1] * (DURATION_S - 1)
    assert all(p.payload == first.payload for p in infos)


def test_seq_counts_every_packet(five_seconds: bytes) -> None:
    seqs = [p.seq for p in _decode_all(five_seconds).packets]
    assert seqs == list(range(len(seqs)))


def test_sample_counters_are_contiguous_and_counts_match_nominal_rates(five_seconds: bytes) -> None:
    stream = _decode_all(five_seconds)
    for stream_id, rate_hz in NOMINAL_RATE_HZ.items():
        starts, counts = _samples(stream.packets, stream_id)
        block_size = counts.shape[1] // len(starts)
        assert starts == list(range(0, rate_hz * DURATION_S, block_size)), f"stream {stream_id}"
        assert counts.shape[1] == rate_hz * DURATION_S
    sizes = defaultdict(set)
    for packet, size in zip(stream.packets, stream.frame_sizes, strict=True):
        if packet.type in (PacketType.EMG, PacketType.IMU):
            sizes[packet.stream_id].add(size)
    assert dict(sizes) == {k: {v} for k, v in FRAME_BYTES.items()}


def test_status_every_second_and_markers_on_button(five_seconds: bytes) -> None:
    packets = _decode_all(five_seconds).packets
    status = [(p.stream_id, p.first_sample_index) for p in packets if p.type == PacketType.STATUS]
    expected = [(s, NOMINAL_RATE_HZ[s] * second) for second in range(1, DURATION_S) for s in (1, 2, 3)]
    assert status == expected
    markers = [
        (p.stream_id, p.first_sample_index, MarkerPayload.from_payload(p.payload))
        for p in packets
        if p.type == PacketType.MARKER
    ]
    assert markers == [(1, 4000, MarkerPayload(1, "button")), (1, 8000, MarkerPayload(1, "button"))]


def test_signals_are_plausible(five_seconds: bytes) -> None:
    packets = _decode_all(five_seconds).packets
    info = InfoPayload.from_payload(packets[0].payload)
    scales = {s.stream_id: s.scales for s in info.streams}
    _, emg_counts = _samples(packets, 1)
    emg_uv = emg_counts * scales[1]
    emg_uv -= emg_uv.mean(axis=1, keepdims=True)
    # Per 100 ms window: quiet windows near the 1.5 µV floor, bursts a few tens of µV.
    window_rms_uv = np.sqrt((emg_uv.reshape(2, -1, 200) ** 2).mean(axis=2))
    assert 1.0 < np.median(window_rms_uv.min(axis=1)) < 2.5
    assert 15.0 < window_rms_uv.max() < 80.0
    for stream_id in (2, 3):
        _, imu_counts = _samples(packets, stream_id)
        imu = imu_counts * scales[stream_id]
        acc_norm_g = np.linalg.norm(imu[:3], axis=0)
        assert np.all(np.abs(acc_norm_g - 1.0) < 0.05)
        assert np.all(np.abs(imu[3:]) < 30.0)


def test_same_seed_same_bytes_other_seed_other_signals(host_binary: Path, five_seconds: bytes) -> None:
    assert _run(host_binary, "--duration", str(DURATION_S), "--seed", "7", "--button-every", "2") == five_seconds
    other = _run(host_binary, "--duration", str(DURATION_S), "--seed", "8", "--button-every", "2")
    assert len(other) == len(five_seconds)
    assert other != five_seconds


def test_realtime_pacing_gives_the_same_bytes(host_binary: Path) -> None:
    # The output does not depend on how often the loop polls, so paced and unpaced runs agree.
    assert _run(host_binary, "--duration", "0.2", "--realtime") == _run(host_binary, "--duration", "0.2")


def _control_file(path: Path, *payloads: tuple[int, ControlPayload]) -> Path:
    frames = [
        encode_frame(Packet(PacketType.CONTROL, stream_id, seq, 0, c.to_payload()))
        for seq, (stream_id, c) in enumerate(payloads)
    ]
    path.write_bytes(b"\x00" + b"".join(frames))
    return path


def test_control_from_stdin_sets_the_rate_and_is_answered(host_binary: Path, tmp_path: Path) -> None:
    control = _control_file(
        tmp_path / "control.bin",
        (1, ControlPayload(ControlCommand.SET_RATE, 1_000_000)),
        (0, ControlPayload(ControlCommand.REQUEST_INFO)),
    )
    packets = _decode_all(_run(host_binary, "--duration", "2", stdin_path=control)).packets
    answers = [InfoPayload.from_payload(p.payload) for p in packets if p.type == PacketType.INFO and p.flags == 0]
    assert [a.streams[0].sample_rate_mhz for a in answers] == [2_000_000, 1_000_000, 1_000_000]
    starts, counts = _samples(packets, 1)
    assert counts.shape[1] == 1000 * 2
    assert starts == list(range(0, 2000, 20))


def test_control_stop_ends_sample_blocks_but_not_info(host_binary: Path, tmp_path: Path) -> None:
    control = _control_file(tmp_path / "stop.bin", (0, ControlPayload(ControlCommand.STOP)))
    with open(control, "ab") as damaged:
        damaged.write(bytes.fromhex("0310100102c8010101010201040161ce00"))  # invalid_crc vector: ignored
    packets = _decode_all(_run(host_binary, "--duration", "2", stdin_path=control)).packets
    assert [p.type for p in packets] == [PacketType.INFO] + [PacketType.STATUS] * 3 + [PacketType.INFO]


@pytest.mark.parametrize(
    "args",
    [("--duration", "-1"), ("--duration", "abc"), ("--seed", "-3"), ("--bogus",), ("--duration",)],
)
def test_bad_options_are_refused_with_usage(host_binary: Path, args: tuple[str, ...]) -> None:
    result = subprocess.run([str(host_binary), *args], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "biofeed-fw-host:" in result.stderr
    assert result.stdout == ""


def test_host_firmware_through_a_pty_records_cleanly(host_binary: Path, tmp_path: Path) -> None:
    """The firmware's stdout on a real pseudo-terminal, recorded by `biofeed record` over serial://."""
    master, slave = os.openpty()
    tty.setraw(slave)
    out = tmp_path / "rec"
    device = f"serial://{os.ttyname(slave)}"
    recorder = subprocess.Popen(
        [sys.executable, "-m", "biofeed", "record", "--device", device, "--out", str(out), "--duration", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    firmware = None
    try:
        # pyserial flushes the input queue on open; the recorder's REQUEST_INFO says the port is open.
        request = b""
        while not (request.endswith(b"\x00") and request.strip(b"\x00")):
            request += os.read(master, 64)
        assert decode_frame(request.strip(b"\x00")).type == PacketType.CONTROL
        firmware = subprocess.Popen([str(host_binary), "--duration", "6"], stdin=subprocess.DEVNULL, stdout=master)
        _, stderr = recorder.communicate(timeout=60)
        assert recorder.returncode == 0, stderr
    finally:
        if firmware is not None:
            firmware.kill()
            firmware.wait()
        recorder.kill()
        os.close(master)
        os.close(slave)
    info = json.loads(
        subprocess.run(
            [sys.executable, "-m", "biofeed", "info", str(out), "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert info["corrupt_frames"] == 0 and info["no_info"] == 0 and info["lost_packets"] == 0
    assert info["device"]["board_profile"] == "ads1292r"
    for stream in info["streams"]:
        assert stream["gaps"] == 0 and stream["samples_lost"] == 0
        assert stream["n_samples"] >= 4 * stream["sample_rate_hz"]
        assert stream["n_samples"] / stream["duration_s"] == pytest.approx(stream["sample_rate_hz"])
