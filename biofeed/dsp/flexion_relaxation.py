"""The flexion-relaxation test: cycles from the trunk angle, FRR and ERR, and silence at full flexion.

SCIENCE.md section 9. Healthy lumbar erector spinae fall silent at full trunk flexion; in chronic
low-back pain the silence is often absent. The protocol is repeated guided cycles of standing ->
flexion -> full flexion -> extension -> standing; test-retest error is 38-49 %, so every measure is
given per cycle and as mean, SD and coefficient of variation over cycles.

**Phases**, from the lumbar flexion angle (trunk inclination with one IMU) and its rate (the
derivative of the angle smoothed over 0.1 s):

- *standing*: within 5 deg of upright and slower than 5 deg/s for at least 2 s;
- a *cycle* is the excursion between two standing spans that reaches at least ``min_peak_deg``;
- *full flexion*: the span around the cycle's maximum where the angle is >= 90 % of it;
- *flexion*: from the end of standing to full flexion; its reported start is where the rate first
  exceeds +5 deg/s, its end (``flexion_end_s``) where it falls below +5 deg/s again;
- *extension*: from full flexion to the next standing; ``extension_start_s`` is where the rate last
  falls below -5 deg/s before the angle leaves full flexion, ``extension_end_s`` where it last rises
  above -5 deg/s.

The rate thresholds date movement starts and ends about 0.4 s inside a smooth (minimum-jerk) bend,
where the rate is still small; the 90 % bounds do not depend on them.

**EMG** (per channel, the DSP core's band-pass and mains notch, then :class:`MovingRms` envelopes on
5 ms hops; times are window centres):

- FRR = max 250 ms RMS in flexion / RMS over full flexion; ERR = max 250 ms RMS in extension / RMS
  over full flexion. Both are ratios of *band-passed* RMS, noise included, as in the literature the
  reference values come from (Gouteron 2022: chronic LBP FRR 2.96, ERR 4.07): a silent muscle's
  noise-corrected RMS is 0 +/- estimation noise, so a corrected denominator makes the ratio unbounded.
  The noise-corrected levels are reported next to them.
- **Absolute silence** (the criterion of SCIENCE.md 6.1 applied to full flexion): the noise-corrected
  RMS over full flexion is at most ``max(2 uV, 1.5 x noise floor)``. Flexion-relaxation is
  *present* in a cycle when full flexion is silent, *absent* when it is not, and not measurable
  (None) when the flexion itself never rose above that limit (nothing to relax) or the cycle is
  incomplete.
- **Cessation** and **onset** of silence: the 50 ms RMS (noise-corrected) falls below the silence limit
  during flexion and rises above it during extension; the silent stretch chosen is the one covering
  most of full flexion (breaks shorter than 0.1 s do not split it). Their angles are read from the
  IMU at those times. Given only when flexion-relaxation is present.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block, ChannelInfo, ChannelKind, StreamInfo
from biofeed.dsp.envelope import DEFAULT_HOP_S, DISPLAY_WINDOW_S, SET_POINT_WINDOW_S, TIMING_WINDOW_S, MovingRms
from biofeed.dsp.filters import DEFAULT_HIGH_PASS_HZ, DEFAULT_LOW_PASS_HZ, BandPassFilter
from biofeed.dsp.imu.channels import imu_rows
from biofeed.dsp.imu.trunk_motion import SACRAL_STREAM, THORACIC_STREAM, TrunkMotion, track_trunk
from biofeed.dsp.mains import MainsNotch
from biofeed.dsp.noise import (
    MIN_HIGH_BAND_RATE_HZ,
    correct_for_noise,
    noise_floor_from_high_band,
    noise_floor_from_rest,
)

__all__ = [
    "ABSOLUTE_SILENCE_UV",
    "SILENCE_NOISE_FACTOR",
    "CycleSide",
    "FlexionCriteria",
    "FlexionCycle",
    "FlexionRelaxationResult",
    "SilenceSpan",
    "analyze_flexion_relaxation",
    "analyze_flexion_relaxation_blocks",
    "find_flexion_cycles",
    "rate_dps",
    "silence_limit_uv",
]

_Array = npt.NDArray[np.float64]
MainsMode = Literal["auto", "off", 50, 60]

_CYCLE_TIMES = (
    "flexion_start_s",
    "full_flexion_start_s",
    "flexion_end_s",
    "extension_start_s",
    "full_flexion_end_s",
    "extension_end_s",
    "standing_after_s",
)

ABSOLUTE_SILENCE_UV = 2.0
"""SCIENCE.md 6.1: silent (noise-corrected) at or below max(2 uV, 1.5 x noise floor)."""
SILENCE_NOISE_FACTOR = 1.5
"""SCIENCE.md 6.1: ... or 1.5 x the noise floor when that is larger."""


def silence_limit_uv(noise_floor_uv: float) -> float:
    """Largest noise-corrected RMS that counts as silence, uV (SCIENCE.md 6.1)."""
    return max(ABSOLUTE_SILENCE_UV, SILENCE_NOISE_FACTOR * noise_floor_uv)


@dataclass(frozen=True)
class FlexionCriteria:
    """Thresholds of the phases (SCIENCE.md 9) and of the silence measurement.

    Attributes
    ----------
    standing_deg : float
        Standing is within this of upright (0 deg after calibration).
    still_rate_dps : float
        ... and slower than this ...
    standing_hold_s : float
        ... for at least this long.
    moving_rate_dps : float
        Flexion is faster than +this, extension faster than -this.
    full_flexion_fraction : float
        Full flexion is at or above this fraction of the cycle's maximum angle.
    min_peak_deg : float
        Smaller excursions are not cycles.
    rate_smoothing_s : float
        Centred moving average applied to the angle before differentiating it.
    silence_merge_s : float
        Breaks in a silence shorter than this do not end it.
    standing_margin_s : float
        Cut from each end of a standing span before its EMG level is measured (the muscles rise
        with the start of a bend, before the rate threshold sees it).
    """

    standing_deg: float = 5.0
    still_rate_dps: float = 5.0
    standing_hold_s: float = 2.0
    moving_rate_dps: float = 5.0
    full_flexion_fraction: float = 0.9
    min_peak_deg: float = 15.0
    rate_smoothing_s: float = 0.1
    silence_merge_s: float = 0.1
    standing_margin_s: float = 1.0

    def __post_init__(self) -> None:
        for name in (
            "standing_deg",
            "still_rate_dps",
            "standing_hold_s",
            "moving_rate_dps",
            "min_peak_deg",
            "rate_smoothing_s",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("silence_merge_s", "standing_margin_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0 s, got {value!r}")
        if not 0 < self.full_flexion_fraction < 1:
            raise ValueError(f"full_flexion_fraction must be in (0, 1), got {self.full_flexion_fraction!r}")


@dataclass(frozen=True)
class FlexionCycle:
    """Phase timing of one complete cycle (device seconds) and its largest angles.

    Attributes
    ----------
    cycle_index : int
        0, 1, ... in time order.
    standing_before_s : tuple of float
        The standing span before it.
    flexion_start_s, full_flexion_start_s, flexion_end_s : float
        Rate above +5 deg/s; angle reaching 90 % of the maximum; rate back below +5 deg/s.
    extension_start_s, full_flexion_end_s, extension_end_s : float
        Rate below -5 deg/s; angle below 90 % of the maximum; rate back above -5 deg/s.
    standing_after_s : float
        Start of the standing span after it.
    max_flexion_deg : float
        Maximum of the angle the phases were found on.
    max_lumbar_deg : float or None
        Maximum lumbar flexion (None with one IMU).
    max_thoracic_deg : float
        Maximum thoracic (trunk) inclination.
    """

    cycle_index: int
    standing_before_s: tuple[float, float]
    flexion_start_s: float
    full_flexion_start_s: float
    flexion_end_s: float
    extension_start_s: float
    full_flexion_end_s: float
    extension_end_s: float
    standing_after_s: float
    max_flexion_deg: float
    max_lumbar_deg: float | None
    max_thoracic_deg: float

    def to_json(self) -> dict[str, Any]:
        """The keys of the simulator's truth cycles (docs/simulator.md)."""
        return {
            "cycle_index": self.cycle_index,
            "flexion_start_s": self.flexion_start_s,
            "full_flexion_start_s": self.full_flexion_start_s,
            "flexion_end_s": self.flexion_end_s,
            "extension_start_s": self.extension_start_s,
            "full_flexion_end_s": self.full_flexion_end_s,
            "extension_end_s": self.extension_end_s,
            "complete": True,
            "max_thoracic_deg": self.max_thoracic_deg,
            "max_lumbar_deg": self.max_lumbar_deg,
        }


@dataclass(frozen=True)
class SilenceSpan:
    """The silence of one side in one cycle and the angles at its ends.

    Attributes
    ----------
    start_s, end_s : float
        Cessation (during flexion) and onset (during extension) of silence, device seconds.
    cessation_lumbar_deg, onset_lumbar_deg : float or None
        Lumbar flexion at those times (None with one IMU).
    cessation_thoracic_deg, onset_thoracic_deg : float
        Thoracic inclination at those times.
    """

    start_s: float
    end_s: float
    cessation_lumbar_deg: float | None
    onset_lumbar_deg: float | None
    cessation_thoracic_deg: float
    onset_thoracic_deg: float

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "start_s": self.start_s,
            "end_s": self.end_s,
            "cessation_lumbar_deg": self.cessation_lumbar_deg,
            "onset_lumbar_deg": self.onset_lumbar_deg,
            "cessation_thoracic_deg": self.cessation_thoracic_deg,
            "onset_thoracic_deg": self.onset_thoracic_deg,
        }


@dataclass(frozen=True)
class CycleSide:
    """One channel (side) in one cycle.

    Attributes
    ----------
    standing_uv, peak_flexion_uv, full_flexion_uv, peak_extension_uv : float
        Noise-corrected levels: standing RMS, max 250 ms RMS in flexion, RMS over full flexion, max
        250 ms RMS in extension.
    frr, err : float or None
        Flexion- and extension-relaxation ratios (band-passed RMS, noise included); None when full
        flexion holds no signal at all.
    present : bool or None
        Flexion-relaxation present (full flexion silent), absent, or not measurable.
    silence : SilenceSpan or None
        When present.
    """

    standing_uv: float
    peak_flexion_uv: float
    full_flexion_uv: float
    peak_extension_uv: float
    frr: float | None
    err: float | None
    present: bool | None
    silence: SilenceSpan | None

    def levels_json(self) -> dict[str, float]:
        """The levels under the keys of the simulator's truth."""
        return {
            "standing_uv": self.standing_uv,
            "peak_flexion_uv": self.peak_flexion_uv,
            "full_flexion_uv": self.full_flexion_uv,
            "peak_extension_uv": self.peak_extension_uv,
        }


def _spread(values: Sequence[float | None]) -> dict[str, float | None]:
    """Mean, SD (n - 1) and coefficient of variation of the non-None values."""
    known = np.array([v for v in values if v is not None], dtype=np.float64)
    if known.size == 0:
        return {"mean": None, "sd": None, "cv": None}
    mean = float(known.mean())
    sd = float(known.std(ddof=1)) if known.size >= 2 else None
    cv = sd / mean if sd is not None and mean != 0 else None
    return {"mean": mean, "sd": sd, "cv": cv}


def _ratios(per_cycle: list[float | None]) -> dict[str, Any]:
    return {"per_cycle": per_cycle, **_spread(per_cycle)}


def _presence_verdict(per_cycle: Sequence[bool | None]) -> str:
    n_present = sum(1 for p in per_cycle if p is True)
    n_absent = sum(1 for p in per_cycle if p is False)
    if n_present == n_absent == 0:
        return "not_measurable"
    if n_present == n_absent:
        return "inconsistent"
    return "present" if n_present > n_absent else "absent"


@dataclass(frozen=True)
class FlexionRelaxationResult:
    """The flexion-relaxation test of one recording.

    Attributes
    ----------
    angle_name : str
        ``lumbar_flexion`` (two IMUs) or ``thoracic_inclination`` (one): the angle the phases came from.
    channel_names : tuple of str
        EMG channels (sides).
    noise_floor_uv : tuple of float
        Per channel.
    noise_floor_source : str
        ``given``, ``high_band`` or ``record_percentile``.
    silence_limit_uv : tuple of float
        Per channel (:func:`silence_limit_uv`).
    cycles : tuple of FlexionCycle
        Complete cycles.
    sides : tuple of tuple of CycleSide
        ``sides[channel][cycle]``.
    n_incomplete_cycles : int
        Excursions the recording cut off before standing again (not measured).
    """

    angle_name: str
    channel_names: tuple[str, ...]
    noise_floor_uv: tuple[float, ...]
    noise_floor_source: str
    silence_limit_uv: tuple[float, ...]
    cycles: tuple[FlexionCycle, ...]
    sides: tuple[tuple[CycleSide, ...], ...]
    n_incomplete_cycles: int

    def to_json(self) -> dict[str, Any]:
        """The ``flexion_relaxation`` object of ``biofeed analyze --json`` (docs/imu.md)."""
        names = self.channel_names
        silence: dict[str, Any] = {}
        for name, side in zip(names, self.sides, strict=True):
            spans = [c.silence for c in side]
            entry: dict[str, Any] = {"per_cycle": [s.to_json() if s is not None else None for s in spans]}
            for key in ("cessation_lumbar_deg", "onset_lumbar_deg", "cessation_thoracic_deg", "onset_thoracic_deg"):
                entry[key] = _spread([getattr(s, key) if s is not None else None for s in spans])
            silence[name] = entry
        return {
            "angle": self.angle_name,
            "n_cycles": len(self.cycles),
            "n_incomplete_cycles": self.n_incomplete_cycles,
            "noise_floor_uv": dict(zip(names, self.noise_floor_uv, strict=True)),
            "noise_floor_source": self.noise_floor_source,
            "silence_limit_uv": dict(zip(names, self.silence_limit_uv, strict=True)),
            "frr": {n: _ratios([c.frr for c in s]) for n, s in zip(names, self.sides, strict=True)},
            "err": {n: _ratios([c.err for c in s]) for n, s in zip(names, self.sides, strict=True)},
            "present": {
                n: {
                    "per_cycle": [c.present for c in s],
                    "n_present": sum(1 for c in s if c.present is True),
                    "n_absent": sum(1 for c in s if c.present is False),
                    "verdict": _presence_verdict([c.present for c in s]),
                }
                for n, s in zip(names, self.sides, strict=True)
            },
            "silence": silence,
            "cycles": [
                {**cycle.to_json(), "levels": {n: s[k].levels_json() for n, s in zip(names, self.sides, strict=True)}}
                for k, cycle in enumerate(self.cycles)
            ],
        }


# --- phases ---------------------------------------------------------------------------------------


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Runs of True as [start, end) index pairs."""
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def _crossing_s(values: _Array, index: int, level: float, sample_rate_hz: float) -> float:
    """Time at which ``values`` crosses ``level`` between samples index - 1 and index (linear)."""
    if index <= 0:
        return 0.0
    before, at = float(values[index - 1]), float(values[index])
    fraction = (level - before) / (at - before) if at != before else 1.0
    return (index - 1 + min(max(fraction, 0.0), 1.0)) / sample_rate_hz


def rate_dps(angle_deg: _Array, sample_rate_hz: float, smoothing_s: float) -> _Array:
    """Angular rate in deg/s: the angle smoothed by a centred moving mean of ``smoothing_s``, differentiated.

    Parameters
    ----------
    angle_deg : ndarray
        Angle samples in degrees.
    sample_rate_hz : float
        Their rate.
    smoothing_s : float
        Length of the moving mean (rounded to an odd number of samples).

    Returns
    -------
    ndarray
        Rate in deg/s, one per sample.
    """
    n = max(1, round(smoothing_s * sample_rate_hz)) | 1
    padded = np.pad(angle_deg, n // 2, mode="edge")
    smooth = np.convolve(padded, np.ones(n) / n, mode="valid")
    return np.gradient(smooth) * sample_rate_hz


def find_flexion_cycles(
    angle_deg: npt.ArrayLike,
    sample_rate_hz: float,
    criteria: FlexionCriteria | None = None,
    *,
    lumbar_deg: npt.ArrayLike | None = None,
    thoracic_deg: npt.ArrayLike | None = None,
) -> tuple[list[FlexionCycle], int]:
    """Segment standing -> flexion -> full flexion -> extension -> standing cycles (module docstring).

    Parameters
    ----------
    angle_deg : array_like, shape (n_samples,)
        Lumbar flexion (or trunk inclination), degrees, 0 upright, + forward.
    sample_rate_hz : float
        Its rate.
    criteria : FlexionCriteria, optional
        Thresholds; the defaults of SCIENCE.md 9.
    lumbar_deg, thoracic_deg : array_like, shape (n_samples,), optional
        For the maxima reported; ``thoracic_deg`` defaults to ``angle_deg``.

    Returns
    -------
    cycles : list of FlexionCycle
        Complete cycles.
    n_incomplete : int
        Excursions the data cut off before standing again.
    """
    c = criteria or FlexionCriteria()
    angle = np.asarray(angle_deg, dtype=np.float64)
    fs = float(sample_rate_hz)
    lumbar = None if lumbar_deg is None else np.asarray(lumbar_deg, dtype=np.float64)
    thoracic = angle if thoracic_deg is None else np.asarray(thoracic_deg, dtype=np.float64)
    rate = rate_dps(angle, fs, c.rate_smoothing_s)
    standing = (np.abs(angle) <= c.standing_deg) & (np.abs(rate) < c.still_rate_dps)
    spans = [(a, b) for a, b in _runs(standing) if b - a >= c.standing_hold_s * fs]
    cycles: list[FlexionCycle] = []
    for (before_start, a), (b, _) in itertools.pairwise(spans):
        if angle[a:b].max() < c.min_peak_deg:
            continue
        peak = a + int(np.argmax(angle[a:b]))
        level = c.full_flexion_fraction * angle[peak]
        below = np.flatnonzero(angle[a:peak] < level)
        full_start = a + int(below[-1]) + 1 if below.size else a
        below_after = np.flatnonzero(angle[peak:b] < level)
        full_end = peak + int(below_after[0]) - 1 if below_after.size else b - 1
        up = np.flatnonzero(rate[a:full_start] > c.moving_rate_dps)
        flexion_start_s = _crossing_s(rate, a + int(up[0]), c.moving_rate_dps, fs) if up.size else a / fs
        slowing = np.flatnonzero(rate[full_start : full_end + 1] < c.moving_rate_dps)
        flexion_end = full_start + int(slowing[0]) if slowing.size else peak
        flexion_end_s = _crossing_s(rate, flexion_end, c.moving_rate_dps, fs)
        holding = np.flatnonzero(rate[flexion_end : full_end + 1] >= -c.moving_rate_dps)
        extension_start = flexion_end + int(holding[-1]) + 1 if holding.size else peak
        extension_start_s = max(_crossing_s(rate, extension_start, -c.moving_rate_dps, fs), flexion_end_s)
        returning = np.flatnonzero(rate[full_end:b] < -c.moving_rate_dps)
        extension_end = full_end + int(returning[-1]) + 1 if returning.size else b
        cycles.append(
            FlexionCycle(
                cycle_index=len(cycles),
                standing_before_s=(before_start / fs, a / fs),
                flexion_start_s=flexion_start_s,
                full_flexion_start_s=_crossing_s(angle, full_start, level, fs),
                flexion_end_s=flexion_end_s,
                extension_start_s=extension_start_s,
                full_flexion_end_s=_crossing_s(angle, full_end + 1, level, fs),
                extension_end_s=_crossing_s(rate, extension_end, -c.moving_rate_dps, fs),
                standing_after_s=b / fs,
                max_flexion_deg=float(angle[peak]),
                max_lumbar_deg=None if lumbar is None else float(lumbar[a:b].max()),
                max_thoracic_deg=float(thoracic[a:b].max()),
            )
        )
    last_end = spans[-1][1] if spans else 0
    n_incomplete = int(angle[last_end:].max() >= c.min_peak_deg) if last_end < angle.shape[0] else 0
    return cycles, n_incomplete


# --- EMG --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Envelope:
    """A moving RMS of band-passed EMG at window centres."""

    centres_s: _Array
    rms_uv: _Array  # (n_channels, n_hops)

    def between(self, start_s: float, end_s: float) -> _Array:
        inside = (self.centres_s >= start_s) & (self.centres_s < end_s)
        return self.rms_uv[:, inside]


def _envelope(band_passed: Block, window_s: float) -> _Envelope:
    rms = MovingRms(band_passed.info.sample_rate_hz, window_s, DEFAULT_HOP_S)
    out = rms.process(band_passed)
    fs = band_passed.info.sample_rate_hz
    centres = ((out.first_index + np.arange(out.n_samples)) * rms.hop_samples - rms.window_samples / 2) / fs
    return _Envelope(np.asarray(centres, dtype=np.float64), out.data)


def _noise_floor(band_passed: Block, raw: Block, band_pass: BandPassFilter) -> tuple[_Array, str]:
    if band_pass.band.sample_rate_hz >= MIN_HIGH_BAND_RATE_HZ:
        return noise_floor_from_high_band(raw.data, band_pass.band), "high_band"
    windows = MovingRms(band_passed.info.sample_rate_hz, SET_POINT_WINDOW_S, SET_POINT_WINDOW_S).process(band_passed)
    return noise_floor_from_rest(windows.data), "record_percentile"


def _rms(data: _Array, fs: float, start_s: float, end_s: float) -> _Array:
    span = data[:, math.ceil(start_s * fs) : max(math.floor(end_s * fs), math.ceil(start_s * fs) + 1)]
    return np.asarray(np.sqrt(np.mean(span * span, axis=1)), dtype=np.float64)


def _silence(
    timing: _Envelope,
    channel: int,
    raw_limit_uv: float,
    cycle: FlexionCycle,
    merge_s: float,
    trunk: TrunkMotion,
) -> SilenceSpan | None:
    t = timing.centres_s
    inside = np.flatnonzero((t >= cycle.standing_before_s[1]) & (t < cycle.standing_after_s))
    if inside.size == 0:
        return None
    values = timing.rms_uv[channel, inside]
    silent = values <= raw_limit_uv
    hop_s = float(t[1] - t[0]) if t.shape[0] > 1 else 1.0
    for start, end in _runs(~silent):
        if start > 0 and end < silent.shape[0] and (end - start) * hop_s < merge_s:
            silent[start:end] = True
    best: tuple[float, int, int] | None = None
    for start, end in _runs(silent):
        overlap = min(t[inside[end - 1]], cycle.full_flexion_end_s) - max(t[inside[start]], cycle.full_flexion_start_s)
        if overlap > 0 and (best is None or overlap > best[0]):
            best = (overlap, start, end)
    if best is None:
        return None
    _, start, end = best

    def crossing(position: int) -> float:
        # The envelope crosses the limit between hops position - 1 and position.
        if position <= 0 or position >= values.shape[0]:
            return float(t[inside[min(max(position, 0), values.shape[0] - 1)]])
        before, at = float(values[position - 1]), float(values[position])
        fraction = (raw_limit_uv - before) / (at - before) if at != before else 1.0
        return float(t[inside[position - 1]] + min(max(fraction, 0.0), 1.0) * hop_s)

    start_s, end_s = crossing(start), crossing(end)
    imu_t = np.arange(trunk.n_samples) / trunk.sample_rate_hz

    def angle_at(name: str, time_s: float) -> float:
        return float(np.interp(time_s, imu_t, trunk.angle(name)))

    return SilenceSpan(
        start_s=start_s,
        end_s=end_s,
        cessation_lumbar_deg=angle_at("lumbar_flexion", start_s) if trunk.has_lumbar else None,
        onset_lumbar_deg=angle_at("lumbar_flexion", end_s) if trunk.has_lumbar else None,
        cessation_thoracic_deg=angle_at("thoracic_inclination", start_s),
        onset_thoracic_deg=angle_at("thoracic_inclination", end_s),
    )


def analyze_flexion_relaxation(
    emg_uv: npt.ArrayLike,
    emg_rate_hz: float,
    trunk: TrunkMotion,
    channel_names: Sequence[str] | None = None,
    *,
    noise_floor_uv: float | npt.ArrayLike | None = None,
    high_pass_hz: float = DEFAULT_HIGH_PASS_HZ,
    low_pass_hz: float = DEFAULT_LOW_PASS_HZ,
    mains: MainsMode = "auto",
    criteria: FlexionCriteria | None = None,
    start_s: float = 0.0,
) -> FlexionRelaxationResult:
    """Run the flexion-relaxation test on a recording.

    Parameters
    ----------
    emg_uv : array_like, shape (n_channels, n_samples)
        Raw sEMG in uV, finite; sample 0 at device time ``start_s``, as the IMU's.
    emg_rate_hz : float
        EMG rate.
    trunk : TrunkMotion
        :func:`~biofeed.dsp.imu.trunk_motion.track_trunk` of the same recording.
    channel_names : sequence of str, optional
        ``ch0, ch1, ...`` by default.
    noise_floor_uv : float or array_like, optional
        Known floor per channel; otherwise the 450-500 Hz band (fs >= 2 kHz) or the 2nd-5th
        percentile of 1 s RMS over the record (an upper bound).
    high_pass_hz, low_pass_hz : float
        EMG band (SCIENCE.md 3).
    mains : {"auto", "off", 50, 60}
        Mains notch, as :class:`~biofeed.dsp.analyze.EmgAnalyzer`.
    criteria : FlexionCriteria, optional
        Thresholds; the defaults of SCIENCE.md 9.
    start_s : float
        Device time of sample 0 of both the EMG and the IMU; added to every time reported.

    Returns
    -------
    FlexionRelaxationResult

    Raises
    ------
    ValueError
        For bad shapes, non-finite samples or options.
    """
    c = criteria or FlexionCriteria()
    data = np.asarray(emg_uv, dtype=np.float64)
    if data.ndim == 1:
        data = data[None, :]
    if data.ndim != 2 or data.shape[1] == 0:
        raise ValueError(f"emg_uv must have shape (n_channels, n_samples), got {np.shape(emg_uv)}")
    if not np.isfinite(data).all():
        raise ValueError("emg_uv must be finite (cut recordings with lost samples into finite pieces)")
    if mains not in ("auto", "off", 50, 60):
        raise ValueError(f"mains must be one of 'auto', 'off', 50, 60, got {mains!r}")
    names = tuple(channel_names) if channel_names is not None else tuple(f"ch{k}" for k in range(data.shape[0]))
    if len(names) != data.shape[0]:
        raise ValueError(f"{len(names)} channel names for {data.shape[0]} channels")
    fs = float(emg_rate_hz)
    info = StreamInfo("emg", fs, tuple(ChannelInfo(n, ChannelKind.EMG, "uV") for n in names))
    raw = Block(info, data, 0)
    band_pass = BandPassFilter(fs, high_pass_hz, low_pass_hz)
    cleaned = band_pass.process(raw)
    if mains != "off":
        notch = MainsNotch(fs, band_pass.band.low_pass_hz, None if mains == "auto" else float(mains))
        cleaned = notch.process(cleaned)
    if noise_floor_uv is not None:
        floor = np.broadcast_to(np.asarray(noise_floor_uv, dtype=np.float64), (data.shape[0],)).copy()
        source = "given"
    else:
        floor, source = _noise_floor(cleaned, raw, band_pass)
    amplitude = _envelope(cleaned, DISPLAY_WINDOW_S)
    timing = _envelope(cleaned, TIMING_WINDOW_S)
    cycles, n_incomplete = find_flexion_cycles(
        trunk.flexion_deg,
        trunk.sample_rate_hz,
        c,
        lumbar_deg=trunk.angle("lumbar_flexion") if trunk.has_lumbar else None,
        thoracic_deg=trunk.angle("thoracic_inclination"),
    )
    limits = tuple(silence_limit_uv(float(f)) for f in floor)
    sides: list[tuple[CycleSide, ...]] = []
    for k in range(data.shape[0]):
        noise, limit = float(floor[k]), limits[k]
        per_cycle = []
        for cycle in cycles:
            stand_start, stand_end = cycle.standing_before_s
            if stand_end - stand_start > 2 * c.standing_margin_s:
                stand_start, stand_end = stand_start + c.standing_margin_s, stand_end - c.standing_margin_s
            standing = float(_rms(cleaned.data[k : k + 1], fs, stand_start, stand_end)[0])
            full = float(_rms(cleaned.data[k : k + 1], fs, cycle.full_flexion_start_s, cycle.full_flexion_end_s)[0])
            flexion_env = amplitude.between(cycle.standing_before_s[1], cycle.full_flexion_start_s)[k]
            extension_env = amplitude.between(cycle.full_flexion_end_s, cycle.standing_after_s)[k]
            peak_flexion = float(flexion_env.max()) if flexion_env.size else math.nan
            peak_extension = float(extension_env.max()) if extension_env.size else math.nan
            corrected = correct_for_noise([standing, peak_flexion, full, peak_extension], noise)
            present = None if not corrected[1] > limit else bool(corrected[2] <= limit)
            silence = (
                _silence(timing, k, math.hypot(limit, noise), cycle, c.silence_merge_s, trunk) if present else None
            )
            per_cycle.append(
                CycleSide(
                    standing_uv=float(corrected[0]),
                    peak_flexion_uv=float(corrected[1]),
                    full_flexion_uv=float(corrected[2]),
                    peak_extension_uv=float(corrected[3]),
                    frr=peak_flexion / full if full > 0 else None,
                    err=peak_extension / full if full > 0 else None,
                    present=present,
                    silence=silence,
                )
            )
        sides.append(tuple(per_cycle))
    return FlexionRelaxationResult(
        angle_name="lumbar_flexion" if trunk.has_lumbar else "thoracic_inclination",
        channel_names=names,
        noise_floor_uv=tuple(float(f) for f in floor),
        noise_floor_source=source,
        silence_limit_uv=limits,
        cycles=tuple(_later_cycle(cycle, start_s) for cycle in cycles),
        sides=tuple(tuple(_later_side(side, start_s) for side in per_cycle) for per_cycle in sides),
        n_incomplete_cycles=n_incomplete,
    )


def _later_cycle(cycle: FlexionCycle, offset_s: float) -> FlexionCycle:
    """The cycle with every time moved by ``offset_s``."""
    times = {name: getattr(cycle, name) + offset_s for name in _CYCLE_TIMES}
    before = (cycle.standing_before_s[0] + offset_s, cycle.standing_before_s[1] + offset_s)
    return dataclasses.replace(cycle, standing_before_s=before, **times)


def _later_side(side: CycleSide, offset_s: float) -> CycleSide:
    if side.silence is None:
        return side
    span = dataclasses.replace(
        side.silence, start_s=side.silence.start_s + offset_s, end_s=side.silence.end_s + offset_s
    )
    return dataclasses.replace(side, silence=span)


def _stream_data(name: str, blocks: Sequence[Block]) -> tuple[int, _Array]:
    """First device index and samples of a stream's blocks, which must follow each other without a gap."""
    for previous, block in itertools.pairwise(blocks):
        if block.gap_before or block.first_index != previous.end_index:
            raise ValueError(
                f"stream {name!r} has a gap at {block.start_s:.2f} s: the test needs contiguous EMG and IMU"
            )
    return blocks[0].first_index, np.hstack([b.data for b in blocks])


def analyze_flexion_relaxation_blocks(
    blocks: Iterable[Block],
    *,
    emg_stream: str = "emg",
    thoracic_stream: str = THORACIC_STREAM,
    sacral_stream: str = SACRAL_STREAM,
    noise_floor_uv: float | npt.ArrayLike | None = None,
    criteria: FlexionCriteria | None = None,
) -> FlexionRelaxationResult:
    """Run the test on the decoded blocks of a recording (what ``biofeed analyze`` has).

    The EMG and IMU streams (one device: one clock) are cut to the span they all cover, starting on a
    sample of each; the IMU chain runs over it (:func:`~biofeed.dsp.imu.trunk_motion.track_trunk`),
    then :func:`analyze_flexion_relaxation`. Blocks of other streams are ignored.

    Parameters
    ----------
    blocks : iterable of Block
        In order within each stream.
    emg_stream, thoracic_stream, sacral_stream : str
        Stream names; without the sacral stream the test runs on trunk inclination.
    noise_floor_uv : float or array_like, optional
        Per EMG channel (the EMG analysis' floor); estimated here otherwise.
    criteria : FlexionCriteria, optional
        Thresholds; the defaults of SCIENCE.md 9.

    Returns
    -------
    FlexionRelaxationResult
        Times in device seconds.

    Raises
    ------
    ValueError
        With the reason in words: no EMG or thoracic IMU stream, a gap, rates that share no sample
        grid, or no quiet start to calibrate on.
    """
    by_stream: dict[str, list[Block]] = {}
    for block in blocks:
        if block.info.name in (emg_stream, thoracic_stream, sacral_stream) and block.n_samples:
            by_stream.setdefault(block.info.name, []).append(block)
    for required in (emg_stream, thoracic_stream):
        if required not in by_stream:
            raise ValueError(f"no {required!r} samples: the flexion-relaxation test needs EMG and a thoracic IMU")
    names = [n for n in (emg_stream, thoracic_stream, sacral_stream) if n in by_stream]
    rates = {n: by_stream[n][0].info.sample_rate_hz for n in names}
    data = {n: _stream_data(n, by_stream[n]) for n in names}
    imu_rate, emg_rate = rates[thoracic_stream], rates[emg_stream]
    if any(rates[n] != imu_rate for n in names[1:]) or emg_rate % imu_rate:
        raise ValueError(f"the EMG rate must be a whole multiple of one IMU rate, got {rates}")
    step = round(emg_rate / imu_rate)
    start_s = max(first / rates[n] for n, (first, _) in data.items())
    end_s = min((first + samples.shape[1]) / rates[n] for n, (first, samples) in data.items())
    first_imu = math.ceil(start_s * imu_rate - 1e-9)
    n_imu = math.floor(end_s * imu_rate + 1e-9) - first_imu
    if n_imu <= 0:
        raise ValueError("the EMG and IMU streams do not overlap in time")
    imus = []
    for n in names[1:]:
        first, samples = data[n]
        acc, gyro = imu_rows(by_stream[n][0].info).split(samples[:, first_imu - first : first_imu - first + n_imu])
        imus.append(np.vstack([acc, gyro]))
    emg_first, emg = data[emg_stream]
    emg = emg[:, first_imu * step - emg_first : (first_imu + n_imu) * step - emg_first]
    trunk = track_trunk(imus[0], imus[1] if len(imus) == 2 else None, imu_rate)
    channel_names = [c.name for c in by_stream[emg_stream][0].info.channels]
    return analyze_flexion_relaxation(
        emg,
        emg_rate,
        trunk,
        channel_names,
        noise_floor_uv=noise_floor_uv,
        criteria=criteria,
        start_s=first_imu / imu_rate,
    )
