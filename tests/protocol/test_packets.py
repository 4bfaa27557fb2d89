"""The stateless packet codec: every payload type round-trips; bad fields are refused clearly."""

from __future__ import annotations

import binascii

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from biofeed.blocks import ChannelKind
from biofeed.errors import CorruptPacketError
from biofeed.protocol import (
    ChannelFormat,
    ControlCommand,
    ControlPayload,
    InfoPayload,
    MarkerPayload,
    Packet,
    PacketType,
    SampleFormat,
    StatusPayload,
    StreamFormat,
    decode_frame,
    decode_sample_counts,
    decode_samples,
    encode_frame,
    encode_packet,
    encode_samples,
    unpack_frame,
)

INFO = InfoPayload(
    firmware_version=(1, 2, 3),
    device_id="board-ä1",
    board_profile="ads1292r",
    streams=(
        StreamFormat(
            1,
            "emg",
            SampleFormat.INT24,
            2_000_000,
            (
                ChannelFormat(ChannelKind.EMG, 0.5, "es_left", "erector spinae L1 left"),
                ChannelFormat(ChannelKind.EMG, 0.25, "es_right", ""),
            ),
        ),
        StreamFormat(2, "imu", SampleFormat.INT16, 100_000, (ChannelFormat(ChannelKind.GYRO, 0.125, "gyro_x"),)),
    ),
)


def test_crc_is_xmodem():
    assert binascii.crc_hqx(b"123456789", 0) == 0x31C3


@pytest.mark.parametrize(
    "payload",
    [
        INFO,
        StatusPayload(87, 3950, 0b01, 0b10),
        MarkerPayload(1, "réveil"),
        ControlPayload(ControlCommand.SET_RATE, 1_000_000),
        ControlPayload(ControlCommand.STOP),
    ],
)
def test_payloads_round_trip_through_a_frame(payload):
    packet = Packet(PacketType.INFO, 0, 65535, 2**32 - 1, payload.to_payload(), flags=1)
    frame = encode_frame(packet)
    assert frame.endswith(b"\x00") and b"\x00" not in frame[:-1]
    decoded = decode_frame(frame[:-1])
    assert decoded == packet
    assert Packet(*unpack_frame(frame[:-1])) == packet
    assert type(payload).from_payload(decoded.payload) == payload


def test_info_becomes_device_info_with_units():
    device = INFO.to_device_info()
    emg = device.streams[0]
    assert emg.sample_rate_hz == 2000.0
    assert [c.unit for c in emg.channels] == ["uV", "uV"]
    assert device.streams[1].channels[0].unit == "deg/s"
    assert emg.device_id == "board-ä1" and emg.stream_id == 1


def test_newer_minor_versions_may_append_fields():
    assert StatusPayload.from_payload(StatusPayload(5).to_payload() + b"\x01\x02") == StatusPayload(5)


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (INFO.to_payload()[:-1], "ends inside"),
        (b"\x01\x00\x00\x00\x00\x00", "0 streams"),
        (bytes([1, 0, 0, 5]) + b"ab", "ends inside a string"),
        (bytes([1, 0, 0, 1]) + b"\xc3\x28" + b"\x00\x01", "UTF-8"),
    ],
)
def test_bad_info_is_a_payload_error(payload, detail):
    with pytest.raises(CorruptPacketError, match=detail) as info:
        InfoPayload.from_payload(payload)
    assert info.value.reason == "payload"


def test_unknown_control_command_is_refused():
    with pytest.raises(CorruptPacketError, match="unknown control command"):
        ControlPayload.from_payload(b"\x09")


@pytest.mark.parametrize("fmt", list(SampleFormat))
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_samples_round_trip_at_the_format_limits(fmt, data):
    lo, hi = fmt.count_range
    counts = data.draw(
        hnp.arrays(
            np.int64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8), elements=st.integers(lo, hi)
        )
    )
    payload = encode_samples(counts, fmt)
    assert np.array_equal(decode_samples(payload, fmt, counts.shape[0]), counts)
    assert np.array_equal(decode_sample_counts(payload, fmt), counts.T.reshape(-1))  # sample sets in wire order


def test_samples_are_sample_major_little_endian():
    assert encode_samples(np.array([[1, 2], [-1, 3]]), SampleFormat.INT24) == bytes.fromhex("010000ffffff020000030000")


def test_out_of_range_counts_and_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\[-32768, 32767\]"):
        encode_samples(np.array([[40000]]), SampleFormat.INT16)
    with pytest.raises(ValueError, match="shape"):
        encode_samples(np.array([1, 2]), SampleFormat.INT16)
    with pytest.raises(CorruptPacketError, match="not a multiple") as info:
        decode_samples(b"\x00" * 5, SampleFormat.INT24, 2)
    assert info.value.reason == "payload_size"


def test_header_fields_out_of_range_are_refused():
    with pytest.raises(ValueError, match="out of range"):
        encode_packet(Packet(PacketType.EMG, 1, 70000, 0))
    with pytest.raises(ValueError, match="at most 1024"):
        encode_packet(Packet(PacketType.EMG, 1, 0, 0, b"x" * 1025))
    with pytest.raises(ValueError, match=r"0\.\.15"):
        encode_packet(Packet(PacketType.EMG, 1, 0, 0, version=(16, 0)))


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda raw: raw[:-1], "length"),
        (lambda raw: raw[:10], "too_short"),
        (lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]), "crc"),
    ],
)
def test_damage_is_named(mutate, reason):
    from cobs import cobs

    raw = encode_packet(Packet(PacketType.MARKER, 1, 3, 4, MarkerPayload(1).to_payload()))
    for decode in (decode_frame, unpack_frame):
        with pytest.raises(CorruptPacketError) as info:
            decode(cobs.encode(mutate(raw)))
        assert info.value.reason == reason


def test_frames_too_long_for_any_packet_and_bad_cobs_are_named():
    for decode in (decode_frame, unpack_frame):
        with pytest.raises(CorruptPacketError) as info:
            decode(b"\x01" * 2077)
        assert info.value.reason == "oversize"
        with pytest.raises(CorruptPacketError) as info:
            decode(b"\x05\x01")
        assert info.value.reason == "cobs"
