"""The shared vectors (firmware_protocol/vectors/vectors.json) against the Python codec.

The vectors are read here with code of their own, not generate.py's, so a change to the codec, the
generator or the file shows up as a mismatch; a separate test checks the file has not drifted from
what generate.py writes.
"""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from biofeed.blocks import ChannelKind
from biofeed.errors import CorruptPacketError
from biofeed.protocol import (
    CORRUPT_REASONS,
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
    decode_samples,
    encode_frame,
    encode_packet,
    encode_samples,
)

VECTORS_DIR = Path(__file__).resolve().parents[2] / "firmware_protocol" / "vectors"
VECTORS = json.loads((VECTORS_DIR / "vectors.json").read_text(encoding="utf-8"))
VALID: list[dict[str, Any]] = VECTORS["valid"]
INVALID: list[dict[str, Any]] = VECTORS["invalid"]
FORMATS = {"int16": SampleFormat.INT16, "int24": SampleFormat.INT24}
SAMPLE_TYPES = (PacketType.EMG, PacketType.IMU)


def _by_name(name: str) -> dict[str, Any]:
    return next(v for v in VALID if v["name"] == name)


def _payload_bytes(vector: dict[str, Any]) -> bytes:
    """Encode the vector's structured payload with the codec's payload classes."""
    fields = vector["payload"]
    ptype = vector["type"]
    if ptype == PacketType.INFO:
        streams = tuple(
            StreamFormat(
                s["stream_id"],
                s["name"],
                FORMATS[s["sample_format"]],
                s["sample_rate_mhz"],
                tuple(ChannelFormat(ChannelKind(c["kind"]), c["scale"], c["name"], c["site"]) for c in s["channels"]),
            )
            for s in fields["streams"]
        )
        info = InfoPayload(tuple(fields["firmware_version"]), fields["device_id"], fields["board_profile"], streams)
        return info.to_payload()
    if ptype in SAMPLE_TYPES:
        return encode_samples(np.array(fields["counts"]), FORMATS[fields["sample_format"]])
    if ptype == PacketType.STATUS:
        return StatusPayload(**fields).to_payload()
    if ptype == PacketType.MARKER:
        return MarkerPayload(**fields).to_payload()
    if ptype == PacketType.CONTROL:
        return ControlPayload(ControlCommand[fields["command"]], fields["sample_rate_mhz"]).to_payload()
    return bytes.fromhex(fields["raw_hex"])


def _packet(vector: dict[str, Any]) -> Packet:
    return Packet(
        type=vector["type"],
        stream_id=vector["stream_id"],
        seq=vector["seq"],
        first_sample_index=vector["first_sample_index"],
        payload=_payload_bytes(vector),
        flags=vector["flags"],
        version=tuple(vector["version"]),
    )


def _decoded_fields(packet: Packet) -> dict[str, Any]:
    """The structured payload of a decoded packet, in the vectors' schema."""
    if packet.type == PacketType.INFO:
        info = InfoPayload.from_payload(packet.payload)
        return {
            "firmware_version": list(info.firmware_version),
            "device_id": info.device_id,
            "board_profile": info.board_profile,
            "streams": [
                {
                    "stream_id": s.stream_id,
                    "name": s.name,
                    "sample_format": s.sample_format.name.lower(),
                    "sample_rate_mhz": s.sample_rate_mhz,
                    "channels": [
                        {"kind": c.kind.value, "scale": c.scale, "name": c.name, "site": c.site} for c in s.channels
                    ],
                }
                for s in info.streams
            ],
        }
    if packet.type == PacketType.STATUS:
        status = StatusPayload.from_payload(packet.payload)
        return {
            "battery_pct": status.battery_pct,
            "battery_mv": status.battery_mv,
            "lead_off_mask": status.lead_off_mask,
            "saturation_mask": status.saturation_mask,
        }
    if packet.type == PacketType.MARKER:
        marker = MarkerPayload.from_payload(packet.payload)
        return {"code": marker.code, "label": marker.label}
    if packet.type == PacketType.CONTROL:
        control = ControlPayload.from_payload(packet.payload)
        return {"command": control.command.name, "sample_rate_mhz": control.sample_rate_mhz}
    return {"raw_hex": packet.payload.hex()}


def _reference_formats() -> dict[int, StreamFormat]:
    info = InfoPayload.from_payload(
        decode_frame(bytes.fromhex(_by_name("info_reference_device")["frame_hex"])[:-1]).payload
    )
    return {s.stream_id: s for s in info.streams}


@pytest.mark.parametrize("vector", VALID, ids=[v["name"] for v in VALID])
def test_codec_encodes_each_valid_vector_to_its_bytes(vector: dict[str, Any]) -> None:
    packet = _packet(vector)
    assert encode_packet(packet).hex() == vector["packet_hex"]
    assert encode_frame(packet).hex() == vector["frame_hex"]


@pytest.mark.parametrize("vector", VALID, ids=[v["name"] for v in VALID])
def test_codec_decodes_each_valid_vector_to_its_fields(vector: dict[str, Any]) -> None:
    frame = bytes.fromhex(vector["frame_hex"])
    assert frame.endswith(b"\x00")
    assert b"\x00" not in frame[:-1]
    packet = decode_frame(frame[:-1])
    header = (packet.type, packet.stream_id, packet.flags, packet.seq, packet.first_sample_index, list(packet.version))
    expected = tuple(vector[k] for k in ("type", "stream_id", "flags", "seq", "first_sample_index", "version"))
    assert header == expected
    if packet.type in SAMPLE_TYPES:
        fields = vector["payload"]
        n_channels = len(fields["counts"])
        counts = decode_samples(packet.payload, FORMATS[fields["sample_format"]], n_channels)
        assert counts.tolist() == fields["counts"]
    else:
        # Scales in the file are float32 values, so they come back exactly.
        assert _decoded_fields(packet) == vector["payload"]


@pytest.mark.parametrize("vector", INVALID, ids=[v["name"] for v in INVALID])
def test_codec_rejects_each_invalid_vector_with_its_reason(vector: dict[str, Any]) -> None:
    assert vector["reason"] in CORRUPT_REASONS
    frame = bytes.fromhex(vector["frame_hex"])
    assert frame.endswith(b"\x00")
    assert b"\x00" not in frame[:-1]
    with pytest.raises(CorruptPacketError) as caught:
        packet = decode_frame(frame[:-1])
        # Payload-level reasons show only when the payload is parsed for its type and stream.
        if packet.type == PacketType.CONTROL:
            ControlPayload.from_payload(packet.payload)
        elif packet.type in SAMPLE_TYPES:
            stream = _reference_formats()[packet.stream_id]
            decode_samples(packet.payload, stream.sample_format, len(stream.channels))
    assert caught.value.reason == vector["reason"]


def test_vectors_cover_what_the_spec_asks_for() -> None:
    names = {v["name"] for v in VALID + INVALID}
    assert len(names) == len(VALID) + len(INVALID), "vector names repeat"
    reasons = {v["reason"] for v in INVALID}
    assert {"crc", "cobs", "too_short", "length", "major_version", "payload_size"} <= reasons
    commands = {v["payload"]["command"] for v in VALID if v["type"] == PacketType.CONTROL}
    assert commands == {c.name for c in ControlCommand}
    assert _by_name("control_set_rate")["payload"]["sample_rate_mhz"] > 0
    assert any(v["seq"] == 65535 for v in VALID)
    assert any(v["first_sample_index"] >= 2**32 - 20 for v in VALID)
    assert any(v["version"] == [1, 1] and v["type"] not in set(PacketType) for v in VALID)
    counts = np.array(_by_name("emg_int24_extremes")["payload"]["counts"])
    assert counts.min() == -8388608
    assert counts.max() == 8388607
    packets = [bytes.fromhex(v["packet_hex"]) for v in VALID]
    assert max(len(run) for p in packets for run in p.split(b"\x00")) > 254
    assert any(bytes.fromhex(v["frame_hex"])[-256] == 0xFF for v in VALID if len(v["frame_hex"]) > 512)
    marker_labels = [v["payload"]["label"] for v in VALID if v["type"] == PacketType.MARKER]
    assert any(len(label.encode("utf-8")) > len(label) for label in marker_labels)


def test_reference_info_is_the_device_of_section_7() -> None:
    formats = _reference_formats()
    assert sorted(formats) == [1, 2, 3]
    emg, thoracic, sacral = formats[1], formats[2], formats[3]
    assert (emg.name, emg.sample_format, emg.sample_rate_mhz, len(emg.channels)) == (
        "emg",
        SampleFormat.INT24,
        2_000_000,
        2,
    )
    assert [c.name for c in emg.channels] == ["es_left", "es_right"]
    f32 = struct.Struct("<f")
    for imu, name in ((thoracic, "imu_thoracic"), (sacral, "imu_sacral")):
        assert (imu.name, imu.sample_format, imu.sample_rate_mhz) == (name, SampleFormat.INT16, 100_000)
        assert [c.kind for c in imu.channels] == [ChannelKind.ACC] * 3 + [ChannelKind.GYRO] * 3
        assert {c.scale for c in imu.channels[:3]} == {f32.unpack(f32.pack(1 / 16384))[0]}
        assert {c.scale for c in imu.channels[3:]} == {f32.unpack(f32.pack(1 / 131))[0]}
    # Frame sizes of section 7: EMG 136 bytes, IMU 76 bytes.
    assert len(bytes.fromhex(_by_name("emg_int24_reference_block")["frame_hex"])) == 136
    assert len(bytes.fromhex(_by_name("imu_int16_block")["frame_hex"])) == 76


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("firmware_protocol_vectors_generate", VECTORS_DIR / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_reproduces_the_committed_file_exactly() -> None:
    generator = _load_generator()
    assert generator.render_vectors() == (VECTORS_DIR / "vectors.json").read_text(encoding="utf-8")
    assert generator.main(["--check"]) == 0


def test_generator_check_notices_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "vectors.json"
    stale.write_text((VECTORS_DIR / "vectors.json").read_text(encoding="utf-8").replace('"seq": 65535', '"seq": 65534'))
    assert _load_generator().main(["--check", "--output", str(stale)]) == 1
