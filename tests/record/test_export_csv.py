"""CSV export, read back with pandas."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from biofeed.record.export import run_export
from tests.record.export_session import IDENTITY, N_BURST, ExpectedStream, expected_streams, make_session

pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_session(tmp_path_factory.mktemp("csv"))


@pytest.fixture(scope="module")
def expected(session: Path) -> dict[str, ExpectedStream]:
    return expected_streams(session)


@pytest.fixture(scope="module")
def export(session: Path) -> Path:
    return run_export(session, "csv", identity=IDENTITY)


def test_one_file_per_stream_plus_events_and_channels(export: Path, session: Path) -> None:
    assert export == session.with_name("session-csv")
    names = sorted(p.name for p in export.iterdir())
    assert names == ["channels.csv", "emg.csv", "events.csv", "imu_sacral.csv", "imu_thoracic.csv"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in export.iterdir())
    assert export.stat().st_mode & 0o777 == 0o700


def test_samples_and_times_come_back_with_nan_rows_for_gaps(export: Path, expected: dict[str, ExpectedStream]) -> None:
    for name, stream in expected.items():
        table = pd.read_csv(export / f"{name}.csv")
        assert table.columns[0] == "time_s"
        n_samples = stream.data.shape[1]
        np.testing.assert_allclose(table["time_s"], (stream.first_index + np.arange(n_samples)) / stream.rate_hz)
        values = table.iloc[:, 1:].to_numpy().T
        np.testing.assert_array_equal(np.isnan(values), np.isnan(stream.data))
        np.testing.assert_allclose(values, stream.data, rtol=1e-9, atol=1e-12)
        for start, n_lost in stream.gaps:
            assert np.isnan(values[:, start - stream.first_index : start - stream.first_index + n_lost]).all()
    assert expected["emg"].gaps and expected["imu_thoracic"].gaps


def test_events_csv_holds_every_event_with_its_json(export: Path) -> None:
    events = pd.read_csv(export / "events.csv", keep_default_na=False)
    assert list(events.columns) == ["time_s", "duration_s", "type", "stream", "text", "source", "json"]
    assert len(events) == 10 + N_BURST
    assert list(events["time_s"]) == sorted(events["time_s"])
    gaps = events[events["type"] == "gap"]
    assert sorted(gaps["stream"]) == ["emg", "imu_thoracic"] and set(gaps["source"]) == {"decoder"}
    assert gaps[gaps["stream"] == "emg"]["duration_s"].item() == pytest.approx(0.05)
    phase = events[events["type"] == "phase"].iloc[0]
    assert phase["time_s"] == 4.5 and phase["duration_s"] == 1.5
    assert json.loads(phase["json"])["phase"] == "contraction"
    device = events[events["type"] == "device_marker"].iloc[0]
    assert device["source"] == "device" and device["time_s"] == 12.0


def test_channels_csv_gives_units_rates_and_resolution(export: Path) -> None:
    from biofeed.sim.device import EMG_SCALE_UV

    channels = pd.read_csv(export / "channels.csv", keep_default_na=False)
    emg = channels[channels["stream"] == "emg"]
    assert list(emg["channel"]) == ["es_left", "es_right"]
    assert set(emg["unit"]) == {"uV"} and set(emg["sample_rate_hz"]) == {2000.0}
    assert emg["lsb"].iloc[0] == pytest.approx(EMG_SCALE_UV, rel=1e-6)
    assert set(channels[channels["stream"] == "imu_sacral"]["unit"]) == {"g", "deg/s"}
