"""The current phase of a flexion-relaxation cycle, sample by sample, for the live view.

:class:`FlexionPhaseTracker` is the streaming counterpart of
:func:`~biofeed.dsp.flexion_relaxation.find_flexion_cycles`, with its thresholds
(:class:`~biofeed.dsp.flexion_relaxation.FlexionCriteria`, SCIENCE.md 9) and the same angular rate
(the angle smoothed over ``rate_smoothing_s``, then differentiated). Fed the lumbar flexion angle
(trunk inclination with one IMU), it labels each sample:

- ``standing``: within ``standing_deg`` of upright and slower than ``still_rate_dps``. A stretch
  shorter than ``standing_hold_s`` does not end a cycle (offline it is no standing span): when the
  trunk moves on, the cycle goes on where it was;
- ``flexing``: from the end of standing;
- ``full_flexion``: once the cycle has reached ``min_peak_deg``, from where the rate falls below
  ``+moving_rate_dps`` with the angle at or above ``full_flexion_fraction`` of the cycle's maximum so
  far. Offline, full flexion starts where the angle crosses 90 % of the maximum the cycle will reach,
  which no causal rule can know; this is the offline ``flexion_end_s``, a few tenths of a second later
  in a smooth bend;
- ``extending``: from where the angle falls below that fraction of the cycle's maximum (the offline
  ``full_flexion_end_s``) until standing; a new bend (rate above ``+moving_rate_dps``) before
  standing is ``flexing`` again.

Before anything is known (the first samples, or a start away from upright) the phase is unknown.

Delay: a sample's rate needs the angles half the smoothing window and one sample after it, so each
call labels the samples up to ``delay_samples`` before the newest (0.06 s at 100 Hz). Any chunking
of the same samples gives the same labels.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from biofeed.dsp.flexion_relaxation import FlexionCriteria, rate_dps

__all__ = ["PHASES", "UNKNOWN", "FlexionPhaseTracker", "phase_name"]

PHASES: tuple[str, ...] = ("standing", "flexing", "full_flexion", "extending")
"""Phase names; a phase's code is its index here."""
UNKNOWN = -1
"""Code of a sample whose phase is not known yet."""

_STANDING, _FLEXING, _FULL, _EXTENDING = range(len(PHASES))


def phase_name(code: int) -> str | None:
    """The name of a phase code (None for :data:`UNKNOWN`)."""
    return PHASES[code] if 0 <= code < len(PHASES) else None


class FlexionPhaseTracker:
    """Labels flexion angle samples with the phase of a flexion-relaxation cycle (module docstring).

    Parameters
    ----------
    sample_rate_hz : float
        Rate of the angle.
    criteria : FlexionCriteria, optional
        Thresholds; the defaults of SCIENCE.md 9.

    Attributes
    ----------
    n_labelled : int
        Samples labelled since the start or the last :meth:`reset`.
    """

    def __init__(self, sample_rate_hz: float, criteria: FlexionCriteria | None = None) -> None:
        if not (math.isfinite(sample_rate_hz) and sample_rate_hz > 0):
            raise ValueError(f"sample_rate_hz must be a positive number, got {sample_rate_hz!r}")
        self.sample_rate_hz = float(sample_rate_hz)
        self.criteria = criteria or FlexionCriteria()
        c = self.criteria
        # rate_dps' centred window (odd length) and np.gradient's neighbour on each side
        self._half_window = (max(1, round(c.rate_smoothing_s * self.sample_rate_hz)) | 1) // 2
        self._hold_samples = c.standing_hold_s * self.sample_rate_hz
        self.reset()

    @property
    def delay_samples(self) -> int:
        """How far behind the newest sample the labels are."""
        return self._half_window + 1

    @property
    def phase(self) -> str | None:
        """The phase of the last sample labelled (None while unknown)."""
        return phase_name(self._phase)

    def reset(self) -> None:
        """Forget everything (a gap in the angle)."""
        self._tail = np.zeros(0)  # angles kept for the next rates
        self._phase = UNKNOWN
        self._resume = UNKNOWN  # the phase a short standing stretch interrupted
        self._standing_run = 0
        self._peak_deg = -math.inf  # the cycle's maximum so far
        self.n_labelled = 0

    def process(self, angle_deg: npt.ArrayLike) -> npt.NDArray[np.int8]:
        """Take the next angle samples (degrees, 0 upright, + forward); the codes of the samples labelled.

        Returns
        -------
        ndarray, shape (n,), int8
            Codes (indices into :data:`PHASES`, :data:`UNKNOWN`) of samples ``n_labelled`` (before
            the call) onwards: as many as arrived, less the delay on the first call.

        Raises
        ------
        ValueError
            For samples that are not a finite 1-d array.
        """
        angle = np.asarray(angle_deg, dtype=np.float64)
        if angle.ndim != 1 or not np.isfinite(angle).all():
            raise ValueError("angle_deg must be a 1-d array of finite degrees")
        if angle.size == 0:
            return np.zeros(0, dtype=np.int8)
        h = self._half_window
        if self.n_labelled == 0 and self._tail.size == 0:
            # the offline rate pads the start with the first angle
            self._tail = np.full(h + 1, angle[0])
        buffer = np.concatenate((self._tail, angle))
        # positions whose rate depends on known angles only: h + 1 on each side
        first, end = h + 1, buffer.size - h - 1
        codes = np.zeros(max(end - first, 0), dtype=np.int8)
        if codes.size:
            rate = rate_dps(buffer, self.sample_rate_hz, self.criteria.rate_smoothing_s)
            for k, position in enumerate(range(first, end)):
                codes[k] = self._step(float(buffer[position]), float(rate[position]))
            self.n_labelled += codes.size
        self._tail = buffer[-(2 * h + 2) :]
        return codes

    def _step(self, angle: float, rate: float) -> int:
        c = self.criteria
        if abs(angle) <= c.standing_deg and abs(rate) < c.still_rate_dps:
            if self._phase != _STANDING:
                self._resume = self._phase
            self._standing_run += 1
            if self._standing_run >= self._hold_samples:
                self._resume = UNKNOWN  # a standing span: the cycle is over
                self._peak_deg = -math.inf
            self._phase = _STANDING
            return self._phase
        self._standing_run = 0
        if self._phase == _STANDING:
            self._phase = _FLEXING if self._resume == UNKNOWN else self._resume
        elif self._phase == UNKNOWN:
            return UNKNOWN  # starting away from upright: wait for standing
        self._peak_deg = max(self._peak_deg, angle)
        near_peak = angle >= c.full_flexion_fraction * self._peak_deg
        if self._phase == _FLEXING:
            if self._peak_deg >= c.min_peak_deg and near_peak and rate < c.moving_rate_dps:
                self._phase = _FULL
        elif self._phase == _FULL:
            if not near_peak:
                self._phase = _EXTENDING
        elif self._phase == _EXTENDING and rate > c.moving_rate_dps:
            self._phase = _FLEXING
        return self._phase
