"""Parquet export, read back with pyarrow (tables and a dataset over several exports)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from biofeed.record.export import run_export
from biofeed.record.export.parquet_files import ROW_GROUP_ROWS
from tests.record.export_session import IDENTITY, N_BURST, PSEUDONYM, ExpectedStream, expected_streams, make_session

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
ds = pytest.importorskip("pyarrow.dataset")


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_session(tmp_path_factory.mktemp("parquet"))


@pytest.fixture(scope="module")
def expected(session: Path) -> dict[str, ExpectedStream]:
    return expected_streams(session)


@pytest.fixture(scope="module")
def export(session: Path) -> Path:
    return run_export(session, "parquet", identity=IDENTITY)


def test_one_table_per_stream_with_partition_columns(export: Path, expected: dict[str, ExpectedStream]) -> None:
    assert sorted(p.name for p in export.iterdir()) == [
        "emg.parquet",
        "events.parquet",
        "imu_sacral.parquet",
        "imu_thoracic.parquet",
    ]
    for name, stream in expected.items():
        table = pq.read_table(export / f"{name}.parquet")
        assert table.column_names[:5] == ["recording", "stream", "client", "time_s", "sample_index"]
        assert set(table["recording"].to_pylist()) == {"session"}
        assert set(table["stream"].to_pylist()) == {name}
        assert set(table["client"].to_pylist()) == {PSEUDONYM}
        index = table["sample_index"].to_numpy()
        np.testing.assert_array_equal(index, stream.first_index + np.arange(stream.data.shape[1]))
        np.testing.assert_allclose(table["time_s"].to_numpy(), index / stream.rate_hz)
        values = np.vstack([table[c].to_numpy() for c in table.column_names[5:]])
        np.testing.assert_array_equal(values, stream.data)  # float64 throughout: exact, NaN rows for gaps


def test_units_and_recording_json_travel_in_the_metadata(export: Path) -> None:
    schema = pq.read_schema(export / "emg.parquet")
    assert schema.field("es_left").metadata[b"unit"] == b"uV"
    assert schema.field("es_left").metadata[b"site"] == b"erector spinae L1 left"
    meta = json.loads(schema.metadata[b"biofeed.recording"])
    assert meta["client"] == PSEUDONYM and meta["device"]["device_id"] == "sim-1"
    assert json.loads(schema.metadata[b"biofeed.stream"])["sample_rate_hz"] == 2000.0
    assert pq.ParquetFile(export / "emg.parquet").metadata.row_group(0).num_rows <= ROW_GROUP_ROWS


def test_events_table(export: Path) -> None:
    events = pq.read_table(export / "events.parquet")
    assert len(events) == 10 + N_BURST
    assert set(events["recording"].to_pylist()) == {"session"}
    types = events["type"].to_pylist()
    assert types.count("gap") == 2 and types.count("device_marker") == 1


def test_exports_of_many_recordings_read_as_one_dataset(export: Path, session: Path, tmp_path: Path) -> None:
    second = run_export(session, "parquet", tmp_path / "again", identity=IDENTITY, anonymize=True)
    dataset = ds.dataset([str(export / "emg.parquet"), str(second / "emg.parquet")], format="parquet")
    table = dataset.to_table(filter=ds.field("client") == PSEUDONYM, columns=["recording", "es_left"])
    assert set(table["recording"].to_pylist()) == {"session"}
    anonymous = dataset.to_table(filter=ds.field("client").is_null(), columns=["recording"])
    assert set(anonymous["recording"].to_pylist()) == {"rec-" + hashlib.sha256(b"session").hexdigest()[:12]}
