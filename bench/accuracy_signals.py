"""Simulated sEMG with known truth for the onset/offset accuracy benchmark.

Every record is the simulator's surface-EMG carrier (:func:`biofeed.sim.emg.carrier_sos`: Shwedyk /
Stulen & De Luca spectrum, fl 60 Hz, fh 120 Hz, band-limited 20-450 Hz, unit RMS) times a scripted
activation (uV RMS), plus white sensor noise whose RMS in the 20-450 Hz band is ``noise_uv``, as in
:class:`biofeed.sim.emg.EmgGenerator`. SNR is SCIENCE.md 5's ``20 log10(active RMS / noise RMS)``
with the active RMS the plateau activation and the noise RMS the 20-450 Hz sensor noise. The active
level is fixed (:data:`ACTIVE_UV`) and the noise scaled to the SNR, so each SNR has its own noise
level for the rest-only records too.

Truth. Every record starts with :data:`CALIBRATION_S` of rest (the segment biofeed's phase detector
calibrates on; the peers get the same samples as their rest segment). Bursts start with a step
(onset = the first sample of the step) and either end with a step (``step``: offset = the first
sample back at rest) or with a straight release of 2-10 s (``slow``: the activation falls linearly,
as the simulator's releases do, and the offset is the first sample at which it has reached the rest
level, i.e. the end of the ramp). The rest level is zero activation: only sensor noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import signal

from biofeed.sim.ecg import EcgContamination
from biofeed.sim.emg import EMG_BAND_HZ, carrier_sos

__all__ = [
    "ACTIVE_UV",
    "BURST_KINDS",
    "CALIBRATION_S",
    "SNRS_DB",
    "Burst",
    "BurstKind",
    "Recording",
    "burst_recording",
    "carrier",
    "noise_for_snr_uv",
    "rest_recording",
    "rest_tension_recording",
    "sensor_noise",
]

BurstKind = Literal["step", "slow"]
BURST_KINDS: tuple[BurstKind, ...] = ("step", "slow")
SNRS_DB: tuple[float, ...] = (-3.0, 0.0, 3.0, 6.0, 10.0, 20.0)
"""The SNRs of the benchmark, dB."""
ACTIVE_UV = 20.0
"""Plateau activation of every burst, uV RMS."""
CALIBRATION_S = 5.0
"""Leading rest that calibrates every detector (biofeed's ``PhaseSettings.calibration_s``)."""
_FIRST_BURST_S = (6.0, 7.0)  # the first onset lies 1-2 s after the calibration rest
_HOLD_S = (1.0, 3.0)
_SLOW_RELEASE_S = (2.0, 10.0)
_REST_BETWEEN_S = (3.0, 6.0)
_TAIL_S = 4.0
_WARM_UP_S = 1.0
_KIND_CODES = {"step": 1, "slow": 2, "rest": 3, "tension": 4}


@dataclass(frozen=True)
class Burst:
    """One scripted burst (sample indices of its record).

    Attributes
    ----------
    onset_index : int
        First sample of the step up.
    offset_index : int
        First sample at which the activation is back at the rest level.
    release_s : float
        Duration of the linear release, s (0 for a step offset).
    """

    onset_index: int
    offset_index: int
    release_s: float


@dataclass(frozen=True)
class Recording:
    """A simulated single-channel record and its truth.

    Attributes
    ----------
    raw_uv : ndarray, shape (n_samples,)
        The signal, uV (what ``biofeed analyze`` would read from a file).
    fs_hz : float
        Sample rate.
    rest_indices : tuple of int
        [start, end) of the calibration rest, samples.
    bursts : tuple of Burst
        Truth, in time order (empty for a rest-only record).
    noise_uv : float
        Sensor noise RMS in the 20-450 Hz band, uV.
    activation_uv : ndarray, shape (n_samples,)
        The scripted activation, uV RMS.
    """

    raw_uv: npt.NDArray[np.float64]
    fs_hz: float
    rest_indices: tuple[int, int]
    bursts: tuple[Burst, ...]
    noise_uv: float
    activation_uv: npt.NDArray[np.float64]

    @property
    def duration_s(self) -> float:
        """Length of the record, s."""
        return float(self.raw_uv.shape[0] / self.fs_hz)


def noise_for_snr_uv(snr_db: float, active_uv: float = ACTIVE_UV) -> float:
    """Sensor noise RMS (20-450 Hz) giving ``snr_db`` against an ``active_uv`` plateau, uV."""
    return float(active_uv / 10 ** (snr_db / 20))


def carrier(n_samples: int, fs_hz: float, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Unit-RMS sEMG carrier, shape (n_samples,), already stationary at its first sample."""
    n_warm = round(_WARM_UP_S * fs_hz)
    shaped = signal.sosfilt(carrier_sos(fs_hz), rng.standard_normal(n_samples + n_warm))
    return np.asarray(shaped[n_warm:], dtype=np.float64)


def sensor_noise(n_samples: int, fs_hz: float, noise_uv: float, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """White noise whose RMS in the 20-450 Hz band is ``noise_uv``, shape (n_samples,)."""
    band_fraction = (EMG_BAND_HZ[1] - EMG_BAND_HZ[0]) / (fs_hz / 2)
    return np.asarray(noise_uv / np.sqrt(band_fraction) * rng.standard_normal(n_samples), dtype=np.float64)


def _rng(seed: int, kind: str, snr_db: float, record_index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _KIND_CODES[kind], round(10 * snr_db) + 1000, record_index])


def burst_recording(
    kind: BurstKind,
    snr_db: float,
    record_index: int,
    *,
    n_bursts: int = 5,
    fs_hz: float = 2000.0,
    seed: int = 0,
) -> Recording:
    """A record of ``n_bursts`` bursts of one kind at one SNR.

    Parameters
    ----------
    kind : {"step", "slow"}
        Step offsets, or linear releases of 2-10 s.
    snr_db : float
        SNR of every burst, dB.
    record_index : int
        Which record of this (kind, SNR): each has its own random stream.
    n_bursts : int
        Bursts in the record.
    fs_hz : float
        Sample rate (> 900 Hz: the carrier is band-limited to 450 Hz).
    seed : int
        Seed of the whole benchmark.

    Returns
    -------
    Recording
        Calibration rest, then bursts each followed by 3-6 s of rest.
    """
    if kind not in BURST_KINDS:
        raise ValueError(f"kind must be one of {BURST_KINDS}, got {kind!r}")
    if n_bursts < 1:
        raise ValueError(f"n_bursts must be >= 1, got {n_bursts}")
    rng = _rng(seed, kind, snr_db, record_index)
    shapes: list[tuple[int, int, int, float]] = []  # (onset, release start, offset, release_s)
    t_s = float(rng.uniform(*_FIRST_BURST_S))
    for _ in range(n_bursts):
        onset = round(t_s * fs_hz)
        release_start = onset + round(rng.uniform(*_HOLD_S) * fs_hz)
        release_s = float(rng.uniform(*_SLOW_RELEASE_S)) if kind == "slow" else 0.0
        offset = release_start + round(release_s * fs_hz)
        shapes.append((onset, release_start, offset, release_s))
        t_s = offset / fs_hz + float(rng.uniform(*_REST_BETWEEN_S))
    n = round((shapes[-1][2] / fs_hz + _TAIL_S) * fs_hz)
    activation = np.zeros(n)
    for onset, release_start, offset, _ in shapes:
        activation[onset:release_start] = ACTIVE_UV
        # Linear from ACTIVE_UV at release_start down to 0 at offset (exclusive): 0 from offset on.
        ramp = offset - release_start
        activation[release_start:offset] = ACTIVE_UV * (1.0 - np.arange(ramp) / ramp) if ramp else 0.0
    noise_uv = noise_for_snr_uv(snr_db)
    raw = activation * carrier(n, fs_hz, rng) + sensor_noise(n, fs_hz, noise_uv, rng)
    bursts = tuple(Burst(onset, offset, release_s) for onset, _, offset, release_s in shapes)
    return Recording(raw, fs_hz, (0, round(CALIBRATION_S * fs_hz)), bursts, noise_uv, activation)


def rest_recording(
    snr_db: float, record_index: int, *, duration_s: float = 60.0, fs_hz: float = 2000.0, seed: int = 0
) -> Recording:
    """Rest only: the sensor noise of an SNR, ``duration_s`` long (calibration rest included)."""
    rng = _rng(seed, "rest", snr_db, record_index)
    n = round(duration_s * fs_hz)
    noise_uv = noise_for_snr_uv(snr_db)
    raw = sensor_noise(n, fs_hz, noise_uv, rng)
    return Recording(raw, fs_hz, (0, round(CALIBRATION_S * fs_hz)), (), noise_uv, np.zeros(n))


def rest_tension_recording(
    rest_uv: float,
    ecg_r_peak_uv: float,
    record_index: int,
    *,
    noise_uv: float = 1.5,
    duration_s: float = 90.0,
    fs_hz: float = 2000.0,
    seed: int = 0,
) -> Recording:
    """A resting muscle at ``rest_uv`` (uV RMS of sEMG), sensor noise, and optional ECG.

    The ECG is the simulator's (:class:`biofeed.sim.ecg.EcgContamination`, left channel: R peak
    ``ecg_r_peak_uv``, 60-75 bpm). The record is rest throughout; no burst.
    """
    rng = _rng(seed, "tension", 100 * rest_uv + ecg_r_peak_uv, record_index)
    n = round(duration_s * fs_hz)
    activation = np.full(n, float(rest_uv))
    raw = activation * carrier(n, fs_hz, rng) + sensor_noise(n, fs_hz, noise_uv, rng)
    if ecg_r_peak_uv > 0:
        ecg_seed = int(rng.integers(2**31))
        raw += EcgContamination(ecg_seed, ecg_r_peak_uv).segment(np.arange(n) / fs_hz)[0]
    return Recording(raw, fs_hz, (0, round(CALIBRATION_S * fs_hz)), (), noise_uv, activation)
