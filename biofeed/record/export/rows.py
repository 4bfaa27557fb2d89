"""A recording's blocks as table rows, with one NaN row for every sample missing before a block.

Table exports (CSV, Parquet) write one row per sample index from a stream's first sample to its
last: the samples of each block, and for a gap (``Block.gap_before``) a row of NaN per missing
sample, so a reader sees the gap where it was and the time column stays evenly spaced.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block
from biofeed.record.reader import Recording
from biofeed.record.stream_reader import DeviceMarker, StreamLayout, SurveyCollector, read_stream_items

__all__ = ["MAX_GAP_ROWS_PER_CHUNK", "block_rows", "recording_rows"]

MAX_GAP_ROWS_PER_CHUNK = 65536
"""A long gap is handed out in chunks of at most this many rows, so memory stays bounded."""


def block_rows(block: Block) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
    """Yield the rows of a block: first NaN rows for its gap, then its samples.

    Yields
    ------
    sample_index : ndarray of int64, shape (n_rows,)
        Sample index of each row.
    values : ndarray of float64, shape (n_rows, n_channels)
        The samples, NaN in gap rows.
    """
    n_channels = block.info.n_channels
    gap_start = block.first_index - block.gap_before
    for start in range(gap_start, block.first_index, MAX_GAP_ROWS_PER_CHUNK):
        stop = min(start + MAX_GAP_ROWS_PER_CHUNK, block.first_index)
        yield np.arange(start, stop, dtype=np.int64), np.full((stop - start, n_channels), np.nan)
    yield np.arange(block.first_index, block.end_index, dtype=np.int64), block.data.T


def recording_rows(
    recording: Recording, collector: SurveyCollector
) -> Iterator[tuple[StreamLayout, npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
    """Yield the rows of every block of a recording, in file order, with the layout they belong to.

    Every item read (markers too) goes to ``collector`` first, so its survey is complete once the
    rows are exhausted.

    Yields
    ------
    layout : StreamLayout
        The stream of the rows.
    sample_index, values : ndarray
        As :func:`block_rows`.
    """
    for item in read_stream_items(recording):
        collector.add(item)
        if isinstance(item, DeviceMarker):
            continue
        for sample_index, values in block_rows(item.block):
            yield item.layout, sample_index, values
