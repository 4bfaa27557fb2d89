"""Simulated surface EMG of the lumbar erector spinae, one-second segment after another.

The model (SCIENCE.md sections 2 and 3):

- **carrier**: Gaussian white noise shaped to a surface-EMG spectrum, ``|H(f)|^2 = f^2 fh^4 /
  ((f^2 + fl^2)(f^2 + fh^2)^2)`` with fl = 60 Hz, fh = 120 Hz (the Shwedyk / Stulen & De Luca shape),
  band-limited to 20-450 Hz by a 2nd-order Butterworth band-pass. Its spectrum peaks near 65 Hz
  and its median frequency is about 93 Hz (SCIENCE.md 3: 60-120 Hz). Scaled to unit RMS and
  multiplied by the scripted amplitude (uV RMS) of the channel;
- **noise floor**: white Gaussian sensor noise whose RMS in the 20-450 Hz band is
  ``noise_floor_uv`` (1.5 uV default; SCIENCE.md 2: 1-2 uV, 1.35 uV measured), so the band above
  450 Hz carries noise too, as the noise-floor estimator of SCIENCE.md 3.6 expects;
- optional **ECG** (:mod:`biofeed.sim.ecg`), **mains hum** (fundamental and 3rd and 5th harmonics),
  and the scenario's **motion artifacts** (low-frequency alpha-function spikes).

Filters carry their state from segment to segment; the carrier filter is warmed up on noise first so
the first second is already stationary.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import signal

from biofeed.sim.ecg import EcgContamination
from biofeed.sim.random_streams import RandomStream, stream_rng
from biofeed.sim.scenarios import ScenarioScript

__all__ = ["CARRIER_CORNERS_HZ", "EMG_BAND_HZ", "EmgGenerator", "carrier_sos"]

CARRIER_CORNERS_HZ = (60.0, 120.0)
"""fl and fh of the carrier spectrum."""
EMG_BAND_HZ = (20.0, 450.0)
"""The band the carrier is limited to and the noise floor is defined in."""
_MAINS_HARMONICS = ((1, 1.0), (3, 0.3), (5, 0.1))
_MAINS_RIGHT_FRACTION = 0.8
_WARM_UP_S = 1.0
_ARTIFACT_LENGTH_TAUS = 12.0  # the alpha function is below 0.02 % of its peak after 12 time constants


def carrier_sos(sample_rate_hz: float) -> npt.NDArray[np.float64]:
    """Second-order sections that shape white noise into the unit-RMS sEMG carrier.

    Returns
    -------
    ndarray, shape (n_sections, 6)
        For ``scipy.signal.sosfilt``; unit-variance white noise in gives unit-RMS carrier out.
    """
    if sample_rate_hz <= 2 * EMG_BAND_HZ[1]:
        raise ValueError(f"sample_rate_hz must exceed {2 * EMG_BAND_HZ[1]:g} Hz, got {sample_rate_hz}")
    wl, wh = (2 * np.pi * f for f in CARRIER_CORNERS_HZ)
    zeros, poles, gain = signal.bilinear_zpk([0.0], [-wl, -wh, -wh], wh**2, sample_rate_hz)
    shape = signal.zpk2sos(zeros, poles, gain)
    band = signal.butter(2, EMG_BAND_HZ, btype="bandpass", fs=sample_rate_hz, output="sos")
    sos = np.vstack([shape, band])
    impulse = np.zeros(int(4 * sample_rate_hz))
    impulse[0] = 1.0
    # White noise of unit variance comes out with the impulse response's energy as variance.
    energy = float(np.sum(signal.sosfilt(sos, impulse) ** 2))
    sos[0, :3] /= np.sqrt(energy)
    return sos


class EmgGenerator:
    """The two EMG channels of a scenario, in segments of ``segment_samples``.

    Parameters
    ----------
    script : ScenarioScript
        Scripted amplitude per channel and motion artifacts.
    seed : int
        Seed of the random streams.
    sample_rate_hz : float
        Nominal EMG rate (device clock).
    segment_samples : int
        Samples per segment.
    noise_floor_uv : float
        Sensor noise RMS in the 20-450 Hz band, uV.
    ecg_r_peak_uv : float
        R-peak amplitude of ECG contamination on the left channel, uV; 0 for none.
    mains_hz : float or None
        Mains frequency (50 or 60) to add hum at, None for none.
    mains_uv : float
        Amplitude of the mains fundamental on the left channel, uV.

    Raises
    ------
    ValueError
        Negative noise or amplitudes, or a mains frequency other than 50 or 60 Hz.
    """

    def __init__(
        self,
        script: ScenarioScript,
        *,
        seed: int,
        sample_rate_hz: float = 2000.0,
        segment_samples: int = 2000,
        noise_floor_uv: float = 1.5,
        ecg_r_peak_uv: float = 0.0,
        mains_hz: float | None = None,
        mains_uv: float = 5.0,
    ) -> None:
        if not (np.isfinite(noise_floor_uv) and noise_floor_uv >= 0):
            raise ValueError(f"noise_floor_uv must be a non-negative number, got {noise_floor_uv}")
        if not (np.isfinite(ecg_r_peak_uv) and ecg_r_peak_uv >= 0):
            raise ValueError(f"ecg_r_peak_uv must be a non-negative number, got {ecg_r_peak_uv}")
        if mains_hz not in (None, 50.0, 60.0):
            raise ValueError(f"mains_hz must be 50, 60 or None, got {mains_hz}")
        if not (np.isfinite(mains_uv) and mains_uv >= 0):
            raise ValueError(f"mains_uv must be a non-negative number, got {mains_uv}")
        self._script = script
        self._seed = seed
        self.sample_rate_hz = sample_rate_hz
        self.segment_samples = segment_samples
        self._sos = carrier_sos(sample_rate_hz)
        band_fraction = (EMG_BAND_HZ[1] - EMG_BAND_HZ[0]) / (sample_rate_hz / 2)
        self._noise_sd_uv = noise_floor_uv / np.sqrt(band_fraction)
        self._ecg = EcgContamination(seed, ecg_r_peak_uv) if ecg_r_peak_uv > 0 else None
        self._mains_hz = mains_hz
        self._mains_uv = mains_uv
        self._mains_phase = stream_rng(seed, RandomStream.MAINS).uniform(0.0, 2 * np.pi, size=len(_MAINS_HARMONICS))
        warm_up = stream_rng(seed, RandomStream.EMG_WARM_UP).standard_normal((2, int(_WARM_UP_S * sample_rate_hz)))
        zi = np.zeros((self._sos.shape[0], 2, 2))
        _, self._zi = signal.sosfilt(self._sos, warm_up, axis=-1, zi=zi)
        self._artifact_starts_s = np.array([a.time_s for a in script.motion_artifacts])
        self._artifact_max_s = _ARTIFACT_LENGTH_TAUS * max(
            (a.time_constant_s for a in script.motion_artifacts), default=0
        )
        self._next_index = 0

    @property
    def heart_rate_bpm(self) -> float | None:
        """Mean heart rate of the ECG contamination; None without ECG."""
        return None if self._ecg is None else self._ecg.heart_rate_bpm

    def segment(self, index: int) -> npt.NDArray[np.float64]:
        """Generate segment ``index``; segments must be asked for in order 0, 1, 2, ...

        Returns
        -------
        ndarray, shape (2, segment_samples)
            uV, channels in :data:`biofeed.sim.scenarios.CHANNEL_NAMES` order.

        Raises
        ------
        ValueError
            A segment out of order (the filter state belongs to the previous one).
        """
        if index != self._next_index:
            raise ValueError(f"EMG segments go in order: expected {self._next_index}, got {index}")
        self._next_index += 1
        n = self.segment_samples
        t_s = (index * n + np.arange(n)) / self.sample_rate_hz
        white = stream_rng(self._seed, RandomStream.EMG_CARRIER, index).standard_normal((2, n))
        carrier, self._zi = signal.sosfilt(self._sos, white, axis=-1, zi=self._zi)
        levels_uv = np.vstack([track.value_at(t_s) for track in self._script.emg_level_uv])
        emg: npt.NDArray[np.float64] = levels_uv * carrier
        emg += self._noise_sd_uv * stream_rng(self._seed, RandomStream.EMG_NOISE, index).standard_normal((2, n))
        if self._ecg is not None:
            emg += self._ecg.segment(t_s)
        if self._mains_hz is not None:
            emg += self._mains(t_s, self._mains_hz)
        self._add_artifacts(t_s, emg)
        return emg

    def _mains(self, t_s: npt.NDArray[np.float64], mains_hz: float) -> npt.NDArray[np.float64]:
        hum = np.zeros_like(t_s)
        for (harmonic, amplitude), phase in zip(_MAINS_HARMONICS, self._mains_phase, strict=True):
            hum += amplitude * np.sin(2 * np.pi * harmonic * mains_hz * t_s + phase)
        return np.outer([self._mains_uv, _MAINS_RIGHT_FRACTION * self._mains_uv], hum)

    def _add_artifacts(self, t_s: npt.NDArray[np.float64], emg: npt.NDArray[np.float64]) -> None:
        # Artifacts are in time order and last at most _ARTIFACT_LENGTH_TAUS x 0.08 s (scenarios.py).
        first, last = np.searchsorted(self._artifact_starts_s, [t_s[0] - self._artifact_max_s, t_s[-1]], side="right")
        for artifact in self._script.motion_artifacts[first:last]:
            end_s = artifact.time_s + _ARTIFACT_LENGTH_TAUS * artifact.time_constant_s
            lo, hi = np.searchsorted(t_s, [artifact.time_s, end_s])
            x = (t_s[lo:hi] - artifact.time_s) / artifact.time_constant_s
            shape = x * np.exp(1.0 - x)
            emg[:, lo:hi] += np.outer(artifact.amplitude_uv, shape)
