"""biofeed: wearable surface-EMG and IMU biofeedback of the lower back.

``import biofeed`` needs only numpy and scipy (and the small ``cobs`` codec); hardware, Qt and
file-format libraries load when the part that needs them is used.
"""

from biofeed.blocks import UNIT_BY_KIND, Block, ChannelInfo, ChannelKind, DeviceInfo, DeviceStatus, Marker, StreamInfo
from biofeed.errors import (
    BiofeedError,
    CalibrationError,
    CatalogueError,
    CorruptPacketError,
    DeviceNotFoundError,
    ProtocolError,
    ProtocolVersionError,
    RecordingError,
    SourceError,
    SourceLost,
)

__version__ = "0.1.0"

__all__ = [
    "UNIT_BY_KIND",
    "BiofeedError",
    "Block",
    "CalibrationError",
    "CatalogueError",
    "ChannelInfo",
    "ChannelKind",
    "CorruptPacketError",
    "DeviceInfo",
    "DeviceNotFoundError",
    "DeviceStatus",
    "Marker",
    "ProtocolError",
    "ProtocolVersionError",
    "RecordingError",
    "SourceError",
    "SourceLost",
    "StreamInfo",
    "__version__",
]
