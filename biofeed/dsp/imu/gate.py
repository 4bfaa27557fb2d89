"""The set-point gate: a 1 s window counts as rest only quasi-static and within 3 deg of the reference posture.

SCIENCE.md section 4. :class:`PostureGate` is the ``gate`` hook of
:class:`~biofeed.dsp.tension.RestingTension` and :class:`~biofeed.dsp.analyze.EmgAnalyzer`
(``gate(start_s, end_s) -> bool``, device seconds) and builds the ``gate_mask`` of
:meth:`RestingTension.process <biofeed.dsp.tension.RestingTension.process>` (:meth:`PostureGate.mask`).
EMG and IMU times are both the device's sample counters over their rates, so one device needs no
time alignment.

A window is accepted when the :class:`~biofeed.dsp.imu.motion.MotionTracker` has settled past its
end, every tile of every IMU in it is quiet, and its posture is within ``tolerance_deg`` of the
reference. The reference is given (per-posture set points: one gate per posture), or else taken from
the first window accepted as quiet: the first rest fixes the posture the set point belongs to.
A window the tracker has not settled yet is refused; a caller that can wait should hold windows
until :attr:`PostureGate.settled_s` has passed their end.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block
from biofeed.dsp.imu.motion import MotionTracker
from biofeed.dsp.imu.posture import POSTURE_TOLERANCE_DEG, Posture, compare_postures

__all__ = ["PostureGate"]


class PostureGate:
    """Accept a window of device time as rest for the set point (a ``WindowGate``).

    Parameters
    ----------
    tracker : MotionTracker
        Fed with the orientation blocks of every IMU worn.
    reference : Posture or None
        The posture set points are kept for; None takes the first quiet window's.
    tolerance_deg : float
        Largest tilt change from the reference (SCIENCE.md 4: 3 deg).
    """

    def __init__(
        self, tracker: MotionTracker, reference: Posture | None = None, tolerance_deg: float = POSTURE_TOLERANCE_DEG
    ) -> None:
        if not (math.isfinite(tolerance_deg) and tolerance_deg >= 0):
            raise ValueError(f"tolerance_deg must be a number >= 0, got {tolerance_deg!r}")
        self.tracker = tracker
        self.reference = reference
        self.tolerance_deg = float(tolerance_deg)

    @property
    def settled_s(self) -> float:
        """Device time up to which windows can be judged."""
        return self.tracker.settled_s

    def __call__(self, start_s: float, end_s: float) -> bool:
        """True when device time [start_s, end_s) is quasi-static and in the reference posture."""
        if not self.tracker.is_quiet(start_s, end_s):
            return False
        posture = self.tracker.posture_between(start_s, end_s)
        if posture is None:
            return False
        if self.reference is None:
            self.reference = posture
            return True
        return compare_postures(self.reference, posture, self.tolerance_deg).matched

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
