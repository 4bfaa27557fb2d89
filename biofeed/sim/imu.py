"""Simulated IMUs on the back: accelerometer and gyroscope from a scripted sagittal flexion angle.

Sensor frame (both IMUs, taped flat on the skin): x points cranially along the spine, y to the
subject's left, z out of the back (posterior); right-handed. Forward flexion by angle theta is a
rotation about +y, so with the body upright (theta = 0) the accelerometer reads (1, 0, 0) g,
bent forward 90 deg (0, 0, 1) g and lying supine (theta = -90 deg) (0, 0, -1) g; the angle comes
back as ``atan2(acc_z, acc_x)``. The gyroscope reads (0, dtheta/dt, 0) deg/s.

While the trunk moves, the sensor, ``radius_m`` from the hip joint, also accelerates: tangential
``r theta''`` along -z and centripetal ``r theta'^2`` along -x (specific force, in g). Noise: white,
0.003 g and 0.05 deg/s RMS (MPU-6050 class at 100 Hz); a constant gyroscope bias per axis drawn
once per device, 0.5 deg/s SD. SCIENCE.md section 10: lumbar flexion is the thoracic angle minus the
sacral one; the sacral IMU follows the pelvis.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from biofeed.sim.random_streams import RandomStream, stream_rng
from biofeed.sim.scenarios import ScenarioScript

__all__ = ["GRAVITY_M_S2", "IMU_CHANNEL_NAMES", "ImuGenerator", "ImuSite"]

GRAVITY_M_S2 = 9.80665
IMU_CHANNEL_NAMES: tuple[str, ...] = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
"""IMU channels of the reference device (PROTOCOL.md section 7)."""

ImuSite = Literal["thoracic", "sacral"]

_RADIUS_M: dict[ImuSite, float] = {"thoracic": 0.45, "sacral": 0.10}
_ACC_NOISE_G = 0.003
_GYRO_NOISE_DPS = 0.05
_GYRO_BIAS_SD_DPS = 0.5


class ImuGenerator:
    """One IMU of a scenario, in segments of ``segment_samples``.

    Parameters
    ----------
    script : ScenarioScript
        Scripted angles.
    site : {"thoracic", "sacral"}
        Which IMU (T12/L1 or S1/S2); picks the angle track and the distance from the hip joint.
    seed : int
        Seed of the random streams.
    sample_rate_hz : float
        Nominal IMU rate (device clock).
    segment_samples : int
        Samples per segment.
    """

    def __init__(
        self,
        script: ScenarioScript,
        site: ImuSite,
        *,
        seed: int,
        sample_rate_hz: float = 100.0,
        segment_samples: int = 100,
    ) -> None:
        if site not in _RADIUS_M:
            raise ValueError(f"site must be 'thoracic' or 'sacral', got {site!r}")
        self._track = script.thoracic_deg if site == "thoracic" else script.sacral_deg
        self._stream = RandomStream.IMU_THORACIC if site == "thoracic" else RandomStream.IMU_SACRAL
        self._radius_m = _RADIUS_M[site]
        self._seed = seed
        self.sample_rate_hz = sample_rate_hz
        self.segment_samples = segment_samples
        bias_rng = stream_rng(seed, RandomStream.IMU_BIAS, 0 if site == "thoracic" else 1)
        self.gyro_bias_dps = bias_rng.normal(0.0, _GYRO_BIAS_SD_DPS, size=3)

    def segment(self, index: int) -> npt.NDArray[np.float64]:
        """Generate segment ``index`` (in any order: an IMU segment has no state).

        Returns
        -------
        ndarray, shape (6, segment_samples)
            acc_x, acc_y, acc_z in g and gyro_x, gyro_y, gyro_z in deg/s.
        """
        n = self.segment_samples
        t_s = (index * n + np.arange(n)) / self.sample_rate_hz
        theta = np.radians(self._track.value_at(t_s))
        rate_dps = self._track.rate_at(t_s)
        rate = np.radians(rate_dps)
        acceleration = np.radians(self._track.acceleration_at(t_s))
        g = GRAVITY_M_S2
        out = np.empty((6, n))
        out[0] = np.cos(theta) - self._radius_m * rate**2 / g
        out[1] = 0.0
        out[2] = np.sin(theta) - self._radius_m * acceleration / g
        out[3:] = self.gyro_bias_dps[:, np.newaxis]
        out[4] += rate_dps
        rng = stream_rng(self._seed, self._stream, index)
        out[:3] += rng.normal(0.0, _ACC_NOISE_G, size=(3, n))
        out[3:] += rng.normal(0.0, _GYRO_NOISE_DPS, size=(3, n))
        return out
