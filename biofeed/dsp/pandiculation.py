"""Pandiculation trials: set points around a contraction, the true-relaxation verdict and the score.

SCIENCE.md section 6 (all three for ``true``):

1. absolute: corrected rest RMS <= max(2 uV, 1.5 x noise floor);
2. relative: post-rest / pre-rest set point <= 0.8 with the 95 % bootstrap CI of the ratio (over
   1 s windows) below 1.0, post-rest measured >= 10 s after the release ends (here 10-40 s);
3. persistent: the ratio still <= 0.9 at 60-120 s after the release ends, otherwise ``transient``.

A pre-rest within about 1 uV of the floor (``hypot(pre, floor) - floor <= 1 uV``) is
``not_measurable``; so is a trial whose post-rest or persistence window the data never reached.
``rejected`` is for a measurement that cannot be trusted: a signal fault during the contraction,
a posture that changed (IMU), or post-rest windows mostly refused by the gate (motion, posture,
artifact). With an IMU a trial belongs to the posture held before its onset: its pre-rest is that
posture's set point, and a post-rest window held in another posture counts as refused.
A contraction that was a movement (:meth:`PandiculationTracker.skip`) is no trial; it ends the
channel's open trials as a later contraction does.
The criteria are applied in the order of the simulator's truth (:mod:`biofeed.sim.truth`):
relative, then persistent, then absolute.

SCIENCE.md section 7, the score (0-100, every component kept):

- contraction adequacy 20: ``20 x hold x range``, hold = min(hold_s / 1 s, 1); range = 1 with the
  peak at 20-50 % of a reference contraction (falling linearly to 0 at 0 % and at 100 %), 1 when no
  reference is known;
- release quality 40: duration 20 (0 at <= 1 s, full at >= 3 s, linear between), monotonic
  fraction 10 (0 at <= 0.5, chance level for noise, full at >= 0.8), no re-burst 10;
- relaxation depth 30: ratio 20 (0 at >= 1.0, full at <= 0.7, linear between) plus the absolute
  criterion 10;
- persistence 10: 0 at a persistence ratio >= 1.0, full at <= 0.9, linear between; 0 when not measured.

The bootstrap is seeded from (seed, channel, onset index), so a trial's CI does not depend on how
many trials came before it or how the stream was cut.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from biofeed.dsp.imu.posture import Posture, PostureComparison, compare_postures
from biofeed.dsp.phases import Contraction
from biofeed.dsp.tension import NO_POSTURE

__all__ = [
    "PRE_POSTURE_S",
    "PandiculationTracker",
    "PandiculationTrial",
    "PostureSource",
    "RestWindow",
    "ScoreComponents",
    "TrialCriteria",
    "Verdict",
    "bootstrap_ratio_ci",
    "score_trial",
]


class Verdict(StrEnum):
    """The true-relaxation verdict of one trial (SCIENCE.md 6)."""

    TRUE = "true"
    TRANSIENT = "transient"
    NONE = "none"
    NOT_MEASURABLE = "not_measurable"
    REJECTED = "rejected"


@dataclass(frozen=True)
class TrialCriteria:
    """Criteria of the verdict and score (defaults: SCIENCE.md sections 6 and 7).

    Attributes
    ----------
    absolute_rest_uv, absolute_noise_factor : float
        Absolute criterion: post-rest <= max(absolute_rest_uv, absolute_noise_factor x floor).
    relative_ratio : float
        Relative criterion: ratio <= this ...
    ci_upper_limit : float
        ... and the upper 95 % bound of its bootstrap CI below this.
    persistent_ratio : float
        Persistence criterion: ratio at 60-120 s <= this.
    not_measurable_margin_uv : float
        A pre-rest within this of the floor leaves nothing to measure.
    post_rest_s, persistence_s : tuple of float
        Windows after the release end, seconds.
    min_pre_windows, min_post_windows, min_persistence_windows : int
        1 s windows needed for each set point.
    n_bootstrap : int
        Bootstrap resamples of the ratio CI.
    reference_range : tuple of float
        Peak as a fraction of the reference contraction that earns full range credit.
    min_hold_s : float
        Hold at >= 90 % that earns full hold credit.
    release_s : tuple of float
        Release duration earning no and full credit.
    monotonic_range : tuple of float
        Monotonic fraction earning no and full credit.
    ratio_range : tuple of float
        Ratio earning no and full depth credit (no first).
    persistence_range : tuple of float
        Persistence ratio earning no and full credit (no first).
    rebrace_s : float
        A contraction that starts within this time after a trial's contraction ended, and stays
        weaker than its peak, is re-bracing: a re-burst of that trial's release (counted in its
        ``rebursts``, the contraction's end moved to its end), not a trial of its own. 3 s is the release
        duration the score credits fully (``release_s``), so a re-brace inside the span the score
        judges belongs to that release. A stronger or later contraction is a new trial.
    """

    absolute_rest_uv: float = 2.0
    absolute_noise_factor: float = 1.5
    relative_ratio: float = 0.8
    ci_upper_limit: float = 1.0
    persistent_ratio: float = 0.9
    not_measurable_margin_uv: float = 1.0
    post_rest_s: tuple[float, float] = (10.0, 40.0)
    persistence_s: tuple[float, float] = (60.0, 120.0)
    min_pre_windows: int = 10
    min_post_windows: int = 5
    min_persistence_windows: int = 10
    n_bootstrap: int = 2000
    reference_range: tuple[float, float] = (0.2, 0.5)
    min_hold_s: float = 1.0
    release_s: tuple[float, float] = (1.0, 3.0)
    monotonic_range: tuple[float, float] = (0.5, 0.8)
    ratio_range: tuple[float, float] = (1.0, 0.7)
    persistence_range: tuple[float, float] = (1.0, 0.9)
    rebrace_s: float = 3.0

    def __post_init__(self) -> None:
        for name in ("post_rest_s", "persistence_s", "reference_range", "release_s", "monotonic_range"):
            low, high = getattr(self, name)
            if not low < high:
                raise ValueError(f"{name} must be (low, high) with low < high, got {(low, high)}")
        for name in ("ratio_range", "persistence_range"):
            none, full = getattr(self, name)
            if not full < none:
                raise ValueError(f"{name} must be (no credit, full credit) with full < no, got {(none, full)}")
        for name in ("min_pre_windows", "min_post_windows", "min_persistence_windows", "n_bootstrap"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be >= 2, got {getattr(self, name)}")

    def absolute_limit_uv(self, noise_floor_uv: float) -> float:
        """Largest corrected rest RMS that meets the absolute criterion."""
        return max(self.absolute_rest_uv, self.absolute_noise_factor * noise_floor_uv)


@dataclass(frozen=True)
class ScoreComponents:
    """The pandiculation score, component by component (SCIENCE.md 7).

    Attributes
    ----------
    contraction : float
        Contraction adequacy, 0-20.
    release_duration, release_monotonic, release_no_rebursts : float
        Release quality, 0-20, 0-10, 0-10.
    depth_ratio, depth_absolute : float
        Relaxation depth, 0-20 and 0 or 10.
    persistence : float
        Persistence, 0-10.
    """

    contraction: float
    release_duration: float
    release_monotonic: float
    release_no_rebursts: float
    depth_ratio: float
    depth_absolute: float
    persistence: float

    @property
    def release(self) -> float:
        """Release quality, 0-40."""
        return self.release_duration + self.release_monotonic + self.release_no_rebursts

    @property
    def depth(self) -> float:
        """Relaxation depth, 0-30."""
        return self.depth_ratio + self.depth_absolute

    @property
    def total(self) -> float:
        """The score, 0-100."""
        return self.contraction + self.release + self.depth + self.persistence

    def to_json(self) -> dict[str, float]:
        """Components as a JSON-ready dict (points)."""
        return {
            "contraction": self.contraction,
            "release": self.release,
            "release_duration": self.release_duration,
            "release_monotonic": self.release_monotonic,
            "release_no_rebursts": self.release_no_rebursts,
            "depth": self.depth,
            "depth_ratio": self.depth_ratio,
            "depth_absolute": self.depth_absolute,
            "persistence": self.persistence,
        }


@dataclass(frozen=True)
class RestWindow:
    """One 1 s window as the trial tracker sees it.

    Attributes
    ----------
    channel_index : int
        Row of the channel.
    start_index, end_index : int
        Device samples [start, end).
    corrected_uv : float
        Noise-corrected 1 s RMS, uV.
    rest : bool
        The window overlaps no contraction.
    usable : bool
        The gate accepted it and it overlaps no signal fault.
    set_point_uv : float
        The channel's set point in ``posture_id`` once this window was taken into account (NaN while
        too few usable windows), uV.
    posture_id : int
        The channel's current posture: the window's own when it was held still in a known posture,
        else the latest one before it; NO_POSTURE without an IMU.
    """

    channel_index: int
    start_index: int
    end_index: int
    corrected_uv: float
    rest: bool
    usable: bool
    set_point_uv: float = math.nan
    posture_id: int = NO_POSTURE


@dataclass(frozen=True)
class PandiculationTrial:
    """One pandiculation: its contraction, release, set points, verdict and score.

    Attributes
    ----------
    contraction : Contraction
        Timing and release shape (:mod:`biofeed.dsp.phases`).
    noise_floor_uv : float
        Noise floor used for correction.
    peak_uv : float
        Noise-corrected peak (1 s RMS).
    peak_fraction_of_reference : float or None
        peak_uv / reference contraction, None without a reference.
    pre_rest_uv, post_rest_uv : float or None
        Noise-corrected set points before the onset and 10-40 s after the release end.
    ratio : float or None
        post / pre.
    ratio_ci95 : tuple of float or None
        95 % percentile-bootstrap CI of the ratio over 1 s windows.
    persistence_ratio : float or None
        Median corrected 1 s RMS at 60-120 s after the release end / pre.
    n_pre_windows, n_post_windows, n_persistence_windows : int
        Windows behind each set point.
    verdict : Verdict
        SCIENCE.md 6.
    verdict_reason : str
        Why, in words.
    components : ScoreComponents
        SCIENCE.md 7.
    final : bool
        False for a provisional snapshot (persistence window still open).
    posture_change_deg : float or None
        Largest tilt change of a trunk sensor between the 30 s before the onset and the post-rest;
        None without an IMU.
    posture : str or None
        Label of the posture the trial was done in (``lying``, ``standing`` ...); None without an IMU.
    """

    contraction: Contraction
    noise_floor_uv: float
    peak_uv: float
    peak_fraction_of_reference: float | None
    pre_rest_uv: float | None
    post_rest_uv: float | None
    ratio: float | None
    ratio_ci95: tuple[float, float] | None
    persistence_ratio: float | None
    n_pre_windows: int
    n_post_windows: int
    n_persistence_windows: int
    verdict: Verdict
    verdict_reason: str
    components: ScoreComponents
    final: bool = True
    posture_change_deg: float | None = None
    posture: str | None = None

    @property
    def channel_index(self) -> int:
        """Row of the channel."""
        return self.contraction.channel_index

    @property
    def score(self) -> float:
        """Pandiculation score, 0-100."""
        return self.components.total

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; times in seconds from sample index 0, None where not computable."""
        c = self.contraction
        return {
            "channel_index": c.channel_index,
            "onset_s": c.onset_s,
            "offset_s": c.offset_s,
            "peak_uv": self.peak_uv,
            "peak_fraction_of_reference": self.peak_fraction_of_reference,
            "hold_s": c.hold_s,
            "release_start_s": c.release_start_s,
            "release_end_s": c.release_end_s,
            "release_duration_s": c.release_duration_s,
            "monotonic_fraction": c.monotonic_fraction,
            "rebursts": c.rebursts,
            "noise_floor_uv": self.noise_floor_uv,
            "pre_rest_uv": self.pre_rest_uv,
            "post_rest_uv": self.post_rest_uv,
            "ratio": self.ratio,
            "ratio_ci95": list(self.ratio_ci95) if self.ratio_ci95 is not None else None,
            "persistence_ratio": self.persistence_ratio,
            "n_pre_windows": self.n_pre_windows,
            "n_post_windows": self.n_post_windows,
            "n_persistence_windows": self.n_persistence_windows,
            "verdict": self.verdict.value,
            "verdict_reason": self.verdict_reason,
            "posture_change_deg": self.posture_change_deg,
            "posture": self.posture,
            "score": self.score,
            "score_components": self.components.to_json(),
            "final": self.final,
        }


def bootstrap_ratio_ci(
    pre_uv: npt.ArrayLike, post_uv: npt.ArrayLike, n_bootstrap: int, rng: np.random.Generator
) -> tuple[float, float]:
    """95 % percentile-bootstrap CI of median(post) / median(pre), resampling each set of windows.

    Parameters
    ----------
    pre_uv, post_uv : array_like, shape (n,)
        Noise-corrected 1 s RMS windows, uV.
    n_bootstrap : int
        Resamples.
    rng : numpy.random.Generator
        Seeded generator.

    Returns
    -------
    tuple of float
        (2.5th, 97.5th) percentiles; inf where a resampled pre median is 0.
    """
    pre = np.asarray(pre_uv, dtype=np.float64)
    post = np.asarray(post_uv, dtype=np.float64)
    pre_medians = _resampled_medians(pre, rng.integers(0, pre.shape[0], size=(n_bootstrap, pre.shape[0])))
    post_medians = _resampled_medians(post, rng.integers(0, post.shape[0], size=(n_bootstrap, post.shape[0])))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(pre_medians > 0, post_medians / pre_medians, np.inf)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def _resampled_medians(values: npt.NDArray[np.float64], draws: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """``np.median(values[draws], axis=1)`` to the bit, several times faster.

    Each resample is sorted (numpy's vectorised sort beats the partition ``np.median`` runs along an
    axis), its middle value(s) averaged as ``np.mean`` does them (a sum from 0, over the count), and a
    resample holding a NaN given that NaN, as ``np.median`` does.
    """
    resamples = np.sort(values[draws], axis=1)  # NaNs last
    n = resamples.shape[1]
    low, high = resamples[:, (n - 1) // 2], resamples[:, n // 2]
    medians = (0.0 + low + high) / 2 if n % 2 == 0 else 0.0 + high
    last = resamples[:, -1]
    np.copyto(medians, last, where=np.isnan(last))
    return medians


def _ramp(value: float, none_at: float, full_at: float) -> float:
    """0 at ``none_at``, 1 at ``full_at``, linear between, clipped (either direction)."""
    return float(np.clip((value - none_at) / (full_at - none_at), 0.0, 1.0))


def score_trial(
    contraction: Contraction,
    peak_fraction_of_reference: float | None,
    ratio: float | None,
    post_rest_uv: float | None,
    persistence_ratio: float | None,
    noise_floor_uv: float,
    criteria: TrialCriteria,
) -> ScoreComponents:
    """Score one trial (SCIENCE.md 7; the scale of each component is in the module docstring).

    Returns
    -------
    ScoreComponents
    """
    hold = min(contraction.hold_s / criteria.min_hold_s, 1.0)
    if peak_fraction_of_reference is None:
        in_range = 1.0
    else:
        low, high = criteria.reference_range
        fraction = peak_fraction_of_reference
        in_range = _ramp(fraction, 0.0, low) if fraction < low else _ramp(fraction, 1.0, high)
    monotonic = contraction.monotonic_fraction
    absolute = post_rest_uv is not None and post_rest_uv <= criteria.absolute_limit_uv(noise_floor_uv)
    return ScoreComponents(
        contraction=20.0 * max(hold, 0.0) * in_range,
        release_duration=20.0 * _ramp(contraction.release_duration_s, *criteria.release_s),
        release_monotonic=0.0 if monotonic is None else 10.0 * _ramp(monotonic, *criteria.monotonic_range),
        release_no_rebursts=10.0 if contraction.rebursts == 0 else 0.0,
        depth_ratio=0.0 if ratio is None else 20.0 * _ramp(ratio, *criteria.ratio_range),
        depth_absolute=10.0 if absolute else 0.0,
        persistence=0.0 if persistence_ratio is None else 10.0 * _ramp(persistence_ratio, *criteria.persistence_range),
    )


class PostureSource(Protocol):
    """Where the trunk posture over a span of device time comes from (the IMU's motion tracker)."""

    def posture_between(self, start_s: float, end_s: float) -> Posture | None:
        """Mean posture over the quiet part of [start_s, end_s) seconds; None when unknown."""
        ...


PRE_POSTURE_S = 30.0
"""Seconds before the onset whose posture is the trial's "before" (the set point's 30 windows)."""


@dataclass
class _Pending:
    contraction: Contraction
    pre_uv: npt.NDArray[np.float64]
    fault: str
    post: list[float] = field(default_factory=list)
    persistence: list[float] = field(default_factory=list)
    n_refused_post: int = 0
    reported_post: bool = False
    closed_by: str = ""
    interrupted: bool = False  # a later contraction began within rebrace_s: re-brace or new trial?
    posture_id: int = NO_POSTURE  # held before the onset; post-rest windows in another posture are refused
    posture: str | None = None


class PandiculationTracker:
    """Builds :class:`PandiculationTrial` s from contractions and the 1 s rest windows that follow them.

    Feed it, in device-time order, each finished contraction (:meth:`start`) with the pre-rest
    windows held at its onset, and every 1 s window (:meth:`add_window`). A trial is final when its
    persistence window has passed, when a later contraction starts, or at :meth:`finish`; a
    provisional snapshot (``final=False``) is returned once its post-rest window has passed.

    Parameters
    ----------
    noise_floor_uv : array_like, shape (n_channels,)
        Noise floor per channel, uV.
    reference_contraction_uv : array_like of float or None, shape (n_channels,), optional
        Noise-corrected RMS of a pain-free submaximal reference contraction per channel (NaN or None
        when unknown).
    criteria : TrialCriteria
        Verdict and score criteria.
    seed : int
        Seed of the bootstrap.
    posture : PostureSource or None
        With an IMU: the postures before the onset and over the post-rest are compared, and a
        trial whose posture changed by more than 3 deg is ``rejected`` (SCIENCE.md 6).
    """

    def __init__(
        self,
        noise_floor_uv: npt.ArrayLike,
        reference_contraction_uv: npt.ArrayLike | None = None,
        criteria: TrialCriteria | None = None,
        seed: int = 0,
        posture: PostureSource | None = None,
    ) -> None:
        self.noise_floor_uv = np.atleast_1d(np.asarray(noise_floor_uv, dtype=np.float64))
        reference = np.full(self.noise_floor_uv.shape, np.nan)
        if reference_contraction_uv is not None:
            reference = np.broadcast_to(np.asarray(reference_contraction_uv, dtype=np.float64), reference.shape)
        self.reference_contraction_uv = reference
        self.criteria = criteria or TrialCriteria()
        self.seed = seed
        self.posture = posture
        self._pending: list[_Pending] = []

    def start(
        self,
        contraction: Contraction,
        pre_rest_windows_uv: npt.ArrayLike,
        fault: str = "",
        *,
        posture_id: int = NO_POSTURE,
        posture: str | None = None,
    ) -> list[PandiculationTrial]:
        """Open a trial for a finished contraction, or add it to the trial it re-braces.

        Parameters
        ----------
        contraction : Contraction
            The contraction (from the REST event that ended it).
        pre_rest_windows_uv : array_like, shape (n,)
            Gated, noise-corrected 1 s windows before the onset (the set point's windows).
        fault : str
            Non-empty when a signal fault overlapped the contraction: the trial is rejected with it.
        posture_id : int
            Posture held before the onset (IMU): only post-rest windows in it count.
        posture : str or None
            Its label, for the trial's JSON.

        Returns
        -------
        list of PandiculationTrial
            The earlier trial of the channel, final, when this contraction interrupted its rest
            and is a trial of its own (see :attr:`TrialCriteria.rebrace_s`).
        """
        # Every window before this onset has been given already, so the channel's earlier trials can
        # be settled now: the latest absorbs a weaker re-brace, the others close.
        out: list[PandiculationTrial] = []
        earlier_trials = sorted(
            (
                p
                for p in self._pending
                if p.contraction.channel_index == contraction.channel_index
                and p.contraction.end_index <= contraction.onset_index
            ),
            key=lambda p: p.contraction.end_index,
            reverse=True,
        )
        for k, pending in enumerate(earlier_trials):
            earlier = pending.contraction
            gap_s = (contraction.onset_index - earlier.end_index) / contraction.sample_rate_hz
            if k == 0 and gap_s <= self.criteria.rebrace_s and contraction.peak_uv < earlier.peak_uv:
                # The release keeps its measured 90 % -> 10 % span (an abrupt release stays abrupt);
                # the re-brace adds re-bursts and moves the contraction's end.
                pending.contraction = replace(
                    earlier,
                    offset_index=max(earlier.offset_index, contraction.end_index),
                    rebursts=earlier.rebursts + 1 + contraction.rebursts,
                )
                pending.interrupted = False
                pending.fault = ", ".join(sorted({f for f in (pending.fault, fault) if f}))
            else:
                pending.closed_by = "a later contraction"
                out.append(self._trial(pending, final=True))
        self._pending = [p for p in self._pending if not p.closed_by]
        if earlier_trials and not earlier_trials[0].closed_by:
            return out
        pre = np.asarray(pre_rest_windows_uv, dtype=np.float64)
        self._pending.append(_Pending(contraction, pre.copy(), fault, posture_id=posture_id, posture=posture))
        return out

    def skip(self, contraction: Contraction) -> list[PandiculationTrial]:
        """A finished contraction that is no trial (a movement): it closes the channel's earlier trials.

        Returns
        -------
        list of PandiculationTrial
            The channel's open trials that ended before its onset, final.
        """
        out: list[PandiculationTrial] = []
        still_open: list[_Pending] = []
        for pending in self._pending:
            earlier = pending.contraction
            if earlier.channel_index == contraction.channel_index and earlier.end_index <= contraction.onset_index:
                pending.closed_by = f"a movement at {contraction.onset_s:.1f} s"
                out.append(self._trial(pending, final=True))
            else:
                still_open.append(pending)
        self._pending = still_open
        return out

    def add_window(self, window: RestWindow) -> list[PandiculationTrial]:
        """Give one 1 s window to the open trials of its channel; return trials it completes or updates."""
        out: list[PandiculationTrial] = []
        c = self.criteria
        still_open: list[_Pending] = []
        for pending in self._pending:
            contraction = pending.contraction
            if contraction.channel_index != window.channel_index:
                still_open.append(pending)
                continue
            fs = contraction.sample_rate_hz
            since_s = (window.start_index - contraction.release_end_index) / fs
            until_s = (window.end_index - contraction.release_end_index) / fs
            if pending.interrupted:
                still_open.append(pending)  # decided by start() once the interrupting contraction ends
                continue
            if not window.rest and window.start_index >= contraction.end_index:
                if (window.start_index - contraction.end_index) / fs < c.rebrace_s:
                    pending.interrupted = True
                    still_open.append(pending)
                    continue
                pending.closed_by = "a later contraction"
                out.append(self._trial(pending, final=True))
                continue
            usable = window.usable and (pending.posture_id == NO_POSTURE or window.posture_id == pending.posture_id)
            if window.rest and since_s >= c.post_rest_s[0] and until_s <= c.post_rest_s[1]:
                if usable:
                    pending.post.append(window.corrected_uv)
                else:
                    pending.n_refused_post += 1
            if window.rest and usable and since_s >= c.persistence_s[0] and until_s <= c.persistence_s[1]:
                pending.persistence.append(window.corrected_uv)
            if until_s >= c.persistence_s[1]:
                out.append(self._trial(pending, final=True))
                continue
            if until_s >= c.post_rest_s[1] and not pending.reported_post:
                pending.reported_post = True
                out.append(self._trial(pending, final=False))
            still_open.append(pending)
        self._pending = still_open
        return out

    def finish(self) -> list[PandiculationTrial]:
        """Close every open trial (end of data) and return them, final."""
        for pending in self._pending:
            pending.closed_by = "the end of the data"
        trials = [self._trial(pending, final=True) for pending in self._pending]
        self._pending = []
        return trials

    def _trial(self, pending: _Pending, final: bool) -> PandiculationTrial:
        c = self.criteria
        contraction = pending.contraction
        ch = contraction.channel_index
        noise = float(self.noise_floor_uv[ch] if self.noise_floor_uv.size > 1 else self.noise_floor_uv[0])
        peak_uv = float(math.sqrt(max(contraction.peak_uv**2 - noise**2, 0.0)))
        reference = float(
            self.reference_contraction_uv[ch]
            if self.reference_contraction_uv.size > 1
            else self.reference_contraction_uv[0]
        )
        peak_fraction = peak_uv / reference if math.isfinite(reference) and reference > 0 else None
        pre = pending.pre_uv
        pre_uv = float(np.median(pre)) if pre.shape[0] >= c.min_pre_windows else None
        post = np.asarray(pending.post)
        post_uv = float(np.median(post)) if post.shape[0] >= c.min_post_windows else None
        ratio = ci = None
        if pre_uv is not None and post_uv is not None and pre_uv > 0:
            ratio = post_uv / pre_uv
            rng = np.random.default_rng([self.seed, ch, contraction.onset_index])
            ci = bootstrap_ratio_ci(pre, post, c.n_bootstrap, rng)
        persistence = np.asarray(pending.persistence)
        persistence_ratio = None
        if pre_uv is not None and pre_uv > 0 and persistence.shape[0] >= c.min_persistence_windows:
            persistence_ratio = float(np.median(persistence)) / pre_uv
        comparison = self._posture_comparison(contraction, post.shape[0] > 0)
        verdict, reason = self._verdict(
            pending, pre_uv, post_uv, ratio, ci, persistence_ratio, noise, final, comparison
        )
        return PandiculationTrial(
            contraction=contraction,
            noise_floor_uv=noise,
            peak_uv=peak_uv,
            peak_fraction_of_reference=peak_fraction,
            pre_rest_uv=pre_uv,
            post_rest_uv=post_uv,
            ratio=ratio,
            ratio_ci95=ci,
            persistence_ratio=persistence_ratio,
            n_pre_windows=int(pre.shape[0]),
            n_post_windows=int(post.shape[0]),
            n_persistence_windows=int(persistence.shape[0]),
            verdict=verdict,
            verdict_reason=reason,
            posture_change_deg=comparison.difference_deg if comparison is not None else None,
            posture=pending.posture,
            components=score_trial(contraction, peak_fraction, ratio, post_uv, persistence_ratio, noise, c),
            final=final,
        )

    def _posture_comparison(self, contraction: Contraction, has_post_rest: bool) -> PostureComparison | None:
        """Posture before the onset vs over the post-rest; None without an IMU or a posture for both."""
        if self.posture is None or not has_post_rest:
            return None
        c = self.criteria
        onset_s = contraction.onset_s
        before = self.posture.posture_between(max(onset_s - PRE_POSTURE_S, 0.0), onset_s)
        after = self.posture.posture_between(
            contraction.release_end_s + c.post_rest_s[0], contraction.release_end_s + c.post_rest_s[1]
        )
        if before is None or after is None:
            return None
        return compare_postures(before, after)

    def _verdict(
        self,
        pending: _Pending,
        pre_uv: float | None,
        post_uv: float | None,
        ratio: float | None,
        ci: tuple[float, float] | None,
        persistence_ratio: float | None,
        noise_uv: float,
        final: bool,
        posture: PostureComparison | None = None,
    ) -> tuple[Verdict, str]:
        c = self.criteria
        if pending.fault:
            return Verdict.REJECTED, f"signal fault during the contraction: {pending.fault}"
        if posture is not None and not posture.matched:
            return Verdict.REJECTED, f"posture changed: {posture.reason()}"
        if pending.n_refused_post > len(pending.post):
            return Verdict.REJECTED, "most post-rest windows refused by the gate (motion, posture or artifact)"
        if pre_uv is None:
            return Verdict.NOT_MEASURABLE, f"fewer than {c.min_pre_windows} gated 1 s rest windows before the onset"
        if math.hypot(pre_uv, noise_uv) - noise_uv <= c.not_measurable_margin_uv:
            return Verdict.NOT_MEASURABLE, (
                f"already relaxed: the pre-rest is within {c.not_measurable_margin_uv} uV of the noise floor"
            )
        if ratio is None or ci is None or post_uv is None:
            ended = pending.closed_by or "the data so far"
            return Verdict.NOT_MEASURABLE, (
                f"post-rest {c.post_rest_s[0]:g}-{c.post_rest_s[1]:g} s after the release: fewer than "
                f"{c.min_post_windows} windows before {ended}"
            )
        if not (ratio <= c.relative_ratio and ci[1] < c.ci_upper_limit):
            return Verdict.NONE, (
                f"ratio {ratio:.2f} (95% CI {ci[0]:.2f}-{ci[1]:.2f}) is not <= {c.relative_ratio} with the CI below "
                f"{c.ci_upper_limit}"
            )
        if persistence_ratio is None:
            state = "not yet reached" if not final else f"not reached before {pending.closed_by}"
            return Verdict.NOT_MEASURABLE, (
                f"relative criterion met; persistence {c.persistence_s[0]:g}-{c.persistence_s[1]:g} s after the "
                f"release {state}"
            )
        if persistence_ratio > c.persistent_ratio:
            return Verdict.TRANSIENT, f"persistence ratio {persistence_ratio:.2f} > {c.persistent_ratio}"
        limit = c.absolute_limit_uv(noise_uv)
        if post_uv > limit:
            return Verdict.NONE, f"post-rest {post_uv:.2f} uV above the absolute limit {limit:.2f} uV"
        return Verdict.TRUE, "absolute, relative and persistent criteria met"
