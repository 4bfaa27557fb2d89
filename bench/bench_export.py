"""Export time and peak memory per format, on a 1-hour recording of 8 EMG channels at 2 kHz.

The recording is synthetic but shaped like a session: one int24 EMG stream of 8 channels at 2 kHz
(20 samples per packet; Gaussian noise of 20 uV RMS with a 300 uV burst every other second, ADS1292R
scale) and one int16 IMU stream of 6 channels at 100 Hz, an INFO every second, a MARKER every 10 s,
a gap every 5 minutes, and a note event every minute. ``--quick`` uses 3 minutes.

Each export runs in a fresh process (``spawn``) so its peak resident memory (``ru_maxrss``) is its
own; ``baseline`` is a process that imported the same modules (numpy, biofeed, pyarrow, and
pandas, which pyarrow's Parquet writer imports when installed: about 50 MB) and exported nothing,
and ``*_over_baseline_mb`` is what the export itself added. The streaming exports must stay flat as
the recording grows; the peer is edfio writing the same EDF from whole signals in memory, the way
``edfio.Edf.write`` needs them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.numbered_frames import NumberedFrames
from bench.process_memory import peak_rss_mb
from biofeed.blocks import ChannelKind
from biofeed.protocol import (
    ChannelFormat,
    InfoPayload,
    MarkerPayload,
    PacketType,
    SampleFormat,
    StreamFormat,
    encode_samples,
)
from biofeed.record.writer import RecordingWriter

__all__ = ["FORMATS", "make_recording", "run"]

FORMATS = ("edf", "bdf", "csv", "parquet")
N_EMG_CHANNELS = 8
EMG_RATE_HZ = 2000
IMU_RATE_HZ = 100
_EMG_SCALE_UV = 2.42 / (2**23 - 1) / 6 * 1e6
_ACC_SCALE_G = 1 / 4096
_GYRO_SCALE_DPS = 1 / 16.4
_GAP_EVERY_S = 300
_NOTE_EVERY_S = 60
_MARKER_EVERY_S = 10


def _info() -> InfoPayload:
    emg = StreamFormat(
        1,
        "emg",
        SampleFormat.INT24,
        EMG_RATE_HZ * 1000,
        tuple(ChannelFormat(ChannelKind.EMG, _EMG_SCALE_UV, f"emg_{k}", f"site {k}") for k in range(N_EMG_CHANNELS)),
    )
    imu_channels = tuple(ChannelFormat(ChannelKind.ACC, _ACC_SCALE_G, f"acc_{a}") for a in "xyz") + tuple(
        ChannelFormat(ChannelKind.GYRO, _GYRO_SCALE_DPS, f"gyro_{a}") for a in "xyz"
    )
    imu = StreamFormat(2, "imu", SampleFormat.INT16, IMU_RATE_HZ * 1000, imu_channels)
    return InfoPayload((1, 0, 0), "bench-export", "ads1292r", (emg, imu))


def make_recording(path: Path, duration_s: int, seed: int = 0) -> Path:
    """Write the synthetic recording of ``duration_s`` whole seconds to the folder ``path``."""
    rng = np.random.default_rng(seed)
    info = _info().to_payload()
    frame = NumberedFrames()
    start_s = 1.8e9

    # fsync only at close: the clock never advances, and the benchmark measures the export
    with RecordingWriter(path, source_url="bench://export", client="bench", clock=lambda: 0.0) as writer:
        for second in range(duration_s):
            received_at = start_s + second
            writer.append_frame(frame(PacketType.INFO, 0, 0, info), received_at)
            rms_uv = 300.0 if second % 2 else 20.0
            counts = np.round(rng.normal(0.0, rms_uv / _EMG_SCALE_UV, (N_EMG_CHANNELS, EMG_RATE_HZ))).astype(np.int64)
            payload = encode_samples(counts, SampleFormat.INT24)
            packet_bytes = 20 * N_EMG_CHANNELS * 3
            for k in range(EMG_RATE_HZ // 20):
                if second % _GAP_EVERY_S == _GAP_EVERY_S - 1 and k == 50:
                    frame.seq += 1  # a packet lost on the link
                    continue
                chunk = payload[k * packet_bytes : (k + 1) * packet_bytes]
                writer.append_frame(frame(PacketType.EMG, 1, second * EMG_RATE_HZ + 20 * k, chunk), received_at)
                if k % 5 == 4:  # an IMU packet of 5 samples every 50 ms
                    imu_index = second * IMU_RATE_HZ + (k // 5) * 5
                    acc = rng.normal(0.0, 0.02, (3, 5)) + np.array([[0.0], [0.0], [1.0]])
                    gyro = rng.normal(0.0, 2.0, (3, 5))
                    imu = np.vstack([np.round(acc / _ACC_SCALE_G), np.round(gyro / _GYRO_SCALE_DPS)]).astype(np.int64)
                    writer.append_frame(
                        frame(PacketType.IMU, 2, imu_index, encode_samples(imu, SampleFormat.INT16)), received_at
                    )
            if second % _MARKER_EVERY_S == 5:
                marker = MarkerPayload(1, "button").to_payload()
                writer.append_frame(frame(PacketType.MARKER, 1, second * EMG_RATE_HZ, marker), received_at)
            if second % _NOTE_EVERY_S == 30:
                writer.append_event({"type": "note", "time_s": float(second), "text": f"minute {second // 60}"})
    return path


def _child(task: str, recording: str, out: str, queue: Any) -> None:
    """Run one export (or nothing, for ``baseline``) in this fresh process and report time and memory."""
    import pyarrow.parquet  # noqa: F401 - the baseline imports what every export may import

    # pyarrow's Parquet writer imports pandas when it is installed (about 50 MB); count it in
    with contextlib.suppress(ImportError):
        import pandas  # noqa: F401

    from biofeed.record.export import run_export

    start = time.perf_counter()
    if task == "edfio":
        _edfio_whole_file(Path(recording), Path(out))
    elif task != "baseline":
        run_export(recording, task, out, warn=lambda line: None)
    elapsed_s = time.perf_counter() - start
    queue.put((elapsed_s, peak_rss_mb()))


def _edfio_whole_file(recording: Path, out: Path) -> None:
    """The peer: decode every stream into whole arrays, then let edfio build and write the EDF."""
    import edfio

    from biofeed.record import open_recording
    from biofeed.record.stream_reader import LayoutBlock, read_stream_items

    columns: dict[str, list[np.ndarray]] = {}
    rates: dict[str, float] = {}
    names: dict[str, list[str]] = {}
    for item in read_stream_items(open_recording(recording)):
        if isinstance(item, LayoutBlock):
            parts = columns.setdefault(item.layout.name, [])
            if item.block.gap_before:
                parts.append(np.zeros((item.layout.n_channels, item.block.gap_before)))
            parts.append(item.block.data)
            rates[item.layout.name] = item.layout.sample_rate_hz
            names[item.layout.name] = [c.name for c in item.layout.info.channels]
    signals = []
    duration_s = max(sum(p.shape[1] for p in parts) / rates[name] for name, parts in columns.items())
    for name, parts in columns.items():
        data = np.concatenate(parts, axis=1)
        # edfio wants every signal to last equally long: pad the shorter streams as the export does
        data = np.pad(data, ((0, 0), (0, round(duration_s * rates[name]) - data.shape[1])))
        for k, channel in enumerate(names[name]):
            signals.append(edfio.EdfSignal(data[k], rates[name], label=f"{name}.{channel}"[:16]))
    edfio.Edf(signals, data_record_duration=1).write(out)


def _measure(task: str, recording: Path, out: Path) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(task, str(recording), str(out), queue))
    process.start()
    process.join()
    if process.exitcode:
        raise RuntimeError(f"{task} export failed with exit code {process.exitcode}")
    elapsed_s, peak_mb = queue.get(timeout=10)
    return float(elapsed_s), float(peak_mb)


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def run(quick: bool) -> dict[str, Any]:
    """Export a synthetic recording to every format; ``quick`` takes 3 minutes of data, else 1 hour."""
    duration_s = 180 if quick else 3600
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        recording = make_recording(folder / "recording", duration_s)
        figures: dict[str, Any] = {
            "recording_s": duration_s,
            "channels": f"{N_EMG_CHANNELS} EMG @ {EMG_RATE_HZ} Hz + 6 IMU @ {IMU_RATE_HZ} Hz",
            "frames_mb": (recording / "frames.bin").stat().st_size / 1e6,
            "make_recording_s": time.perf_counter() - start,
        }
        _, baseline_mb = _measure("baseline", recording, folder / "none")
        figures["baseline_rss_mb"] = baseline_mb
        worst_mb = 0.0
        for fmt in FORMATS:
            out = folder / f"out.{fmt}"
            elapsed_s, peak_mb = _measure(fmt, recording, out)
            figures[f"{fmt}_s"] = elapsed_s
            figures[f"{fmt}_realtime_factor"] = duration_s / elapsed_s
            figures[f"{fmt}_peak_rss_mb"] = peak_mb
            figures[f"{fmt}_over_baseline_mb"] = peak_mb - baseline_mb
            figures[f"{fmt}_output_mb"] = _size_mb(out)
            worst_mb = max(worst_mb, peak_mb - baseline_mb)
        figures["worst_over_baseline_mb"] = worst_mb
        peer_s, peer_mb = _measure("edfio", recording, folder / "peer.edf")
    peers = {"edfio_whole_file_edf_s": peer_s, "edfio_whole_file_over_baseline_mb": peer_mb - baseline_mb}
    return {"name": "export", "figures": figures, "peers": peers}
