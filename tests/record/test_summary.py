"""The recording summary: what ``biofeed info`` reports about a recording built from real packets."""

from __future__ import annotations

import json
from pathlib import Path

from cobs import cobs

from biofeed.protocol import Packet, PacketType, encode_packet
from biofeed.record.frames_file import FRAMES_FILE
from biofeed.record.meta import device_info_to_json
from biofeed.record.summary import summarize_recording
from biofeed.record.writer import RecordingWriter

from .recording_factory import EMG, IMU, INFO, FrameFactory

_INFO_KEYS = {
    "path",
    "device",
    "corrupt_frames",
    "corrupt_by_reason",
    "lost_packets",
    "duplicates",
    "no_info",
    "unknown_type",
    "resets",
    "refused_major",
    "joined_mid_frame",
    "torn_tail_bytes",
    "skipped_bytes",
    "markers",
    "events",
    "reconnects",
    "start_time",
    "streams",
}
_STREAM_KEYS = {
    "name",
    "kind",
    "sample_rate_hz",
    "n_channels",
    "n_samples",
    "duration_s",
    "gaps",
    "samples_lost",
    "clock_error_ppm",
    "jitter_ms",
    "clock_fits",
}
_CLOCK_FIT_KEYS = {"offset_s", "slope", "first_device_s", "last_device_s", "n_points", "clock_error_ppm", "jitter_ms"}


def _bad_crc_frame() -> bytes:
    raw = bytearray(encode_packet(Packet(PacketType.MARKER, 1, 0, 0, b"\x01\x00")))
    raw[-1] ^= 0x01
    return cobs.encode(bytes(raw))


def _record_one_second(path: Path, *, with_device_info: bool = True) -> Path:
    """1 s of the reference device: EMG 2 kHz in 20-sample packets, IMU 100 Hz in 5-sample packets.

    The EMG packet at sample 1000 is lost on the link (its seq is used up), one damaged frame
    arrives, one button marker and two events are recorded.
    """
    factory = FrameFactory(seed=5)
    frames = [factory.info()]
    for k in range(100):
        emg_index = 20 * k
        if emg_index == 1000:
            factory.seq += 1
        else:
            frames.append(factory.samples(EMG, emg_index, 20))
        if k % 5 == 0:
            frames.append(factory.samples(IMU, 5 * (k // 5), 5))
        if k == 40:
            frames.append(_bad_crc_frame())
            frames.append(factory.marker(EMG, 810))
    with RecordingWriter(path, source_url="sim://rest", client="c-01") as writer:
        if with_device_info:
            writer.set_device_info(INFO.to_device_info())
        for i, frame in enumerate(frames):
            writer.append_frame(frame, 1.7e9 + i * 0.007)
        writer.append_event({"type": "marker", "label": "start"})
        writer.append_event({"type": "gap", "stream": "emg", "n_samples_lost": 20})
    return path


def test_summary_counts_streams_gaps_and_damage(tmp_path: Path) -> None:
    summary = summarize_recording(_record_one_second(tmp_path / "rec"))
    emg, imu = summary.streams
    assert (emg.name, emg.kind, emg.sample_rate_hz, emg.n_channels) == ("emg", "emg", 2000.0, 2)
    assert (emg.n_samples, emg.gaps, emg.samples_lost) == (1980, 1, 20)
    assert emg.duration_s == 1.0  # gaps included
    assert (imu.name, imu.kind, imu.sample_rate_hz, imu.n_channels) == ("imu_thoracic", "imu", 100.0, 6)
    assert (imu.n_samples, imu.gaps, imu.samples_lost, imu.duration_s) == (100, 0, 0, 1.0)
    assert summary.corrupt_frames == 1
    assert summary.corrupt_by_reason["crc"] == 1
    assert sum(summary.corrupt_by_reason.values()) == 1
    assert summary.lost_packets == 1
    assert (summary.duplicates, summary.no_info, summary.unknown_type, summary.resets) == (0, 0, 0, 0)
    assert (summary.markers, summary.events, summary.reconnects) == (1, 2, 0)
    assert (summary.torn_tail_bytes, summary.skipped_bytes) == (0, 0)
    assert summary.device == device_info_to_json(INFO.to_device_info())
    assert summary.start_time is not None and summary.start_time.endswith("Z")


def test_to_json_has_exactly_the_documented_keys_and_is_strict_json(tmp_path: Path) -> None:
    path = _record_one_second(tmp_path / "rec")
    info = summarize_recording(path).to_json()
    assert set(info) == _INFO_KEYS
    assert all(set(s) == _STREAM_KEYS for s in info["streams"])
    assert all(set(fit) == _CLOCK_FIT_KEYS for s in info["streams"] for fit in s["clock_fits"])
    assert all(s["clock_fits"] for s in info["streams"])
    assert info["path"] == str(path)
    assert json.loads(json.dumps(info, allow_nan=False)) == info


def test_reconnects_count_connected_link_events_that_follow_a_lost_one(tmp_path: Path) -> None:
    path = tmp_path / "rec"
    states = ["connected", "lost", "reconnecting", "reconnecting", "connected", "connected", "lost", "connected"]
    with RecordingWriter(path, source_url="ble://dev") as writer:
        for attempt, state in enumerate(states):
            writer.append_event({"type": "link", "state": state, "detail": "", "attempt": attempt, "host_time": 1.0})
        writer.append_event({"type": "gap", "state": "connected"})  # not a link event
    summary = summarize_recording(path)
    assert summary.reconnects == 2
    assert summary.events == len(states) + 1
    assert summary.to_json()["reconnects"] == 2
    assert "reconnects  2" in summary.to_text()


def test_device_comes_from_the_frames_when_recording_json_has_none(tmp_path: Path) -> None:
    summary = summarize_recording(_record_one_second(tmp_path / "rec", with_device_info=False))
    assert summary.device == device_info_to_json(INFO.to_device_info())


def test_summary_reports_file_damage(tmp_path: Path) -> None:
    path = _record_one_second(tmp_path / "rec")
    data = bytearray((path / FRAMES_FILE).read_bytes())
    data[200] ^= 0xFF  # inside the INFO record (8 + 16 + ~150 bytes): it is skipped
    (path / FRAMES_FILE).write_bytes(bytes(data) + b"\x01\x02\x03")
    summary = summarize_recording(path)
    assert summary.torn_tail_bytes == 3
    assert summary.skipped_bytes > 0
    # without the INFO no sample packet decodes: all counted as no_info
    assert summary.no_info > 0
    assert all(s.n_samples == 0 for s in summary.streams)


def test_empty_recording(tmp_path: Path) -> None:
    RecordingWriter(tmp_path / "rec", source_url="test://").close()
    summary = summarize_recording(tmp_path / "rec")
    assert summary.device is None
    assert summary.streams == ()
    assert "no INFO" in summary.to_text()
    assert summary.to_json()["device"] is None


def test_to_text_names_the_streams_and_the_damage(tmp_path: Path) -> None:
    text = summarize_recording(_record_one_second(tmp_path / "rec")).to_text()
    lines = text.splitlines()
    assert any(line.startswith("device") and "dev-42" in line and "firmware 1.2.3" in line for line in lines)
    emg_line = next(line for line in lines if line.startswith("emg "))
    assert emg_line.split() == ["emg", "emg", "2000", "2", "1980", "1.000", "1", "20"]
    assert any(line.startswith("corrupt") and "1 frames (crc 1)" in line for line in lines)
    assert any("1 packets lost" in line for line in lines)
    assert any(line.split() == ["markers", "1"] for line in lines)
