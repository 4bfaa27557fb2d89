"""How the live view and the terminal status put results into words (no Qt here: both use it).

Verdicts (SCIENCE.md 6) read ``true relaxation``, ``transient``, ``not reached``, ``not measurable
with this board`` (the rest before the trial was already within about 1 uV of the sensor's noise
floor, so the board cannot resolve a drop) or ``not measurable: <why>`` (too little data before or
after the trial), and ``rejected: <reason>``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biofeed.dsp.imu.posture import POSTURE_TOLERANCE_DEG, compare_postures
from biofeed.dsp.pandiculation import TrialCriteria
from biofeed.protocol.decoder import DecoderStats
from biofeed.sinks.ring_buffer import ChannelState, LiveState

__all__ = [
    "FAULT_WORDS",
    "FLEXION_PHASE_WORDS",
    "VERDICT_WORDS",
    "PostureMatch",
    "TrialSummary",
    "channel_warnings",
    "device_warnings",
    "flexion_phase_words",
    "format_uv",
    "phase_words",
    "posture_match",
    "status_line",
    "summarize_trial",
    "verdict_words",
    "zone_limit_uv",
]

VERDICT_WORDS: dict[str, str] = {
    "true": "true relaxation",
    "transient": "transient",
    "none": "not reached",
    "not_measurable": "not measurable with this board",
    "rejected": "rejected",
}
"""The verdict of a ``trial`` event in the words the user reads."""

FAULT_WORDS: dict[str, str] = {
    "flat": "contact lost (flat signal)",
    "non_finite": "contact lost (no valid samples)",
    "clipped": "clipping",
}
"""Signal faults (:class:`biofeed.dsp.quality.FaultKind`) in words."""

FLEXION_PHASE_WORDS: dict[str, str] = {
    "standing": "standing",
    "flexing": "flexing",
    "full_flexion": "full flexion",
    "extending": "extending",
}
"""Phases of a flexion-relaxation cycle (:data:`biofeed.dsp.flexion_phase.PHASES`) in words."""

_CRITERIA = TrialCriteria()
_BOARD_LIMITED_PREFIX = "already relaxed"  # the verdict reason when the floor hides any drop
_FAULT_SHOWN_S = 30.0  # a signal fault stays on screen this long after it ended (device seconds)


def zone_limit_uv(noise_floor_uv: float) -> float:
    """Upper edge of the true-relaxation zone, ``max(2 uV, 1.5 x floor)`` (noise-corrected uV)."""
    return _CRITERIA.absolute_limit_uv(noise_floor_uv)


def format_uv(value_uv: float | None, digits: int = 2) -> str:
    """A level in uV for the user, or an en dash when unknown."""
    if value_uv is None or not math.isfinite(value_uv):
        return "\u2013"
    return f"{value_uv:.{digits}f} \u00b5V"


def verdict_words(trial: Mapping[str, Any]) -> str:
    """The verdict of one ``trial`` event in words (the module docstring lists them)."""
    verdict = str(trial.get("verdict"))
    reason = str(trial.get("verdict_reason") or "")
    change = trial.get("posture_change_deg")
    if verdict == "rejected" and reason.startswith("posture changed") and change is not None:
        return f"rejected: posture changed by {float(change):.1f} deg"
    if verdict == "rejected":
        return f"rejected: {reason}" if reason else "rejected"
    if verdict == "not_measurable" and not reason.startswith(_BOARD_LIMITED_PREFIX):
        return f"not measurable: {reason}" if reason else "not measurable"
    return VERDICT_WORDS.get(verdict, verdict)


@dataclass(frozen=True)
class TrialSummary:
    """One trial as the card and the history show it (every field already in words).

    Attributes
    ----------
    channel : str
    time : str
        Onset, ``m:ss`` from the start.
    release : str
        Release duration.
    smoothness : str
        Monotonic fraction and re-bursts.
    ratio : str
        Post/pre set point ratio with its 95 % CI.
    persistence : str
        Ratio at 60-120 s.
    levels : str
        Pre- and post-rest set points.
    score : str
    verdict : str
        :func:`verdict_words`.
    verdict_kind : str
        The raw verdict (``true``, ``transient``, ``none``, ``not_measurable``, ``rejected``).
    reason : str
        The analysis' reason for the verdict.
    """

    channel: str
    time: str
    release: str
    smoothness: str
    ratio: str
    persistence: str
    levels: str
    score: str
    verdict: str
    verdict_kind: str
    reason: str


def _number(value: Any, fmt: str) -> str:
    if value is None or not math.isfinite(float(value)):
        return "\u2013"
    return format(float(value), fmt)


def _clock(seconds: Any) -> str:
    if seconds is None or not math.isfinite(float(seconds)):
        return "\u2013"
    whole = int(float(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


def summarize_trial(trial: Mapping[str, Any]) -> TrialSummary:
    """Put one ``trial`` event (biofeed.pipeline) into words."""
    monotonic = trial.get("monotonic_fraction")
    rebursts = int(trial.get("rebursts") or 0)
    ci = trial.get("ratio_ci95")
    ratio = _number(trial.get("ratio"), ".2f")
    if ci is not None and len(ci) == 2 and ratio != "\u2013":
        ratio += f" (95% CI {_number(ci[0], '.2f')}\u2013{_number(ci[1], '.2f')})"
    smoothness = "\u2013" if monotonic is None else f"{100 * float(monotonic):.0f}% falling"
    smoothness += f", {rebursts} re-burst{'s' if rebursts != 1 else ''}"
    return TrialSummary(
        channel=str(trial.get("channel") or ""),
        time=_clock(trial.get("onset_s", trial.get("time_s"))),
        release=f"{_number(trial.get('release_duration_s'), '.1f')} s",
        smoothness=smoothness,
        ratio=ratio,
        persistence=_number(trial.get("persistence_ratio"), ".2f"),
        levels=f"{format_uv(trial.get('pre_rest_uv'))} \u2192 {format_uv(trial.get('post_rest_uv'))}",
        score=f"{_number(trial.get('score'), '.0f')}/100",
        verdict=verdict_words(trial),
        verdict_kind=str(trial.get("verdict")),
        reason=str(trial.get("verdict_reason") or ""),
    )


def flexion_phase_words(state: LiveState) -> str | None:
    """The phase of a flexion-relaxation cycle now, in words (None when unknown or without an IMU)."""
    return FLEXION_PHASE_WORDS.get(state.flexion_phase or "")


@dataclass(frozen=True)
class PostureMatch:
    """Whether the trunk is in the posture the open trial began in (SCIENCE.md 6: > 3 deg rejects).

    Attributes
    ----------
    matched : bool or None
        None when there is nothing to compare (no trial open, or its posture unknown).
    change_deg : float or None
        Largest tilt change of a trunk segment since the 30 s before the trial's onset.
    short : str
        A few words for the meter.
    text : str
        The sentence (tooltip, terminal).
    """

    matched: bool | None
    change_deg: float | None
    short: str
    text: str


def posture_match(channel: ChannelState, state: LiveState) -> PostureMatch | None:
    """The posture-match indicator of one channel (None without an IMU)."""
    label = channel.posture or "posture unknown"
    if channel.posture is None and state.posture_now is None:
        return None
    before, now = channel.trial_posture_before, state.posture_now
    if not channel.trial_open or before is None or now is None:
        return PostureMatch(None, None, label, f"posture: {label}")
    comparison = compare_postures(before, now)
    change = comparison.difference_deg
    began = channel.trial_posture or "an unknown posture"
    if comparison.matched:
        return PostureMatch(
            True,
            change,
            f"\u2713 same posture ({change:.1f}\u00b0)",
            f"posture as at the trial's start ({began}): {change:.1f} deg apart",
        )
    labels = f" ({began} \u2192 {label})" if channel.trial_posture_id != channel.posture_id else ""
    return PostureMatch(
        False,
        change,
        f"\u2717 posture changed {change:.0f}\u00b0",
        f"posture changed by {change:.1f} deg since the trial began{labels}: more than "
        f"{POSTURE_TOLERANCE_DEG:g} deg rejects the trial",
    )


def phase_words(channel: ChannelState) -> str:
    """Where a channel is: calibrating the noise floor, learning its rest, or the phase."""
    if channel.noise_floor_uv is None:
        return "calibrating noise floor"
    if channel.phase == "calibrating":
        return "learning rest"
    return channel.phase


def channel_warnings(channel: ChannelState, now_s: float | None) -> list[str]:
    """Signal-quality warnings of one channel now: contact, clipping, recent faults, ECG."""
    warnings = []
    if channel.lead_off:
        warnings.append(f"{channel.channel}: contact lost (lead-off)")
    if channel.saturated:
        warnings.append(f"{channel.channel}: clipping (at the ADC rail)")
    for fault in channel.faults:
        end_s = fault.get("end_s")
        if now_s is not None and end_s is not None and now_s - float(end_s) > _FAULT_SHOWN_S:
            continue
        words = FAULT_WORDS.get(str(fault.get("kind")), str(fault.get("kind")))
        warnings.append(f"{channel.channel}: {words} {_clock(fault.get('start_s'))}\u2013{_clock(end_s)}")
    if channel.ecg_subtracting:
        warnings.append(f"{channel.channel}: ECG in the signal, subtracted")
    return warnings


def device_warnings(state: LiveState) -> list[str]:
    """Warnings that concern the whole device: link, mains, pipeline warnings, lost samples."""
    warnings = []
    if state.link_state in ("lost", "reconnecting"):
        detail = f" ({state.link_detail})" if state.link_detail else ""
        warnings.append(f"link {state.link_state}{detail}")
    mains = state.mains
    if mains is not None and mains.get("line_hz"):
        notched = mains.get("notched_hz") or []
        action = f"notched at {', '.join(f'{f:g}' for f in notched)} Hz" if mains.get("applied") else "not notched"
        warnings.append(f"mains {float(mains['line_hz']):g} Hz in the signal, {action}")
    warnings += list(state.warnings)
    return warnings


def status_line(state: LiveState, stats: DecoderStats | None, recording_path: Path | None) -> str:
    """One line: time, rates, lost packets and samples, latency, battery, link, recording."""
    parts = [f"{state.now_s:7.1f} s" if state.now_s is not None else "waiting for data"]
    parts += [f"{name} {rate:.0f} Hz" for name, rate in state.rates_hz.items()]
    lost = sum(state.samples_lost.values())
    if stats is not None:
        parts.append(f"lost {stats.lost_packets} packets ({lost} samples)")
    else:
        parts.append(f"lost {lost} samples")
    if state.latency_s is not None:
        parts.append(f"latency {1000 * state.latency_s:.0f} ms")
    if state.battery_pct is not None:
        parts.append(f"battery {state.battery_pct}%")
    if state.link_state is not None:
        parts.append(f"link {state.link_state}")
    parts.append(f"recording {recording_path}" if recording_path is not None else "not recording")
    if state.closed:
        parts.append("acquisition ended")
    return " | ".join(parts)
