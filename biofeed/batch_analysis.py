"""``biofeed analyze DIR --jobs N``: every recording under a folder analysed in parallel into one table of trials.

Each recording is analysed by :func:`~biofeed.analysis.analyze_recording` in a worker (a process of a
:class:`~concurrent.futures.ProcessPoolExecutor`, or a Dask worker for labs that outgrow one machine);
its trials become rows of one table, one row per trial. A recording that cannot be analysed gives one
row with only ``recording`` and ``error`` filled, and does not stop the others. The rows come in the
order of the recordings' paths, then stream, channel and trial, whatever the number of workers, so
``--jobs 1``, ``--jobs 4`` and a Dask cluster write the same table.
"""

from __future__ import annotations

import csv
import importlib
import json
import math
import multiprocessing
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from biofeed.errors import BiofeedError, RecordingError
from biofeed.record.meta import META_FILE

__all__ = [
    "TRIAL_COLUMNS",
    "BatchAnalysis",
    "RecordingTrials",
    "analyze_many",
    "analyze_one",
    "check_table_path",
    "find_recordings",
    "write_csv",
    "write_table",
]

TRIAL_COLUMNS: tuple[str, ...] = (
    "recording",
    "stream",
    "channel",
    "trial",
    "onset_s",
    "offset_s",
    "verdict",
    "verdict_reason",
    "score",
    "ratio",
    "ratio_ci95_low",
    "ratio_ci95_high",
    "persistence_ratio",
    "pre_rest_uv",
    "post_rest_uv",
    "peak_uv",
    "hold_s",
    "release_duration_s",
    "monotonic_fraction",
    "rebursts",
    "posture",
    "posture_change_deg",
    "noise_floor_uv",
    "set_point_uv",
    "set_points",
    "error",
)
"""The table's columns, in order (docs/analysis-json.md defines the trial fields).

``trial`` counts a channel's trials from 0; ``set_point_uv`` is the channel's set point at the end of
the recording and ``set_points`` every posture's, as JSON text; ``error`` is empty but for a recording
that could not be analysed (its only other filled column is ``recording``)."""

_DERIVED_COLUMNS = frozenset(
    {"recording", "stream", "channel", "trial", "ratio_ci95_low", "ratio_ci95_high"}
    | {"noise_floor_uv", "set_point_uv", "set_points", "error"}
)
_TRIAL_FIELDS = tuple(column for column in TRIAL_COLUMNS if column not in _DERIVED_COLUMNS)
"""The columns copied as they are from a trial of ``analyze --json``."""
_TEXT_COLUMNS = frozenset(
    {"recording", "stream", "channel", "verdict", "verdict_reason", "posture", "set_points", "error"}
)
_INT_COLUMNS = frozenset({"trial", "rebursts"})
LOCAL_CLUSTER = "local"
"""``--dask local``: a Dask LocalCluster on this machine instead of a scheduler's address."""


@dataclass(frozen=True)
class RecordingTrials:
    """What one recording gave.

    Attributes
    ----------
    recording : str
        The recording folder, as it was found.
    rows : tuple of dict
        One row per trial, keyed by :data:`TRIAL_COLUMNS`; a single error row when it failed.
    error : str or None
        Why the recording could not be analysed (one line), None when it was.
    """

    recording: str
    rows: tuple[dict[str, Any], ...]
    error: str | None = None


@dataclass(frozen=True)
class BatchAnalysis:
    """The trials of many recordings.

    Attributes
    ----------
    recordings : tuple of RecordingTrials
        Per recording, in the order of their paths.
    """

    recordings: tuple[RecordingTrials, ...]

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every row of the table, recordings in order."""
        return [row for result in self.recordings for row in result.rows]

    @property
    def errors(self) -> list[tuple[str, str]]:
        """``(recording, reason)`` of every recording that could not be analysed."""
        return [(r.recording, r.error) for r in self.recordings if r.error is not None]


def find_recordings(root: Path | str) -> list[Path]:
    """Every recording folder at or under ``root``, sorted by path.

    A folder holding ``recording.json`` is a recording, unless folders under it are (a recording of
    several devices: each device folder is analysed on its own).

    Raises
    ------
    RecordingError
        ``root`` is not a folder, or holds no recording.
    """
    folder = Path(root)
    if not folder.is_dir():
        raise RecordingError(folder, "no such folder" if not folder.exists() else "is a file, not a folder")
    found = {meta.parent for meta in folder.rglob(META_FILE) if meta.is_file()}
    leaves = sorted(f for f in found if not any(other != f and other.is_relative_to(f) for other in found))
    if not leaves:
        raise RecordingError(folder, f"holds no recording (no {META_FILE} in it or under it)")
    return leaves


def analyze_one(path: Path | str) -> RecordingTrials:
    """Analyse one recording into its rows; never raises for a recording that cannot be analysed.

    Parameters
    ----------
    path : Path or str
        A recording folder.

    Returns
    -------
    RecordingTrials
        Its trial rows, or an error row naming the failure in one line.
    """
    from biofeed.analysis import analyze_recording

    name = str(path)
    try:
        result = analyze_recording(path)
    except BiofeedError as exc:
        return _failed(name, str(exc))
    except Exception as exc:  # a damaged file can break any step: one line for it, the others go on
        return _failed(name, f"{type(exc).__name__}: {exc}")
    return RecordingTrials(name, tuple(_trial_rows(name, result)))


def _failed(recording: str, reason: str) -> RecordingTrials:
    row: dict[str, Any] = dict.fromkeys(TRIAL_COLUMNS)
    row["recording"] = recording
    row["error"] = " ".join(reason.split())  # one line, whatever the exception said
    return RecordingTrials(recording, (row,), row["error"])


def _trial_rows(recording: str, result: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for channel in result["channels"]:
        set_points = json.dumps(channel.get("set_points", []), allow_nan=False)
        for index, trial in enumerate(channel["contractions"]):
            ci = trial.get("ratio_ci95") or (None, None)
            row: dict[str, Any] = {
                "recording": recording,
                "stream": channel["stream"],
                "channel": channel["name"],
                "trial": index,
                **{field: trial.get(field) for field in _TRIAL_FIELDS},
                "ratio_ci95_low": ci[0],
                "ratio_ci95_high": ci[1],
                "noise_floor_uv": trial.get("noise_floor_uv", channel.get("noise_floor_uv")),
                "set_point_uv": channel.get("set_point_uv"),
                "set_points": set_points,
                "error": None,
            }
            yield {column: row[column] for column in TRIAL_COLUMNS}


def analyze_many(
    recordings: Sequence[Path | str], *, jobs: int = 1, dask_scheduler: str | None = None
) -> BatchAnalysis:
    """Analyse recordings in ``jobs`` processes, or on a Dask cluster.

    Parameters
    ----------
    recordings : sequence of Path or str
        Recording folders (:func:`find_recordings`).
    jobs : int
        Worker processes; 1 analyses in this process. With ``dask_scheduler="local"``, the workers
        of the LocalCluster (1: one worker in this process).
    dask_scheduler : str, optional
        A Dask scheduler's address (``tcp://host:8786``), or ``"local"`` for a LocalCluster here.

    Returns
    -------
    BatchAnalysis
        Per recording in the given order: its rows, or the reason it failed.

    Raises
    ------
    ValueError
        ``jobs`` below 1.
    BiofeedError
        Dask asked for but not installed.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be 1 or more, got {jobs}")
    paths = [str(p) for p in recordings]
    if dask_scheduler is not None:
        return BatchAnalysis(tuple(_on_dask(paths, jobs, dask_scheduler)))
    if jobs == 1 or len(paths) <= 1:
        return BatchAnalysis(tuple(analyze_one(p) for p in paths))
    # spawn: a fresh interpreter per worker, safe whatever threads the caller runs (a GUI, a test runner)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(paths)), mp_context=context) as pool:
        return BatchAnalysis(tuple(pool.map(analyze_one, paths)))


def _on_dask(paths: list[str], jobs: int, scheduler: str) -> list[RecordingTrials]:
    try:
        distributed: Any = importlib.import_module("distributed")  # untyped: used through Any
    except ImportError:
        raise BiofeedError("--dask needs Dask: pip install 'biofeed[dask]'") from None
    if scheduler == LOCAL_CLUSTER:
        # one worker in this process when jobs is 1; else a process per job (analysis holds the GIL)
        with (
            distributed.LocalCluster(
                n_workers=jobs, threads_per_worker=1, processes=jobs > 1, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            return _gather(client, paths)
    with distributed.Client(scheduler) as client:
        return _gather(client, paths)


def _gather(client: Any, paths: list[str]) -> list[RecordingTrials]:
    futures = client.map(analyze_one, paths, pure=False)
    results: list[RecordingTrials] = client.gather(futures)
    return results


def write_table(rows: Iterable[dict[str, Any]], path: Path | str) -> Path:
    """Write the rows as a ``.csv`` or ``.parquet`` table with the columns of :data:`TRIAL_COLUMNS`.

    Missing numbers are empty cells in CSV and nulls in Parquet.

    Raises
    ------
    ValueError
        A file name ending in neither ``.csv`` nor ``.parquet``.
    BiofeedError
        Parquet asked for without pyarrow.
    RecordingError
        The file cannot be written.
    """
    target = check_table_path(path)
    try:
        if target.suffix.lower() == ".csv":
            with target.open("w", newline="", encoding="utf-8") as out:
                write_csv(rows, out)
        else:
            _write_parquet([_clean_row(row) for row in rows], target)
    except OSError as exc:
        raise RecordingError(target, f"cannot write the table: {exc.strerror or exc}") from exc
    return target


def check_table_path(path: Path | str) -> Path:
    """The table's path, checked before any work is done.

    Raises
    ------
    ValueError
        A file name ending in neither ``.csv`` nor ``.parquet``.
    """
    target = Path(path)
    if target.suffix.lower() not in (".csv", ".parquet"):
        raise ValueError(f"the table must be a .csv or .parquet file, got {target.name!r}")
    return target


def write_csv(rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    """Write the rows as CSV with a header to an open text stream (a file opened with ``newline=""``, stdout)."""
    writer = csv.DictWriter(out, fieldnames=TRIAL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_clean_row(row) for row in rows)


def _clean_row(row: dict[str, Any]) -> dict[str, Any]:
    return {column: _clean(column, row.get(column)) for column in TRIAL_COLUMNS}


def _clean(column: str, value: Any) -> Any:
    """NaN and infinities as missing; integers as int."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if column in _INT_COLUMNS:
        return int(value)
    if column in _TEXT_COLUMNS:
        return str(value)
    return float(value)


def _write_parquet(rows: list[dict[str, Any]], target: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise BiofeedError("a .parquet table needs pyarrow: pip install 'biofeed[parquet]'") from None

    def kind(column: str) -> Any:
        if column in _TEXT_COLUMNS:
            return pa.string()
        return pa.int64() if column in _INT_COLUMNS else pa.float64()

    schema = pa.schema([(column, kind(column)) for column in TRIAL_COLUMNS])
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, target, compression="zstd")
