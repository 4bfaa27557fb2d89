"""A recording of several devices is filed as one session with one recording per device folder,
each analysed on its own with the calibration of its own board, under the shared view's names."""

import json
import sqlite3

import pytest

from biofeed.multi_device import DeviceSpec, record_devices
from biofeed.sessions.calibrate import CalibrationResult, StepKind, StepResult, StepStatus
from biofeed.sessions.catalogue import CATALOGUE_FILE, MIGRATIONS, SCHEMA_VERSION, Catalogue, migrate
from biofeed.sessions.filing import file_recording
from biofeed.sessions.history import client_history
from biofeed.sessions.session_analysis import analyse_session_recording
from biofeed.sim.device import SimulatedDevice
from biofeed.sources.sim import SimSource

CHANNELS = ("es_left", "es_right")


def _calibration(board_profile: str, floor_uv: float, reference_uv: float | None = None) -> dict:
    step = StepResult(
        0,
        StepKind.NOISE_FLOOR,
        "lying_supine",
        StepStatus.PASSED,
        "measured",
        {
            "stream": "emg",
            "channels": list(CHANNELS),
            "noise_floor_uv": dict.fromkeys(CHANNELS, floor_uv),
            "source": "calibration_rest",
        },
    )
    steps = [step]
    if reference_uv is not None:
        values = {
            "reference_contraction_uv": dict.fromkeys(CHANNELS, reference_uv),
            "hold_s": dict.fromkeys(CHANNELS, 3.0),
        }
        steps.append(
            StepResult(1, StepKind.REFERENCE_CONTRACTION, "lying_prone", StepStatus.PASSED, "measured", values)
        )
    return CalibrationResult("calibration", board_profile, "sim-1", tuple(steps)).to_json()


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """left: a pandiculation (its trial comes at 60 s); right: a rest. Both for client anna."""
    root = tmp_path_factory.mktemp("devices")
    sources = [
        SimSource(SimulatedDevice("pandiculation", seed=1, duration_s=75.0), speed=0.0),
        SimSource(SimulatedDevice("rest", seed=2, duration_s=30.0), speed=0.0),
    ]
    specs = [DeviceSpec("left", sources[0].url), DeviceSpec("right", sources[1].url)]
    result = record_devices(specs, sources, root / "rec", client="anna", pipeline_factory=None)
    assert not result.errors
    return root / "rec"


@pytest.fixture(scope="module")
def filed(recording, tmp_path_factory):
    catalogue = Catalogue(tmp_path_factory.mktemp("home") / CATALOGUE_FILE)
    anna = catalogue.add_client("anna")
    catalogue.add_calibration(anna, _calibration("ads1299", 0.5))  # another board: not applied
    calibration = catalogue.add_calibration(anna, _calibration("simulator", 1.5))
    filed = file_recording(catalogue, anna, recording)
    yield catalogue, anna, calibration, filed
    catalogue.close()


def test_one_session_holds_a_recording_per_device_folder(recording, filed):
    catalogue, anna, calibration, result = filed
    (session,) = catalogue.sessions(anna)
    assert result.session == session
    assert session.calibration_id == calibration.id and session.board_profile == "simulator"
    assert session.started == json.loads((recording / "recording.json").read_text())["created"]
    records = catalogue.recordings(session)
    assert [r.path for r in records] == [str((recording / label).resolve()) for label in ("left", "right")]
    assert [r.device_label for r in records] == ["left", "right"]
    assert [r.calibration_id for r in records] == [calibration.id] * 2
    assert [f.label for f in result.recordings] == ["left", "right"]
    assert result.recording == records[0] and result.analysis is result.recordings[0].analysis


def test_each_device_is_analysed_on_its_own_with_its_boards_calibration(recording, filed):
    catalogue, _, calibration, result = filed
    for part in result.recordings:
        stored = catalogue.analysis(part.recording)
        assert stored["recording"]["device_label"] == part.label
        assert stored["calibration"]["applied"] and stored["calibration"]["noise_floor"]
        alone = analyse_session_recording(
            recording / part.label, calibration=CalibrationResult.from_json(calibration.result)
        )
        assert stored["set_points"] == alone["set_points"]
        assert stored["trials"] == alone["trials"]
        assert set(stored["set_points"]["before"]) == set(CHANNELS)  # the device's own names


def test_set_points_and_trials_carry_the_device_label(filed):
    catalogue, anna, _, result = filed
    (session,) = catalogue.sessions(anna)
    points = catalogue.set_points(session)
    assert set(points["before"]) == {f"{label}.{c}" for label in ("left", "right") for c in CHANNELS}
    for part in result.recordings:
        for channel in CHANNELS:
            own = part.analysis["set_points"]["before"][channel]
            assert points["before"][f"{part.label}.{channel}"]["value_uv"] == own["value_uv"]
    trials = catalogue.trials(session)
    assert trials, "the left device's pandiculation gives trials"
    assert {t.channel for t in trials} == {f"left.{c}" for c in CHANNELS}  # the rest gives none
    for trial in trials:
        assert trial.trial["device"] == "left" and trial.trial["stream"] == "left.emg"
        assert trial.recording_id == result.recordings[0].recording.id


def test_a_filed_recording_or_any_of_its_device_folders_is_not_filed_twice(recording, filed):
    catalogue, anna, _, _ = filed
    for path in (recording, recording / "right"):
        with pytest.raises(ValueError, match="is filed already"):
            file_recording(catalogue, anna, path)
    ben = catalogue.add_client("ben")
    with pytest.raises(ValueError, match="recorded for client 'anna', not 'ben'"):
        file_recording(catalogue, ben, recording)
    assert len(catalogue.sessions(anna)) == 1 and catalogue.sessions(ben) == []


def test_a_device_folder_filed_alone_is_a_single_device_session(recording, tmp_path):
    with Catalogue(tmp_path / CATALOGUE_FILE) as catalogue:
        anna = catalogue.add_client("anna")
        result = file_recording(catalogue, anna, recording / "right")
        (part,) = result.recordings
        assert part.label is None and part.recording.device_label is None
        assert "device_label" not in part.analysis["recording"]
        assert part.recording.calibration_id is None  # no calibration stored
        assert set(catalogue.set_points(result.session)["before"]) == set(CHANNELS)


def test_a_catalogue_of_schema_1_gains_the_device_columns_and_keeps_its_recordings(tmp_path):
    path = tmp_path / CATALOGUE_FILE
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, path, MIGRATIONS[:1])
    db.execute("INSERT INTO clients (pseudonym, created) VALUES ('anna', '2026-01-01T00:00:00Z')")
    db.execute("INSERT INTO sessions (client_id, started) VALUES (1, '2026-01-01T00:00:00Z')")
    db.execute("INSERT INTO recordings (session_id, path, analysis_json) VALUES (1, '/r', '{}')")
    db.close()
    with Catalogue(path) as catalogue:
        assert catalogue._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        (session,) = catalogue.sessions(catalogue.client("anna"))
        (old,) = catalogue.recordings(session)
        assert (old.path, old.device_label, old.calibration_id) == ("/r", None, None)


def test_history_gives_each_device_channel_its_percentage_of_the_reference_contraction(recording, tmp_path):
    with Catalogue(tmp_path / CATALOGUE_FILE) as catalogue:
        anna = catalogue.add_client("anna")
        catalogue.add_calibration(anna, _calibration("simulator", 1.5, reference_uv=50.0))
        file_recording(catalogue, anna, recording)
        (session,) = client_history(catalogue, anna)["sessions"]
    before_uv, before_pct = session["set_point_before_uv"], session["set_point_before_rvc_pct"]
    assert set(before_pct) == {f"{label}.{c}" for label in ("left", "right") for c in CHANNELS}
    for name, value_uv in before_uv.items():
        assert value_uv is not None and before_pct[name] == pytest.approx(100.0 * value_uv / 50.0)
