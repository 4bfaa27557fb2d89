"""A scripted stand-in for the IMU's PostureTimeline: postures and movements on given spans of device time."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from biofeed.dsp.imu.motion import MotionInterval
from biofeed.dsp.tension import NO_POSTURE

__all__ = ["ScriptedTimeline"]

_TILE_S = 0.1


class ScriptedTimeline:
    """Posture ids per 0.1 s tile from ``(start_s, end_s, posture_id)`` spans (NO_POSTURE elsewhere).

    ``settled_s`` is set by the test to play an IMU that lags; ``movements`` are the intervals
    :meth:`movement_between` reports.
    """

    def __init__(
        self,
        spans: Sequence[tuple[float, float, int]],
        movements: Sequence[MotionInterval] = (),
        labels: Sequence[str] = ("standing", "lying"),
    ) -> None:
        self.spans = list(spans)
        self.movements = list(movements)
        self.labels = list(labels)
        self.settled_s = math.inf
        self.queries: list[tuple[float, float]] = []

    def postures_at(self, times_s: npt.ArrayLike) -> npt.NDArray[np.int64]:
        times = np.asarray(times_s, dtype=np.float64)
        tile_start = np.floor(times / _TILE_S + 1e-9) * _TILE_S
        out = np.full(times.shape, NO_POSTURE, dtype=np.int64)
        for start, end, posture in self.spans:
            out[(tile_start >= start - 1e-9) & (tile_start + _TILE_S <= end + 1e-9)] = posture
        out[times >= self.settled_s] = NO_POSTURE
        return out

    def posture_of(self, start_s: float, end_s: float) -> int | None:
        labels = self.postures_at(np.arange(start_s, end_s - 1e-9, _TILE_S / 2))
        first = int(labels[0])
        return first if first != NO_POSTURE and bool((labels == first).all()) else None

    def __call__(self, start_s: float, end_s: float) -> bool:
        return self.posture_of(start_s, end_s) is not None

    def posture_label(self, posture_id: int) -> str:
        return self.labels[posture_id]

    def movement_between(self, start_s: float, end_s: float) -> MotionInterval | None:
        self.queries.append((start_s, end_s))
        inside = [m for m in self.movements if m.overlaps(start_s, end_s)]
        if not inside:
            return None
        return MotionInterval(
            min(m.start_s for m in inside),
            max(m.end_s for m in inside),
            max(m.peak_angular_rate_dps for m in inside),
            max(m.peak_linear_acceleration_g for m in inside),
        )
