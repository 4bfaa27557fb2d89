"""Reading EDF/EDF+ and BDF/BDF+ files of any origin through edfio (OpenBCI GUI's BDF+ included).

Voltage channels (``nV``, ``uV``/``µV``, ``mV``, ``V``) come back in µV; other channels keep their
unit. Annotations are every TAL but the timekeeping ones. The data is taken as continuous: OpenBCI
GUI marks its BDF+ continuous but stamps records with wall-clock seconds, so record onsets are not
trusted; an EDF+D/BDF+D (discontinuous) file is refused rather than read with its pieces joined.

edfio is strict and raises many kinds of exceptions on damaged files; every one of them becomes a
single :class:`RecordingError` naming the file.
"""

from __future__ import annotations

import datetime
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from biofeed.errors import RecordingError
from biofeed.record.foreign.recording import ForeignAnnotation, ForeignChannel, ForeignRecording, microvolts_per

__all__ = ["BDF_MAGIC", "EDF_MAGIC", "read_edf_file"]

EDF_MAGIC = b"0       "
BDF_MAGIC = b"\xffBIOSEMI"
_HEADER_BYTES = 256


def _channel(signal: Any) -> ForeignChannel:
    rate_hz = float(signal.sampling_frequency)
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"signal {signal.label!r} has sample rate {rate_hz}")
    unit = str(signal.physical_dimension).strip()
    data = np.asarray(signal.data, dtype=np.float64)
    factor = microvolts_per(unit)
    if factor is not None:
        return ForeignChannel(str(signal.label).strip(), rate_hz, "uV", data * factor)
    return ForeignChannel(str(signal.label).strip(), rate_hz, unit, data)


def _start_time(edf: Any) -> datetime.datetime | None:
    try:
        start: datetime.datetime = edf.startdatetime
    except Exception:
        # an anonymised ("X") or malformed date: the samples are still good
        return None
    return start


def read_edf_file(path: Path | str) -> ForeignRecording:
    """Read an EDF(+) or BDF(+) file whole.

    Parameters
    ----------
    path : Path or str
        The file; EDF or BDF is told by its first 8 bytes, not its name.

    Returns
    -------
    ForeignRecording
        Channels (voltages in µV) at their own rates, annotations, start time.

    Raises
    ------
    RecordingError
        When the file cannot be read, is not EDF or BDF, is damaged, or is EDF+D/BDF+D.
    """
    import edfio

    file = Path(path)
    try:
        with file.open("rb") as stream:
            head = stream.read(_HEADER_BYTES)
    except OSError as exc:
        raise RecordingError(file, f"cannot read: {exc.strerror or exc}") from exc
    reader: Callable[..., Any]
    if head[:8] == BDF_MAGIC:
        reader, file_format = edfio.read_bdf, "bdf"
    elif head[:8] == EDF_MAGIC:
        reader, file_format = edfio.read_edf, "edf"
    else:
        raise RecordingError(file, "not an EDF or BDF file (it does not start with '0       ' or '\\xffBIOSEMI')")
    if len(head) < _HEADER_BYTES:
        raise RecordingError(file, f"not a whole {file_format.upper()} header ({len(head)} of {_HEADER_BYTES} bytes)")
    if head[192:197] in (b"EDF+D", b"BDF+D"):
        raise RecordingError(
            file, f"{head[192:197].decode()} (discontinuous) files are not supported; export it continuous"
        )
    try:
        with warnings.catch_warnings():
            # edfio warns about a cut-off last record and keeps the whole ones: that is what we want
            warnings.simplefilter("ignore")
            edf = reader(file, header_encoding="latin-1")
            channels = tuple(_channel(signal) for signal in edf.signals)
            annotations = tuple(
                ForeignAnnotation(float(a.onset), float(a.duration or 0.0), str(a.text)) for a in edf.annotations
            )
            start = _start_time(edf)
    except Exception as exc:
        # edfio raises ValueError, IndexError, ZeroDivisionError, numpy errors ... on damaged files
        reason = " ".join(str(exc).split())[:200]
        raise RecordingError(
            file, f"not a readable {file_format.upper()} file: {type(exc).__name__}: {reason}"
        ) from None
    if not channels:
        raise RecordingError(file, f"the {file_format.upper()} file holds no signal")
    return ForeignRecording(file, file_format, channels, annotations, start)
