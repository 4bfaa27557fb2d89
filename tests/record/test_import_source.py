"""A foreign file replayed as a source: the decoder sees its channels, gaps and annotations."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pytest

from biofeed.blocks import Block, DeviceInfo, Marker
from biofeed.errors import RecordingError
from biofeed.protocol import Decoder
from biofeed.record.foreign import ForeignAnnotation, ForeignChannel, ForeignFileSource, ForeignRecording


def _recording(channels: list[ForeignChannel], annotations: tuple[ForeignAnnotation, ...] = ()) -> ForeignRecording:
    start = datetime.datetime(2025, 1, 31, 9, 15, 2, tzinfo=datetime.UTC)
    return ForeignRecording(Path("/data/file.edf"), "edf", tuple(channels), annotations, start)


def _decode(source: ForeignFileSource) -> tuple[Decoder, dict[str, list[Block]], list[Marker], list[float]]:
    decoder = Decoder()
    blocks: dict[str, list[Block]] = {}
    markers: list[Marker] = []
    times: list[float] = []
    for chunk in source.chunks():
        times.append(chunk.received_at)
        for item in decoder.feed(chunk.data, chunk.received_at):
            if isinstance(item, Block):
                blocks.setdefault(item.info.name, []).append(item)
            elif isinstance(item, Marker):
                markers.append(item)
    return decoder, blocks, markers, times


def test_channels_gaps_and_annotations_flow_through_the_decoder() -> None:
    rng = np.random.default_rng(3)
    left = rng.normal(0, 50, 2500)
    left[1000:1040] = np.nan  # an export's gap rows
    right = rng.normal(0, 80, 2500)
    acc = rng.normal(1, 0.01, 125)
    recording = _recording(
        [
            ForeignChannel("left", 500.0, "uV", left),
            ForeignChannel("right", 500.0, "uV", right),
            ForeignChannel("acc_z", 25.0, "g", acc),
            ForeignChannel("temp", 25.0, "degC", np.zeros(125)),
        ],
        (ForeignAnnotation(1.5, 0.0, "stretch"), ForeignAnnotation(3.0, 1.0, "release")),
    )
    source = ForeignFileSource(recording, speed=0.0)
    assert source.url == "replay:///data/file.edf?speed=0"
    decoder, blocks, markers, times = _decode(source)
    assert decoder.stats.corrupt_frames == 0 and decoder.stats.lost_packets == 0
    info = decoder.device_info
    assert isinstance(info, DeviceInfo)
    assert [(s.name, s.sample_rate_hz, [c.name for c in s.channels]) for s in info.streams] == [
        ("emg", 500.0, ["left", "right"]),
        ("aux", 25.0, ["acc_z"]),
    ]
    emg = np.full((2, 2500), np.nan)
    for block in blocks["emg"]:
        emg[:, block.first_index : block.end_index] = block.data
    scales = np.nanmax(np.abs(np.vstack([left, right])), axis=1) / (2**23 - 1)
    np.testing.assert_array_equal(np.isnan(emg[0]), np.isnan(left))
    assert np.all(np.abs(emg - np.vstack([left, right]))[:, ~np.isnan(left)] <= scales[:, None] * 0.51)
    assert decoder.stats.streams["emg"].gaps == 1 and decoder.stats.streams["emg"].samples_lost == 40
    aux = np.concatenate([b.data[0] for b in blocks["aux"]])
    np.testing.assert_allclose(aux, acc, atol=2 / 2**23)
    assert [(m.sample_index, m.code, m.label) for m in markers] == [(750, 128, "stretch"), (1500, 128, "release")]
    assert times[0] == pytest.approx(datetime.datetime(2025, 1, 31, 9, 15, 2, tzinfo=datetime.UTC).timestamp())
    assert times == sorted(times)


def test_paced_replay_waits_for_device_time_and_close_stops_it() -> None:
    recording = _recording([ForeignChannel("x", 100.0, "uV", np.ones(300))])
    now = [0.0]
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        now[0] += seconds
        return False

    source = ForeignFileSource(recording, speed=2.0, clock=lambda: now[0], wait=wait)
    chunks = list(source.chunks())
    assert chunks and now[0] == pytest.approx(1.5, abs=0.02)  # 3 s of data at twice real time
    source = ForeignFileSource(recording, speed=0.0)
    iterator = source.chunks()
    next(iterator)
    source.close()
    assert list(iterator) == []


def test_from_url_reads_the_file_with_its_parameters(tmp_path: Path) -> None:
    from biofeed.sources.base import SourceUrl

    (tmp_path / "plain.csv").write_text("a [mV],b\n1,2\n3,4\n5,6\n")
    source = ForeignFileSource.from_url(SourceUrl.parse(f"replay://{tmp_path}/plain.csv?fs=250&speed=0"))
    decoder, blocks, _, _ = _decode(source)
    assert decoder.stats.streams["emg"].sample_rate_hz == 250.0
    data = np.hstack([b.data for b in blocks["emg"]])
    np.testing.assert_allclose(data, [[1000, 3000, 5000], [2, 4, 6]], rtol=1e-6)
    with pytest.raises(ValueError, match="does not take rate"):
        ForeignFileSource.from_url(SourceUrl.parse(f"replay://{tmp_path}/plain.csv?rate=250"))
    with pytest.raises(RecordingError, match="no time_s column"):
        ForeignFileSource.from_url(SourceUrl.parse(f"replay://{tmp_path}/plain.csv"))


def test_files_the_protocol_cannot_carry_are_refused() -> None:
    with pytest.raises(RecordingError, match="no channel in a unit biofeed can replay"):
        ForeignFileSource(_recording([ForeignChannel("t", 10.0, "degC", np.zeros(10))]))
    many = [ForeignChannel(f"c{k}", 10.0 + k, "uV", np.zeros(10)) for k in range(9)]
    with pytest.raises(RecordingError, match="needs 9 streams to replay; the protocol carries 8"):
        ForeignFileSource(_recording(many))
    with pytest.raises(ValueError, match="speed must be 0"):
        ForeignFileSource(_recording([ForeignChannel("x", 10.0, "uV", np.zeros(10))]), speed=-1)
