"""brainflow:// with BrainFlow's synthetic board, recorded through the runner; the package-counter gaps."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from brainflow.board_shim import BoardIds, BoardShim

from biofeed.blocks import Block, ChannelKind, DeviceStatus
from biofeed.errors import SourceError
from biofeed.protocol.decoder import Decoder
from biofeed.record.reader import open_recording
from biofeed.record.writer import RecordingWriter
from biofeed.runner import Acquisition
from biofeed.sources.base import SourceUrl
from biofeed.sources.brainflow import BrainFlowSource, board_id_from_name, import_brainflow, package_gaps

SYNTHETIC = int(BoardIds.SYNTHETIC_BOARD)


@pytest.fixture(scope="module")
def synthetic_recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """One device second of the synthetic board, recorded by biofeed's runner."""
    out = tmp_path_factory.mktemp("brainflow") / "rec"
    source = BrainFlowSource.from_url(SourceUrl.parse("brainflow://synthetic"))
    with RecordingWriter(out, source_url=source.url) as recorder:
        result = Acquisition(source, recorder=recorder, duration_s=1.0).run()
        recorder.close()
    return out, result


def test_synthetic_board_records_at_its_nominal_rate(synthetic_recording: tuple[Path, object]) -> None:
    out, result = synthetic_recording
    assert result.error is None  # type: ignore[attr-defined]
    recording = open_recording(out)
    device = recording.device_info
    assert device is not None
    assert (device.device_id, device.board_profile) == ("brainflow-synthetic", "brainflow-synthetic")
    rate_hz = BoardShim.get_sampling_rate(SYNTHETIC)
    emg, imu = device.streams
    assert (emg.name, emg.sample_rate_hz, emg.n_channels) == (
        "emg",
        rate_hz,
        len(BoardShim.get_emg_channels(SYNTHETIC)),
    )
    assert all(c.kind is ChannelKind.EMG and c.unit == "uV" for c in emg.channels)
    assert (imu.name, imu.sample_rate_hz) == ("imu", rate_hz)
    assert [(c.name, c.kind, c.unit) for c in imu.channels] == [(f"acc_{a}", ChannelKind.ACC, "g") for a in "xyz"]


def test_the_recording_decodes_whole(synthetic_recording: tuple[Path, object]) -> None:
    """Replayed frames: no damage, no gaps, a second of samples of plausible size in each stream."""
    out, _ = synthetic_recording
    decoder = Decoder()
    blocks: list[Block] = []
    for record in open_recording(out).frames():
        blocks += [i for i in decoder.decode_frame(record.frame) if isinstance(i, Block)]
    stats = decoder.stats
    assert stats.corrupt_frames == 0 and stats.lost_packets == 0 and stats.no_info == 0
    rate_hz = BoardShim.get_sampling_rate(SYNTHETIC)
    for name in ("emg", "imu"):
        s = stats.streams[name]
        assert s.n_samples >= rate_hz and s.gaps == 0 and s.first_index == 0 and s.end_index == s.n_samples
    emg = np.concatenate([b.data for b in blocks if b.info.name == "emg"], axis=1)
    acc = np.concatenate([b.data for b in blocks if b.info.name == "imu"], axis=1)
    assert 1.0 < np.abs(emg).max() < 5000.0  # the synthetic board's EXG is tens to hundreds of uV
    assert np.all((acc >= -2.0) & (acc <= 2.0)) and acc.std() > 0


def test_board_names_and_numbers() -> None:
    assert board_id_from_name("synthetic") == SYNTHETIC
    assert board_id_from_name("SYNTHETIC_BOARD") == SYNTHETIC
    assert board_id_from_name(str(SYNTHETIC)) == SYNTHETIC
    assert board_id_from_name("cyton-daisy") == int(BoardIds.CYTON_DAISY_BOARD)
    assert board_id_from_name("Cyton_Daisy") == int(BoardIds.CYTON_DAISY_BOARD)
    with pytest.raises(ValueError, match=r"known: .*cyton"):
        board_id_from_name("cytonn")
    with pytest.raises(ValueError, match="unknown BrainFlow board id 9999"):
        board_id_from_name("9999")


def test_url_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match=r"allowed: .*serial_port"):
        BrainFlowSource.from_url(SourceUrl.parse("brainflow://synthetic?port=/dev/ttyUSB0"))
    with pytest.raises(ValueError, match="whole number"):
        BrainFlowSource.from_url(SourceUrl.parse("brainflow://synthetic?ip_port=abc"))
    with pytest.raises(ValueError, match="needs a board"):
        BrainFlowSource.from_url(SourceUrl.parse("brainflow://"))


def test_missing_brainflow_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "brainflow", None)
    with pytest.raises(SourceError, match=r"pip install 'biofeed\[brainflow\]'"):
        import_brainflow()


def test_package_counter_gaps() -> None:
    fs = 250.0
    packages = np.array([253, 254, 255, 0, 1, 5, 6])
    stamps = np.array([0, 1, 2, 3, 4, 8, 9]) / fs
    np.testing.assert_array_equal(package_gaps(None, packages, stamps, fs), [0, 0, 0, 0, 0, 3, 0])
    np.testing.assert_array_equal(package_gaps((250, 0.0), packages[:1], stamps[1:2], fs), [2])


def test_a_loss_longer_than_the_counter_is_counted_from_the_time_stamps() -> None:
    fs = 250.0
    lost = 300  # the counter (mod 256) alone says 44
    packages = np.array([10, (11 + lost) % 256])
    stamps = np.array([0.0, (1 + lost) / fs])
    np.testing.assert_array_equal(package_gaps(None, packages, stamps, fs), [0, lost])
    np.testing.assert_array_equal(package_gaps(None, packages, np.full(2, np.nan), fs), [0, lost % 256])


def test_gaps_reach_the_decoder() -> None:
    """A skipped package number becomes a block with gap_before, on every stream of the board."""
    source = BrainFlowSource(SYNTHETIC)
    data = np.zeros((BoardShim.get_num_rows(SYNTHETIC), 6))
    data[BoardShim.get_package_num_channel(SYNTHETIC)] = [0, 1, 2, 6, 7, 8]
    data[BoardShim.get_timestamp_channel(SYNTHETIC)] = np.array([0, 1, 2, 6, 7, 8]) / 250.0
    decoder = Decoder()
    items = decoder.feed(source._framer.start() + source._frames(data))
    source.close()
    blocks = [i for i in items if isinstance(i, Block)]
    assert [(b.info.name, b.first_index, b.gap_before, b.n_samples) for b in blocks] == [
        ("emg", 0, 0, 3),
        ("imu", 0, 0, 3),
        ("emg", 6, 3, 3),
        ("imu", 6, 3, 3),
    ]
    assert not any(isinstance(i, DeviceStatus) for i in items)
