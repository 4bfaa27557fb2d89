"""The live view under load: frame rate, frame time, sample-to-envelope latency, CPU per thread, memory.

A synthetic board (``SyntheticBoard``: 4 or 8 EMG channels at 2 kHz, int24, 20 samples per packet,
and two IMUs at 100 Hz, the reference device's wire format with INFO and STATUS every second) is
played in real time by ``PacedBoardSource``: one chunk every 10 ms, stamped with ``time.time()``
as it is handed over (its arrival). The real acquisition path runs on it in its worker thread
(:class:`~biofeed.live.session.LiveSession`: runner, decoder, recorder to a temporary folder, the
live pipeline ``Pipeline(display=True)``, ring buffer, trunk angles), and the real
:class:`~biofeed.live.window.LiveWindow` (1500 x 950, 10 s window) runs offscreen
(``QT_QPA_PLATFORM=offscreen``) in the main thread. The first 11 device seconds are sent as fast as
possible (the noise floor takes 10 s; nothing is drawn before) and not measured.

- **frames**: a frame is ``window.refresh()`` (poll the ring buffer, update the plots) plus
  ``processEvents()`` (Qt paints). Paced at 30 per second as the app's timer does: frames/s
  achieved, frame time p50/p99 (wall clock) and the GUI thread's CPU time per frame p50/p99
  (``frame_cpu_*``: what a frame costs whatever else runs on the machine; ``fps_cpu_bound`` is
  frames per CPU second); then unpaced (back to back): the most frames/s the window draws
  (``fps``, ``fps_4ch``, ``fps_8ch``; issue 9's ``gui.fps``): frames that drew something new over
  the wall time they took (a frame with nothing new, the data arriving every 10 ms, costs nothing
  and is not counted).
- **latency**: per envelope value, from the arrival of the newest sample it covers to its write into
  the ring buffer (:meth:`RingBufferSink.latencies_s`), during the paced phase. With the default
  pipeline the ECG stage holds the display signal back 0.3 s by design (docs/dsp.md), so the same is
  measured with ``ecg="off"`` too.
- **CPU**: ``time.thread_time`` of the worker thread (all of it; the pipeline's share separately) and
  of the GUI thread, as % of one core over the paced phase.
- **memory**: a 2-hour session (``--quick``: 1 minute) with a contraction every 5 minutes (the
  session's trials are kept: they grow with their number, not with time) played as fast as possible,
  no recording,
  the window drawing twice a second (at 30 Hz it would take the worker's time: the session would
  play barely faster than real time); RSS sampled every device minute from the worker; growth after
  the first 10 % of the session.

The machine's load average is reported with the figures: on a shared machine other processes take
CPU from both threads and every time here grows with it.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np

from bench.process_memory import rss_mb
from biofeed.blocks import Block, ChannelKind
from biofeed.live.recording_switch import RecordingSwitch
from biofeed.live.session import LiveSession
from biofeed.pipeline import Pipeline, PipelineOutput
from biofeed.protocol.packets import (
    ChannelFormat,
    InfoPayload,
    Packet,
    PacketType,
    SampleFormat,
    StatusPayload,
    StreamFormat,
    encode_frame,
    encode_samples,
)
from biofeed.sinks.ring_buffer import RingBufferSink
from biofeed.sources.base import TimedChunk

__all__ = ["PacedBoardSource", "SyntheticBoard", "run"]

EMG_RATE_HZ = 2000
IMU_RATE_HZ = 100
TICK_S = 0.01
EMG_SCALE_UV = 4.5 / 2**23 / 24 * 1e6  # the simulator's ADS1299-class front end
ACC_SCALE_G = 1 / 16384
GYRO_SCALE_DPS = 1 / 131
WARM_UP_S = 11.0  # the noise floor is fixed after 10 s; nothing is drawn before
FRAME_INTERVAL_S = 0.033  # the window's timer
MEMORY_FRAME_INTERVAL_S = 0.5
WINDOW_SIZE = (1500, 950)


class SyntheticBoard:
    """Wire frames of a board with ``n_emg`` EMG channels at 2 kHz and two IMUs at 100 Hz.

    EMG: a noise floor of 1.5 uV RMS plus sEMG-like noise of 4 uV at rest and, every
    ``contraction_every_s``, a contraction (60 uV for 3 s, released over 5 s) starting 5 s into the
    period; the IMUs hold still, upright.
    """

    def __init__(self, n_emg: int, seed: int = 0, contraction_every_s: float = 20.0) -> None:
        self.n_emg = n_emg
        self.contraction_every_s = contraction_every_s
        self._rng = np.random.default_rng(seed)
        self._seq = 0
        emg = StreamFormat(
            1,
            "emg",
            SampleFormat.INT24,
            EMG_RATE_HZ * 1000,
            tuple(
                ChannelFormat(ChannelKind.EMG, EMG_SCALE_UV, f"emg{k}_{'left' if k % 2 == 0 else 'right'}")
                for k in range(n_emg)
            ),
        )
        imu_channels = tuple(ChannelFormat(ChannelKind.ACC, ACC_SCALE_G, f"acc_{a}") for a in "xyz") + tuple(
            ChannelFormat(ChannelKind.GYRO, GYRO_SCALE_DPS, f"gyro_{a}") for a in "xyz"
        )
        imus = tuple(
            StreamFormat(i, name, SampleFormat.INT16, IMU_RATE_HZ * 1000, imu_channels)
            for i, name in ((2, "imu_thoracic"), (3, "imu_sacral"))
        )
        self._info = InfoPayload((1, 0, 0), "bench-gui", "simulator", (emg, *imus)).to_payload()

    def _frame(self, ptype: int, stream_id: int, first_index: int, payload: bytes) -> bytes:
        frame = encode_frame(Packet(ptype, stream_id, self._seq % 65536, first_index % 2**32, payload))
        self._seq += 1
        return frame

    def level_uv(self, time_s: float) -> float:
        """Scripted sEMG RMS at a device time."""
        phase_s = time_s % self.contraction_every_s
        if 5.0 <= phase_s < 8.0:
            return 60.0
        if 8.0 <= phase_s < 13.0:
            return 60.0 + (4.0 - 60.0) * (phase_s - 8.0) / 5.0
        return 4.0

    def tick(self, tick: int) -> bytes:
        """The frames the board sends in 10 ms tick ``tick`` (delimiters included)."""
        frames = []
        emg_index = tick * 20
        if tick % 100 == 0:
            frames.append(self._frame(PacketType.INFO, 0, 0, self._info))
            frames.append(self._frame(PacketType.STATUS, 1, emg_index, StatusPayload(90, 4000).to_payload()))
        level = self.level_uv(tick * TICK_S)
        uv = self._rng.normal(0.0, 1.0, (self.n_emg, 20)) * math.hypot(level, 1.5)
        frames.append(
            self._frame(
                PacketType.EMG,
                1,
                emg_index,
                encode_samples(np.round(uv / EMG_SCALE_UV).astype(np.int64), SampleFormat.INT24),
            )
        )
        if tick % 5 == 4:
            for stream_id in (2, 3):
                acc = self._rng.normal(0.0, 0.003, (3, 5)) + np.array([[1.0], [0.0], [0.0]])
                gyro = self._rng.normal(0.0, 0.05, (3, 5))
                counts = np.vstack([np.round(acc / ACC_SCALE_G), np.round(gyro / GYRO_SCALE_DPS)]).astype(np.int64)
                frames.append(
                    self._frame(PacketType.IMU, stream_id, (tick // 5) * 5, encode_samples(counts, SampleFormat.INT16))
                )
        return b"".join(frames)


class PacedBoardSource:
    """A :class:`SyntheticBoard` as a source: one chunk per 10 ms tick, stamped on hand-over.

    Parameters
    ----------
    board : SyntheticBoard
    duration_s : float
        Device seconds.
    fast_forward_s : float
        The first seconds are handed over as fast as the worker takes them.
    paced : bool
        Real time after ``fast_forward_s`` (else as fast as possible throughout).
    precompute : bool
        Build every tick's bytes before the run, so the worker's CPU is the acquisition's only.
    """

    url = "bench://synthetic"

    def __init__(
        self,
        board: SyntheticBoard,
        duration_s: float,
        *,
        fast_forward_s: float = 0.0,
        paced: bool = True,
        precompute: bool = True,
    ) -> None:
        self.board = board
        self.n_ticks = round(duration_s / TICK_S)
        self.fast_forward_ticks = round(fast_forward_s / TICK_S)
        self.paced = paced
        self._ticks = [b"\x00" + board.tick(k) for k in range(self.n_ticks)] if precompute else None
        self._closed = threading.Event()
        self.paced_start: float | None = None  # host time the paced part began

    def chunks(self) -> Iterator[TimedChunk]:
        """Yield tick by tick."""
        start = None
        for k in range(self.n_ticks):
            if self._closed.is_set():
                return
            data = self._ticks[k] if self._ticks is not None else self.board.tick(k)
            if self.paced and k >= self.fast_forward_ticks:
                if start is None:
                    start = self.paced_start = time.monotonic()
                delay = start + (k - self.fast_forward_ticks + 1) * TICK_S - time.monotonic()
                if delay > 0 and self._closed.wait(delay):
                    return
            yield TimedChunk(data, time.time())

    def close(self) -> None:
        """Stop at the next tick."""
        self._closed.set()


class TimedPipeline(Pipeline):
    """The live pipeline, counting the worker's CPU seconds spent in it."""

    def __init__(self, **options: Any) -> None:
        super().__init__(display=True, **options)
        self.cpu_s = 0.0

    def process(self, item: Any) -> PipelineOutput:
        start = time.thread_time()
        output = super().process(item)
        self.cpu_s += time.thread_time() - start
        return output


class WorkerProbe:
    """A sink that reads the worker thread's CPU clock (and RSS each device minute) as items pass."""

    def __init__(self, rss_every_s: float | None = None) -> None:
        self.cpu_s = 0.0
        self.rss_mb: list[tuple[float, float]] = []
        self._rss_every_s = rss_every_s
        self._next_rss_s = 0.0

    def write(self, item: object) -> None:
        self.cpu_s = time.thread_time()
        if self._rss_every_s is not None and isinstance(item, Block) and item.info.name == "emg":
            time_s = item.end_index / item.info.sample_rate_hz
            if time_s >= self._next_rss_s:
                self.rss_mb.append((time_s, rss_mb()))
                self._next_rss_s += self._rss_every_s

    def close(self) -> None:
        self.cpu_s = time.thread_time()


def _percentiles_ms(values: list[float] | np.ndarray, qs: tuple[float, ...] = (50, 99)) -> list[float]:
    if len(values) == 0:
        return [math.nan for _ in qs]
    return [float(v) * 1000 for v in np.percentile(values, qs)]


def _frames(app: Any, window: Any, seconds: float, paced: bool) -> tuple[list[float], list[float]]:
    """Frame times and the GUI thread's CPU seconds per frame, over ``seconds`` of frames paced to the
    window's timer or back to back. Back to back, only the frames that had something new to draw
    count (the others return at once)."""
    times, cpu = [], []
    start = time.perf_counter()
    k = 0
    while time.perf_counter() - start < seconds:
        t0, c0 = time.perf_counter(), time.thread_time()
        drew = window.refresh()
        app.processEvents()
        if drew or paced:
            times.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
        k += 1
        if paced:
            delay = start + k * FRAME_INTERVAL_S - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    return times, cpu


def _live_run(n_emg: int, *, paced_s: float, unpaced_s: float, ecg: str = "auto") -> dict[str, float]:
    from biofeed.live.qt import application
    from biofeed.live.window import LiveWindow

    app = application()
    board = SyntheticBoard(n_emg)
    source = PacedBoardSource(board, WARM_UP_S + paced_s + unpaced_s + 5.0, fast_forward_s=WARM_UP_S)
    with tempfile.TemporaryDirectory() as folder:
        recording = RecordingSwitch(source.url)
        recording.start(Path(folder) / "rec")
        ring = RingBufferSink(latency_history=1_000_000)
        pipeline = TimedPipeline(analyzer_options={"ecg": ecg})
        probe = WorkerProbe()
        session = LiveSession(source, recording, ring=ring, pipeline=pipeline, sinks=[probe])
        window = LiveWindow(ring, controls=session)
        window.resize(*WINDOW_SIZE)
        window.show()
        session.start()
        while source.paced_start is None or (ring.state.now_s or 0.0) < WARM_UP_S:
            app.processEvents()
            time.sleep(0.01)
        _frames(app, window, 1.0, paced=True)  # the first draws build the plots
        n_latencies = ring.latencies_s().size
        worker_cpu0, pipeline_cpu0, gui_cpu0 = probe.cpu_s, pipeline.cpu_s, time.thread_time()
        wall0 = time.perf_counter()
        paced, paced_cpu = _frames(app, window, paced_s, paced=True)
        wall = time.perf_counter() - wall0
        gui_cpu = time.thread_time() - gui_cpu0
        worker_cpu, pipeline_cpu = probe.cpu_s - worker_cpu0, pipeline.cpu_s - pipeline_cpu0
        latencies = ring.latencies_s()[n_latencies:]
        unpaced = _frames(app, window, unpaced_s, paced=False)[0] if unpaced_s else []
        session.stop()
        session.close(session.wait())
        window.close()
    p50, p99 = _percentiles_ms(paced)
    cpu50, cpu99 = _percentiles_ms(paced_cpu)
    lat50, lat99 = _percentiles_ms(latencies)
    return {
        "paced_fps": len(paced) / wall,
        "frame_p50_ms": p50,
        "frame_p99_ms": p99,
        "frame_cpu_p50_ms": cpu50,
        "frame_cpu_p99_ms": cpu99,
        "fps_cpu_bound": len(paced_cpu) / sum(paced_cpu),
        "fps": len(unpaced) / sum(unpaced) if unpaced else math.nan,
        "unpaced_frame_p99_ms": _percentiles_ms(unpaced)[1],
        "latency_p50_ms": lat50,
        "latency_p99_ms": lat99,
        "latency_max_ms": float(latencies.max()) * 1000 if latencies.size else math.nan,
        "worker_cpu_pct": 100 * worker_cpu / wall,
        "pipeline_cpu_pct": 100 * pipeline_cpu / wall,
        "gui_cpu_pct": 100 * gui_cpu / wall,
    }


def _memory_run(session_s: float) -> dict[str, float]:
    from biofeed.live.qt import application
    from biofeed.live.window import LiveWindow

    app = application()
    # a pandiculation every 5 minutes, as a session has them: the trials are kept (about 11 kB each,
    # the history table's row included), everything else is bounded
    source = PacedBoardSource(SyntheticBoard(4, contraction_every_s=300.0), session_s, paced=False, precompute=False)
    ring = RingBufferSink()
    probe = WorkerProbe(rss_every_s=60.0)
    session = LiveSession(source, RecordingSwitch(source.url), ring=ring, sinks=[probe])
    window = LiveWindow(ring, controls=session)
    window.resize(*WINDOW_SIZE)
    window.show()
    start = time.perf_counter()
    session.start()
    while not session.join(MEMORY_FRAME_INTERVAL_S):
        window.refresh()
        app.processEvents()
    session.close(session.wait())
    elapsed = time.perf_counter() - start
    window.close()
    samples = np.array(probe.rss_mb)
    settled = samples[samples[:, 0] >= 0.1 * session_s]
    slope_mb_per_h = float(np.polyfit(settled[:, 0] / 3600, settled[:, 1], 1)[0]) if len(settled) > 2 else math.nan
    return {
        "memory_session_s": session_s,
        "memory_x_realtime": session_s / elapsed,
        "memory_rss_start_mb": float(settled[0, 1]),
        "memory_rss_end_mb": float(samples[-1, 1]),
        "memory_growth_mb": float(samples[-1, 1] - settled[0, 1]),
        "memory_slope_mb_per_h": slope_mb_per_h,
    }


def run(quick: bool) -> dict[str, Any]:
    """Measure the live view; ``quick`` takes under a minute, the full run about 25 minutes."""
    paced_s, unpaced_s, memory_s = (4.0, 2.0, 60.0) if quick else (30.0, 15.0, 7200.0)
    figures: dict[str, Any] = {"load_average_1min_start": os.getloadavg()[0]}
    four = _live_run(4, paced_s=paced_s, unpaced_s=unpaced_s)
    eight = _live_run(8, paced_s=paced_s, unpaced_s=unpaced_s)
    no_ecg = _live_run(4, paced_s=paced_s, unpaced_s=0.0, ecg="off")
    figures["fps"] = four["fps"]
    for label, result in (("4ch", four), ("8ch", eight)):
        for key, value in result.items():
            figures[f"{key}_{label}"] = value
    figures["latency_p99_ms"] = four["latency_p99_ms"]
    figures["latency_p50_ms_ecg_off"] = no_ecg["latency_p50_ms"]
    figures["latency_p99_ms_ecg_off"] = no_ecg["latency_p99_ms"]
    figures["worker_cpu_pct_ecg_off"] = no_ecg["worker_cpu_pct"]
    figures.update(_memory_run(memory_s))
    figures["growth_mb"] = figures["memory_growth_mb"]
    figures["load_average_1min_end"] = os.getloadavg()[0]
    return {"name": "gui", "figures": figures, "peers": {}}
