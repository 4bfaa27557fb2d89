"""Pacing a simulated device's bytes by a host clock.

Device time advances in fixed steps; with ``speed`` > 0 each step waits until the host clock reaches
the step's host time (the device clock error included) divided by ``speed``, and a consumer that
falls behind gets the missed steps back to back, never skipped. With ``speed`` 0 there is no waiting.
Clock and wait are injected so tests run on a fake clock; ``wait(seconds)`` returning true stops
the pacing (``threading.Event.wait`` gives that, so ``close()`` interrupts a wait at once).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

__all__ = ["PacedChunk", "PacedDevice", "paced_chunks"]


class PacedDevice(Protocol):
    """What pacing needs of a device (:class:`biofeed.sim.device.SimulatedDevice` has it)."""

    @property
    def finished(self) -> bool:
        """True once everything has been emitted."""
        ...

    def frames_until(self, device_time_s: float) -> bytes:
        """Return the bytes sent up to a device time and not returned before."""
        ...

    def host_time_of(self, device_time_s: float) -> float:
        """Host seconds since the start at which the device clock shows ``device_time_s``."""
        ...


@dataclass(frozen=True)
class PacedChunk:
    """Bytes due at one step.

    Attributes
    ----------
    data : bytes
        At most ``max_chunk_bytes`` of the device's bytes.
    device_time_s : float
        Device time up to which the bytes were sent.
    due_s : float
        Host seconds since the start at which they were due (``host_time_of(device_time_s) /
        speed``; with speed 0 the host time a real-time run would have had).
    """

    data: bytes
    device_time_s: float
    due_s: float


def paced_chunks(
    device: PacedDevice,
    *,
    speed: float,
    step_s: float,
    max_chunk_bytes: int,
    clock: Callable[[], float],
    wait: Callable[[float], object],
) -> Iterator[PacedChunk]:
    """Yield the device's bytes step by step, paced by the host clock.

    Parameters
    ----------
    device : PacedDevice
        The device; it is advanced (its bytes are consumed).
    speed : float
        1 = real time, 2 = twice as fast, 0 = as fast as possible.
    step_s : float
        Device seconds per step.
    max_chunk_bytes : int
        Longest chunk; a step's bytes beyond it come as further chunks.
    clock : callable returning float
        Monotonic host seconds.
    wait : callable taking seconds
        Sleeps; a true return value ends the iteration (the consumer asked to stop).

    Raises
    ------
    ValueError
        A negative or non-finite speed, a non-positive step or chunk size.
    """
    if not (math.isfinite(speed) and speed >= 0):
        raise ValueError(f"speed must be a finite number >= 0 (0 = as fast as possible), got {speed}")
    if not (math.isfinite(step_s) and step_s > 0) or max_chunk_bytes <= 0:
        raise ValueError(f"step_s and max_chunk_bytes must be positive, got {step_s} and {max_chunk_bytes}")
    start_s = clock()
    step_index = 0
    while not device.finished:
        device_time_s = step_index * step_s
        host_s = device.host_time_of(device_time_s)
        due_s = host_s / speed if speed > 0 else host_s
        delay_s = due_s - (clock() - start_s) if speed > 0 else 0.0
        if wait(max(0.0, delay_s)):
            return
        data = device.frames_until(device_time_s)
        for offset in range(0, len(data), max_chunk_bytes):
            yield PacedChunk(data[offset : offset + max_chunk_bytes], device_time_s, due_s)
        step_index += 1
