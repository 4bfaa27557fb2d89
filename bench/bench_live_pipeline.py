"""Live pipeline speed: per-block latency and x real time, 8 EMG channels at 2 kHz + 2 IMUs in 20 ms blocks.

The session is the simulator's ``mixed`` scenario (standing, bends, lying down, pandiculations with
ECG and sensor noise), four seeds side by side as eight EMG channels at 2 kHz, with seed 0's two IMUs
at 100 Hz. Every 20 ms the :class:`~biofeed.pipeline.Pipeline` of ``biofeed live`` (``display=True``:
the window's filtered sEMG and 250 ms envelope too) takes one EMG block of 40 samples and one
2-sample block of each IMU; one "block" below is those three items. The first
``DEFAULT_FLOOR_WINDOW_S`` + 2 s are run untimed (the noise floor is fixed from the stream's first
10 s, which are held and then analysed at once; the mains check decides after 5 s).

Both wall time (``time.perf_counter``) and CPU time of the thread (``time.thread_time``) are taken
per block: the machine is shared, and CPU time is what another job's load does not inflate (it still
shares caches and the memory bus). ``x_realtime`` is signal seconds over processing seconds,
``block_p50_ms``/``block_p99_ms`` the 50th/99th percentile of the per-block times; each is the median
over repeats, with the spread (min-max) beside it.

Peer, measured in the same run on the same blocks: a plain scipy streaming pipeline doing the same
filtering, as a user would write it: ``sosfilt`` with carried ``zi`` for the 30-450 Hz band-pass
(4th-order Butterworth each side) and a 50 Hz notch, and a 250 ms RMS envelope every 10 ms from a
running buffer of squares. It detects nothing (no phases, set point, ECG, faults, IMU).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import signal

from biofeed.blocks import Block, ChannelInfo, DeviceInfo, StreamInfo
from biofeed.pipeline import DEFAULT_FLOOR_WINDOW_S, Pipeline
from biofeed.protocol.decoder import Decoder, FrameSplitter
from biofeed.sim.device import SimulatedDevice

__all__ = ["BLOCK_S", "PlainScipyPipeline", "live_session", "run"]

BLOCK_S = 0.02
"""One live block: 20 ms (40 EMG samples at 2 kHz, 2 IMU samples at 100 Hz)."""
N_SEEDS = 4  # four simulated devices of two EMG channels each: eight channels
_WARMUP_S = DEFAULT_FLOOR_WINDOW_S + 2.0

_Array = npt.NDArray[np.float64]
Item = Block | DeviceInfo


def _decoded(seed: int, duration_s: float) -> tuple[DeviceInfo, dict[str, _Array]]:
    device = SimulatedDevice("mixed", seed=seed)
    decoder = Decoder()
    info: DeviceInfo | None = None
    pieces: dict[str, list[_Array]] = {}
    for frame in FrameSplitter().feed(device.frames_until(min(duration_s, device.duration_s))):
        for item in decoder.decode_frame(frame):
            if isinstance(item, DeviceInfo) and info is None:
                info = item
            elif isinstance(item, Block):
                pieces.setdefault(item.info.name, []).append(item.data)
    if info is None:
        raise RuntimeError("the simulator sent no INFO")
    return info, {name: np.concatenate(p, axis=1) for name, p in pieces.items()}


def live_session(duration_s: float) -> tuple[DeviceInfo, list[list[Item]]]:
    """The 8-channel device INFO and the session cut into 20 ms steps of (EMG, IMU, IMU) blocks."""
    infos, arrays = zip(*(_decoded(seed, duration_s) for seed in range(N_SEEDS)), strict=True)
    base = infos[0]
    emg_base = next(s for s in base.streams if s.name == "emg")
    channels = tuple(
        ChannelInfo(f"{ch.name}_{seed}", ch.kind, ch.unit, ch.site)
        for seed in range(N_SEEDS)
        for ch in emg_base.channels
    )
    emg_info = StreamInfo("emg", emg_base.sample_rate_hz, channels, base.device_id, emg_base.stream_id)
    imus = [s for s in base.streams if s.name != "emg"]
    device = DeviceInfo(base.device_id, base.firmware_version, base.board_profile, (emg_info, *imus))
    n_emg = min(a["emg"].shape[1] for a in arrays)
    emg = np.concatenate([a["emg"][:, :n_emg] for a in arrays], axis=0)
    emg_step = round(BLOCK_S * emg_info.sample_rate_hz)
    steps: list[list[Item]] = []
    for k in range(n_emg // emg_step):
        step: list[Item] = [Block(emg_info, emg[:, k * emg_step : (k + 1) * emg_step], k * emg_step)]
        for imu in imus:
            imu_step = round(BLOCK_S * imu.sample_rate_hz)
            data = arrays[0][imu.name][:, k * imu_step : (k + 1) * imu_step]
            if data.shape[1] == imu_step:
                step.append(Block(imu, data, k * imu_step))
        steps.append(step)
    return device, steps


class PlainScipyPipeline:
    """The peer: band-pass + 50 Hz notch + 250 ms RMS every 10 ms with plain scipy, state carried per block."""

    def __init__(self, sample_rate_hz: float, n_channels: int) -> None:
        high = signal.butter(4, 30.0, btype="highpass", fs=sample_rate_hz, output="sos")
        low = signal.butter(4, 450.0, btype="lowpass", fs=sample_rate_hz, output="sos")
        self.band_sos = np.vstack([high, low])
        self.notch_sos = signal.tf2sos(*signal.iirnotch(50.0, 30.0, fs=sample_rate_hz))
        self.band_zi: _Array | None = None
        self.notch_zi = np.zeros((self.notch_sos.shape[0], n_channels, 2))
        self.window = round(0.25 * sample_rate_hz)
        self.hop = round(0.01 * sample_rate_hz)
        self.squares = np.zeros((n_channels, 0))
        self.n_seen = 0

    def process(self, data: _Array) -> tuple[_Array, _Array]:
        """Filter one raw block; return the filtered block and the envelope hops it completes."""
        if self.band_zi is None:
            self.band_zi = signal.sosfilt_zi(self.band_sos)[:, None, :] * data[None, :, 0, None]
        filtered, self.band_zi = signal.sosfilt(self.band_sos, data, axis=1, zi=self.band_zi)
        filtered, self.notch_zi = signal.sosfilt(self.notch_sos, filtered, axis=1, zi=self.notch_zi)
        self.squares = np.concatenate([self.squares, filtered * filtered], axis=1)
        start = self.n_seen
        self.n_seen += data.shape[1]
        # Hop ends (sample counts) completed by this block that have a whole window behind them.
        ends = np.arange(-(-(start + 1) // self.hop) * self.hop, self.n_seen + 1, self.hop)
        ends = ends[ends >= self.window]
        buffer_start = self.n_seen - self.squares.shape[1]
        cumulative = np.concatenate([np.zeros((data.shape[0], 1)), np.cumsum(self.squares, axis=1)], axis=1)
        sums = cumulative[:, ends - buffer_start] - cumulative[:, ends - self.window - buffer_start]
        envelope = np.sqrt(np.maximum(sums, 0.0) / self.window)
        self.squares = self.squares[:, -self.window :]
        return filtered, envelope


def _time_steps(
    steps: Sequence[Sequence[Item]], take: Callable[[Item], object], n_warmup: int
) -> tuple[_Array, _Array]:
    """Per-step wall and CPU seconds of ``take`` over the items of each step (after ``n_warmup`` untimed steps)."""
    wall = np.empty(len(steps) - n_warmup)
    cpu = np.empty_like(wall)
    for k, step in enumerate(steps):
        t0, c0 = time.perf_counter(), time.thread_time()
        for item in step:
            take(item)
        c1, t1 = time.thread_time(), time.perf_counter()
        if k >= n_warmup:
            wall[k - n_warmup], cpu[k - n_warmup] = t1 - t0, c1 - c0
    return wall, cpu


def _biofeed_times(
    device: DeviceInfo, steps: Sequence[Sequence[Item]], n_warmup: int, ecg: bool
) -> tuple[_Array, _Array]:
    options = {} if ecg else {"ecg": "off"}
    pipeline = Pipeline(display=True, analyzer_options=options)
    pipeline.process(device)
    return _time_steps(steps, pipeline.process, n_warmup)


def _scipy_times(device: DeviceInfo, steps: Sequence[Sequence[Item]], n_warmup: int) -> tuple[_Array, _Array]:
    emg = device.streams[0]
    peer = PlainScipyPipeline(emg.sample_rate_hz, emg.n_channels)

    def take(item: Item) -> None:
        if isinstance(item, Block) and item.info.is_emg:
            peer.process(item.data)

    return _time_steps(steps, take, n_warmup)


def _figures(times: _Array) -> dict[str, float]:
    return {
        "x_realtime": BLOCK_S * times.shape[0] / float(times.sum()),
        "block_p50_ms": 1e3 * float(np.percentile(times, 50)),
        "block_p99_ms": 1e3 * float(np.percentile(times, 99)),
        "block_max_ms": 1e3 * float(times.max()),
    }


def _summary(runs: list[dict[str, float]], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        out[f"{prefix}{key}"] = statistics.median(values)
        out[f"{prefix}{key}_spread"] = [min(values), max(values)]
    return out


def run(quick: bool) -> dict[str, Any]:
    """Measure the live pipeline and the plain scipy peer; ``quick``: 40 s of signal, 3 repeats."""
    duration_s = 40.0 if quick else 180.0
    repeats = 3 if quick else 5
    device, steps = live_session(duration_s)
    n_warmup = math.ceil(_WARMUP_S / BLOCK_S)
    load_before = os.getloadavg()[0]
    results: dict[str, dict[str, list[dict[str, float]]]] = {
        name: {"wall": [], "cpu": []} for name in ("biofeed", "biofeed_ecg_off", "scipy")
    }
    for _ in range(repeats):
        for name, times in (
            ("biofeed", _biofeed_times(device, steps, n_warmup, ecg=True)),
            ("biofeed_ecg_off", _biofeed_times(device, steps, n_warmup, ecg=False)),
            ("scipy", _scipy_times(device, steps, n_warmup)),
        ):
            results[name]["wall"].append(_figures(times[0]))
            results[name]["cpu"].append(_figures(times[1]))
    figures: dict[str, Any] = {
        **_summary(results["biofeed"]["cpu"]),
        **_summary(results["biofeed"]["wall"], "wall_"),
        **{k: v for k, v in _summary(results["biofeed_ecg_off"]["cpu"], "ecg_off_").items()},
        "signal_s_timed": (len(steps) - n_warmup) * BLOCK_S,
        "repeats": repeats,
        "clock": "figures without wall_ are CPU time of the thread (time.thread_time)",
        "load_avg_1min": [load_before, os.getloadavg()[0]],
    }
    peer = _summary(results["scipy"]["cpu"], "plain_scipy_")
    peer.update({k: v for k, v in _summary(results["scipy"]["wall"], "plain_scipy_wall_").items() if "spread" not in k})
    peer["biofeed_over_plain_scipy_time"] = statistics.median(
        s["x_realtime"] / b["x_realtime"]
        for b, s in zip(results["biofeed"]["cpu"], results["scipy"]["cpu"], strict=True)
    )
    return {"name": "live_pipeline", "figures": figures, "peers": peer}
