"""The whole IMU chain over a recording: bias, fusion, movement, upright calibration, trunk angles.

:func:`track_trunk` runs the streaming stages (:class:`~biofeed.dsp.imu.bias.GyroBiasTracker`,
:class:`~biofeed.dsp.imu.fusion.OrientationFusion`, :class:`~biofeed.dsp.imu.motion.MotionTracker`,
:class:`~biofeed.dsp.imu.angles.TrunkAngles`) over whole arrays, so offline equals live by
construction. Offline it can also look ahead: the gyro bias starts at the median of every still
window (:func:`~biofeed.dsp.imu.bias.estimate_gyro_bias`) instead of zero, the calibration span is
the first quiet stretch of at least 2 s (taken as upright standing, as every protocol here starts),
and the flexion axis of each sensor comes from all its movements (functional calibration).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block, ChannelInfo, ChannelKind, StreamInfo
from biofeed.dsp.imu.angles import TrunkAngles
from biofeed.dsp.imu.bias import GyroBiasTracker, StillnessCriteria, estimate_gyro_bias
from biofeed.dsp.imu.calibration import UprightCalibration, calibrate_upright, functional_mediolateral_axis
from biofeed.dsp.imu.fusion import QUATERNION_ROWS, FusionSettings, OrientationFusion
from biofeed.dsp.imu.motion import MotionInterval, MotionTracker, QuasiStaticCriteria

__all__ = [
    "CALIBRATION_MAX_S",
    "CALIBRATION_MIN_S",
    "IMU_CHANNEL_NAMES",
    "SACRAL_STREAM",
    "THORACIC_STREAM",
    "TrunkMotion",
    "track_trunk",
]

_Array = npt.NDArray[np.float64]

IMU_CHANNEL_NAMES: tuple[str, ...] = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
"""Row order of the IMU arrays :func:`track_trunk` takes (the reference device's, PROTOCOL.md 7)."""
THORACIC_STREAM = "imu_thoracic"
SACRAL_STREAM = "imu_sacral"
CALIBRATION_MIN_S = 2.0
"""Shortest quiet stretch taken for the upright calibration."""
CALIBRATION_MAX_S = 5.0
"""Longest part of it used (the subject may start to move soon after)."""


@dataclass(frozen=True, eq=False)
class TrunkMotion:
    """Trunk angles and movement of a recording.

    Attributes
    ----------
    sample_rate_hz : float
        IMU rate; sample ``i`` is at device time ``i / sample_rate_hz``.
    angle_names : tuple of str
        Rows of :attr:`angles_deg` (:data:`~biofeed.dsp.imu.angles.LUMBAR_CHANNELS` or
        :data:`~biofeed.dsp.imu.angles.SINGLE_SENSOR_CHANNELS`).
    angles_deg : ndarray, shape (n_angles, n_samples)
        Degrees, relative to the calibration posture.
    orientations : tuple of ndarray, each shape (6, n_samples)
        Orientation rows (:data:`~biofeed.dsp.imu.fusion.ORIENTATION_CHANNELS`), thoracic first.
    calibration : UprightCalibration
    gyro_bias_dps : tuple of ndarray, each shape (3,)
        Bias in force at the end, per sensor (thoracic first).
    motion_intervals : tuple of MotionInterval
        Movement (not quasi-static) spans.
    """

    sample_rate_hz: float
    angle_names: tuple[str, ...]
    angles_deg: _Array
    orientations: tuple[_Array, ...]
    calibration: UprightCalibration
    gyro_bias_dps: tuple[_Array, ...]
    motion_intervals: tuple[MotionInterval, ...]

    @property
    def n_samples(self) -> int:
        """Samples per angle."""
        return int(self.angles_deg.shape[1])

    @property
    def has_lumbar(self) -> bool:
        """True with a thoracic and a sacral sensor."""
        return "lumbar_flexion" in self.angle_names

    def angle(self, name: str) -> _Array:
        """One angle, shape (n_samples,), degrees.

        Raises
        ------
        ValueError
            For a name not in :attr:`angle_names`.
        """
        if name not in self.angle_names:
            raise ValueError(f"no angle {name!r}; have {', '.join(self.angle_names)}")
        return np.asarray(self.angles_deg[self.angle_names.index(name)], dtype=np.float64)

    @property
    def flexion_deg(self) -> _Array:
        """Lumbar flexion with two sensors, thoracic (trunk) inclination with one, degrees."""
        return self.angle("lumbar_flexion" if self.has_lumbar else "thoracic_inclination")

    def to_json(self) -> dict[str, Any]:
        """The calibration, biases and movement as a JSON-ready dict (not the sample arrays)."""
        return {
            "sample_rate_hz": self.sample_rate_hz,
            "angles": list(self.angle_names),
            "calibration": self.calibration.to_json(),
            "gyro_bias_dps": [b.tolist() for b in self.gyro_bias_dps],
            "motion_intervals": [m.to_json() for m in self.motion_intervals],
        }


def _imu_info(name: str, sample_rate_hz: float) -> StreamInfo:
    channels = tuple(
        ChannelInfo(n, ChannelKind.ACC, "g") if n.startswith("acc") else ChannelInfo(n, ChannelKind.GYRO, "deg/s")
        for n in IMU_CHANNEL_NAMES
    )
    return StreamInfo(name, sample_rate_hz, channels)


def _first_quiet_span(tracker: MotionTracker, n_samples: int, sample_rate_hz: float) -> tuple[float, float]:
    """The first quiet stretch of CALIBRATION_MIN_S or more, cut at CALIBRATION_MAX_S, device seconds."""
    tile_s = tracker.tile_duration_s
    n_tiles = int(n_samples / sample_rate_hz / tile_s)
    run_start: int | None = None
    for k in range(n_tiles + 1):
        if k < n_tiles and tracker.is_quiet(k * tile_s, (k + 1) * tile_s):
            run_start = k if run_start is None else run_start
            if (k + 1 - run_start) * tile_s >= CALIBRATION_MAX_S:
                return run_start * tile_s, (k + 1) * tile_s
        else:
            if run_start is not None and (k - run_start) * tile_s >= CALIBRATION_MIN_S:
                return run_start * tile_s, k * tile_s
            run_start = None
    raise ValueError(
        f"no quiet stretch of {CALIBRATION_MIN_S:g} s to calibrate on (stand still and upright first, "
        "or give calibration_s)"
    )


def track_trunk(
    thoracic_imu: npt.ArrayLike,
    sacral_imu: npt.ArrayLike | None = None,
    sample_rate_hz: float = 100.0,
    *,
    calibration_s: tuple[float, float] | None = None,
    functional_axes: bool = True,
    functional_s: tuple[float, float] | None = None,
    fusion: FusionSettings | None = None,
    stillness: StillnessCriteria | None = None,
    quasi_static: QuasiStaticCriteria | None = None,
) -> TrunkMotion:
    """Run the IMU chain over one or two sensors of a recording.

    Parameters
    ----------
    thoracic_imu : array_like, shape (6, n_samples)
        Thoracic (T12/L1) sensor, rows :data:`IMU_CHANNEL_NAMES` (acc in g, gyro in deg/s); the
        only sensor when one is worn.
    sacral_imu : array_like, shape (6, n_samples), optional
        Sacral (S1/S2) sensor, sampled at the same instants.
    sample_rate_hz : float
        IMU rate.
    calibration_s : tuple of float, optional
        (start, end) of a still upright span, device seconds; the first quiet 2-5 s by default.
    functional_axes : bool
        Take each sensor's flexion axis from its movements (else its y axis).
    functional_s : tuple of float, optional
        (start, end) of forward bends to take the flexion axis from, device seconds; the whole
        recording by default (right for a flexion-relaxation test, not for a session with twists).
    fusion, stillness, quasi_static : optional
        Settings of the stages.

    Returns
    -------
    TrunkMotion

    Raises
    ------
    ValueError
        For bad shapes or samples, or when no span to calibrate on is found.
    """
    arrays = [np.asarray(thoracic_imu, dtype=np.float64)]
    if sacral_imu is not None:
        arrays.append(np.asarray(sacral_imu, dtype=np.float64))
    for data in arrays:
        if data.ndim != 2 or data.shape[0] != 6 or data.shape[1] == 0:
            raise ValueError(
                f"IMU data must have shape (6, n_samples) ({', '.join(IMU_CHANNEL_NAMES)}), got {data.shape}"
            )
        if not np.isfinite(data).all():
            raise ValueError("IMU samples must be finite")
    if len(arrays) == 2 and arrays[0].shape != arrays[1].shape:
        raise ValueError(
            f"thoracic and sacral data must be sampled together, got {arrays[0].shape} and {arrays[1].shape}"
        )
    names = [THORACIC_STREAM, SACRAL_STREAM][: len(arrays)]
    corrected: list[Block] = []
    orientations: list[Block] = []
    biases: list[_Array] = []
    for name, data in zip(names, arrays, strict=True):
        initial = estimate_gyro_bias(data[:3], data[3:], sample_rate_hz, stillness)
        bias = GyroBiasTracker(sample_rate_hz, stillness, initial)
        corrected.append(bias.process(Block(_imu_info(name, sample_rate_hz), data, 0)))
        orientations.append(OrientationFusion(sample_rate_hz, fusion).process(corrected[-1]))
        biases.append(bias.bias_dps)
    tracker = MotionTracker(sample_rate_hz, [o.info.name for o in orientations], quasi_static)
    intervals: list[MotionInterval] = []
    for orientation in orientations:
        intervals += tracker.process(orientation)
    intervals += tracker.finish()
    n = arrays[0].shape[1]
    start_s, end_s = calibration_s if calibration_s is not None else _first_quiet_span(tracker, n, sample_rate_hz)
    span = slice(round(start_s * sample_rate_hz), round(end_s * sample_rate_hz))
    if not span.stop - span.start >= 1 or span.start < 0 or span.stop > n:
        raise ValueError(f"calibration_s {calibration_s} is not a span inside the {n / sample_rate_hz:g} s of data")
    bends = slice(None) if functional_s is None else slice(*(round(t * sample_rate_hz) for t in functional_s))
    axes = [functional_mediolateral_axis(c.data[3:, bends]) if functional_axes else None for c in corrected]
    quaternions = [o.data[QUATERNION_ROWS, span].T for o in orientations]
    calibration = calibrate_upright(
        arrays[0][:3, span],
        quaternions[0],
        arrays[1][:3, span] if len(arrays) == 2 else None,
        quaternions[1] if len(arrays) == 2 else None,
        thoracic_mediolateral=axes[0],
        sacral_mediolateral=axes[1] if len(arrays) == 2 else None,
        start_s=start_s,
        end_s=end_s,
    )
    stage = TrunkAngles(calibration, *(o.info.name for o in orientations))
    angles = [stage.process(o) for o in orientations][-1]
    return TrunkMotion(
        sample_rate_hz=float(sample_rate_hz),
        angle_names=stage.channel_names,
        angles_deg=np.asarray(angles.data),
        orientations=tuple(np.asarray(o.data) for o in orientations),
        calibration=calibration,
        gyro_bias_dps=tuple(biases),
        motion_intervals=tuple(intervals),
    )
