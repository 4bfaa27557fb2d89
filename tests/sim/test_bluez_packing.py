"""Notification packing as PROTOCOL.md 6.2 describes the firmware's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeed.sim.bluez_packing import FLUSH_AFTER_S, NotificationPacker
from biofeed.sim.device import SimulatedDevice


def _frame(n_bytes: int, fill: int = 7) -> bytes:
    return bytes([fill]) * (n_bytes - 1) + b"\x00"


def test_frames_are_packed_whole_until_the_next_would_not_fit() -> None:
    packer = NotificationPacker(247)  # 244 bytes per notification
    assert packer.capacity_bytes == 244
    assert packer.add(_frame(137), 0.0) == []
    assert packer.add(_frame(77), 0.0) == []  # 214 bytes pending
    out = packer.add(_frame(77, 9), 0.0)  # 291 would not fit
    assert out == [_frame(137) + _frame(77)]
    assert packer.flush() == [_frame(77, 9)]
    assert packer.flush() == []


def test_a_partly_filled_notification_leaves_after_20_ms() -> None:
    packer = NotificationPacker(247)
    packer.add(_frame(50), 1.000)
    assert packer.due(1.000 + FLUSH_AFTER_S / 2) == []
    packer.add(_frame(50, 8), 1.015)
    assert packer.due(1.000 + FLUSH_AFTER_S) == [_frame(50) + _frame(50, 8)]


def test_a_frame_larger_than_a_notification_goes_alone_split_in_pieces() -> None:
    packer = NotificationPacker(247)
    packer.add(_frame(40), 0.0)
    info = bytes(range(1, 256)) + bytes(range(1, 131)) + b"\x00"  # 386 bytes, like the reference INFO
    out = packer.add(info, 0.0)
    assert out == [_frame(40), info[:244], info[244:]]
    assert packer.flush() == []


def test_clear_loses_what_is_pending() -> None:
    packer = NotificationPacker(100)
    packer.add(_frame(30), 0.0)
    packer.clear()
    assert packer.flush() == []


@pytest.mark.parametrize("mtu", [22, 518])
def test_an_mtu_outside_the_att_range_is_refused(mtu: int) -> None:
    with pytest.raises(ValueError, match=r"23\.\.517"):
        NotificationPacker(mtu)


@settings(max_examples=30, deadline=None)
@given(mtu=st.integers(23, 517), seed=st.integers(0, 2**16))
def test_packing_keeps_every_byte_in_order_and_frames_whole(mtu: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    packer = NotificationPacker(mtu)
    frames = [_frame(int(rng.integers(2, 600)), int(rng.integers(1, 256))) for _ in range(60)]
    notifications: list[bytes] = []
    for i, frame in enumerate(frames):
        notifications += packer.add(frame, i * 0.004)
        notifications += packer.due(i * 0.004)
    notifications += packer.flush()
    assert b"".join(notifications) == b"".join(frames)
    assert all(0 < len(n) <= mtu - 3 for n in notifications)
    boundaries = set(np.cumsum([len(f) for f in frames]).tolist())
    offset = 0
    for note in notifications:
        offset += len(note)
        if not note.endswith(b"\x00"):  # only a piece of a frame too large for one notification
            assert offset not in boundaries


def test_the_simulated_device_fits_its_sample_frames_in_a_247_byte_mtu() -> None:
    device = SimulatedDevice("rest", duration_s=2.0)
    packer = NotificationPacker(247)
    notifications: list[bytes] = []
    for emitted in device.timed_frames_until(2.0):
        notifications += packer.add(emitted.data, emitted.device_time_s)
    notifications += packer.flush()
    split = [n for n in notifications if not n.endswith(b"\x00")]
    # only INFO (sent at 0 s and 1 s) is larger than a notification
    assert len(split) == 2
