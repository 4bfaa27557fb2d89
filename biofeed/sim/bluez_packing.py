"""Packing frames into BLE notifications as firmware does (firmware_protocol/PROTOCOL.md section 6.2).

A notification carries as many whole frames (with their 0x00 delimiters) as fit in ATT MTU - 3
bytes; it leaves when the next frame would not fit, or once its oldest frame has waited 20 ms. A
frame larger than one notification (the reference INFO, 385 bytes) goes out alone, split over
consecutive notifications. The fake BlueZ device (:mod:`biofeed.sim.bluez`) and the BLE source's
tests use this, so both see the notifications a real board sends.
"""

from __future__ import annotations

import math

__all__ = ["FLUSH_AFTER_S", "NotificationPacker"]

FLUSH_AFTER_S = 0.020
"""A partly filled notification leaves once its oldest frame has waited this long (device seconds)."""

_ATT_HEADER_BYTES = 3
_MIN_MTU_BYTES = 23  # the Bluetooth minimum ATT MTU
_MAX_MTU_BYTES = 517  # the largest ATT MTU (512-byte attribute values)


class NotificationPacker:
    """Frames in, notification payloads out, in the firmware's packing.

    Parameters
    ----------
    mtu_bytes : int
        Negotiated ATT MTU, 23..517; a notification carries at most ``mtu_bytes - 3`` bytes.
    flush_after_s : float
        Longest wait of a partly filled notification, device seconds.

    Raises
    ------
    ValueError
        An MTU outside 23..517 or a negative or non-finite wait.
    """

    def __init__(self, mtu_bytes: int, *, flush_after_s: float = FLUSH_AFTER_S) -> None:
        if not _MIN_MTU_BYTES <= mtu_bytes <= _MAX_MTU_BYTES:
            raise ValueError(f"mtu_bytes must lie in {_MIN_MTU_BYTES}..{_MAX_MTU_BYTES}, got {mtu_bytes}")
        if not (math.isfinite(flush_after_s) and flush_after_s >= 0):
            raise ValueError(f"flush_after_s must be a finite number >= 0, got {flush_after_s}")
        self.capacity_bytes = mtu_bytes - _ATT_HEADER_BYTES
        """Most bytes one notification carries."""
        self._flush_after_s = flush_after_s
        self._pending = bytearray()
        self._pending_since_s = 0.0

    def add(self, frame: bytes, time_s: float) -> list[bytes]:
        """Queue one frame (with its delimiter) that left at device time ``time_s``.

        Returns
        -------
        list of bytes
            Notifications due now, in order (a full one, or the pieces of a large frame).
        """
        out: list[bytes] = []
        if len(self._pending) + len(frame) > self.capacity_bytes:
            out += self.flush()
        if len(frame) > self.capacity_bytes:
            room = self.capacity_bytes
            out += [frame[at : at + room] for at in range(0, len(frame), room)]
            return out
        if not self._pending:
            self._pending_since_s = time_s
        self._pending += frame
        return out

    def due(self, time_s: float) -> list[bytes]:
        """The partly filled notification if its oldest frame has waited long enough at ``time_s``."""
        if self._pending and time_s - self._pending_since_s >= self._flush_after_s - 1e-9:
            return self.flush()
        return []

    def flush(self) -> list[bytes]:
        """Whatever is pending, as one notification (none when nothing is)."""
        if not self._pending:
            return []
        out = [bytes(self._pending)]
        self._pending.clear()
        return out

    def clear(self) -> None:
        """Forget what is pending: a dropped link loses it."""
        self._pending.clear()
