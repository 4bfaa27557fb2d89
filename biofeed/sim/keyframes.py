"""Scripted trajectories: values that move between key points, evaluated at any times.

A scenario is written as key points (time, value); a :class:`KeyframeTrack` turns them into a
function of time. EMG amplitude uses straight lines between key points (a steady release is a
straight decline, whose 90 % -> 10 % part spans 80 % of its duration); trunk angles use
minimum-jerk segments (Flash & Hogan 1985), which start and stop with zero velocity and zero
acceleration like a voluntary trunk movement, so the IMU sees no infinite acceleration.
Before the first key point a track holds the first value, after the last one the last value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = ["Interpolation", "KeyframeTrack", "minimum_jerk_fraction_time"]

Interpolation = Literal["linear", "minimum_jerk"]

_INVERSE_GRID_U = np.linspace(0.0, 1.0, 4001)


def _minimum_jerk(u: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    result: npt.NDArray[np.float64] = u**3 * (10.0 - 15.0 * u + 6.0 * u**2)
    return result


def minimum_jerk_fraction_time(fraction: float) -> float:
    """Fraction of a minimum-jerk movement's duration at which it has covered ``fraction`` of its path.

    Parameters
    ----------
    fraction : float
        Part of the path, 0..1.

    Returns
    -------
    float
        Part of the duration, 0..1 (within 2.5e-4).
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    return float(np.interp(fraction, _minimum_jerk(_INVERSE_GRID_U), _INVERSE_GRID_U))


class KeyframeTrack:
    """A scalar trajectory through key points.

    Parameters
    ----------
    times_s : sequence of float, length n_keys >= 1
        Times of the key points in device seconds, strictly increasing.
    values : sequence of float, length n_keys
        Values at the key points (any unit: uV for EMG amplitude, deg for angles).
    interpolation : {"linear", "minimum_jerk"}
        Shape of every segment between two key points.

    Raises
    ------
    ValueError
        Lengths differ, no key point, times not strictly increasing or not finite, or an unknown
        interpolation.
    """

    def __init__(
        self, times_s: Sequence[float], values: Sequence[float], *, interpolation: Interpolation = "linear"
    ) -> None:
        if interpolation not in ("linear", "minimum_jerk"):
            raise ValueError(f"interpolation must be 'linear' or 'minimum_jerk', got {interpolation!r}")
        times = np.asarray(times_s, dtype=np.float64)
        vals = np.asarray(values, dtype=np.float64)
        if times.ndim != 1 or times.shape != vals.shape or times.size == 0:
            raise ValueError(f"need as many times as values (at least one), got {times.shape} and {vals.shape}")
        if not (np.all(np.isfinite(times)) and np.all(np.isfinite(vals))):
            raise ValueError("key point times and values must be finite")
        if np.any(np.diff(times) <= 0):
            raise ValueError("key point times must be strictly increasing")
        self.times_s = times
        self.values = vals
        self.interpolation: Interpolation = interpolation

    def _segments(
        self, t_s: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Start value, change, duration and position u in [0, 1] of the segment holding each time."""
        t = np.asarray(t_s, dtype=np.float64)
        if self.times_s.size == 1:
            zeros = np.zeros_like(t)
            return np.full_like(t, self.values[0]), zeros, np.ones_like(t), zeros
        index = np.clip(np.searchsorted(self.times_s, t, side="right") - 1, 0, self.times_s.size - 2)
        t0 = self.times_s[index]
        duration = self.times_s[index + 1] - t0
        v0 = self.values[index]
        u = np.clip((t - t0) / duration, 0.0, 1.0)
        return v0, self.values[index + 1] - v0, duration, u

    def value_at(self, t_s: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Values at times ``t_s`` (any shape, device seconds); same shape out."""
        v0, change, _, u = self._segments(t_s)
        shape = u if self.interpolation == "linear" else _minimum_jerk(u)
        result: npt.NDArray[np.float64] = v0 + change * shape
        return result

    def rate_at(self, t_s: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """First time derivative at ``t_s``, value units per second (0 outside the key points)."""
        t = np.asarray(t_s, dtype=np.float64)
        _, change, duration, u = self._segments(t)
        inside = (t > self.times_s[0]) & (t < self.times_s[-1])
        slope = 1.0 if self.interpolation == "linear" else 30.0 * u**2 * (1.0 - u) ** 2
        result: npt.NDArray[np.float64] = np.where(inside, change / duration * slope, 0.0)
        return result

    def acceleration_at(self, t_s: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Second time derivative at ``t_s``, value units per second squared.

        Zero for linear tracks (their corners are ignored: only angles, which are minimum-jerk,
        need it).
        """
        t = np.asarray(t_s, dtype=np.float64)
        if self.interpolation == "linear":
            return np.zeros_like(t)
        _, change, duration, u = self._segments(t)
        inside = (t > self.times_s[0]) & (t < self.times_s[-1])
        curvature = 60.0 * u * (1.0 - u) * (1.0 - 2.0 * u)
        result: npt.NDArray[np.float64] = np.where(inside, change / duration**2 * curvature, 0.0)
        return result

    def rms_between(self, start_s: float, end_s: float, step_s: float = 0.01) -> float:
        """Root mean square of the track over ``[start_s, end_s]``, sampled every ``step_s``.

        For an EMG amplitude track this is the RMS a long window of the signal would show (power
        adds over time), the quantity a set point estimates.
        """
        if not end_s > start_s:
            raise ValueError(f"need end_s > start_s, got [{start_s}, {end_s}]")
        n = max(2, round((end_s - start_s) / step_s) + 1)
        values = self.value_at(np.linspace(start_s, end_s, n))
        return float(np.sqrt(np.mean(values**2)))

    def first_time_below(self, level: float, start_s: float, end_s: float, step_s: float = 0.001) -> float | None:
        """First time in ``[start_s, end_s]`` at which the track is below ``level`` (None if never)."""
        n = max(2, round((end_s - start_s) / step_s) + 1)
        t = np.linspace(start_s, end_s, n)
        below = np.flatnonzero(self.value_at(t) < level)
        return float(t[below[0]]) if below.size else None
