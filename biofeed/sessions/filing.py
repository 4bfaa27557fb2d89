"""Filing a recording as a session of a client: analysed with the client's calibration, then catalogued.

``biofeed record --client NAME`` (and ``live --client``) call :func:`file_recording` once the
recording is closed; ``biofeed sessions add`` files a recording made earlier. The recording folder
stays where it is; the catalogue keeps its path, the session analysis
(:func:`~biofeed.sessions.session_analysis.analyse_session_recording`), the set points before and
after, and every trial with its verdicts.

A recording of several devices (``record --device left=URL --device right=URL``, format 2) is one
session holding one filed recording per device folder. Each device is analysed on its own, with the
client's calibration for its own board; its set points and trials are catalogued under the names
of the shared view (``left.es_left``, :func:`~biofeed.multi_device.labelled_name`), so two boards
with the same channel names stay apart, and each trial keeps its ``device`` label. The analysis
stored with each device folder keeps the device's own names, as the folder does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biofeed.multi_device import labelled_name
from biofeed.record.reader import Recording, is_multi_device_recording, open_multi_device_recording, open_recording
from biofeed.sessions.calibrate import CalibrationResult
from biofeed.sessions.catalogue import Catalogue, Client, RecordingRecord, SessionRecord
from biofeed.sessions.protocol import load_exercise_protocol
from biofeed.sessions.session_analysis import analyse_session_recording

__all__ = ["FiledRecording", "FiledSession", "client_calibration", "file_recording"]


@dataclass(frozen=True)
class FiledRecording:
    """One recording folder filed under a session.

    Attributes
    ----------
    recording : RecordingRecord
    analysis : dict
        Its session analysis (with ``recording.device_label`` for a device of several).
    label : str or None
        The device's label in a recording of several devices; None for one device.
    """

    recording: RecordingRecord
    analysis: dict[str, Any]
    label: str | None


@dataclass(frozen=True)
class FiledSession:
    """What :func:`file_recording` stored.

    Attributes
    ----------
    session : SessionRecord
    recordings : tuple of FiledRecording
        One for a single device; one per device, in the recording's order, for several.
    """

    session: SessionRecord
    recordings: tuple[FiledRecording, ...]

    @property
    def recording(self) -> RecordingRecord:
        """The (first device's) filed recording."""
        return self.recordings[0].recording

    @property
    def analysis(self) -> dict[str, Any]:
        """The (first device's) session analysis."""
        return self.recordings[0].analysis


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
        The recording folder: one device's, or a recording of several devices (module docstring).
    protocol : str, optional
        The exercise protocol followed (name or path): trials are matched to its cues and its sham
        trials judged.
    protocol_start_s : float, optional
        Where the protocol's time 0 lies in the recording (seconds from the EMG stream's first
        sample, of every device); from each recording's ``cue`` events when None.
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
        When the recording was made for another client, is filed already, or the protocol is unknown.
    RecordingError
        Not a recording, or no EMG in it (in any of its devices).
    """
    started, parts = _device_recordings(path)
    for _, recording in parts:
        recorded_for = recording.meta.get("client")
        if recorded_for not in (None, client.pseudonym):
            raise ValueError(f"{recording.path} was recorded for client {recorded_for!r}, not {client.pseudonym!r}")
        if catalogue.recording_by_path(recording.path) is not None:
            raise ValueError(f"{recording.path} is filed already (biofeed sessions list)")
    schedule = load_exercise_protocol(protocol, protocols_folder) if protocol is not None else None
    analysed: list[tuple[str | None, Recording, dict[str, Any], int | None]] = []
    for label, recording in parts:
        device = recording.device_info
        calibration_id, calibration = client_calibration(catalogue, client, device.board_profile if device else None)
        analysis = analyse_session_recording(
            recording.path, calibration=calibration, schedule=schedule, protocol_start_s=protocol_start_s
        )
        if label is not None:
            analysis["recording"]["device_label"] = label
        analysed.append((label, recording, analysis, calibration_id if analysis["calibration"]["applied"] else None))
    posture = posture or (schedule.posture if schedule is not None else None) or None
    filed: list[FiledRecording] = []
    with catalogue.transaction():
        session = catalogue.add_session(
            client,
            started=started or analysed[0][2]["recording"]["created"] or "",
            protocol=schedule.name if schedule is not None else None,
            posture=posture,
            calibration_id=_shared([applied for *_, applied in analysed]),
            board_profile=_shared([analysis["recording"]["board_profile"] for _, _, analysis, _ in analysed]),
        )
        for label, recording, analysis, applied in analysed:
            meta = analysis["recording"]
            record = catalogue.add_recording(
                session,
                recording.path,
                analysis,
                created=meta["created"],
                device_id=meta["device_id"],
                duration_s=meta["duration_s"],
                device_label=label,
                calibration_id=applied,
            )
            for moment, by_channel in analysis["set_points"].items():
                for channel, set_point in by_channel.items():
                    catalogue.add_set_point(
                        session,
                        _shared_name(label, channel),
                        moment,
                        set_point["value_uv"],
                        set_point["windows_uv"],
                        posture,
                    )
            for trial in analysis["trials"] + analysis["sham_trials"]:
                catalogue.add_trial(session, record, _device_trial(label, trial))
            filed.append(FiledRecording(record, analysis, label))
    return FiledSession(session, tuple(filed))


def _device_recordings(path: Path | str) -> tuple[str | None, list[tuple[str | None, Recording]]]:
    """The recording's start (None for one device: its analysis has it) and its (label, recording) parts."""
    if not is_multi_device_recording(path):
        return None, [(None, open_recording(path))]
    recording = open_multi_device_recording(path)
    created = recording.meta.get("created")
    return (created if isinstance(created, str) else None), [
        (label, recording.device(label)) for label in recording.labels
    ]


def _shared(values: Sequence[Any]) -> Any:
    """The value every device has, or None when they differ."""
    return values[0] if len(set(values)) == 1 else None


def _shared_name(label: str | None, name: str) -> str:
    return name if label is None else labelled_name(label, name)


def _device_trial(label: str | None, trial: dict[str, Any]) -> dict[str, Any]:
    """A trial under the names of the shared view of several devices, as the device labeller names events."""
    if label is None:
        return trial
    out = trial | {"channel": labelled_name(label, trial["channel"]), "device": label}
    if isinstance(trial.get("stream"), str):
        out["stream"] = labelled_name(label, trial["stream"])
    return out
