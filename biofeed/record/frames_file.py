"""Byte layout of ``frames.bin``: the file magic and one record (docs/recording-format.md).

::

    file   : MAGIC (6 bytes, b"BFDFRM") | u16 LE format version | record | record | ...
    record : u32 LE length | f64 LE received_at | frame (length bytes) | u32 LE CRC-32

The CRC is ``zlib.crc32`` over length, received_at and frame, so a record checks alone and a reader
can find the next good one after damage. Records longer than :data:`MAX_FRAME_BYTES` do not exist:
a reader that meets such a length knows the bytes are damaged without allocating anything.
"""

from __future__ import annotations

import struct
import zlib

__all__ = [
    "FILE_HEADER_SIZE",
    "FRAMES_FILE",
    "FRAMES_FORMAT_VERSION",
    "MAGIC",
    "MAX_FRAME_BYTES",
    "RECORD_CRC",
    "RECORD_HEADER",
    "RECORD_OVERHEAD",
    "file_header",
    "file_version",
    "pack_record",
]

FRAMES_FILE = "frames.bin"
MAGIC = b"BFDFRM"
FRAMES_FORMAT_VERSION = 1
_VERSION = struct.Struct("<H")
FILE_HEADER_SIZE = len(MAGIC) + _VERSION.size

RECORD_HEADER = struct.Struct("<Id")
"""length (u32) and received_at (f64), little-endian."""
RECORD_CRC = struct.Struct("<I")
RECORD_OVERHEAD = RECORD_HEADER.size + RECORD_CRC.size

MAX_FRAME_BYTES = 64 * 1024
"""Longest frame a record may hold (wire frames are at most about 2 KiB)."""


def file_header(version: int = FRAMES_FORMAT_VERSION) -> bytes:
    """Return the 8 bytes that open a ``frames.bin``: magic and format version."""
    return MAGIC + _VERSION.pack(version)


def file_version(header: bytes) -> int | None:
    """Return the format version in the first 8 bytes of a ``frames.bin``; None when the magic is wrong."""
    if len(header) < FILE_HEADER_SIZE or header[: len(MAGIC)] != MAGIC:
        return None
    return int(_VERSION.unpack_from(header, len(MAGIC))[0])


def pack_record(frame: bytes, received_at: float) -> bytes:
    """Return the bytes of one record holding ``frame`` received at host time ``received_at``.

    Raises
    ------
    ValueError
        When the frame is longer than :data:`MAX_FRAME_BYTES`.
    """
    if len(frame) > MAX_FRAME_BYTES:
        raise ValueError(f"frame of {len(frame)} bytes; at most {MAX_FRAME_BYTES} allowed")
    body = RECORD_HEADER.pack(len(frame), received_at) + frame
    return body + RECORD_CRC.pack(zlib.crc32(body))
