import math

import numpy as np
import pytest

from bench.accuracy_scoring import ConditionTally, match_bursts, pair_crossings, pair_interleaved, summarize_errors
from bench.accuracy_signals import Burst


def test_interleaved_onsets_and_offsets_become_pairs():
    # biosppy's detectors return np.union1d(onsets, offsets): one sorted float array
    assert pair_interleaved(np.array([100.0, 250.0, 900.0, 1200.0]), 2000) == [(100, 250), (900, 1200)]


def test_an_activation_open_at_the_end_closes_there():
    assert pair_interleaved([100, 250, 900], 2000) == [(100, 250), (900, 2000)]


def test_no_change_no_activation():
    assert pair_interleaved([], 1000) == []


def test_crossings_are_paired_by_direction_even_where_a_dip_merges_two():
    above = np.zeros(40, dtype=bool)
    above[5:10] = above[11:15] = above[30:] = True  # a one-sample dip at 10; active at the end
    # what hodges_bui_onset_detector returns: below-threshold neighbours of each change, de-duplicated
    crossings = np.union1d(
        np.intersect1d(np.flatnonzero(above) - 1, np.flatnonzero(~above)),
        np.intersect1d(np.flatnonzero(above) + 1, np.flatnonzero(~above)),
    )
    assert crossings.tolist() == [4, 10, 15, 29]  # not alternating: 10 is a fall and a rise
    assert pair_crossings(crossings + 3, above, 50, shift=3) == [(7, 13), (13, 18), (32, 50)]
    starts_high = np.r_[True, True, False, False, True, False]
    assert pair_crossings([2, 3, 5], starts_high, 6) == [(0, 2), (3, 5)]


def bursts(*pairs):
    return [Burst(on, off, 0.0) for on, off in pairs]


def test_the_nearest_detection_within_200_ms_matches_and_the_rest_are_extra():
    truth = bursts((1000, 3000), (10000, 12000))
    detections = [(950, 2000), (1020, 2990), (9500, 9600), (10399, 12100), (20000, 20100)]
    result = match_bursts(truth, detections, fs_hz=2000.0)
    # 1020 is nearer to 1000 than 950; 10399 is 199.5 ms after 10000: inside the window
    assert [m for _, m in result.matched] == [(1020, 2990), (10399, 12100)]
    assert result.n_extra == 3


def test_a_detection_further_than_200_ms_misses_and_one_detection_matches_one_burst():
    result = match_bursts(bursts((1000, 2000)), [(1402, 1500)], fs_hz=2000.0)
    assert result.matched[0][1] is None and result.n_extra == 1
    twin = match_bursts(bursts((1000, 2000), (1100, 2000)), [(1050, 1900)], fs_hz=1000.0)
    assert sum(m is not None for _, m in twin.matched) == 1


def test_error_summary():
    summary = summarize_errors([0.010, -0.030, 0.020, 0.060, 0.005])
    assert summary.n == 5
    assert summary.median_ms == pytest.approx(10.0)
    assert summary.iqr_ms == pytest.approx(20.0 - 5.0)
    assert summary.median_abs_ms == pytest.approx(20.0)
    assert summary.within_25_pct == pytest.approx(60.0)
    assert summary.within_50_pct == pytest.approx(80.0)
    assert math.isnan(summarize_errors([]).median_ms)


def test_tally_charges_errors_of_the_matched_activation_and_counts_failures():
    tally = ConditionTally()
    tally.add(bursts((1000, 3000), (8000, 9000)), [(1010, 2900), (5000, 5100)], fs_hz=1000.0)
    assert tally.n_bursts == 2 and tally.n_detected == 1 and tally.n_extra == 1
    assert tally.onset_errors_s == [pytest.approx(0.010)] and tally.offset_errors_s == [pytest.approx(-0.100)]
    tally.add_failure(bursts((100, 200)), IndexError("boom"))
    tally.add_failure(bursts((100, 200)), IndexError("boom"))
    assert tally.n_bursts == 4 and tally.n_failed_records == 2 and tally.failures == ["IndexError: boom"]
    assert tally.detection_pct == pytest.approx(25.0) and tally.extra_per_burst == pytest.approx(0.25)
