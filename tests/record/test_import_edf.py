"""Import of EDF/BDF files: our exports back, OpenBCI GUI's BDF+, other units; damage gives one clear error."""

from __future__ import annotations

from pathlib import Path

import edfio
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biofeed.errors import RecordingError
from biofeed.record.export import run_export
from biofeed.record.foreign import read_foreign
from tests.record.export_session import IDENTITY, N_BURST, ExpectedStream, expected_streams, make_session

STREAM_LABEL = {"emg": "emg", "imu_thoracic": "thoracic", "imu_sacral": "sacral"}


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_session(tmp_path_factory.mktemp("import-edf"))


@pytest.fixture(scope="module")
def expected(session: Path) -> dict[str, ExpectedStream]:
    return expected_streams(session)


@pytest.mark.parametrize("fmt", ["edf", "bdf"])
def test_an_export_imports_back_within_the_format_resolution(
    session: Path, expected: dict[str, ExpectedStream], fmt: str
) -> None:
    path = run_export(session, fmt, session.parent / f"back.{fmt}", identity=IDENTITY)
    imported = read_foreign(path)
    assert imported.file_format == fmt
    edf = edfio.read_edf(path) if fmt == "edf" else edfio.read_bdf(path)
    assert imported.channel_names == edf.labels
    for stream_name, stream in expected.items():
        for k, channel in enumerate(c for c in imported.channels if c.name.startswith(STREAM_LABEL[stream_name] + ".")):
            signal = edf.get_signal(channel.name)
            step = (signal.physical_max - signal.physical_min) / (signal.digital_max - signal.digital_min)
            assert channel.sample_rate_hz == stream.rate_hz
            want = np.nan_to_num(stream.data[k], nan=0.0)
            assert np.max(np.abs(channel.data - want)) <= step / 2 * 1.000001
    assert imported.channel("emg.es_left").unit == "uV"
    assert imported.channel("thoracic.acc_x").unit == "g"
    assert imported.channel("sacral.gyro_z").unit == "deg/s"
    assert len(imported.annotations) == 10 + N_BURST
    gap = next(a for a in imported.annotations if a.text.startswith("gap emg"))
    assert (gap.onset_s, gap.duration_s) == (3.0, 0.05)
    assert imported.start_time is not None


def test_millivolt_and_volt_channels_come_back_in_microvolts(tmp_path: Path) -> None:
    data = np.sin(np.linspace(0, 6, 1000))
    signals = [
        edfio.EdfSignal(data, 500, label="EMG mV", physical_dimension="mV"),
        edfio.EdfSignal(data * 1e-3, 500, label="EMG V", physical_dimension="V"),
        edfio.EdfSignal(data, 500, label="Temp", physical_dimension="degC"),
    ]
    edfio.Edf(signals, annotations=[edfio.EdfAnnotation(0.5, 1.0, "stretch")]).write(tmp_path / "units.edf")
    imported = read_foreign(tmp_path / "units.edf")
    np.testing.assert_allclose(imported.channel("EMG mV").data, data * 1000, atol=0.05)
    np.testing.assert_allclose(imported.channel("EMG V").data, data * 1000, atol=0.05)
    assert imported.channel("Temp").unit == "degC"
    assert [(a.onset_s, a.duration_s, a.text) for a in imported.annotations] == [(0.5, 1.0, "stretch")]
    names, rate_hz, data_uv = imported.emg_channels()
    assert names == ("EMG mV", "EMG V") and rate_hz == 500 and data_uv.shape == (2, 1000)


def _field(text: str, width: int) -> bytes:
    return text.encode("ascii").ljust(width)


def openbci_bdf(n_records: int, seed: int = 0) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A BDF+ as OpenBCI GUI's DataWriterBDF writes it: 8 EXG channels at 250 Hz in 24 bits over
    +-187500 uV, 3 accelerometer channels in 12 bits over +-4 g, 'X' identification fields, a
    "BDF Annotations " signal of 20 samples holding only "+<seconds>\\x14\\x14" and zeros."""
    rng = np.random.default_rng(seed)
    exg = rng.integers(-(1 << 23), 1 << 23, size=(8, 250 * n_records))
    accel = rng.integers(-2048, 2048, size=(3, 250 * n_records))
    labels = [f"EEG {k}" for k in range(1, 9)] + ["Accel X", "Accel Y", "Accel Z", "BDF Annotations "]
    n = len(labels)
    header = b"\xffBIOSEMI" + _field("X X X X", 80) + _field("X X X X X", 80) + b"21.11.2603.04.05"
    header += _field(str(256 * (n + 1)), 8) + _field("BDF+C", 44) + _field(str(n_records), 8) + _field("1", 8)
    header += _field(str(n), 4)
    header += b"".join(_field(label, 16) for label in labels)
    header += b"".join(_field(t, 80) for t in ["AgAgCl electrode"] * 8 + ["MEMS"] * 3 + [" "])
    header += b"".join(_field(u, 8) for u in ["uV"] * 8 + ["g"] * 3 + [" "])
    header += b"".join(_field(v, 8) for v in ["-187500"] * 8 + ["-4"] * 3 + ["-187500"])
    header += b"".join(_field(v, 8) for v in ["187500"] * 8 + ["4"] * 3 + ["187500"])
    header += b"".join(_field(v, 8) for v in ["-8388608"] * 8 + ["-2048"] * 3 + ["-8388608"])
    header += b"".join(_field(v, 8) for v in ["8388607"] * 8 + ["2047"] * 3 + ["8388607"])
    header += b"".join(_field(" ", 80) for _ in labels)
    header += b"".join(_field(v, 8) for v in ["250"] * 11 + ["20"])
    header += b"".join(_field(" ", 32) for _ in labels)
    records = []
    for r in range(n_records):
        part = [exg[:, 250 * r : 250 * (r + 1)], accel[:, 250 * r : 250 * (r + 1)]]
        samples = np.vstack(part).astype("<i4").view(np.uint8).reshape(11, 250, 4)[:, :, :3].tobytes()
        tal = f"+{r}".encode() + b"\x14\x14"  # OpenBCI writes no terminating 0: the padding is the zeros
        records.append(samples + tal.ljust(60, b"\x00"))
    return header + b"".join(records), exg, accel


def test_openbci_gui_bdf_plus_is_read(tmp_path: Path) -> None:
    raw, exg, accel = openbci_bdf(3)
    (tmp_path / "OpenBCI-BDF-2026-11-21_03-04-05.bdf").write_bytes(raw)
    imported = read_foreign(tmp_path / "OpenBCI-BDF-2026-11-21_03-04-05.bdf")
    assert imported.channel_names == (*(f"EEG {k}" for k in range(1, 9)), "Accel X", "Accel Y", "Accel Z")
    assert set(imported.sample_rates_hz) == {250.0}
    gain = 375000 / (2**24 - 1)
    np.testing.assert_allclose(imported.channel("EEG 3").data, (exg[2] + 8388608) * gain - 187500, atol=1e-6)
    np.testing.assert_allclose(imported.channel("Accel Y").data, (accel[1] + 2048) * 8 / 4095 - 4, atol=1e-9)
    assert imported.channel("Accel Y").unit == "g"
    assert imported.annotations == ()


def test_a_cut_off_last_record_is_dropped_not_fatal(tmp_path: Path) -> None:
    raw, _, _ = openbci_bdf(3)
    (tmp_path / "cut.bdf").write_bytes(raw[:-100])
    imported = read_foreign(tmp_path / "cut.bdf")
    assert imported.channel("EEG 1").data.size == 500


def test_discontinuous_and_non_edf_files_are_refused_in_one_line(tmp_path: Path) -> None:
    raw, _, _ = openbci_bdf(1)
    (tmp_path / "d.bdf").write_bytes(raw.replace(b"BDF+C", b"BDF+D", 1))
    with pytest.raises(RecordingError, match="BDF\\+D \\(discontinuous\\) files are not supported"):
        read_foreign(tmp_path / "d.bdf")
    (tmp_path / "text.edf").write_text("time_s,a\n0,1\n")
    with pytest.raises(RecordingError, match="not an EDF or BDF file"):
        read_foreign(tmp_path / "text.edf")
    (tmp_path / "short.edf").write_bytes(b"0       " + b" " * 40)
    with pytest.raises(RecordingError, match="not a whole EDF header"):
        read_foreign(tmp_path / "short.edf")
    with pytest.raises(RecordingError, match="cannot read"):
        read_foreign(tmp_path / "missing.bdf")


def _valid_edf() -> bytes:
    signals = [edfio.EdfSignal(np.arange(20.0), 10, label="a", physical_dimension="uV")]
    return edfio.Edf(signals, annotations=[edfio.EdfAnnotation(0.1, None, "x")]).to_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.binary(max_size=2000).map(lambda b: b"0       " + b),
        st.binary(max_size=2000).map(lambda b: b"\xffBIOSEMI" + b),
        st.tuples(st.integers(0, 10_000), st.binary(min_size=1, max_size=8)).map(
            lambda cut: (lambda v: v[: cut[0] % len(v)] + cut[1] + v[cut[0] % len(v) + len(cut[1]) :])(_valid_edf())
        ),
    )
)
def test_damaged_edf_bytes_only_ever_raise_recording_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.edf"
    path.write_bytes(data)
    try:
        imported = read_foreign(path)
    except RecordingError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(c.sample_rate_hz > 0 for c in imported.channels)
