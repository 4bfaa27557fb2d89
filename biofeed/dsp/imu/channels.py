"""Where the accelerometer and gyroscope sit in an IMU stream, checked once per stream.

An IMU stream (PROTOCOL.md section 7) carries three ``acc`` channels in g and three ``gyro``
channels in deg/s, in x, y, z order within each kind; a magnetometer, if any, is ignored (no
heading is needed: docs/imu.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from biofeed.blocks import UNIT_BY_KIND, ChannelKind, StreamInfo

__all__ = ["ImuRows", "imu_rows"]


@dataclass(frozen=True)
class ImuRows:
    """Rows of :attr:`biofeed.blocks.Block.data` holding each sensor.

    Attributes
    ----------
    acc : tuple of int
        Rows of acc x, y, z (g).
    gyro : tuple of int
        Rows of gyro x, y, z (deg/s).
    """

    acc: tuple[int, int, int]
    gyro: tuple[int, int, int]

    def split(self, data: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Accelerometer (g) and gyroscope (deg/s) of a block's data, each shape (3, n_samples)."""
        return data[list(self.acc)], data[list(self.gyro)]


def imu_rows(info: StreamInfo) -> ImuRows:
    """Find the accelerometer and gyroscope rows of an IMU stream.

    Raises
    ------
    ValueError
        When the stream does not have exactly three acc channels in g and three gyro channels in deg/s.
    """
    rows: dict[ChannelKind, list[int]] = {ChannelKind.ACC: [], ChannelKind.GYRO: []}
    for index, channel in enumerate(info.channels):
        if channel.kind in rows:
            if channel.unit != UNIT_BY_KIND[channel.kind]:
                raise ValueError(
                    f"channel {channel.name!r} of stream {info.name!r} is in {channel.unit!r}; "
                    f"{channel.kind.value} must be in {UNIT_BY_KIND[channel.kind]!r}"
                )
            rows[channel.kind].append(index)
    acc, gyro = rows[ChannelKind.ACC], rows[ChannelKind.GYRO]
    if len(acc) != 3 or len(gyro) != 3:
        raise ValueError(
            f"stream {info.name!r} is not an IMU stream: it needs 3 acc and 3 gyro channels, "
            f"has {len(acc)} and {len(gyro)}"
        )
    return ImuRows((acc[0], acc[1], acc[2]), (gyro[0], gyro[1], gyro[2]))
