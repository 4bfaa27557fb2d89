"""Posture as the tilt of each worn sensor, and whether two postures match within 3 deg.

SCIENCE.md sections 4 and 6: a set point counts only "posture within 3 deg of the reference", and a
trial whose posture before and after differs is ``rejected``. A posture here is the direction of
"up" in each sensor's own frame, averaged over a quiet span: it needs no calibration and no heading,
and it changes by exactly the angle the sensor tilted. Two postures differ by the largest tilt
change of any sensor both have. A lumbar change split between the two sensors can be up to twice
that (each sensor tilting half of it the opposite way); turning about the vertical is not a change of
posture.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from biofeed.dsp.imu.rotations import vector_angle_deg

__all__ = [
    "POSTURE_TOLERANCE_DEG",
    "Posture",
    "PostureComparison",
    "compare_postures",
    "posture_difference_deg",
]

POSTURE_TOLERANCE_DEG = 3.0
"""SCIENCE.md 4 and 6.2: posture matched within 3 deg."""


@dataclass(frozen=True)
class Posture:
    """The tilt of each sensor over a span.

    Attributes
    ----------
    up_by_stream : tuple of (str, tuple of float)
        Per IMU stream, the unit vector of "up" in its sensor coordinates.
    start_s, end_s : float
        The span it was measured over, device seconds.
    """

    up_by_stream: tuple[tuple[str, tuple[float, float, float]], ...]
    start_s: float
    end_s: float

    @classmethod
    def from_up_vectors(cls, up: Mapping[str, npt.ArrayLike], start_s: float, end_s: float) -> Posture:
        """Build from (not necessarily unit) "up" vectors per stream.

        Raises
        ------
        ValueError
            For no stream or a zero or non-finite vector.
        """
        if not up:
            raise ValueError("a posture needs at least one sensor")
        items = []
        for name, vector in sorted(up.items()):
            v = np.asarray(vector, dtype=np.float64)
            norm = float(np.linalg.norm(v))
            if v.shape != (3,) or not (math.isfinite(norm) and norm > 0):
                raise ValueError(f"'up' of {name!r} must be a finite non-zero 3-vector, got {vector!r}")
            items.append((name, (float(v[0] / norm), float(v[1] / norm), float(v[2] / norm))))
        return cls(tuple(items), float(start_s), float(end_s))

    @property
    def streams(self) -> tuple[str, ...]:
        """The IMU streams it covers."""
        return tuple(name for name, _ in self.up_by_stream)

    def up(self, stream: str) -> npt.NDArray[np.float64]:
        """The "up" vector of one stream, shape (3,); KeyError when not covered."""
        for name, vector in self.up_by_stream:
            if name == stream:
                return np.array(vector)
        raise KeyError(stream)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"up": {name: list(v) for name, v in self.up_by_stream}, "start_s": self.start_s, "end_s": self.end_s}


@dataclass(frozen=True)
class PostureComparison:
    """Two postures compared.

    Attributes
    ----------
    difference_deg : float
        Largest tilt change of a sensor both postures cover.
    by_stream : tuple of (str, float)
        Tilt change per stream, degrees.
    tolerance_deg : float
        Largest difference that still matches.
    """

    difference_deg: float
    by_stream: tuple[tuple[str, float], ...]
    tolerance_deg: float

    @property
    def matched(self) -> bool:
        """True when the postures agree within the tolerance."""
        return self.difference_deg <= self.tolerance_deg

    def reason(self) -> str:
        """The comparison in words (for a verdict's reason)."""
        relation = "within" if self.matched else "more than"
        return (
            f"posture before and after differs by {self.difference_deg:.1f} deg ({relation} {self.tolerance_deg:g} deg)"
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "difference_deg": self.difference_deg,
            "by_stream": dict(self.by_stream),
            "tolerance_deg": self.tolerance_deg,
            "matched": self.matched,
        }


def _changes(a: Posture, b: Posture) -> tuple[tuple[str, float], ...]:
    common = [s for s in a.streams if s in b.streams]
    if not common:
        raise ValueError(f"the postures share no sensor: {a.streams} and {b.streams}")
    return tuple((s, float(vector_angle_deg(a.up(s), b.up(s)))) for s in common)


def posture_difference_deg(a: Posture, b: Posture) -> float:
    """Largest tilt change between two postures over the sensors both cover, degrees."""
    return max(change for _, change in _changes(a, b))


def compare_postures(
    before: Posture, after: Posture, tolerance_deg: float = POSTURE_TOLERANCE_DEG
) -> PostureComparison:
    """Compare the posture before and after a trial (SCIENCE.md 6: > 3 deg apart is ``rejected``).

    Raises
    ------
    ValueError
        For a negative tolerance or postures that share no sensor.
    """
    if not (math.isfinite(tolerance_deg) and tolerance_deg >= 0):
        raise ValueError(f"tolerance_deg must be a number >= 0, got {tolerance_deg!r}")
    changes = _changes(before, after)
    return PostureComparison(max(c for _, c in changes), changes, float(tolerance_deg))
