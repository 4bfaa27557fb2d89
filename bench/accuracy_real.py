"""The real recordings of ``../shared/data/real`` as the accuracy benchmark uses them.

None has onset annotations (SCIENCE.md 12), so they give burst counts and false alarms only:

- ``emggo_ta``: emgGO tibialis anterior, 250 Hz, 550 s, 56 ballistic bursts (emgGO's tutorial);
  file units (undocumented; every detector compared is scale-free or calibrated on its rest).
- ``bitalino_rest``: BioSPPy ``emg.txt``, 1 kHz, 100 s of near rest: every detection is counted as
  a false alarm, although a few may be genuine small rises (docs/dsp.md).
- ``bitalino_bursts``: BioSPPy ``emg_1.txt``, 1 kHz, 64 s, "several" bursts: count only.

BITalino counts are turned into uV with the BITalino EMG transfer function the folder's README
assumes (3.3 V, gain 1009, 12 bits). Every record's first :data:`~bench.accuracy_signals.CALIBRATION_S`
seconds are the calibration rest (each starts at rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.accuracy_signals import CALIBRATION_S

__all__ = ["REAL_DATA_DIR", "RealRecording", "bitalino_counts_to_uv", "load_real_recordings"]

REAL_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
"""``../shared/data/real`` from the repository root."""
EMGGO_BURSTS = 56


@dataclass(frozen=True)
class RealRecording:
    """One real single-channel record.

    Attributes
    ----------
    name : str
        Short name (module docstring).
    raw_uv : ndarray, shape (n_samples,)
        The record (uV, or file units for emgGO).
    fs_hz : float
        Sample rate.
    rest_indices : tuple of int
        [start, end) of the calibration rest, samples.
    expected_bursts : int or None
        Known burst count (0 for the rest record), None when unknown.
    """

    name: str
    raw_uv: npt.NDArray[np.float64]
    fs_hz: float
    rest_indices: tuple[int, int]
    expected_bursts: int | None

    @property
    def duration_s(self) -> float:
        """Length, s."""
        return float(self.raw_uv.shape[0] / self.fs_hz)


def bitalino_counts_to_uv(counts: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """BITalino EMG ADC counts (12-bit) to uV with the README's assumed transfer function."""
    return np.asarray((np.asarray(counts, dtype=np.float64) / 4096 - 0.5) * 3.3 / 1009 * 1e6, dtype=np.float64)


def load_real_recordings(folder: Path = REAL_DATA_DIR) -> list[RealRecording]:
    """The three records (module docstring); an empty list when ``folder`` does not exist.

    Raises
    ------
    FileNotFoundError
        When the folder exists but one of the files is missing.
    """
    if not folder.is_dir():
        return []
    emggo = np.loadtxt(folder / "emggo-ta-250hz" / "sample_ta_250hz.csv.gz", delimiter=",", skiprows=1)[:, 1]
    rest = bitalino_counts_to_uv(np.loadtxt(folder / "biosppy-emg" / "emg.txt"))
    bursts = bitalino_counts_to_uv(np.loadtxt(folder / "biosppy-emg" / "emg_1.txt"))
    records: list[tuple[str, npt.NDArray[np.float64], float, int | None]] = [
        ("emggo_ta", emggo, 250.0, EMGGO_BURSTS),
        ("bitalino_rest", rest, 1000.0, 0),
        ("bitalino_bursts", bursts, 1000.0, None),
    ]
    return [
        RealRecording(name, np.asarray(data, dtype=np.float64), fs, (0, round(CALIBRATION_S * fs)), expected)
        for name, data, fs, expected in records
    ]
