"""Quasi-static test and movement intervals from the orientation streams of one or two IMUs.

SCIENCE.md section 4: the set point counts only while the trunk is quasi-static, ``|angular rate| <
5 deg/s`` and ``linear acceleration < 0.05 g``. :class:`MotionTracker` takes the orientation blocks
of :class:`~biofeed.dsp.imu.fusion.OrientationFusion` (which carry ``|gyro|`` and ``|acc - gravity|``)
and keeps, per 0.1 s tile on a grid anchored to absolute device indices, the peak of both and the mean
direction of "up" for each stream. A tile is quiet when both peaks are below the limits; a span is
quiet when every tile of every stream in it is (a missing tile, from a gap, is not).

Movement intervals are the runs of tiles in which any stream is not quiet, merged across quiet
breaks shorter than ``merge_s``; they are reported once closed. Consumers decide what matters: the
set-point gate refuses any of them (:mod:`biofeed.dsp.imu.gate`); only *gross* movement
(:attr:`MotionInterval.gross`) near a contraction makes it a movement artifact rather than a trial,
since a lumbar contraction itself arches the back at about 10 deg/s. :meth:`MotionTracker.tile_up`
gives the gate each still tile's tilt, :meth:`MotionTracker.movement_between` the movement inside
a span (for a contraction, without waiting for the interval to close).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block
from biofeed.dsp.imu.fusion import ANGULAR_RATE_ROW, LINEAR_ACCELERATION_ROW, QUATERNION_ROWS
from biofeed.dsp.imu.posture import Posture
from biofeed.dsp.stage import check_rate, starts_segment

__all__ = [
    "GROSS_LINEAR_ACCELERATION_G",
    "GROSS_RATE_DPS",
    "MotionInterval",
    "MotionTracker",
    "QuasiStaticCriteria",
    "up_vectors",
]

_Array = npt.NDArray[np.float64]

GROSS_RATE_DPS = 30.0
"""Movement at least this fast is a change of posture or a bend, not the arching of a contraction
(the simulator's pandiculation arches at 11 deg/s at most; its bends and posture changes exceed 40)."""
GROSS_LINEAR_ACCELERATION_G = 0.2
"""Linear acceleration of a step, a bump or a fall, not of a trunk movement in place."""

# Per-tile record columns.
_RATE, _LINEAR, _UP = 0, 1, slice(2, 5)
_N_COLUMNS = 5


@dataclass(frozen=True)
class QuasiStaticCriteria:
    """Limits and grid of the quasi-static test.

    Attributes
    ----------
    max_angular_rate_dps : float
        SCIENCE.md 4: 5 deg/s.
    max_linear_acceleration_g : float
        SCIENCE.md 4: 0.05 g.
    tile_s : float
        Resolution of the test.
    merge_s : float
        Quiet breaks shorter than this do not end a movement interval.
    history_s : float
        How far back tiles are kept for queries.
    """

    max_angular_rate_dps: float = 5.0
    max_linear_acceleration_g: float = 0.05
    tile_s: float = 0.1
    merge_s: float = 0.5
    history_s: float = 600.0

    def __post_init__(self) -> None:
        for name in ("max_angular_rate_dps", "max_linear_acceleration_g", "tile_s", "history_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not (math.isfinite(self.merge_s) and self.merge_s >= 0):
            raise ValueError(f"merge_s must be >= 0 s, got {self.merge_s!r}")


@dataclass(frozen=True)
class MotionInterval:
    """A span of movement (not quasi-static).

    Attributes
    ----------
    start_s, end_s : float
        Device seconds, tile-aligned.
    peak_angular_rate_dps : float
        Largest ``|gyro|`` of any stream in it.
    peak_linear_acceleration_g : float
        Largest ``|acc - gravity|`` of any stream in it.
    """

    start_s: float
    end_s: float
    peak_angular_rate_dps: float
    peak_linear_acceleration_g: float

    @property
    def gross(self) -> bool:
        """A bend, a change of posture or a bump (:data:`GROSS_RATE_DPS`, :data:`GROSS_LINEAR_ACCELERATION_G`)."""
        return (
            self.peak_angular_rate_dps >= GROSS_RATE_DPS
            or self.peak_linear_acceleration_g >= GROSS_LINEAR_ACCELERATION_G
        )

    def overlaps(self, start_s: float, end_s: float) -> bool:
        """True when the interval touches device time [start_s, end_s)."""
        return self.start_s < end_s and start_s < self.end_s

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "start_s": self.start_s,
            "end_s": self.end_s,
            "peak_angular_rate_dps": self.peak_angular_rate_dps,
            "peak_linear_acceleration_g": self.peak_linear_acceleration_g,
            "gross": self.gross,
        }


def up_vectors(quaternions: npt.ArrayLike) -> _Array:
    """Direction of "up" (earth z) in sensor coordinates, ``R^T z``.

    Parameters
    ----------
    quaternions : array_like, shape (4, n)
        Rows w, x, y, z (an orientation block's quaternion rows).

    Returns
    -------
    ndarray, shape (3, n)
    """
    w, x, y, z = np.asarray(quaternions, dtype=np.float64)
    return np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)])


class _StreamTiles:
    """Tiles of one orientation stream: final ones sorted by index, and the samples of the one still filling.

    The final tiles sit in arrays that grow by doubling and are trimmed from the front, so a span of
    them is a slice found by bisection. Rows once written are never written again (a row handed out
    stays valid): growth and a block that overwrites tiles (a jump back in index) build new arrays.
    """

    def __init__(self) -> None:
        self._index = np.empty(0, dtype=np.int64)
        self._records = np.empty((0, _N_COLUMNS))
        self._start = self._stop = 0  # the held tiles are rows [_start, _stop) of the arrays
        self.filling: _Array | None = None  # its samples (rows of the block), from device index filling_first
        self.filling_first = 0
        self.final_until = 0  # every tile below this index is final (or missing for good)
        self.next_index: int | None = None

    @property
    def index(self) -> npt.NDArray[np.int64]:
        """Indices of the final tiles held, increasing."""
        return self._index[self._start : self._stop]

    @property
    def records(self) -> _Array:
        """Their records, one row each (columns ``_RATE``, ``_LINEAR``, ``_UP``)."""
        return self._records[self._start : self._stop]

    def span(self, first: int, last: int) -> tuple[npt.NDArray[np.int64], _Array]:
        """Indices and records of the tiles held in ``[first, last]``."""
        index = self.index
        low, high = int(np.searchsorted(index, first)), int(np.searchsorted(index, last, side="right"))
        return index[low:high], self.records[low:high]

    def get(self, tile: int) -> _Array | None:
        """The record of one tile; None when it is not held."""
        index = self.index
        position = int(np.searchsorted(index, tile))
        if position < index.shape[0] and index[position] == tile:
            record: _Array = self.records[position]
            return record
        return None

    def put(self, index: npt.NDArray[np.int64], records: _Array) -> None:
        """Make final the tiles ``index`` (increasing) with ``records``, replacing any held with those indices."""
        held = self.index
        if held.shape[0] and index[0] <= held[-1]:
            keep = ~np.isin(held, index)
            merged_index = np.concatenate([held[keep], index])
            order = np.argsort(merged_index, kind="stable")
            self._index, self._records = merged_index[order], np.concatenate([self.records[keep], records])[order]
            self._start, self._stop = 0, self._index.shape[0]
            return
        n_held, n_new = self._stop - self._start, index.shape[0]
        if self._stop + n_new > self._index.shape[0]:
            capacity = max(2 * (n_held + n_new), 64)
            grown_index, grown_records = np.empty(capacity, dtype=np.int64), np.empty((capacity, _N_COLUMNS))
            grown_index[:n_held], grown_records[:n_held] = self.index, self.records
            self._index, self._records, self._start, self._stop = grown_index, grown_records, 0, n_held
        self._index[self._stop : self._stop + n_new] = index
        self._records[self._stop : self._stop + n_new] = records
        self._stop += n_new

    def forget_before(self, tile: int) -> None:
        """Drop the tiles below index ``tile``."""
        self._start += int(np.searchsorted(self.index, tile))


class MotionTracker:
    """Quasi-static state, posture and movement intervals of one or more IMU orientation streams.

    Parameters
    ----------
    sample_rate_hz : float
        IMU rate (all streams).
    streams : sequence of str
        Names of the orientation streams to follow (e.g. ``imu_thoracic_orientation``); a span is
        settled only once every one of them has covered it.
    criteria : QuasiStaticCriteria, optional
    """

    def __init__(
        self, sample_rate_hz: float, streams: Sequence[str], criteria: QuasiStaticCriteria | None = None
    ) -> None:
        if not (math.isfinite(sample_rate_hz) and sample_rate_hz > 0):
            raise ValueError(f"sample_rate_hz must be a positive number, got {sample_rate_hz!r}")
        if not streams:
            raise ValueError("give at least one orientation stream to follow")
        self.sample_rate_hz = float(sample_rate_hz)
        self.streams = tuple(streams)
        self.criteria = criteria or QuasiStaticCriteria()
        self.tile_samples = max(1, round(self.criteria.tile_s * self.sample_rate_hz))
        self._merge_tiles = round(self.criteria.merge_s * self.sample_rate_hz / self.tile_samples)
        self._history_tiles = math.ceil(self.criteria.history_s * self.sample_rate_hz / self.tile_samples)
        self.reset()

    @property
    def tile_duration_s(self) -> float:
        """Length of a tile, seconds."""
        return self.tile_samples / self.sample_rate_hz

    @property
    def settled_s(self) -> float:
        """Device time up to which every stream's tiles are final (queries before it are answered)."""
        return min(t.final_until for t in self._tiles.values()) * self.tile_duration_s

    def reset(self) -> None:
        """Forget everything."""
        self._tiles = {name: _StreamTiles() for name in self.streams}
        self._next_tile: int | None = None  # next tile the interval builder looks at
        self._open: list[float] | None = None  # [start tile, last moving tile, peak rate, peak linear]

    def process(self, block: Block) -> list[MotionInterval]:
        """Add one orientation block; return the movement intervals that closed.

        Raises
        ------
        ValueError
            For a stream not followed or another rate.
        """
        check_rate(block, self.sample_rate_hz)
        tiles = self._tiles.get(block.info.name)
        if tiles is None:
            raise ValueError(f"MotionTracker follows {', '.join(self.streams)}; got {block.info.name!r}")
        if starts_segment(block, tiles.next_index):
            self._close_filling(tiles)
            tiles.final_until = max(tiles.final_until, block.first_index // self.tile_samples)
        tiles.next_index = block.end_index
        if block.n_samples:
            self._add(tiles, block)
        return self._build_intervals()

    def finish(self) -> list[MotionInterval]:
        """End of data: finalise the tiles still filling; return the intervals that closes."""
        for tiles in self._tiles.values():
            self._close_filling(tiles)
        out = self._build_intervals()
        if self._open is not None:
            out.append(self._interval(self._open))
            self._open = None
        return out

    def is_quiet(self, start_s: float, end_s: float) -> bool | None:
        """Whether every stream was quasi-static throughout device time [start_s, end_s).

        Returns
        -------
        bool or None
            None when the span is not settled yet (see :attr:`settled_s`); False when a tile is
            missing or not quiet in any stream.
        """
        first, last = self._tile_span(start_s, end_s)
        if last >= min(t.final_until for t in self._tiles.values()):
            return None
        for tiles in self._tiles.values():
            index, records = tiles.span(first, last)
            if index.shape[0] < last + 1 - first or not self._quiet_rows(records).all():
                return False
        return True

    def posture_between(self, start_s: float, end_s: float) -> Posture | None:
        """Mean tilt of each stream over the quiet tiles of [start_s, end_s); None when a stream has none.

        Each stream's "up" vectors are added in tile order from zero, one after the other (a running
        sum, not numpy's pairwise summation), so the posture is that of a loop over the tiles to the bit.
        """
        first, last = self._tile_span(start_s, end_s)
        up: dict[str, _Array] = {}
        for name, tiles in self._tiles.items():
            records = tiles.span(first, last)[1]
            quiet_up = records[self._quiet_rows(records), _UP]
            total = np.zeros(3) + (np.cumsum(quiet_up, axis=0)[-1] if quiet_up.shape[0] else 0.0)
            if not np.linalg.norm(total) > 0:
                return None
            up[name] = total
        return Posture.from_up_vectors(up, start_s, end_s)

    @property
    def first_tile(self) -> int | None:
        """Index of the earliest tile held (any stream); None before any data."""
        starts = [int(t.index[0]) for t in self._tiles.values() if t.index.shape[0]]
        return min(starts) if starts else None

    @property
    def settled_tiles(self) -> int:
        """Tiles below this index are final in every stream (``settled_s`` in tiles)."""
        return min(t.final_until for t in self._tiles.values())

    def tile_up(self, tile_index: int) -> dict[str, _Array] | None:
        """Direction of "up" per stream over one settled tile, when every stream was quiet in it.

        Parameters
        ----------
        tile_index : int
            Tile on the absolute grid (tile ``k`` covers samples ``[k h, (k + 1) h)``).

        Returns
        -------
        dict of str to ndarray of shape (3,), or None
            Not normalised. None when a stream moved in the tile or has no data there.
        """
        up: dict[str, _Array] = {}
        for name, tiles in self._tiles.items():
            record = tiles.get(tile_index)
            if record is None or not self._quiet(record):
                return None
            up[name] = record[_UP]
        return up

    def movement_between(self, start_s: float, end_s: float) -> MotionInterval | None:
        """The movement inside device time [start_s, end_s), or None when every tile held in it is quiet.

        Only the span's own tiles count: the interval runs from its first to its last non-quiet tile
        (the first and last of any stream) with their peaks. Missing tiles (not settled, a gap, older
        than ``history_s``) are unknown, not movement.
        """
        first, last = self._tile_span(start_s, end_s)
        found: list[float] | None = None
        for tiles in self._tiles.values():
            indices, records = tiles.span(first, last)
            moving = ~self._quiet_rows(records)
            rates, linears = records[moving, _RATE].tolist(), records[moving, _LINEAR].tolist()
            for index, rate, linear in zip(indices[moving].tolist(), rates, linears, strict=True):
                if found is None:
                    found = [index, index, rate, linear]
                else:
                    found = [min(found[0], index), max(found[1], index), max(found[2], rate), max(found[3], linear)]
        return self._interval(found) if found is not None else None

    def _quiet(self, record: _Array) -> bool:
        c = self.criteria
        return bool(record[_RATE] < c.max_angular_rate_dps and record[_LINEAR] < c.max_linear_acceleration_g)

    def _quiet_rows(self, records: _Array) -> npt.NDArray[np.bool_]:
        """:meth:`_quiet` of each row."""
        c = self.criteria
        return (records[:, _RATE] < c.max_angular_rate_dps) & (records[:, _LINEAR] < c.max_linear_acceleration_g)

    def _tile_span(self, start_s: float, end_s: float) -> tuple[int, int]:
        if not end_s > start_s:
            raise ValueError(f"need end_s > start_s, got [{start_s}, {end_s})")
        first = math.floor(start_s * self.sample_rate_hz + 1e-9) // self.tile_samples
        last = (math.ceil(end_s * self.sample_rate_hz - 1e-9) - 1) // self.tile_samples
        return first, last

    def _add(self, tiles: _StreamTiles, block: Block) -> None:
        """Close the tiles the block completes; hold the samples of the one it leaves filling.

        A tile is summed once, from all its samples: its record does not depend on how the stream
        was cut into blocks, to the last bit.
        """
        data, first = block.data, block.first_index
        if tiles.filling is not None:
            data, first = np.concatenate([tiles.filling, data], axis=1), tiles.filling_first
            tiles.filling = None
        n_whole = max(block.end_index // self.tile_samples * self.tile_samples - first, 0)
        if n_whole < data.shape[1]:
            tiles.filling, tiles.filling_first = data[:, n_whole:], first + n_whole
        if n_whole:
            self._close_tiles(tiles, data[:, :n_whole], first)
        tiles.final_until = max(tiles.final_until, block.end_index // self.tile_samples)
        tiles.forget_before(tiles.final_until - self._history_tiles)

    def _close_tiles(self, tiles: _StreamTiles, data: _Array, first_index: int) -> None:
        """Make final the tiles of samples ``data`` from device index ``first_index``."""
        indices = np.arange(first_index, first_index + data.shape[1]) // self.tile_samples
        starts = np.flatnonzero(np.concatenate(([True], indices[1:] != indices[:-1])))
        records = np.empty((starts.shape[0], _N_COLUMNS))
        records[:, _RATE] = np.maximum.reduceat(data[ANGULAR_RATE_ROW], starts)
        records[:, _LINEAR] = np.maximum.reduceat(data[LINEAR_ACCELERATION_ROW], starts)
        records[:, _UP] = np.add.reduceat(up_vectors(data[QUATERNION_ROWS]), starts, axis=1).T
        tiles.put(indices[starts], records)
        tiles.final_until = max(tiles.final_until, int(indices[-1]) + 1)

    def _close_filling(self, tiles: _StreamTiles) -> None:
        """Make final the tile still filling (a gap or the end of data: it stays partial)."""
        if tiles.filling is not None:
            self._close_tiles(tiles, tiles.filling, tiles.filling_first)
            tiles.filling = None

    def _build_intervals(self) -> list[MotionInterval]:
        settled = min(t.final_until for t in self._tiles.values())
        if self._next_tile is None:
            self._next_tile = self.first_tile
            if self._next_tile is None:
                return []
        out: list[MotionInterval] = []
        spans = [tiles.span(self._next_tile, settled - 1) for tiles in self._tiles.values()]
        new_tiles = [dict(zip(index.tolist(), records, strict=True)) for index, records in spans]
        for index in range(self._next_tile, settled):
            rate = linear = 0.0
            moving = False
            for by_index in new_tiles:
                record = by_index.get(index)
                if record is None:
                    continue
                rate, linear = max(rate, float(record[_RATE])), max(linear, float(record[_LINEAR]))
                moving |= not self._quiet(record)
            if moving:
                # A quiet break longer than merge_s already closed the open interval (below).
                if self._open is None:
                    self._open = [index, index, rate, linear]
                else:
                    self._open[1:] = [index, max(self._open[2], rate), max(self._open[3], linear)]
            elif self._open is not None and index - self._open[1] > self._merge_tiles:
                out.append(self._interval(self._open))
                self._open = None
        self._next_tile = max(self._next_tile, settled)
        return out

    def _interval(self, open_interval: list[float]) -> MotionInterval:
        start_tile, last_tile, rate, linear = open_interval
        d = self.tile_duration_s
        return MotionInterval(start_tile * d, (last_tile + 1) * d, rate, linear)
