"""The exceptions biofeed raises.

Every error a user can cause is a :class:`BiofeedError`; the CLI turns each into one clear line and
a non-zero exit code (a traceback only with ``--debug``)::

    BiofeedError
    ├── SourceError                 a device or stream cannot be used
    │   ├── DeviceNotFoundError     nothing at that address / port / name
    │   └── SourceLost              the device went away mid-stream (cause: SerialException, ...)
    ├── ProtocolError               bytes that do not follow firmware_protocol/PROTOCOL.md
    │   ├── CorruptPacketError      one damaged frame (``.reason``); never escapes Decoder.feed
    │   └── ProtocolVersionError    the device speaks another major protocol version
    ├── RecordingError              a recording that cannot be opened or written (``.path``)
    ├── CatalogueError              the client catalogue cannot be opened or lacks a record
    └── CalibrationError            a calibration that cannot be used
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BiofeedError",
    "CalibrationError",
    "CatalogueError",
    "CorruptPacketError",
    "DeviceNotFoundError",
    "ProtocolError",
    "ProtocolVersionError",
    "RecordingError",
    "SourceError",
    "SourceLost",
]


class BiofeedError(Exception):
    """Base of every error biofeed raises on purpose."""


class SourceError(BiofeedError):
    """A device or stream cannot be opened or read."""


class DeviceNotFoundError(SourceError):
    """Nothing answers at the given address, port or name.

    Parameters
    ----------
    identifier : str
        The address, port or name that was asked for.
    reason : str
        What went wrong, in words for the user.
    """

    def __init__(self, identifier: str, reason: str = "no such device") -> None:
        super().__init__(f"{identifier}: {reason}")
        self.identifier = identifier
        self.reason = reason


class SourceLost(SourceError):
    """The device went away while streaming (unplugged, link dropped, port closed)."""


class ProtocolError(BiofeedError):
    """Bytes that do not follow the wire protocol."""


class CorruptPacketError(ProtocolError):
    """One frame that cannot be decoded.

    Parameters
    ----------
    reason : str
        A short machine-readable reason, one of :data:`biofeed.protocol.CORRUPT_REASONS`.
    detail : str
        Words for a human.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ProtocolVersionError(ProtocolError):
    """The device speaks a protocol major version this biofeed does not."""


class RecordingError(BiofeedError):
    """A recording that cannot be opened, read or written.

    Parameters
    ----------
    path : Path or str
        The recording (folder or file) concerned.
    reason : str
        What is wrong with it, in words for the user.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


class CatalogueError(BiofeedError):
    """The client catalogue cannot be opened, or holds no such client, session or recording.

    Parameters
    ----------
    path : Path or str
        The catalogue file.
    reason : str
        Words for the user.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


class CalibrationError(BiofeedError):
    """A calibration that cannot be used."""
