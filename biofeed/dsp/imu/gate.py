"""The set-point gate and the postures it sorts device time into.

SCIENCE.md section 4: a 1 s window counts as rest only when the trunk is quasi-static and within
3 deg of the reference posture, and set points are kept per posture (lying, standing, sitting).
:class:`PostureGate` is the ``gate`` hook of :class:`~biofeed.dsp.tension.RestingTension` and
:class:`~biofeed.dsp.analyze.EmgAnalyzer` (``gate(start_s, end_s) -> bool``, device seconds), and
the :class:`~biofeed.dsp.tension.PostureTimeline` the phase detector and the analyzer keep their
per-posture rest statistics and set points with. EMG and IMU times are both the device's sample
counters over their rates, so one device needs no time alignment.

**Postures.** Every settled 0.1 s tile of the :class:`~biofeed.dsp.imu.motion.MotionTracker` in which
every IMU was quasi-static gets a posture: the known posture nearest to its tilt within
``tolerance_deg`` (the largest tilt change of any sensor, as :func:`~biofeed.dsp.imu.posture.compare_postures`),
or, when none is that near, a *candidate*. A candidate held still (consecutive quiet tiles within
``tolerance_deg`` of its first tile) for ``hold_s`` becomes a new known posture, its reference the
mean tilt over those tiles, from that tile on. Tiles that moved or are missing have no posture
(:data:`~biofeed.dsp.tension.NO_POSTURE`); tiles waiting in a candidate are
:data:`~biofeed.dsp.tension.NEW_POSTURE` (still, but in no known posture: the phase detector looks
for no onset there, having no rest statistics for it). The labelling is causal (a tile's posture
depends only on the tiles up to it), so it does not depend on how the IMU's blocks are cut or
interleave with the EMG.

*Decision*: ``hold_s`` = 5 s. A rest posture is held for tens of seconds; a full flexion in a
flexion-relaxation test is held 3-4 s (SCIENCE.md 9, the simulator) and a pandiculation's arching
(3 deg, docs/simulator.md) 2-3 s, and neither is a posture to keep rest statistics for.

A window is accepted when the tracker has settled past its end and every tile in it has the same
posture. A caller that can wait holds windows until :attr:`PostureGate.settled_s` has passed their end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block
from biofeed.dsp.imu.motion import MotionInterval, MotionTracker
from biofeed.dsp.imu.posture import POSTURE_TOLERANCE_DEG, Posture
from biofeed.dsp.imu.rotations import vector_angle_deg
from biofeed.dsp.tension import NEW_POSTURE, NO_POSTURE

__all__ = [
    "LYING_TILT_DEG",
    "POSTURE_HOLD_S",
    "SITTING_PELVIS_TILT_DEG",
    "UPRIGHT_TILT_DEG",
    "KnownPosture",
    "PostureGate",
    "describe_posture",
]

POSTURE_HOLD_S = 5.0
"""Seconds a new posture must be held still before it counts (module docstring)."""
UPRIGHT_TILT_DEG = 30.0
"""Thoracic sensor within this of vertical: the trunk is upright (standing or sitting)."""
LYING_TILT_DEG = 60.0
"""Thoracic sensor at least this far from vertical: lying."""
SITTING_PELVIS_TILT_DEG = 30.0
"""Upright trunk over a sacral sensor tilted at least this far from vertical: sitting (the pelvis
rolls back when sitting; standing keeps it within the mounting error of upright)."""


def _tilt_from_vertical_deg(up: npt.NDArray[np.float64]) -> float:
    """Angle between a sensor's cranial axis (+x, docs/imu.md) and "up", degrees."""
    return float(vector_angle_deg(np.array([1.0, 0.0, 0.0]), up))


def describe_posture(posture: Posture) -> str:
    """A short label for a posture, from the tilt of the trunk sensors (for display).

    ``lying`` (thoracic sensor >= 60 deg from vertical), ``standing`` or ``sitting`` (thoracic within
    30 deg of vertical; sitting when a sacral sensor is >= 30 deg from vertical), ``upright`` (upright
    without a sacral sensor to tell standing from sitting), ``other`` (between: bent, reclined).
    The thoracic sensor is the stream whose name contains ``thoracic`` (else the first); the sacral
    one contains ``sacral``. The sensors are assumed taped with +x cranial (docs/imu.md); a mounting
    tilt of a few degrees does not change the label.

    Parameters
    ----------
    posture : Posture
        Tilt of each trunk sensor.

    Returns
    -------
    str
    """
    streams = posture.streams
    thoracic = next((s for s in streams if "thoracic" in s), streams[0])
    sacral = next((s for s in streams if "sacral" in s and s != thoracic), None)
    tilt = _tilt_from_vertical_deg(posture.up(thoracic))
    if tilt >= LYING_TILT_DEG:
        return "lying"
    if tilt > UPRIGHT_TILT_DEG:
        return "other"
    if sacral is None:
        return "upright"
    return "sitting" if _tilt_from_vertical_deg(posture.up(sacral)) >= SITTING_PELVIS_TILT_DEG else "standing"


@dataclass(frozen=True)
class KnownPosture:
    """A posture the gate has seen held.

    Attributes
    ----------
    posture_id : int
        0, 1, ... in the order the postures were first held.
    reference : Posture
        Mean tilt over the tiles that made it (or the reference given).
    label : str
        :func:`describe_posture` of the reference.
    """

    posture_id: int
    reference: Posture
    label: str


_Vector = tuple[float, float, float]


@dataclass
class _Candidate:
    first_up: dict[str, _Vector]
    up_sum: dict[str, list[float]]
    first_tile: int
    n_tiles: int


class PostureGate:
    """Sorts settled device time into known postures; accepts a window held still in one of them.

    Parameters
    ----------
    tracker : MotionTracker
        Fed with the orientation blocks of every IMU worn.
    reference : Posture or None
        A posture known from the start (posture 0, e.g. from a calibration); None learns them all.
    tolerance_deg : float
        Largest tilt change within one posture (SCIENCE.md 4: 3 deg).
    hold_s : float
        How long a new posture must be held still before it counts.
    """

    def __init__(
        self,
        tracker: MotionTracker,
        reference: Posture | None = None,
        tolerance_deg: float = POSTURE_TOLERANCE_DEG,
        hold_s: float = POSTURE_HOLD_S,
    ) -> None:
        if not (math.isfinite(tolerance_deg) and tolerance_deg >= 0):
            raise ValueError(f"tolerance_deg must be a number >= 0, got {tolerance_deg!r}")
        if not (math.isfinite(hold_s) and hold_s >= 0):
            raise ValueError(f"hold_s must be a number of seconds >= 0, got {hold_s!r}")
        self.tracker = tracker
        self.tolerance_deg = float(tolerance_deg)
        self.hold_s = float(hold_s)
        self._hold_tiles = max(1, math.ceil(hold_s / tracker.tile_duration_s - 1e-9))
        self._history_tiles = math.ceil(tracker.criteria.history_s / tracker.tile_duration_s)
        self._postures: list[KnownPosture] = []
        self._references: list[dict[str, _Vector]] = []  # unit "up" per stream, by posture id
        self._tolerance_cosine = math.cos(math.radians(self.tolerance_deg))
        if reference is not None:
            self._add_posture(reference)
        self._labels = np.zeros(0, dtype=np.int64)  # per tile from _first_tile
        self._first_tile: int | None = None
        self._candidate: _Candidate | None = None

    @property
    def postures(self) -> tuple[KnownPosture, ...]:
        """The postures known so far, by id."""
        return tuple(self._postures)

    @property
    def settled_s(self) -> float:
        """Device time up to which windows can be judged."""
        return self.tracker.settled_s

    def posture_label(self, posture_id: int) -> str:
        """Short label of a known posture (:func:`describe_posture`)."""
        return self._postures[posture_id].label

    def __call__(self, start_s: float, end_s: float) -> bool:
        """True when device time [start_s, end_s) is quasi-static throughout, in one known posture."""
        return self.posture_of(start_s, end_s) is not None

    def posture_of(self, start_s: float, end_s: float) -> int | None:
        """The posture every tile of [start_s, end_s) is in; None when a tile moved, waits or is unsettled."""
        self._update()
        first, last = self._tile_span(start_s, end_s)
        if self._first_tile is None or first < self._first_tile or last >= self._end_tile:
            return None
        labels = self._labels[first - self._first_tile : last + 1 - self._first_tile]
        posture = int(labels[0])
        return posture if posture >= 0 and bool((labels == posture).all()) else None

    def postures_at(self, times_s: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Posture id of the tile holding each device time.

        NO_POSTURE where moving or unsettled, NEW_POSTURE where still in a posture not yet known.

        Parameters
        ----------
        times_s : array_like, shape (n,)
            Device seconds.

        Returns
        -------
        ndarray of int, shape (n,)
        """
        self._update()
        times = np.asarray(times_s, dtype=np.float64)
        out = np.full(times.shape, NO_POSTURE, dtype=np.int64)
        if self._first_tile is None:
            return out
        tiles = np.floor(times * self.tracker.sample_rate_hz + 1e-9).astype(np.int64) // self.tracker.tile_samples
        known = (tiles >= self._first_tile) & (tiles < self._end_tile)
        out[known] = self._labels[tiles[known] - self._first_tile]
        return out

    def movement_between(self, start_s: float, end_s: float) -> MotionInterval | None:
        """:meth:`MotionTracker.movement_between <biofeed.dsp.imu.motion.MotionTracker.movement_between>`."""
        return self.tracker.movement_between(start_s, end_s)

    def posture_between(self, start_s: float, end_s: float) -> Posture | None:
        """:meth:`MotionTracker.posture_between <biofeed.dsp.imu.motion.MotionTracker.posture_between>`."""
        return self.tracker.posture_between(start_s, end_s)

    def mask(self, rms_1s: Block) -> npt.NDArray[np.bool_]:
        """``gate_mask`` for a block of back-to-back windows (window ``k`` ends at ``k / rate``).

        Parameters
        ----------
        rms_1s : Block
            Envelope block of a :class:`~biofeed.dsp.envelope.MovingRms` with ``hop_s = window_s``.

        Returns
        -------
        ndarray of bool, shape (n_windows,)
        """
        hop_s = 1.0 / rms_1s.info.sample_rate_hz
        ends_s = (rms_1s.first_index + np.arange(rms_1s.n_samples)) * hop_s
        return np.array([self(end - hop_s, end) for end in ends_s.tolist()], dtype=bool)

    # -- labelling ----------------------------------------------------------------------------------

    @property
    def _end_tile(self) -> int:
        return (self._first_tile or 0) + int(self._labels.shape[0])

    def _tile_span(self, start_s: float, end_s: float) -> tuple[int, int]:
        if not end_s > start_s:
            raise ValueError(f"need end_s > start_s, got [{start_s}, {end_s})")
        fs, h = self.tracker.sample_rate_hz, self.tracker.tile_samples
        return math.floor(start_s * fs + 1e-9) // h, (math.ceil(end_s * fs - 1e-9) - 1) // h

    def _update(self) -> None:
        """Label every tile the tracker has settled since the last call."""
        if self._first_tile is None:
            self._first_tile = self.tracker.first_tile
            if self._first_tile is None:
                return
        settled = self.tracker.settled_tiles
        new = [self._label(tile) for tile in range(self._end_tile, settled)]
        if not new:
            return
        self._labels = np.concatenate([self._labels, np.array(new, dtype=np.int64)])
        excess = int(self._labels.shape[0]) - self._history_tiles
        if excess > self._history_tiles // 4:  # the tracker forgets tiles this old too; trim now and then
            self._labels = self._labels[excess:]
            self._first_tile += excess

    def _label(self, tile: int) -> int:
        # Pure-Python 3-vectors: this runs for every tile (10 per second), and numpy's per-call cost
        # on 3 elements would dominate a whole recording's analysis.
        up = self.tracker.tile_up(tile)
        if up is None:
            self._candidate = None
            return NO_POSTURE
        unit = {name: _unit(v.tolist()) for name, v in up.items()}
        nearest, nearest_cosine = NO_POSTURE, -math.inf
        for posture_id, reference in enumerate(self._references):
            cosine = _least_cosine(reference, unit)
            if cosine >= self._tolerance_cosine and cosine > nearest_cosine:
                nearest, nearest_cosine = posture_id, cosine
        if nearest != NO_POSTURE:
            self._candidate = None
            return nearest
        candidate = self._candidate
        if candidate is None or _least_cosine(candidate.first_up, unit) < self._tolerance_cosine:
            candidate = self._candidate = _Candidate(unit, {k: list(v) for k, v in unit.items()}, tile, 0)
        else:
            for name, v in unit.items():
                total = candidate.up_sum[name]
                for axis in range(3):
                    total[axis] += v[axis]
        candidate.n_tiles += 1
        if candidate.n_tiles < self._hold_tiles:
            return NEW_POSTURE
        d = self.tracker.tile_duration_s
        self._candidate = None
        return self._add_posture(Posture.from_up_vectors(candidate.up_sum, candidate.first_tile * d, (tile + 1) * d))

    def _add_posture(self, reference: Posture) -> int:
        posture_id = len(self._postures)
        self._postures.append(KnownPosture(posture_id, reference, describe_posture(reference)))
        self._references.append({name: _unit(reference.up(name).tolist()) for name in reference.streams})
        return posture_id


def _unit(v: list[float]) -> _Vector:
    x, y, z = v
    norm = math.sqrt(x * x + y * y + z * z)
    return (x / norm, y / norm, z / norm)


def _least_cosine(a: dict[str, _Vector], b: dict[str, _Vector]) -> float:
    """Cosine of the largest tilt change of a sensor both tilts have (unit vectors); -inf when they share none."""
    cosines = [sum(p * q for p, q in zip(a[name], b[name], strict=True)) for name in a if name in b]
    return min(cosines) if cosines else -math.inf
