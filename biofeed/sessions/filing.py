"""Filing a recording as a session of a client: analysed with the client's calibration, then catalogued.

``biofeed record --client NAME`` (and ``live --client``) call :func:`file_recording` once the
recording is closed; ``biofeed sessions add`` files a recording made earlier. The recording folder
stays where it is; the catalogue keeps its path, the session analysis
(:func:`~biofeed.sessions.session_analysis.analyse_session_recording`), the set points before and
after, and every trial with its verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biofeed.record.reader import open_recording
from biofeed.sessions.calibrate import CalibrationResult
from biofeed.sessions.catalogue import Catalogue, Client, RecordingRecord, SessionRecord
from biofeed.sessions.protocol import load_exercise_protocol
from biofeed.sessions.session_analysis import analyse_session_recording

__all__ = ["FiledSession", "client_calibration", "file_recording"]


@dataclass(frozen=True)
class FiledSession:
    """What :func:`file_recording` stored.

    Attributes
    ----------
    session : SessionRecord
    recording : RecordingRecord
    analysis : dict
        The session analysis.
    """

    session: SessionRecord
    recording: RecordingRecord
    analysis: dict[str, Any]


def client_calibration(
    catalogue: Catalogue, client: Client, board_profile: str | None
) -> tuple[int | None, CalibrationResult | None]:
    """The client's newest calibration with a noise floor on that board: (its id, the result), or (None, None)."""
    record = catalogue.latest_calibration(client, board_profile)
    if record is None:
        return None, None
    return record.id, CalibrationResult.from_json(record.result)


def file_recording(
    catalogue: Catalogue,
    client: Client,
    path: Path | str,
    *,
    protocol: str | None = None,
    protocol_start_s: float | None = None,
    posture: str | None = None,
    protocols_folder: Path | str | None = None,
) -> FiledSession:
    """Analyse a recording as a new session of ``client`` and catalogue it.

    Parameters
    ----------
    catalogue : Catalogue
        Where to file it.
    client : Client
        Whose session it is.
    path : Path or str
        The recording folder.
    protocol : str, optional
        The exercise protocol followed (name or path): trials are matched to its cues and its sham
        trials judged.
    protocol_start_s : float, optional
        Where the protocol's time 0 lies in the recording (seconds from the EMG stream's first
        sample); from the recording's ``cue`` events when None.
    posture : str, optional
        The posture of the session; the protocol's when None.
    protocols_folder : Path or str, optional
        Where named protocols live.

    Returns
    -------
    FiledSession

    Raises
    ------
    ValueError
        When the recording was made for another client, or the protocol is unknown.
    RecordingError
        Not a recording, or no EMG in it.
    CatalogueError
        When the recording is filed already.
    """
    recording = open_recording(path)
    recorded_for = recording.meta.get("client")
    if recorded_for not in (None, client.pseudonym):
        raise ValueError(f"{recording.path} was recorded for client {recorded_for!r}, not {client.pseudonym!r}")
    if catalogue.recording_by_path(recording.path) is not None:
        raise ValueError(f"{recording.path} is filed already (biofeed sessions list)")
    device = recording.device_info
    calibration_id, calibration = client_calibration(catalogue, client, device.board_profile if device else None)
    schedule = load_exercise_protocol(protocol, protocols_folder) if protocol is not None else None
    analysis = analyse_session_recording(
        recording.path, calibration=calibration, schedule=schedule, protocol_start_s=protocol_start_s
    )
    posture = posture or (schedule.posture if schedule is not None else None) or None
    meta = analysis["recording"]
    with catalogue.transaction():
        session = catalogue.add_session(
            client,
            started=meta["created"] or "",
            protocol=schedule.name if schedule is not None else None,
            posture=posture,
            calibration_id=calibration_id if analysis["calibration"]["applied"] else None,
            board_profile=meta["board_profile"],
        )
        filed = catalogue.add_recording(
            session,
            recording.path,
            analysis,
            created=meta["created"],
            device_id=meta["device_id"],
            duration_s=meta["duration_s"],
        )
        for moment, by_channel in analysis["set_points"].items():
            for channel, set_point in by_channel.items():
                catalogue.add_set_point(
                    session, channel, moment, set_point["value_uv"], set_point["windows_uv"], posture
                )
        for trial in analysis["trials"] + analysis["sham_trials"]:
            catalogue.add_trial(session, filed, trial)
    return FiledSession(session, filed, analysis)
