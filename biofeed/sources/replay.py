"""Replay of a recording as a source: ``replay://DIR?speed=X``.

Each chunk is one recorded frame with its 0x00 delimiter and its recorded receive time, so the
decoder and pipeline see what they saw live. ``speed=0`` replays as fast as the consumer takes
chunks, ``speed=1`` in real time paced by the recorded receive times, ``speed=X`` X times faster.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from biofeed.record.reader import Recording, open_recording
from biofeed.sources.base import SourceUrl, TimedChunk

__all__ = ["ReplaySource"]


class ReplaySource:
    """Chunks from a recording folder.

    Parameters
    ----------
    path : Path or str
        The recording folder.
    speed : float
        0 = as fast as possible; otherwise the factor on real time (1 = real time).
    clock : callable returning float
        Monotonic time in seconds that paces the replay.
    wait : callable taking seconds
        Waits that long; None waits on an event that :meth:`close` sets, so closing interrupts a
        wait at once. Tests inject a fake clock and wait instead of sleeping.

    Attributes
    ----------
    url : str
        ``replay://PATH?speed=X``.
    recording : Recording
        The opened recording (its ``torn_tail_bytes`` is known once the replay has ended).

    Raises
    ------
    ValueError
        When ``speed`` is negative or not finite.
    RecordingError
        When the folder is not a recording.
    """

    def __init__(
        self,
        path: Path | str,
        speed: float = 0.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], object] | None = None,
    ) -> None:
        if not (math.isfinite(speed) and speed >= 0):
            raise ValueError(f"speed must be 0 (as fast as possible) or a positive factor on real time, got {speed!r}")
        self.recording: Recording = open_recording(path)
        self.url = f"replay://{path}?speed={speed:g}"
        self._speed = speed
        self._clock = clock
        self._closed = threading.Event()
        self._wait = wait if wait is not None else self._closed.wait

    @classmethod
    def from_url(cls, url: SourceUrl) -> ReplaySource:
        """Open ``replay://DIR?speed=X``.

        Raises
        ------
        ValueError
            An unknown parameter, a missing folder name, or a negative or non-numeric speed.
        RecordingError
            When the folder is not a recording.
        """
        url.check_keys({"speed"})
        if not url.target:
            raise ValueError("replay:// needs a recording folder, e.g. replay:///home/me/recordings/2025-01-31")
        return cls(url.target, url.number("speed", 0.0, minimum=0.0))

    def chunks(self) -> Iterator[TimedChunk]:
        """Yield one chunk per recorded frame until the recording ends or :meth:`close` is called.

        Yields
        ------
        TimedChunk
            The frame followed by 0x00, with its recorded ``received_at``.
        """
        first_received_at: float | None = None
        start_s = 0.0
        for record in self.recording.frames():
            if self._closed.is_set():
                return
            # frames without a usable receive time are passed on at once rather than paced
            if self._speed > 0 and math.isfinite(record.received_at):
                if first_received_at is None:
                    first_received_at = record.received_at
                    start_s = self._clock()
                delay_s = start_s + (record.received_at - first_received_at) / self._speed - self._clock()
                if delay_s > 0:
                    self._wait(delay_s)
                    if self._closed.is_set():
                        return
            yield TimedChunk(record.frame + b"\x00", record.received_at)

    def close(self) -> None:
        """Stop: a wait in progress ends at once and ``chunks()`` returns. Safe from any thread, and twice."""
        self._closed.set()
