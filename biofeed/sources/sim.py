"""The built-in simulated board as a source: ``sim://SCENARIO?seed=N&speed=X&...``.

Parameters: ``seed`` (whole number >= 0), ``speed``, ``duration`` (device seconds), ``clock_ppm``,
``noise`` (noise floor, uV), ``ecg`` (R peak, uV), ``mains`` (50 or 60 Hz).

Speed 1 is real time, 2 twice as fast, 0 as fast as possible. Chunks carry 20 ms of device time
(at most 4096 bytes), stamped with the host time they were handed over; at speed 0, with the host
time a real-time run would have delivered them at, so time-sync fits see a plausible device.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator

from biofeed.sim.device import SimulatedDevice
from biofeed.sim.pacing import paced_chunks
from biofeed.sources.base import SourceUrl, TimedChunk

__all__ = ["SIM_PARAMETERS", "SimSource"]

SIM_PARAMETERS: frozenset[str] = frozenset({"seed", "speed", "duration", "clock_ppm", "noise", "ecg", "mains"})
"""Query parameters ``sim://`` takes."""

_STEP_S = 0.02
_MAX_CHUNK_BYTES = 4096


class SimSource:
    """Chunks of a :class:`~biofeed.sim.device.SimulatedDevice`, paced by the host clock.

    Parameters
    ----------
    device : SimulatedDevice
        The device to play (consumed by :meth:`chunks`).
    speed : float
        1 = real time, 0 = as fast as possible.
    clock : callable returning float
        Monotonic host seconds that pace the chunks.
    wall_clock : callable returning float
        Host time (``time.time``) that stamps them.
    wait : callable taking seconds, or None
        Sleeps between chunks; a true return value stops. None: wait on the source's own stop
        event, so :meth:`close` interrupts a wait at once.

    Attributes
    ----------
    url : str
        The ``sim://`` URL of this source.
    device : SimulatedDevice
        The device, for its ground truth (:meth:`SimulatedDevice.truth`).
    """

    def __init__(
        self,
        device: SimulatedDevice,
        *,
        speed: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        wait: Callable[[float], object] | None = None,
    ) -> None:
        if not (math.isfinite(speed) and speed >= 0):
            raise ValueError(f"speed must be a finite number >= 0 (0 = as fast as possible), got {speed}")
        self.device = device
        self.url = f"{device.url}&speed={speed:g}"
        self._speed = speed
        self._clock = clock
        self._wall_clock = wall_clock
        self._closed = threading.Event()
        self._wait = self._closed.wait if wait is None else wait

    @classmethod
    def from_url(
        cls,
        url: SourceUrl,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        wait: Callable[[float], object] | None = None,
    ) -> SimSource:
        """Open ``sim://SCENARIO?...`` (parameters in the module docstring).

        Raises
        ------
        ValueError
            An unknown scenario or parameter, or a value out of range; the message names the
            allowed ones.
        """
        url.check_keys(set(SIM_PARAMETERS))
        duration_s = url.number("duration", math.nan)
        if "duration" in url.params and not duration_s > 0:
            raise ValueError(f"parameter duration={duration_s:g} must be a positive number of seconds")
        mains_hz = url.number("mains", math.nan)
        if "mains" in url.params and mains_hz not in (50.0, 60.0):
            raise ValueError(f"parameter mains={mains_hz:g} must be 50 or 60 (Hz)")
        device = SimulatedDevice(
            url.target,
            seed=url.whole_number("seed", 0),
            duration_s=None if math.isnan(duration_s) else duration_s,
            clock_ppm=url.number("clock_ppm", 0.0),
            noise_floor_uv=url.number("noise", 1.5, minimum=0.0),
            ecg_r_peak_uv=url.number("ecg", 0.0, minimum=0.0),
            mains_hz=None if math.isnan(mains_hz) else mains_hz,
        )
        return cls(device, speed=url.number("speed", 1.0, minimum=0.0), clock=clock, wall_clock=wall_clock, wait=wait)

    def _wait_or_closed(self, seconds: float) -> bool:
        return bool(self._wait(seconds)) or self._closed.is_set()

    def chunks(self) -> Iterator[TimedChunk]:
        """Yield the device's bytes until the run ends or :meth:`close` is called."""
        wall_start_s = self._wall_clock()
        clock_start_s = self._clock()
        for chunk in paced_chunks(
            self.device,
            speed=self._speed,
            step_s=_STEP_S,
            max_chunk_bytes=_MAX_CHUNK_BYTES,
            clock=self._clock,
            wait=self._wait_or_closed,
        ):
            if self._closed.is_set():
                return
            if self._speed > 0:
                received_at = wall_start_s + (self._clock() - clock_start_s)
            else:
                received_at = wall_start_s + chunk.due_s
            yield TimedChunk(chunk.data, received_at)

    def close(self) -> None:
        """Stop: ``chunks()`` returns at its next step. Safe from another thread, and twice."""
        self._closed.set()
