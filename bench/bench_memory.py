"""Memory of a long session replayed at full speed through the acquisition path, recording on.

The built-in simulator (``SimulatedDevice``, ``flexion-relaxation``, whose bend-and-return cycles
repeat for as long as it runs: 2 EMG channels at 2 kHz, two IMUs at 100 Hz, movement, trunk angles
and phases throughout) plays a 2-hour session (``--quick``: 2 minutes) as fast as possible through
``SimSource`` -> ``Acquisition`` (decoder, ``RecordingWriter`` to a temporary folder) -> the live
``Pipeline(display=True)`` -> ``RingBufferSink``, in a fresh process (``spawn``) so nothing else
lives in it. A probe sink reads the process's resident memory (``VmRSS``) 120 times along the
session (every device minute of 2 hours).

``growth_mb`` is the RSS at the end minus the RSS at the first sample after 10 % of the session (the
ring buffer, caches and the allocator settle first); ``slope_mb_per_h`` is a least-squares line
through the samples after 10 %. The recording's own size is reported (it is on disk, not in memory).
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

from bench.process_memory import rss_mb

__all__ = ["run"]

SCENARIO = "flexion-relaxation"
SAMPLES_PER_SESSION = 120  # RSS every minute of 2 hours


class _RssProbe:
    """A sink that samples RSS each ``every_s`` device seconds of the EMG stream."""

    def __init__(self, every_s: float) -> None:
        self.samples: list[tuple[float, float]] = []  # (device s, MB)
        self._every_s = every_s
        self._next_s = 0.0

    def write(self, item: object) -> None:
        from biofeed.blocks import Block

        if isinstance(item, Block) and item.info.name == "emg" and item.n_samples:
            time_s = item.end_index / item.info.sample_rate_hz
            if time_s >= self._next_s:
                self.samples.append((time_s, rss_mb()))
                self._next_s += self._every_s

    def close(self) -> None:
        self.samples.append((math.inf, rss_mb()))


def _child(session_s: float, queue: Any) -> None:
    from biofeed.pipeline import Pipeline
    from biofeed.record.writer import RecordingWriter
    from biofeed.runner import Acquisition
    from biofeed.sim.device import SimulatedDevice
    from biofeed.sinks.ring_buffer import RingBufferSink
    from biofeed.sources.sim import SimSource

    rss_start = rss_mb()
    device = SimulatedDevice(SCENARIO, seed=0, duration_s=session_s)
    probe = _RssProbe(session_s / SAMPLES_PER_SESSION)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        path = Path(folder) / "session"
        wall0, cpu0 = time.perf_counter(), time.process_time()
        with RecordingWriter(path, source_url=device.url) as writer:
            result = Acquisition(
                SimSource(device, speed=0.0),
                recorder=writer,
                sinks=[RingBufferSink(), probe],
                pipeline=Pipeline(display=True),
            ).run()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        size_mb = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
    if result.error is not None:
        raise result.error
    queue.put((probe.samples, rss_start, wall, cpu, size_mb))


def run(quick: bool) -> dict[str, Any]:
    """Replay the session (quick: 2 minutes, else 2 hours) and report RSS along it."""
    session_s = 120.0 if quick else 7200.0
    load_start = os.getloadavg()[0]
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(session_s, queue))
    process.start()
    samples, rss_start, wall, cpu, size_mb = queue.get(timeout=4 * 3600)
    process.join()
    if process.exitcode:
        raise RuntimeError(f"the session replay failed with exit code {process.exitcode}")
    points = np.array(samples[:-1])
    end_mb = samples[-1][1]
    settled = points[points[:, 0] >= 0.1 * session_s]
    first_mb = float(settled[0, 1]) if len(settled) else math.nan
    slope = float(np.polyfit(settled[:, 0] / 3600, settled[:, 1], 1)[0]) if len(settled) > 2 else math.nan
    figures = {
        "session_s": session_s,
        "scenario": SCENARIO,
        "x_realtime": session_s / wall,
        "x_realtime_cpu": session_s / cpu,
        "rss_after_imports_mb": rss_start,
        "rss_at_10pct_mb": first_mb,
        "rss_end_mb": end_mb,
        "rss_max_mb": float(max(points[:, 1].max(), end_mb)),
        "growth_mb": end_mb - first_mb,
        "slope_mb_per_h": slope,
        "samples": len(points),
        "recording_mb": size_mb,
        "load_average_1min_start": load_start,
        "load_average_1min_end": os.getloadavg()[0],
    }
    return {"name": "memory", "figures": figures, "peers": {}}
