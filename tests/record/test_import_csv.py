"""Import of plain CSV files: our exports back, other tools' files, and one clear error for each mistake."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biofeed.errors import RecordingError
from biofeed.record.export import run_export
from biofeed.record.foreign import read_csv_file, read_foreign
from tests.record.export_session import ExpectedStream, expected_streams, make_session


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_session(tmp_path_factory.mktemp("import-csv"))


@pytest.fixture(scope="module")
def expected(session: Path) -> dict[str, ExpectedStream]:
    return expected_streams(session)


def test_an_export_imports_back_with_its_gaps(session: Path, expected: dict[str, ExpectedStream]) -> None:
    folder = run_export(session, "csv", session.parent / "back-csv")
    emg = read_foreign(folder / "emg.csv")
    assert emg.file_format == "csv" and emg.channel_names == ("es_left", "es_right")
    assert emg.sample_rates_hz == (2000.0, 2000.0)
    assert emg.first_time_s == 0.0
    data = np.vstack([c.data for c in emg.channels])
    np.testing.assert_array_equal(np.isnan(data), np.isnan(expected["emg"].data))
    np.testing.assert_allclose(data, expected["emg"].data, rtol=1e-9, atol=1e-12)
    assert read_foreign(folder / "imu_sacral.csv").sample_rates_hz[0] == 100.0


def _write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_units_comments_separators_and_text_columns(tmp_path: Path) -> None:
    text = (
        "%OpenBCI Raw EXG Data\n% Sample Rate = 250 Hz\n"
        "Sample Index; left [mV]; right (µV); far (V); note\n"
        "0; 1.5; 2; 0.001; a\n1; -0.5; 3;; b\n\n2; 0.25; nan; 0; c\n"
    )
    imported = read_csv_file(_write(tmp_path, text), sample_rate_hz=250)
    assert imported.channel_names == ("left", "right", "far")
    assert imported.skipped_columns == ("Sample Index", "note")
    np.testing.assert_allclose(imported.channel("left").data, [1500, -500, 250])
    np.testing.assert_allclose(imported.channel("right").data, [2, 3, np.nan])
    np.testing.assert_allclose(imported.channel("far").data, [1000, np.nan, 0])
    assert set(imported.sample_rates_hz) == {250}
    in_mv = read_csv_file(_write(tmp_path, "a,b\n1,2\n3,4\n", "mv.csv"), sample_rate_hz=1000, unit="mV")
    np.testing.assert_allclose(in_mv.channel("b").data, [2000, 4000])


def test_the_rate_comes_from_time_s(tmp_path: Path) -> None:
    rows = "\n".join(f"{10 + k / 512:.9f},{k}" for k in range(100))
    imported = read_csv_file(_write(tmp_path, "time_s,x\n" + rows + "\n"))
    assert imported.sample_rates_hz == (512.0,) and imported.first_time_s == 10.0
    assert read_csv_file(_write(tmp_path, "time_s,x\n0,1\n1,2\n", "fs.csv"), sample_rate_hz=3).sample_rates_hz == (3,)


def test_chunks_parsed_fast_and_cell_by_cell_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from biofeed.record.foreign import csv_reader

    monkeypatch.setattr(csv_reader, "_CHUNK_ROWS", 3)
    rows = [f"{k / 100:.2f},{k},{-k}" for k in range(10)]
    rows[4] = "0.04,,-4"  # an empty cell: this chunk is read cell by cell, the others by numpy
    imported = read_csv_file(_write(tmp_path, "time_s,a,b [mV]\n" + "\n".join(rows) + "\n"))
    np.testing.assert_allclose(imported.channel("a").data, [0, 1, 2, 3, np.nan, 5, 6, 7, 8, 9])
    np.testing.assert_allclose(imported.channel("b").data, -1000.0 * np.arange(10))
    rows[8] = "0.08,8,x"
    with pytest.raises(RecordingError, match="line 10, column 'b \\[mV\\]': 'x' is not a number"):
        read_csv_file(_write(tmp_path, "time_s,a,b [mV]\n" + "\n".join(rows) + "\n", "bad.csv"))


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("", {}, "empty: no header row"),
        ("% only a comment\n\n", {}, "empty: no header row"),
        ("time_s,a\n", {}, "no data rows after the header"),
        ("time_s,a\n0,1\n0.001,2,3\n", {}, "line 3: 3 cells, the header has 2"),
        ("time_s,a\n0,1\n0.001,x1\n", {}, "line 3, column 'a': 'x1' is not a number"),
        ("time_s,a [kV]\n0,1\n0.001,2\n", {}, "column 'a \\[kV\\]': unknown unit 'kV'; use one of uV, mV, V"),
        ("a,b\n1,2\n", {}, "no time_s column: give the sample rate"),
        ("time_s,a\n0,1\n0.001,2\n0.005,3\n0.006,4\n", {}, "time_s steps are uneven"),
        ("time_s,a\n0,1\n0,2\n", {}, "time_s does not increase"),
        ("time_s,note\n0,a\n1,b\n", {}, "no numeric channel column"),
        ("a,a\n1,2\n", {"sample_rate_hz": 1}, "column names must be unique"),
    ],
)
def test_each_mistake_is_one_clear_line(tmp_path: Path, text: str, kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(RecordingError, match=message) as caught:
        read_csv_file(_write(tmp_path, text), **kwargs)
    assert "\n" not in str(caught.value) and "data.csv" in str(caught.value)


def test_bad_arguments_and_binary_files(tmp_path: Path) -> None:
    path = _write(tmp_path, "a\n1\n")
    with pytest.raises(ValueError, match="unknown unit 'uA'; use one of uV, mV, V"):
        read_csv_file(path, sample_rate_hz=1, unit="uA")
    with pytest.raises(ValueError, match="sample_rate_hz must be a positive number"):
        read_csv_file(path, sample_rate_hz=0)
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RecordingError, match="not UTF-8 text"):
        read_foreign(tmp_path / "bin.csv")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.binary(max_size=300),
        st.text(alphabet='time_s,;\t\n 0123456789.-eE%#xnaNuVm[]()"', max_size=300),
    ),
    st.sampled_from([None, 100.0]),
)
def test_any_bytes_as_csv_only_ever_raise_the_clear_errors(
    tmp_path: Path, data: bytes | str, rate: float | None
) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    try:
        imported = read_csv_file(path, sample_rate_hz=rate)
    except RecordingError as exc:
        assert "\n" not in str(exc)
    else:
        assert imported.channels and all(c.sample_rate_hz > 0 for c in imported.channels)
