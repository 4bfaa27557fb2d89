import json
import os
import termios
import threading

import pytest

from biofeed.errors import RecordingError
from biofeed.protocol.decoder import Decoder
from biofeed.record.reader import open_recording
from biofeed.sim.device import SimulatedDevice
from biofeed.sim.outputs import open_pty, stream_to_fd, write_recording, write_truth


def _expected(**kwargs) -> bytes:
    return SimulatedDevice("mixed", seed=5, duration_s=3.0, **kwargs).frames_until(1e9)


def _device(**kwargs) -> SimulatedDevice:
    return SimulatedDevice("mixed", seed=5, duration_s=3.0, **kwargs)


def _read_all(fd: int, n_bytes: int, out: bytearray) -> None:
    while len(out) < n_bytes:
        try:
            data = os.read(fd, 65536)
        except OSError:
            return
        if not data:
            return
        out.extend(data)


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def clock(self) -> float:
        return self.now_s

    def wait(self, seconds: float) -> bool:
        self.now_s += seconds
        return False


def test_stream_to_a_pipe_as_fast_as_possible_writes_every_byte():
    expected = _expected()
    read_fd, write_fd = os.pipe()
    received = bytearray()
    reader = threading.Thread(target=_read_all, args=(read_fd, len(expected), received))
    reader.start()
    try:
        report = stream_to_fd(_device(), write_fd, realtime=False)
    finally:
        os.close(write_fd)
        reader.join(timeout=10)
        os.close(read_fd)
    assert bytes(received) == expected
    assert (report.n_bytes_written, report.n_bytes_dropped, report.ended_by) == (len(expected), 0, "finished")


def test_real_time_stream_is_paced_by_the_clock():
    expected = _expected()
    read_fd, write_fd = os.pipe()
    received = bytearray()
    reader = threading.Thread(target=_read_all, args=(read_fd, len(expected), received))
    reader.start()
    fake = FakeClock()
    try:
        report = stream_to_fd(_device(clock_ppm=1000.0), write_fd, realtime=True, clock=fake.clock, wait=fake.wait)
    finally:
        os.close(write_fd)
        reader.join(timeout=10)
        os.close(read_fd)
    assert bytes(received) == expected and report.ended_by == "finished"
    assert fake.now_s == pytest.approx(3.0 / 1.001)


def test_a_reader_that_went_away_ends_it_cleanly():
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    try:
        report = stream_to_fd(_device(), write_fd, realtime=False)
    finally:
        os.close(write_fd)
    assert report.ended_by == "reader_gone" and report.n_bytes_written == 0


def test_a_stop_request_ends_it():
    read_fd, write_fd = os.pipe()
    stop = threading.Event()
    stop.set()
    try:
        report = stream_to_fd(_device(), write_fd, realtime=True, wait=stop.wait)
    finally:
        os.close(write_fd)
        os.close(read_fd)
    assert report.ended_by == "stopped" and report.n_bytes_written == 0


def test_pty_carries_every_byte_untranslated():
    expected = _expected()
    assert b"\r" in expected and b"\n" in expected  # bytes a cooked terminal would translate
    master_fd, slave_path = open_pty()
    slave_fd = os.open(slave_path, os.O_RDONLY | os.O_NOCTTY)
    received = bytearray()
    reader = threading.Thread(target=_read_all, args=(slave_fd, len(expected), received))
    reader.start()
    idle = threading.Event()
    try:
        attributes = termios.tcgetattr(slave_fd)
        assert not attributes[3] & (termios.ECHO | termios.ICANON)
        assert not attributes[0] & (termios.ICRNL | termios.INLCR)
        assert not attributes[1] & termios.OPOST
        report = stream_to_fd(_device(), master_fd, realtime=False, wait=idle.wait)
        reader.join(timeout=10)
    finally:
        os.close(master_fd)
        reader.join(timeout=10)
        os.close(slave_fd)
    assert report.ended_by == "finished"
    assert bytes(received) == expected


def test_real_time_pty_without_a_reader_drops_instead_of_hanging():
    master_fd, _ = open_pty()
    fake = FakeClock()
    try:
        device = SimulatedDevice("rest", seed=0, duration_s=20.0)
        report = stream_to_fd(device, master_fd, realtime=True, clock=fake.clock, wait=fake.wait)
    finally:
        os.close(master_fd)
    assert report.ended_by == "finished" and device.finished
    assert report.n_bytes_written > 0 and report.n_bytes_dropped > 0


def test_write_recording_gives_a_folder_the_reader_and_decoder_accept(tmp_path):
    device = _device(clock_ppm=200.0)
    path = write_recording(device, tmp_path / "rec")
    recording = open_recording(path)
    assert recording.meta["device"] is not None and recording.meta["closed"] is not None
    assert recording.meta["source_url"] == device.url
    decoder = Decoder()
    records = list(recording.frames())
    for record in records:
        decoder.decode_frame(record.frame, record.received_at)
    assert recording.torn_tail_bytes == 0
    stats = decoder.stats
    assert stats.corrupt_frames == 0 and stats.lost_packets == 0
    assert stats.streams["emg"].n_samples == 6000 and stats.streams["imu_sacral"].n_samples == 300
    assert b"".join(r.frame + b"\x00" for r in records) == _expected(clock_ppm=200.0)[1:]
    times = [r.received_at for r in records]
    assert times == sorted(times)
    assert times[-1] - times[0] == pytest.approx(3.0 / 1.0002, abs=1e-6)


def test_write_recording_refuses_a_folder_in_use(tmp_path):
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "other.txt").write_text("x")
    with pytest.raises(RecordingError):
        write_recording(_device(), tmp_path / "rec")


def test_write_truth_writes_the_truth_as_json(tmp_path):
    device = _device()
    path = write_truth(device, tmp_path / "truth.json")
    assert json.loads(path.read_text()) == device.truth()
