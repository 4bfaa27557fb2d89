"""Scoring detected activations against scripted bursts: matching, timing errors, detection, false alarms.

Matching: a scripted burst is *detected* when a detected activation starts within
:data:`MATCH_WINDOW_S` (200 ms) of its onset; the nearest such activation is its match, and each
activation matches at most one burst (bursts are >= 3 s apart, so the choice is never contested).
Its onset error is ``detected onset - true onset`` and its offset error ``detected offset - true
offset`` of the *same* activation (a detector that drops out in the middle of a burst is charged
the early offset). Activations that match no burst are *extra* detections. On rest-only records
every activation starting after the calibration rest is a false alarm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.accuracy_signals import Burst

__all__ = [
    "MATCH_WINDOW_S",
    "Activation",
    "BurstMatch",
    "ConditionTally",
    "ErrorSummary",
    "match_bursts",
    "pair_crossings",
    "pair_interleaved",
    "summarize_errors",
]

MATCH_WINDOW_S = 0.2
"""A detection starting this close to a true onset detects the burst, s."""

Activation = tuple[int, int]
"""(onset, offset) sample indices of one detected activation."""


def pair_interleaved(indices: npt.ArrayLike, n_samples: int) -> list[Activation]:
    """Turn a sorted onset, offset, onset, ... array (biosppy's state-machine detectors) into pairs.

    Parameters
    ----------
    indices : array_like of int, shape (n,)
        Change points in time order, alternating onset and offset, starting with an onset (those
        detectors start at rest).
    n_samples : int
        Length of the signal: an activation still open at the end closes there.

    Returns
    -------
    list of (int, int)
    """
    changes = [int(i) for i in np.asarray(indices, dtype=np.float64).round()]
    if len(changes) % 2:
        changes.append(int(n_samples))
    return [(changes[k], changes[k + 1]) for k in range(0, len(changes), 2)]


def pair_crossings(indices: npt.ArrayLike, above: npt.ArrayLike, n_samples: int, *, shift: int = 0) -> list[Activation]:
    """Turn threshold crossings (``find_onsets``, ``hodges_bui_onset_detector``) into activations.

    These detectors return the below-threshold sample next to each change, rising or falling, in one
    sorted, de-duplicated array: a one-sample dip gives a single index for a fall and a rise, so the
    array does not alternate. The direction of each is read from the test function instead.

    Parameters
    ----------
    indices : array_like of int, shape (n,)
        The crossings the detector returned (``shift`` added to test-function positions).
    above : array_like of bool, shape (n_test,)
        Test function at or above the threshold, per test-function position.
    n_samples : int
        Length of the signal: an activation still open at the end closes there.
    shift : int
        What the detector added to test-function positions (``int(size / 2)`` for Hodges & Bui).

    Returns
    -------
    list of (int, int)
        (onset, offset) in the detector's indices; a signal above threshold at its start opens at 0.
    """
    flags = np.asarray(above, dtype=bool)
    n_test = flags.shape[0]
    pairs: list[Activation] = []
    onset: int | None = 0 if n_test and flags[0] else None
    for index in sorted({int(i) for i in np.asarray(indices, dtype=np.float64).round()}):
        k = index - shift
        if not 0 <= k < n_test or flags[k]:
            continue  # not a below-threshold sample next to a change (find_onsets' clipped last index)
        if onset is not None and k > 0 and flags[k - 1]:  # falling
            pairs.append((onset, index))
            onset = None
        if onset is None and k + 1 < n_test and flags[k + 1]:  # rising
            onset = index
    if onset is not None:
        pairs.append((onset, int(n_samples)))
    return pairs


@dataclass(frozen=True)
class BurstMatch:
    """Matches of one record's bursts.

    Attributes
    ----------
    matched : list of (Burst, Activation or None)
        Each scripted burst and the activation that detected it.
    n_extra : int
        Activations that detected no burst.
    """

    matched: list[tuple[Burst, Activation | None]]
    n_extra: int


def match_bursts(
    bursts: Sequence[Burst], detections: Sequence[Activation], fs_hz: float, window_s: float = MATCH_WINDOW_S
) -> BurstMatch:
    """Match scripted bursts to detected activations by onset (module docstring).

    Parameters
    ----------
    bursts : sequence of Burst
        Truth.
    detections : sequence of (int, int)
        Detected (onset, offset) sample indices.
    fs_hz : float
        Sample rate.
    window_s : float
        Largest onset distance of a match, s.
    """
    window = window_s * fs_hz
    free = list(detections)
    matched: list[tuple[Burst, Activation | None]] = []
    for burst in bursts:
        near = [d for d in free if abs(d[0] - burst.onset_index) <= window]
        best = min(near, key=lambda d: abs(d[0] - burst.onset_index), default=None)
        if best is not None:
            free.remove(best)
        matched.append((burst, best))
    return BurstMatch(matched, len(free))


@dataclass(frozen=True)
class ErrorSummary:
    """Timing errors of the detected bursts of one condition.

    Attributes
    ----------
    n : int
        Errors summarised.
    median_ms, iqr_ms : float
        Median and inter-quartile range of the signed error (detected - true), ms.
    median_abs_ms : float
        Median absolute error, ms.
    within_25_pct, within_50_pct : float
        Share of errors within +/-25 and +/-50 ms, % of the *detected* bursts.
    """

    n: int
    median_ms: float
    iqr_ms: float
    median_abs_ms: float
    within_25_pct: float
    within_50_pct: float

    def to_json(self) -> dict[str, Any]:
        """Flat JSON-ready dict."""
        return {
            "n": self.n,
            "median_ms": self.median_ms,
            "iqr_ms": self.iqr_ms,
            "median_abs_ms": self.median_abs_ms,
            "within_25_pct": self.within_25_pct,
            "within_50_pct": self.within_50_pct,
        }


def summarize_errors(errors_s: Sequence[float]) -> ErrorSummary:
    """Summarise signed timing errors given in seconds (NaN figures when there are none)."""
    if not errors_s:
        return ErrorSummary(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    ms = 1000.0 * np.asarray(errors_s, dtype=np.float64)
    q25, q50, q75 = np.percentile(ms, [25, 50, 75])
    absolute = np.abs(ms)
    return ErrorSummary(
        n=int(ms.shape[0]),
        median_ms=float(q50),
        iqr_ms=float(q75 - q25),
        median_abs_ms=float(np.median(absolute)),
        within_25_pct=float(100 * np.mean(absolute <= 25)),
        within_50_pct=float(100 * np.mean(absolute <= 50)),
    )


@dataclass
class ConditionTally:
    """What one method did in one condition (burst kind x SNR), accumulated over records.

    Attributes
    ----------
    n_bursts, n_detected, n_extra : int
        Scripted bursts, detected bursts, extra activations.
    onset_errors_s, offset_errors_s : list of float
        Errors of the detected bursts.
    n_records, n_failed_records : int
        Records run, and those on which the method raised (their bursts count as missed).
    failures : list of str
        The distinct exceptions, ``Type: message``.
    """

    n_bursts: int = 0
    n_detected: int = 0
    n_extra: int = 0
    onset_errors_s: list[float] = field(default_factory=list)
    offset_errors_s: list[float] = field(default_factory=list)
    n_records: int = 0
    n_failed_records: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, bursts: Sequence[Burst], detections: Sequence[Activation], fs_hz: float) -> None:
        """Score one record's detections."""
        result = match_bursts(bursts, detections, fs_hz)
        self.n_records += 1
        self.n_bursts += len(bursts)
        self.n_extra += result.n_extra
        for burst, activation in result.matched:
            if activation is not None:
                self.n_detected += 1
                self.onset_errors_s.append((activation[0] - burst.onset_index) / fs_hz)
                self.offset_errors_s.append((activation[1] - burst.offset_index) / fs_hz)

    def add_failure(self, bursts: Sequence[Burst], error: BaseException) -> None:
        """Count a record on which the method raised."""
        self.n_records += 1
        self.n_failed_records += 1
        self.n_bursts += len(bursts)
        text = f"{type(error).__name__}: {error}"
        if text not in self.failures:
            self.failures.append(text)

    @property
    def detection_pct(self) -> float:
        """Detected bursts, % (NaN without bursts)."""
        return 100.0 * self.n_detected / self.n_bursts if self.n_bursts else math.nan

    @property
    def extra_per_burst(self) -> float:
        """Extra activations per scripted burst (NaN without bursts)."""
        return self.n_extra / self.n_bursts if self.n_bursts else math.nan
