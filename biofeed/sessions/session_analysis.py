"""A recording analysed as one session of a client: calibration applied, board verdict, cues, sham trials.

The recording's frames go through the same :class:`~biofeed.pipeline.Pipeline` as ``biofeed
analyze``, given the client's calibration (noise floor, reference contraction) when it was made on
the same board. Then:

- each trial's verdict passes through the board's assessment (:func:`~biofeed.boards.apply_board_assessment`):
  a board that cannot resolve true relaxation gives ``not_measurable`` with the reason;
- with a protocol, trials are matched to its cues (:meth:`~biofeed.sessions.protocol.CueSchedule.trial_for_onset`)
  and its sham trials are judged like real ones (:func:`~biofeed.sessions.sham.evaluate_sham_trial`);
- the set point before the session (at the first real trial) and after it (from 10 s after the
  last release) is kept per channel with its 1 s windows, for trends with uncertainty;
- a compact envelope (noise-corrected 250 ms RMS every 0.1 s), the phases and the 1 s windows are
  kept for reports, so nothing has to be analysed again to draw them.

The result is one JSON-able dict (layout in docs/sessions.md), stored in the catalogue.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from biofeed.blocks import Block, DeviceInfo
from biofeed.boards import BoardAssessment, apply_board_assessment, assess_device_stream
from biofeed.dsp.noise import correct_for_noise
from biofeed.dsp.tension import DEFAULT_MIN_WINDOWS, DEFAULT_N_WINDOWS
from biofeed.errors import RecordingError
from biofeed.pipeline import BATCH_COALESCE_S, Pipeline
from biofeed.protocol.decoder import Decoder
from biofeed.record.reader import open_recording
from biofeed.sessions.calibrate import CalibrationResult
from biofeed.sessions.protocol import CueSchedule, schedule_offset_from_events
from biofeed.sessions.sham import SessionWindow, evaluate_sham_trial

__all__ = [
    "ENVELOPE_HOP_S",
    "POST_SESSION_DELAY_S",
    "SESSION_ANALYSIS_VERSION",
    "analyse_session_recording",
    "calibration_applies",
    "session_windows",
]

SESSION_ANALYSIS_VERSION = 1
ENVELOPE_HOP_S = 0.1
"""Kept envelope: one 250 ms RMS value every 0.1 s (enough to draw a release of >= 1 s)."""
POST_SESSION_DELAY_S = 10.0
"""SCIENCE.md 6.2: a rest is measured >= 10 s after the release ends (reflex depression)."""


def calibration_applies(calibration: CalibrationResult | None, device: DeviceInfo | None) -> str:
    """Why a calibration does not apply to a device ("" when it does).

    It applies when it was made on the same board profile and its EMG stream and channels exist on
    the device with the same names.
    """
    if calibration is None:
        return "no calibration"
    if device is None:
        return "the recording holds no device description"
    if calibration.board_profile != device.board_profile:
        return (
            f"the calibration was made on board {calibration.board_profile}, "
            f"the recording is from {device.board_profile}"
        )
    streams = {s.name: [c.name for c in s.channels] for s in device.streams}
    if calibration.stream not in streams or streams[calibration.stream] != calibration.channels:
        return "the calibration's EMG channels differ from the recording's"
    return ""


def session_windows(analysis: Mapping[str, Any], channel: str) -> list[SessionWindow]:
    """The 1 s windows of a channel from a session analysis (:func:`analyse_session_recording`)."""
    w = analysis["windows"].get(channel)
    if w is None:
        return []
    return [
        SessionWindow(s, e, math.nan if level is None else level, bool(rest), bool(usable))
        for s, e, level, rest, usable in zip(
            w["start_s"], w["end_s"], w["level_uv"], w["rest"], w["usable"], strict=True
        )
    ]


def _set_point(windows: list[SessionWindow], start_s: float, end_s: float) -> dict[str, Any]:
    """Median of the last 30 usable windows in [start_s, end_s) (SCIENCE.md 4), with those windows."""
    kept = [w for w in windows if w.usable and w.start_s >= start_s and w.end_s <= end_s and math.isfinite(w.level_uv)]
    values = [w.level_uv for w in kept[-DEFAULT_N_WINDOWS:]]
    enough = len(values) >= DEFAULT_MIN_WINDOWS
    return {
        "value_uv": float(np.median(values)) if enough else None,
        "windows_uv": values,
        "end_s": kept[-1].end_s if kept else None,
        "reason": "" if enough else f"{len(values)} usable 1 s rest windows, needs {DEFAULT_MIN_WINDOWS}",
    }


def analyse_session_recording(
    path: Path | str,
    *,
    calibration: CalibrationResult | None = None,
    schedule: CueSchedule | None = None,
    protocol_start_s: float | None = None,
    boards_folder: Path | str | None = None,
) -> dict[str, Any]:
    """Analyse one recording as a session (module docstring).

    Parameters
    ----------
    path : Path or str
        The recording folder.
    calibration : CalibrationResult, optional
        The client's calibration; applied when made on the same board (:func:`calibration_applies`).
    schedule : CueSchedule, optional
        The exercise protocol followed.
    protocol_start_s : float, optional
        Where the protocol's time 0 lies, seconds from the EMG stream's first sample; taken from the
        recording's ``cue`` events when None, else 0.
    boards_folder : Path or str, optional
        Board profiles (default: the shipped ones).

    Returns
    -------
    dict
        The session analysis (docs/sessions.md).

    Raises
    ------
    RecordingError
        Not a recording, or no EMG in it.
    """
    recording = open_recording(path)
    device = recording.device_info
    not_applied = calibration_applies(calibration, device)
    kwargs = calibration.pipeline_kwargs() if calibration is not None and not not_applied else {}
    pipeline = Pipeline(coalesce_s=BATCH_COALESCE_S, display=True, **kwargs)
    decoder = Decoder()
    events: list[dict[str, Any]] = []
    envelopes: list[Block] = []
    for record in recording.frames():
        for item in decoder.decode_frame(record.frame, record.received_at):
            output = pipeline.process(item)
            events += output.events
            envelopes += [b for b in output.display if b.info.name.endswith(".envelope")]
    output = pipeline.finish()
    events += output.events
    envelopes += [b for b in output.display if b.info.name.endswith(".envelope")]
    if not pipeline.streams:
        raise RecordingError(recording.path, "holds no EMG samples to analyse")
    device = decoder.device_info or device
    # the trials are kept once, below, with the board's verdict applied
    channels = [{k: v for k, v in c.items() if k != "contractions"} for c in pipeline.analysis_json()["channels"]]
    recorded_events = list(recording.events())
    offset_s = protocol_start_s
    if offset_s is None and schedule is not None:
        origins = {name: (s.origin_index, s.info.sample_rate_hz) for name, s in pipeline.streams.items()}
        offset_s = schedule_offset_from_events(recorded_events, origins)
    if offset_s is None:
        offset_s = 0.0

    boards: dict[str, BoardAssessment | None] = {}
    for stream in pipeline.streams.values():
        boards[stream.info.name] = assess_device_stream(device, stream.info.name, boards_folder) if device else None
    windows = _windows(events)
    floors = {c["name"]: c["noise_floor_uv"] for c in channels}
    trials = _trials(events, boards, schedule, offset_s)
    sham_trials = [] if schedule is None else _shams(schedule, offset_s, channels, windows, floors, trials, pipeline)
    # A board's own warning event repeats the session's ``board`` entry (the report shows that one).
    warnings = [e["text"] for e in events if e.get("type") == "warning" and "board" not in e]
    if calibration is not None and not_applied:
        warnings.append(f"calibration not applied: {not_applied}")
    set_points = _session_set_points(windows, trials)
    first_stream = next(iter(pipeline.streams.values()))
    meta = recording.meta
    return {
        "version": SESSION_ANALYSIS_VERSION,
        "recording": {
            "path": str(recording.path),
            "created": meta.get("created"),
            "client": meta.get("client"),
            "device_id": device.device_id if device else None,
            "board_profile": device.board_profile if device else None,
            "duration_s": max((w["end_s"][-1] for w in windows.values() if w["end_s"]), default=0.0),
            "sample_rate_hz": first_stream.info.sample_rate_hz,
        },
        "board": {name: (a.to_json() if a is not None else None) for name, a in boards.items()},
        "calibration": {
            "applied": calibration is not None and not not_applied,
            "reason": not_applied,
            "noise_floor": "noise_floor_uv" in kwargs,
            "reference_contraction": "analyzer_options" in kwargs,
        },
        "protocol": None if schedule is None else {"name": schedule.name, "start_s": offset_s, **schedule.to_json()},
        "channels": channels,
        "set_points": set_points,
        "trials": trials,
        "sham_trials": sham_trials,
        "windows": windows,
        "phases": [
            {"channel": e["channel"], "time_s": e["time_s"], "phase": e["phase"]}
            for e in events
            if e.get("type") == "phase"
        ],
        "envelope": _envelope(envelopes, pipeline, floors),
        "warnings": warnings,
    }


def _windows(events: list[dict[str, Any]]) -> dict[str, dict[str, list[Any]]]:
    out: dict[str, dict[str, list[Any]]] = {}
    for e in events:
        if e.get("type") != "window":
            continue
        w = out.setdefault(
            e["channel"],
            {"start_s": [], "end_s": [], "level_uv": [], "rest": [], "usable": [], "set_point_uv": []},
        )
        w["start_s"].append(e["start_time_s"])
        w["end_s"].append(e["time_s"])
        w["level_uv"].append(e["level_uv"])
        w["rest"].append(e["rest"])
        w["usable"].append(e["usable"])
        w["set_point_uv"].append(e["set_point_uv"])
    return out


def _trials(
    events: list[dict[str, Any]],
    boards: Mapping[str, BoardAssessment | None],
    schedule: CueSchedule | None,
    offset_s: float,
) -> list[dict[str, Any]]:
    trials: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for e in events:
        if e.get("type") != "trial":
            continue
        trial = apply_board_assessment(e, boards.get(e["stream"]))
        trial = {k: v for k, v in trial.items() if k not in ("type", "sample_index", "time_s")}
        scheduled = schedule.trial_for_onset(e["onset_s"] - offset_s) if schedule is not None else None
        if scheduled is not None:
            trial |= {"trial_index": scheduled.index, "scheduled": True, "in_sham": scheduled.sham}
        else:
            trial |= {"trial_index": counts.get(e["channel"], 0), "scheduled": False, "in_sham": False}
        counts[e["channel"]] = counts.get(e["channel"], 0) + 1
        trial["sham"] = False
        trials.append(trial)
    return trials


def _shams(
    schedule: CueSchedule,
    offset_s: float,
    channels: list[dict[str, Any]],
    windows: dict[str, dict[str, list[Any]]],
    floors: Mapping[str, float | None],
    trials: list[dict[str, Any]],
    pipeline: Pipeline,
) -> list[dict[str, Any]]:
    out = []
    for scheduled in (t for t in schedule.trials if t.sham):
        for channel in channels:
            name = channel["name"]
            base = {"channel": name, "stream": channel["stream"], "trial_index": scheduled.index, "scheduled": True}
            spoiled = [
                t for t in trials if t["channel"] == name and t["in_sham"] and t["trial_index"] == scheduled.index
            ]
            floor = floors.get(name)
            if spoiled or floor is None:
                reason = "a contraction during the sham trial" if spoiled else "the channel was not analysed"
                out.append(base | {"sham": True, "verdict": "rejected", "verdict_reason": reason, "score": None})
                continue
            stream = pipeline.streams[channel["stream"]]
            row = next(k for k, ch in enumerate(stream.info.channels) if ch.name == name)
            result = evaluate_sham_trial(
                session_windows({"windows": windows}, name),
                channel_index=row,
                sample_rate_hz=stream.info.sample_rate_hz,
                noise_floor_uv=float(floor),
                onset_s=scheduled.onset_s + offset_s,
                release_start_s=scheduled.release_start_s + offset_s,
                release_end_s=scheduled.release_end_s + offset_s,
            )
            out.append(base | result)
    return out


def _session_set_points(
    windows: dict[str, dict[str, list[Any]]], trials: list[dict[str, Any]]
) -> dict[str, dict[str, dict[str, Any]]]:
    before: dict[str, dict[str, Any]] = {}
    after: dict[str, dict[str, Any]] = {}
    for name in windows:
        session = session_windows({"windows": windows}, name)
        own = [t for t in trials if t["channel"] == name]
        first_onset = min((t["onset_s"] for t in own), default=math.inf)
        last_end = max((t["release_end_s"] for t in own if t["release_end_s"] is not None), default=-math.inf)
        before[name] = _set_point(session, -math.inf, first_onset)
        after[name] = _set_point(session, last_end + POST_SESSION_DELAY_S, math.inf)
    return {"before": before, "after": after}


def _envelope(blocks: list[Block], pipeline: Pipeline, floors: Mapping[str, float | None]) -> dict[str, dict[str, Any]]:
    """Noise-corrected 250 ms RMS every :data:`ENVELOPE_HOP_S` per channel, times from the stream's start."""
    out: dict[str, dict[str, Any]] = {}
    by_stream: dict[str, list[Block]] = {}
    for block in blocks:
        by_stream.setdefault(block.info.name.removesuffix(".envelope"), []).append(block)
    for stream_name, pieces in by_stream.items():
        stream = pipeline.streams.get(stream_name)
        if stream is None:
            continue
        rate_hz = pieces[0].info.sample_rate_hz
        step = max(1, round(ENVELOPE_HOP_S * rate_hz))
        origin_s = stream.origin_index / stream.info.sample_rate_hz
        indices = np.concatenate([np.arange(b.first_index, b.end_index) for b in pieces])
        values = np.concatenate([b.data for b in pieces], axis=1)
        keep = indices % step == 0
        times = indices[keep] / rate_hz - origin_s
        for c, channel in enumerate(stream.info.channels):
            floor = floors.get(channel.name) or 0.0
            corrected = correct_for_noise(values[c, keep], floor)
            out[channel.name] = {
                "time_s": [round(float(t), 4) for t in times],
                "uv": [round(float(v), 3) for v in corrected],
            }
    return out
