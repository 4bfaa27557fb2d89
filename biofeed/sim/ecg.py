"""ECG contamination of trunk EMG: the heart's QRS complexes seen by lumbar electrodes.

SCIENCE.md section 3.3: the heart contaminates trunk EMG; a 50 uV R peak inflates resting 20-450 Hz
RMS by about 50 %, a 30 Hz high-pass leaves about +7 %, 40 Hz about +1 %. The template below (sharp
Gaussian Q, R and S waves, slow P and T waves) is sized to reproduce those figures on a 3 uV rest
(docs/simulator.md gives the measurement). The heart sits left of the midline, so the left channel
sees most of it. Beats come at 60-75 bpm with 4 % beat-to-beat variability, drawn in order from one
seeded stream, so they do not depend on how the output is chunked.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

from biofeed.sim.random_streams import RandomStream, stream_rng

__all__ = ["ECG_RIGHT_FRACTION", "EcgContamination", "qrs_template"]

# (offset from the R peak in s, relative amplitude, width SD in s): P, Q, R, S, T waves.
_WAVES: tuple[tuple[float, float, float], ...] = (
    (-0.16, 0.10, 0.025),
    (-0.028, -0.15, 0.007),
    (0.0, 1.0, 0.008),
    (0.028, -0.30, 0.008),
    (0.25, 0.25, 0.05),
)
_TEMPLATE_HALF_WIDTH_S = 0.45
_RR_VARIABILITY = 0.04
ECG_RIGHT_FRACTION = 0.35
"""The right channel sees this fraction of the left channel's ECG (the heart lies left of the midline)."""


def qrs_template(t_s: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """One heartbeat at times ``t_s`` relative to its R peak, in units of the R-peak amplitude."""
    t = np.asarray(t_s, dtype=np.float64)
    beat = np.zeros_like(t)
    for offset_s, amplitude, width_s in _WAVES:
        beat += amplitude * np.exp(-0.5 * ((t - offset_s) / width_s) ** 2)
    return beat


class EcgContamination:
    """Heartbeats added to the EMG channels, generated in time order.

    Parameters
    ----------
    seed : int
        Seed of the beat-timing stream.
    r_peak_uv : float
        R-peak amplitude on the left channel, uV; the right channel sees 35 % of it.

    Attributes
    ----------
    heart_rate_bpm : float
        Mean heart rate, drawn from 60-75 bpm.
    """

    def __init__(self, seed: int, r_peak_uv: float) -> None:
        if not (np.isfinite(r_peak_uv) and r_peak_uv >= 0):
            raise ValueError(f"r_peak_uv must be a non-negative number, got {r_peak_uv}")
        self._rng = stream_rng(seed, RandomStream.ECG)
        self.heart_rate_bpm = float(self._rng.uniform(60.0, 75.0))
        self.gains_uv = np.array([[r_peak_uv], [ECG_RIGHT_FRACTION * r_peak_uv]])
        self._beats_s: deque[float] = deque()
        self._next_beat_s = float(self._rng.uniform(0.0, 60.0 / self.heart_rate_bpm))

    def _extend_to(self, t_s: float) -> None:
        while self._next_beat_s <= t_s:
            self._beats_s.append(self._next_beat_s)
            rr_s = 60.0 / self.heart_rate_bpm * (1.0 + _RR_VARIABILITY * float(self._rng.standard_normal()))
            self._next_beat_s += max(rr_s, 0.3)

    def segment(self, t_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Contamination at sample times ``t_s`` (increasing, later than any earlier call's).

        Returns
        -------
        ndarray, shape (2, n_samples)
            uV per channel.
        """
        out = np.zeros((2, t_s.size))
        if t_s.size == 0:
            return out
        self._extend_to(float(t_s[-1]) + _TEMPLATE_HALF_WIDTH_S)
        while self._beats_s and self._beats_s[0] < t_s[0] - _TEMPLATE_HALF_WIDTH_S:
            self._beats_s.popleft()
        for beat_s in self._beats_s:
            lo, hi = np.searchsorted(t_s, [beat_s - _TEMPLATE_HALF_WIDTH_S, beat_s + _TEMPLATE_HALF_WIDTH_S])
            if hi > lo:
                out[:, lo:hi] += self.gains_uv * qrs_template(t_s[lo:hi] - beat_s)
        return out
