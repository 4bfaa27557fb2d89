"""Decoded blocks per stream layout, and the one-pass survey exports size their output with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biofeed.protocol import SampleFormat
from biofeed.record import open_recording
from biofeed.record.stream_reader import DeviceMarker, LayoutBlock, read_stream_items, survey_recording
from biofeed.sim.device import EMG_SCALE_UV
from tests.record.export_session import MARKER_INDEX, expected_streams, make_session


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_session(tmp_path_factory.mktemp("reader"))


def test_blocks_carry_the_layout_with_resolution_and_format(session: Path) -> None:
    items = list(read_stream_items(open_recording(session)))
    blocks = [i for i in items if isinstance(i, LayoutBlock)]
    layouts = {b.layout.name: b.layout for b in blocks}
    assert sorted(layouts) == ["emg", "imu_sacral", "imu_thoracic"]
    assert layouts["emg"].lsb == pytest.approx((EMG_SCALE_UV, EMG_SCALE_UV), rel=1e-6)
    assert layouts["emg"].sample_format is SampleFormat.INT24
    assert layouts["imu_sacral"].sample_format is SampleFormat.INT16
    markers = [i for i in items if isinstance(i, DeviceMarker)]
    assert markers == [DeviceMarker(MARKER_INDEX / 2000, "emg", MARKER_INDEX, 1, "button", markers[0].received_at)]


def test_survey_finds_spans_gaps_ranges_and_clock_offset(session: Path) -> None:
    recording = open_recording(session)
    survey = survey_recording(recording)
    expected = expected_streams(session)
    assert [s.layout.name for s in survey.streams] == ["emg", "imu_thoracic", "imu_sacral"]
    for stream in survey.streams:
        want = expected[stream.layout.name]
        assert stream.first_index == want.first_index
        assert stream.end_index == want.first_index + want.data.shape[1]
        assert stream.gaps == want.gaps
        assert stream.n_samples == int(np.sum(~np.isnan(want.data[0])))
        np.testing.assert_array_equal(stream.min_value, np.nanmin(want.data, axis=1))
        np.testing.assert_array_equal(stream.max_value, np.nanmax(want.data, axis=1))
    assert survey.host_minus_device_s == pytest.approx(1.8e9)
    assert survey.torn_tail_bytes == 0 and survey.skipped_bytes == 0
    assert survey.stream("emg").end_s == 20.0
    with pytest.raises(KeyError):
        survey.stream("nope")
