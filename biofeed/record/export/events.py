"""Everything that happened in a recording, placed in device time, for every export format.

Three sources, merged and sorted by time:

- every event of ``events.jsonl`` (markers, notes, phases, verdicts, trials, gaps, link events,
  errors): placed by ``sample_index`` of its ``stream``, else by ``time_s`` (device seconds), else by
  ``host_time`` through the host-device clock offset; an event with none of these follows the event
  before it in the file (its text says ``[time approximate]``);
- the decoder's gaps (the samples that are missing and that exports mark as NaN or fill); a
  ``gap`` event of ``events.jsonl`` that names the same gap is not repeated;
- the device's MARKER packets, and damage to ``frames.bin`` (a torn tail, skipped bytes).

Times are device seconds (sample index / rate), the clock of the samples; exports shift them to
their own origin.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from biofeed.record.export.identity import ClientIdentity
from biofeed.record.reader import Recording
from biofeed.record.stream_reader import RecordingSurvey, StreamSurvey

__all__ = ["MAX_TEXT_CHARS", "ExportEvent", "collect_export_events", "describe_event"]

MAX_TEXT_CHARS = 400
"""Longest annotation text; longer texts are cut with ``...`` (the full event stays in ``json``)."""

_PLACEMENT_KEYS = frozenset({"type", "sample_index", "time_s", "host_time", "duration_s"})


@dataclass(frozen=True)
class ExportEvent:
    """One thing that happened, as exports write it.

    Attributes
    ----------
    time_s : float
        Device time in seconds.
    duration_s : float
        Duration in seconds; 0 for an instant.
    type : str
        The event's type (``marker``, ``gap``, ``phase``, ``device_marker``, ``recording_damage``...).
    stream : str
        The stream it refers to; empty when none.
    text : str
        One line describing it (the EDF+ annotation text).
    source : str
        ``events.jsonl``, ``device`` (MARKER packets) or ``decoder`` (gaps, file damage).
    json : str
        The event as stored in ``events.jsonl`` (compact JSON); empty for the other sources.
    """

    time_s: float
    duration_s: float
    type: str
    stream: str
    text: str
    source: str
    json: str


def _one_line(text: str) -> str:
    # EDF+ TALs are delimited by bytes 0x14, 0x15 and 0x00: no control characters in texts
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return cleaned if len(cleaned) <= MAX_TEXT_CHARS else cleaned[: MAX_TEXT_CHARS - 3] + "..."


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def describe_event(event: Mapping[str, Any]) -> str:
    """Return one line for an ``events.jsonl`` event: its type, then ``key=value`` for its other fields.

    Placement fields (``sample_index``, ``time_s``, ``host_time``, ``duration_s``) become the onset
    and duration and are not repeated.
    """
    kind = _value_text(event.get("type", "event"))
    fields = [f"{key}={_value_text(value)}" for key, value in event.items() if key not in _PLACEMENT_KEYS]
    return _one_line(" ".join([kind, *fields]))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _stream_of(survey: RecordingSurvey, name: Any, sample_index: int) -> StreamSurvey | None:
    """The layout an event's ``stream`` and ``sample_index`` refer to.

    A stream re-described mid-recording has several layouts: the one whose span holds the index,
    else the first.
    """
    if not isinstance(name, str):
        return None
    candidates = [s for s in survey.streams if s.layout.info.name == name]
    for candidate in candidates:
        if candidate.first_index <= sample_index <= candidate.end_index:
            return candidate
    return candidates[0] if candidates else None


def _place(event: Mapping[str, Any], survey: RecordingSurvey) -> tuple[float | None, str]:
    """Device time of an event (None when it carries no time) and the layout it refers to."""
    index = event.get("sample_index")
    if isinstance(index, int) and not isinstance(index, bool):
        stream = _stream_of(survey, event.get("stream"), index)
        if stream is not None:
            return index / stream.layout.sample_rate_hz, stream.layout.name
    stream_name = event.get("stream") if isinstance(event.get("stream"), str) else ""
    time_s = _number(event.get("time_s"))
    if time_s is not None:
        return time_s, str(stream_name)
    host_time = _number(event.get("host_time"))
    if host_time is not None and survey.host_minus_device_s is not None:
        return host_time - survey.host_minus_device_s, str(stream_name)
    return None, str(stream_name)


def _duration(event: Mapping[str, Any], survey: RecordingSurvey, stream: str) -> float:
    duration_s = _number(event.get("duration_s"))
    if duration_s is not None and duration_s >= 0:
        return duration_s
    n_lost = event.get("n_samples_lost")
    if event.get("type") == "gap" and isinstance(n_lost, int) and n_lost > 0:
        try:
            return n_lost / survey.stream(stream).layout.sample_rate_hz
        except KeyError:
            return 0.0
    return 0.0


def _gap_text(stream: StreamSurvey, n_samples: int) -> str:
    return f"gap {stream.layout.name}: {n_samples} samples lost ({n_samples / stream.layout.sample_rate_hz:g} s)"


def _file_events(
    events: Iterable[Mapping[str, Any]], survey: RecordingSurvey, identity: ClientIdentity | None
) -> list[ExportEvent]:
    decoded_gaps = {(s.layout.name, start, n) for s in survey.streams for start, n in s.gaps}
    out: list[ExportEvent] = []
    last_time_s = 0.0
    for event in events:
        time_s, stream = _place(event, survey)
        gap_key = (stream, event.get("sample_index"), event.get("n_samples_lost"))
        if event.get("type") == "gap" and gap_key in decoded_gaps:
            continue  # the decoder's own record of this gap is exported instead
        text = describe_event(event)
        if time_s is None:
            time_s = last_time_s
            text = _one_line(text + " [time approximate]")
        last_time_s = time_s
        raw = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        if identity is not None:
            text, raw = identity.redact(text), identity.redact(raw)
        out.append(
            ExportEvent(
                time_s,
                _duration(event, survey, stream),
                str(event.get("type", "event")),
                stream,
                text,
                "events.jsonl",
                raw,
            )
        )
    return out


def collect_export_events(
    recording: Recording, survey: RecordingSurvey, *, redact_for: ClientIdentity | None = None
) -> list[ExportEvent]:
    """Return every event of a recording in device time, sorted by time.

    Parameters
    ----------
    recording : Recording
        The recording (its ``events.jsonl`` is read here).
    survey : RecordingSurvey
        Its survey (gaps, device markers, clock offset, damage).
    redact_for : ClientIdentity or None
        For an anonymized export: the identity whose name and pseudonym are replaced by ``X`` in
        event texts.

    Returns
    -------
    list of ExportEvent
        Sorted by time (stable: events at the same time keep their order).
    """
    out = _file_events(recording.events(), survey, redact_for)
    for stream in survey.streams:
        for start_index, n_samples in stream.gaps:
            out.append(
                ExportEvent(
                    start_index / stream.layout.sample_rate_hz,
                    n_samples / stream.layout.sample_rate_hz,
                    "gap",
                    stream.layout.name,
                    _gap_text(stream, n_samples),
                    "decoder",
                    "",
                )
            )
    for marker in survey.markers:
        if marker.time_s is not None:
            time_s = marker.time_s
        elif math.isfinite(marker.received_at) and survey.host_minus_device_s is not None:
            time_s = marker.received_at - survey.host_minus_device_s
        else:
            time_s = 0.0
        label = marker.label if redact_for is None else redact_for.redact(marker.label)
        text = _one_line(
            f"device_marker code={marker.code} label={label}" + (f" stream={marker.stream}" * bool(marker.stream))
        )
        out.append(ExportEvent(time_s, 0.0, "device_marker", marker.stream, text, "device", ""))
    end_s = max((s.end_s for s in survey.streams), default=0.0)
    if survey.torn_tail_bytes:
        text = f"recording_damage torn tail of {survey.torn_tail_bytes} bytes: the recording was cut off here"
        out.append(ExportEvent(end_s, 0.0, "recording_damage", "", text, "decoder", ""))
    if survey.skipped_bytes:
        text = f"recording_damage {survey.skipped_bytes} damaged bytes skipped in frames.bin (their samples are gaps)"
        out.append(ExportEvent(end_s, 0.0, "recording_damage", "", text, "decoder", ""))
    out.sort(key=lambda e: e.time_s)
    return out
