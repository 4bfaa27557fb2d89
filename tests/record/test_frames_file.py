"""The byte layout of frames.bin, pinned: changing it needs a new format version."""

from __future__ import annotations

import struct
import zlib

import pytest

from biofeed.record.frames_file import MAX_FRAME_BYTES, file_header, file_version, pack_record


def test_layout_is_as_documented() -> None:
    assert file_header() == b"BFDFRM\x01\x00"
    assert file_version(file_header()) == 1
    assert file_version(b"BFDFRX\x01\x00") is None
    record = pack_record(b"\x05\x06\x07", 2.5)
    body = struct.pack("<Id", 3, 2.5) + b"\x05\x06\x07"
    assert record == body + struct.pack("<I", zlib.crc32(body))


def test_frames_over_the_cap_are_refused() -> None:
    assert len(pack_record(b"\x01" * MAX_FRAME_BYTES, 0.0)) == MAX_FRAME_BYTES + 16
    with pytest.raises(ValueError, match="at most 65536"):
        pack_record(b"\x01" * (MAX_FRAME_BYTES + 1), 0.0)
