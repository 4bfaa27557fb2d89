"""A trace reduced to what a plot can show: the minimum and maximum of each pixel column.

20,000 samples of sEMG on 800 pixels draw the same picture as 1,600 points, the extremes of each
column (pyqtgraph's ``peak`` downsampling, done here before pyqtgraph sees the data: handing it the
whole window and letting it clip and reduce cost about 0.3 ms per curve and frame, measured).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["min_max_columns"]


def min_max_columns(
    times_s: npt.NDArray[np.float64], values: npt.NDArray[np.floating], start_s: float, n_columns: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The samples from ``start_s`` on (and the one before), as (max, min) pairs of ``n_columns`` columns.

    Columns are counted back from the newest sample, so "now" is always drawn; the samples left over
    make a narrower first column. With fewer than two samples per column the samples are returned as
    they are. A column holding a NaN (a gap) is NaN: a break.

    Parameters
    ----------
    times_s : ndarray, shape (n,)
        Increasing times.
    values : ndarray, shape (n,)
        Samples.
    start_s : float
        The left edge of the plot.
    n_columns : int
        Pixel columns of the plot.

    Returns
    -------
    x, y : ndarray
        What to draw.
    """
    first = max(int(np.searchsorted(times_s, start_s)) - 1, 0)
    t, v = times_s[first:], np.asarray(values[first:], dtype=np.float64)
    per_column = t.size // max(n_columns, 1)
    if per_column < 2:
        return t, v
    m = t.size // per_column
    lead = t.size - m * per_column  # the oldest samples left over: a narrower first column
    columns = v[lead:].reshape(m, per_column)
    x, y = np.empty(2 * m), np.empty(2 * m)
    x[0::2], x[1::2] = t[lead::per_column], t[lead + per_column - 1 :: per_column]  # first to last sample
    y[0::2] = columns.max(axis=1)
    y[1::2] = columns.min(axis=1)
    if lead:
        x = np.concatenate(([t[0], t[lead - 1]], x))
        y = np.concatenate(([v[:lead].max(), v[:lead].min()], y))
    return x, y
