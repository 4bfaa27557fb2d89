"""Export a recording to a folder of Parquet tables, in one pass and bounded memory (needs pyarrow).

``<out>/<stream>.parquet`` per stream and ``<out>/events.parquet``. Every table starts with the same
partition-friendly columns, so the tables of many recordings can be read as one dataset
(``pyarrow.dataset.dataset(folder_of_exports)``) and filtered or grouped by them:

- ``recording``: the recording folder's name; a hash of it when anonymized;
- ``stream``: the stream;
- ``client``: the client's pseudonym; null when anonymized or unknown.

They are dictionary-encoded strings (pandas reads them as categoricals).

Stream tables go on with ``time_s`` (device seconds, float64), ``sample_index`` (int64) and one
float64 column per channel, in the channel's unit (field metadata ``unit``, ``kind``, ``site``,
``lsb``); a sample lost in a gap is a row of NaN. The events table has the columns of
``events.csv``. The schema metadata ``biofeed.recording`` holds ``recording.json`` (without the
client's keys when anonymized). Rows are gathered in preallocated buffers and written in row
groups of :data:`ROW_GROUP_ROWS`, zstd-compressed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from biofeed.errors import RecordingError
from biofeed.record.export.events import ExportEvent, collect_export_events
from biofeed.record.export.identity import ClientIdentity, exported_meta
from biofeed.record.export.output import file_stem, partial_folder, private_file
from biofeed.record.export.rows import recording_rows
from biofeed.record.reader import Recording
from biofeed.record.stream_reader import StreamLayout, SurveyCollector

__all__ = ["EVENTS_FILE", "PARTITION_COLUMNS", "ROW_GROUP_ROWS", "export_parquet", "recording_id"]

EVENTS_FILE = "events.parquet"
PARTITION_COLUMNS = ("recording", "stream", "client")
ROW_GROUP_ROWS = 1 << 17
"""Rows per row group: about 65 s of a 2 kHz stream (8.4 MB of 8 channels)."""


def recording_id(recording: Recording, *, anonymize: bool) -> str:
    """The ``recording`` column: the folder's name, or ``rec-`` and 12 hex digits of its hash when anonymized."""
    name = recording.path.resolve().name
    if not anonymize:
        return name
    return "rec-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:12]


def _import_pyarrow(out: Path) -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise RecordingError(out, "the Parquet export needs pyarrow: pip install 'biofeed[parquet]'") from None
    return pyarrow


def _partition_type(pa: Any) -> Any:
    """Partition columns are dictionary-encoded strings: one value per table, stored once."""
    return pa.dictionary(pa.int32(), pa.string())


def _constant_column(pa: Any, value: str | None, n_rows: int) -> Any:
    indices = pa.nulls(n_rows, pa.int32()) if value is None else pa.array(np.zeros(n_rows, dtype=np.int32))
    return pa.DictionaryArray.from_arrays(indices, pa.array([] if value is None else [value], pa.string()))


class _StreamTable:
    """One stream's Parquet file, written a row group at a time."""

    def __init__(
        self, pa: Any, path: Path, layout: StreamLayout, constants: dict[str, str | None], meta: dict[str, Any]
    ) -> None:
        self.pa = pa
        self.layout = layout
        self.constants = constants
        fields = [pa.field(name, _partition_type(pa)) for name in PARTITION_COLUMNS]
        fields += [pa.field("time_s", pa.float64()), pa.field("sample_index", pa.int64())]
        for channel, lsb in zip(layout.info.channels, layout.lsb, strict=True):
            metadata = {"unit": channel.unit, "kind": str(channel.kind), "site": channel.site, "lsb": repr(lsb)}
            fields.append(pa.field(channel.name, pa.float64(), metadata=metadata))
        stream_meta = {"name": layout.name, "sample_rate_hz": layout.sample_rate_hz, "device_stream": layout.info.name}
        self.schema = pa.schema(
            fields,
            metadata={"biofeed.recording": json.dumps(meta), "biofeed.stream": json.dumps(stream_meta)},
        )
        self.file = private_file(path)
        # dictionary encoding pays for the repeated partition columns; on the samples it costs memory
        # and time for less than zstd gains (measured in bench/bench_export.py)
        self.writer = pa.parquet.ParquetWriter(
            self.file, self.schema, use_dictionary=list(PARTITION_COLUMNS), compression="zstd"
        )
        # one row group is gathered in preallocated column-major buffers: no per-block garbage
        self.sample_index = np.empty(ROW_GROUP_ROWS, dtype=np.int64)
        self.values = np.empty((layout.n_channels, ROW_GROUP_ROWS))
        self.n_rows = 0

    def add(self, sample_index: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> None:
        """Append rows: indices, shape (n_rows,), and values, shape (n_rows, n_channels)."""
        start = 0
        while start < len(sample_index):
            n = min(len(sample_index) - start, ROW_GROUP_ROWS - self.n_rows)
            self.sample_index[self.n_rows : self.n_rows + n] = sample_index[start : start + n]
            self.values[:, self.n_rows : self.n_rows + n] = values[start : start + n].T
            self.n_rows += n
            start += n
            if self.n_rows == ROW_GROUP_ROWS:
                self.flush()

    def flush(self) -> None:
        """Write the gathered rows as one row group."""
        if not self.n_rows:
            return
        pa = self.pa
        n = self.n_rows
        sample_index = self.sample_index[:n]
        columns = [_constant_column(pa, self.constants[name], n) for name in PARTITION_COLUMNS]
        columns += [pa.array(sample_index / self.layout.sample_rate_hz), pa.array(sample_index)]
        columns += [pa.array(self.values[k, :n]) for k in range(self.values.shape[0])]
        self.writer.write_table(pa.Table.from_arrays(columns, schema=self.schema))
        self.n_rows = 0

    def close(self) -> None:
        try:
            self.flush()
            self.writer.close()
        finally:
            self.file.close()


def _write_events(pa: Any, path: Path, events: Sequence[ExportEvent], constants: dict[str, str | None]) -> None:
    n = len(events)
    table = pa.table(
        {
            "recording": _constant_column(pa, constants["recording"], n),
            "stream": pa.array([e.stream for e in events], pa.string()).dictionary_encode(),
            "client": _constant_column(pa, constants["client"], n),
            "time_s": pa.array([e.time_s for e in events], pa.float64()),
            "duration_s": pa.array([e.duration_s for e in events], pa.float64()),
            "type": pa.array([e.type for e in events], pa.string()),
            "text": pa.array([e.text for e in events], pa.string()),
            "source": pa.array([e.source for e in events], pa.string()),
            "json": pa.array([e.json for e in events], pa.string()),
        }
    )
    with private_file(path) as file:
        pa.parquet.write_table(table, file)


def export_parquet(recording: Recording, out: Path, *, identity: ClientIdentity, anonymize: bool) -> Path:
    """Write a recording as a folder of Parquet tables.

    Parameters
    ----------
    recording : Recording
        The opened recording.
    out : Path
        The folder to create; must not exist.
    identity : ClientIdentity
        The client: its pseudonym fills the ``client`` column unless anonymized.
    anonymize : bool
        Leave ``client`` null, hash the recording id, drop the client from the embedded
        ``recording.json`` and redact it from event texts.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    RecordingError
        When pyarrow is missing or the folder cannot be written.
    """
    pa = _import_pyarrow(out)
    record_id = recording_id(recording, anonymize=anonymize)
    client = None if anonymize else identity.pseudonym
    meta = exported_meta(recording.meta, identity, anonymize=anonymize)
    with partial_folder(out) as folder:
        collector = SurveyCollector()
        tables: dict[str, _StreamTable] = {}
        taken = {"events"}
        try:
            for layout, sample_index, values in recording_rows(recording, collector):
                table = tables.get(layout.name)
                if table is None:
                    path = folder / f"{file_stem(layout.name, taken)}.parquet"
                    constants = {"recording": record_id, "stream": layout.name, "client": client}
                    table = _StreamTable(pa, path, layout, constants, meta)
                    tables[layout.name] = table
                table.add(sample_index, values)
        finally:
            for table in tables.values():
                table.close()
        events = collect_export_events(
            recording, collector.result(recording), redact_for=identity if anonymize else None
        )
        _write_events(pa, folder / EVENTS_FILE, events, {"recording": record_id, "client": client})
    return out
