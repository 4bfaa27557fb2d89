"""Reducing a trace to the extremes of each pixel column."""

import numpy as np

from biofeed.live.columns import min_max_columns


def test_extremes_of_each_column_from_the_left_edge_to_now() -> None:
    t = np.arange(-11.0, 0.0, 0.001) + 0.001  # 11 s at 1 kHz, the newest sample at 0
    v = np.sin(2 * np.pi * 7 * t)
    v[6000] = np.nan  # a gap at -4.999 s
    x, y = min_max_columns(t, v, -10.0, 100)
    assert x[0] == t[np.searchsorted(t, -10.0) - 1] and x[-1] == t[-1]
    assert np.all(np.diff(x) >= 0) and x.size == y.size <= 2 * 101
    assert np.nanmax(y) == np.nanmax(v[t >= -10.0]) and np.nanmin(y) >= -1.0
    gap = np.flatnonzero(np.isnan(y))
    assert gap.size == 2 and x[gap[0]] <= t[6000] <= x[gap[1]]


def test_few_samples_are_drawn_as_they_are() -> None:
    t = np.linspace(-10.0, 0.0, 150)
    v = np.arange(150.0)
    x, y = min_max_columns(t, v, -5.0, 100)
    assert np.array_equal(x, t[np.searchsorted(t, -5.0) - 1 :]) and np.array_equal(y, v[-x.size :])
