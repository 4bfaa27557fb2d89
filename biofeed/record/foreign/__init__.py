"""Files made by other tools (or exported by biofeed): EDF/EDF+, BDF/BDF+ (OpenBCI GUI's too) and plain CSV.

:func:`read_foreign` reads one whole into a :class:`ForeignRecording` (channels at their own rates,
voltages in µV, annotations); :class:`ForeignFileSource` plays one as a source, so ``replay://`` of
such a file flows through the same decoder and pipeline as a device.
"""

from __future__ import annotations

from pathlib import Path

from biofeed.errors import RecordingError
from biofeed.record.foreign.csv_reader import read_csv_file
from biofeed.record.foreign.edf_reader import BDF_MAGIC, EDF_MAGIC, read_edf_file
from biofeed.record.foreign.recording import ForeignAnnotation, ForeignChannel, ForeignRecording
from biofeed.record.foreign.source import ForeignFileSource

__all__ = [
    "FOREIGN_SUFFIXES",
    "ForeignAnnotation",
    "ForeignChannel",
    "ForeignFileSource",
    "ForeignRecording",
    "is_foreign_file",
    "read_csv_file",
    "read_edf_file",
    "read_foreign",
]

FOREIGN_SUFFIXES: tuple[str, ...] = (".edf", ".bdf", ".csv", ".txt", ".tsv")
"""File name endings read as foreign files (EDF and BDF are told apart by their first bytes)."""


def is_foreign_file(path: Path | str) -> bool:
    """True when ``path`` is a file (not a recording folder) that :func:`read_foreign` would try."""
    file = Path(path)
    return file.is_file() and file.suffix.lower() in FOREIGN_SUFFIXES


def read_foreign(path: Path | str, *, sample_rate_hz: float | None = None, unit: str = "uV") -> ForeignRecording:
    """Read an EDF, BDF or CSV file whole.

    Parameters
    ----------
    path : Path or str
        The file. One that starts like EDF or BDF is read as such whatever its name; anything else
        is read as CSV.
    sample_rate_hz : float or None
        CSV only: the rate of a file without a ``time_s`` column.
    unit : str
        CSV only: unit of columns whose name carries none (``uV``, ``mV``, ``V``).

    Raises
    ------
    ValueError
        A bad ``sample_rate_hz`` or ``unit``.
    RecordingError
        The file cannot be read or is not a valid EDF, BDF or CSV file (one line saying why).
    """
    file = Path(path)
    try:
        with file.open("rb") as stream:
            head = stream.read(8)
    except OSError as exc:
        raise RecordingError(file, f"cannot read: {exc.strerror or exc}") from exc
    if head in (EDF_MAGIC, BDF_MAGIC) or file.suffix.lower() in (".edf", ".bdf"):
        return read_edf_file(file)
    return read_csv_file(file, sample_rate_hz=sample_rate_hz, unit=unit)
