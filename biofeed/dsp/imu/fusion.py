"""Orientation of one IMU from its gyroscope and accelerometer: x-io Fusion (imufusion) as a Stage.

SCIENCE.md section 10: a Madgwick-class filter (< 0.8 deg static, < 1.7 deg dynamic RMS error); Fusion
is a C implementation (about 1 us per sample here). No magnetometer: heading is free, and nothing
downstream needs it (the lumbar angles align the two sensors' headings at calibration, docs/imu.md).

Start-up. Fusion starts from the identity with a gain ramping from 10 down over 3 s, and without a
magnetometer it *holds the heading at 0 during those 3 s*: a turn in that time is lost. Here each
segment instead starts from the tilt of its first accelerometer sample (shortest arc from the
accelerometer to earth z) with ``skip_startup``, so the first output is already level and the
heading integrates the gyroscope from the first sample.

Settings. Trunk movement accelerates the sensors (0.1-0.2 g at 0.45 m above the hip in a brisk
bend) and the accelerometer feedback pulls the estimate toward that false vertical. Measured on the
benchmark's trajectories (docs/imu.md, bench/bench_imu.py: bias-corrected gyroscope, bumps, 5-10 deg
misalignment), a gain of 0.3 instead of Fusion's default 0.5 lowers the lumbar flexion RMSE from
0.25 to 0.14 deg and the thoracic one from 0.61 to 0.38 deg, and ignoring the accelerometer while it
disagrees with the estimate by more than 5 deg (at most 5 s) helps the thoracic sensor further; the
10 deg Fusion suggests is worse than no rejection at all (0.40 deg). Lower gains gain little more
and trust the gyroscope's scale, which the benchmark does not model. The gyroscope must be
bias-corrected first (:class:`~biofeed.dsp.imu.bias.GyroBiasTracker`): the steady tilt error is the
residual bias over the gain, and Fusion's own bias tracking needs 3 s below 3 deg/s and adapts over
minutes.

Output per sample: the quaternion ``(w, x, y, z)`` that rotates sensor into earth coordinates
(NWU, earth z up), the angular rate ``|gyro|`` in deg/s and the linear acceleration ``|acc - gravity|``
in g, the two quantities of the quasi-static test (SCIENCE.md 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import imufusion
import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block, ChannelInfo, ChannelKind, StreamInfo
from biofeed.dsp.imu.channels import ImuRows, imu_rows
from biofeed.dsp.imu.rotations import quaternion_from_two_vectors
from biofeed.dsp.stage import check_rate, starts_segment

__all__ = [
    "ANGULAR_RATE_ROW",
    "LINEAR_ACCELERATION_ROW",
    "ORIENTATION_CHANNELS",
    "QUATERNION_ROWS",
    "FusionSettings",
    "OrientationFusion",
    "initial_quaternion",
]

ORIENTATION_CHANNELS: tuple[ChannelInfo, ...] = (
    ChannelInfo("q_w", ChannelKind.QUAT, "1"),
    ChannelInfo("q_x", ChannelKind.QUAT, "1"),
    ChannelInfo("q_y", ChannelKind.QUAT, "1"),
    ChannelInfo("q_z", ChannelKind.QUAT, "1"),
    ChannelInfo("angular_rate", ChannelKind.GYRO, "deg/s"),
    ChannelInfo("linear_acceleration", ChannelKind.ACC, "g"),
)
"""Channels of an orientation block, in row order."""
QUATERNION_ROWS = slice(0, 4)
"""Rows of the quaternion ``(w, x, y, z)`` in an orientation block."""
ANGULAR_RATE_ROW = 4
"""Row of ``|gyro|`` (bias-corrected), deg/s."""
LINEAR_ACCELERATION_ROW = 5
"""Row of ``|acc - gravity|``, g."""

_EARTH_UP = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class FusionSettings:
    """Settings of the Fusion AHRS.

    Attributes
    ----------
    gain : float
        Accelerometer feedback gain (Fusion's default is 0.5; 0.3 measured better, module docstring).
    acceleration_rejection_deg : float
        Accelerometer ignored while it disagrees with the estimate by more than this (0 disables).
    rejection_timeout_s : float
        Longest the accelerometer may be ignored before Fusion recovers with it.
    gyroscope_range_dps : float
        Gyroscope full scale; a reading beyond 98 % of it restarts Fusion's gain ramp (0 disables).
    """

    gain: float = 0.3
    acceleration_rejection_deg: float = 5.0
    rejection_timeout_s: float = 5.0
    gyroscope_range_dps: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.gain) and self.gain >= 0):
            raise ValueError(f"gain must be a number >= 0, got {self.gain!r}")
        for name in ("acceleration_rejection_deg", "rejection_timeout_s", "gyroscope_range_dps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0 (0 disables), got {value!r}")

    def to_imufusion(self, sample_rate_hz: float) -> imufusion.AhrsSettings:
        """The same settings as imufusion takes them."""
        return imufusion.AhrsSettings(
            sample_rate=sample_rate_hz,
            convention=imufusion.CONVENTION_NWU,
            gain=self.gain,
            gyroscope_range=self.gyroscope_range_dps,
            acceleration_rejection=self.acceleration_rejection_deg,
            magnetic_rejection=0.0,
            rejection_timeout=self.rejection_timeout_s,
        )


def initial_quaternion(acc_g: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Orientation level with one accelerometer sample, heading arbitrary (shortest arc to earth z).

    Parameters
    ----------
    acc_g : array_like, shape (3,)
        Accelerometer sample, g.

    Returns
    -------
    ndarray, shape (4,)
        ``(w, x, y, z)``; the identity when the sample is zero.
    """
    acc = np.asarray(acc_g, dtype=np.float64)
    if not np.linalg.norm(acc) > 0:
        return np.array([1.0, 0.0, 0.0, 0.0])
    return quaternion_from_two_vectors(acc, _EARTH_UP)


class OrientationFusion:
    """Streaming orientation of one IMU (a Stage: IMU block in, orientation block out).

    Parameters
    ----------
    sample_rate_hz : float
        IMU rate.
    settings : FusionSettings, optional

    Notes
    -----
    A new segment (first block, a gap, a jump in index) restarts Fusion from the tilt of its first
    accelerometer sample. Output rows: :data:`ORIENTATION_CHANNELS`, on a stream named
    ``<input name>_orientation`` with the input's indices.
    """

    def __init__(self, sample_rate_hz: float, settings: FusionSettings | None = None) -> None:
        if not (math.isfinite(sample_rate_hz) and sample_rate_hz > 0):
            raise ValueError(f"sample_rate_hz must be a positive number, got {sample_rate_hz!r}")
        self.sample_rate_hz = float(sample_rate_hz)
        self.settings = settings or FusionSettings()
        self._rows: tuple[StreamInfo, ImuRows, StreamInfo] | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the orientation; the next block starts a new segment."""
        self._ahrs: imufusion.Ahrs | None = None
        self._next_index: int | None = None

    def process(self, block: Block) -> Block:
        """Fuse one block.

        Parameters
        ----------
        block : Block
            IMU samples: 3 acc channels in g and 3 gyro channels in deg/s, bias-corrected; finite.

        Returns
        -------
        Block
            Shape (6, n_samples): quaternion w, x, y, z, angular rate (deg/s), linear acceleration (g).
        """
        check_rate(block, self.sample_rate_hz)
        rows, out_info = self._layout(block.info)
        acc, gyro = rows.split(block.data)
        if not (np.isfinite(acc).all() and np.isfinite(gyro).all()):
            raise ValueError("IMU block holds NaN or inf samples: split it at them and mark a gap first")
        if starts_segment(block, self._next_index):
            self._ahrs = None
        self._next_index = block.end_index
        n = block.n_samples
        out = np.empty((len(ORIENTATION_CHANNELS), n))
        acc_rows = np.ascontiguousarray(acc.T)
        gyro_rows = np.ascontiguousarray(gyro.T)
        quaternions = np.empty((n, 4), dtype=np.float32)  # what imufusion gives
        linear_squared = np.empty(n, dtype=np.float32)
        for i in range(n):
            ahrs = self._ahrs if self._ahrs is not None else self._start(acc_rows[i])
            ahrs.update_no_magnetometer(gyro_rows[i], acc_rows[i])
            quaternions[i] = ahrs.get_quaternion()
            linear = ahrs.get_linear_acceleration()
            linear_squared[i] = linear.dot(linear)
        out[QUATERNION_ROWS] = quaternions.T
        out[LINEAR_ACCELERATION_ROW] = np.sqrt(linear_squared)  # np.linalg.norm's float32 sum and root, per sample
        out[ANGULAR_RATE_ROW] = np.linalg.norm(gyro, axis=0)
        return Block(out_info, out, block.first_index, block.gap_before, block.received_at)

    def _start(self, acc_g: npt.NDArray[np.float64]) -> imufusion.Ahrs:
        ahrs = imufusion.Ahrs()
        ahrs.set_settings(self.settings.to_imufusion(self.sample_rate_hz))
        if np.linalg.norm(acc_g) > 0:
            ahrs.set_quaternion(initial_quaternion(acc_g))
            ahrs.skip_startup()
        # else: no tilt to start from; Fusion's own start-up (high gain for 3 s) finds it.
        self._ahrs = ahrs
        return ahrs

    def _layout(self, info: StreamInfo) -> tuple[ImuRows, StreamInfo]:
        if self._rows is None or self._rows[0] is not info:
            out_info = StreamInfo(
                name=f"{info.name}_orientation",
                sample_rate_hz=info.sample_rate_hz,
                channels=ORIENTATION_CHANNELS,
                device_id=info.device_id,
                stream_id=info.stream_id,
            )
            self._rows = (info, imu_rows(info), out_info)
        return self._rows[1], self._rows[2]
