"""Exports of a recording: EDF+/BDF+, CSV and Parquet (docs/export.md).

``biofeed export PATH --to edf|bdf|csv|parquet [--out FILE] [--anonymize]`` calls
:func:`run_export`. Every export reads the recording in bounded memory, marks every gap (NaN rows
or an annotation with its duration), carries every event, and never overwrites anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from biofeed.record.export.csv_files import export_csv
from biofeed.record.export.edf import export_edf
from biofeed.record.export.identity import ClientIdentity
from biofeed.record.export.output import check_new_path
from biofeed.record.export.parquet_files import export_parquet
from biofeed.record.reader import open_recording

__all__ = ["EXPORT_FORMATS", "ClientIdentity", "default_export_path", "run_export"]

EXPORT_FORMATS: tuple[str, ...] = ("edf", "bdf", "csv", "parquet")
"""Values of ``--to``."""

_SUFFIXES = {"edf": ".edf", "bdf": ".bdf", "csv": "-csv", "parquet": "-parquet"}

log = logging.getLogger(__name__)


def _check_format(to: str) -> None:
    if to not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {to!r}; use one of {', '.join(EXPORT_FORMATS)}")


def default_export_path(path: Path | str, to: str) -> Path:
    """Where an export goes without ``--out``: next to the recording folder.

    ``<folder>.edf`` or ``<folder>.bdf``, or the folders ``<folder>-csv`` and ``<folder>-parquet``.

    Raises
    ------
    ValueError
        An unknown format.
    """
    _check_format(to)
    folder = Path(path).resolve()
    return folder.with_name(folder.name + _SUFFIXES[to])


def run_export(
    path: Path | str,
    to: str,
    out: Path | str | None = None,
    anonymize: bool = False,
    *,
    identity: ClientIdentity | None = None,
    warn: Callable[[str], None] | None = None,
) -> Path:
    """Export a recording; the function behind ``biofeed export``.

    Parameters
    ----------
    path : Path or str
        The recording folder.
    to : {"edf", "bdf", "csv", "parquet"}
        The format. ``edf`` and ``bdf`` write one file; ``csv`` and ``parquet`` a folder.
    out : Path or str or None
        The file or folder to create (it must not exist); None for :func:`default_export_path`.
    anonymize : bool
        Remove the client's name, birth date and pseudonym from every header, column and copy of
        ``recording.json``, and redact them from event texts.
    identity : ClientIdentity or None
        The client (name, birth date, sex) when the caller knows more than the recording's
        pseudonym; None reads it from ``recording.json``.
    warn : callable taking str, or None
        Receives one line when EDF's 16 bits cost resolution; None logs it as a warning.

    Returns
    -------
    Path
        What was written.

    Raises
    ------
    ValueError
        An unknown format.
    RecordingError
        The recording cannot be read or has no samples, the output exists, or it cannot be written.
    """
    _check_format(to)
    recording = open_recording(path)
    target = Path(out) if out is not None else default_export_path(path, to)
    check_new_path(target)
    who = identity if identity is not None else ClientIdentity.from_meta(recording.meta)
    if to in ("edf", "bdf"):
        return export_edf(
            recording, target, bdf=to == "bdf", identity=who, anonymize=anonymize, warn=warn or log.warning
        )
    if to == "csv":
        return export_csv(recording, target, identity=who, anonymize=anonymize)
    return export_parquet(recording, target, identity=who, anonymize=anonymize)
