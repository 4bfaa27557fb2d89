"""The seeded random streams of the simulator.

Every random number comes from ``np.random.SeedSequence(seed, spawn_key=(stream, index))``: one
independent stream per purpose, and for signals one per one-second segment. A segment's samples
therefore depend only on (seed, segment index) and on filter state carried from the previous
segment, never on how the output is chunked or paced.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

__all__ = ["RandomStream", "stream_rng"]


class RandomStream(IntEnum):
    """What a random stream is for (its value is the first spawn key; never renumber)."""

    SCRIPT = 1
    EMG_CARRIER = 2
    EMG_NOISE = 3
    EMG_WARM_UP = 4
    ECG = 5
    MAINS = 6
    IMU_THORACIC = 7
    IMU_SACRAL = 8
    IMU_BIAS = 9


def stream_rng(seed: int, stream: RandomStream, index: int = 0) -> np.random.Generator:
    """Return the generator of ``stream`` for ``seed``; ``index`` numbers segments of a signal stream.

    Raises
    ------
    ValueError
        A negative seed or index.
    """
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative whole numbers, got seed={seed}, index={index}")
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(int(stream), index)))
