"""Reading a plain CSV of EMG: a header row, then one row per sample.

- The separator is the one of ``,`` ``;`` and tab that the header row holds most of; cells may be
  padded with spaces. Lines starting with ``%`` or ``#`` before the header are comments (OpenBCI
  GUI's text exports start that way); blank lines are skipped.
- A ``time_s`` column gives the sample rate (its steps must be even within 1 %); without one the
  caller gives ``sample_rate_hz``.
- Every other column whose first value (in the first 1000 rows) is a number is a channel, in µV
  unless its name ends in a unit, ``es_left [mV]`` or ``es_left (V)`` (``uV``, ``mV``, ``V``;
  ``µV``/``μV`` too), or the caller gives one. A column whose first value is text (a formatted
  timestamp) and a ``sample_index`` column are left out and listed. An empty cell is NaN (a gap);
  ``nan`` too.
- The text is parsed in chunks of 65536 rows, so memory holds the resulting arrays and one chunk
  of text, not the whole file; a chunk of plain numbers is parsed by numpy in C, others cell by
  cell. A quoted cell may not span lines.

Every problem is one :class:`RecordingError` line naming the file, the line and the column: text in
a numeric column, a row with a different number of cells, an empty file, an unknown unit.
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import numpy as np
import numpy.typing as npt

from biofeed.errors import RecordingError
from biofeed.record.foreign.recording import (
    CSV_UNITS,
    ForeignChannel,
    ForeignRecording,
    microvolts_per,
    normalize_unit,
)

__all__ = ["TIME_COLUMN", "read_csv_file"]

TIME_COLUMN = "time_s"
_INDEX_COLUMNS = frozenset({"sample_index", "sample index", "index"})
_SEPARATORS = (",", ";", "\t")
_COMMENT_PREFIXES = ("%", "#")
_UNIT_SUFFIX = re.compile(r"^(?P<name>.*?)\s*[\[(]\s*(?P<unit>[^\])]*?)\s*[\])]$")
_EVEN_STEP_TOLERANCE = 0.01
_CHUNK_ROWS = 65536
_TYPING_ROWS = 1000  # a column's type comes from its first non-empty cell among these rows


def _microvolts_per_csv_unit(unit: str) -> float | None:
    """µV per ``unit`` when it is one of :data:`CSV_UNITS` (any case, ``µ``/``μ`` as ``u``); else None."""
    if normalize_unit(unit).lower() not in {u.lower() for u in CSV_UNITS}:
        return None
    return microvolts_per(unit)


def _number(cell: str) -> float | None:
    text = cell.strip()
    if not text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return None


_Row = tuple[int, list[str]]  # (line number, cells)


class _Lines:
    """The lines of a text file, numbered from 1; NUL bytes (a binary file) are refused."""

    def __init__(self, path: Path, stream: TextIO) -> None:
        self.path = path
        self.stream = stream
        self.number = 0

    def __iter__(self) -> Iterator[str]:
        for line in self.stream:
            self.number += 1
            if "\x00" in line:
                raise RecordingError(self.path, f"line {self.number} holds NUL bytes; not a CSV text file")
            yield line


def _header(lines: _Lines) -> tuple[str, int]:
    """The header line (comments and blank lines before it skipped) and its number."""
    for line in lines:
        if line.strip() and not line.lstrip().startswith(_COMMENT_PREFIXES):
            return line, lines.number
    raise RecordingError(lines.path, "empty: no header row")


def _line_chunks(lines: _Lines) -> Iterator[list[tuple[int, str]]]:
    """The non-blank lines after the header, numbered, in chunks of at most :data:`_CHUNK_ROWS`."""
    chunk: list[tuple[int, str]] = []
    for line in lines:
        if line.strip():
            chunk.append((lines.number, line))
            if len(chunk) == _CHUNK_ROWS:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _rows(path: Path, chunk: list[tuple[int, str]], separator: str, n_columns: int) -> list[_Row]:
    """Parse lines into cells, each row checked for its number of cells (a quoted cell may not span lines)."""
    rows = []
    reader = csv.reader((line for _, line in chunk), delimiter=separator, skipinitialspace=True)
    for (number, _), row in zip(chunk, reader, strict=False):
        if len(row) != n_columns:
            raise RecordingError(path, f"line {number}: {len(row)} cells, the header has {n_columns}")
        rows.append((number, row))
    return rows


def _fast_numbers(chunk: list[tuple[int, str]], separator: str, n_columns: int) -> npt.NDArray[np.float64] | None:
    """Every cell of a chunk as numbers, shape (n_rows, n_columns), when all are numbers; else None.

    numpy parses the text in C, ten times faster than cell by cell; only lines without quotes and
    with exactly ``n_columns`` cells qualify, so a parse that fills the array is the right one.
    """
    if any(line.count(separator) != n_columns - 1 or '"' in line for _, line in chunk):
        return None
    text = separator.join(line.rstrip("\r\n") for _, line in chunk)
    try:
        with warnings.catch_warnings():
            # older numpy warns (and stops) where newer numpy raises: text, or an empty cell
            warnings.simplefilter("ignore", DeprecationWarning)
            values = np.fromstring(text, sep=separator)
    except ValueError:
        return None
    return values.reshape(-1, n_columns) if values.size == len(chunk) * n_columns else None


def _chunk_numbers(
    path: Path, chunk: list[tuple[int, str]], separator: str, header: list[str], wanted: list[int]
) -> npt.NDArray[np.float64]:
    """The wanted columns of a chunk of lines as numbers, shape (n_rows, n_wanted)."""
    fast = _fast_numbers(chunk, separator, len(header))
    if fast is not None:
        return fast[:, wanted]
    return _to_numbers(path, _rows(path, chunk, separator, len(header)), header, wanted)


def _to_numbers(path: Path, chunk: list[_Row], header: list[str], wanted: list[int]) -> npt.NDArray[np.float64]:
    """The wanted columns of parsed rows as numbers, shape (n_rows, n_wanted); empty cells are NaN."""
    out = np.empty((len(chunk), len(wanted)))
    for j, k in enumerate(wanted):
        cells = [row[k] for _, row in chunk]
        try:
            out[:, j] = np.array(cells, dtype=np.float64)  # parses in C; empty cells need the slow path
        except ValueError:
            for i, cell in enumerate(cells):
                value = _number(cell)
                if value is None:
                    where = f"line {chunk[i][0]}, column {header[k]!r}"
                    raise RecordingError(path, f"{where}: {cell.strip()!r} is not a number") from None
                out[i, j] = value
    return out


def _columns(
    path: Path, header: list[str], first_rows: list[_Row], default_factor: float
) -> tuple[int | None, list[tuple[int, str, float]], list[str]]:
    """Split the columns: the time column, the channels (index, name, µV per unit) and those left out."""
    time_index: int | None = None
    channels: list[tuple[int, str, float]] = []
    skipped: list[str] = []
    for k, name in enumerate(header):
        if name.lower() == TIME_COLUMN:
            time_index = k
            continue
        # a column is numeric when its first non-empty cell (in the first rows) is a number
        first_cell = next((row[k] for _, row in first_rows if row[k].strip()), "")
        if name.lower() in _INDEX_COLUMNS or not first_cell.strip() or _number(first_cell) is None:
            skipped.append(name)
            continue
        match = _UNIT_SUFFIX.match(name)
        if match is None:
            channels.append((k, name, default_factor))
            continue
        factor = _microvolts_per_csv_unit(match["unit"])
        if factor is None:
            allowed = ", ".join(CSV_UNITS)
            raise RecordingError(path, f"column {name!r}: unknown unit {match['unit']!r}; use one of {allowed}")
        channels.append((k, match["name"], factor))
    if not channels:
        raise RecordingError(path, "no numeric channel column")
    return time_index, channels, skipped


def _read_table(
    path: Path, stream: TextIO, default_factor: float
) -> tuple[npt.NDArray[np.float64], int | None, list[tuple[int, str, float]], list[str]]:
    """Parse the file: the numbers of the time column (first, when there is one) and channel columns."""
    lines = _Lines(path, stream)
    header_line, header_number = _header(lines)
    separator = max(_SEPARATORS, key=header_line.count)
    header = [cell.strip() for cell in next(csv.reader([header_line], delimiter=separator, skipinitialspace=True))]
    if len(set(header)) != len(header) or not all(header):
        raise RecordingError(path, f"line {header_number}: column names must be unique and not empty, got {header}")
    chunks = _line_chunks(lines)
    first = next(chunks, None)
    if first is None:
        raise RecordingError(path, "no data rows after the header")
    first_rows = _rows(path, first[:_TYPING_ROWS], separator, len(header))
    time_index, channels, skipped = _columns(path, header, first_rows, default_factor)
    wanted = ([time_index] if time_index is not None else []) + [k for k, _, _ in channels]
    parts = [_chunk_numbers(path, chunk, separator, header, wanted) for chunk in (first, *chunks)]
    return np.concatenate(parts), time_index, channels, skipped


def read_csv_file(path: Path | str, *, sample_rate_hz: float | None = None, unit: str = "uV") -> ForeignRecording:
    """Read a CSV file of EMG channels.

    The text is parsed in chunks of rows, so memory holds the resulting arrays and one chunk.

    Parameters
    ----------
    path : Path or str
        The file.
    sample_rate_hz : float or None
        The sample rate, for a file without a ``time_s`` column (it overrides ``time_s`` if both).
    unit : str
        Unit of channels whose header names none: ``uV``, ``mV`` or ``V``.

    Returns
    -------
    ForeignRecording
        Every numeric column but ``time_s`` as a channel in µV.

    Raises
    ------
    ValueError
        ``sample_rate_hz`` not positive, or ``unit`` unknown.
    RecordingError
        An empty file, a ragged row, text in a numeric column, an unknown unit in a header, no
        channel, no rate, or uneven ``time_s`` steps.
    """
    file = Path(path)
    default_factor = _microvolts_per_csv_unit(unit)
    if default_factor is None:
        raise ValueError(f"unknown unit {unit!r}; use one of {', '.join(CSV_UNITS)}")
    if sample_rate_hz is not None and not (math.isfinite(sample_rate_hz) and sample_rate_hz > 0):
        raise ValueError(f"sample_rate_hz must be a positive number, got {sample_rate_hz!r}")
    try:
        stream = file.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise RecordingError(file, f"cannot read: {exc.strerror or exc}") from exc
    with stream:
        try:
            table, time_index, channels, skipped = _read_table(file, stream, default_factor)
        except UnicodeDecodeError:
            raise RecordingError(file, "not UTF-8 text; is it a CSV file?") from None
        except csv.Error as exc:
            raise RecordingError(file, f"not readable as CSV: {exc}") from None
    first_time_s = 0.0
    if sample_rate_hz is not None:
        rate_hz = sample_rate_hz
        if time_index is not None and math.isfinite(table[0, 0]):
            first_time_s = float(table[0, 0])
    elif time_index is None:
        raise RecordingError(file, f"no {TIME_COLUMN} column: give the sample rate (biofeed analyze --fs HZ)")
    else:
        rate_hz, first_time_s = _rate_from_times(file, table[:, 0])
    values = table[:, 1:] if time_index is not None else table
    out_channels = tuple(
        ForeignChannel(name, rate_hz, "uV", values[:, j] * factor) for j, (_, name, factor) in enumerate(channels)
    )
    return ForeignRecording(file, "csv", out_channels, first_time_s=first_time_s, skipped_columns=tuple(skipped))


def _rate_from_times(file: Path, times_s: np.ndarray) -> tuple[float, float]:
    """Sample rate and first time of a ``time_s`` column, checking that its steps are even."""
    if len(times_s) < 2:
        raise RecordingError(file, f"one row cannot give a sample rate from {TIME_COLUMN}: give the sample rate")
    if not np.all(np.isfinite(times_s)):
        raise RecordingError(file, f"{TIME_COLUMN} holds empty or non-finite values")
    steps = np.diff(times_s)
    step = float(np.median(steps))
    if not step > 0:
        raise RecordingError(file, f"{TIME_COLUMN} does not increase")
    uneven = np.flatnonzero(np.abs(steps - step) > _EVEN_STEP_TOLERANCE * step)
    if uneven.size:
        k = int(uneven[0])
        raise RecordingError(
            file,
            f"{TIME_COLUMN} steps are uneven ({times_s[k]:g} s to {times_s[k + 1]:g} s after steps of {step:g} s): "
            "resample it or give the sample rate",
        )
    # the mean step over the whole column is more precise than the median of rounded steps; a rate
    # within a millionth of a whole millihertz is that (the wire protocol carries millihertz)
    rate_hz = (len(times_s) - 1) / float(times_s[-1] - times_s[0])
    if abs(rate_hz - round(rate_hz, 3)) <= 1e-6 * rate_hz:
        rate_hz = round(rate_hz, 3)
    return rate_hz, float(times_s[0])
