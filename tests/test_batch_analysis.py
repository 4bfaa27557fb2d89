"""Many recordings into one table of trials: in one process, in worker processes, on Dask; broken ones noted."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from biofeed.analysis import analyze_recording
from biofeed.batch_analysis import (
    TRIAL_COLUMNS,
    analyze_many,
    analyze_one,
    find_recordings,
    write_table,
)
from biofeed.errors import RecordingError
from biofeed.sim.device import SimulatedDevice
from biofeed.sim.outputs import write_recording

# 75 s hold one trial per channel (onset at 60 s, released by 72 s); it ends before its post-rest.
DURATION_S = 75.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recording with trials (in a sub-folder), a short one without, and a broken one."""
    root = tmp_path_factory.mktemp("lab")
    write_recording(SimulatedDevice("pandiculation", seed=1, duration_s=DURATION_S), root / "a-client" / "monday")
    write_recording(SimulatedDevice("rest", seed=2, duration_s=15.0), root / "b-client")
    broken = root / "c-broken"
    broken.mkdir()
    (broken / "recording.json").write_text("{ not json", encoding="utf-8")
    (root / "notes").mkdir()  # not a recording: ignored
    return root


@pytest.fixture(scope="module")
def one_process(lab: Path) -> list[dict[str, Any]]:
    return analyze_many(find_recordings(lab), jobs=1).rows


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    def key(row: dict[str, Any]) -> list[Any]:
        return ["nan" if isinstance(v, float) and math.isnan(v) else v for v in row.values()]

    return [key(r) for r in a] == [key(r) for r in b]


def test_finds_every_recording_sorted_and_skips_other_folders(lab):
    assert find_recordings(lab) == [lab / "a-client" / "monday", lab / "b-client", lab / "c-broken"]


def test_a_recording_of_several_devices_is_analysed_per_device(tmp_path):
    for folder in (tmp_path / "session", tmp_path / "session" / "left", tmp_path / "session" / "right"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "recording.json").write_text("{}", encoding="utf-8")
    assert find_recordings(tmp_path) == [tmp_path / "session" / "left", tmp_path / "session" / "right"]


def test_a_folder_without_recordings_is_one_clear_error(tmp_path):
    with pytest.raises(RecordingError, match="holds no recording"):
        find_recordings(tmp_path)
    with pytest.raises(RecordingError, match="no such folder"):
        find_recordings(tmp_path / "missing")


def test_rows_are_the_trials_of_analyze(lab, one_process):
    recording = lab / "a-client" / "monday"
    rows = [r for r in one_process if r["recording"] == str(recording)]
    result = analyze_recording(recording)
    expected = [(c["name"], k, t) for c in result["channels"] for k, t in enumerate(c["contractions"])]
    assert len(rows) == len(expected) >= 2
    for row, (channel, index, trial) in zip(rows, expected, strict=True):
        assert list(row) == list(TRIAL_COLUMNS)
        assert (row["stream"], row["channel"], row["trial"]) == ("emg", channel, index)
        assert row["onset_s"] == trial["onset_s"]
        assert row["verdict"] == trial["verdict"]
        assert row["score"] == trial["score"]
        assert row["error"] is None
        assert json.loads(row["set_points"])[0]["set_point_uv"] == pytest.approx(row["set_point_uv"])
    assert 59.5 < rows[0]["onset_s"] < 61.0


def test_a_broken_recording_is_one_error_row_and_does_not_stop_the_others(lab, one_process):
    broken = [r for r in one_process if r["error"] is not None]
    assert [r["recording"] for r in broken] == [str(lab / "c-broken")]
    assert "recording.json is damaged" in broken[0]["error"]
    assert "\n" not in broken[0]["error"]
    assert {r["recording"] for r in one_process if r["error"] is None} == {str(lab / "a-client" / "monday")}
    assert analyze_one(lab / "c-broken").error == broken[0]["error"]


def test_a_recording_without_trials_gives_no_row_and_no_error(lab):
    result = analyze_many([lab / "b-client"])
    assert result.rows == []
    assert result.errors == []
    assert [r.recording for r in result.recordings] == [str(lab / "b-client")]


def test_worker_processes_give_the_same_table(lab, one_process):
    result = analyze_many(find_recordings(lab), jobs=2)
    assert _same(result.rows, one_process)
    assert [path for path, _ in result.errors] == [str(lab / "c-broken")]


def test_a_dask_cluster_gives_the_same_table(lab, one_process):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
    ):
        result = analyze_many(find_recordings(lab), dask_scheduler=cluster.scheduler_address)
    assert _same(result.rows, one_process)


def test_jobs_below_one_is_refused(lab):
    with pytest.raises(ValueError, match="jobs"):
        analyze_many(find_recordings(lab), jobs=0)


def test_csv_reads_back(one_process, tmp_path):
    path = write_table(one_process, tmp_path / "trials.csv")
    with path.open(encoding="utf-8", newline="") as table:
        back = list(csv.DictReader(table))
    assert len(back) == len(one_process)
    assert list(back[0]) == list(TRIAL_COLUMNS)
    for row, original in zip(back, one_process, strict=True):
        assert row["recording"] == original["recording"]
        assert row["verdict"] == (original["verdict"] or "")
        if original["onset_s"] is not None:
            assert float(row["onset_s"]) == original["onset_s"]
            assert int(row["trial"]) == original["trial"]
        assert (row["error"] or None) == original["error"]


def test_parquet_reads_back(one_process, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(write_table(one_process, tmp_path / "trials.parquet"))
    assert table.column_names == list(TRIAL_COLUMNS)
    back = table.to_pylist()
    assert len(back) == len(one_process)
    for row, original in zip(back, one_process, strict=True):
        assert row["recording"] == original["recording"]
        assert row["onset_s"] == original["onset_s"]
        assert row["score"] == original["score"]
        assert row["trial"] == original["trial"]
        assert row["error"] == original["error"]
    assert str(table.schema.field("score").type) == "double"
    assert str(table.schema.field("trial").type) == "int64"


def test_a_table_must_be_csv_or_parquet(tmp_path):
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        write_table([], tmp_path / "trials.xlsx")


def test_missing_numbers_are_empty_cells(tmp_path):
    row = dict.fromkeys(TRIAL_COLUMNS)
    row.update(recording="r", ratio=math.nan, trial=0)
    path = write_table([row], tmp_path / "t.csv")
    back = next(csv.DictReader(path.open(encoding="utf-8")))
    assert back["ratio"] == ""
    assert back["trial"] == "0"
