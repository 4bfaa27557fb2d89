import numpy as np
import pytest

from biofeed.blocks import Block
from biofeed.dsp.envelope import MovingRms
from biofeed.dsp.filters import BandPassFilter, design_emg_band
from biofeed.dsp.noise import correct_for_noise, noise_floor_from_high_band, noise_floor_from_rest
from tests.dsp.synthetic_emg import emg_info, synthetic_emg


def test_power_domain_correction():
    np.testing.assert_allclose(correct_for_noise([5.0, 1.5, 1.0, 0.0], 1.5), [np.sqrt(25 - 2.25), 0.0, 0.0, 0.0])
    np.testing.assert_allclose(correct_for_noise([[3.0], [4.0]], [[0.0], [3.0]]), [[3.0], [np.sqrt(7.0)]])


def test_correction_recovers_the_emg_level_under_noise():
    fs = 1000.0
    x = synthetic_emg(np.full(60_000, 2.0), fs, seed=4, noise_floor_uv=1.5)
    y = BandPassFilter(fs).process(Block(emg_info(fs), x, 0))
    rms = MovingRms(fs, 1.0, 1.0).process(y).data[0, 1:]
    corrected = correct_for_noise(rms, 1.5)
    # raw 1 s RMS is about hypot(2.0, 1.5) = 2.5 uV; corrected about 2.0 uV (the carrier loses a
    # few percent below 30 Hz)
    assert np.median(rms) == pytest.approx(2.5, rel=0.05)
    assert np.median(corrected) == pytest.approx(2.0, rel=0.07)


def one_second_rms(x, fs):
    y = BandPassFilter(fs).process(Block(emg_info(fs, x.shape[0]), x, 0))
    return MovingRms(fs, 1.0, 1.0).process(y).data


def test_floor_from_a_relaxed_calibration_rest():
    fs = 1000.0
    x = synthetic_emg(np.zeros((2, 120_000)), fs, seed=5, noise_floor_uv=1.5)
    floor = noise_floor_from_rest(one_second_rms(x, fs))
    assert floor.shape == (2,)
    # the low percentiles of pure noise sit a few percent under it
    np.testing.assert_allclose(floor, 1.5, rtol=0.08)
    assert (floor < 1.5).all()


def test_floor_from_rest_needs_enough_windows():
    with pytest.raises(ValueError, match="at least 20"):
        noise_floor_from_rest(np.ones(5))
    with pytest.raises(ValueError, match="finite"):
        noise_floor_from_rest(np.r_[np.ones(30), np.nan])


def test_floor_from_the_high_band_ignores_the_emg_below_it():
    fs = 2000.0
    activation = np.r_[np.full(20_000, 3.0), np.full(20_000, 60.0), np.full(20_000, 3.0)]
    x = synthetic_emg(activation, fs, seed=6, noise_floor_uv=1.5, offset_uv=100.0)
    floor = noise_floor_from_high_band(x, design_emg_band(fs))
    # sEMG leaks a little power above 450 Hz, so this is an upper bound: +9 % on average here.
    assert 1.45 < floor[0] < 1.8


def test_high_band_needs_2_khz():
    with pytest.raises(ValueError, match="2000 Hz"):
        noise_floor_from_high_band(np.zeros((1, 5000)), design_emg_band(1000.0))
