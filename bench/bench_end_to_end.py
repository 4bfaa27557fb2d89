"""Sample-to-envelope latency through the whole live path: simulator -> pty -> serial source -> ring buffer.

The built-in simulator (``SimulatedDevice``, ``pandiculation``: 2 EMG channels at 2 kHz and two IMUs
at 100 Hz) writes its bytes into the master of a pseudo-terminal (``open_pty``, as ``biofeed sim
--pty`` does) from a writer thread, one EMG packet (10 ms) at a time in real time, and notes the host
time (``time.time``) each write returned: every EMG sample below the device time of that step has then
been written. On the other side the real acquisition path reads the terminal: ``SerialSource`` ->
``Acquisition`` (decoder) -> the live ``Pipeline(display=True)`` -> ``RingBufferSink``. A probe sink
after the ring buffer notes the host time each display-envelope block was stored. Envelope value
``k`` covers device samples up to ``k * hop - 1`` (``RingBufferSink``'s convention), so its latency
is its storage time minus the write time of that sample: what a user sees of the newest sample.

The first 11 device seconds are written as fast as the terminal takes them (the noise floor takes
10 s; nothing is displayed before) and not measured; the writer then waits until the envelope has
caught up with them and writes ``paced_s`` seconds in real time. The
simulator's default has no heart artefact; the pipeline's ECG stage (``ecg="auto"``) holds the display
signal back by design once it subtracts one (docs/dsp.md), so the run is repeated with ``ecg="off"``
(``*_ecg_off``) and on a device with a 50 uV ECG, default pipeline (``*_with_ecg``). Full: 3 runs of
30 s per setting; quick: 1 run of 3 s. ``latency_p99_ms`` is the default pipeline's on the default
simulator (median over runs). The machine is shared: load
averages are reported, and the writer thread, the reader and the pipeline all compete for its 2 cores.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from biofeed.blocks import Block
from biofeed.pipeline import Pipeline
from biofeed.runner import Acquisition
from biofeed.sim.device import EMG_RATE_HZ, SimulatedDevice
from biofeed.sim.outputs import open_pty
from biofeed.sinks.ring_buffer import RingBufferSink
from biofeed.sources.serial import SerialSource

__all__ = ["run"]

WARM_UP_S = 11.0
STEP_S = 0.01  # one EMG packet
_CATCH_UP_SLACK_SAMPLES = EMG_RATE_HZ // 2  # more than the ECG stage's hold-back of the display (0.3 s)
ECG_R_PEAK_UV = 50.0  # a typical heart artefact on the lower back (docs/dsp.md)
_ENVELOPE_STREAM = "emg.envelope"


class _Writer(threading.Thread):
    """Writes the device's bytes into the pty master; fast during warm-up, then in real time."""

    def __init__(self, device: SimulatedDevice, fd: int, warm_up_s: float, caught_up: Callable[[int], bool]) -> None:
        super().__init__(name="bench-sim-writer", daemon=True)
        self.device, self.fd, self.warm_up_s, self.caught_up = device, fd, warm_up_s, caught_up
        self.end_samples: list[int] = []  # after write k, EMG samples below end_samples[k] were written
        self.written_at: list[float] = []
        self.paced_from_sample = round(warm_up_s * EMG_RATE_HZ)
        self.stop = threading.Event()

    def run(self) -> None:
        step = 0
        paced_start: float | None = None
        while not self.device.finished and not self.stop.is_set():
            device_time_s = step * STEP_S
            if device_time_s >= self.warm_up_s:
                if paced_start is None:
                    # the reader works off the warm-up's backlog before real time starts, else the
                    # first paced samples would measure the backlog
                    while not self.caught_up(self.paced_from_sample - _CATCH_UP_SLACK_SAMPLES):
                        if self.stop.wait(0.01):
                            return
                    paced_start = time.monotonic() - STEP_S
                delay_s = paced_start + (device_time_s - self.warm_up_s + STEP_S) - time.monotonic()
                if delay_s > 0 and self.stop.wait(delay_s):
                    return
            view = memoryview(self.device.frames_until(device_time_s))
            while view:
                try:
                    view = view[os.write(self.fd, view) :]
                except BlockingIOError:  # the reader is behind: wait for it, never drop
                    if self.stop.wait(0.001):
                        return
            self.end_samples.append(round(device_time_s * EMG_RATE_HZ))
            self.written_at.append(time.time())
            step += 1


class _EnvelopeProbe:
    """A sink after the ring buffer: when each display-envelope block was stored."""

    def __init__(self) -> None:
        self.stored: list[tuple[int, int, float, float]] = []  # (first k, end k, envelope Hz, host time)

    def covers(self, sample_index: int) -> bool:
        """An envelope value covering ``sample_index`` has been stored."""
        if not self.stored:
            return False
        _, end, envelope_hz, _ = self.stored[-1]
        return (end - 1) * round(EMG_RATE_HZ / envelope_hz) - 1 >= sample_index

    def write(self, item: object) -> None:
        if isinstance(item, Block) and item.info.name == _ENVELOPE_STREAM and item.n_samples:
            self.stored.append((item.first_index, item.end_index, item.info.sample_rate_hz, time.time()))

    def close(self) -> None:
        """Nothing to release."""


def _one_run(paced_s: float, ecg: str, seed: int, ecg_r_peak_uv: float = 0.0) -> dict[str, float]:
    device = SimulatedDevice(
        "pandiculation", seed=seed, duration_s=WARM_UP_S + paced_s + 1.0, ecg_r_peak_uv=ecg_r_peak_uv
    )
    master_fd, slave_path = open_pty()
    try:
        source = SerialSource(slave_path)
        ring = RingBufferSink()
        probe = _EnvelopeProbe()
        acquisition = Acquisition(
            source, sinks=[ring, probe], pipeline=Pipeline(display=True, analyzer_options={"ecg": ecg})
        )
        writer = _Writer(device, master_fd, WARM_UP_S, probe.covers)
        load_start = os.getloadavg()[0]
        acquisition.start()
        writer.start()
        writer.join()
        time.sleep(0.5 if ecg == "off" else 1.0)  # let the last envelopes through before stopping
        acquisition.stop()
        acquisition.wait()
    finally:
        writer.stop.set()
        os.close(master_fd)
    ends = np.array(writer.end_samples)
    written_at = np.array(writer.written_at)
    latencies = []
    for first, end, envelope_hz, stored_at in probe.stored:
        hop = round(EMG_RATE_HZ / envelope_hz)
        newest = np.arange(first, end) * hop - 1  # the newest device sample each value covers
        newest = newest[newest >= writer.paced_from_sample]
        if newest.size:
            written = written_at[np.searchsorted(ends, newest, side="right")]
            latencies.append(stored_at - written)
    values = np.concatenate(latencies) if latencies else np.array([np.nan])
    p50, p99 = np.percentile(values, (50, 99)) * 1000
    return {
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "max_ms": float(values.max() * 1000),
        "n": float(values.size),
        "load": load_start,
    }


def _summary(runs: list[dict[str, float]], suffix: str) -> dict[str, Any]:
    p99 = np.array([r["p99_ms"] for r in runs])
    return {
        f"latency_p50_ms{suffix}": float(np.median([r["p50_ms"] for r in runs])),
        f"latency_p99_ms{suffix}": float(np.median(p99)),
        f"latency_p99_ms_min{suffix}": float(p99.min()),
        f"latency_p99_ms_max{suffix}": float(p99.max()),
        f"latency_max_ms{suffix}": float(max(r["max_ms"] for r in runs)),
        f"envelope_values{suffix}": int(sum(r["n"] for r in runs)),
    }


def run(quick: bool) -> dict[str, Any]:
    """Measure the latency with the default pipeline and without its ECG stage."""
    repeats, paced_s = (1, 3.0) if quick else (3, 30.0)
    figures: dict[str, Any] = {"load_average_1min_start": os.getloadavg()[0], "runs": repeats, "paced_s": paced_s}
    figures.update(_summary([_one_run(paced_s, "auto", seed) for seed in range(repeats)], ""))
    figures.update(_summary([_one_run(paced_s, "off", seed) for seed in range(repeats)], "_ecg_off"))
    with_ecg = [_one_run(paced_s, "auto", seed, ecg_r_peak_uv=ECG_R_PEAK_UV) for seed in range(repeats)]
    figures.update(_summary(with_ecg, "_with_ecg"))
    figures["load_average_1min_end"] = os.getloadavg()[0]
    return {"name": "end_to_end", "figures": figures, "peers": {}}
