"""The acquisition loop: every frame recorded, gaps as events, failing sinks detached, clean ends."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from biofeed.blocks import Block
from biofeed.errors import ProtocolVersionError, SourceLost
from biofeed.protocol import Packet, PacketType, encode_frame
from biofeed.record.reader import open_recording
from biofeed.record.writer import RecordingWriter
from biofeed.runner import Acquisition
from biofeed.sim.device import SimulatedDevice
from biofeed.sources.base import LinkEvent, LinkState, TimedChunk


class ListSource:
    """Yields prepared chunks, then ends (or raises what it was given)."""

    url = "test://list"

    def __init__(self, chunks: list[bytes], end_with: Exception | None = None) -> None:
        self._chunks = chunks
        self._end_with = end_with
        self.closed = False

    def chunks(self) -> Iterator[TimedChunk]:
        for i, data in enumerate(self._chunks):
            if self.closed:
                return
            yield TimedChunk(data, 1000.0 + i)
        if self._end_with is not None:
            raise self._end_with

    def close(self) -> None:
        self.closed = True


class CollectingSink:
    def __init__(self) -> None:
        self.items: list[object] = []
        self.closed = False

    def write(self, item: object) -> None:
        self.items.append(item)

    def close(self) -> None:
        self.closed = True


class ExplodingSink(CollectingSink):
    def write(self, item: object) -> None:
        raise RuntimeError("plot died")


def _device_bytes(duration_s: float = 3.0, seed: int = 3) -> bytes:
    return SimulatedDevice("rest", seed=seed, duration_s=duration_s).frames_until(duration_s)


def _chunked(data: bytes, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, len(data)), size=len(data) // 300, replace=False))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def _frames(data: bytes) -> list[bytes]:
    return [f for f in data.split(b"\x00") if f]


def test_every_frame_is_recorded_and_every_sample_delivered(tmp_path):
    data = _device_bytes()
    sink = CollectingSink()
    with RecordingWriter(tmp_path / "rec", source_url="test://list") as recorder:
        result = Acquisition(ListSource(_chunked(data)), recorder=recorder, sinks=[sink]).run()
    assert result.error is None and sink.closed
    recorded = [r.frame for r in open_recording(tmp_path / "rec").frames()]
    assert recorded == _frames(data)
    emg = [b for b in sink.items if isinstance(b, Block) and b.info.name == "emg"]
    assert sum(b.n_samples for b in emg) == 3 * 2000
    assert result.stats.streams["emg"].gaps == 0 and result.stats.corrupt_frames == 0
    assert result.device is not None and result.device.device_id


def test_a_lost_frame_becomes_a_gap_event(tmp_path):
    frames = _frames(_device_bytes())
    dropped = next(i for i, f in enumerate(frames) if i > 50 and len(f) > 120)  # an EMG block
    stream = b"".join(f + b"\x00" for i, f in enumerate(frames) if i != dropped)
    with RecordingWriter(tmp_path / "rec", source_url="test://list") as recorder:
        result = Acquisition(ListSource([stream]), recorder=recorder).run()
    gaps = [e for e in open_recording(tmp_path / "rec").events() if e["type"] == "gap"]
    assert len(gaps) == 1 and gaps[0]["stream"] == "emg" and gaps[0]["n_samples_lost"] == 20
    assert result.stats.streams["emg"].samples_lost == 20


def test_a_failing_sink_is_detached_and_acquisition_goes_on(tmp_path):
    good = CollectingSink()
    with RecordingWriter(tmp_path / "rec", source_url="test://list") as recorder:
        result = Acquisition(
            ListSource(_chunked(_device_bytes())), recorder=recorder, sinks=[ExplodingSink(), good]
        ).run()
    assert result.detached_sinks == ["ExplodingSink"]
    assert sum(b.n_samples for b in good.items if isinstance(b, Block) and b.info.name == "emg") == 6000
    assert any(e["type"] == "sink_detached" for e in open_recording(tmp_path / "rec").events())


def test_duration_is_in_device_seconds_for_every_stream():
    source = ListSource(_chunked(_device_bytes(6.0)))
    result = Acquisition(source, duration_s=2.0).run()
    for stream in result.stats.streams.values():
        assert 2.0 * stream.sample_rate_hz <= stream.n_samples < 2.2 * stream.sample_rate_hz
    assert source.closed


def test_a_lost_device_keeps_everything_before_it(tmp_path):
    data = _device_bytes()
    source = ListSource(_chunked(data), end_with=SourceLost("serial:///dev/x: device went away"))
    with RecordingWriter(tmp_path / "rec", source_url="test://list") as recorder:
        result = Acquisition(source, recorder=recorder).run()
    assert isinstance(result.error, SourceLost)
    recording = open_recording(tmp_path / "rec")
    assert [r.frame for r in recording.frames()] == _frames(data)
    assert any(e["type"] == "acquisition_error" for e in recording.events())


def test_a_device_of_another_major_version_is_refused():
    frames = [encode_frame(Packet(PacketType.EMG, 1, seq, 0, b"\x01\x02", version=(2, 0))) for seq in range(5)]
    result = Acquisition(ListSource(frames)).run()
    assert isinstance(result.error, ProtocolVersionError)
    assert "2.0" in str(result.error)


def test_bad_duration_is_refused():
    with pytest.raises(ValueError, match="positive"):
        Acquisition(ListSource([]), duration_s=0)


def test_worker_thread_returns_the_result():
    acquisition = Acquisition(ListSource(_chunked(_device_bytes(1.0))))
    acquisition.start()
    result = acquisition.wait()
    assert result.stats.streams["emg"].n_samples == 2000
    assert acquisition.join(0)


class FlakyLinkSource(ListSource):
    """Drops its link once between two halves of the stream, then comes back."""

    def __init__(self, first: list[bytes], second: list[bytes]) -> None:
        super().__init__([])
        self._first, self._second = first, second

    def chunks(self) -> Iterator[TimedChunk]:
        yield TimedChunk(b"", 0.0, LinkEvent(LinkState.CONNECTED))
        yield from (TimedChunk(c, 1.0) for c in self._first)
        yield TimedChunk(b"", 2.0, LinkEvent(LinkState.LOST, "link dropped"))
        yield TimedChunk(b"", 2.5, LinkEvent(LinkState.RECONNECTING, "attempt failed", attempt=1))
        yield TimedChunk(b"", 3.0, LinkEvent(LinkState.CONNECTED, attempt=2))
        yield from (TimedChunk(c, 4.0) for c in self._second)


def test_link_events_are_recorded_and_reconnects_counted(tmp_path):
    frames = _frames(_device_bytes())
    half = len(frames) // 2
    lost = 30  # frames sent while the link was down
    source = FlakyLinkSource([f + b"\x00" for f in frames[:half]], [f + b"\x00" for f in frames[half + lost :]])
    with RecordingWriter(tmp_path / "rec", source_url="test://flaky") as recorder:
        result = Acquisition(source, recorder=recorder).run()
    assert result.reconnects == 1
    links = [e for e in open_recording(tmp_path / "rec").events() if e["type"] == "link"]
    assert [e["state"] for e in links] == ["connected", "lost", "reconnecting", "connected"]
    assert result.stats.streams["emg"].gaps == 1 and result.stats.streams["emg"].samples_lost > 0
