"""Test-local builders of wire frames and recordings (frames without their 0x00 delimiter)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from biofeed.blocks import ChannelKind
from biofeed.protocol import (
    ChannelFormat,
    InfoPayload,
    MarkerPayload,
    Packet,
    PacketType,
    SampleFormat,
    StreamFormat,
    encode_frame,
    encode_samples,
)
from biofeed.record.writer import RecordingWriter

EMG = StreamFormat(
    1,
    "emg",
    SampleFormat.INT24,
    2_000_000,
    (
        ChannelFormat(ChannelKind.EMG, 0.02, "es_left", "erector spinae L1 left"),
        ChannelFormat(ChannelKind.EMG, 0.02, "es_right", "erector spinae L1 right"),
    ),
)
IMU = StreamFormat(
    2,
    "imu_thoracic",
    SampleFormat.INT16,
    100_000,
    tuple(ChannelFormat(ChannelKind.ACC, 1 / 4096, f"acc_{a}") for a in "xyz")
    + tuple(ChannelFormat(ChannelKind.GYRO, 1 / 16, f"gyro_{a}") for a in "xyz"),
)
INFO = InfoPayload((1, 2, 3), "dev-42", "ads1292r", (EMG, IMU))


class FrameFactory:
    """Builds the frames a device would send, numbering them with a device-wide seq."""

    def __init__(self, seed: int = 0) -> None:
        self.seq = 0
        self._rng = np.random.default_rng(seed)

    def frame(self, ptype: int, stream_id: int, first_index: int, payload: bytes) -> bytes:
        packet = Packet(ptype, stream_id, self.seq % 65536, first_index % (1 << 32), payload)
        self.seq += 1
        return encode_frame(packet)[:-1]

    def info(self) -> bytes:
        return self.frame(PacketType.INFO, 0, 0, INFO.to_payload())

    def samples(self, stream: StreamFormat, first_index: int, n_samples: int) -> bytes:
        counts = self._rng.integers(-1000, 1000, size=(len(stream.channels), n_samples))
        ptype = PacketType.EMG if stream is EMG else PacketType.IMU
        return self.frame(ptype, stream.stream_id, first_index, encode_samples(counts, stream.sample_format))

    def marker(self, stream: StreamFormat, index: int, code: int = 1, label: str = "button") -> bytes:
        return self.frame(PacketType.MARKER, stream.stream_id, index, MarkerPayload(code, label).to_payload())


def random_frames(seed: int, n_frames: int) -> list[tuple[bytes, float]]:
    """Frames of random non-zero bytes (any length 1..300) with increasing receive times."""
    rng = np.random.default_rng(seed)
    out = []
    t = 1.7e9
    for _ in range(n_frames):
        frame = rng.integers(1, 256, size=int(rng.integers(1, 300)), dtype=np.uint8).tobytes()
        t += float(rng.uniform(0.0, 0.05))
        out.append((frame, t))
    return out


def write_recording(path: Path, frames: list[tuple[bytes, float]], events: Sequence[Mapping[str, object]] = ()) -> Path:
    """A closed recording holding ``frames`` and ``events``."""
    with RecordingWriter(path, source_url="test://", client="c-01") as writer:
        for frame, received_at in frames:
            writer.append_frame(frame, received_at)
        for event in events:
            writer.append_event(event)
    return path
