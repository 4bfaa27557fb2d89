"""The device going away and coming back, and going quiet: the session goes on, gaps are marked, nothing before is lost.

- the serial board unplugged (its pseudo-terminal's master closed, its path removed) and plugged
  back in (a new pseudo-terminal at the same path, as udev re-creates ``/dev/serial/by-id/...``);
- the BLE link dropping every 2 s, through unmodified bleak and the fake BlueZ, under ``biofeed record``;
- the source stalling for 10 s (on an injected clock: no real wait): the recording is fsynced while
  the device is quiet, and the acquisition resumes when the data does.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from biofeed import cli
from biofeed.blocks import Block, LinkEvent, LinkState
from biofeed.pipeline import Pipeline
from biofeed.protocol.decoder import Decoder, StreamStats
from biofeed.record.frames_file import FILE_HEADER_SIZE, RECORD_OVERHEAD
from biofeed.record.reader import open_recording
from biofeed.record.writer import RecordingWriter
from biofeed.runner import Acquisition, SinkItem
from biofeed.sim.device import SimulatedDevice
from biofeed.sources.base import TimedChunk
from biofeed.sources.serial import SerialSource
from tests.faults.wire import frames_of

_TIMEOUT_S = 60.0
"""Longest wait for the acquisition to reach a point: a failure, never a hang."""


def _emg_stats(frames: list[bytes]) -> StreamStats:
    decoder = Decoder()
    for frame in frames:
        decoder.decode_frame(frame)
    return decoder.stats.streams["emg"]


def _emg_end(frames: list[bytes]) -> int:
    end = _emg_stats(frames).end_index
    assert end is not None
    return end


class Watch:
    """A sink that lets the test wait for the acquisition to reach a sample or a link state."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.emg_end = 0
        self.links: list[LinkState] = []

    def write(self, item: SinkItem) -> None:
        with self._changed:
            if isinstance(item, Block) and item.info.name == "emg":
                self.emg_end = item.first_index + item.n_samples
            elif isinstance(item, LinkEvent):
                self.links.append(item.state)
            self._changed.notify_all()

    def close(self) -> None:
        pass

    def wait_for(self, condition: Callable[[Watch], bool]) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: condition(self), _TIMEOUT_S), "the acquisition did not get there"


class Board:
    """The simulated board behind a pseudo-terminal reached through a stable path (a symlink)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.device = SimulatedDevice("pandiculation", seed=9, duration_s=60)
        self._fds: list[int] = []
        self.plug_in()

    def plug_in(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        self._fds += [master, slave]
        self.master = master
        self.path.unlink(missing_ok=True)
        self.path.symlink_to(os.ttyname(slave))

    def unplug(self) -> None:
        os.close(self.master)
        self._fds.remove(self.master)
        self.path.unlink()

    def send_until(self, device_time_s: float) -> list[bytes]:
        wire = self.device.frames_until(device_time_s)
        view = memoryview(wire)
        while view:
            view = view[os.write(self.master, view) :]
        return frames_of(wire)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Board]:
    device_board = Board(tmp_path / "ttyBIOFEED")
    yield device_board
    device_board.close()


def test_a_serial_board_unplugged_and_plugged_back_is_reopened_and_the_loss_marked(
    tmp_path: Path, board: Board
) -> None:
    attempts = []

    def between_attempts(seconds: float) -> bool:
        attempts.append(seconds)
        if len(attempts) == 2:  # after one failed attempt, the board is back
            board.plug_in()
        return False

    source = SerialSource(str(board.path), max_reconnects=5, max_backoff_s=0.05, wait=between_attempts)
    watch = Watch()
    with RecordingWriter(tmp_path / "rec", source_url=source.url) as recorder:
        acquisition = Acquisition(source, recorder=recorder, sinks=[watch], pipeline=Pipeline())
        acquisition.start()
        before = board.send_until(2.0)
        watch.wait_for(lambda w: w.emg_end >= _emg_end(before))
        board.unplug()
        board.device.frames_until(3.0)  # sampled while unplugged: lost
        watch.wait_for(lambda w: LinkState.CONNECTED in w.links)
        after = board.send_until(5.0)
        watch.wait_for(lambda w: w.emg_end >= _emg_end(before + after))
        acquisition.stop()
        result = acquisition.wait()
        recorder.close()

    assert result.error is None and result.reconnects == 1
    assert watch.links == [LinkState.LOST, LinkState.RECONNECTING, LinkState.RECONNECTING, LinkState.CONNECTED]
    recording = open_recording(tmp_path / "rec")
    assert [r.frame for r in recording.frames() if r.frame] == before + after  # nothing before the loss is lost
    events = list(recording.events())
    links = [(e["state"], e["attempt"]) for e in events if e["type"] == "link"]
    assert links == [("lost", 0), ("reconnecting", 1), ("reconnecting", 2), ("connected", 2)]
    gaps = [e for e in events if e["type"] == "gap" and e["stream"] == "emg"]
    lost = _emg_stats(before + after).samples_lost
    assert [g["n_samples_lost"] for g in gaps] == [lost] and lost >= 1900  # the unplugged second


def test_a_serial_board_that_stays_away_ends_the_run_with_one_clear_error(tmp_path: Path, board: Board) -> None:
    source = SerialSource(str(board.path), max_reconnects=3, max_backoff_s=0.0)
    watch = Watch()
    with RecordingWriter(tmp_path / "rec", source_url=source.url) as recorder:
        acquisition = Acquisition(source, recorder=recorder, sinks=[watch])
        acquisition.start()
        before = board.send_until(1.0)
        watch.wait_for(lambda w: w.emg_end >= _emg_end(before))
        board.unplug()
        result = acquisition.wait()
        recorder.close()
    assert result.error is not None
    assert "went away and 3 attempts to reopen it failed (no such port" in str(result.error)
    recording = open_recording(tmp_path / "rec")
    assert [r.frame for r in recording.frames() if r.frame] == before
    assert [e["error"] for e in recording.events() if e["type"] == "acquisition_error"] == ["SourceLost"]


@pytest.mark.skipif(shutil.which("dbus-daemon") is None, reason="needs dbus-daemon (apt install dbus-daemon)")
def test_ble_link_drops_under_biofeed_record_keep_every_sample_delivered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from biofeed.sim.bluez import FakeBluez
    from biofeed.sim.bluez_bus import PrivateBus

    with PrivateBus() as bus:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)  # where bleak looks for BlueZ
        device = SimulatedDevice("rest", seed=4, duration_s=60)
        fake = FakeBluez(device, bus_address=bus.address, speed=4.0, drop_every_s=2.0, keep_sent=True)
        fake.start()
        try:
            url = f"ble://{fake.name}?timeout=5&backoff=0.05"
            code = cli.main(["record", "--device", url, "--out", str(tmp_path / "rec"), "--duration", "8"])
        finally:
            fake.stop()
    assert code == 0
    # what bleak delivered, per connection, with the 0x00 the source adds where each link dropped
    expected = [b for b in Decoder().feed(b"\x00".join(bytes(s) for s in fake.sent)) if isinstance(b, Block)]
    recorded = Decoder()
    blocks = []
    for record in open_recording(tmp_path / "rec").frames():
        blocks += [i for i in recorded.decode_frame(record.frame) if isinstance(i, Block)]
    ends = {name: s.end_index or 0 for name, s in recorded.stats.streams.items()}
    assert [(b.info.name, b.first_index) for b in blocks] == [
        (b.info.name, b.first_index) for b in expected if b.first_index < ends[b.info.name]
    ]
    capsys.readouterr()
    assert cli.main(["info", "--json", str(tmp_path / "rec")]) == 0
    info = json.loads(capsys.readouterr().out)
    emg = next(s for s in info["streams"] if s["name"] == "emg")
    assert info["reconnects"] >= 2 and emg["gaps"] == info["reconnects"] and emg["samples_lost"] > 0
    assert emg["duration_s"] >= 8.0


class StallingSource:
    """The simulated board on an injected host clock, silent for ``stall_s`` from ``stall_at_s``.

    While stalled it yields idle chunks every 20 ms of (fake) host time, as a quiet serial port
    does; what the device sampled meanwhile is lost (``lose=True``) or arrives late in one burst.
    """

    url = "sim://pandiculation?seed=2"

    def __init__(self, clock: list[float], *, stall_at_s: float, stall_s: float, end_s: float, lose: bool) -> None:
        self.device = SimulatedDevice("pandiculation", seed=2, duration_s=60)
        self.sent: list[bytes] = []
        self.n_sent_before_stall = 0
        self._clock = clock
        self._stall = (stall_at_s, stall_at_s + stall_s)
        self._end_s = end_s
        self._lose = lose

    def chunks(self) -> Iterator[TimedChunk]:
        step_s = 0.02
        for k in range(1, round(self._end_s / step_s) + 1):
            now = self._clock[0] = k * step_s
            if self._stall[0] < now <= self._stall[1] + 1e-9:
                self.n_sent_before_stall = self.n_sent_before_stall or len(self.sent)
                yield TimedChunk(b"", now)
                continue
            if self._lose and now > self._stall[1]:
                self.device.frames_until(self._stall[1])  # sampled while the link was stalled: lost
            data = self.device.frames_until(now)
            self.sent += frames_of(data)
            yield TimedChunk(data, now)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("lose", [True, False], ids=["data-lost", "data-late"])
def test_a_source_stalling_for_10_s_is_synced_meanwhile_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lose: bool
) -> None:
    clock = [0.0]
    syncs: list[tuple[float, int]] = []  # (clock, size of frames.bin) at each fsync of it
    real_fsync = os.fsync

    def spy_fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("frames.bin"):
            syncs.append((clock[0], os.fstat(fd).st_size))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    source = StallingSource(clock, stall_at_s=2.0, stall_s=10.0, end_s=14.0, lose=lose)
    with RecordingWriter(tmp_path / "rec", source_url=source.url, clock=lambda: clock[0]) as recorder:
        result = Acquisition(source, recorder=recorder, pipeline=Pipeline()).run()
        recorder.close()
    assert result.error is None

    recording = open_recording(tmp_path / "rec")
    assert [r.frame for r in recording.frames()] == source.sent  # nothing before, during or after is lost
    # within a second of going quiet, everything that had arrived was fsynced
    before = source.sent[: source.n_sent_before_stall]
    size_before = FILE_HEADER_SIZE + sum(RECORD_OVERHEAD + len(frame) for frame in before)
    assert size_before in [size for at, size in syncs if 2.0 < at <= 3.0 + 1e-9]
    emg = _emg_stats(source.sent)
    gaps = [e for e in recording.events() if e["type"] == "gap" and e["stream"] == "emg"]
    if lose:
        assert [g["n_samples_lost"] for g in gaps] == [emg.samples_lost] and emg.samples_lost >= 19_900
    else:
        assert gaps == [] and emg.samples_lost == 0
    assert emg.end_index is not None and emg.end_index >= 13.9 * 2000  # it went on after the stall


def test_serial_urls_take_reconnect_and_backoff(board: Board) -> None:
    from biofeed.sources import open_source

    source = open_source(f"serial://{board.path}?reconnect=3&backoff=0.5")
    assert source.url == f"serial://{board.path}?baud=921600&reconnect=3&backoff=0.5"
    source.close()
    with pytest.raises(ValueError, match="reconnect=-1 must be at least 0"):
        open_source(f"serial://{board.path}?reconnect=-1")
    with pytest.raises(ValueError, match="backoff=inf must be a finite number"):
        open_source(f"serial://{board.path}?backoff=inf")
    with pytest.raises(ValueError, match="allowed: backoff, baud, reconnect"):
        open_source(f"serial://{board.path}?retries=3")
