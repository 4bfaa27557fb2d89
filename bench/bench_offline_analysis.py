"""``biofeed analyze`` of a long 8-channel recording: x real time, CPU and peak memory, against neurokit2 and biosppy.

The recording (``make_recording``) is synthetic and shaped like a session: one int24 EMG stream of
8 channels at 2 kHz (20 samples per packet, the simulator's ADS1299-class scale), sEMG from the
simulator's carrier (``biofeed.sim.emg.carrier_sos``) over 1.5 uV of white sensor noise, a resting
tension of 2-5 uV per channel and a pandiculation every 90 s (0.5 s rise to 40-120 uV, a 2-4 s hold,
a 2-8 s release); an INFO every second, no IMU. The full run uses 1 hour, ``--quick`` 3 minutes. It is
written once into a cache folder (``$BIOFEED_BENCH_CACHE``, default ``<tmp>/biofeed-bench-cache``) and
reused by later runs.

Each tool runs in a fresh process (``spawn``) so its peak resident memory (``ru_maxrss``) is its own;
``*_over_baseline_mb`` subtracts the peak of the same process right after its imports.

- **biofeed**: :func:`biofeed.analysis.analyze_recording`, what ``biofeed analyze`` runs: the frames are
  decoded and run through the recorder's pipeline (noise floor, mains, ECG, phases, trials, set points).
  Wall and CPU time, repeated in one process (full: 3, quick: 3); ``x_realtime`` is recording seconds per wall
  second (median), ``x_realtime_cpu`` per CPU second.
- **peers**: neurokit2 ``emg_process`` and biosppy ``signals.emg.emg`` channel by channel on the same
  samples, already decoded into arrays (their decoding is not counted: the comparison favours them).
  Both are far slower, so they run on the first ``peer_s`` seconds of ``peer_channels`` channels (full:
  600 s x 8, quick: 30 s x 2) and the speeds compare per channel-second of signal:
  ``speedup_vs_neurokit2`` = biofeed's channel-seconds per wall second over neurokit2's, measured in
  the same run. neurokit2's public ``emg_process`` builds its activation DataFrame with a per-sample
  ``.loc`` loop (docs/benchmarks.md, accuracy section): that is what its users run.

What the numbers mean for accuracy is in the accuracy section of docs/benchmarks.md (``bench
accuracy``): the same analysis against the same peers' detectors on simulated signals with truth.
The machine is shared: the load average is reported before and after.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal

from bench.process_memory import peak_rss_mb

__all__ = ["cache_folder", "make_recording", "run"]

N_CHANNELS = 8
EMG_RATE_HZ = 2000
SAMPLES_PER_PACKET = 20
EMG_SCALE_UV = 4.5 / 2**23 / 24 * 1e6  # the simulator's front end
NOISE_UV = 1.5
TRIAL_EVERY_S = 90
_RECORDING_VERSION = 1  # bump when make_recording changes, so a stale cache is not reused


def cache_folder() -> Path:
    """Where generated recordings are kept between runs."""
    return Path(os.environ.get("BIOFEED_BENCH_CACHE") or Path(tempfile.gettempdir()) / "biofeed-bench-cache")


def _activation_uv(n_samples: int, start_s: float, rest_uv: np.ndarray) -> np.ndarray:
    """Per channel, the scripted sEMG RMS over ``n_samples`` from ``start_s``: rest plus a trial every 90 s."""
    t_s = start_s + np.arange(n_samples) / EMG_RATE_HZ
    level = np.repeat(rest_uv[:, None], n_samples, axis=1)
    first = math.floor(start_s / TRIAL_EVERY_S)
    for k in range(first, math.floor(t_s[-1] / TRIAL_EVERY_S) + 1):
        trial_rng = np.random.default_rng([k, 7])  # the same trial whatever the chunking
        onset_s = k * TRIAL_EVERY_S + 30.0
        peak_uv = trial_rng.uniform(40.0, 120.0, N_CHANNELS)
        hold_s, release_s = trial_rng.uniform(2.0, 4.0), trial_rng.uniform(2.0, 8.0)
        x = t_s - onset_s
        rise = np.clip(x / 0.5, 0.0, 1.0)
        fall = np.clip(1.0 - (x - 0.5 - hold_s) / release_s, 0.0, 1.0)
        shape = np.where(x < 0.5 + hold_s, rise, fall)
        level = np.maximum(level, peak_uv[:, None] * shape[None, :])
    return level


def make_recording(path: Path, duration_s: int, seed: int = 0) -> Path:
    """Write the synthetic recording of ``duration_s`` whole seconds to the folder ``path``."""
    from bench.numbered_frames import NumberedFrames
    from biofeed.blocks import ChannelKind
    from biofeed.protocol import (
        ChannelFormat,
        InfoPayload,
        PacketType,
        SampleFormat,
        StreamFormat,
        encode_samples,
    )
    from biofeed.record.writer import RecordingWriter
    from biofeed.sim.emg import carrier_sos

    rng = np.random.default_rng(seed)
    channels = tuple(ChannelFormat(ChannelKind.EMG, EMG_SCALE_UV, f"emg_{k}", f"site {k}") for k in range(N_CHANNELS))
    info = InfoPayload(
        (1, 0, 0),
        "bench-offline",
        "simulator",
        (StreamFormat(1, "emg", SampleFormat.INT24, EMG_RATE_HZ * 1000, channels),),
    ).to_payload()
    sos = carrier_sos(EMG_RATE_HZ)
    state = np.zeros((sos.shape[0], N_CHANNELS, 2))
    rest_uv = rng.uniform(2.0, 5.0, N_CHANNELS)
    frame = NumberedFrames()
    start_s = 1.8e9

    packet_bytes = SAMPLES_PER_PACKET * N_CHANNELS * 3
    with RecordingWriter(path, source_url="bench://offline-analysis", client="bench", clock=lambda: 0.0) as writer:
        for second in range(duration_s):
            writer.append_frame(frame(PacketType.INFO, 0, 0, info), start_s + second)
            carrier, state = signal.sosfilt(sos, rng.standard_normal((N_CHANNELS, EMG_RATE_HZ)), axis=1, zi=state)
            emg_uv = carrier * _activation_uv(EMG_RATE_HZ, float(second), rest_uv)
            emg_uv += rng.normal(0.0, NOISE_UV, emg_uv.shape)
            payload = encode_samples(np.round(emg_uv / EMG_SCALE_UV).astype(np.int64), SampleFormat.INT24)
            for k in range(EMG_RATE_HZ // SAMPLES_PER_PACKET):
                chunk = payload[k * packet_bytes : (k + 1) * packet_bytes]
                received_at = start_s + second + (k + 1) * SAMPLES_PER_PACKET / EMG_RATE_HZ
                writer.append_frame(
                    frame(PacketType.EMG, 1, second * EMG_RATE_HZ + k * SAMPLES_PER_PACKET, chunk), received_at
                )
    return path


def cached_recording(duration_s: int) -> tuple[Path, float]:
    """The cached recording of ``duration_s`` (made when missing) and the seconds it took to make (0 if cached)."""
    folder = cache_folder() / f"offline-analysis-v{_RECORDING_VERSION}-{duration_s}s"
    if (folder / "recording.json").is_file() and (folder / ".complete").is_file():
        return folder, 0.0
    partial = folder.with_name(folder.name + f".partial-{os.getpid()}")
    start = time.perf_counter()
    make_recording(partial, duration_s)
    (partial / ".complete").touch()
    partial.rename(folder)
    return folder, time.perf_counter() - start


def _decoded(recording: Path, seconds: float, n_channels: int) -> np.ndarray:
    """The first ``seconds`` of the first ``n_channels`` EMG channels, in uV."""
    from biofeed.record import open_recording
    from biofeed.record.stream_reader import LayoutBlock, read_stream_items

    want = round(seconds * EMG_RATE_HZ)
    parts: list[np.ndarray] = []
    have = 0
    for item in read_stream_items(open_recording(recording)):
        if isinstance(item, LayoutBlock) and item.layout.name == "emg":
            parts.append(item.block.data[:n_channels])
            have += item.block.n_samples
            if have >= want:
                break
    return np.concatenate(parts, axis=1)[:, :want]


def _child(task: str, recording: str, seconds: float, n_channels: int, repeats: int, queue: Any) -> None:
    """Run a measurement in this fresh process; put ([wall s], [CPU s], peak RSS MB, baseline MB, detail)."""
    import warnings

    warnings.simplefilter("ignore")  # peers warn on every call (pandas, biosppy); not what is measured
    detail: dict[str, Any] = {}
    walls: list[float] = []
    cpus: list[float] = []
    if task == "biofeed":
        from biofeed.analysis import analyze_recording

        baseline_mb = peak_rss_mb()
        for _ in range(repeats):
            wall0, cpu0 = time.perf_counter(), time.process_time()
            result = analyze_recording(recording)
            walls.append(time.perf_counter() - wall0)
            cpus.append(time.process_time() - cpu0)
            detail["trials"] = sum(len(c["contractions"]) for c in result["channels"])
            del result
    else:
        data = _decoded(Path(recording), seconds, n_channels)
        if task == "neurokit2":
            import neurokit2

            def one(x: np.ndarray) -> object:
                return neurokit2.emg_process(x, sampling_rate=EMG_RATE_HZ)
        else:
            from biosppy.signals import emg as biosppy_emg

            def one(x: np.ndarray) -> object:
                return biosppy_emg.emg(signal=x, sampling_rate=EMG_RATE_HZ, show=False)

        one(data[0, : EMG_RATE_HZ * 10])  # first-call imports and caches out of the timing
        baseline_mb = peak_rss_mb()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for row in data:
            one(row)
        walls.append(time.perf_counter() - wall0)
        cpus.append(time.process_time() - cpu0)
    queue.put((walls, cpus, peak_rss_mb(), baseline_mb, detail))


def _measure(task: str, recording: Path, seconds: float = 0.0, n_channels: int = 0, repeats: int = 1) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(task, str(recording), seconds, n_channels, repeats, queue))
    process.start()
    walls, cpus, peak_mb, baseline_mb, detail = queue.get(timeout=7200)
    process.join()
    if process.exitcode:
        raise RuntimeError(f"{task} failed with exit code {process.exitcode}")
    return {"wall_s": walls, "cpu_s": cpus, "peak_rss_mb": peak_mb, "over_baseline_mb": peak_mb - baseline_mb, **detail}


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def run(quick: bool) -> dict[str, Any]:
    """Analyse the cached recording (quick: 3 minutes, else 1 hour) and the peers on part of it."""
    duration_s, repeats, peer_s, peer_channels = (180, 3, 30.0, 2) if quick else (3600, 3, 600.0, N_CHANNELS)
    figures: dict[str, Any] = {"load_average_1min_start": os.getloadavg()[0]}
    recording, made_s = cached_recording(duration_s)
    figures.update(
        recording_s=duration_s,
        channels=f"{N_CHANNELS} EMG @ {EMG_RATE_HZ} Hz",
        frames_mb=(recording / "frames.bin").stat().st_size / 1e6,
        make_recording_s=made_s,
    )
    biofeed = _measure("biofeed", recording, repeats=repeats)
    walls = np.array(biofeed["wall_s"])
    cpus = np.array(biofeed["cpu_s"])
    figures.update(
        repeats=repeats,
        wall_s_median=float(np.median(walls)),
        wall_s_min=float(walls.min()),
        wall_s_max=float(walls.max()),
        cpu_s_median=float(np.median(cpus)),
        x_realtime=duration_s / float(np.median(walls)),
        x_realtime_best=duration_s / float(walls.min()),
        x_realtime_cpu=duration_s / float(np.median(cpus)),
        peak_rss_mb=biofeed["peak_rss_mb"],
        peak_over_baseline_mb=biofeed["over_baseline_mb"],
        trials=biofeed["trials"],
    )
    biofeed_ch_s_per_s = duration_s * N_CHANNELS / float(np.median(walls))
    biofeed_ch_s_per_cpu_s = duration_s * N_CHANNELS / float(np.median(cpus))
    peers: dict[str, Any] = {"peer_signal_s": peer_s, "peer_channels": peer_channels}
    for name, module in (("neurokit2", "neurokit2"), ("biosppy", "biosppy")):
        if not _installed(module):
            peers[f"{name}_installed"] = False
            figures[f"speedup_vs_{name}"] = math.nan
            continue
        peer = _measure(name, recording, peer_s, peer_channels)
        peer_wall_s, peer_cpu_s = peer["wall_s"][0], peer["cpu_s"][0]
        ch_s = peer_s * peer_channels
        peers[f"{name}_wall_s"] = peer_wall_s
        peers[f"{name}_cpu_s"] = peer_cpu_s
        peers[f"{name}_x_realtime_per_channel"] = ch_s / peer_wall_s
        peers[f"{name}_x_realtime_8ch"] = ch_s / peer_wall_s / N_CHANNELS
        peers[f"{name}_over_baseline_mb"] = peer["over_baseline_mb"]
        figures[f"speedup_vs_{name}"] = biofeed_ch_s_per_s / (ch_s / peer_wall_s)
        figures[f"speedup_vs_{name}_cpu"] = biofeed_ch_s_per_cpu_s / (ch_s / peer_cpu_s)
    figures["load_average_1min_end"] = os.getloadavg()[0]
    return {"name": "offline_analysis", "figures": figures, "peers": peers}
