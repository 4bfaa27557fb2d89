"""The practitioner commands, one function each; ``biofeed/cli.py`` parses arguments and calls them.

``biofeed clients add|list|show|note``, ``biofeed sessions list|add|show``, ``biofeed calibrate``,
``biofeed history``, ``biofeed report``, ``biofeed boards``, and what ``record --client`` needs
(:func:`record_pipeline_kwargs` before, :func:`file_recorded_session` after). Each returns the exit
code and writes to ``out``; user errors are raised as :class:`~biofeed.errors.BiofeedError` or
:class:`ValueError`, which the CLI turns into one line.
"""

from __future__ import annotations

import json
import queue
import sys
from pathlib import Path
from typing import Any, TextIO

from biofeed.boards import BoardAssessment, assess_board, board_profiles, find_board_profile
from biofeed.errors import CalibrationError
from biofeed.home import new_recording_path
from biofeed.sessions.calibrate import CalibrationRun, StepStatus, load_calibration_protocol
from biofeed.sessions.calibration_sink import CalibrationSink
from biofeed.sessions.catalogue import Catalogue, default_catalogue_path
from biofeed.sessions.filing import client_calibration, file_recording
from biofeed.sessions.history import client_history, format_history, format_session

__all__ = [
    "boards",
    "calibrate",
    "clients_add",
    "clients_list",
    "clients_note",
    "clients_show",
    "file_recorded_session",
    "history",
    "record_pipeline_kwargs",
    "report",
    "sessions_add",
    "sessions_list",
    "sessions_show",
    "store_calibration",
]

EXIT_OK = 0
EXIT_ERROR = 1
_POLL_S = 0.2


def _print_json(value: Any, out: TextIO) -> None:
    print(json.dumps(value, indent=2, allow_nan=False), file=out)


# --- clients ---------------------------------------------------------------------------------------


def clients_add(
    pseudonym: str | None = None, *, name: str | None = None, birth_date: str | None = None, out: TextIO = sys.stdout
) -> int:
    """``biofeed clients add [PSEUDONYM] [--name NAME] [--birth-date YYYY-MM-DD]``: prints the pseudonym."""
    with Catalogue() as catalogue:
        client = catalogue.add_client(pseudonym, name=name, birth_date=birth_date)
    print(client.pseudonym, file=out)
    return EXIT_OK


def clients_list(*, as_json: bool = False, out: TextIO = sys.stdout) -> int:
    """``biofeed clients list [--json]``."""
    with Catalogue() as catalogue:
        rows = [(c, len(catalogue.sessions(c))) for c in catalogue.clients()]
    if as_json:
        _print_json([c.to_json() | {"n_sessions": n} for c, n in rows], out)
    else:
        for client, n in rows:
            print(f"{client.pseudonym}\t{n} session(s)\tsince {client.created[:10]}", file=out)
        if not rows:
            print("no clients yet (biofeed clients add)", file=out)
    return EXIT_OK


def clients_show(client: str, *, as_json: bool = False, out: TextIO = sys.stdout) -> int:
    """``biofeed clients show CLIENT [--json]``: details, calibrations and sessions."""
    with Catalogue() as catalogue:
        record = catalogue.client(client)
        calibrations = catalogue.calibrations(record)
        sessions = catalogue.sessions(record)
        notes = catalogue.notes(record)
    data = record.to_json() | {
        "calibrations": [
            {
                "id": c.id,
                "created": c.created,
                "board_profile": c.board_profile,
                "complete": c.complete,
                "noise_floor_uv": c.result.get("noise_floor_uv"),
                "set_points_uv": c.result.get("set_points_uv"),
                "reference_contraction_uv": c.result.get("reference_contraction_uv"),
            }
            for c in calibrations
        ],
        "sessions": [{"id": s.id, "started": s.started, "protocol": s.protocol} for s in sessions],
        "notes": [{"created": n.created, "session_id": n.session_id, "text": n.text} for n in notes],
    }
    if as_json:
        _print_json(data, out)
        return EXIT_OK
    print(f"client {record.pseudonym} (since {record.created[:10]})", file=out)
    for key in ("name", "birth_date"):
        if key in data:
            print(f"  {key.replace('_', ' ')}: {data[key]}", file=out)
    for c in data["calibrations"]:
        state = "complete" if c["complete"] else "incomplete"
        print(f"  calibration {c['id']} {c['created'][:19]} on {c['board_profile']} ({state}):", file=out)
        print(f"    noise floor {c['noise_floor_uv'] or '-'}; set points {c['set_points_uv'] or '-'}", file=out)
    for s in data["sessions"]:
        print(f"  session {s['id']} {s['started'][:19]} protocol {s['protocol'] or '-'}", file=out)
    for n in data["notes"]:
        print(f"  note {n['created'][:10]}: {n['text']}", file=out)
    return EXIT_OK


def clients_note(client: str, text: str, *, session_id: int | None = None, out: TextIO = sys.stdout) -> int:
    """``biofeed clients note CLIENT TEXT [--session ID]``: keep a practitioner's note."""
    with Catalogue() as catalogue:
        record = catalogue.client(client)
        session = catalogue.session(session_id) if session_id is not None else None
        note = catalogue.add_note(record, text, session)
    print(f"note {note.id} kept for {record.pseudonym}", file=out)
    return EXIT_OK


# --- sessions --------------------------------------------------------------------------------------


def sessions_list(client: str | None = None, *, as_json: bool = False, out: TextIO = sys.stdout) -> int:
    """``biofeed sessions list [--client CLIENT] [--json]``."""
    with Catalogue() as catalogue:
        who = catalogue.client(client) if client is not None else None
        pseudonyms = {c.id: c.pseudonym for c in catalogue.clients()}
        rows = [(s, catalogue.recordings(s), len(catalogue.trials(s))) for s in catalogue.sessions(who)]
    data: list[dict[str, Any]] = [
        {
            "id": s.id,
            "client": pseudonyms[s.client_id],
            "started": s.started,
            "protocol": s.protocol,
            "board_profile": s.board_profile,
            "recordings": [r.path for r in recordings],
            "n_trials": n,
        }
        for s, recordings, n in rows
    ]
    if as_json:
        _print_json(data, out)
        return EXIT_OK
    for d in data:
        print(
            f"{d['id']}\t{d['client']}\t{d['started'][:19]}\t{d['protocol'] or '-'}\t{d['n_trials']} trial(s)\t"
            f"{', '.join(d['recordings'])}",
            file=out,
        )
    if not data:
        print("no sessions yet", file=out)
    return EXIT_OK


def sessions_add(
    client: str,
    recording: Path | str,
    *,
    protocol: str | None = None,
    protocol_start_s: float | None = None,
    posture: str | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """``biofeed sessions add CLIENT RECORDING [--protocol NAME] [--protocol-start S] [--posture P]``."""
    with Catalogue() as catalogue:
        record = catalogue.client(client)
        filed = file_recording(
            catalogue, record, recording, protocol=protocol, protocol_start_s=protocol_start_s, posture=posture
        )
    for part in filed.recordings:  # one per device folder of a recording of several devices
        _print_filed(filed.session.id, record.pseudonym, part.analysis, out)
    return EXIT_OK


def _print_filed(session_id: int, pseudonym: str, analysis: dict[str, Any], out: TextIO) -> None:
    print(f"session {session_id} of {pseudonym}: {analysis['recording']['path']}", file=out)
    for line in _board_lines(analysis):
        print(f"  {line}", file=out)
    calibration = analysis["calibration"]
    print(
        f"  calibration applied: {'yes' if calibration['applied'] else 'no (' + calibration['reason'] + ')'}", file=out
    )
    for t in analysis["trials"] + analysis["sham_trials"]:
        kind = "sham " if t.get("sham") else "trial"
        print(
            f"  {kind} {t.get('trial_index')} {t['channel']}: {t['verdict']} - {t.get('verdict_reason', '')}", file=out
        )


def _board_lines(analysis: dict[str, Any]) -> list[str]:
    lines = []
    for stream, board in analysis["board"].items():
        if board is None:
            lines.append(f"{stream}: no board profile for this device; resolution not checked")
        else:
            lines.append(BoardAssessment.from_json(board).describe())
    return lines


def sessions_show(session_id: int, *, as_json: bool = False, out: TextIO = sys.stdout) -> int:
    """``biofeed sessions show ID [--json]``: the session's set points and trials."""
    with Catalogue() as catalogue:
        session = catalogue.session(session_id)
        client = next(c for c in catalogue.clients() if c.id == session.client_id)
        history = client_history(catalogue, client)
    row = next(s for s in history["sessions"] if s["id"] == session_id)
    if as_json:
        _print_json(row | {"client": client.pseudonym}, out)
        return EXIT_OK
    print(f"client {client.pseudonym}", file=out)
    print("\n".join(format_session(row)), file=out)
    return EXIT_OK


# --- record --client -----------------------------------------------------------------------------


def record_pipeline_kwargs(client: str, board_profile: str | None = None) -> dict[str, Any]:
    """Keyword arguments of :class:`~biofeed.pipeline.Pipeline` applying a client's calibration live.

    The newest calibration with a noise floor (on ``board_profile`` when given; the device's is not
    known before its INFO arrives). Filing re-analyses with the calibration of the recording's own
    board, so the catalogue is right whatever the live pipeline used.

    Raises
    ------
    CatalogueError
        When there is no such client.
    """
    with Catalogue() as catalogue:
        record = catalogue.client(client)
        _, calibration = client_calibration(catalogue, record, board_profile)
    return calibration.pipeline_kwargs() if calibration is not None else {}


def file_recorded_session(
    client: str, recording: Path | str, *, protocol: str | None = None, out: TextIO = sys.stdout
) -> int:
    """After ``biofeed record --client CLIENT`` (or ``live --client``): file the recording as a session.

    Nothing is filed when no recording folder was made (the device failed before its first byte).
    """
    if not Path(recording).is_dir():
        return EXIT_OK
    return sessions_add(client, recording, protocol=protocol, out=out)


# --- calibrate -------------------------------------------------------------------------------------


def calibrate(
    device_url: str,
    client: str,
    *,
    headless: bool = True,
    protocol: str = "calibration",
    out_dir: Path | str | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """``biofeed calibrate --device URL --client NAME [--headless] [--protocol NAME] [--out DIR]``.

    Runs the guided calibration on the device's data (recorded to ``out_dir``, default a new folder
    in ``$BIOFEED_HOME/recordings``) and stores the result with the client. Headless, each step's
    instruction is printed as it starts and its result as it ends, one step after the other.
    Otherwise the live window shows the signals and a calibration panel where the person confirms
    each step (:func:`biofeed.live.calibration_window.run_calibration_window`); without a display
    it runs headless, saying so on stderr.

    Returns
    -------
    int
        0 when every required step passed, 1 otherwise (the result is stored all the same).

    Raises
    ------
    ValueError
        A bad protocol or URL.
    CatalogueError
        When there is no such client.
    CalibrationError
        When the device stopped with an error (the result is stored first).
    """
    from biofeed.record.writer import RecordingWriter
    from biofeed.runner import Acquisition
    from biofeed.sources import open_source

    with Catalogue() as catalogue:
        record = catalogue.client(client)
    steps = load_calibration_protocol(protocol)
    folder = Path(out_dir) if out_dir is not None else new_recording_path("calibration")
    if not headless:
        from biofeed.live.app import display_available

        if display_available():
            from biofeed.live.calibration_window import run_calibration_window

            return run_calibration_window(device_url, record.pseudonym, steps, folder, out=out)
        print(
            "biofeed: no display (DISPLAY and WAYLAND_DISPLAY are unset): the calibration runs in the terminal, "
            "each step after the last (--headless)",
            file=sys.stderr,
        )
    run = CalibrationRun(steps, auto_advance=True)
    sink = CalibrationSink(run)
    source = open_source(device_url)
    with RecordingWriter(folder, source_url=device_url, client=record.pseudonym) as recorder:
        acquisition = Acquisition(source, recorder=recorder, sinks=[sink], duration_s=steps.duration_s)
        acquisition.start()
        try:
            while not acquisition.join(_POLL_S):
                _drain(sink.messages, out)
                if run.finished:
                    acquisition.stop()
        except KeyboardInterrupt:
            acquisition.stop()
        result = acquisition.wait()
        recorder.close(summary={"error": str(result.error) if result.error else None, "calibration": steps.name})
    complete = store_calibration(record.pseudonym, sink, folder, out=out)
    if result.error is not None:
        raise CalibrationError(f"the device stopped during calibration: {result.error}")
    return EXIT_OK if complete else EXIT_ERROR


def store_calibration(client: str, sink: CalibrationSink, recording: Path, *, out: TextIO = sys.stdout) -> bool:
    """End a calibration run, store its result with the client and print what it measured.

    The steps not ended fail (:meth:`~biofeed.sessions.calibration_sink.CalibrationSink.finish`);
    the result is stored whether or not it is complete, pointing at its recording.

    Returns
    -------
    bool
        True when every required step passed.
    """
    calibration = sink.finish()
    _drain(sink.messages, out)
    with Catalogue() as catalogue:
        record = catalogue.client(client)
        stored = catalogue.add_calibration(record, calibration.to_json(), recording_path=recording)
    print(f"calibration {stored.id} stored with {record.pseudonym} (recording {recording})", file=out)
    if calibration.noise_floor_uv:
        floors = ", ".join(f"{k} {v:.2f} uV" for k, v in calibration.noise_floor_uv.items())
        print(f"  noise floor {floors} ({calibration.noise_floor_source})", file=out)
    for posture, values in calibration.set_points_uv.items():
        print(f"  set point {posture}: " + ", ".join(f"{k} {v:.2f} uV" for k, v in values.items()), file=out)
    failed = [s for s in calibration.steps if s.status is not StepStatus.PASSED and s.values.get("required", True)]
    if failed:
        print(f"calibration incomplete: {', '.join(s.kind.value for s in failed)} did not pass", file=out)
    return not failed


def _drain(messages: queue.Queue[str], out: TextIO) -> None:
    while True:
        try:
            print(messages.get_nowait(), file=out, flush=True)
        except queue.Empty:
            return


# --- history, report, boards ---------------------------------------------------------------------


def history(client: str, *, as_json: bool = False, out: TextIO = sys.stdout) -> int:
    """``biofeed history CLIENT [--json]``: ``{"client": ..., "sessions": [...], "trend": {...}}``."""
    with Catalogue() as catalogue:
        data = client_history(catalogue, catalogue.client(client))
    if as_json:
        _print_json(data, out)
    else:
        print(format_history(data), file=out)
    return EXIT_OK


def report(target: str, out_path: Path | str, *, out: TextIO = sys.stdout) -> int:
    """``biofeed report RECORDING|CLIENT --out FILE.html``: a self-contained HTML report (mode 0o600)."""
    from biofeed.sessions.report import (
        MAX_DETAILED_SESSIONS,
        client_report_html,
        recording_report_html,
        write_private_text,
    )
    from biofeed.sessions.session_analysis import analyse_session_recording

    path = Path(target)
    if path.is_dir():
        analysis = None
        if default_catalogue_path().exists():
            with Catalogue() as catalogue:
                filed = catalogue.recording_by_path(path)
                if filed is not None:
                    analysis = catalogue.analysis(filed)
        if analysis is None:
            analysis = analyse_session_recording(path)
        text = recording_report_html(analysis)
    else:
        with Catalogue() as catalogue:
            record = catalogue.client(target)
            data = client_history(catalogue, record)
            sessions = catalogue.sessions(record)[-MAX_DETAILED_SESSIONS:]
            analyses = [catalogue.analysis(r) for s in sessions for r in catalogue.recordings(s)]
        text = client_report_html(data, analyses)
    written = write_private_text(out_path, text)
    print(f"report: {written}", file=out)
    return EXIT_OK


def boards(name: str | None = None, *, as_json: bool = False, out: TextIO = sys.stdout) -> int:
    """``biofeed boards [NAME] [--json]``: the board profiles and whether each resolves true relaxation."""
    profiles = board_profiles()
    if name is not None:
        profile = find_board_profile(name)
        if profile is None:
            raise ValueError(f"no board profile {name!r}; known: {', '.join(p.name for p in profiles)}")
        profiles = [profile]
    if as_json:
        _print_json([p.to_json() | {"assessment": assess_board(p).to_json()} for p in profiles], out)
        return EXIT_OK
    for profile in profiles:
        print(assess_board(profile).describe(), file=out)
    return EXIT_OK
