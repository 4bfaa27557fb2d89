"""What an imported file holds: channels at their own rates, in µV where they are voltages, and annotations."""

from __future__ import annotations

import datetime
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "CSV_UNITS",
    "ForeignAnnotation",
    "ForeignChannel",
    "ForeignRecording",
    "microvolts_per",
    "normalize_unit",
]

_UV_PER_UNIT = {"nv": 1e-3, "uv": 1.0, "mv": 1e3, "v": 1e6}
CSV_UNITS: tuple[str, ...] = ("uV", "mV", "V")
"""Units a CSV channel may be given in (``µV`` and ``μV`` are read as ``uV``)."""


def normalize_unit(unit: str) -> str:
    """Return a unit with the micro sign (``µ`` or ``μ``) written ``u`` and surrounding space removed."""
    return unit.strip().replace("\u00b5", "u").replace("\u03bc", "u")


def microvolts_per(unit: str) -> float | None:
    """Return how many µV one ``unit`` is (``nV``, ``uV``, ``mV``, ``V``, any case); None for a non-voltage unit."""
    return _UV_PER_UNIT.get(normalize_unit(unit).lower())


@dataclass(frozen=True, eq=False)
class ForeignChannel:
    """One channel of an imported file.

    Attributes
    ----------
    name : str
        Its label in the file.
    sample_rate_hz : float
        Its sample rate in Hz.
    unit : str
        ``uV`` for a voltage (converted from the file's unit); otherwise the file's own unit.
    data : ndarray of float64, shape (n_samples,)
        The samples; NaN where the file has none (an empty CSV cell, an export's gap row).
    """

    name: str
    sample_rate_hz: float
    unit: str
    data: npt.NDArray[np.float64]


@dataclass(frozen=True)
class ForeignAnnotation:
    """One annotation of an imported file.

    Attributes
    ----------
    onset_s : float
        Seconds from the file's first sample.
    duration_s : float
        Seconds; 0 for an instant.
    text : str
        Its text.
    """

    onset_s: float
    duration_s: float
    text: str


@dataclass(frozen=True)
class ForeignRecording:
    """An EDF, BDF or CSV file made by another tool (or exported by biofeed), read whole.

    Attributes
    ----------
    path : Path
        The file.
    file_format : str
        ``edf``, ``bdf`` or ``csv``.
    channels : tuple of ForeignChannel
        Every signal channel, in file order.
    annotations : tuple of ForeignAnnotation
        Every annotation, sorted by onset.
    start_time : datetime.datetime or None
        Start of the recording from the file's header (naive: EDF keeps no time zone); None for CSV.
    first_time_s : float
        The file's own time of its first sample (the first ``time_s`` of a CSV; 0 for EDF).
    skipped_columns : tuple of str
        CSV columns left out because they hold text (a formatted timestamp) or sample indices.
    """

    path: Path
    file_format: str
    channels: tuple[ForeignChannel, ...]
    annotations: tuple[ForeignAnnotation, ...] = ()
    start_time: datetime.datetime | None = None
    first_time_s: float = 0.0
    skipped_columns: tuple[str, ...] = ()

    @property
    def channel_names(self) -> tuple[str, ...]:
        """Channel names in file order."""
        return tuple(c.name for c in self.channels)

    @property
    def sample_rates_hz(self) -> tuple[float, ...]:
        """Sample rate of each channel in Hz."""
        return tuple(c.sample_rate_hz for c in self.channels)

    def channel(self, name: str) -> ForeignChannel:
        """The channel called ``name``.

        Raises
        ------
        KeyError
            When there is none (the message lists the channels).
        """
        for channel in self.channels:
            if channel.name == name:
                return channel
        raise KeyError(f"no channel {name!r}; the file has {', '.join(self.channel_names)}")

    def emg_channels(self) -> tuple[tuple[str, ...], float, npt.NDArray[np.float64]]:
        """Return the voltage channels of the most common rate among them, as one array for EMG analysis.

        Returns
        -------
        names : tuple of str
            Their names.
        sample_rate_hz : float
            Their rate.
        data_uv : ndarray of float64, shape (n_channels, n_samples)
            Their samples in µV (cut to the shortest channel).

        Raises
        ------
        ValueError
            When the file holds no voltage channel.
        """
        voltages = [c for c in self.channels if c.unit == "uV"]
        if not voltages:
            raise ValueError(f"{self.path}: no channel in V, mV or uV to analyse as EMG")
        rate_hz = Counter(c.sample_rate_hz for c in voltages).most_common(1)[0][0]
        chosen = [c for c in voltages if c.sample_rate_hz == rate_hz]
        n_samples = min(len(c.data) for c in chosen)
        return tuple(c.name for c in chosen), rate_hz, np.vstack([c.data[:n_samples] for c in chosen])
