"""The sensor's noise floor, and noise correction in the power domain.

SCIENCE.md section 3.6: ``emg_rms = sqrt(max(rms**2 - noise_rms**2, 0))``. The floor comes, in order
of preference, from a shorted-input test mode (a number the board profile gives), from the 2nd-5th
percentile of 1 s RMS over a supported, relaxed calibration rest (:func:`noise_floor_from_rest`), or
from the 450-500 Hz band scaled to the EMG band when the rate allows it (:func:`noise_floor_from_high_band`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from biofeed.dsp.filters import EmgBand

__all__ = [
    "HIGH_BAND_HZ",
    "MIN_HIGH_BAND_RATE_HZ",
    "MIN_REST_WINDOWS",
    "REST_PERCENTILES",
    "correct_for_noise",
    "noise_floor_from_high_band",
    "noise_floor_from_rest",
]

REST_PERCENTILES = (2.0, 5.0)
"""SCIENCE.md 3.6: the floor is the 2nd-5th percentile of 1 s RMS over a relaxed calibration."""
MIN_REST_WINDOWS = 20
"""Fewer 1 s windows than this leave the 2nd-5th percentile resting on one or two values."""
HIGH_BAND_HZ = (450.0, 500.0)
"""SCIENCE.md 3.6: a band above the sEMG spectrum that carries the sensor noise."""
MIN_HIGH_BAND_RATE_HZ = 2000.0
"""SCIENCE.md 3.6: the high-band estimate needs fs >= 2 kHz."""


def correct_for_noise(rms_uv: npt.ArrayLike, noise_floor_uv: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Remove the noise floor from RMS values in the power domain.

    Parameters
    ----------
    rms_uv : array_like
        Measured RMS in uV, any shape.
    noise_floor_uv : array_like
        Noise RMS in uV in the same band, broadcastable to ``rms_uv``.

    Returns
    -------
    ndarray
        ``sqrt(max(rms**2 - noise**2, 0))`` in uV, the broadcast shape.
    """
    rms = np.asarray(rms_uv, dtype=np.float64)
    noise = np.asarray(noise_floor_uv, dtype=np.float64)
    return np.sqrt(np.maximum(rms * rms - noise * noise, 0.0))


def noise_floor_from_rest(rms_1s_uv: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Noise floor from a relaxed calibration: the mean of the 2nd and 5th percentiles of 1 s RMS.

    Parameters
    ----------
    rms_1s_uv : array_like, shape (..., n_windows)
        Band-passed 1 s RMS in uV of a supported, relaxed rest (2 minutes recommended).

    Returns
    -------
    ndarray, shape (...)
        Noise floor in uV per leading index (per channel).

    Raises
    ------
    ValueError
        With fewer than :data:`MIN_REST_WINDOWS` windows or non-finite values.

    Notes
    -----
    On pure sensor noise the estimate sits about 2 standard errors of a 1 s RMS below the true
    floor (about 5 % at a 420 Hz band); with residual muscle activity it is an upper bound.
    """
    rms = np.asarray(rms_1s_uv, dtype=np.float64)
    if rms.ndim == 0 or rms.shape[-1] < MIN_REST_WINDOWS:
        n = 0 if rms.ndim == 0 else rms.shape[-1]
        raise ValueError(f"the noise floor needs at least {MIN_REST_WINDOWS} 1 s windows of rest, got {n}")
    if not np.isfinite(rms).all():
        raise ValueError("1 s RMS values must be finite")
    low, high = np.percentile(rms, REST_PERCENTILES, axis=-1)
    return np.asarray(0.5 * (low + high), dtype=np.float64)


def noise_floor_from_high_band(raw_uv: npt.ArrayLike, band: EmgBand, segment_s: float = 1.0) -> npt.NDArray[np.float64]:
    """Noise floor from the 450-500 Hz band of the raw signal, scaled to the EMG band.

    The noise is taken as white: its power density in 450-500 Hz times the equivalent noise
    bandwidth of ``band`` gives its power after the band-pass. The density is the median over
    ``segment_s`` segments (Hann-windowed periodograms), so contractions covering less than half
    the record do not raise it.

    Parameters
    ----------
    raw_uv : array_like, shape (n_channels, n_samples)
        Raw (not low-passed) sEMG in uV; finite.
    band : EmgBand
        The band-pass the floor is wanted for; its rate must be >= 2 kHz.
    segment_s : float
        Segment length in seconds.

    Returns
    -------
    ndarray, shape (n_channels,)
        Noise RMS in uV in ``band``.

    Raises
    ------
    ValueError
        When the rate is below 2 kHz, the record shorter than one segment, or samples are not finite.
    """
    raw = np.atleast_2d(np.asarray(raw_uv, dtype=np.float64))
    fs = band.sample_rate_hz
    if fs < MIN_HIGH_BAND_RATE_HZ:
        raise ValueError(f"the 450-500 Hz noise estimate needs a rate >= {MIN_HIGH_BAND_RATE_HZ:.0f} Hz, got {fs} Hz")
    n_segment = round(segment_s * fs)
    n_segments = raw.shape[1] // n_segment
    if n_segments < 1:
        raise ValueError(f"the record is shorter than one {segment_s} s segment")
    if not np.isfinite(raw).all():
        raise ValueError("raw samples must be finite")
    segments = raw[:, : n_segments * n_segment].reshape(raw.shape[0], n_segments, n_segment)
    segments = segments - segments.mean(axis=2, keepdims=True)
    window = np.hanning(n_segment)
    spectra = np.fft.rfft(segments * window, axis=2)
    # One-sided density in uV^2/Hz of a Hann-windowed periodogram.
    density = 2.0 * np.abs(spectra) ** 2 / (fs * np.sum(window**2))
    freqs_hz = np.fft.rfftfreq(n_segment, 1.0 / fs)
    in_band = (freqs_hz >= HIGH_BAND_HZ[0]) & (freqs_hz <= HIGH_BAND_HZ[1])
    band_density = np.median(density[:, :, in_band].mean(axis=2), axis=1)
    return np.asarray(np.sqrt(band_density * band.noise_bandwidth_hz()), dtype=np.float64)
