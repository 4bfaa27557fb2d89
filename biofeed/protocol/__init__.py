"""Sans-I/O codec of the biofeed wire protocol (firmware_protocol/PROTOCOL.md).

No serial, bleak or socket imports: bytes in, packets and blocks out.
"""

from biofeed.protocol.decoder import Decoder, DecoderStats, FrameSplitter, Item, StreamStats
from biofeed.protocol.packets import (
    CORRUPT_REASONS,
    PROTOCOL_VERSION,
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
    decode_packet,
    decode_samples,
    encode_frame,
    encode_packet,
    encode_samples,
)

__all__ = [
    "CORRUPT_REASONS",
    "PROTOCOL_VERSION",
    "ChannelFormat",
    "ControlCommand",
    "ControlPayload",
    "Decoder",
    "DecoderStats",
    "FrameSplitter",
    "InfoPayload",
    "Item",
    "MarkerPayload",
    "Packet",
    "PacketType",
    "SampleFormat",
    "StatusPayload",
    "StreamFormat",
    "StreamStats",
    "decode_frame",
    "decode_packet",
    "decode_samples",
    "encode_frame",
    "encode_packet",
    "encode_samples",
]
