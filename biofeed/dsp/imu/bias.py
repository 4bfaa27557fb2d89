"""Gyroscope bias from still periods, streaming (:class:`GyroBiasTracker`) and offline (:func:`estimate_gyro_bias`).

A MEMS gyroscope reads a few tenths of a deg/s when still (the simulator draws 0.5 deg/s SD per
axis); integrated, that turns the heading by 30 deg in a minute, and heading errors leak into the
lumbar angles once the trunk is bent (docs/imu.md). While the sensor is still, the mean gyro reading
*is* the bias. A window counts when, within it, the gyroscope varies by less than
``max_gyro_sd_dps`` and the accelerometer by less than ``max_acc_sd_g`` on every axis, its mean
stays below ``max_gyro_mean_dps`` (a larger steady reading is a slow turn, not a bias) and the
accelerometer reads about 1 g.

Quiet standing is never quite still: postural sway (+-0.5 deg at 0.2 Hz) turns the trunk at up to
0.6 deg/s, steadily enough within a second to pass the variance tests, and would bias the estimate
by that much (0.4 deg of steady tilt error in Fusion at gain 0.5, docs/imu.md). So each window's
turn about the horizontal axes is measured from the accelerometer -- the rotation between "up"
averaged over its first fifth and over its last fifth -- and subtracted from the gyro reading
averaged the same way: ``bias = mean(gyro) - tilt rate``. Windows tilting faster than
``max_tilt_rate_dps`` are movement. The price is precision: the accelerometer's noise (0.003 g)
makes each window's tilt rate uncertain by about 0.07 deg/s, where the gyro mean alone is good to
0.005 deg/s; the bias averages 30 windows (0.013 deg/s), offline the median of all of them.
A turn about the vertical is invisible to the accelerometer and is taken for bias; quiet standing
has none to speak of.

Windows lie on a grid anchored to absolute device indices (window ``k`` covers samples
``[k w, (k + 1) w)``), so any chunking gives the same windows. The bias in force is the mean of the
newest ``n_windows`` window estimates; a new value applies from the first sample after the window
that produced it, so the correction is causal and chunk-invariant.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block
from biofeed.dsp.imu.channels import ImuRows, imu_rows
from biofeed.dsp.stage import check_rate, starts_segment

__all__ = ["GyroBiasTracker", "StillnessCriteria", "estimate_gyro_bias", "window_bias_estimates"]

_Array = npt.NDArray[np.float64]
_GRAVITY_RANGE_G = (0.8, 1.2)  # a still accelerometer reads 1 g; outside this it is not still (or not calibrated)


@dataclass(frozen=True)
class StillnessCriteria:
    """When a window counts as still, and how many still windows make the bias.

    Attributes
    ----------
    window_s : float
        Window length.
    max_gyro_sd_dps : float
        Largest SD of the gyroscope within the window, per axis (the simulator's noise is 0.05).
    max_acc_sd_g : float
        Largest SD of the accelerometer within the window, per axis (the simulator's noise is 0.003).
    max_gyro_mean_dps : float
        Largest mean gyro reading taken for a bias (x-io Fusion's stationary threshold is 3 deg/s;
        cheap parts reach 5).
    max_tilt_rate_dps : float
        Largest rate of tilt measured by the accelerometer across the window (its noise of 0.003 g
        gives about 0.07 deg/s SD on a 1 s window at 100 Hz).
    n_windows : int
        Newest still windows averaged into the bias.
    """

    window_s: float = 1.0
    max_gyro_sd_dps: float = 0.3
    max_acc_sd_g: float = 0.01
    max_gyro_mean_dps: float = 5.0
    max_tilt_rate_dps: float = 2.0
    n_windows: int = 30

    def __post_init__(self) -> None:
        for name in ("window_s", "max_gyro_sd_dps", "max_acc_sd_g", "max_gyro_mean_dps", "max_tilt_rate_dps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if self.n_windows < 1:
            raise ValueError(f"n_windows must be >= 1, got {self.n_windows!r}")

    def window_samples(self, sample_rate_hz: float) -> int:
        """Samples per window at a rate (at least 2)."""
        return max(2, round(self.window_s * sample_rate_hz))


def window_bias_estimates(
    acc_g: npt.ArrayLike,
    gyro_dps: npt.ArrayLike,
    sample_rate_hz: float,
    window_samples: int,
    criteria: StillnessCriteria,
) -> tuple[_Array, npt.NDArray[np.bool_]]:
    """Bias estimate of back-to-back windows, and whether each window is quiet enough to give one.

    Parameters
    ----------
    acc_g : array_like, shape (3, n_windows * window_samples)
        Accelerometer, g.
    gyro_dps : array_like, shape (3, n_windows * window_samples)
        Gyroscope (not bias-corrected), deg/s.
    sample_rate_hz : float
        Their rate.
    window_samples : int
        Samples per window.
    criteria : StillnessCriteria
        What counts as quiet.

    Returns
    -------
    bias_dps : ndarray, shape (n_windows, 3)
        Mean gyro reading minus the tilt rate the accelerometer shows (module docstring).
    quiet : ndarray of bool, shape (n_windows,)
    """
    acc = np.asarray(acc_g, dtype=np.float64)
    gyro = np.asarray(gyro_dps, dtype=np.float64)
    n_windows = acc.shape[1] // window_samples
    span = n_windows * window_samples
    acc_w = acc[:, :span].reshape(3, n_windows, window_samples)
    gyro_w = gyro[:, :span].reshape(3, n_windows, window_samples)
    means = gyro_w.mean(axis=2).T
    gravity_g = np.linalg.norm(acc_w.mean(axis=2), axis=0)
    # "Up" in sensor coordinates turns by -omega: u2 = u1 - omega x u1 dt, so omega_perp = (u2 x u1) / dt.
    fifth = max(1, window_samples // 5)
    early = acc_w[:, :, :fifth].mean(axis=2).T
    late = acc_w[:, :, -fifth:].mean(axis=2).T
    early /= np.linalg.norm(early, axis=1, keepdims=True)
    late /= np.linalg.norm(late, axis=1, keepdims=True)
    dt_s = (window_samples - fifth) / sample_rate_hz
    tilt_rate_dps = np.degrees(np.cross(late, early)) / dt_s
    # The tilt between the two fifths' means is the gyro integrated with trapezoid weights (rising over
    # the first fifth, falling over the last): compare it with the gyro averaged the same way.
    position = np.arange(window_samples)
    weights = np.minimum(np.minimum((position + 1) / fifth, (window_samples - 1 - position) / fifth), 1.0)
    weighted_dps = (gyro_w @ weights).T / weights.sum()
    quiet = (
        (gyro_w.std(axis=2) <= criteria.max_gyro_sd_dps).all(axis=0)
        & (acc_w.std(axis=2) <= criteria.max_acc_sd_g).all(axis=0)
        & (np.abs(means) <= criteria.max_gyro_mean_dps).all(axis=1)
        & (gravity_g >= _GRAVITY_RANGE_G[0])
        & (gravity_g <= _GRAVITY_RANGE_G[1])
        & (np.linalg.norm(tilt_rate_dps, axis=1) <= criteria.max_tilt_rate_dps)
    )
    return weighted_dps - tilt_rate_dps, quiet


def estimate_gyro_bias(
    acc_g: npt.ArrayLike, gyro_dps: npt.ArrayLike, sample_rate_hz: float, criteria: StillnessCriteria | None = None
) -> _Array | None:
    """Gyro bias of a whole recording: the median of the mean readings of its still windows.

    Parameters
    ----------
    acc_g : array_like, shape (3, n_samples)
        Accelerometer, g.
    gyro_dps : array_like, shape (3, n_samples)
        Gyroscope, deg/s.
    sample_rate_hz : float
        IMU rate.
    criteria : StillnessCriteria, optional
        What counts as still; the defaults by default.

    Returns
    -------
    ndarray, shape (3,), or None
        Bias per axis in deg/s; None when no window is still.
    """
    criteria = criteria or StillnessCriteria()
    estimates, quiet = window_bias_estimates(
        acc_g, gyro_dps, sample_rate_hz, criteria.window_samples(sample_rate_hz), criteria
    )
    if not quiet.any():
        return None
    return np.asarray(np.median(estimates[quiet], axis=0), dtype=np.float64)


class GyroBiasTracker:
    """Subtract the gyroscope bias learnt from still windows (a Stage on raw IMU blocks).

    Parameters
    ----------
    sample_rate_hz : float
        IMU rate.
    criteria : StillnessCriteria, optional
    initial_bias_dps : array_like, shape (3,), optional
        Bias in force until the first still window (a previous session's, or
        :func:`estimate_gyro_bias` offline); zero by default.

    Notes
    -----
    The bias is a statistic, not filter state: a gap drops the unfinished window but keeps the bias;
    :meth:`reset` returns to ``initial_bias_dps``.
    """

    def __init__(
        self,
        sample_rate_hz: float,
        criteria: StillnessCriteria | None = None,
        initial_bias_dps: npt.ArrayLike | None = None,
    ) -> None:
        if not (math.isfinite(sample_rate_hz) and sample_rate_hz > 0):
            raise ValueError(f"sample_rate_hz must be a positive number, got {sample_rate_hz!r}")
        self.sample_rate_hz = float(sample_rate_hz)
        self.criteria = criteria or StillnessCriteria()
        initial = np.zeros(3) if initial_bias_dps is None else np.asarray(initial_bias_dps, dtype=np.float64)
        if initial.shape != (3,) or not np.isfinite(initial).all():
            raise ValueError(f"initial_bias_dps must be 3 finite numbers (deg/s), got {initial_bias_dps!r}")
        self.initial_bias_dps = initial
        self.window_samples = self.criteria.window_samples(self.sample_rate_hz)
        self._rows: tuple[object, ImuRows] | None = None
        self.reset()

    @property
    def bias_dps(self) -> _Array:
        """Bias in force now, deg/s, shape (3,)."""
        return self._bias.copy()

    @property
    def n_still_windows(self) -> int:
        """Still windows behind the bias (at most ``criteria.n_windows``)."""
        return len(self._means)

    def reset(self) -> None:
        """Forget the windows and return to the initial bias."""
        self._bias = self.initial_bias_dps.copy()
        self._means: deque[_Array] = deque(maxlen=self.criteria.n_windows)
        self._next_index: int | None = None
        self._window: list[tuple[_Array, _Array]] = []  # (acc, gyro) pieces of the current window
        self._window_filled = 0
        self._skip = 0

    def process(self, block: Block) -> Block:
        """Correct one block.

        Parameters
        ----------
        block : Block
            Raw IMU samples: 3 acc channels in g, 3 gyro channels in deg/s (any others pass through).

        Returns
        -------
        Block
            The same stream, indices and gap, the gyro rows minus the bias in force at each sample.
        """
        check_rate(block, self.sample_rate_hz)
        rows = self._rows_of(block)
        if starts_segment(block, self._next_index):
            self._start_segment(block.first_index)
        self._next_index = block.end_index
        acc, gyro = rows.split(block.data)
        corrected = np.array(block.data, dtype=np.float64)
        position, n = 0, block.n_samples
        while position < n:
            if self._skip:
                take = min(self._skip, n - position)
                self._skip -= take
            else:
                take = min(self.window_samples - self._window_filled, n - position)
                piece = slice(position, position + take)
                self._window.append((acc[:, piece], gyro[:, piece]))
                self._window_filled += take
            corrected[list(rows.gyro), position : position + take] -= self._bias[:, None]
            position += take
            if self._window_filled == self.window_samples:
                self._close_window()
        return Block(block.info, corrected, block.first_index, block.gap_before, block.received_at)

    def _rows_of(self, block: Block) -> ImuRows:
        if self._rows is None or self._rows[0] is not block.info:
            self._rows = (block.info, imu_rows(block.info))
        return self._rows[1]

    def _start_segment(self, first_index: int) -> None:
        w = self.window_samples
        self._window, self._window_filled = [], 0
        self._skip = -(-first_index // w) * w - first_index

    def _close_window(self) -> None:
        acc = np.hstack([a for a, _ in self._window])
        gyro = np.hstack([g for _, g in self._window])
        self._window, self._window_filled = [], 0
        estimates, quiet = window_bias_estimates(acc, gyro, self.sample_rate_hz, self.window_samples, self.criteria)
        if quiet[0]:
            self._means.append(estimates[0])
            self._bias = np.mean(np.asarray(self._means), axis=0)
