"""ReplaySource: the recorded frames, exactly, paced by their receive times on an injected clock."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest

from biofeed.blocks import Block
from biofeed.errors import RecordingError
from biofeed.protocol.decoder import Decoder
from biofeed.sources import Source, open_source
from biofeed.sources.base import SourceUrl, TimedChunk
from biofeed.sources.replay import ReplaySource
from tests.record.recording_factory import EMG, IMU, FrameFactory, random_frames, write_recording


class FakeTime:
    """A clock that only moves when the replay waits (or the test moves it)."""

    def __init__(self) -> None:
        self.now_s = 50.0
        self.waits_s: list[float] = []

    def clock(self) -> float:
        return self.now_s

    def wait(self, seconds: float) -> None:
        self.waits_s.append(seconds)
        self.now_s += seconds


def _device_frames() -> list[tuple[bytes, float]]:
    factory = FrameFactory(seed=2)
    frames = [factory.info()]
    for k in range(20):
        frames.append(factory.samples(EMG, 20 * k, 20))
        if k % 5 == 0:
            frames.append(factory.samples(IMU, k, 5))
    return [(frame, 1.7e9 + 0.01 * i) for i, frame in enumerate(frames)]


def test_replay_yields_exactly_the_recorded_frames(tmp_path: Path) -> None:
    frames = random_frames(seed=3, n_frames=50)
    source = ReplaySource(write_recording(tmp_path / "rec", frames))
    assert isinstance(source, Source)
    assert list(source.chunks()) == [TimedChunk(f + b"\x00", t) for f, t in frames]


def test_replay_decodes_like_the_live_stream(tmp_path: Path) -> None:
    frames = _device_frames()
    live = Decoder()
    live_items = [item for f, t in frames for item in live.feed(f + b"\x00", t)]
    replayed = Decoder()
    replay_items = [
        item
        for chunk in ReplaySource(write_recording(tmp_path / "rec", frames)).chunks()
        for item in replayed.feed(chunk.data, chunk.received_at)
    ]
    live_blocks = [i for i in live_items if isinstance(i, Block)]
    replay_blocks = [i for i in replay_items if isinstance(i, Block)]
    assert len(replay_blocks) == len(live_blocks) == 24
    for a, b in zip(live_blocks, replay_blocks, strict=True):
        assert (a.info, a.first_index, a.gap_before, a.received_at) == (
            b.info,
            b.first_index,
            b.gap_before,
            b.received_at,
        )
        np.testing.assert_array_equal(a.data, b.data)
    assert replayed.stats == live.stats


@pytest.mark.parametrize(("speed", "expected_waits_s"), [(1.0, [0.5, 1.5, 0.25]), (2.0, [0.25, 0.75, 0.125])])
def test_pacing_follows_the_recorded_receive_times(tmp_path: Path, speed: float, expected_waits_s: list[float]) -> None:
    times = [1000.0, 1000.5, 1002.0, 1002.0, 1002.25]
    frames = [(bytes([i + 1]), t) for i, t in enumerate(times)]
    fake = FakeTime()
    source = ReplaySource(write_recording(tmp_path / "rec", frames), speed, clock=fake.clock, wait=fake.wait)
    yielded_at_s = []
    for chunk in source.chunks():
        yielded_at_s.append(fake.now_s)
        assert chunk.received_at == times[len(yielded_at_s) - 1]
    assert fake.waits_s == pytest.approx(expected_waits_s)
    assert [t - yielded_at_s[0] for t in yielded_at_s] == pytest.approx([(t - times[0]) / speed for t in times])


def test_a_slow_consumer_is_not_made_to_wait_more(tmp_path: Path) -> None:
    frames = [(b"\x01", 0.0), (b"\x02", 1.0), (b"\x03", 2.0)]
    fake = FakeTime()
    source = ReplaySource(write_recording(tmp_path / "rec", frames), 1.0, clock=fake.clock, wait=fake.wait)
    for _ in source.chunks():
        fake.now_s += 1.5  # the consumer takes longer than the recording did
    assert fake.waits_s == []


def test_speed_zero_never_waits_and_unusable_times_are_not_paced(tmp_path: Path) -> None:
    frames = [(b"\x01", 0.0), (b"\x02", math.nan), (b"\x03", 5.0)]
    path = write_recording(tmp_path / "rec", frames)
    fake = FakeTime()
    assert len(list(ReplaySource(path, 0.0, clock=fake.clock, wait=fake.wait).chunks())) == 3
    assert fake.waits_s == []
    assert len(list(ReplaySource(path, 1.0, clock=fake.clock, wait=fake.wait).chunks())) == 3
    assert fake.waits_s == [5.0]


def test_close_during_a_wait_stops_the_replay(tmp_path: Path) -> None:
    frames = [(b"\x01", 0.0), (b"\x02", 10.0), (b"\x03", 20.0)]
    fake = FakeTime()
    source = ReplaySource(
        write_recording(tmp_path / "rec", frames), 1.0, clock=fake.clock, wait=lambda s: source.close()
    )
    assert [c.data for c in source.chunks()] == [b"\x01\x00"]
    assert fake.waits_s == []


def test_close_between_chunks_stops_the_replay(tmp_path: Path) -> None:
    source = ReplaySource(write_recording(tmp_path / "rec", random_frames(seed=1, n_frames=10)))
    chunks = source.chunks()
    next(chunks)
    source.close()
    source.close()
    assert list(chunks) == []


def test_close_from_another_thread_interrupts_the_default_wait(tmp_path: Path) -> None:
    # the second frame is due in 11 days: only close() can end the wait
    frames = [(b"\x01", 0.0), (b"\x02", 1e6)]
    source = ReplaySource(write_recording(tmp_path / "rec", frames), 1.0)
    first_taken = threading.Event()
    received: list[TimedChunk] = []

    def consume() -> None:
        for chunk in source.chunks():
            received.append(chunk)
            first_taken.set()

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    assert first_taken.wait(10.0)
    source.close()
    worker.join(10.0)
    assert not worker.is_alive()
    assert [c.data for c in received] == [b"\x01\x00"]


def test_from_url(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "rec", random_frames(seed=1, n_frames=3))
    source = open_source(f"replay://{path}?speed=2.5")
    assert isinstance(source, ReplaySource)
    assert source.url == f"replay://{path}?speed=2.5"
    assert len(list(source.chunks())) == 3
    assert ReplaySource.from_url(SourceUrl.parse(f"replay://{path}")).url == f"replay://{path}?speed=0"


@pytest.mark.parametrize(
    ("query", "message"),
    [("?speed=-1", "at least 0"), ("?speed=fast", "not a number"), ("?rate=2", "does not take rate")],
)
def test_bad_url_parameters_are_value_errors(tmp_path: Path, query: str, message: str) -> None:
    path = write_recording(tmp_path / "rec", [])
    with pytest.raises(ValueError, match=message):
        open_source(f"replay://{path}{query}")


def test_bad_arguments(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "rec", [])
    for speed in (-0.5, math.inf, math.nan):
        with pytest.raises(ValueError, match="speed"):
            ReplaySource(path, speed)
    with pytest.raises(ValueError, match="needs a recording folder"):
        open_source("replay://")
    with pytest.raises(RecordingError, match=r"no recording\.json"):
        ReplaySource(tmp_path)
