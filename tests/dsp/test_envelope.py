import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeed.blocks import Block
from biofeed.dsp.envelope import MovingRms
from tests.dsp.synthetic_emg import emg_info, split_blocks

FS = 1000.0
INFO = emg_info(FS, 2)


@pytest.mark.parametrize(("window_s", "hop_s"), [(0.05, 0.005), (0.25, 0.005), (1.0, 1.0)])
def test_rms_of_a_sine_is_amplitude_over_root_two(window_s, hop_s):
    t = np.arange(5000) / FS
    sine = np.vstack([10.0 * np.sin(2 * np.pi * 100 * t), 3.0 * np.sin(2 * np.pi * 40 * t + 1.0)])
    out = MovingRms(FS, window_s, hop_s).process(Block(INFO, sine, 0))
    # windows span whole periods of both sines (50 ms = 5 and 2 periods)
    np.testing.assert_allclose(out.data[0], 10 / np.sqrt(2), rtol=1e-9)
    np.testing.assert_allclose(out.data[1], 3 / np.sqrt(2), rtol=1e-9)


def test_hops_are_stamped_at_window_end_on_the_absolute_grid():
    rms = MovingRms(FS, 0.05, 0.005)
    assert (rms.hop_samples, rms.window_samples, rms.output_rate_hz) == (5, 50, 200.0)
    data = np.zeros((2, 300))
    data[:, 123] = 1.0  # one impulse at device index 1000 + 123
    out = rms.process(Block(INFO, data, 1000))
    # The grid starts at the first multiple of 5 at or after 1000; the first full window ends at 1050.
    assert out.first_index * 5 == 1050
    stamps = (out.first_index + np.arange(out.n_samples)) * 5
    hit = stamps[out.data[0] > 0]
    # windows [stamp - 50, stamp) that contain index 1123
    assert hit[0] == 1125 and hit[-1] == 1170
    assert out.info.sample_rate_hz == 200.0


def test_window_rounds_to_whole_hops_at_low_rates():
    rms = MovingRms(250.0, 0.05, 0.005)
    assert rms.hop_samples == 1 and rms.window_samples == 12 and rms.window_s == pytest.approx(0.048)


RNG = np.random.default_rng(3)
BURSTY = RNG.standard_normal((2, 4000)) * np.r_[np.ones(1500), 300 * np.ones(1000), np.ones(1500)]


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(1, BURSTY.shape[1] - 1), max_size=40, unique=True),
    st.sampled_from([(0.05, 0.005), (0.25, 0.005), (1.0, 1.0), (0.04, 0.001)]),
    st.integers(0, 9),
)
def test_chunked_equals_whole_to_rounding(cuts, sizes, first_index):
    whole = MovingRms(FS, *sizes).process(Block(INFO, BURSTY, first_index))
    stage = MovingRms(FS, *sizes)
    pieces = [stage.process(b) for b in split_blocks(INFO, BURSTY, sorted(cuts), first_index)]
    nonempty = [p for p in pieces if p.n_samples]
    assert nonempty[0].first_index == whole.first_index
    assert all(b.first_index == a.first_index + a.n_samples for a, b in itertools.pairwise(nonempty))
    # Direct sums per window: the rest after a 300x burst keeps its precision.
    np.testing.assert_allclose(np.concatenate([p.data for p in pieces], axis=1), whole.data, rtol=1e-12)


def test_gap_skips_the_hops_it_touches_and_says_how_many():
    rms = MovingRms(FS, 0.05, 0.005)
    first = rms.process(Block(INFO, BURSTY[:, :1000], 0))
    second = rms.process(Block(INFO, BURSTY[:, 1200:2000], 1200, gap_before=200))
    fresh = MovingRms(FS, 0.05, 0.005).process(Block(INFO, BURSTY[:, 1200:2000], 1200))
    np.testing.assert_array_equal(second.data, fresh.data)
    assert second.first_index == fresh.first_index
    assert second.gap_before == second.first_index - (first.first_index + first.n_samples)
    assert second.gap_before > 0


def test_bad_windows_are_refused():
    with pytest.raises(ValueError, match="window_s"):
        MovingRms(FS, 0.001, 0.005)
    with pytest.raises(ValueError, match="hop_s"):
        MovingRms(FS, 0.05, 0.0)
