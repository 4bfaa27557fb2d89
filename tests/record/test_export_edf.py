"""EDF+/BDF+ export, read back by three independent readers: edfio, MNE and pyedflib."""

from __future__ import annotations

import datetime
from pathlib import Path

import edfio
import numpy as np
import pytest

from biofeed.blocks import ChannelKind
from biofeed.protocol import (
    ChannelFormat,
    InfoPayload,
    Packet,
    PacketType,
    SampleFormat,
    StreamFormat,
    encode_frame,
    encode_samples,
)
from biofeed.record.export import run_export
from biofeed.record.export.edf import edf_label, record_duration_s
from biofeed.record.export.edf_file import format_header_number
from biofeed.record.stream_reader import StreamLayout
from biofeed.record.writer import RecordingWriter
from tests.record.export_session import (
    BURST_TIME_S,
    IDENTITY,
    N_BURST,
    ExpectedStream,
    expected_streams,
    host_minus_device_s,
    make_session,
)

mne = pytest.importorskip("mne")
pyedflib = pytest.importorskip("pyedflib")

STREAM_LABEL = {"emg": "emg", "imu_thoracic": "thoracic", "imu_sacral": "sacral"}


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_session(tmp_path_factory.mktemp("edf"))


@pytest.fixture(scope="module")
def expected(session: Path) -> dict[str, ExpectedStream]:
    return expected_streams(session)


@pytest.fixture(scope="module", params=["edf", "bdf"])
def export(request: pytest.FixtureRequest, session: Path) -> tuple[str, Path]:
    fmt = request.param
    warnings: list[str] = []
    out = run_export(session, fmt, session.parent / f"session.{fmt}", identity=IDENTITY, warn=warnings.append)
    assert warnings == []  # the simulator's EMG spans few enough counts for 16 bits
    return fmt, out


def _read(fmt: str, path: Path) -> edfio.Edf | edfio.Bdf:
    return edfio.read_edf(path) if fmt == "edf" else edfio.read_bdf(path)


def _channel_names(expected: dict[str, ExpectedStream], session: Path) -> list[tuple[str, str, int]]:
    from biofeed.record import open_recording

    info = open_recording(session).device_info
    assert info is not None
    return [(s.name, c.name, k) for s in info.streams for k, c in enumerate(s.channels)]


def _expected_signal(stream: ExpectedStream, k: int) -> np.ndarray:
    # the EDF signal is continuous: lost samples are filled with 0
    return np.nan_to_num(stream.data[k], nan=0.0)


def _gain(signal: edfio.EdfSignal | edfio.BdfSignal) -> float:
    return (signal.physical_max - signal.physical_min) / (signal.digital_max - signal.digital_min)


def test_every_channel_at_its_own_rate_within_half_a_step(
    export: tuple[str, Path], expected: dict[str, ExpectedStream], session: Path
) -> None:
    fmt, path = export
    edf = _read(fmt, path)
    assert edf.data_record_duration == 1.0
    assert edf.reserved.startswith(f"{fmt.upper()}+C")
    for stream_name, channel, k in _channel_names(expected, session):
        signal = edf.get_signal(f"{STREAM_LABEL[stream_name]}.{channel}")
        stream = expected[stream_name]
        assert signal.sampling_frequency == stream.rate_hz
        want = _expected_signal(stream, k)
        assert signal.data.shape == want.shape
        assert np.max(np.abs(signal.data - want)) <= _gain(signal) / 2 * 1.000001


def test_16_bits_hold_the_simulator_at_device_resolution(
    export: tuple[str, Path], session: Path, expected: dict[str, ExpectedStream]
) -> None:
    from biofeed.sim.device import EMG_SCALE_UV

    fmt, path = export
    signal = _read(fmt, path).get_signal("emg.es_left")
    assert _gain(signal) <= EMG_SCALE_UV * 1.01


def test_gaps_are_filled_with_zero_and_annotated(export: tuple[str, Path], expected: dict[str, ExpectedStream]) -> None:
    fmt, path = export
    edf = _read(fmt, path)
    for stream_name, (start, n_lost) in [(name, gap) for name, s in expected.items() for gap in s.gaps]:
        fs = expected[stream_name].rate_hz
        signal = edf.get_signal("emg.es_left" if stream_name == "emg" else f"{STREAM_LABEL[stream_name]}.acc_x")
        assert np.all(signal.digital[start : start + n_lost] == 0)  # digital 0 is physical 0
        assert np.all(np.abs(signal.data[start : start + n_lost]) < 1e-9)
        gap_notes = [a for a in edf.annotations if a.text.startswith(f"gap {stream_name}:")]
        assert len(gap_notes) == 1, "the runner's gap event and the decoder's gap are one annotation"
        assert gap_notes[0].onset == pytest.approx(start / fs)
        assert gap_notes[0].duration == pytest.approx(n_lost / fs)
        assert "filled with 0" in gap_notes[0].text


def _expected_annotations() -> list[tuple[float, float, str]]:
    notes = [
        (2.0, 0.0, "marker stream=emg label=start code=128"),
        (3.0, 0.05, "gap emg: 100 samples lost (0.05 s), filled with 0"),
        (3.0, 0.05, "gap imu_thoracic: 5 samples lost (0.05 s), filled with 0"),
        (4.5, 1.5, "phase stream=emg phase=contraction"),
        (5.5, 0.0, "note text=Annabelle Zwieback yawned"),
        (7.25, 0.0, "link state=lost detail=BLE dropped attempt=0"),
        (7.25, 0.0, "sink_detached sink=LslOutlet [time approximate]"),
        (8.0, 6.0, "trial trial=1"),
        (12.0, 0.0, "device_marker code=1 label=button stream=emg"),
        (14.0, 0.0, "verdict verdict=true_relaxation score=0.82"),
    ]
    notes += [(BURST_TIME_S, 0.0, f"note text=burst note {k}") for k in range(N_BURST)]
    return sorted(notes)


def _rounded(notes: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    return sorted((round(onset, 6), round(duration, 6), text) for onset, duration, text in notes)


def test_all_annotations_reach_edfio_mne_and_pyedflib(export: tuple[str, Path]) -> None:
    fmt, path = export
    want = _rounded(_expected_annotations())
    from_edfio = _rounded([(a.onset, a.duration or 0.0, a.text) for a in _read(fmt, path).annotations])
    raw = (mne.io.read_raw_edf if fmt == "edf" else mne.io.read_raw_bdf)(path, verbose="error")
    from_mne = _rounded(
        list(zip(raw.annotations.onset, raw.annotations.duration, raw.annotations.description, strict=True))
    )
    # pyedflib: ask for every annotation explicitly (pyedflib's writer keeps one per record by
    # default; the reader must not be the weak link of this check)
    with pyedflib.EdfReader(str(path), annotations_mode=pyedflib.READ_ALL_ANNOTATIONS) as reader:
        onsets, durations, texts = reader.readAnnotations()
    from_pyedflib = _rounded([(o, max(d, 0.0), t) for o, d, t in zip(onsets, durations, texts, strict=True)])
    assert from_edfio == want
    assert from_mne == want
    assert from_pyedflib == want


def test_mne_reads_the_same_samples_and_rates(export: tuple[str, Path], expected: dict[str, ExpectedStream]) -> None:
    fmt, path = export
    edf = _read(fmt, path)
    read = mne.io.read_raw_edf if fmt == "edf" else mne.io.read_raw_bdf
    for prefix, rate_hz in (("emg.", 2000.0), ("thoracic.", 100.0), ("sacral.", 100.0)):
        labels = [label for label in edf.labels if label.startswith(prefix)]
        raw = read(path, include=labels, preload=True, verbose="error")
        assert raw.info["sfreq"] == rate_hz
        ours = np.vstack([edf.get_signal(label).data for label in labels])
        theirs = raw.get_data()
        if prefix == "emg.":
            theirs = theirs * 1e6  # MNE reads uV as volts
        np.testing.assert_allclose(theirs, ours, rtol=1e-9, atol=1e-12)


def test_pyedflib_reads_the_same_samples_and_rates(export: tuple[str, Path]) -> None:
    fmt, path = export
    edf = _read(fmt, path)
    with pyedflib.EdfReader(str(path)) as reader:
        assert reader.getSignalLabels() == list(edf.labels)
        for k, signal in enumerate(edf.signals):
            assert reader.getSampleFrequency(k) == signal.sampling_frequency
            np.testing.assert_allclose(reader.readSignal(k), signal.data, rtol=1e-9, atol=1e-12)


def test_header_names_the_client_start_and_device(export: tuple[str, Path], session: Path) -> None:
    fmt, path = export
    edf = _read(fmt, path)
    assert edf.local_patient_identification == "client-7q3x F 03-FEB-1980 Annabelle_Zwieback"
    assert edf.local_recording_identification.startswith("Startdate ")
    assert "simulator:sim-1" in edf.local_recording_identification
    start = datetime.datetime.fromtimestamp(host_minus_device_s(session), datetime.UTC).replace(
        microsecond=0, tzinfo=None
    )
    assert edf.startdatetime == start


def _write_wide_emg_recording(path: Path) -> Path:
    """An int24 EMG stream whose values span about 2^22 counts: 16 bits must lose resolution."""
    emg = StreamFormat(
        1, "emg", SampleFormat.INT24, 2_000_000, (ChannelFormat(ChannelKind.EMG, 0.05, "es_left", "left"),)
    )
    info = InfoPayload((1, 0, 0), "wide-1", "ads1292r", (emg,))
    rng = np.random.default_rng(4)
    with RecordingWriter(path, source_url="test://wide") as writer:
        writer.append_frame(encode_frame(Packet(PacketType.INFO, 0, 0, 0, info.to_payload()))[:-1], 1000.0)
        for k in range(100):
            counts = rng.integers(-(1 << 21), 1 << 21, size=(1, 20))
            payload = encode_samples(counts, SampleFormat.INT24)
            frame = encode_frame(Packet(PacketType.EMG, 1, k + 1, 20 * k, payload))[:-1]
            writer.append_frame(frame, 1000.0 + 0.01 * (k + 1))
    return path


def test_edf_warns_in_one_line_how_much_resolution_16_bits_cost(tmp_path: Path) -> None:
    recording = _write_wide_emg_recording(tmp_path / "wide")
    warnings: list[str] = []
    out = run_export(recording, "edf", tmp_path / "wide.edf", warn=warnings.append)
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "1 of 1 channels lose resolution" in warnings[0] and "--to bdf" in warnings[0]
    signal = edfio.read_edf(out).signals[0]
    factor = _gain(signal) / 0.05
    assert factor > 50
    assert f"{factor:.3g}x" in warnings[0]
    warnings.clear()
    bdf = edfio.read_bdf(run_export(recording, "bdf", tmp_path / "wide.bdf", warn=warnings.append)).signals[0]
    assert warnings == []
    lsb = float(np.float32(0.05))  # the scale as the INFO carries it
    assert _gain(bdf) <= lsb
    counts = np.round(bdf.data / lsb)
    assert np.max(np.abs(bdf.data - counts * lsb)) <= _gain(bdf) / 2 * 1.000001


def test_record_duration_holds_whole_samples_of_every_rate() -> None:
    def layout(rate_hz: float, n_channels: int) -> StreamLayout:
        from biofeed.blocks import ChannelInfo, StreamInfo

        channels = tuple(ChannelInfo(f"c{k}", ChannelKind.EMG, "uV") for k in range(n_channels))
        return StreamLayout("s", StreamInfo("s", rate_hz, channels), (1.0,) * n_channels, SampleFormat.INT24)

    assert record_duration_s([layout(2000, 2), layout(100, 6)], bdf=True) == 1
    assert record_duration_s([layout(250.5, 1)], bdf=False) == 2  # 501 samples every 2 s
    # 16 channels of 24 bits at 2 kHz are 96000 bytes a second: records shrink under 61440 bytes
    duration = record_duration_s([layout(2000, 16)], bdf=True)
    assert duration * 2000 * 16 * 3 <= 61440 and (duration * 2000).denominator == 1


def test_labels_fit_16_characters_and_header_numbers_8() -> None:
    assert edf_label("imu_thoracic", "acc_x") == "thoracic.acc_x"
    assert len(edf_label("a_very_long_stream_name", "channel_name")) == 16
    assert format_header_number(-187500.0, round_up=False) == "-187500"
    assert format_header_number(187499.97765, round_up=True) == "187500"
    assert format_header_number(0.123456789, round_up=False) == "0.123456"
    assert format_header_number(-0.0000001, round_up=True) == "0"
