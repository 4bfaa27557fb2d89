"""Write the shared test vectors ``vectors.json`` from the Python codec (``biofeed.protocol``).

The C encoder (``firmware_protocol/c``) and the Python codec are held byte-identical by these
vectors; the schema is documented in ``firmware_protocol/README.md``.

Usage::

    python firmware_protocol/vectors/generate.py          # rewrite vectors.json
    python firmware_protocol/vectors/generate.py --check  # exit 1 when vectors.json is out of date
"""

from __future__ import annotations

import argparse
import binascii
import json
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from cobs import cobs

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
    decode_samples,
    encode_frame,
    encode_packet,
    encode_samples,
)

__all__ = ["SCHEMA", "VECTORS_PATH", "build_vectors", "main", "reference_info", "render_vectors"]

SCHEMA = "biofeed-protocol-vectors/1"
VECTORS_PATH = Path(__file__).with_name("vectors.json")
_SEED = 20240611


class _SplitMix64:
    """A tiny seeded PRNG whose stream is fixed forever (numpy's may change between versions), so the
    generator keeps writing the same file."""

    def __init__(self, seed: int) -> None:
        self._state = seed & 0xFFFF_FFFF_FFFF_FFFF

    def _next(self) -> int:
        self._state = (self._state + 0x9E37_79B9_7F4A_7C15) & 0xFFFF_FFFF_FFFF_FFFF
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9) & 0xFFFF_FFFF_FFFF_FFFF
        z = ((z ^ (z >> 27)) * 0x94D0_49BB_1331_11EB) & 0xFFFF_FFFF_FFFF_FFFF
        return z ^ (z >> 31)

    def integers(self, low: int, high: int, shape: tuple[int, ...]) -> npt.NDArray[np.int64]:
        """Integers in [low, high), shape ``shape`` (modulo bias is irrelevant for test vectors)."""
        n = int(np.prod(shape))
        return np.array([low + self._next() % (high - low) for _ in range(n)], dtype=np.int64).reshape(shape)


_FORMAT_NAMES = {SampleFormat.INT16: "int16", SampleFormat.INT24: "int24"}


def _as_float32(value: float) -> float:
    """The value a float32 on the wire carries, so the JSON holds exactly what decodes back."""
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


# Reference device of PROTOCOL.md section 7. The EMG scale is an ADS1292R at gain 6 with its
# 2.42 V reference: one count is 2.42 V / 6 / 2^23.
EMG_SCALE_UV = _as_float32(2.42e6 / 6 / 2**23)
ACC_SCALE_G = _as_float32(1 / 16384)  # MPU6050 at +-2 g
GYRO_SCALE_DPS = _as_float32(1 / 131)  # MPU6050 at +-250 deg/s


def _imu_channels(site: str) -> tuple[ChannelFormat, ...]:
    acc = [ChannelFormat(ChannelKind.ACC, ACC_SCALE_G, f"acc_{axis}", site) for axis in "xyz"]
    gyro = [ChannelFormat(ChannelKind.GYRO, GYRO_SCALE_DPS, f"gyro_{axis}", site) for axis in "xyz"]
    return (*acc, *gyro)


def reference_info() -> InfoPayload:
    """INFO of the reference device (PROTOCOL.md section 7), as the host firmware sends it."""
    emg = StreamFormat(
        stream_id=1,
        name="emg",
        sample_format=SampleFormat.INT24,
        sample_rate_mhz=2_000_000,
        channels=(
            ChannelFormat(ChannelKind.EMG, EMG_SCALE_UV, "es_left", "erector spinae L1 left"),
            ChannelFormat(ChannelKind.EMG, EMG_SCALE_UV, "es_right", "erector spinae L1 right"),
        ),
    )
    thoracic = StreamFormat(2, "imu_thoracic", SampleFormat.INT16, 100_000, _imu_channels("T12/L1"))
    sacral = StreamFormat(3, "imu_sacral", SampleFormat.INT16, 100_000, _imu_channels("S1/S2"))
    return InfoPayload((0, 1, 0), "biofeed-ref-0001", "ads1292r", (emg, thoracic, sacral))


# --- payload fields as JSON ----------------------------------------------------------------------


def _info_fields(info: InfoPayload) -> dict[str, Any]:
    return {
        "firmware_version": list(info.firmware_version),
        "device_id": info.device_id,
        "board_profile": info.board_profile,
        "streams": [
            {
                "stream_id": s.stream_id,
                "name": s.name,
                "sample_format": _FORMAT_NAMES[s.sample_format],
                "sample_rate_mhz": s.sample_rate_mhz,
                "channels": [
                    {"kind": c.kind.value, "scale": c.scale, "name": c.name, "site": c.site} for c in s.channels
                ],
            }
            for s in info.streams
        ],
    }


def _samples_fields(counts: npt.NDArray[np.int64], sample_format: SampleFormat) -> dict[str, Any]:
    return {"sample_format": _FORMAT_NAMES[sample_format], "counts": counts.astype(int).tolist()}


def _status_fields(status: StatusPayload) -> dict[str, Any]:
    return {
        "battery_pct": status.battery_pct,
        "battery_mv": status.battery_mv,
        "lead_off_mask": status.lead_off_mask,
        "saturation_mask": status.saturation_mask,
    }


def _marker_fields(marker: MarkerPayload) -> dict[str, Any]:
    return {"code": marker.code, "label": marker.label}


def _control_fields(control: ControlPayload) -> dict[str, Any]:
    return {"command": control.command.name, "sample_rate_mhz": control.sample_rate_mhz}


# --- vectors -------------------------------------------------------------------------------------


def _valid(name: str, description: str, packet: Packet, payload_fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "type": packet.type,
        "stream_id": packet.stream_id,
        "flags": packet.flags,
        "seq": packet.seq,
        "first_sample_index": packet.first_sample_index,
        "version": list(packet.version),
        "payload": payload_fields,
        "packet_hex": encode_packet(packet).hex(),
        "frame_hex": encode_frame(packet).hex(),
    }


def _samples_vector(
    name: str,
    description: str,
    counts: npt.NDArray[np.int64],
    sample_format: SampleFormat,
    *,
    seq: int,
    first_sample_index: int,
    stream_id: int | None = None,
) -> dict[str, Any]:
    """A sample block: EMG (stream 1) for int24 counts, IMU (stream 2) for int16, unless stream_id says."""
    packet_type = PacketType.EMG if sample_format is SampleFormat.INT24 else PacketType.IMU
    if stream_id is None:
        stream_id = 1 if packet_type is PacketType.EMG else 2
    payload = encode_samples(counts, sample_format)
    packet = Packet(packet_type, stream_id, seq, first_sample_index, payload)
    return _valid(name, description, packet, _samples_fields(counts, sample_format))


def _nonzero_int24_counts(rng: _SplitMix64, n_channels: int, n_samples: int) -> npt.NDArray[np.int64]:
    """int24 counts none of whose three little-endian bytes is 0x00 (a long COBS run)."""
    raw = rng.integers(1, 256, (n_channels, n_samples, 3))
    unsigned = raw[..., 0] | raw[..., 1] << 8 | raw[..., 2] << 16
    return np.asarray(np.where(unsigned >= 1 << 23, unsigned - (1 << 24), unsigned), dtype=np.int64)


def _longest_nonzero_run(raw: bytes) -> int:
    return max(len(run) for run in raw.split(b"\x00"))


def _run_254_at_end_vector(rng: _SplitMix64) -> dict[str, Any]:
    """An EMG block whose packet ends with exactly 254 non-zero bytes after its last 0x00.

    That is the COBS edge case where the last block is a full 0xFF block and no trailing code byte
    follows. Payload: 43 samples x 2 channels = 258 bytes, so the packet is 272 bytes and its last
    zero must sit at offset 17 (payload byte 5: the high byte of sample 0, channel 1).
    """
    for _ in range(10_000):
        counts = _nonzero_int24_counts(rng, 2, 43)
        counts[1, 0] = 0x000101  # high byte 0x00: the last zero of the packet
        packet = Packet(PacketType.EMG, 1, 4321, 86_000, encode_samples(counts, SampleFormat.INT24))
        raw = encode_packet(packet)
        if raw.rfind(b"\x00") == len(raw) - 255:
            return _valid(
                "cobs_run_254_at_end",
                "EMG block whose packet ends with exactly 254 non-zero bytes: the frame ends with a full "
                "0xFF COBS block and no trailing code byte",
                packet,
                _samples_fields(counts, SampleFormat.INT24),
            )
    raise RuntimeError("no EMG block with a 254-byte final run found; change the seed")


def _valid_vectors(rng: _SplitMix64) -> list[dict[str, Any]]:
    info = reference_info()
    emg_extremes = np.array(
        [
            [-8_388_608, 8_388_607, 0, -1, 1, 123_456],
            [8_388_607, -8_388_608, -2, 65_535, -65_536, -123_456],
        ]
    )
    emg_noise = rng.integers(-round(60 / EMG_SCALE_UV), round(60 / EMG_SCALE_UV), (2, 20))  # +-60 µV
    imu_counts = np.array(
        [
            [120, -32_768, 98, 105, 101],  # acc_x
            [-40, 32_767, -35, -44, -38],  # acc_y
            [16_390, 16_377, 16_402, 16_381, 16_388],  # acc_z: 1 g at 16384 counts/g
            [3, -7, 0, 12, -2],  # gyro_x
            [-1, 32_767, 4, -3, 0],  # gyro_y
            [0, -32_768, 1, 1, -1],  # gyro_z
        ]
    )
    imu_max = rng.integers(-32_768, 32_768, (6, 85))
    cobs_run = _nonzero_int24_counts(rng, 2, 50)
    markers = [
        (
            "marker_button_utf8",
            "button MARKER whose label has 2-, 3- and 4-byte UTF-8",
            MarkerPayload(1, "Knöpfe µV ✓ 🙂"),
        ),
        ("marker_host_empty_label", "host-defined MARKER code with an empty label", MarkerPayload(200, "")),
    ]
    controls = [
        ("control_start", "CONTROL START", 0, ControlPayload(ControlCommand.START)),
        ("control_stop", "CONTROL STOP", 0, ControlPayload(ControlCommand.STOP)),
        ("control_request_info", "CONTROL REQUEST_INFO", 0, ControlPayload(ControlCommand.REQUEST_INFO)),
        (
            "control_set_rate",
            "CONTROL SET_RATE of stream 1 to 1000 Hz",
            1,
            ControlPayload(ControlCommand.SET_RATE, 1_000_000),
        ),
    ]

    vectors = [
        _valid(
            "info_reference_device",
            "INFO of the reference device of PROTOCOL.md section 7, as sent at start",
            Packet(PacketType.INFO, 0, 0, 0, info.to_payload()),
            _info_fields(info),
        ),
        _valid(
            "info_reference_device_periodic",
            "the same INFO repeated every second, with the PERIODIC flag",
            Packet(PacketType.INFO, 0, 2_141, 0, info.to_payload(), flags=0x01),
            _info_fields(info),
        ),
        _samples_vector(
            "emg_int24_extremes",
            "EMG int24 block with the format's extremes -8388608 and 8388607 and sign edge cases",
            emg_extremes,
            SampleFormat.INT24,
            seq=1,
            first_sample_index=0,
        ),
        _samples_vector(
            "emg_int24_reference_block",
            "EMG block of the reference size: 20 samples x 2 channels int24 (a 136-byte frame)",
            emg_noise,
            SampleFormat.INT24,
            seq=2,
            first_sample_index=20,
        ),
        _samples_vector(
            "imu_int16_block",
            "IMU block of the reference size: 5 samples x 6 channels int16, with -32768 and 32767",
            imu_counts,
            SampleFormat.INT16,
            seq=3,
            first_sample_index=5,
        ),
        _samples_vector(
            "imu_int16_max_payload",
            "IMU block of 85 samples x 6 channels int16: a 1020-byte payload, near the 1024-byte limit",
            imu_max,
            SampleFormat.INT16,
            stream_id=3,
            seq=4,
            first_sample_index=1_000,
        ),
        _valid(
            "status",
            "STATUS of stream 1: 87 %, 3912 mV, channel 1 lead-off, channel 0 saturated",
            Packet(PacketType.STATUS, 1, 5, 2_000, StatusPayload(87, 3_912, 0b10, 0b01).to_payload()),
            _status_fields(StatusPayload(87, 3_912, 0b10, 0b01)),
        ),
        _valid(
            "status_battery_unknown",
            "STATUS of stream 2 with unknown battery (255 %, 0 mV) and no flags",
            Packet(PacketType.STATUS, 2, 6, 100, StatusPayload().to_payload()),
            _status_fields(StatusPayload()),
        ),
    ]
    for seq, (name, description, marker) in enumerate(markers, start=7):
        vectors.append(
            _valid(
                name,
                description,
                Packet(PacketType.MARKER, 1, seq, 12_345, marker.to_payload()),
                _marker_fields(marker),
            )
        )
    for seq, (name, description, stream_id, control) in enumerate(controls, start=100):
        packet = Packet(PacketType.CONTROL, stream_id, seq, 0, control.to_payload())
        vectors.append(_valid(name, description, packet, _control_fields(control)))
    vectors += [
        _samples_vector(
            "seq_wrap",
            "EMG block with seq 65535, the last value before seq wraps to 0",
            emg_extremes[:, :2],
            SampleFormat.INT24,
            seq=65_535,
            first_sample_index=40_000,
        ),
        _samples_vector(
            "first_sample_index_near_wrap",
            "EMG block starting 10 samples before the u32 sample counter wraps",
            emg_noise,
            SampleFormat.INT24,
            seq=9,
            first_sample_index=2**32 - 10,
        ),
        _samples_vector(
            "cobs_run_over_254",
            "EMG block of 50 samples x 2 channels whose 300-byte payload has no 0x00: COBS needs 0xFF blocks",
            cobs_run,
            SampleFormat.INT24,
            seq=10,
            first_sample_index=60,
        ),
        _run_254_at_end_vector(rng),
        _valid(
            "minor_version_unknown_type",
            "packet of protocol 1.1 with type 0x20, unknown to 1.0: decoded, then skipped as unknown_type",
            Packet(0x20, 0, 11, 0, bytes.fromhex("0102030405"), version=(1, 1)),
            {"raw_hex": "0102030405"},
        ),
    ]
    return vectors


def _invalid(name: str, description: str, reason: str, frame: bytes) -> dict[str, Any]:
    return {"name": name, "description": description, "reason": reason, "frame_hex": (frame + b"\x00").hex()}


def _frame_of(raw: bytes) -> bytes:
    """COBS of raw packet bytes, without the delimiter."""
    return bytes(cobs.encode(raw))


def _control_packet(command: ControlCommand, rate_mhz: int = 0, **fields: Any) -> bytes:
    fields.setdefault("version", (1, 0))
    payload = ControlPayload(command, rate_mhz).to_payload()
    return encode_packet(Packet(PacketType.CONTROL, fields.pop("stream_id", 0), 200, 0, payload, **fields))


def _with_crc(header_and_payload: bytes) -> bytes:
    return header_and_payload + struct.pack("<H", binascii.crc_hqx(header_and_payload, 0))


def _header(version: int, packet_type: int, payload_length: int, stream_id: int = 0) -> bytes:
    return struct.pack("<BBBBHIH", version, packet_type, stream_id, 0, 201, 0, payload_length)


def _invalid_vectors() -> list[dict[str, Any]]:
    start = _control_packet(ControlCommand.START)
    set_rate = _control_packet(ControlCommand.SET_RATE, 1_000_000, stream_id=1)
    bad_crc = start[:-1] + bytes([start[-1] ^ 0x01])
    set_rate_frame = _frame_of(set_rate)
    bad_cobs = bytes([0x7F]) + _frame_of(start)[1:]
    return [
        _invalid("invalid_crc", "CONTROL START whose CRC has one bit flipped", "crc", _frame_of(bad_crc)),
        _invalid(
            "invalid_truncated_frame",
            "CONTROL SET_RATE frame cut 2 bytes short inside its last COBS block",
            "cobs",
            set_rate_frame[:-2],
        ),
        _invalid(
            "invalid_truncated_packet",
            "valid COBS of a CONTROL SET_RATE packet that lost its last 3 bytes",
            "length",
            _frame_of(set_rate[:-3]),
        ),
        _invalid(
            "invalid_bad_cobs", "CONTROL START frame whose first COBS code byte runs past the end", "cobs", bad_cobs
        ),
        _invalid(
            "invalid_too_short",
            "valid COBS of 10 bytes, fewer than a header and a CRC",
            "too_short",
            _frame_of(start[:10]),
        ),
        _invalid(
            "invalid_length_mismatch",
            "CONTROL whose payload_length says 5 but which carries 1 payload byte (CRC valid over what is there)",
            "length",
            _frame_of(_with_crc(_header(0x10, PacketType.CONTROL, 5) + b"\x01")),
        ),
        _invalid(
            "invalid_oversize",
            "CONTROL whose payload_length is 1025, over the 1024-byte limit",
            "oversize",
            _frame_of(_with_crc(_header(0x10, PacketType.CONTROL, 1025) + b"\x01")),
        ),
        _invalid(
            "invalid_major_version",
            "CONTROL START of protocol 2.0 with a valid CRC: refused",
            "major_version",
            _frame_of(_control_packet(ControlCommand.START, version=(2, 0))),
        ),
        _invalid(
            "invalid_control_set_rate_short",
            "CONTROL SET_RATE whose payload ends inside the 4-byte rate",
            "payload",
            _frame_of(_with_crc(_header(0x10, PacketType.CONTROL, 3, stream_id=1) + b"\x04\x40\x42")),
        ),
        _invalid(
            "invalid_control_unknown_command",
            "CONTROL with command 9, unknown to protocol 1.0",
            "payload",
            _frame_of(_with_crc(_header(0x10, PacketType.CONTROL, 1) + b"\x09")),
        ),
        _invalid(
            "invalid_control_empty",
            "CONTROL with an empty payload",
            "payload",
            _frame_of(_with_crc(_header(0x10, PacketType.CONTROL, 0))),
        ),
        _invalid(
            "invalid_payload_size",
            "EMG packet of stream 1 (int24, 2 channels) with a 7-byte payload: not whole sample sets",
            "payload_size",
            _frame_of(_with_crc(_header(0x10, PacketType.EMG, 7, stream_id=1) + bytes(range(1, 8)))),
        ),
    ]


def _check_invalid(vector: dict[str, Any], info: InfoPayload) -> None:
    """Raise RuntimeError unless decoding the vector fails with its reason (keeps the generator honest)."""
    frame = bytes.fromhex(vector["frame_hex"])[:-1]
    formats = {s.stream_id: s for s in info.streams}
    try:
        packet = decode_frame(frame)
        if packet.type == PacketType.CONTROL:
            ControlPayload.from_payload(packet.payload)
        elif packet.type in (PacketType.EMG, PacketType.IMU):
            stream = formats[packet.stream_id]
            decode_samples(packet.payload, stream.sample_format, len(stream.channels))
    except CorruptPacketError as exc:
        if exc.reason != vector["reason"]:
            raise RuntimeError(
                f"{vector['name']}: decoding fails with {exc.reason!r}, not {vector['reason']!r}"
            ) from exc
        return
    raise RuntimeError(f"{vector['name']}: decodes without error")


def build_vectors() -> dict[str, Any]:
    """All vectors as the JSON document (deterministic: seeded)."""
    rng = _SplitMix64(_SEED)
    valid = _valid_vectors(rng)
    invalid = _invalid_vectors()
    info = reference_info()
    for vector in invalid:
        _check_invalid(vector, info)
    names = [v["name"] for v in valid + invalid]
    if len(set(names)) != len(names):
        raise RuntimeError("vector names repeat")
    cobs_vector = next(v for v in valid if v["name"] == "cobs_run_over_254")
    if _longest_nonzero_run(bytes.fromhex(cobs_vector["packet_hex"])) <= 254:
        raise RuntimeError("cobs_run_over_254 has no run over 254 bytes")
    return {
        "schema": SCHEMA,
        "protocol_version": [1, 0],
        "generator": "firmware_protocol/vectors/generate.py",
        "valid": valid,
        "invalid": invalid,
    }


def _render(value: Any, indent: int) -> str:
    """JSON with objects spread over lines and lists of numbers kept on one line (short diffs, short file)."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad}  {json.dumps(key)}: {_render(item, indent + 1)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list):
        if all(not isinstance(item, dict | list) for item in value):
            return "[" + ", ".join(json.dumps(item, ensure_ascii=False) for item in value) + "]"
        items = [f"{pad}  {_render(item, indent + 1)}" for item in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(value, ensure_ascii=False)


def render_vectors() -> str:
    """The text of ``vectors.json`` (UTF-8, ends with a newline)."""
    return _render(build_vectors(), 0) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write or check ``vectors.json``; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only check that vectors.json is up to date")
    parser.add_argument("--output", type=Path, default=VECTORS_PATH, help="where to write (default: %(default)s)")
    args = parser.parse_args(argv)
    text = render_vectors()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date; run {Path(__file__).name} to regenerate it", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
