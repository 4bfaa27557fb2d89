"""Stateless codec of single packets and frames (firmware_protocol/PROTOCOL.md).

``encode_frame(packet)`` gives the bytes a device sends; ``decode_frame(frame)`` turns one frame
(without its 0x00 delimiter) back into a :class:`Packet` or raises :class:`CorruptPacketError`.
The payload of each packet type has its own dataclass with ``to_payload``/``from_payload``.
No I/O here, and no state: the stateful stream decoder is :mod:`biofeed.protocol.decoder`.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
from cobs import cobs

from biofeed.blocks import UNIT_BY_KIND, ChannelInfo, ChannelKind, DeviceInfo, StreamInfo
from biofeed.errors import CorruptPacketError

__all__ = [
    "CORRUPT_REASONS",
    "HEADER_SIZE",
    "MAX_PAYLOAD_BYTES",
    "PROTOCOL_VERSION",
    "ChannelFormat",
    "ControlCommand",
    "ControlPayload",
    "InfoPayload",
    "MarkerPayload",
    "Packet",
    "PacketFields",
    "PacketType",
    "SampleFormat",
    "StatusPayload",
    "StreamFormat",
    "decode_frame",
    "decode_packet",
    "decode_sample_counts",
    "decode_samples",
    "encode_frame",
    "encode_packet",
    "encode_samples",
    "unpack_frame",
    "unpack_packet",
]

PROTOCOL_VERSION: tuple[int, int] = (1, 0)
"""(major, minor) of the protocol this module speaks."""

MAX_PAYLOAD_BYTES = 1024
HEADER_SIZE = 12
_CRC_SIZE = 2
_HEADER = struct.Struct("<BBBBHIH")
_CRC = struct.Struct("<H")

CORRUPT_REASONS: tuple[str, ...] = (
    "cobs",  # the frame is not valid COBS
    "too_short",  # fewer bytes than a header and a CRC
    "length",  # decoded size disagrees with payload_length
    "oversize",  # payload_length or frame beyond MAX_PAYLOAD_BYTES
    "crc",  # CRC mismatch
    "payload",  # a payload that does not parse for its type
    "payload_size",  # sample payload not a multiple of the sample size
    "major_version",  # another major protocol version (refused, not damaged)
    "unknown_type",  # a packet type from a newer minor version (skipped)
)
"""Machine-readable reasons a frame is not decoded (keys of ``DecoderStats.corrupt``)."""


class PacketType(IntEnum):
    """Packet types of protocol 1.0."""

    INFO = 0x01
    EMG = 0x02
    IMU = 0x03
    STATUS = 0x04
    MARKER = 0x05
    CONTROL = 0x10


class SampleFormat(IntEnum):
    """On-wire sample encodings; the value's ``bytes_per_sample`` gives the size."""

    INT16 = 1
    INT24 = 2

    @property
    def bytes_per_sample(self) -> int:
        """Bytes one sample of one channel takes."""
        return 2 if self is SampleFormat.INT16 else 3

    @property
    def count_range(self) -> tuple[int, int]:
        """Smallest and largest count the format holds."""
        bits = 8 * self.bytes_per_sample
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


class ControlCommand(IntEnum):
    """Host -> device commands."""

    START = 1
    STOP = 2
    REQUEST_INFO = 3
    SET_RATE = 4


_KIND_CODES: dict[ChannelKind, int] = {
    ChannelKind.EMG: 1,
    ChannelKind.ACC: 2,
    ChannelKind.GYRO: 3,
    ChannelKind.MAG: 4,
    ChannelKind.QUAT: 5,
    ChannelKind.ANGLE: 6,
}
_KINDS_BY_CODE = {code: kind for kind, code in _KIND_CODES.items()}


@dataclass(frozen=True)
class Packet:
    """A decoded frame: header fields and payload, still in device units.

    Attributes
    ----------
    type : int
        Packet type (a :class:`PacketType` value, or an unknown code from a newer minor version).
    stream_id : int
        Stream the packet belongs to (0 for device-level packets).
    seq : int
        Device-wide packet counter (u16).
    first_sample_index : int
        Device sample counter at the first sample (u32, wrapped).
    payload : bytes
        The payload.
    flags : int
        Header flags (bit 0: periodic INFO).
    version : tuple of int
        (major, minor) protocol version.
    """

    type: int
    stream_id: int
    seq: int
    first_sample_index: int
    payload: bytes = b""
    flags: int = 0
    version: tuple[int, int] = PROTOCOL_VERSION


def encode_packet(packet: Packet) -> bytes:
    """Encode a packet to its bytes (header, payload, CRC), before COBS framing.

    Raises
    ------
    ValueError
        A header field out of its range, or a payload over ``MAX_PAYLOAD_BYTES``.
    """
    major, minor = packet.version
    if not (0 <= major <= 15 and 0 <= minor <= 15):
        raise ValueError(f"version must be two numbers 0..15, got {packet.version}")
    if len(packet.payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload is {len(packet.payload)} bytes; at most {MAX_PAYLOAD_BYTES} allowed")
    try:
        header = _HEADER.pack(
            major << 4 | minor,
            packet.type,
            packet.stream_id,
            packet.flags,
            packet.seq,
            packet.first_sample_index,
            len(packet.payload),
        )
    except struct.error as exc:
        raise ValueError(f"header field out of range in {packet!r}: {exc}") from None
    body = header + packet.payload
    return body + _CRC.pack(binascii.crc_hqx(body, 0))


def encode_frame(packet: Packet) -> bytes:
    """Encode a packet as a frame on the wire: COBS-encoded bytes and one 0x00 delimiter."""
    encoded: bytes = cobs.encode(encode_packet(packet))
    return encoded + b"\x00"


PacketFields: TypeAlias = tuple[int, int, int, int, bytes, int, tuple[int, int]]
"""The fields of a :class:`Packet` in its field order: ``Packet(*fields)`` is the packet."""

_MAX_FRAME_BYTES = 2 * (HEADER_SIZE + MAX_PAYLOAD_BYTES + _CRC_SIZE)
_VERSIONS = tuple((byte >> 4, byte & 0x0F) for byte in range(256))


def unpack_packet(raw: bytes) -> PacketFields:
    """Decode packet bytes (after COBS decoding) into the fields of a :class:`Packet`, without building one.

    For per-frame loops, where building the frozen dataclass would cost more than the decoding;
    :func:`decode_packet` is ``Packet(*unpack_packet(raw))``.

    Raises
    ------
    CorruptPacketError
        With ``reason`` one of ``too_short``, ``oversize``, ``length``, ``crc``, ``major_version``.
    """
    if len(raw) < HEADER_SIZE + _CRC_SIZE:
        raise CorruptPacketError("too_short", f"{len(raw)} bytes")
    version, ptype, stream_id, flags, seq, first_index, payload_length = _HEADER.unpack_from(raw)
    if payload_length > MAX_PAYLOAD_BYTES:
        raise CorruptPacketError("oversize", f"payload_length {payload_length}")
    end = HEADER_SIZE + payload_length
    if len(raw) != end + _CRC_SIZE:
        raise CorruptPacketError("length", f"{len(raw)} bytes for payload_length {payload_length}")
    if _CRC.unpack_from(raw, end)[0] != binascii.crc_hqx(raw[:end], 0):
        raise CorruptPacketError("crc")
    major_minor = _VERSIONS[version]
    if major_minor[0] != PROTOCOL_VERSION[0]:
        raise CorruptPacketError("major_version", f"protocol {major_minor[0]}.{major_minor[1]}")
    return ptype, stream_id, seq, first_index, bytes(raw[HEADER_SIZE:end]), flags, major_minor


def decode_packet(raw: bytes) -> Packet:
    """Decode packet bytes (after COBS decoding) into a :class:`Packet`.

    Raises
    ------
    CorruptPacketError
        With ``reason`` one of ``too_short``, ``oversize``, ``length``, ``crc``, ``major_version``.
    """
    return Packet(*unpack_packet(raw))


def unpack_frame(frame: bytes) -> PacketFields:
    """Decode one frame (COBS bytes without the 0x00 delimiter) into the fields of a :class:`Packet`.

    :func:`decode_frame` is ``Packet(*unpack_frame(frame))``.

    Raises
    ------
    CorruptPacketError
        ``oversize`` for a frame longer than any packet can encode to, ``cobs`` when the frame is
        not valid COBS, else as :func:`unpack_packet`.
    """
    if len(frame) > _MAX_FRAME_BYTES:
        raise CorruptPacketError("oversize", f"frame of {len(frame)} bytes")
    try:
        raw = cobs.decode(frame)
    except cobs.DecodeError as exc:
        raise CorruptPacketError("cobs", str(exc)) from None
    return unpack_packet(raw)


def decode_frame(frame: bytes) -> Packet:
    """Decode one frame (COBS bytes without the 0x00 delimiter) into a :class:`Packet`.

    Raises
    ------
    CorruptPacketError
        As :func:`unpack_frame`.
    """
    return Packet(*unpack_frame(frame))


# --- payloads -------------------------------------------------------------------------------


class _Reader:
    """Cursor over a payload; every read failure is a ``payload`` CorruptPacketError."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def unpack(self, fmt: struct.Struct) -> tuple[int | float, ...]:
        if self._pos + fmt.size > len(self._data):
            raise CorruptPacketError("payload", "payload ends inside a field")
        values = fmt.unpack_from(self._data, self._pos)
        self._pos += fmt.size
        return values

    def u8(self) -> int:
        return int(self.unpack(_U8)[0])

    def string(self) -> str:
        n = self.u8()
        if self._pos + n > len(self._data):
            raise CorruptPacketError("payload", "payload ends inside a string")
        raw = self._data[self._pos : self._pos + n]
        self._pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CorruptPacketError("payload", "string is not UTF-8") from None


_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_F32 = struct.Struct("<f")
_STATUS = struct.Struct("<BHHH")


def _pack_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 255:
        raise ValueError(f"string {text[:20]!r}... is {len(raw)} bytes in UTF-8; at most 255 allowed")
    return _U8.pack(len(raw)) + raw


@dataclass(frozen=True)
class ChannelFormat:
    """One channel as described in INFO.

    Attributes
    ----------
    kind : ChannelKind
        What it measures.
    scale : float
        Physical units per count.
    name : str
        Channel name.
    site : str
        Placement; may be empty.
    """

    kind: ChannelKind
    scale: float
    name: str
    site: str = ""


@dataclass(frozen=True)
class StreamFormat:
    """One stream as described in INFO.

    Attributes
    ----------
    stream_id : int
        Id on the wire, 1..255.
    name : str
        Stream name.
    sample_format : SampleFormat
        How samples are encoded.
    sample_rate_mhz : int
        Nominal rate in millihertz (integer on the wire).
    channels : tuple of ChannelFormat
        The channels.
    """

    stream_id: int
    name: str
    sample_format: SampleFormat
    sample_rate_mhz: int
    channels: tuple[ChannelFormat, ...]

    @property
    def sample_rate_hz(self) -> float:
        """Nominal rate in Hz."""
        return self.sample_rate_mhz / 1000.0

    @property
    def bytes_per_sample_set(self) -> int:
        """Bytes of one sample of every channel."""
        return self.sample_format.bytes_per_sample * len(self.channels)

    @property
    def scales(self) -> npt.NDArray[np.float64]:
        """Per-channel scale as a column vector, shape (n_channels, 1)."""
        return np.array([[c.scale] for c in self.channels], dtype=np.float64)

    def to_stream_info(self, device_id: str) -> StreamInfo:
        """The :class:`StreamInfo` of this stream on device ``device_id``.

        Each channel's ``full_scale`` is the sample format's count range times the channel's scale as
        the wire carries it (float32): exactly the values the decoder gives for the extreme counts.
        """
        counts = self.sample_format.count_range
        return StreamInfo(
            name=self.name,
            sample_rate_hz=self.sample_rate_hz,
            channels=tuple(
                ChannelInfo(c.name, c.kind, UNIT_BY_KIND[c.kind], c.site, _full_scale(counts, c.scale))
                for c in self.channels
            ),
            device_id=device_id,
            stream_id=self.stream_id,
        )


def _full_scale(counts: tuple[int, int], scale: float) -> tuple[float, float]:
    """The (lowest, highest) physical value of counts in ``counts`` at ``scale`` (float32 on the wire)."""
    wire_scale = float(np.float32(scale))
    ends = (counts[0] * wire_scale, counts[1] * wire_scale)
    return min(ends), max(ends)


@dataclass(frozen=True)
class InfoPayload:
    """Payload of an INFO packet."""

    firmware_version: tuple[int, int, int]
    device_id: str
    board_profile: str
    streams: tuple[StreamFormat, ...]

    def to_payload(self) -> bytes:
        """Encode as INFO payload bytes."""
        parts = [bytes(self.firmware_version), _pack_string(self.device_id), _pack_string(self.board_profile)]
        parts.append(_U8.pack(len(self.streams)))
        for s in self.streams:
            parts += [_U8.pack(s.stream_id), _pack_string(s.name), _U8.pack(s.sample_format)]
            parts += [_U32.pack(s.sample_rate_mhz), _U8.pack(len(s.channels))]
            for c in s.channels:
                parts += [_U8.pack(_KIND_CODES[c.kind]), _F32.pack(c.scale), _pack_string(c.name), _pack_string(c.site)]
        return b"".join(parts)

    @classmethod
    def from_payload(cls, payload: bytes) -> InfoPayload:
        """Parse INFO payload bytes.

        Raises
        ------
        CorruptPacketError
            ``payload`` when the bytes do not describe a valid device.
        """
        r = _Reader(payload)
        firmware = (r.u8(), r.u8(), r.u8())
        device_id = r.string()
        board_profile = r.string()
        n_streams = r.u8()
        if not 1 <= n_streams <= 8:
            raise CorruptPacketError("payload", f"INFO with {n_streams} streams")
        streams = []
        for _ in range(n_streams):
            stream_id = r.u8()
            name = r.string()
            fmt_code = r.u8()
            (rate_mhz,) = r.unpack(_U32)
            n_channels = r.u8()
            if fmt_code not in SampleFormat._value2member_map_:
                raise CorruptPacketError("payload", f"unknown sample format {fmt_code}")
            if stream_id == 0 or rate_mhz == 0 or not 1 <= n_channels <= 16:
                raise CorruptPacketError(
                    "payload", f"bad stream {stream_id}: rate {rate_mhz} mHz, {n_channels} channels"
                )
            channels = []
            for _ in range(n_channels):
                kind_code = r.u8()
                (scale,) = r.unpack(_F32)
                if kind_code not in _KINDS_BY_CODE:
                    raise CorruptPacketError("payload", f"unknown channel kind {kind_code}")
                if not (np.isfinite(scale) and scale != 0.0):
                    raise CorruptPacketError("payload", f"channel scale {scale}")
                channels.append(ChannelFormat(_KINDS_BY_CODE[kind_code], float(scale), r.string(), r.string()))
            streams.append(StreamFormat(stream_id, name, SampleFormat(fmt_code), int(rate_mhz), tuple(channels)))
        if len({s.stream_id for s in streams}) != len(streams):
            raise CorruptPacketError("payload", "INFO repeats a stream id")
        return cls(firmware, device_id, board_profile, tuple(streams))

    def to_device_info(self, protocol_version: tuple[int, int] = PROTOCOL_VERSION) -> DeviceInfo:
        """The :class:`DeviceInfo` this payload describes."""
        return DeviceInfo(
            device_id=self.device_id,
            firmware_version=self.firmware_version,
            board_profile=self.board_profile,
            streams=tuple(s.to_stream_info(self.device_id) for s in self.streams),
            protocol_version=protocol_version,
        )


@dataclass(frozen=True)
class StatusPayload:
    """Payload of a STATUS packet (masks: bit i = channel i)."""

    battery_pct: int = 255
    battery_mv: int = 0
    lead_off_mask: int = 0
    saturation_mask: int = 0

    def to_payload(self) -> bytes:
        """Encode as STATUS payload bytes."""
        return _STATUS.pack(self.battery_pct, self.battery_mv, self.lead_off_mask, self.saturation_mask)

    @classmethod
    def from_payload(cls, payload: bytes) -> StatusPayload:
        """Parse STATUS payload bytes (bytes beyond the known fields are ignored)."""
        pct, mv, lead_off, saturation = _Reader(payload).unpack(_STATUS)
        return cls(int(pct), int(mv), int(lead_off), int(saturation))


@dataclass(frozen=True)
class MarkerPayload:
    """Payload of a MARKER packet."""

    code: int
    label: str = ""

    def to_payload(self) -> bytes:
        """Encode as MARKER payload bytes."""
        return _U8.pack(self.code) + _pack_string(self.label)

    @classmethod
    def from_payload(cls, payload: bytes) -> MarkerPayload:
        """Parse MARKER payload bytes."""
        r = _Reader(payload)
        return cls(r.u8(), r.string())


@dataclass(frozen=True)
class ControlPayload:
    """Payload of a CONTROL packet (host -> device)."""

    command: ControlCommand
    sample_rate_mhz: int = 0

    def to_payload(self) -> bytes:
        """Encode as CONTROL payload bytes."""
        payload = _U8.pack(self.command)
        if self.command is ControlCommand.SET_RATE:
            payload += _U32.pack(self.sample_rate_mhz)
        return payload

    @classmethod
    def from_payload(cls, payload: bytes) -> ControlPayload:
        """Parse CONTROL payload bytes."""
        r = _Reader(payload)
        code = r.u8()
        if code not in ControlCommand._value2member_map_:
            raise CorruptPacketError("payload", f"unknown control command {code}")
        command = ControlCommand(code)
        rate = int(r.unpack(_U32)[0]) if command is ControlCommand.SET_RATE else 0
        return cls(command, rate)


def encode_samples(counts: npt.ArrayLike, sample_format: SampleFormat) -> bytes:
    """Encode integer counts, shape (n_channels, n_samples), as a sample payload.

    Raises
    ------
    ValueError
        Counts not 2-D or outside the format's range.
    """
    values = np.asarray(counts)
    if values.ndim != 2:
        raise ValueError(f"counts must have shape (n_channels, n_samples), got {values.shape}")
    lo, hi = sample_format.count_range
    if values.size and (values.min() < lo or values.max() > hi):
        raise ValueError(f"counts must lie in [{lo}, {hi}] for {sample_format.name}")
    interleaved = np.ascontiguousarray(values.T, dtype="<i4")
    if sample_format is SampleFormat.INT16:
        return interleaved.astype("<i2").tobytes()
    return interleaved.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def decode_sample_counts(payload: bytes, sample_format: SampleFormat) -> npt.NDArray[np.int16] | npt.NDArray[np.int32]:
    """Decode sample bytes to counts in wire order (sample sets one after another), without size checks.

    A trailing partial sample is ignored. :func:`decode_samples` checks and shapes these; the
    stream decoder decodes the payloads of many packets of one stream in one call.
    """
    if sample_format is SampleFormat.INT16:
        return np.frombuffer(payload, dtype="<i2", count=len(payload) // 2)
    # Read each 3-byte sample as the top three bytes of a little-endian int32 (one leading pad
    # byte, stride 3), then an arithmetic shift sign-extends: 2.5x faster than assembling bytes.
    padded = b"\x00" + bytes(payload)
    return np.ndarray((len(payload) // 3,), dtype="<i4", buffer=padded, strides=(3,)) >> 8


def decode_samples(payload: bytes, sample_format: SampleFormat, n_channels: int) -> npt.NDArray[np.int32]:
    """Decode a sample payload to counts, shape (n_channels, n_samples).

    Raises
    ------
    CorruptPacketError
        ``payload_size`` when the payload is empty or not whole sample sets.
    """
    set_size = sample_format.bytes_per_sample * n_channels
    if not payload or len(payload) % set_size:
        raise CorruptPacketError("payload_size", f"{len(payload)} bytes is not a multiple of {set_size}")
    counts = decode_sample_counts(payload, sample_format).astype(np.int32, copy=False)
    return counts.reshape(-1, n_channels).T
