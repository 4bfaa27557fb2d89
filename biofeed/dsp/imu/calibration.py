"""Upright calibration: each sensor's anatomical axes, and the heading that aligns the two sensors.

Body axes (docs/imu.md): x cranial, y to the subject's left, z posterior (out of the back), the axes
the simulator's sensors are taped along. A real sensor sits a few degrees off them. The calibration
finds, for each sensor, the body axes in sensor coordinates (:class:`SensorMounting`):

- **cranial** = "up" while the subject stands still and upright: the mean accelerometer direction.
  This removes any mounting tilt in the sagittal and frontal planes, and defines 0 deg: angles are
  relative to the calibration posture (the usual upright-standing reference; lordosis included).
- **left** (the flexion axis) = the sensor's principal rotation axis during forward bends
  (:func:`functional_mediolateral_axis`, "functional"), or, without such movements, the sensor's own
  y axis ("sensor_y": taped horizontally). Either is made orthogonal to the cranial axis. Gravity
  cannot see a sensor turned about the vertical; only the functional axis removes that misalignment,
  which otherwise leaks ``sin(misalignment)`` of the flexion into lateral bend.
- **posterior** = cranial x left.

Without a magnetometer each sensor's fusion has its own arbitrary heading. At calibration both body
frames face the same way by definition, so the difference of their headings
(:attr:`UprightCalibration.heading_offset_deg`) is measured then and applied to the thoracic sensor's
earth frame from then on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from biofeed.dsp.imu.rotations import mean_quaternion, quaternion_to_matrix, rotation_about_axis

__all__ = [
    "MediolateralSource",
    "SensorMounting",
    "UprightCalibration",
    "calibrate_upright",
    "functional_mediolateral_axis",
    "heading_rotation",
    "mounting_from_upright",
]

_Array = npt.NDArray[np.float64]
MediolateralSource = Literal["functional", "sensor_y"]

_MIN_FUNCTIONAL_RATE_DPS = 10.0  # slower samples are mostly noise and sway
_MIN_FUNCTIONAL_SAMPLES = 50
_MIN_PRINCIPAL_SHARE = 0.8  # flexion-extension must dominate the rotation for its axis to be trusted
_MIN_HORIZONTAL_NORM = 0.2  # a left axis within 12 deg of vertical cannot be made horizontal reliably


@dataclass(frozen=True, eq=False)
class SensorMounting:
    """How one sensor sits on its body segment.

    Attributes
    ----------
    body_to_sensor : ndarray, shape (3, 3)
        Columns: the cranial, left and posterior body axes in sensor coordinates (orthonormal,
        right-handed): ``v_sensor = body_to_sensor @ v_body``.
    mediolateral_source : {"functional", "sensor_y"}
        Where the left axis came from.
    """

    body_to_sensor: _Array
    mediolateral_source: MediolateralSource

    def misalignment_deg(self) -> float:
        """Angle of the rotation between the sensor axes and the body axes, degrees."""
        trace = float(np.trace(self.body_to_sensor))
        return math.degrees(math.acos(min(max((trace - 1.0) / 2.0, -1.0), 1.0)))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (axes in sensor coordinates)."""
        m = self.body_to_sensor
        return {
            "cranial": m[:, 0].tolist(),
            "left": m[:, 1].tolist(),
            "posterior": m[:, 2].tolist(),
            "mediolateral_source": self.mediolateral_source,
            "misalignment_deg": self.misalignment_deg(),
        }


@dataclass(frozen=True)
class UprightCalibration:
    """The upright reference of one or two sensors.

    Attributes
    ----------
    thoracic : SensorMounting
        The thoracic (T12/L1) sensor, or the only one worn.
    sacral : SensorMounting or None
        The sacral (S1/S2) sensor; None with one sensor (trunk inclination only).
    heading_offset_deg : float
        Rotation about earth z applied to the thoracic sensor's earth frame so that it matches the
        sacral sensor's (0 with one sensor).
    start_s, end_s : float
        The still upright span it was measured on, device seconds.
    """

    thoracic: SensorMounting
    sacral: SensorMounting | None
    heading_offset_deg: float
    start_s: float
    end_s: float

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "thoracic": self.thoracic.to_json(),
            "sacral": self.sacral.to_json() if self.sacral is not None else None,
            "heading_offset_deg": self.heading_offset_deg,
            "start_s": self.start_s,
            "end_s": self.end_s,
        }


def functional_mediolateral_axis(gyro_dps: npt.ArrayLike) -> _Array | None:
    """The axis a sensor mostly turned about, in sensor coordinates (forward bends: the left axis).

    Parameters
    ----------
    gyro_dps : array_like, shape (3, n_samples)
        Bias-corrected gyroscope, deg/s, over movements that are mostly flexion and extension.

    Returns
    -------
    ndarray, shape (3,), or None
        Unit axis with a non-negative sensor-y component (the sensor is taped with y to the left);
        None with fewer than 50 samples faster than 10 deg/s, or when no single axis carries 80 %
        of the rotation (the movements were not mostly flexion).
    """
    gyro = np.asarray(gyro_dps, dtype=np.float64)
    fast = gyro[:, np.linalg.norm(gyro, axis=0) >= _MIN_FUNCTIONAL_RATE_DPS]
    if fast.shape[1] < _MIN_FUNCTIONAL_SAMPLES:
        return None
    eigenvalues, eigenvectors = np.linalg.eigh(fast @ fast.T)
    if eigenvalues[-1] < _MIN_PRINCIPAL_SHARE * eigenvalues.sum():
        return None
    axis = eigenvectors[:, -1]
    return np.asarray(axis if axis[1] >= 0 else -axis, dtype=np.float64)


def mounting_from_upright(up_sensor: npt.ArrayLike, mediolateral_sensor: npt.ArrayLike | None = None) -> SensorMounting:
    """Body axes of a sensor from "up" while upright and, optionally, the flexion axis.

    Parameters
    ----------
    up_sensor : array_like, shape (3,)
        Mean accelerometer (any scale) while still and upright, sensor coordinates.
    mediolateral_sensor : array_like, shape (3,), optional
        Flexion axis (:func:`functional_mediolateral_axis`); the sensor's y axis when None.

    Raises
    ------
    ValueError
        For a zero "up", or a left axis (nearly) parallel to it.
    """
    up = np.asarray(up_sensor, dtype=np.float64)
    if not (np.isfinite(up).all() and np.linalg.norm(up) > 0):
        raise ValueError(f"up_sensor must be a finite non-zero vector, got {up}")
    cranial = up / np.linalg.norm(up)
    source: MediolateralSource = "sensor_y" if mediolateral_sensor is None else "functional"
    left0 = (
        np.array([0.0, 1.0, 0.0]) if mediolateral_sensor is None else np.asarray(mediolateral_sensor, dtype=np.float64)
    )
    left = left0 - (left0 @ cranial) * cranial
    if not np.linalg.norm(left) >= _MIN_HORIZONTAL_NORM * np.linalg.norm(left0):
        raise ValueError(
            f"the left axis {left0} is within {math.degrees(math.asin(_MIN_HORIZONTAL_NORM)):.0f} deg of up {cranial}: "
            "is the sensor taped with its x axis along the spine?"
        )
    left /= np.linalg.norm(left)
    return SensorMounting(np.column_stack([cranial, left, np.cross(cranial, left)]), source)


def _body_heading_deg(quaternions: npt.ArrayLike, mounting: SensorMounting) -> float:
    """Heading (about earth z) of the body's left axis in a sensor's earth frame, degrees."""
    left_earth = quaternion_to_matrix(mean_quaternion(quaternions)) @ mounting.body_to_sensor[:, 1]
    return math.degrees(math.atan2(left_earth[1], left_earth[0]))


def calibrate_upright(
    thoracic_acc_g: npt.ArrayLike,
    thoracic_quaternions: npt.ArrayLike,
    sacral_acc_g: npt.ArrayLike | None = None,
    sacral_quaternions: npt.ArrayLike | None = None,
    *,
    thoracic_mediolateral: npt.ArrayLike | None = None,
    sacral_mediolateral: npt.ArrayLike | None = None,
    start_s: float = 0.0,
    end_s: float = 0.0,
) -> UprightCalibration:
    """Calibrate on a still upright span.

    Parameters
    ----------
    thoracic_acc_g : array_like, shape (3, n)
        Thoracic accelerometer over the span, g.
    thoracic_quaternions : array_like, shape (n, 4)
        Thoracic orientation over the span (:class:`~biofeed.dsp.imu.fusion.OrientationFusion`).
    sacral_acc_g, sacral_quaternions : array_like, optional
        The same for the sacral sensor; leave out with one sensor.
    thoracic_mediolateral, sacral_mediolateral : array_like, shape (3,), optional
        Functional flexion axes; each sensor's y axis when None.
    start_s, end_s : float
        The span, device seconds (recorded in the result).

    Returns
    -------
    UprightCalibration
    """
    thoracic = mounting_from_upright(
        np.mean(np.asarray(thoracic_acc_g, dtype=np.float64), axis=1), thoracic_mediolateral
    )
    if (sacral_acc_g is None) != (sacral_quaternions is None):
        raise ValueError("give both sacral_acc_g and sacral_quaternions, or neither")
    if sacral_acc_g is None or sacral_quaternions is None:
        return UprightCalibration(thoracic, None, 0.0, float(start_s), float(end_s))
    sacral = mounting_from_upright(np.mean(np.asarray(sacral_acc_g, dtype=np.float64), axis=1), sacral_mediolateral)
    offset = _body_heading_deg(sacral_quaternions, sacral) - _body_heading_deg(thoracic_quaternions, thoracic)
    offset = (offset + 180.0) % 360.0 - 180.0
    return UprightCalibration(thoracic, sacral, offset, float(start_s), float(end_s))


def heading_rotation(calibration: UprightCalibration) -> _Array:
    """The rotation about earth z that brings the thoracic earth frame onto the sacral one, shape (3, 3)."""
    return rotation_about_axis(2, calibration.heading_offset_deg)
