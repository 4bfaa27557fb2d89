"""Frames of a synthetic recording, numbered as a device numbers its packets."""

from __future__ import annotations

from biofeed.protocol import Packet, encode_frame

__all__ = ["NumberedFrames"]


class NumberedFrames:
    """Encodes packets into frames as a recording stores them (no 0x00 delimiter), with ``seq`` 1, 2, ...

    Attributes
    ----------
    seq : int
        ``seq`` of the last frame, unwrapped; adding to it skips numbers, as packets lost on the link do.
    """

    def __init__(self) -> None:
        self.seq = 0

    def __call__(self, ptype: int, stream_id: int, index: int, payload: bytes) -> bytes:
        """The next frame: a packet of ``ptype`` of ``stream_id`` whose first sample is ``index``."""
        self.seq += 1
        return encode_frame(Packet(ptype, stream_id, self.seq % 65536, index % 2**32, payload))[:-1]
