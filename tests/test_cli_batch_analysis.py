"""`biofeed analyze DIR --jobs N [--table FILE] [--dask SCHEDULER]`: a folder of recordings into one table of trials."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from biofeed.cli import main
from biofeed.sim.device import SimulatedDevice
from biofeed.sim.outputs import write_recording


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recording with one trial per channel (onset at 60 s), a short one without trials, a broken one."""
    root = tmp_path_factory.mktemp("lab")
    write_recording(SimulatedDevice("pandiculation", seed=1, duration_s=75.0), root / "a")
    write_recording(SimulatedDevice("rest", seed=2, duration_s=15.0), root / "b")
    (root / "c").mkdir()
    (root / "c" / "recording.json").write_text("{ not json", encoding="utf-8")
    return root


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_a_folder_of_recordings_prints_one_csv_table_and_notes_the_broken_one(lab, capsys):
    assert main(["analyze", str(lab), "--jobs", "2"]) == 1  # one recording failed; the others are in the table
    out, err = capsys.readouterr()
    rows = _csv(out)
    trials = [r for r in rows if not r["error"]]
    assert {r["recording"] for r in trials} == {str(lab / "a")}
    assert [(r["channel"], r["trial"]) for r in trials] == [("es_left", "0"), ("es_right", "0")]
    assert all(59.5 < float(r["onset_s"]) < 61 for r in trials)
    assert [r["recording"] for r in rows if r["error"]] == [str(lab / "c")]
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"biofeed: {lab / 'c'}: ")
    assert "Traceback" not in err


def test_jobs_1_jobs_2_and_a_local_dask_cluster_write_the_same_table(lab, tmp_path, capsys):
    pytest.importorskip("distributed")
    tables = []
    for name, options in (("one", ["--jobs", "1"]), ("two", ["--jobs", "2"]), ("dask", ["--dask", "local"])):
        path = tmp_path / f"{name}.csv"
        assert main(["analyze", str(lab), *options, "--table", str(path)]) == 1
        tables.append(path.read_text(encoding="utf-8"))
    assert tables[0] == tables[1] == tables[2]
    out = capsys.readouterr().out
    assert "2 trials from 2 of 3 recordings" in out


def test_parquet_table(lab, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "trials.parquet"
    assert main(["analyze", str(lab), "--table", str(path)]) == 1
    rows = pq.read_table(path).to_pylist()
    assert [r["channel"] for r in rows if r["error"] is None] == ["es_left", "es_right"]
    assert all(isinstance(r["score"], float) for r in rows if r["error"] is None)


def test_json_lines(lab, capsys):
    main(["analyze", str(lab), "--json", "--jobs", "1"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["recording"] for r in rows] == [str(lab / "a"), str(lab / "a"), str(lab / "c")]


def test_a_single_recording_still_gets_the_per_recording_report(lab, capsys):
    assert main(["analyze", str(lab / "a")]) == 0
    assert "set point" in capsys.readouterr().out


def test_bad_batch_arguments_are_one_line(lab, tmp_path, capsys):
    assert main(["analyze", str(lab), "--table", str(tmp_path / "t.xlsx")]) == 2
    assert main(["analyze", str(lab), "--jobs", "2", "--fs", "1000"]) == 2
    assert main(["analyze", str(tmp_path), "--jobs", "2"]) == 1  # no recording in it
    err = capsys.readouterr().err
    assert err.count("biofeed: error:") == 3
    assert "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["analyze", str(lab), "--jobs", "0"])
