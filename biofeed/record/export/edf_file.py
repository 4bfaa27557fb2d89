r"""A streaming EDF+/BDF+ file writer: header first, then one data record at a time.

edfio (the library biofeed reads EDF with) builds a whole file in memory before writing it: its
``Edf.write`` allocates every data record at once and its signals hold every sample as float64, so
a 1-hour, 8-channel, 2 kHz export would need about 1.3 GB. This writer keeps one data record: it
writes the header (EDF spec 1992, EDF+ 2003; BDF: 24-bit samples, version ``\xffBIOSEMI``), then
each record as it is complete, with the EDF+ annotation signal (``EDF Annotations`` /
``BDF Annotations``) last: a timekeeping TAL, then the record's annotations. edfio, MNE and pyedflib
read the result back in the tests.

Quantisation uses the header values exactly as written (8-character fields), so a reader's
``physical = (digital - digital_min) * gain + physical_min`` is within half a step of the sample.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt

from biofeed.record.export.identity import edf_ascii

__all__ = [
    "BDF_DIGITAL_RANGE",
    "EDF_DIGITAL_RANGE",
    "EdfAnnotation",
    "EdfFileWriter",
    "EdfSignalHeader",
    "format_header_number",
    "format_seconds",
    "tal_bytes",
]

EDF_DIGITAL_RANGE = (-32768, 32767)
BDF_DIGITAL_RANGE = (-8388608, 8388607)
_FILE_MODE = 0o600


def format_header_number(value: float, *, round_up: bool) -> str:
    """Return ``value`` in at most 8 characters, rounded outwards (up for a maximum, down for a minimum).

    Raises
    ------
    ValueError
        When the value needs more than 8 characters even without decimals.
    """
    exact = Decimal(repr(float(value)))
    for n_decimals in range(7, -1, -1):
        step = Decimal(1).scaleb(-n_decimals)
        rounded = exact.quantize(step, rounding=ROUND_CEILING if round_up else ROUND_FLOOR)
        text = f"{rounded:f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        if text == "-0":
            text = "0"
        if len(text) <= 8:
            return text
    raise ValueError(f"{value!r} does not fit the 8 characters of an EDF header field")


def format_seconds(seconds: float | Fraction) -> str:
    """Return a non-negative time as EDF+ TALs write it: shortest decimal, at most 6 decimals, no exponent."""
    value = Decimal(seconds.numerator) / Decimal(seconds.denominator) if isinstance(seconds, Fraction) else None
    if value is None:
        value = Decimal(repr(round(float(seconds), 6)))
    text = f"{value.quantize(Decimal('0.000001')):f}".rstrip("0").rstrip(".")
    return text or "0"


@dataclass(frozen=True)
class EdfAnnotation:
    """One EDF+ annotation.

    Attributes
    ----------
    onset_s : float
        Seconds from the start of the file, >= 0.
    duration_s : float
        Seconds; 0 writes no duration.
    text : str
        One line without control characters.
    """

    onset_s: float
    duration_s: float
    text: str


def tal_bytes(annotation: EdfAnnotation) -> bytes:
    """Return the time-stamped annotation list (TAL) of one annotation (EDF+ section 2.2.2)."""
    head = "+" + format_seconds(max(annotation.onset_s, 0.0))
    if annotation.duration_s > 0:
        head += "\x15" + format_seconds(annotation.duration_s)
    return head.encode("ascii") + b"\x14" + annotation.text.encode("utf-8") + b"\x14\x00"


def _timekeeping_tal(onset_s: Fraction) -> bytes:
    return b"+" + format_seconds(onset_s).encode("ascii") + b"\x14\x14\x00"


@dataclass(frozen=True)
class EdfSignalHeader:
    """The header of one ordinary signal.

    Attributes
    ----------
    label : str
        At most 16 ASCII characters, unique in the file.
    transducer : str
        Transducer type (80 characters at most).
    physical_dimension : str
        Unit, e.g. ``uV`` (8 characters at most).
    physical_min, physical_max : str
        Physical range as written (8 characters each, from :func:`format_header_number`).
    digital_min, digital_max : int
        Digital range.
    samples_per_record : int
        Samples of this signal in each data record.
    prefiltering : str
        Filters applied before recording; may be empty.
    """

    label: str
    transducer: str
    physical_dimension: str
    physical_min: str
    physical_max: str
    digital_min: int
    digital_max: int
    samples_per_record: int
    prefiltering: str = ""

    @property
    def gain(self) -> float:
        """Physical units per digital step, as a reader computes it from the header."""
        return (float(self.physical_max) - float(self.physical_min)) / (self.digital_max - self.digital_min)


def _field(text: str, width: int) -> bytes:
    raw = edf_ascii(text).encode("ascii")
    if len(raw) > width:
        raise ValueError(f"{text!r} does not fit an EDF header field of {width} characters")
    return raw.ljust(width, b" ")


def _start_fields(start: datetime.datetime) -> tuple[str, str]:
    # EDF's two-digit year: 85..99 are 1985..1999, 00..84 are 2000..2084 (EDF+ section 2.1.3.2)
    return start.strftime("%d.%m.%y"), start.strftime("%H.%M.%S")


class EdfFileWriter:
    """Writes one EDF+C or BDF+C file record by record.

    Parameters
    ----------
    path : Path
        The file to create (it must not exist); created 0o600 (health data).
    bdf : bool
        True writes BDF+ (24-bit samples), False EDF+ (16-bit).
    patient : str
        EDF+ local patient identification (``code sex birthdate name``).
    recording : str
        EDF+ local recording identification (``Startdate dd-MMM-yyyy admin technician equipment``).
    start : datetime.datetime
        Start of the first data record (written to the second).
    record_duration_s : Fraction
        Duration of a data record in seconds (exactly representable in 8 characters).
    signals : sequence of EdfSignalHeader
        The ordinary signals, in the order of the data in each record.
    n_records : int
        Number of data records that will be written.
    annotation_bytes : int
        Bytes of the annotation signal in each record (timekeeping TAL included).

    Raises
    ------
    ValueError
        A header field that does not fit, or a label repeated.
    OSError
        The file cannot be created.
    """

    def __init__(
        self,
        path: Path,
        *,
        bdf: bool,
        patient: str,
        recording: str,
        start: datetime.datetime,
        record_duration_s: Fraction,
        signals: Sequence[EdfSignalHeader],
        n_records: int,
        annotation_bytes: int,
    ) -> None:
        labels = [s.label for s in signals]
        if len(set(labels)) != len(labels):
            raise ValueError(f"EDF signal labels must be unique, got {labels}")
        self.bdf = bdf
        self.signals = tuple(signals)
        self.n_records = n_records
        self.record_duration_s = record_duration_s
        self.n_written = 0
        self._bytes_per_sample = 3 if bdf else 2
        self._annotation_samples = math.ceil(annotation_bytes / self._bytes_per_sample)
        self._annotation_bytes = self._annotation_samples * self._bytes_per_sample
        header = self._header(patient, recording, start)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
        self._file = os.fdopen(fd, "wb", buffering=1 << 20)
        try:
            self._file.write(header)
        except BaseException:
            self._file.close()
            raise

    def _header(self, patient: str, recording: str, start: datetime.datetime) -> bytes:
        date_text, time_text = _start_fields(start)
        duration_text = format_seconds(self.record_duration_s)
        if len(duration_text) > 8 or Fraction(Decimal(duration_text)) != self.record_duration_s:
            raise ValueError(f"a data record of {float(self.record_duration_s)} s cannot be written in 8 characters")
        n_signals = len(self.signals) + 1
        digital_min, digital_max = BDF_DIGITAL_RANGE if self.bdf else EDF_DIGITAL_RANGE
        annotation = EdfSignalHeader(
            "BDF Annotations" if self.bdf else "EDF Annotations",
            "",
            "",
            "-1",
            "1",
            digital_min,
            digital_max,
            self._annotation_samples,
        )
        signals = (*self.signals, annotation)
        version = b"\xffBIOSEMI" if self.bdf else _field("0", 8)
        parts = [
            version,
            _field(patient, 80),
            _field(recording, 80),
            _field(date_text, 8),
            _field(time_text, 8),
            _field(str(256 * (n_signals + 1)), 8),
            _field("BDF+C" if self.bdf else "EDF+C", 44),
            _field(str(self.n_records), 8),
            _field(duration_text, 8),
            _field(str(n_signals), 4),
        ]
        parts += [_field(s.label, 16) for s in signals]
        parts += [_field(s.transducer, 80) for s in signals]
        parts += [_field(s.physical_dimension, 8) for s in signals]
        parts += [_field(s.physical_min, 8) for s in signals]
        parts += [_field(s.physical_max, 8) for s in signals]
        parts += [_field(str(s.digital_min), 8) for s in signals]
        parts += [_field(str(s.digital_max), 8) for s in signals]
        parts += [_field(s.prefiltering, 80) for s in signals]
        parts += [_field(str(s.samples_per_record), 8) for s in signals]
        parts += [_field("", 32) for _ in signals]
        return b"".join(parts)

    def write_record(self, digital: Sequence[npt.NDArray[np.int32]], annotations: Sequence[EdfAnnotation]) -> None:
        """Write the next data record.

        Parameters
        ----------
        digital : sequence of ndarray of int32
            Per signal, its ``samples_per_record`` digital values.
        annotations : sequence of EdfAnnotation
            Annotations stored in this record (they must fit the annotation bytes).

        Raises
        ------
        ValueError
            Wrong number of signals or samples, annotations that do not fit, or more records than
            announced.
        """
        if self.n_written >= self.n_records:
            raise ValueError(f"the file announces {self.n_records} data records; no more can be written")
        if len(digital) != len(self.signals):
            raise ValueError(f"expected {len(self.signals)} signals, got {len(digital)}")
        parts = []
        for signal, values in zip(self.signals, digital, strict=True):
            if values.shape != (signal.samples_per_record,):
                raise ValueError(
                    f"signal {signal.label!r} needs {signal.samples_per_record} samples, got {values.shape}"
                )
            if self.bdf:
                parts.append(values.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes())
            else:
                parts.append(values.astype("<i2").tobytes())
        tals = _timekeeping_tal(self.n_written * self.record_duration_s) + b"".join(tal_bytes(a) for a in annotations)
        if len(tals) > self._annotation_bytes:
            raise ValueError(f"{len(tals)} bytes of annotations do not fit the {self._annotation_bytes} of a record")
        parts.append(tals.ljust(self._annotation_bytes, b"\x00"))
        self._file.write(b"".join(parts))
        self.n_written += 1

    def close(self) -> None:
        """Flush and close the file (fsynced); safe to call twice."""
        if self._file.closed:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()

    def __enter__(self) -> EdfFileWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
