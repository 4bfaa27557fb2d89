"""The practitioner's catalogue: clients, sessions, recordings, calibrations, trials, verdicts, notes.

One SQLite file (stdlib :mod:`sqlite3`, no server) under ``$BIOFEED_HOME`` (default: the
platform's per-user data folder), created readable by its owner only (0o600, in a 0o700 folder:
it holds health data; SQLite gives its journal the same mode). Recordings stay ordinary folders;
the catalogue keeps their paths and each one's session analysis (docs/sessions.md).

Clients are known by a **pseudonym** (generated when none is given); a name and birth date are
stored only when given. The schema is versioned with ``PRAGMA user_version`` and brought up to date
by :data:`MIGRATIONS` when opened; a catalogue from a newer biofeed is refused, never altered.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from biofeed.errors import CatalogueError
from biofeed.home import biofeed_home
from biofeed.record.meta import utc_now_iso
from biofeed.record.writer import json_safe

if TYPE_CHECKING:
    from biofeed.record.export.identity import ClientIdentity

__all__ = [
    "CATALOGUE_FILE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "CalibrationRecord",
    "Catalogue",
    "Client",
    "Note",
    "RecordingRecord",
    "SessionRecord",
    "TrialRecord",
    "default_catalogue_path",
    "export_identity",
    "migrate",
]

CATALOGUE_FILE = "catalogue.sqlite"
_FOLDER_MODE = 0o700
_FILE_MODE = 0o600
_PSEUDONYM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_VERDICTS = "'true', 'transient', 'none', 'not_measurable', 'rejected'"
_RECORDING_COLUMNS = "id, session_id, path, created, device_id, duration_s, device_label, calibration_id"

_SCHEMA_V1 = f"""
CREATE TABLE clients (
    id INTEGER PRIMARY KEY,
    pseudonym TEXT NOT NULL UNIQUE,
    name TEXT,
    birth_date TEXT,
    created TEXT NOT NULL
);
CREATE TABLE calibrations (
    id INTEGER PRIMARY KEY,
    client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    created TEXT NOT NULL,
    protocol TEXT NOT NULL,
    board_profile TEXT,
    device_id TEXT,
    recording_path TEXT,
    complete INTEGER NOT NULL,
    result_json TEXT NOT NULL
);
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    started TEXT NOT NULL,
    protocol TEXT,
    posture TEXT,
    calibration_id INTEGER REFERENCES calibrations(id) ON DELETE SET NULL,
    board_profile TEXT
);
CREATE TABLE recordings (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    path TEXT NOT NULL UNIQUE,
    created TEXT,
    device_id TEXT,
    duration_s REAL,
    analysis_json TEXT NOT NULL
);
CREATE TABLE set_points (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    moment TEXT NOT NULL CHECK (moment IN ('before', 'after')),
    posture TEXT,
    value_uv REAL,
    windows_json TEXT NOT NULL,
    UNIQUE (session_id, channel, moment)
);
CREATE TABLE trials (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    trial_index INTEGER,
    sham INTEGER NOT NULL,
    onset_s REAL,
    score REAL,
    ratio REAL,
    trial_json TEXT NOT NULL
);
CREATE TABLE verdicts (
    id INTEGER PRIMARY KEY,
    trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    source TEXT NOT NULL CHECK (source IN ('analysis', 'board')),
    verdict TEXT NOT NULL CHECK (verdict IN ({_VERDICTS})),
    reason TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE notes (
    id INTEGER PRIMARY KEY,
    client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
    created TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX sessions_by_client ON sessions (client_id, started);
CREATE INDEX trials_by_session ON trials (session_id);
CREATE INDEX verdicts_by_trial ON verdicts (trial_id);
"""

# A recording of several devices is one session with one recording per device folder; each keeps
# its device's label and the calibration applied to it (devices on different boards differ).
_SCHEMA_V2 = """
ALTER TABLE recordings ADD COLUMN device_label TEXT;
ALTER TABLE recordings ADD COLUMN calibration_id INTEGER REFERENCES calibrations(id) ON DELETE SET NULL;
"""

MIGRATIONS: tuple[str, ...] = (_SCHEMA_V1, _SCHEMA_V2)
"""``MIGRATIONS[k]`` brings a catalogue from schema version k to k + 1 (0: an empty file)."""
SCHEMA_VERSION = len(MIGRATIONS)


def default_catalogue_path() -> Path:
    """``<BIOFEED_HOME>/catalogue.sqlite``."""
    return biofeed_home() / CATALOGUE_FILE


def export_identity(meta: Mapping[str, Any], path: Path | str | None = None) -> ClientIdentity:
    """Who a recording is about, for an anonymized export: its ``recording.json``, completed by the catalogue.

    A recording names its client by pseudonym only; the catalogue may hold the client's name and
    birth date, which a practitioner's note in the recording can mention. An anonymized export
    redacts them too (:meth:`~biofeed.record.export.identity.ClientIdentity.redact`).

    Parameters
    ----------
    meta : mapping
        The recording's ``recording.json``.
    path : Path or str, optional
        The catalogue; :func:`default_catalogue_path` when None. None is created when there is none.

    Returns
    -------
    ClientIdentity
        The catalogue's name and birth date where it has them, the recording's otherwise.

    Raises
    ------
    CatalogueError
        When the catalogue exists but cannot be read.
    """
    from biofeed.record.export.identity import ClientIdentity  # the exporters: only when exporting

    own = ClientIdentity.from_meta(meta)
    file = Path(path) if path is not None else default_catalogue_path()
    if own.pseudonym is None or not file.is_file():
        return own
    with Catalogue(file) as catalogue:
        row = catalogue._db.execute("SELECT * FROM clients WHERE pseudonym = ?", (own.pseudonym,)).fetchone()
    if row is None:
        return own
    client = _client(row)
    birth_date = date.fromisoformat(client.birth_date) if client.birth_date else own.birth_date
    return ClientIdentity(own.pseudonym, client.name or own.name, birth_date, own.sex)


def migrate(db: sqlite3.Connection, path: Path, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Bring a catalogue's schema up to date; return the version it was at.

    Each migration runs in its own transaction with the new ``user_version``, so a failure leaves
    the catalogue at the last complete version.

    Raises
    ------
    CatalogueError
        When the catalogue is newer than ``migrations`` know.
    """
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > len(migrations):
        raise CatalogueError(
            path, f"catalogue schema {version} is newer than this biofeed reads ({len(migrations)}); update biofeed"
        )
    for k in range(version, len(migrations)):
        try:
            db.executescript(f"BEGIN;\n{migrations[k]}\nPRAGMA user_version = {k + 1};\nCOMMIT;")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise CatalogueError(path, f"migration to schema {k + 1} failed: {exc}") from exc
    return version


def _make_private(path: Path) -> None:
    folder = path.parent
    folder.mkdir(mode=_FOLDER_MODE, parents=True, exist_ok=True)
    os.chmod(folder, _FOLDER_MODE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, _FILE_MODE)
    try:
        # the umask can only remove bits; fchmod makes the mode exact (and tightens an old file)
        os.fchmod(fd, _FILE_MODE)
    finally:
        os.close(fd)


def _dumps(value: Any) -> str:
    return json.dumps(json_safe(value), allow_nan=False, separators=(",", ":"))


@dataclass(frozen=True)
class Client:
    """A client.

    Attributes
    ----------
    id : int
    pseudonym : str
        What recordings, reports and commands call the client.
    name, birth_date : str or None
        Only when given.
    created : str
        ISO 8601 UTC.
    """

    id: int
    pseudonym: str
    name: str | None
    birth_date: str | None
    created: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (name and birth date only when stored)."""
        out: dict[str, Any] = {"pseudonym": self.pseudonym, "created": self.created}
        if self.name is not None:
            out["name"] = self.name
        if self.birth_date is not None:
            out["birth_date"] = self.birth_date
        return out


@dataclass(frozen=True)
class CalibrationRecord:
    """A stored calibration.

    Attributes
    ----------
    id, client_id : int
    created, protocol : str
    board_profile, device_id, recording_path : str or None
    complete : bool
    result : dict
        :meth:`biofeed.sessions.calibrate.CalibrationResult.to_json`.
    """

    id: int
    client_id: int
    created: str
    protocol: str
    board_profile: str | None
    device_id: str | None
    recording_path: str | None
    complete: bool
    result: dict[str, Any]


@dataclass(frozen=True)
class SessionRecord:
    """A session.

    Attributes
    ----------
    id, client_id : int
    started : str
        ISO 8601 UTC (the first recording's start).
    protocol, posture, board_profile : str or None
    calibration_id : int or None
        The calibration applied.
    """

    id: int
    client_id: int
    started: str
    protocol: str | None
    posture: str | None
    calibration_id: int | None
    board_profile: str | None


@dataclass(frozen=True)
class RecordingRecord:
    """A recording filed under a session.

    Attributes
    ----------
    id, session_id : int
    path : str
        The recording folder (absolute): a device's folder for a recording of several devices.
    created, device_id : str or None
    duration_s : float or None
    device_label : str or None
        The device's label in a recording of several devices (``left``); None for one device.
    calibration_id : int or None
        The calibration applied to this recording's analysis.
    """

    id: int
    session_id: int
    path: str
    created: str | None
    device_id: str | None
    duration_s: float | None
    device_label: str | None = None
    calibration_id: int | None = None


@dataclass(frozen=True)
class TrialRecord:
    """A trial (real or sham) with its verdict in force.

    Attributes
    ----------
    id, session_id, recording_id : int
    channel : str
    trial_index : int or None
    sham : bool
    trial : dict
        The trial's JSON (session analysis).
    verdict, verdict_reason, verdict_source : str
        The verdict in force: the board's when it overrode the analysis's.
    """

    id: int
    session_id: int
    recording_id: int
    channel: str
    trial_index: int | None
    sham: bool
    trial: dict[str, Any]
    verdict: str
    verdict_reason: str
    verdict_source: str


@dataclass(frozen=True)
class Note:
    """A practitioner's note.

    Attributes
    ----------
    id, client_id : int
    session_id : int or None
    created, text : str
    """

    id: int
    client_id: int
    session_id: int | None
    created: str
    text: str


class Catalogue:
    """The catalogue file, opened (created and migrated when needed).

    Parameters
    ----------
    path : Path or str, optional
        The SQLite file; :func:`default_catalogue_path` when None.

    Raises
    ------
    CatalogueError
        When the file is not a catalogue, cannot be opened or is from a newer biofeed.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_catalogue_path()
        try:
            _make_private(self.path)
            # autocommit: transactions are explicit (transaction()), so migrations control theirs
            self._db = sqlite3.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise CatalogueError(self.path, f"cannot open the catalogue: {exc}") from exc
        self._db.row_factory = sqlite3.Row
        self._depth = 0
        try:
            self._db.execute("PRAGMA foreign_keys = ON")
            migrate(self._db, self.path)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise CatalogueError(self.path, f"not a biofeed catalogue: {exc}") from exc
        except CatalogueError:
            self._db.close()
            raise

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside are kept together or not at all (nested uses join the outer one)."""
        if self._depth:
            yield
            return
        self._depth += 1
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth -= 1

    # --- clients -----------------------------------------------------------------------------

    def add_client(
        self, pseudonym: str | None = None, *, name: str | None = None, birth_date: str | None = None
    ) -> Client:
        """Add a client.

        Parameters
        ----------
        pseudonym : str, optional
            Letters, digits, ``_``, ``.``, ``-`` (up to 64); generated (``client-xxxxxx``) when None.
        name : str, optional
            Stored only when given.
        birth_date : str, optional
            ``YYYY-MM-DD``; stored only when given.

        Raises
        ------
        ValueError
            For a malformed pseudonym or date.
        CatalogueError
            When the pseudonym is taken.
        """
        if birth_date is not None:
            try:
                birth_date = date.fromisoformat(birth_date).isoformat()
            except ValueError:
                raise ValueError(f"birth date must be YYYY-MM-DD, got {birth_date!r}") from None
        if pseudonym is None:
            taken = {c.pseudonym for c in self.clients()}
            pseudonym = f"client-{secrets.token_hex(3)}"
            while pseudonym in taken:
                pseudonym = f"client-{secrets.token_hex(3)}"
        if not _PSEUDONYM.fullmatch(pseudonym):
            raise ValueError(
                "a pseudonym is 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit; "
                f"got {pseudonym!r}"
            )
        try:
            with self.transaction():
                cursor = self._db.execute(
                    "INSERT INTO clients (pseudonym, name, birth_date, created) VALUES (?, ?, ?, ?)",
                    (pseudonym, name, birth_date, utc_now_iso()),
                )
        except sqlite3.IntegrityError:
            raise CatalogueError(self.path, f"a client {pseudonym!r} exists already") from None
        return self._client_by("id", cursor.lastrowid)

    def clients(self) -> list[Client]:
        """Every client, by pseudonym."""
        rows = self._db.execute("SELECT * FROM clients ORDER BY pseudonym").fetchall()
        return [_client(r) for r in rows]

    def client(self, pseudonym: str) -> Client:
        """The client with this pseudonym.

        Raises
        ------
        CatalogueError
            When there is none (naming the known ones).
        """
        row = self._db.execute("SELECT * FROM clients WHERE pseudonym = ?", (pseudonym,)).fetchone()
        if row is None:
            known = ", ".join(c.pseudonym for c in self.clients()) or "none yet (biofeed clients add)"
            raise CatalogueError(self.path, f"no client {pseudonym!r}; known: {known}")
        return _client(row)

    def _client_by(self, column: str, value: Any) -> Client:
        return _client(self._db.execute(f"SELECT * FROM clients WHERE {column} = ?", (value,)).fetchone())

    # --- calibrations ------------------------------------------------------------------------

    def add_calibration(
        self, client: Client, result: Mapping[str, Any], *, recording_path: Path | str | None = None
    ) -> CalibrationRecord:
        """Store a calibration (:meth:`~biofeed.sessions.calibrate.CalibrationResult.to_json`) with a client."""
        with self.transaction():
            cursor = self._db.execute(
                "INSERT INTO calibrations (client_id, created, protocol, board_profile, device_id, recording_path,"
                " complete, result_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    client.id,
                    utc_now_iso(),
                    result["protocol"],
                    result.get("board_profile"),
                    result.get("device_id"),
                    str(Path(recording_path).resolve()) if recording_path is not None else None,
                    int(bool(result.get("complete"))),
                    _dumps(result),
                ),
            )
        return self.calibration(int(cursor.lastrowid or 0))

    def calibration(self, calibration_id: int) -> CalibrationRecord:
        """One calibration by id (CatalogueError when there is none)."""
        row = self._db.execute("SELECT * FROM calibrations WHERE id = ?", (calibration_id,)).fetchone()
        if row is None:
            raise CatalogueError(self.path, f"no calibration {calibration_id}")
        return _calibration(row)

    def calibrations(self, client: Client) -> list[CalibrationRecord]:
        """A client's calibrations, oldest first."""
        rows = self._db.execute("SELECT * FROM calibrations WHERE client_id = ? ORDER BY id", (client.id,))
        return [_calibration(r) for r in rows.fetchall()]

    def latest_calibration(self, client: Client, board_profile: str | None = None) -> CalibrationRecord | None:
        """The newest calibration of a client with a measured noise floor (on that board, when given)."""
        for record in reversed(self.calibrations(client)):
            if board_profile is not None and record.board_profile != board_profile:
                continue
            if record.result.get("noise_floor_uv"):
                return record
        return None

    # --- sessions and recordings -------------------------------------------------------------

    def add_session(
        self,
        client: Client,
        *,
        started: str,
        protocol: str | None = None,
        posture: str | None = None,
        calibration_id: int | None = None,
        board_profile: str | None = None,
    ) -> SessionRecord:
        """Open a session for a client."""
        with self.transaction():
            cursor = self._db.execute(
                "INSERT INTO sessions (client_id, started, protocol, posture, calibration_id, board_profile)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (client.id, started, protocol, posture, calibration_id, board_profile),
            )
        return self.session(int(cursor.lastrowid or 0))

    def session(self, session_id: int) -> SessionRecord:
        """One session by id (CatalogueError when there is none)."""
        row = self._db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise CatalogueError(self.path, f"no session {session_id}")
        return _session(row)

    def sessions(self, client: Client | None = None) -> list[SessionRecord]:
        """Sessions (of one client, or all), in the order they started."""
        if client is None:
            rows = self._db.execute("SELECT * FROM sessions ORDER BY started, id")
        else:
            rows = self._db.execute("SELECT * FROM sessions WHERE client_id = ? ORDER BY started, id", (client.id,))
        return [_session(r) for r in rows.fetchall()]

    def add_recording(
        self,
        session: SessionRecord,
        path: Path | str,
        analysis: Mapping[str, Any],
        *,
        created: str | None = None,
        device_id: str | None = None,
        duration_s: float | None = None,
        device_label: str | None = None,
        calibration_id: int | None = None,
    ) -> RecordingRecord:
        """File a recording folder under a session, with its session analysis.

        A recording of several devices is filed as one recording per device folder, each with its
        ``device_label`` (:mod:`biofeed.sessions.filing`).

        Raises
        ------
        CatalogueError
            When that folder is filed already.
        """
        folder = str(Path(path).resolve())
        try:
            with self.transaction():
                cursor = self._db.execute(
                    "INSERT INTO recordings (session_id, path, created, device_id, duration_s, analysis_json,"
                    " device_label, calibration_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        session.id,
                        folder,
                        created,
                        device_id,
                        duration_s,
                        _dumps(analysis),
                        device_label,
                        calibration_id,
                    ),
                )
        except sqlite3.IntegrityError:
            raise CatalogueError(self.path, f"recording {folder} is filed already") from None
        return self._recording(int(cursor.lastrowid or 0))

    def _recording(self, recording_id: int) -> RecordingRecord:
        row = self._db.execute(f"SELECT {_RECORDING_COLUMNS} FROM recordings WHERE id = ?", (recording_id,)).fetchone()
        return _recording(row)

    def recordings(self, session: SessionRecord) -> list[RecordingRecord]:
        """A session's recordings."""
        rows = self._db.execute(
            f"SELECT {_RECORDING_COLUMNS} FROM recordings WHERE session_id = ? ORDER BY id",
            (session.id,),
        )
        return [_recording(r) for r in rows.fetchall()]

    def recording_by_path(self, path: Path | str) -> RecordingRecord | None:
        """The filed recording of a folder, or None."""
        row = self._db.execute(
            f"SELECT {_RECORDING_COLUMNS} FROM recordings WHERE path = ?",
            (str(Path(path).resolve()),),
        ).fetchone()
        return None if row is None else _recording(row)

    def analysis(self, recording: RecordingRecord) -> dict[str, Any]:
        """A filed recording's session analysis."""
        row = self._db.execute("SELECT analysis_json FROM recordings WHERE id = ?", (recording.id,)).fetchone()
        return dict(json.loads(row["analysis_json"]))

    # --- set points, trials, verdicts ---------------------------------------------------------

    def add_set_point(
        self,
        session: SessionRecord,
        channel: str,
        moment: str,
        value_uv: float | None,
        windows_uv: Sequence[float],
        posture: str | None = None,
    ) -> None:
        """Keep a session's set point before or after (``moment``) for one channel, with its 1 s windows.

        Raises
        ------
        ValueError
            For a moment other than ``before`` or ``after``.
        """
        if moment not in ("before", "after"):
            raise ValueError(f"moment must be 'before' or 'after', got {moment!r}")
        with self.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO set_points (session_id, channel, moment, posture, value_uv, windows_json)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (session.id, channel, moment, posture, value_uv, _dumps(list(windows_uv))),
            )

    def set_points(self, session: SessionRecord) -> dict[str, dict[str, dict[str, Any]]]:
        """``{moment: {channel: {"value_uv", "windows_uv", "posture"}}}`` of a session."""
        out: dict[str, dict[str, dict[str, Any]]] = {"before": {}, "after": {}}
        rows = self._db.execute("SELECT * FROM set_points WHERE session_id = ? ORDER BY channel", (session.id,))
        for r in rows.fetchall():
            out[r["moment"]][r["channel"]] = {
                "value_uv": r["value_uv"],
                "windows_uv": json.loads(r["windows_json"]),
                "posture": r["posture"],
            }
        return out

    def add_trial(self, session: SessionRecord, recording: RecordingRecord, trial: Mapping[str, Any]) -> int:
        """Keep a trial (session-analysis JSON) and its verdicts; return its id.

        The analysis's verdict is kept; when the board overrode it (``analysis_verdict`` present), the
        board's verdict is kept after it and is the one in force.
        """
        with self.transaction():
            cursor = self._db.execute(
                "INSERT INTO trials (session_id, recording_id, channel, trial_index, sham, onset_s, score, ratio,"
                " trial_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.id,
                    recording.id,
                    trial["channel"],
                    trial.get("trial_index"),
                    int(bool(trial.get("sham"))),
                    trial.get("onset_s"),
                    trial.get("score"),
                    trial.get("ratio"),
                    _dumps(trial),
                ),
            )
            trial_id = int(cursor.lastrowid or 0)
            verdicts = []
            if "analysis_verdict" in trial:
                verdicts.append(("analysis", trial["analysis_verdict"], trial.get("analysis_verdict_reason") or ""))
                verdicts.append(("board", trial["verdict"], trial["verdict_reason"]))
            else:
                verdicts.append(("analysis", trial["verdict"], trial.get("verdict_reason") or ""))
            for source, verdict, reason in verdicts:
                self._db.execute(
                    "INSERT INTO verdicts (trial_id, source, verdict, reason, created) VALUES (?, ?, ?, ?, ?)",
                    (trial_id, source, verdict, reason, utc_now_iso()),
                )
        return trial_id

    def trials(self, session: SessionRecord) -> list[TrialRecord]:
        """A session's trials (real and sham) with the verdict in force, by channel and trial."""
        rows = self._db.execute(
            "SELECT t.*, v.verdict, v.reason, v.source FROM trials t JOIN verdicts v ON v.id = ("
            " SELECT id FROM verdicts WHERE trial_id = t.id ORDER BY source = 'board' DESC, id DESC LIMIT 1)"
            " WHERE t.session_id = ? ORDER BY t.sham, t.channel, t.trial_index, t.onset_s",
            (session.id,),
        )
        return [
            TrialRecord(
                r["id"],
                r["session_id"],
                r["recording_id"],
                r["channel"],
                r["trial_index"],
                bool(r["sham"]),
                json.loads(r["trial_json"]),
                r["verdict"],
                r["reason"],
                r["source"],
            )
            for r in rows.fetchall()
        ]

    # --- notes ---------------------------------------------------------------------------------

    def add_note(self, client: Client, text: str, session: SessionRecord | None = None) -> Note:
        """Keep a practitioner's note about a client (and a session).

        Raises
        ------
        ValueError
            For an empty note, or a session of another client.
        """
        if not text.strip():
            raise ValueError("a note needs some text")
        if session is not None and session.client_id != client.id:
            raise ValueError(f"session {session.id} is not a session of {client.pseudonym}")
        with self.transaction():
            cursor = self._db.execute(
                "INSERT INTO notes (client_id, session_id, created, text) VALUES (?, ?, ?, ?)",
                (client.id, session.id if session is not None else None, utc_now_iso(), text),
            )
        row = self._db.execute("SELECT * FROM notes WHERE id = ?", (cursor.lastrowid,)).fetchone()
        return _note(row)

    def notes(self, client: Client) -> list[Note]:
        """A client's notes, oldest first."""
        rows = self._db.execute("SELECT * FROM notes WHERE client_id = ? ORDER BY id", (client.id,))
        return [_note(r) for r in rows.fetchall()]


def _client(row: sqlite3.Row) -> Client:
    return Client(row["id"], row["pseudonym"], row["name"], row["birth_date"], row["created"])


def _calibration(row: sqlite3.Row) -> CalibrationRecord:
    return CalibrationRecord(
        row["id"],
        row["client_id"],
        row["created"],
        row["protocol"],
        row["board_profile"],
        row["device_id"],
        row["recording_path"],
        bool(row["complete"]),
        json.loads(row["result_json"]),
    )


def _session(row: sqlite3.Row) -> SessionRecord:
    return SessionRecord(
        row["id"],
        row["client_id"],
        row["started"],
        row["protocol"],
        row["posture"],
        row["calibration_id"],
        row["board_profile"],
    )


def _recording(row: sqlite3.Row) -> RecordingRecord:
    return RecordingRecord(
        row["id"],
        row["session_id"],
        row["path"],
        row["created"],
        row["device_id"],
        row["duration_s"],
        row["device_label"],
        row["calibration_id"],
    )


def _note(row: sqlite3.Row) -> Note:
    return Note(row["id"], row["client_id"], row["session_id"], row["created"], row["text"])
