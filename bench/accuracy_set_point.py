"""Set-point bias: biofeed's resting tension against the scripted rest level, with and without ECG.

A resting muscle at ``rest_uv`` (uV RMS of sEMG in 20-450 Hz), 1.5 uV sensor noise, and optionally
the simulator's ECG (50 uV R peak), 90 s at 2 kHz (:func:`bench.accuracy_signals.rest_tension_recording`).
Compared with the scripted level:

- biofeed: the set point :func:`biofeed.dsp.analyze_emg` reports (noise-corrected 1 s RMS after
  its 30 Hz high-pass, ECG subtraction when it switches on, its own noise-floor estimate);
- plain RMS: the median 1 s RMS of the 20-450 Hz band-passed signal (4th-order Butterworth), as a
  meter without noise correction or ECG handling would show it;
- plain RMS, noise-corrected with the *true* floor: the same minus the sensor noise in the power
  domain, which isolates what the ECG adds.

Bias = value / scripted level - 1. The median over records is reported, with its range.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.accuracy_detectors import band_passed
from bench.accuracy_signals import CALIBRATION_S, rest_tension_recording
from biofeed.dsp import analyze_emg, correct_for_noise

__all__ = ["SetPointBias", "measure_set_point_bias", "plain_rms_uv"]

PLAIN_HIGH_PASS_HZ = 20.0


def plain_rms_uv(raw_uv: np.ndarray, fs_hz: float, skip_s: float = CALIBRATION_S) -> float:
    """Median of back-to-back 1 s RMS of the 20-450 Hz band-passed signal after ``skip_s``, uV."""
    filtered = band_passed(raw_uv, fs_hz, PLAIN_HIGH_PASS_HZ)[round(skip_s * fs_hz) :]
    n = round(fs_hz)
    windows = filtered[: filtered.shape[0] // n * n].reshape(-1, n)
    return float(np.median(np.sqrt(np.mean(windows**2, axis=1))))


@dataclass(frozen=True)
class SetPointBias:
    """Bias figures of one condition, over its records.

    Attributes
    ----------
    rest_uv, ecg_r_peak_uv, noise_uv : float
        The condition: scripted rest level, ECG R peak (0 for none), sensor noise.
    n_records : int
    biofeed_bias_pct, plain_bias_pct, plain_corrected_bias_pct : tuple of float
        (median, min, max) of each measure's bias, %.
    biofeed_noise_floor_uv : float
        Median noise floor biofeed estimated (truth: ``noise_uv``).
    n_ecg_subtracted : int
        Records on which biofeed switched ECG subtraction on.
    """

    rest_uv: float
    ecg_r_peak_uv: float
    noise_uv: float
    n_records: int
    biofeed_bias_pct: tuple[float, float, float]
    plain_bias_pct: tuple[float, float, float]
    plain_corrected_bias_pct: tuple[float, float, float]
    biofeed_noise_floor_uv: float
    n_ecg_subtracted: int

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "rest_uv": self.rest_uv,
            "ecg_r_peak_uv": self.ecg_r_peak_uv,
            "noise_uv": self.noise_uv,
            "n_records": self.n_records,
            "biofeed_bias_pct": list(self.biofeed_bias_pct),
            "plain_bias_pct": list(self.plain_bias_pct),
            "plain_corrected_bias_pct": list(self.plain_corrected_bias_pct),
            "biofeed_noise_floor_uv": self.biofeed_noise_floor_uv,
            "n_ecg_subtracted": self.n_ecg_subtracted,
        }


def _spread(values: Sequence[float]) -> tuple[float, float, float]:
    array = np.asarray(values, dtype=np.float64)
    if not np.isfinite(array).any():
        return (math.nan, math.nan, math.nan)
    return (float(np.nanmedian(array)), float(np.nanmin(array)), float(np.nanmax(array)))


def measure_set_point_bias(
    rest_levels_uv: Sequence[float],
    ecg_r_peaks_uv: Sequence[float],
    n_records: int,
    *,
    noise_uv: float = 1.5,
    seed: int = 0,
) -> list[SetPointBias]:
    """Bias of each measure for every (rest level, ECG) pair, over ``n_records`` seeded records (none for 0)."""
    results: list[SetPointBias] = []
    if n_records <= 0:
        return results
    for rest_uv in rest_levels_uv:
        for ecg_uv in ecg_r_peaks_uv:
            biofeed, plain, corrected, floors = [], [], [], []
            n_subtracted = 0
            for k in range(n_records):
                record = rest_tension_recording(rest_uv, ecg_uv, k, noise_uv=noise_uv, seed=seed)
                analysis = analyze_emg(record.raw_uv, record.fs_hz)
                channel = analysis.channels[0]
                set_point = channel.set_point_uv if channel.set_point_uv is not None else math.nan
                biofeed.append(100 * (set_point / rest_uv - 1))
                floors.append(channel.noise_floor_uv)
                n_subtracted += any(d.subtracting for d in analysis.ecg)
                rms = plain_rms_uv(record.raw_uv, record.fs_hz)
                plain.append(100 * (rms / rest_uv - 1))
                corrected.append(100 * (float(correct_for_noise(rms, noise_uv)) / rest_uv - 1))
            results.append(
                SetPointBias(
                    rest_uv=rest_uv,
                    ecg_r_peak_uv=ecg_uv,
                    noise_uv=noise_uv,
                    n_records=n_records,
                    biofeed_bias_pct=_spread(biofeed),
                    plain_bias_pct=_spread(plain),
                    plain_corrected_bias_pct=_spread(corrected),
                    biofeed_noise_floor_uv=float(np.median(floors)),
                    n_ecg_subtracted=n_subtracted,
                )
            )
    return results
