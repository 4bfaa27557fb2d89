import sqlite3
import stat

import pytest

from biofeed.sessions.catalogue import (
    CATALOGUE_FILE,
    MIGRATIONS,
    SCHEMA_VERSION,
    Catalogue,
    CatalogueError,
    default_catalogue_path,
    migrate,
)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def catalogue(tmp_path):
    with Catalogue(tmp_path / "home" / CATALOGUE_FILE) as cat:
        yield cat


def test_the_catalogue_lives_in_biofeed_home_readable_by_its_owner_only(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    monkeypatch.setenv("BIOFEED_HOME", str(home))
    path = default_catalogue_path()
    assert path == home / CATALOGUE_FILE
    with Catalogue() as catalogue:
        catalogue.add_client("anna", name="Anna A.", birth_date="1980-02-03")
    assert _mode(home) == 0o700
    assert _mode(path) == 0o600
    # a catalogue that someone loosened is tightened again when opened
    path.chmod(0o644)
    Catalogue().close()
    assert _mode(path) == 0o600


def test_the_journal_gets_the_catalogues_mode(tmp_path):
    path = tmp_path / CATALOGUE_FILE
    with Catalogue(path) as catalogue, catalogue.transaction():
        catalogue.add_client("anna")
        journals = [p for p in tmp_path.iterdir() if p.name != CATALOGUE_FILE]
        assert journals  # SQLite's rollback journal exists during the write
        assert all(_mode(p) == 0o600 for p in journals)


def test_clients_are_pseudonymous_by_default(catalogue):
    generated = catalogue.add_client()
    assert generated.pseudonym.startswith("client-") and generated.name is None and generated.birth_date is None
    assert generated.to_json().keys() == {"pseudonym", "created"}
    named = catalogue.add_client("bob-2", name="Bob B.", birth_date="1975-12-01")
    assert named.to_json()["name"] == "Bob B." and named.to_json()["birth_date"] == "1975-12-01"
    assert [c.pseudonym for c in catalogue.clients()] == sorted([generated.pseudonym, "bob-2"])
    assert catalogue.client("bob-2") == named


def test_client_errors_name_what_was_expected(catalogue):
    catalogue.add_client("anna")
    with pytest.raises(CatalogueError, match="exists already"):
        catalogue.add_client("anna")
    with pytest.raises(ValueError, match="a pseudonym is 1-64 letters"):
        catalogue.add_client("Anna Smith")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        catalogue.add_client("carl", birth_date="3/4/1980")
    with pytest.raises(CatalogueError, match="no client 'zoe'; known: anna"):
        catalogue.client("zoe")


def _analysis():
    return {"recording": {"path": "x"}, "board": {}, "windows": {}, "big": list(range(100))}


def test_sessions_recordings_set_points_trials_and_verdicts(catalogue, tmp_path):
    anna = catalogue.add_client("anna")
    calibration = catalogue.add_calibration(
        anna,
        {"protocol": "calibration", "board_profile": "simulator", "complete": True, "noise_floor_uv": {"es_left": 1.5}},
        recording_path=tmp_path / "cal",
    )
    assert catalogue.latest_calibration(anna, "simulator") == calibration
    assert catalogue.latest_calibration(anna, "ads1299") is None
    session = catalogue.add_session(
        anna, started="2025-01-02T10:00:00Z", protocol="pandiculation", calibration_id=calibration.id
    )
    folder = tmp_path / "rec"
    folder.mkdir()
    recording = catalogue.add_recording(session, folder, _analysis(), created="2025-01-02T10:00:00Z", duration_s=200.0)
    assert catalogue.recording_by_path(folder) == recording
    assert catalogue.analysis(recording) == _analysis()
    with pytest.raises(CatalogueError, match="filed already"):
        catalogue.add_recording(session, folder, _analysis())
    catalogue.add_set_point(session, "es_left", "before", 5.8, [5.7, 5.9, 5.8], "lying_supine")
    catalogue.add_set_point(session, "es_left", "after", None, [], "lying_supine")
    with pytest.raises(ValueError, match="'before' or 'after'"):
        catalogue.add_set_point(session, "es_left", "during", 1.0, [])
    points = catalogue.set_points(session)
    assert points["before"]["es_left"] == {"value_uv": 5.8, "windows_uv": [5.7, 5.9, 5.8], "posture": "lying_supine"}
    assert points["after"]["es_left"]["value_uv"] is None
    real = {"channel": "es_left", "trial_index": 0, "sham": False, "onset_s": 60.0, "score": 90.0, "ratio": 0.6}
    catalogue.add_trial(session, recording, real | {"verdict": "none", "verdict_reason": "above the limit"})
    overridden = real | {
        "trial_index": 1,
        "verdict": "not_measurable",
        "verdict_reason": "not measurable with this board",
        "analysis_verdict": "true",
        "analysis_verdict_reason": "all three",
    }
    board_trial = catalogue.add_trial(session, recording, overridden)
    catalogue.add_trial(
        session,
        recording,
        {"channel": "es_left", "trial_index": 2, "sham": True, "verdict": "none", "verdict_reason": "r"},
    )
    trials = catalogue.trials(session)
    assert [(t.trial_index, t.sham, t.verdict, t.verdict_source) for t in trials] == [
        (0, False, "none", "analysis"),
        (1, False, "not_measurable", "board"),
        (2, True, "none", "analysis"),
    ]
    history = catalogue._db.execute(
        "SELECT source, verdict FROM verdicts WHERE trial_id = ? ORDER BY id", (board_trial,)
    )
    assert [tuple(r) for r in history] == [("analysis", "true"), ("board", "not_measurable")]
    with pytest.raises(sqlite3.IntegrityError):  # only the five verdicts of SCIENCE.md 6
        catalogue.add_trial(session, recording, real | {"verdict": "maybe", "verdict_reason": ""})
    assert len(catalogue.trials(session)) == 3  # the failed insert left nothing behind
    assert catalogue.sessions(anna) == [session] and catalogue.recordings(session) == [recording]


def test_notes(catalogue):
    anna = catalogue.add_client("anna")
    bob = catalogue.add_client("bob")
    session = catalogue.add_session(bob, started="2025-01-01T00:00:00Z")
    note = catalogue.add_note(anna, "felt easier today")
    assert catalogue.notes(anna) == [note] and note.session_id is None
    with pytest.raises(ValueError, match="not a session of anna"):
        catalogue.add_note(anna, "x", session)
    with pytest.raises(ValueError, match="needs some text"):
        catalogue.add_note(anna, "  ")


def test_a_failed_transaction_keeps_nothing(catalogue):
    with pytest.raises(RuntimeError), catalogue.transaction():
        catalogue.add_client("anna")
        raise RuntimeError("disk gone")
    assert catalogue.clients() == []


def test_migrations_run_in_order_and_newer_catalogues_are_refused(tmp_path):
    path = tmp_path / CATALOGUE_FILE
    db = sqlite3.connect(path, isolation_level=None)
    steps = ("CREATE TABLE a (x INTEGER);", "ALTER TABLE a ADD COLUMN y TEXT;")
    assert migrate(db, path, steps[:1]) == 0
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert migrate(db, path, steps) == 1  # only the pending one runs
    assert [r[1] for r in db.execute("PRAGMA table_info(a)")] == ["x", "y"]
    with pytest.raises(CatalogueError, match="migration to schema 3 failed"):
        migrate(db, path, (*steps, "CREATE TABLE a (z INTEGER);"))
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2  # the failed step left it as it was
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.close()
    with pytest.raises(CatalogueError, match="newer than this biofeed reads"):
        Catalogue(path)


def test_a_new_catalogue_is_at_the_current_schema_and_garbage_is_refused(tmp_path):
    with Catalogue(tmp_path / "c.sqlite") as catalogue:
        assert catalogue._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database at all, just text" * 100)
    with pytest.raises(CatalogueError, match="not a biofeed catalogue"):
        Catalogue(junk)
