"""lsl:// against plain pylsl outlets in the same process (loopback), and the time-stamp gap detector."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pylsl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeed.blocks import Block, ChannelKind, DeviceInfo
from biofeed.errors import DeviceNotFoundError, SourceError, SourceLost
from biofeed.protocol.decoder import Decoder
from biofeed.record.reader import open_recording
from biofeed.record.writer import RecordingWriter
from biofeed.runner import Acquisition
from biofeed.sinks.lsl_outlet import LslOutletSink
from biofeed.sources.base import SourceUrl, TimedChunk
from biofeed.sources.lsl import LslSource, TimestampGapDetector
from biofeed.sources.sample_frames import RESOLUTION_BY_KIND

MAX_CHUNKS = 2000  # bounds every loop over chunks(): each pull waits at most 50 ms


def unique_name(tag: str) -> str:
    return f"test-lsl-{tag}-{os.getpid()}"


def make_outlet(
    name: str,
    rate_hz: float,
    labels: list[str],
    *,
    stream_type: str = "EMG",
    units: list[str] | None = None,
    types: list[str] | None = None,
    channel_format: int = pylsl.cf_float32,
) -> Any:
    info = pylsl.StreamInfo(name, stream_type, len(labels), rate_hz, channel_format, f"{name}-src")
    channels = info.desc().append_child("channels")
    for k, label in enumerate(labels):
        channel = channels.append_child("channel")
        channel.append_child_value("label", label)
        if units is not None:
            channel.append_child_value("unit", units[k])
        if types is not None:
            channel.append_child_value("type", types[k])
        channel.append_child_value("site", f"site {label}")
    return pylsl.StreamOutlet(info)


def open_lsl(name: str, query: str = "") -> LslSource:
    return LslSource.from_url(SourceUrl.parse(f"lsl://{name}?timeout=5{query}"))


def decode_until(chunks: Iterator[TimedChunk], decoder: Decoder, stream: str, end_index: int) -> list[Block]:
    """Feed chunks to the decoder until the stream's samples reach end_index (or the bound)."""
    blocks: list[Block] = []
    for _ in range(MAX_CHUNKS):
        stats = decoder.stats.streams.get(stream)
        if stats is not None and stats.end_index is not None and stats.end_index >= end_index:
            break
        chunk = next(chunks)
        blocks += [i for i in decoder.feed(chunk.data) if isinstance(i, Block)]
    return blocks


def test_samples_arrive_in_uv_with_channel_metadata() -> None:
    name = unique_name("meta")
    rate_hz = 500.0
    outlet = make_outlet(name, rate_hz, ["left", "right", "mid"], units=["millivolts", "uV", "V"], types=["EMG"] * 3)
    source = open_lsl(name)
    rng = np.random.default_rng(5)
    sent = rng.normal(0, 0.1, (1000, 3)) * np.array([1.0, 100.0, 1e-4])  # mV, uV, V: all about 100 uV
    stamps = 100.0 + np.arange(1000) / rate_hz
    outlet.push_chunk(sent.astype(np.float32), list(stamps))
    decoder = Decoder()
    chunks = source.chunks()
    blocks = decode_until(chunks, decoder, "emg", 1000)
    source.close()
    assert list(chunks) == []  # closed: the generator ends
    device = decoder.device_info
    assert device is not None and device.device_id == f"lsl:{name}-src" and device.board_profile == "lsl"
    (emg,) = device.streams
    assert emg.sample_rate_hz == rate_hz
    assert [(c.name, c.kind, c.unit, c.site) for c in emg.channels] == [
        ("left", ChannelKind.EMG, "uV", "site left"),
        ("right", ChannelKind.EMG, "uV", "site right"),
        ("mid", ChannelKind.EMG, "uV", "site mid"),
    ]
    got = np.concatenate([b.data for b in blocks], axis=1)
    expected = sent.astype(np.float32).astype(np.float64).T * np.array([[1e3], [1.0], [1e6]])
    assert got.shape == (3, 1000)
    np.testing.assert_allclose(got, expected, atol=RESOLUTION_BY_KIND[ChannelKind.EMG] / 2 + 1e-9)
    assert decoder.stats.streams["emg"].gaps == 0
    assert decoder.stats.corrupt_frames == 0
    assert source.first_stamp_s == 100.0


def test_our_own_outlet_read_back_keeps_names_units_and_sites() -> None:
    """biofeed's LSL outlet, read by lsl://, gives the same channels and samples."""
    from biofeed.blocks import ChannelInfo, StreamInfo

    prefix = f"{unique_name('own')}-"
    info = StreamInfo(
        "imu_thoracic",
        100.0,
        (ChannelInfo("acc_x", ChannelKind.ACC, "g", "T8"), ChannelInfo("gyro_x", ChannelKind.GYRO, "deg/s", "T8")),
        device_id="dev-9",
    )
    sink = LslOutletSink(name_prefix=prefix)
    sink.write(DeviceInfo("dev-9", (1, 0, 0), "simulator", (info,)))
    source = open_lsl(f"{prefix}imu_thoracic")
    rng = np.random.default_rng(2)
    data = np.vstack([rng.uniform(-2, 2, 50), rng.uniform(-250, 250, 50)])
    for k in range(5):
        sink.write(Block(info, data[:, 10 * k : 10 * k + 10], 10 * k))
    decoder = Decoder()
    blocks = decode_until(source.chunks(), decoder, "imu", 50)
    source.close()
    sink.close()
    assert decoder.device_info is not None
    (imu,) = decoder.device_info.streams
    assert [(c.name, c.kind, c.unit, c.site) for c in imu.channels] == [
        ("acc_x", ChannelKind.ACC, "g", "T8"),
        ("gyro_x", ChannelKind.GYRO, "deg/s", "T8"),
    ]
    got = np.concatenate([b.data for b in blocks], axis=1)
    resolution = np.array([[RESOLUTION_BY_KIND[ChannelKind.ACC]], [RESOLUTION_BY_KIND[ChannelKind.GYRO]]])
    assert np.all(np.abs(got - data.astype(np.float32)) <= resolution / 2 + 1e-9)


def test_recorded_through_the_runner_and_replayed_the_same(tmp_path: Path) -> None:
    name = unique_name("record")
    rate_hz = 250.0
    outlet = make_outlet(name, rate_hz, ["a", "b"])
    source = open_lsl(name, "&buffer=5")
    sent = np.random.default_rng(8).normal(0, 50, (500, 2)).astype(np.float32)
    outlet.push_chunk(sent, list(10.0 + np.arange(500) / rate_hz))
    out = tmp_path / "rec"
    with RecordingWriter(out, source_url=source.url) as recorder:
        result = Acquisition(source, recorder=recorder, duration_s=2.0).run()
        recorder.close()
    assert result.error is None
    stats = result.stats.streams["emg"]
    assert (stats.n_samples, stats.gaps, result.stats.corrupt_frames) == (500, 0, 0)
    replayed = Decoder()
    blocks = [
        item
        for record in open_recording(out).frames()
        for item in replayed.decode_frame(record.frame)
        if isinstance(item, Block)
    ]
    got = np.concatenate([b.data for b in blocks], axis=1)
    np.testing.assert_allclose(got, sent.T, atol=RESOLUTION_BY_KIND[ChannelKind.EMG] / 2 + 1e-6)


def test_a_consumer_that_falls_behind_sees_a_gap() -> None:
    """The inlet holds 1 s; 5 s pushed while nobody pulls: the oldest samples go, and show as a gap."""
    name = unique_name("slow")
    rate_hz = 200.0
    outlet = make_outlet(name, rate_hz, ["x"])
    source = open_lsl(name, "&buffer=1")
    witness = pylsl.StreamInlet(pylsl.resolve_byprop("name", name, timeout=5)[0], max_buflen=60)
    witness.open_stream(timeout=5)
    values = np.arange(1100, dtype=np.float32)[:, None]  # value = sample number
    stamps = 50.0 + np.arange(1100) / rate_hz
    decoder = Decoder()
    chunks = source.chunks()
    outlet.push_chunk(values[:100], list(stamps[:100]))
    blocks = decode_until(chunks, decoder, "emg", 100)
    outlet.push_chunk(values[100:], list(stamps[100:]))
    # Not pulling through the source: wait until a second inlet has the whole burst, so it has arrived.
    seen = 0
    for _ in range(MAX_CHUNKS):
        if seen >= 1100:
            break
        seen += len(witness.pull_chunk(timeout=1.0, max_samples=2000, min_samples=1)[1])
    blocks += decode_until(chunks, decoder, "emg", 1100)
    source.close()
    stats = decoder.stats.streams["emg"]
    assert stats.gaps >= 1
    assert stats.samples_lost >= 1100 - 100 - 2 * int(rate_hz)  # at most the 1 s buffer (and a chunk) kept
    assert stats.n_samples + stats.samples_lost == 1100
    for block in blocks:  # every delivered sample sits at its own index: value == index
        np.testing.assert_allclose(block.data[0], np.arange(block.first_index, block.end_index), atol=0.0125)


def test_a_stream_that_goes_away_raises_source_lost() -> None:
    name = unique_name("lost")
    outlet = make_outlet(name, 100.0, ["x"])
    source = open_lsl(name)
    chunks = source.chunks()
    next(chunks)  # INFO
    del outlet
    with pytest.raises(SourceLost):
        for _ in range(MAX_CHUNKS):
            next(chunks)


def test_kind_override_and_units_of_motion() -> None:
    name = unique_name("kind")
    outlet = make_outlet(name, 100.0, ["ax", "ay"], stream_type="Misc", units=["m/s^2", "g"])
    source = open_lsl(name, "&kind=acc")
    outlet.push_chunk(np.array([[9.80665, 1.0]] * 10, dtype=np.float32), list(np.arange(10) / 100.0))
    decoder = Decoder()
    blocks = decode_until(source.chunks(), decoder, "imu", 10)
    source.close()
    got = np.concatenate([b.data for b in blocks], axis=1)
    np.testing.assert_allclose(got, 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stream_type": "Markers", "channel_format": pylsl.cf_string}, "string"),
        ({"stream_type": "Pressure"}, "kind="),
        ({"units": ["furlongs"]}, "known units"),
    ],
)
def test_streams_biofeed_cannot_carry_are_refused(kwargs: dict[str, Any], message: str) -> None:
    name = unique_name(f"refuse-{message[:4]}")
    outlet = make_outlet(name, 100.0, ["x"], **kwargs)
    with pytest.raises(SourceError, match=message):
        open_lsl(name)
    del outlet


def test_irregular_rate_is_refused() -> None:
    name = unique_name("irregular")
    outlet = make_outlet(name, pylsl.IRREGULAR_RATE, ["x"])
    with pytest.raises(SourceError, match="irregular"):
        open_lsl(name)
    del outlet


def test_url_errors() -> None:
    with pytest.raises(DeviceNotFoundError, match="no Lab Streaming Layer stream"):
        LslSource.from_url(SourceUrl.parse(f"lsl://{unique_name('absent')}?timeout=0.2"))
    with pytest.raises(ValueError, match="allowed"):
        LslSource.from_url(SourceUrl.parse("lsl://x?rate=3"))
    with pytest.raises(ValueError, match="kind"):
        LslSource.from_url(SourceUrl.parse("lsl://x?kind=eeg"))
    with pytest.raises(ValueError, match="at least 1"):
        LslSource.from_url(SourceUrl.parse("lsl://x?buffer=0"))


# --- the gap detector, without a network --------------------------------------------------------


def lost_total(detector: TimestampGapDetector, stamps: np.ndarray, chunk_sizes: list[int]) -> tuple[int, int]:
    """Samples reported lost and samples covered, feeding stamps in the given chunks."""
    lost = covered = 0
    start = 0
    for size in chunk_sizes:
        piece = stamps[start : start + size]
        if not len(piece):
            assert detector.split(piece) == []
            continue
        runs = detector.split(piece)
        assert runs[0][0] == 0 and runs[-1][1] == len(piece)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(runs))
        lost += sum(gap for _, _, gap in runs)
        covered += len(piece)
        start += size
    return lost, covered


def test_gap_detector_finds_one_loss_where_it_is() -> None:
    fs = 1000.0
    kept = np.r_[0:500, 537:1000]
    stamps = 7.0 + kept / fs
    runs = TimestampGapDetector(fs, 0.02).split(stamps)
    assert runs == [(0, 500, 0), (500, len(kept), 37)]


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_losses=st.integers(0, 20),
    chunk=st.integers(5, 300),
)
def test_gap_detector_counts_losses_without_jitter(seed: int, n_losses: int, chunk: int) -> None:
    """Exact stamps: every loss is reported, small ones once they add up past the tolerance."""
    rng = np.random.default_rng(seed)
    fs, tol_s = 500.0, 0.02
    dropped = rng.choice(np.arange(1, 3000), size=n_losses, replace=False)
    kept = np.setdiff1d(np.arange(3000), dropped)
    stamps = kept / fs
    lost, covered = lost_total(TimestampGapDetector(fs, tol_s), stamps, [chunk] * (len(kept) // chunk + 1))
    assert covered == len(kept)
    true_lost = int(kept[-1] + 1 - len(kept))
    assert true_lost - tol_s * fs <= lost <= true_lost


def test_gap_detector_ignores_jitter_and_counts_a_large_loss() -> None:
    rng = np.random.default_rng(11)
    fs, tol_s = 500.0, 0.02
    kept = np.r_[0:2000, 2400:4000]
    stamps = kept / fs + rng.uniform(-tol_s / 2, tol_s / 2, kept.size)
    detector = TimestampGapDetector(fs, tol_s)
    runs = detector.split(stamps)
    assert len(runs) == 2
    assert abs(runs[1][2] - 400) <= tol_s * fs


def test_gap_detector_follows_a_fast_sender_without_gaps() -> None:
    fs = 250.0
    stamps = np.arange(10_000) / (fs * 1.001)  # the sender's clock runs 0.1 % fast
    assert TimestampGapDetector(fs, 0.01).split(stamps) == [(0, 10_000, 0)]
