"""Frames of the bytes a device sent, as a recording stores them."""

from __future__ import annotations


def frames_of(wire: bytes) -> list[bytes]:
    """The frames of delimited wire bytes, in order, without their 0x00 delimiters."""
    return [frame for frame in wire.split(b"\x00") if frame]
