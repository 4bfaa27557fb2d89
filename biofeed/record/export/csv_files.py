"""Export a recording to a folder of CSV files, in one pass and bounded memory.

``<out>/<stream>.csv`` per stream: a header ``time_s,<channel>,...`` and one row per sample from
the stream's first sample to its last, values in the channel's unit (``channels.csv`` says which),
a row of ``nan`` per sample lost in a gap. ``time_s`` is device time (sample index / rate), the
clock of ``events.csv``. ``events.csv``: every event (:mod:`biofeed.record.export.events`) with
``time_s, duration_s, type, stream, text, source, json``. ``channels.csv``: per channel its stream,
file, kind, unit, site, rate and device resolution (``lsb``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from biofeed.record.export.events import ExportEvent, collect_export_events
from biofeed.record.export.identity import ClientIdentity
from biofeed.record.export.output import file_stem, partial_folder, private_file
from biofeed.record.export.rows import recording_rows
from biofeed.record.reader import Recording
from biofeed.record.stream_reader import StreamLayout, SurveyCollector

__all__ = ["CHANNELS_FILE", "EVENTS_FILE", "EVENT_COLUMNS", "export_csv"]

EVENTS_FILE = "events.csv"
CHANNELS_FILE = "channels.csv"
EVENT_COLUMNS = ("time_s", "duration_s", "type", "stream", "text", "source", "json")
# 12 significant digits keep a sample time exact to the microsecond over 11 days; 10 keep every
# device count (at most 2^24 steps) of a value exact
_TIME_FORMAT = "%.12g"
_VALUE_FORMAT = "%.10g"


def _csv_line(cells: Sequence[object]) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(cells)
    return text.getvalue().encode("utf-8")


class _StreamCsv:
    """One stream's CSV file."""

    def __init__(self, folder: Path, stem: str, layout: StreamLayout) -> None:
        self.name = f"{stem}.csv"
        self.rate_hz = layout.sample_rate_hz
        self.file: BinaryIO = private_file(folder / self.name)
        self.file.write(_csv_line(["time_s", *(c.name for c in layout.info.channels)]))
        self.row_format = ",".join([_TIME_FORMAT] + [_VALUE_FORMAT] * layout.n_channels) + "\n"

    def write(self, sample_index: np.ndarray, values: np.ndarray) -> None:
        table = np.column_stack([sample_index / self.rate_hz, values])
        fmt = self.row_format
        self.file.write("".join([fmt % tuple(row) for row in table.tolist()]).encode("ascii"))


def _write_events(path: Path, events: Sequence[ExportEvent]) -> None:
    with private_file(path) as file:
        file.write(_csv_line(EVENT_COLUMNS))
        for e in events:
            file.write(_csv_line([repr(e.time_s), repr(e.duration_s), e.type, e.stream, e.text, e.source, e.json]))


def _write_channels(path: Path, layouts: Sequence[tuple[StreamLayout, str]]) -> None:
    with private_file(path) as file:
        file.write(_csv_line(["stream", "file", "channel", "kind", "unit", "site", "sample_rate_hz", "lsb"]))
        for layout, name in layouts:
            for channel, lsb in zip(layout.info.channels, layout.lsb, strict=True):
                cells = [layout.name, name, channel.name, channel.kind, channel.unit, channel.site]
                file.write(_csv_line([*cells, repr(layout.sample_rate_hz), repr(lsb)]))


def export_csv(recording: Recording, out: Path, *, identity: ClientIdentity, anonymize: bool) -> Path:
    """Write a recording as a folder of CSV files.

    Parameters
    ----------
    recording : Recording
        The opened recording.
    out : Path
        The folder to create; must not exist.
    identity : ClientIdentity
        The client, redacted from event texts when ``anonymize``.
    anonymize : bool
        Redact the client's name and pseudonym from the events (no other file names them).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    RecordingError
        When the folder cannot be written.
    """
    with partial_folder(out) as folder:
        collector = SurveyCollector()
        files: dict[str, _StreamCsv] = {}
        layouts: list[tuple[StreamLayout, str]] = []
        taken = {"events", "channels"}
        try:
            for layout, sample_index, values in recording_rows(recording, collector):
                stream = files.get(layout.name)
                if stream is None:
                    stream = _StreamCsv(folder, file_stem(layout.name, taken), layout)
                    files[layout.name] = stream
                    layouts.append((layout, stream.name))
                stream.write(sample_index, values)
        finally:
            for stream in files.values():
                stream.file.close()
        survey = collector.result(recording)
        _write_events(
            folder / EVENTS_FILE, collect_export_events(recording, survey, redact_for=identity if anonymize else None)
        )
        _write_channels(folder / CHANNELS_FILE, layouts)
    return out
