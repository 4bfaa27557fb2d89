"""`biofeed analyze` on recordings, EDF/BDF exports and CSV files; bad files get one clear line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from biofeed.analysis import analyze_path, analyze_recording
from biofeed.cli import main
from biofeed.errors import RecordingError
from biofeed.record.export import run_export
from biofeed.sim.device import SimulatedDevice
from biofeed.sim.outputs import write_recording

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


@pytest.fixture(scope="module")
def pandiculation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 100 s hold one whole trial (onset at 60 s); the full scenario is in tests/test_pipeline.py.
    return write_recording(
        SimulatedDevice("pandiculation", seed=0, duration_s=100.0), tmp_path_factory.mktemp("rec") / "rec"
    )


def test_an_edf_export_analyses_like_its_recording(pandiculation, tmp_path):
    edf = run_export(pandiculation, "bdf", tmp_path / "session.bdf")
    native = analyze_recording(pandiculation)
    imported = analyze_path(edf, channels=["emg.es_left", "emg.es_right"])
    for a, b in zip(native["channels"], imported["channels"], strict=True):
        assert b["name"] == f"emg.{a['name']}"
        assert [t["verdict"] for t in a["contractions"]] == [t["verdict"] for t in b["contractions"]]
        for x, y in zip(a["contractions"], b["contractions"], strict=True):
            assert x["onset_s"] == pytest.approx(y["onset_s"], abs=0.02)


def test_csv_with_a_time_column_and_units(tmp_path):
    rng = np.random.default_rng(3)
    fs = 1000.0
    t = np.arange(int(60 * fs)) / fs
    burst = ((t > 30) & (t < 33)).astype(float)
    emg_mv = (1.5 + 40 * burst) * rng.standard_normal(t.shape) / 1000.0
    path = tmp_path / "session.csv"
    np.savetxt(path, np.c_[t, emg_mv], delimiter=",", header="time_s,left", comments="")
    result = analyze_path(path, unit="mV")
    (channel,) = result["channels"]
    assert channel["name"] == "left" and channel["fs_hz"] == pytest.approx(1000.0)
    assert [round(c["onset_s"]) for c in channel["contractions"]] == [30]


def test_the_real_tibialis_file_gives_its_56_bursts(tmp_path):
    path = tmp_path / "ta.csv"
    path.write_bytes(gzip.decompress((REAL / "emggo-ta-250hz" / "sample_ta_250hz.csv.gz").read_bytes()))
    result = analyze_path(path, fs_hz=250.0, channels=["emg"])
    assert 53 <= len(result["channels"][0]["contractions"]) <= 59
    assert any("250 Hz" in w for w in result["warnings"])


@pytest.mark.parametrize(
    ("content", "args", "words"),
    [
        ("a\n1\nx\n2\n", ["--fs", "1000"], "'x' is not a number"),
        ("a\n1\n2\n", [], "--fs HZ"),
        ("", ["--fs", "1000"], ""),
    ],
)
def test_bad_csv_files_are_one_line(tmp_path, capsys, content, args, words):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["analyze", str(path), *args]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("biofeed: error:") and words in err


def test_options_that_do_not_fit_are_refused(pandiculation, capsys):
    assert main(["analyze", str(pandiculation), "--fs", "1000"]) == 2
    assert "CSV" in capsys.readouterr().err
    assert main(["analyze", str(pandiculation), "--channels", "nope"]) == 1
    assert "es_left" in capsys.readouterr().err
    with pytest.raises(RecordingError, match="no such file"):
        analyze_path(pandiculation / "missing.csv")


def test_json_output_is_strict_and_versioned(pandiculation, capsys):
    assert main(["analyze", str(pandiculation), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["version"] == 1
    trial = result["channels"][0]["contractions"][0]
    for key in ("onset_s", "offset_s", "peak_uv", "release_start_s", "release_end_s", "release_duration_s",
                "monotonic_fraction", "rebursts", "pre_rest_uv", "post_rest_uv", "ratio", "ratio_ci95",
                "persistence_ratio", "verdict", "score"):  # fmt: skip
        assert key in trial


def test_a_recording_with_imus_gets_the_flexion_relaxation_test(tmp_path):
    device = SimulatedDevice("flexion-relaxation", seed=1, duration_s=60.0)
    truth = device.truth()["flexion_relaxation"]
    result = analyze_recording(write_recording(device, tmp_path / "rec"))
    test = result["flexion_relaxation"]
    assert test is not None, result.get("warnings")
    for side in ("es_left", "es_right"):
        assert test["present"][side]["verdict"] == truth["present"][side]["verdict"]
        assert test["frr"][side]["mean"] == pytest.approx(truth["frr"][side]["mean"], rel=0.15)
