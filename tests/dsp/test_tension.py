import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeed.blocks import Block, StreamInfo
from biofeed.dsp.tension import RestingTension
from tests.dsp.synthetic_emg import emg_info

WINDOW_INFO = StreamInfo("emg_rms1000ms", 1.0, emg_info(1000.0, 2).channels)


def windows(values, first_index=1):
    return Block(WINDOW_INFO, np.asarray(values, dtype=float), first_index)


def test_set_point_is_the_median_of_corrected_windows():
    rng = np.random.default_rng(1)
    raw = np.sqrt(rng.uniform(3.0, 5.0, size=(2, 40)) ** 2 + 1.5**2)
    out = RestingTension([1.5, 1.5], n_windows=30, min_windows=10).process(windows(raw))
    assert np.isnan(out.data[:, :9]).all() and np.isfinite(out.data[:, 9:]).all()
    expected = np.median(np.sqrt(raw[:, -30:] ** 2 - 1.5**2), axis=1)
    np.testing.assert_allclose(out.data[:, -1], expected)


def test_gated_out_windows_do_not_count_and_nothing_ages_out_during_a_trial():
    tension = RestingTension(0.0, n_windows=10, min_windows=5)
    tension.process(windows(np.full((2, 10), 4.0)))
    # a trial: 20 windows of contraction, all gated out
    out = tension.process(windows(np.full((2, 20), 80.0), 11), gate_mask=np.zeros(20, dtype=bool))
    np.testing.assert_array_equal(out.data, 4.0)
    # per-channel mask: only channel 1 takes the next window
    tension.process(windows([[1.0], [1.0]], 31), gate_mask=[[False], [True]])
    assert tension.windows_uv(0).tolist() == [4.0] * 10
    assert tension.windows_uv(1).tolist() == [4.0] * 9 + [1.0]


def test_callable_gate_sees_each_window_span_in_seconds():
    seen = []

    def gate(start_s, end_s):
        seen.append((start_s, end_s))
        return start_s >= 3.0

    tension = RestingTension(0.0, min_windows=1, gate=gate)
    tension.process(windows(np.ones((2, 5)), first_index=1))
    assert seen == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0), (4.0, 5.0)]
    assert tension.windows_uv(0).size == 2


def test_set_points_are_kept_per_posture_and_recalled():
    tension = RestingTension(0.0, n_windows=10, min_windows=3)
    for value in (4.0, 4.2, 3.8):
        tension.add_window(0, value, posture_id=0)  # standing
    for value in (2.0, 2.2):
        tension.add_window(0, value, posture_id=1)  # lying: too few yet
    assert tension.current_posture(0) == 1 and math.isnan(tension.set_point_uv(0))
    assert tension.set_point_uv(0, posture_id=0) == pytest.approx(4.0)
    tension.add_window(0, 2.1, posture_id=1)
    assert tension.set_point_uv(0) == pytest.approx(2.1) and tension.windows_uv(0).tolist() == [2.0, 2.2, 2.1]
    tension.add_window(0, 4.4, posture_id=0)  # standing again: its windows come back
    assert tension.set_point_uv(0) == pytest.approx(4.1) and tension.postures(0) == [0, 1]
    assert tension.postures(1) == [] and tension.current_posture(1) == -1


def test_25th_percentile_statistic():
    tension = RestingTension(0.0, n_windows=4, min_windows=4, statistic="p25")
    tension.process(windows([[1.0, 2.0, 3.0, 4.0], [4.0, 4.0, 4.0, 4.0]]))
    assert tension.set_point_uv(0) == pytest.approx(1.75)
    assert math.isnan(RestingTension(0.0).set_point_uv(0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"noise_floor_uv": -1.0}, "noise_floor_uv"),
        ({"noise_floor_uv": 1.0, "min_windows": 0}, "min_windows"),
        ({"noise_floor_uv": 1.0, "statistic": "mean"}, "median, p25"),
    ],
)
def test_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RestingTension(**kwargs)


VALUES = np.random.default_rng(2).uniform(1.0, 6.0, size=(2, 90))
MASK = np.random.default_rng(3).random((2, 90)) > 0.2


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(1, 89), max_size=15, unique=True))
def test_chunked_equals_whole(cuts):
    whole = RestingTension(1.0).process(windows(VALUES), MASK).data
    tension = RestingTension(1.0)
    edges = [0, *sorted(cuts), 90]
    pieces = [tension.process(windows(VALUES[:, a:b], 1 + a), MASK[:, a:b]).data for a, b in itertools.pairwise(edges)]
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1), whole)
