"""Decoder throughput on a reference-device stream, against the fastest links it must keep up with.

The stream is what the reference device of PROTOCOL.md section 7 sends: one int24 EMG stream at
2 kHz (2 channels, 20 samples per packet) and two int16 IMU streams at 100 Hz (6 channels, 5 samples
per packet), plus an INFO and a STATUS every second. It is fed to a fresh :class:`Decoder` as BLE
delivers it (notifications of whole frames packed to 244 bytes) and as serial reads do (4096-byte
chunks cutting frames anywhere), and split then decoded frame by frame, as a caller that stores
each frame before decoding may. Throughput counts wire bytes; headroom is throughput over the link
rate: BLE 2M PHY with data-length extension (about 1.4 Mbit/s) and 3 Mbaud 8N1 serial.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from biofeed.blocks import ChannelKind
from biofeed.protocol.decoder import Decoder
from biofeed.protocol.packets import (
    ChannelFormat,
    InfoPayload,
    MarkerPayload,
    Packet,
    PacketType,
    SampleFormat,
    StatusPayload,
    StreamFormat,
    decode_frame,
    encode_frame,
    encode_samples,
)

__all__ = ["BLE_2M_MB_PER_S", "SERIAL_3MBAUD_MB_PER_S", "ble_chunks", "reference_stream", "run", "serial_chunks"]

BLE_2M_MB_PER_S = 1.4e6 / 8 / 1e6
"""BLE 2M PHY notify throughput with data-length extension, about 1.4 Mbit/s."""

SERIAL_3MBAUD_MB_PER_S = 3e6 / 10 / 1e6
"""3 Mbaud serial, 8N1: 10 bits on the line per byte."""

BLE_NOTIFICATION_BYTES = 244  # ATT MTU 247 - 3
SERIAL_READ_BYTES = 4096

_EMG_SCALE_UV = 2.42 / (2**23 - 1) / 6 * 1e6  # ADS1292R: 2.42 V reference, 24 bits, gain 6
_ACC_SCALE_G = 1 / 4096
_GYRO_SCALE_DPS = 1 / 16.4


def _reference_info() -> InfoPayload:
    emg = StreamFormat(
        1,
        "emg",
        SampleFormat.INT24,
        2_000_000,
        (
            ChannelFormat(ChannelKind.EMG, _EMG_SCALE_UV, "es_left", "erector spinae L1 left"),
            ChannelFormat(ChannelKind.EMG, _EMG_SCALE_UV, "es_right", "erector spinae L1 right"),
        ),
    )
    imu_channels = tuple(ChannelFormat(ChannelKind.ACC, _ACC_SCALE_G, f"acc_{a}") for a in "xyz") + tuple(
        ChannelFormat(ChannelKind.GYRO, _GYRO_SCALE_DPS, f"gyro_{a}") for a in "xyz"
    )
    imus = tuple(
        StreamFormat(stream_id, name, SampleFormat.INT16, 100_000, imu_channels)
        for stream_id, name in ((2, "imu_thoracic"), (3, "imu_sacral"))
    )
    return InfoPayload((1, 0, 0), "bench-0001", "ads1292r", (emg, *imus))


def reference_stream(duration_s: float, seed: int = 0) -> list[bytes]:
    """Frames (with delimiters) the reference device sends in ``duration_s`` seconds.

    EMG is Gaussian noise of 20 uV RMS with a 300 uV burst every other second; the IMUs hold
    about 1 g on z with a little noise, so the bytes (and their COBS overhead) look like a session.
    """
    rng = np.random.default_rng(seed)
    info = _reference_info().to_payload()
    seq = 0
    frames: list[bytes] = []

    def send(ptype: int, stream_id: int, first_index: int, payload: bytes) -> None:
        nonlocal seq
        frames.append(encode_frame(Packet(ptype, stream_id, seq % 65536, first_index % 2**32, payload)))
        seq += 1

    n_ticks = round(duration_s * 100)  # 10 ms ticks: one EMG packet, and every 5th tick one per IMU
    emg_index = imu_index = 0
    for tick in range(n_ticks):
        if tick % 100 == 0:
            send(PacketType.INFO, 0, 0, info)
            send(PacketType.STATUS, 1, emg_index, StatusPayload(90, 4000).to_payload())
        if tick % 1000 == 500:
            send(PacketType.MARKER, 1, emg_index, MarkerPayload(1, "button").to_payload())
        rms_uv = 300.0 if (tick // 100) % 2 else 20.0
        counts = np.round(rng.normal(0.0, rms_uv / _EMG_SCALE_UV, (2, 20))).astype(np.int64)
        send(PacketType.EMG, 1, emg_index, encode_samples(counts, SampleFormat.INT24))
        emg_index += 20
        if tick % 5 == 4:
            for stream_id in (2, 3):
                acc = rng.normal(0.0, 0.02, (3, 5)) + np.array([[0.0], [0.0], [1.0]])
                gyro = rng.normal(0.0, 2.0, (3, 5))
                counts = np.vstack([np.round(acc / _ACC_SCALE_G), np.round(gyro / _GYRO_SCALE_DPS)]).astype(np.int64)
                send(PacketType.IMU, stream_id, imu_index, encode_samples(counts, SampleFormat.INT16))
            imu_index += 5
    return frames


def ble_chunks(frames: Sequence[bytes], max_bytes: int = BLE_NOTIFICATION_BYTES) -> list[bytes]:
    """Pack whole frames into notifications of at most ``max_bytes``, as the firmware does."""
    chunks: list[bytes] = []
    current = b""
    for frame in frames:
        if current and len(current) + len(frame) > max_bytes:
            chunks.append(current)
            current = b""
        current += frame
    if current:
        chunks.append(current)
    return chunks


def serial_chunks(stream: bytes, read_bytes: int = SERIAL_READ_BYTES) -> list[bytes]:
    """Cut a byte stream into reads of ``read_bytes``, frames split anywhere."""
    return [stream[k : k + read_bytes] for k in range(0, len(stream), read_bytes)]


def _feed_seconds(chunks: Sequence[bytes], n_frames: int) -> tuple[float, float]:
    """Wall and CPU seconds (this thread's) of a fresh decoder fed ``chunks``."""
    decoder = Decoder()
    wall, cpu = time.perf_counter(), time.thread_time()
    for chunk in chunks:
        decoder.feed(chunk)
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    _check_clean(decoder, n_frames)
    return wall, cpu


def _per_frame_seconds(chunks: Sequence[bytes], n_frames: int) -> tuple[float, float]:
    """As :func:`_feed_seconds`, but split and decoded frame by frame, as a caller storing each frame may."""
    decoder = Decoder()
    wall, cpu = time.perf_counter(), time.thread_time()
    for chunk in chunks:
        for frame in decoder.split(chunk):
            decoder.decode_frame(frame)
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    _check_clean(decoder, n_frames)
    return wall, cpu


def _check_clean(decoder: Decoder, n_frames: int) -> None:
    if decoder.stats.packets != n_frames or decoder.stats.corrupt_frames:
        raise RuntimeError(f"the benchmark stream did not decode cleanly: {decoder.stats}")


def _codec_seconds(frames: Sequence[bytes]) -> float:
    bodies = [f[:-1] for f in frames]
    start = time.perf_counter()
    for body in bodies:
        decode_frame(body)
    return time.perf_counter() - start


def _median_iqr(values: Sequence[float]) -> tuple[float, float]:
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    return float(q50), float(q75 - q25)


def run(quick: bool) -> dict[str, Any]:
    """Measure decoder throughput; ``quick`` takes a few seconds, the full run about half a minute.

    The headline ``mb_per_s`` is the wall-clock median of the 4096-byte serial reads: the chunking
    of the fastest link and of bulk replays. BLE notifications of 244 bytes carry two frames each,
    so their per-call cost weighs more; they are reported next to it (``ble244_*``). Since the
    machine may be shared, throughput over this thread's CPU time (``*_cpu_mb_per_s``) is given as
    well, with the load average before and after.
    """
    duration_s, n_repeats = (20.0, 7) if quick else (120.0, 11)
    load_start = os.getloadavg()[0]
    frames = reference_stream(duration_s)
    stream = b"".join(frames)
    n_bytes, n_frames = len(stream), len(frames)
    figures: dict[str, Any] = {"stream_s": duration_s, "stream_bytes": n_bytes, "stream_frames": n_frames}
    serial = serial_chunks(stream)
    for label, decode, chunks, link_mb_per_s in (
        ("serial4096", _feed_seconds, serial, SERIAL_3MBAUD_MB_PER_S),
        ("ble244", _feed_seconds, ble_chunks(frames), BLE_2M_MB_PER_S),
        ("serial4096_per_frame", _per_frame_seconds, serial, SERIAL_3MBAUD_MB_PER_S),
    ):
        wall_s, cpu_s = zip(*(decode(chunks, n_frames) for _ in range(n_repeats)), strict=True)
        mb_per_s, mb_iqr = _median_iqr([n_bytes / s / 1e6 for s in wall_s])
        cpu_mb_per_s, cpu_iqr = _median_iqr([n_bytes / s / 1e6 for s in cpu_s])
        figures[f"{label}_mb_per_s"] = mb_per_s
        figures[f"{label}_mb_per_s_iqr"] = mb_iqr
        figures[f"{label}_cpu_mb_per_s"] = cpu_mb_per_s
        figures[f"{label}_cpu_mb_per_s_iqr"] = cpu_iqr
        figures[f"{label}_frames_per_s"] = n_frames / float(np.median(wall_s))
        figures[f"{label}_link_mb_per_s"] = link_mb_per_s
        figures[f"{label}_headroom"] = mb_per_s / link_mb_per_s
        figures[f"{label}_realtime_factor"] = mb_per_s * 1e6 / (n_bytes / duration_s)
    codec_mb_per_s, _ = _median_iqr([n_bytes / _codec_seconds(frames) / 1e6 for _ in range(n_repeats)])
    figures["codec_only_mb_per_s"] = codec_mb_per_s
    figures["mb_per_s"] = figures["serial4096_mb_per_s"]
    figures["mb_per_s_iqr"] = figures["serial4096_mb_per_s_iqr"]
    figures["cpu_mb_per_s"] = figures["serial4096_cpu_mb_per_s"]
    figures["repeats"] = n_repeats
    figures["load_avg_1m_start"] = load_start
    figures["load_avg_1m_end"] = os.getloadavg()[0]
    return {"name": "decoder", "figures": figures, "peers": {}}
