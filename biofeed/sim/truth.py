"""Ground truth of a simulated run: what a correct pipeline should find, as plain JSON-able data.

Amplitudes are the scripted RMS of the noise-free sEMG carrier in uV (the noise-corrected quantity
of SCIENCE.md section 3.6); the noise floor is the RMS of the added sensor noise in the 20-450 Hz EMG
band. The expected verdict applies SCIENCE.md section 6 to those scripted levels:

- ``not_measurable``: the pre-trial rest, noise included, is within 1 uV of the floor;
- ``none``: the rest 10-40 s after the release is not <= 0.8 x the pre-trial rest;
- ``transient``: it is, but the rest 60-120 s after the release is not <= 0.9 x the pre-trial rest;
- ``true``: both hold and the later rest is <= max(2 uV, 1.5 x floor) (absolute criterion);
- ``none`` as well when both hold but the absolute criterion fails: true relaxation needs all three.

``null`` where the run ends before a window could be measured. Times are device seconds.

Flexion-relaxation (SCIENCE.md 9, definitions in docs/imu.md) carries the keys of the analysis'
``flexion_relaxation`` object, computed on the scripted levels: FRR and ERR as ratios of RMS with the
sensor noise included, ``hypot(level, floor)``, as the analysis measures them; silence present when
the scripted full-flexion level is at or below ``max(2 uV, 1.5 x floor)`` and the flexion peak above
it; cessation and onset where each side's scripted level crosses that limit around full flexion,
and the angles there. Lists ``per_cycle`` cover the complete cycles in order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from biofeed.sim.keyframes import KeyframeTrack, minimum_jerk_fraction_time
from biofeed.sim.scenarios import CHANNEL_NAMES, FlexionCycle, ScenarioScript, Trial

__all__ = [
    "ABSOLUTE_REST_UV",
    "NOT_MEASURABLE_MARGIN_UV",
    "criteria_of",
    "expected_verdict",
    "scenario_truth",
]

ABSOLUTE_REST_UV = 2.0
"""SCIENCE.md 6.1: true relaxation rests at or below max(2 uV, 1.5 x noise floor)."""
NOT_MEASURABLE_MARGIN_UV = 1.0
"""SCIENCE.md 6: a pre-trial rest within about 1 uV of the floor leaves nothing to measure."""
_RELATIVE_RATIO = 0.8
_PERSISTENT_RATIO = 0.9
_PRE_WINDOW_S = 30.0
_POST_WINDOW_S = (10.0, 40.0)
_LATE_WINDOW_S = (60.0, 120.0)
_MIN_POST_WINDOW_S = 5.0
_MIN_LATE_WINDOW_S = 10.0
_FULL_FLEXION_FRACTION = 0.9  # SCIENCE.md 9: full flexion is >= 90 % of the maximum angle
_EMG_SETTLE_S = 0.5  # the extension burst is over 0.5 s after upright (docs/simulator.md)


def criteria_of(
    pre_uv: float, post_uv: float | None, late_uv: float | None, noise_floor_uv: float
) -> dict[str, bool | None]:
    """Evaluate the three criteria of SCIENCE.md section 6 on scripted levels (None: not measurable).

    Parameters
    ----------
    pre_uv : float
        Rest before the trial, uV (noise-free).
    post_uv : float or None
        Rest 10-40 s after the release, uV.
    late_uv : float or None
        Rest 60-120 s after the release, uV.
    noise_floor_uv : float
        Sensor noise RMS in the EMG band, uV.

    Returns
    -------
    dict
        ``absolute``, ``relative``, ``persistent``: bool or None.
    """
    absolute_uv = max(ABSOLUTE_REST_UV, 1.5 * noise_floor_uv)
    return {
        "absolute": None if post_uv is None else post_uv <= absolute_uv,
        "relative": None if post_uv is None else post_uv <= _RELATIVE_RATIO * pre_uv,
        "persistent": None if late_uv is None else late_uv <= _PERSISTENT_RATIO * pre_uv,
    }


def expected_verdict(pre_uv: float, post_uv: float | None, late_uv: float | None, noise_floor_uv: float) -> str | None:
    """Verdict a correct pipeline reaches on these scripted levels (module docstring); None if undecidable."""
    if math.hypot(pre_uv, noise_floor_uv) - noise_floor_uv <= NOT_MEASURABLE_MARGIN_UV:
        return "not_measurable"
    criteria = criteria_of(pre_uv, post_uv, late_uv, noise_floor_uv)
    if criteria["relative"] is None:
        return None
    if not criteria["relative"]:
        return "none"
    if criteria["persistent"] is None:
        return None
    if not criteria["persistent"]:
        return "transient"
    return "true" if criteria["absolute"] else "none"


def _window_rms(track: KeyframeTrack, start_s: float, end_s: float, min_length_s: float) -> float | None:
    return track.rms_between(start_s, end_s) if end_s - start_s >= min_length_s else None


def _contraction(
    script: ScenarioScript, index: int, channel_index: int, noise_floor_uv: float, next_onset_s: float
) -> dict[str, Any]:
    trial: Trial = script.trials[index]
    track = script.emg_level_uv[channel_index]
    limit_s = min(next_onset_s, script.duration_s)
    pre_uv = track.rms_between(max(0.0, trial.onset_s - _PRE_WINDOW_S), trial.onset_s)
    peak_uv = float(track.value_at(trial.release_start_s))
    span_uv = peak_uv - pre_uv
    end_s = trial.release_end_s
    post_uv = _window_rms(track, end_s + _POST_WINDOW_S[0], min(end_s + _POST_WINDOW_S[1], limit_s), _MIN_POST_WINDOW_S)
    late_uv = _window_rms(track, end_s + _LATE_WINDOW_S[0], min(end_s + _LATE_WINDOW_S[1], limit_s), _MIN_LATE_WINDOW_S)
    release_90_s = track.first_time_below(pre_uv + 0.9 * span_uv, trial.release_start_s, end_s)
    release_10_s = track.first_time_below(pre_uv + 0.1 * span_uv, trial.release_start_s, end_s + 0.001)
    return {
        "trial_index": index,
        "kind": trial.kind,
        "posture": trial.posture,
        "onset_s": trial.onset_s,
        "offset_s": end_s,
        "peak_uv": peak_uv,
        "release_start_s": trial.release_start_s,
        "release_end_s": end_s,
        "release_90_s": release_90_s,
        "release_10_s": release_10_s,
        "rebursts": [{"time_s": t, "peak_uv": float(track.value_at(t))} for t in trial.rebursts_s],
        "pre_rest_uv": pre_uv,
        "post_rest_uv": post_uv,
        "late_rest_uv": late_uv,
        "complete": end_s <= script.duration_s,
        "criteria": criteria_of(pre_uv, post_uv, late_uv, noise_floor_uv),
        "expected_verdict": expected_verdict(pre_uv, post_uv, late_uv, noise_floor_uv),
    }


def _cycle(script: ScenarioScript, index: int) -> dict[str, Any]:
    cycle: FlexionCycle = script.cycles[index]
    flexion_s = cycle.flexion_end_s - cycle.flexion_start_s
    extension_s = cycle.extension_end_s - cycle.extension_start_s
    full_u = minimum_jerk_fraction_time(_FULL_FLEXION_FRACTION)
    full_start_s = cycle.flexion_start_s + flexion_s * full_u
    full_end_s = cycle.extension_start_s + extension_s * (1.0 - full_u)
    levels = {}
    for name, track in zip(CHANNEL_NAMES, script.emg_level_uv, strict=True):
        levels[name] = {
            "standing_uv": float(track.value_at(cycle.flexion_start_s)),
            "peak_flexion_uv": _peak(track, cycle.flexion_start_s, full_start_s),
            "full_flexion_uv": track.rms_between(full_start_s, full_end_s),
            "peak_extension_uv": _peak(track, full_end_s, cycle.extension_end_s + 0.5),
        }
    return {
        "cycle_index": index,
        "standing_start_s": cycle.standing_start_s,
        "flexion_start_s": cycle.flexion_start_s,
        "full_flexion_start_s": full_start_s,
        "flexion_end_s": cycle.flexion_end_s,
        "extension_start_s": cycle.extension_start_s,
        "full_flexion_end_s": full_end_s,
        "extension_end_s": cycle.extension_end_s,
        "standing_end_s": cycle.standing_end_s,
        "complete": cycle.standing_end_s <= script.duration_s,
        "max_thoracic_deg": cycle.max_thoracic_deg,
        "max_lumbar_deg": script.lumbar_deg_at(cycle.flexion_end_s),
        "silence": {
            "start_s": cycle.silence_start_s,
            "end_s": cycle.silence_end_s,
            "cessation_thoracic_deg": float(script.thoracic_deg.value_at(cycle.silence_start_s)),
            "cessation_lumbar_deg": script.lumbar_deg_at(cycle.silence_start_s),
            "onset_thoracic_deg": float(script.thoracic_deg.value_at(cycle.silence_end_s)),
            "onset_lumbar_deg": script.lumbar_deg_at(cycle.silence_end_s),
        },
        "levels": levels,
    }


def _spread(values: list[float]) -> dict[str, float | None]:
    """Mean, SD (n - 1) and coefficient of variation, as the analysis reports them."""
    if not values:
        return {"mean": None, "sd": None, "cv": None}
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) >= 2 else None
    return {"mean": mean, "sd": sd, "cv": sd / mean if sd is not None and mean != 0 else None}


def _silence(script: ScenarioScript, cycle: dict[str, Any], track: KeyframeTrack, limit_uv: float) -> dict[str, Any]:
    """Where one side's scripted level is within the silence limit around full flexion, and the angles there.

    The analysis measures silence as the noise-corrected EMG within the limit, so its cessation comes
    where the scripted fall crosses the limit, a little before the level bottoms out (``silence``
    of the cycle, the scripted span).
    """
    step_s = 0.001
    before = np.arange(cycle["flexion_start_s"], cycle["full_flexion_start_s"], step_s)
    loud = np.flatnonzero(track.value_at(before) > limit_uv)
    start_s = float(before[loud[-1]] + step_s) if loud.size else cycle["flexion_start_s"]
    after = np.arange(cycle["full_flexion_end_s"], cycle["extension_end_s"] + _EMG_SETTLE_S, step_s)
    loud = np.flatnonzero(track.value_at(after) > limit_uv)
    end_s = float(after[loud[0]]) if loud.size else cycle["extension_end_s"] + _EMG_SETTLE_S
    return {
        "start_s": start_s,
        "end_s": end_s,
        "cessation_thoracic_deg": float(script.thoracic_deg.value_at(start_s)),
        "cessation_lumbar_deg": script.lumbar_deg_at(start_s),
        "onset_thoracic_deg": float(script.thoracic_deg.value_at(end_s)),
        "onset_lumbar_deg": script.lumbar_deg_at(end_s),
    }


def _flexion_relaxation(script: ScenarioScript, noise_floor_uv: float) -> dict[str, Any]:
    cycles = [_cycle(script, i) for i in range(len(script.cycles))]
    complete = [c for c in cycles if c["complete"]]
    limit_uv = max(ABSOLUTE_REST_UV, 1.5 * noise_floor_uv)
    out: dict[str, Any] = {
        "n_cycles": len(complete),
        "n_incomplete_cycles": len(cycles) - len(complete),
        "noise_floor_uv": dict.fromkeys(CHANNEL_NAMES, noise_floor_uv),
        "silence_limit_uv": dict.fromkeys(CHANNEL_NAMES, limit_uv),
        "frr": {},
        "err": {},
        "present": {},
        "silence": {},
        "cycles": cycles,
    }
    for name in CHANNEL_NAMES:
        levels = [c["levels"][name] for c in complete]
        full = [math.hypot(lv["full_flexion_uv"], noise_floor_uv) for lv in levels]
        frr = [math.hypot(lv["peak_flexion_uv"], noise_floor_uv) / f for lv, f in zip(levels, full, strict=True)]
        err = [math.hypot(lv["peak_extension_uv"], noise_floor_uv) / f for lv, f in zip(levels, full, strict=True)]
        present = [lv["full_flexion_uv"] <= limit_uv if lv["peak_flexion_uv"] > limit_uv else None for lv in levels]
        n_present = sum(1 for p in present if p is True)
        n_absent = sum(1 for p in present if p is False)
        verdict = (
            "not_measurable"
            if n_present == n_absent == 0
            else "inconsistent"
            if n_present == n_absent
            else ("present" if n_present > n_absent else "absent")
        )
        track = script.emg_level_uv[CHANNEL_NAMES.index(name)]
        spans = [_silence(script, c, track, limit_uv) if p else None for c, p in zip(complete, present, strict=True)]
        silence: dict[str, Any] = {"per_cycle": spans}
        for key in ("cessation_lumbar_deg", "onset_lumbar_deg", "cessation_thoracic_deg", "onset_thoracic_deg"):
            silence[key] = _spread([span[key] for span in spans if span is not None])
        out["frr"][name] = {"per_cycle": frr, **_spread(frr)}
        out["err"][name] = {"per_cycle": err, **_spread(err)}
        out["present"][name] = {"per_cycle": present, "n_present": n_present, "n_absent": n_absent, "verdict": verdict}
        out["silence"][name] = silence
    return out


def _levels(script: ScenarioScript, start_s: float, end_s: float) -> dict[str, float]:
    return {n: t.rms_between(start_s, end_s) for n, t in zip(CHANNEL_NAMES, script.emg_level_uv, strict=True)}


def _peak(track: KeyframeTrack, start_s: float, end_s: float) -> float:
    inside = (track.times_s >= start_s) & (track.times_s <= end_s)
    candidates = [float(v) for v in track.values[inside]]
    candidates += [float(track.value_at(start_s)), float(track.value_at(end_s))]
    return max(candidates)


def scenario_truth(
    script: ScenarioScript, *, seed: int, noise_floor_uv: float, device: Mapping[str, Any]
) -> dict[str, Any]:
    """Assemble the ground truth of a run as a JSON-able dict (layout in docs/simulator.md).

    Parameters
    ----------
    script : ScenarioScript
        The scenario run.
    seed : int
        Its seed.
    noise_floor_uv : float
        Sensor noise RMS in the 20-450 Hz band, uV.
    device : mapping
        Device-level facts to include as they are (device_id, sample rates, clock_ppm, ECG and
        mains settings), JSON-able.
    """
    onsets = [t.onset_s for t in script.trials] + [math.inf]
    channels: dict[str, Any] = {}
    for channel_index, name in enumerate(CHANNEL_NAMES):
        channels[name] = {
            "contractions": [
                _contraction(script, i, channel_index, noise_floor_uv, onsets[i + 1]) for i in range(len(script.trials))
            ]
        }
    key_times = [t for t in script.thoracic_deg.times_s if t <= script.duration_s]
    if not key_times or key_times[-1] < script.duration_s:
        key_times.append(script.duration_s)
    return {
        "scenario": script.name,
        "seed": seed,
        "duration_s": script.duration_s,
        "script_duration_s": script.script_duration_s,
        **device,
        "noise_floor_uv": noise_floor_uv,
        "noise_band_hz": [20.0, 450.0],
        "verdict_rules": {
            "absolute_rest_uv": max(ABSOLUTE_REST_UV, 1.5 * noise_floor_uv),
            "relative_ratio": _RELATIVE_RATIO,
            "persistent_ratio": _PERSISTENT_RATIO,
            "post_window_s": list(_POST_WINDOW_S),
            "late_window_s": list(_LATE_WINDOW_S),
            "pre_window_s": _PRE_WINDOW_S,
        },
        "channels": channels,
        "rests": [
            {
                "start_s": r.start_s,
                "end_s": r.end_s,
                "posture": r.posture,
                "level_uv": _levels(script, r.start_s, r.end_s),
                "thoracic_deg": float(script.thoracic_deg.value_at(r.end_s)),
                "lumbar_deg": script.lumbar_deg_at(r.end_s),
            }
            for r in script.rests
            if r.end_s > r.start_s
        ],
        "angles": {
            "key_points": [
                {
                    "time_s": float(t),
                    "thoracic_deg": float(script.thoracic_deg.value_at(t)),
                    "sacral_deg": float(script.sacral_deg.value_at(t)),
                    "lumbar_deg": script.lumbar_deg_at(float(t)),
                }
                for t in key_times
            ]
        },
        "flexion_relaxation": _flexion_relaxation(script, noise_floor_uv),
        "motion_artifacts": [
            {
                "time_s": a.time_s,
                "time_constant_s": a.time_constant_s,
                "amplitude_uv": dict(zip(CHANNEL_NAMES, a.amplitude_uv, strict=True)),
            }
            for a in script.motion_artifacts
        ],
    }
