"""Several devices in one recording: layout, labelled view, clock fits, tap alignment, replay."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from biofeed.blocks import (
    AnalysisEvent,
    Block,
    ChannelInfo,
    ChannelKind,
    DeviceInfo,
    DeviceStatus,
    LinkEvent,
    LinkState,
    Marker,
    StreamInfo,
)
from biofeed.errors import RecordingError, SourceLost
from biofeed.multi_device import (
    DeviceLabeller,
    DeviceSpec,
    MultiDeviceAcquisition,
    labelled_name,
    open_multi_device_replay,
    parse_device_specs,
    read_labelled_items,
    record_devices,
)
from biofeed.record.reader import is_multi_device_recording, open_multi_device_recording, open_recording
from biofeed.record.summary import MultiDeviceSummary, summarize_multi_device_recording, summarize_recording
from biofeed.record.writer import MultiDeviceRecordingWriter
from biofeed.sim.device import EMG_RATE_HZ, IMU_RATE_HZ, SimulatedDevice
from biofeed.sources.base import Source, TimedChunk
from biofeed.sources.sim import SimSource
from biofeed.timesync import ClockFit, clock_fits_from_json

from .link_models import DelayedLink, TappedDevice

START_S = 1.7e9
DURATION_S = 30.0
TAP_TIMES_S = (START_S + 8.3, START_S + 21.7)


@dataclass(frozen=True)
class Board:
    """One simulated board of the test recording and the truth about it."""

    label: str
    seed: int
    clock_ppm: float
    start_s: float  # host time of its sample 0
    latency_s: float  # the link's smallest delay
    tap_axis: int

    def source(self, *, marker_code: int | None = None, duration_s: float = DURATION_S) -> Source:
        device = SimulatedDevice("rest", seed=self.seed, duration_s=duration_s + 1, clock_ppm=self.clock_ppm)
        sim = SimSource(device, speed=0, wall_clock=lambda: self.start_s)
        tapped = TappedDevice(
            sim, start_s=self.start_s, tap_times_s=TAP_TIMES_S, axis=self.tap_axis, marker_code=marker_code
        )
        return DelayedLink(tapped, np.random.default_rng(self.seed), min_latency_s=self.latency_s)

    def device_time_s(self, host_s: float) -> float:
        """The board's clock reading at a host time."""
        return (host_s - self.start_s) * (1 + self.clock_ppm * 1e-6)


# Left and right boards: crystals 75 ppm apart, switched on 0.8 s apart, links 7 ms apart at best.
LEFT = Board("left", seed=1, clock_ppm=-30.0, start_s=START_S, latency_s=0.004, tap_axis=2)
RIGHT = Board("right", seed=2, clock_ppm=45.0, start_s=START_S + 0.8, latency_s=0.011, tap_axis=1)
BOARDS = (LEFT, RIGHT)


class Collector:
    """A sink that keeps what it gets."""

    def __init__(self) -> None:
        self.items: list[object] = []
        self.closed = 0

    def write(self, item: object) -> None:
        self.items.append(item)

    def close(self) -> None:
        self.closed += 1


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Collector]:
    path = tmp_path_factory.mktemp("multi") / "session"
    sink = Collector()
    specs = [DeviceSpec(b.label, f"sim://rest?seed={b.seed}") for b in BOARDS]
    result = record_devices(
        specs, [b.source() for b in BOARDS], path, duration_s=DURATION_S, sinks=[sink], pipeline_factory=None
    )
    assert result.errors == {}
    return path, sink


@pytest.fixture(scope="module")
def summary(recorded: tuple[Path, Collector]) -> MultiDeviceSummary:
    return summarize_multi_device_recording(recorded[0])


# -- the recording ------------------------------------------------------------------------------


def test_the_recording_lists_its_devices_and_each_device_folder_is_a_recording(
    recorded: tuple[Path, Collector],
) -> None:
    path, _ = recorded
    meta = json.loads((path / "recording.json").read_text())
    assert meta["format_version"] == 2 and meta["closed"] is not None
    assert [(d["label"], d["folder"], d["device_id"]) for d in meta["devices"]] == [
        ("left", "left", "sim-1"),
        ("right", "right", "sim-2"),
    ]
    assert meta["alignment"]["reference"] == "left"
    assert is_multi_device_recording(path) and not is_multi_device_recording(path / "left")
    for board in BOARDS:
        device = open_recording(path / board.label)
        assert device.meta["format_version"] == 1
        assert device.meta["source_url"] == f"sim://rest?seed={board.seed}"
        assert summarize_recording(path / board.label).streams[0].n_samples == DURATION_S * EMG_RATE_HZ
    with pytest.raises(RecordingError, match=r"recording of 2 devices \(left, right\)"):
        open_recording(path)
    with pytest.raises(RecordingError, match="is not a recording of several devices"):
        open_multi_device_recording(path / "left")
    assert open_multi_device_recording(path).labels == ("left", "right")


def test_each_device_clock_is_fitted_within_5_ppm(summary: MultiDeviceSummary) -> None:
    for board, device in zip(BOARDS, summary.devices, strict=True):
        assert device.label == board.label
        for stream in device.recording.streams:
            assert stream.clock_error_ppm is not None
            assert abs(stream.clock_error_ppm - board.clock_ppm) < 5.0, (board.label, stream.name)
            assert len(stream.clock_fits) == 1


def test_the_tap_measures_what_the_fits_cannot_see_the_links_latency_difference(summary: MultiDeviceSummary) -> None:
    offset = summary.alignment.offsets[1]
    assert (offset.label, offset.method) == ("right", "tap")
    assert offset.n_events == 4  # two taps, each felt by both IMUs of the board
    assert offset.correlation is not None and offset.correlation > 0.95
    assert offset.offset_s == pytest.approx(RIGHT.latency_s - LEFT.latency_s, abs=0.5e-3)
    for stream, rate in (("imu_thoracic", IMU_RATE_HZ), ("emg", EMG_RATE_HZ)):
        # a physical moment between the taps, in each board's fitted host time
        moment_s = START_S + 15.0
        fitted = {}
        for board, device in zip(BOARDS, summary.devices, strict=True):
            fit = next(s.clock_fit for s in device.recording.streams if s.name == stream)
            assert fit is not None
            index = math.floor(board.device_time_s(moment_s) * rate)
            fitted[board.label] = fit.host_time_s(index / rate) - (
                board.start_s + index / rate / (1 + board.clock_ppm * 1e-6)
            )
        error_fit_s = fitted["right"] - fitted["left"]
        error_tap_s = error_fit_s - offset.offset_s
        assert abs(error_fit_s - 0.007) < 0.5e-3  # the fits alone: off by the latency difference
        assert abs(error_tap_s) < 0.5e-3  # the tap takes it off


def test_what_was_stored_live_equals_what_info_computes(
    recorded: tuple[Path, Collector], summary: MultiDeviceSummary
) -> None:
    meta = json.loads((recorded[0] / "recording.json").read_text())
    for entry, device in zip(meta["devices"], summary.devices, strict=True):
        stored = clock_fits_from_json(entry["clock"])
        assert stored == {s.name: s.clock_fits for s in device.recording.streams}
    assert meta["alignment"] == json.loads(json.dumps(summary.alignment.to_json()))
    info = summary.to_json()
    assert [d["label"] for d in info["devices"]] == ["left", "right"]
    assert info["devices"][0]["streams"][0]["clock_error_ppm"] == pytest.approx(LEFT.clock_ppm, abs=5)
    assert json.loads(json.dumps(info, allow_nan=False)) == info
    text = summary.to_text()
    assert f"alignment   right: {summary.alignment.offsets[1].offset_s * 1e3:+.2f} ms after the fits (4 taps" in text
    assert "== right (sim://rest?seed=2)" in text


def test_shared_sinks_see_both_devices_under_labelled_names(recorded: tuple[Path, Collector]) -> None:
    _, sink = recorded
    assert sink.closed == 1
    names = {item.info.name for item in sink.items if isinstance(item, Block)}
    assert names == {labelled_name(b.label, s) for b in BOARDS for s in ("emg", "imu_thoracic", "imu_sacral")}
    infos = [item for item in sink.items if isinstance(item, DeviceInfo)]
    assert sorted(s.name for info in infos for s in info.streams)[:3] == [
        "left.emg",
        "left.imu_sacral",
        "left.imu_thoracic",
    ]


def test_the_merged_view_is_in_arrival_order_with_every_item(recorded: tuple[Path, Collector]) -> None:
    path, _ = recorded
    last_s = -math.inf
    counts: dict[str, int] = {}
    for label, item in read_labelled_items(path):
        if isinstance(item, Block):
            assert item.info.name.startswith(label + ".")
            assert item.received_at >= last_s
            last_s = item.received_at
            counts[item.info.name] = counts.get(item.info.name, 0) + item.n_samples
    assert counts["left.emg"] == counts["right.emg"] == DURATION_S * EMG_RATE_HZ
    assert counts["right.imu_sacral"] == DURATION_S * IMU_RATE_HZ


def test_a_replay_records_the_same_frames_for_every_device(recorded: tuple[Path, Collector], tmp_path: Path) -> None:
    path, _ = recorded
    sources = open_multi_device_replay(path)
    with MultiDeviceRecordingWriter(tmp_path / "again", devices=[(label, s.url) for label, s in sources]) as recorder:
        group = MultiDeviceAcquisition(sources, recorder=recorder)
        group.close_recording(group.run())
    for board in BOARDS:
        assert (tmp_path / "again" / board.label / "frames.bin").read_bytes() == (
            path / board.label / "frames.bin"
        ).read_bytes()
    again = summarize_multi_device_recording(tmp_path / "again")
    assert again.alignment == summarize_multi_device_recording(path).alignment


# -- sync markers, a device that fails ------------------------------------------------------------


def test_sync_markers_align_the_devices_when_present(tmp_path: Path) -> None:
    sources = [b.source(marker_code=7, duration_s=25.0) for b in BOARDS]
    specs = [DeviceSpec(b.label, "sim://rest") for b in BOARDS]
    result = record_devices(specs, sources, tmp_path / "rec", duration_s=25.0, pipeline_factory=None)
    offset = result.alignment.offsets[1]
    assert (offset.method, offset.n_events) == ("marker", 2)
    # the markers sit on the EMG sample nearest the tap: within 0.25 ms on each board
    assert offset.offset_s == pytest.approx(RIGHT.latency_s - LEFT.latency_s, abs=0.6e-3)
    assert summarize_multi_device_recording(tmp_path / "rec").alignment == result.alignment


class _LostAfter:
    """A source that goes away after some chunks."""

    def __init__(self, source: Source, n_chunks: int) -> None:
        self.url = source.url
        self._source = source
        self._n_chunks = n_chunks

    def chunks(self) -> Iterator[TimedChunk]:
        for n, chunk in enumerate(self._source.chunks()):
            if n == self._n_chunks:
                raise SourceLost(f"{self.url}: device went away")
            yield chunk

    def close(self) -> None:
        self._source.close()


def test_a_device_lost_midway_ends_its_part_and_the_other_records_on(tmp_path: Path) -> None:
    sources = [_LostAfter(LEFT.source(duration_s=5.0), 100), RIGHT.source(duration_s=5.0)]
    specs = [DeviceSpec(b.label, "sim://rest") for b in BOARDS]
    result = record_devices(specs, sources, tmp_path / "rec", duration_s=5.0, pipeline_factory=None)
    assert list(result.errors) == ["left"]
    summary = summarize_multi_device_recording(tmp_path / "rec")
    left, right = (d.recording.streams[0] for d in summary.devices)
    assert 0 < left.duration_s < 2.5 and right.duration_s == 5.0
    assert summary.alignment.offsets[1].method == "fit"  # no tap in the first 2 s
    meta = json.loads((tmp_path / "rec" / "left" / "recording.json").read_text())
    assert "went away" in meta["summary"]["error"]


# -- the pieces ---------------------------------------------------------------------------------


def test_device_specs_take_labels_or_number_the_devices() -> None:
    assert parse_device_specs(["left=ble://AA:BB", "right=sim://rest?seed=2"]) == (
        DeviceSpec("left", "ble://AA:BB"),
        DeviceSpec("right", "sim://rest?seed=2"),
    )
    assert parse_device_specs(["sim://rest?seed=1", "serial:///dev/ttyUSB0?baud=921600"]) == (
        DeviceSpec("dev1", "sim://rest?seed=1"),
        DeviceSpec("dev2", "serial:///dev/ttyUSB0?baud=921600"),
    )
    with pytest.raises(ValueError, match="labels must differ"):
        parse_device_specs(["a=sim://rest", "a=sim://rest"])
    with pytest.raises(ValueError, match="device label 'Left'"):
        parse_device_specs(["Left=sim://rest"])
    with pytest.raises(ValueError, match="not a device"):
        parse_device_specs(["left=board"])
    with pytest.raises(ValueError, match="at least one"):
        parse_device_specs([])


def test_the_labeller_renames_streams_and_keeps_everything_else() -> None:
    emg = StreamInfo("emg", 1000.0, (ChannelInfo("es_left", ChannelKind.EMG, "uV"),), "dev", 1)
    labeller = DeviceLabeller("left")
    block = Block(emg, np.ones((1, 4)), 40, 2, 12.5)
    renamed = labeller(block)
    assert isinstance(renamed, Block)
    assert renamed.info.name == "left.emg" and renamed.info.channels == emg.channels
    assert (renamed.first_index, renamed.gap_before, renamed.received_at) == (40, 2, 12.5)
    assert renamed.data is block.data
    assert labeller.stream_info(emg) is renamed.info  # one renamed description per stream
    info = labeller(DeviceInfo("dev", (1, 0, 0), "b", (emg,)))
    assert isinstance(info, DeviceInfo) and info.streams[0].name == "left.emg"
    assert labeller(Marker("emg", 5, 1)) == Marker("left.emg", 5, 1)
    assert labeller(DeviceStatus("", 5, 90, None, (), ())) == DeviceStatus("left", 5, 90, None, (), ())
    assert labeller(LinkEvent(LinkState.LOST, "timeout")) == LinkEvent(LinkState.LOST, "left: timeout")
    event = labeller(AnalysisEvent({"type": "phase", "stream": "emg", "channel": "es_left"}))
    assert isinstance(event, AnalysisEvent)
    assert event.data == {"type": "phase", "stream": "left.emg", "channel": "es_left", "device": "left"}
    with pytest.raises(ValueError, match="device label"):
        DeviceLabeller("a.b")


def test_the_group_refuses_labels_that_do_not_match_the_recording(tmp_path: Path) -> None:
    with MultiDeviceRecordingWriter(tmp_path / "rec", devices=[("a", "sim://"), ("b", "sim://")]) as recorder:
        with pytest.raises(ValueError, match="differ from the recording's"):
            MultiDeviceAcquisition([("a", LEFT.source()), ("c", RIGHT.source())], recorder=recorder)
        with pytest.raises(ValueError, match="labels must differ"):
            MultiDeviceAcquisition([("a", LEFT.source()), ("a", RIGHT.source())])
    with pytest.raises(ValueError, match="labels must differ"):
        MultiDeviceRecordingWriter(tmp_path / "x", devices=[("a", "sim://"), ("a", "sim://")])
    with pytest.raises(ValueError, match="device label"):
        MultiDeviceRecordingWriter(tmp_path / "y", devices=[("recording.json", "sim://")])


def test_a_closed_recording_of_devices_reads_back_its_clocks_and_refuses_newer_formats(tmp_path: Path) -> None:
    fit = ClockFit(1.7e9, 1.0, 0.0, 10.0, 100, 1.0)
    writer = MultiDeviceRecordingWriter(tmp_path / "rec", devices=[("a", "sim://1")], client="c-7")
    writer.append_event({"type": "note", "text": "start"})
    writer.close(device_entries={"a": {"clock": {"emg": [fit.to_json()]}}}, alignment={"reference": "a"})
    recording = open_multi_device_recording(tmp_path / "rec")
    assert recording.meta["client"] == "c-7"
    assert list(recording.events()) == [{"type": "note", "text": "start"}]
    (entry,) = recording.devices
    assert clock_fits_from_json(entry.entry["clock"]) == {"emg": (fit,)}
    with pytest.raises(ValueError, match="no device 'b'"):
        recording.device("b")
    meta = json.loads((tmp_path / "rec" / "recording.json").read_text())
    (tmp_path / "rec" / "recording.json").write_text(json.dumps({**meta, "format_version": 3}))
    with pytest.raises(RecordingError, match="newer than this biofeed reads"):
        open_multi_device_recording(tmp_path / "rec")
