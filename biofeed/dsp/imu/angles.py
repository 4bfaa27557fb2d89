"""Lumbar angles from two sensors, trunk inclination from one (docs/imu.md draws the conventions).

**Lumbar** (SCIENCE.md 10): the rotation of the thoracic body frame relative to the sacral one,
``R_rel = B_sacral^T B_thoracic`` with ``B = H R M`` (fusion orientation ``R``, mounting ``M``, and for
the thoracic sensor the calibration heading ``H``), decomposed as intrinsic y-z'-x'' Cardan angles
(ISB's spine sequence): **flexion** about the left axis (+ forward), **lateral bend** about the
posterior axis (+ to the left), **axial rotation** about the cranial axis (+ to the left). All are 0
in the calibration posture. Flexion is insensitive to heading drift to first order; lateral bend and
axial rotation are not (a heading error e between the sensors appears as e cos(flexion) of axial
rotation and e sin(flexion) of lateral bend).

**Inclination** of one segment (the only angles one sensor gives): the segment's tilt from upright
written as ``Ry(sagittal) Rz(lateral)``, the lumbar sequence without its heading part, from the
direction of "up" in the body frame, ``u = M^T R^T z``. Sagittal is + forward (lying supine is -90),
lateral + to the left. No heading enters.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block, ChannelInfo, ChannelKind, StreamInfo
from biofeed.dsp.imu.calibration import SensorMounting, UprightCalibration, heading_rotation
from biofeed.dsp.imu.fusion import QUATERNION_ROWS
from biofeed.dsp.imu.rotations import cardan_yzx_deg, quaternion_to_matrix

__all__ = [
    "LUMBAR_CHANNELS",
    "SINGLE_SENSOR_CHANNELS",
    "TrunkAngles",
    "lumbar_angles_deg",
    "segment_inclination_deg",
]

_Array = npt.NDArray[np.float64]
_EARTH_UP = np.array([0.0, 0.0, 1.0])

LUMBAR_CHANNELS: tuple[str, ...] = (
    "lumbar_flexion",
    "lumbar_lateral_bend",
    "lumbar_axial_rotation",
    "thoracic_inclination",
    "thoracic_lateral_inclination",
    "sacral_inclination",
    "sacral_lateral_inclination",
)
"""Rows of a :class:`TrunkAngles` block with two sensors, degrees."""
SINGLE_SENSOR_CHANNELS: tuple[str, ...] = ("thoracic_inclination", "thoracic_lateral_inclination")
"""Rows of a :class:`TrunkAngles` block with one sensor, degrees."""


def segment_inclination_deg(quaternions: npt.ArrayLike, mounting: SensorMounting) -> _Array:
    """Sagittal and lateral inclination of a body segment from its sensor's orientation.

    The tilt ``Ry(s) Rz(l)`` puts "up" at ``u = (cos l cos s, -sin l cos s, sin s)`` in body
    coordinates, so ``s = atan2(u_z, sign(u_x) hypot(u_x, u_y))`` and ``l = atan2(-sign(u_x) u_y, |u_x|)``
    (``|l| < 90``), exact at any flexion, beyond 90 deg included.

    Parameters
    ----------
    quaternions : array_like, shape (n, 4)
        Sensor orientation (sensor to earth).
    mounting : SensorMounting
        The segment's body axes in sensor coordinates.

    Returns
    -------
    ndarray, shape (2, n)
        Sagittal (+ forward, -90 lying supine) and lateral (+ to the left) inclination, degrees.
    """
    rotation = quaternion_to_matrix(quaternions)
    up_sensor = rotation[..., 2, :]  # R^T z: the third row of R
    up = up_sensor @ mounting.body_to_sensor  # u_body = M^T u_sensor, row-wise
    ux, uy, uz = up[..., 0], up[..., 1], up[..., 2]
    sagittal = np.arctan2(uz, np.copysign(np.hypot(ux, uy), ux))
    lateral = np.arctan2(-np.sign(ux) * uy, np.abs(ux))
    return np.asarray(np.degrees(np.stack([sagittal, lateral])), dtype=np.float64)


def lumbar_angles_deg(
    thoracic_quaternions: npt.ArrayLike, sacral_quaternions: npt.ArrayLike, calibration: UprightCalibration
) -> _Array:
    """Lumbar flexion, lateral bend and axial rotation (thoracic relative to sacral).

    Parameters
    ----------
    thoracic_quaternions, sacral_quaternions : array_like, shape (n, 4)
        Orientations at the same instants.
    calibration : UprightCalibration
        With both sensors.

    Returns
    -------
    ndarray, shape (3, n)
        Flexion (+ forward), lateral bend (+ left), axial rotation (+ left), degrees.
    """
    if calibration.sacral is None:
        raise ValueError("lumbar angles need a calibration with both a thoracic and a sacral sensor")
    thoracic = (
        heading_rotation(calibration) @ quaternion_to_matrix(thoracic_quaternions) @ calibration.thoracic.body_to_sensor
    )
    sacral = quaternion_to_matrix(sacral_quaternions) @ calibration.sacral.body_to_sensor
    return cardan_yzx_deg(np.swapaxes(sacral, -1, -2) @ thoracic)


def _end(segment: tuple[int, _Array]) -> int:
    return segment[0] + int(segment[1].shape[0])


class TrunkAngles:
    """Trunk angles from orientation blocks (a Stage; one sensor or a thoracic-sacral pair).

    Feed it the orientation blocks (:class:`~biofeed.dsp.imu.fusion.OrientationFusion`) of the
    streams named ``thoracic_stream`` and, with two sensors, ``sacral_stream``, in any interleaving;
    blocks of other streams are refused. It returns the angles of the samples both streams now have,
    rows :data:`LUMBAR_CHANNELS` (two sensors) or :data:`SINGLE_SENSOR_CHANNELS` (one), possibly none.
    Samples one stream has and the other never will (a gap on one side) are dropped.

    Parameters
    ----------
    calibration : UprightCalibration
    thoracic_stream, sacral_stream : str
        Stream names of the two orientation streams.

    Notes
    -----
    Per sample, the angles depend only on the two orientations and the calibration, so any
    chunking and interleaving gives the same angles.
    """

    def __init__(
        self,
        calibration: UprightCalibration,
        thoracic_stream: str = "imu_thoracic_orientation",
        sacral_stream: str = "imu_sacral_orientation",
    ) -> None:
        self.calibration = calibration
        self.streams = (thoracic_stream,) if calibration.sacral is None else (thoracic_stream, sacral_stream)
        names = SINGLE_SENSOR_CHANNELS if calibration.sacral is None else LUMBAR_CHANNELS
        self._channels = tuple(ChannelInfo(name, ChannelKind.ANGLE, "deg") for name in names)
        self._info: tuple[StreamInfo, StreamInfo] | None = None
        self.reset()

    @property
    def channel_names(self) -> tuple[str, ...]:
        """Names of the output rows."""
        return tuple(c.name for c in self._channels)

    def reset(self) -> None:
        """Drop the samples waiting for their partner."""
        # Per stream, contiguous segments (first index, quaternions (n, 4)) in time order.
        self._pending: dict[str, list[tuple[int, _Array]]] = {stream: [] for stream in self.streams}
        self._last_end: int | None = None

    def process(self, block: Block) -> Block:
        """Add one orientation block; return the angles of the next span both streams now have.

        Returns
        -------
        Block
            Stream ``trunk_angles``, shape (n_channels, n) with n >= 0; ``gap_before`` counts the
            samples skipped since the previous output. When a gap in one stream leaves two separate
            spans ready at once, the later one comes with the next call.
        """
        name = block.info.name
        if name not in self.streams:
            raise ValueError(f"TrunkAngles takes the streams {', '.join(self.streams)}; got {name!r}")
        segments = self._pending[name]
        quaternions = block.data[QUATERNION_ROWS].T
        if segments and block.gap_before == 0 and _end(segments[-1]) == block.first_index:
            segments[-1] = (segments[-1][0], np.concatenate([segments[-1][1], quaternions]))
        elif block.n_samples:
            segments.append((block.first_index, quaternions))
        info = self._output_info(block.info)
        span = self._next_span()
        if span is None:
            return Block(info, np.zeros((len(self._channels), 0)), block.first_index, 0, block.received_at)
        start, parts = span
        gap = 0 if self._last_end is None else max(start - self._last_end, 0)
        self._last_end = start + parts[0].shape[0]
        return Block(info, self._angles(parts), start, gap, block.received_at)

    def _next_span(self) -> tuple[int, list[_Array]] | None:
        """The earliest span every stream has, taken out of the buffers (None when there is none yet).

        Streams arrive in order, so samples of one stream before the other's earliest pending
        sample will never find a partner and are dropped.
        """
        while all(self._pending[s] for s in self.streams):
            heads = [self._pending[s][0] for s in self.streams]
            start = max(first for first, _ in heads)
            end = min(_end(head) for head in heads)
            if end <= start:
                for s in self.streams:
                    if _end(self._pending[s][0]) <= start:
                        self._pending[s].pop(0)
                continue
            parts = []
            for s in self.streams:
                first, quaternions = self._pending[s][0]
                parts.append(quaternions[start - first : end - first])
                if _end(self._pending[s][0]) == end:
                    self._pending[s].pop(0)
                else:
                    self._pending[s][0] = (end, quaternions[end - first :])
            return start, parts
        return None

    def _angles(self, parts: list[_Array]) -> _Array:
        thoracic = segment_inclination_deg(parts[0], self.calibration.thoracic)
        if self.calibration.sacral is None:
            return thoracic
        lumbar = lumbar_angles_deg(parts[0], parts[1], self.calibration)
        sacral = segment_inclination_deg(parts[1], self.calibration.sacral)
        return np.vstack([lumbar, thoracic, sacral])

    def _output_info(self, info: StreamInfo) -> StreamInfo:
        if self._info is None or self._info[0] is not info:
            out = StreamInfo("trunk_angles", info.sample_rate_hz, self._channels, info.device_id, 0)
            self._info = (info, out)
        return self._info[1]
