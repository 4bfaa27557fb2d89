import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from biofeed.blocks import Block
from biofeed.dsp.filters import BandPassFilter, design_emg_band
from tests.dsp.synthetic_emg import emg_info, split_blocks, synthetic_emg


def gain_db(sos, freq_hz, fs):
    _, h = signal.sosfreqz(sos, worN=[freq_hz], fs=fs)
    return 20 * np.log10(np.abs(h[0]))


@pytest.mark.parametrize("fs", [1000.0, 2000.0])
@pytest.mark.parametrize("high_pass_hz", [20.0, 30.0, 40.0])
def test_minus_3_db_points_sit_at_the_cut_offs(fs, high_pass_hz):
    band = design_emg_band(fs, high_pass_hz)
    assert band.low_pass_hz == 450.0 and not band.low_pass_adapted
    assert gain_db(band.sos, high_pass_hz, fs) == pytest.approx(-3.01, abs=0.05)
    assert gain_db(band.sos, 450.0, fs) == pytest.approx(-3.01, abs=0.05)
    assert abs(gain_db(band.sos, 120.0, fs)) < 0.05  # flat pass band
    # 4th order on each side: about -24 dB per octave below the high-pass
    assert gain_db(band.sos, high_pass_hz / 2, fs) < -22


def test_low_rate_board_gets_a_low_pass_below_nyquist():
    band = design_emg_band(250.0)
    assert band.low_pass_adapted
    assert band.low_pass_hz == pytest.approx(112.5)
    assert gain_db(band.sos, 112.5, 250.0) == pytest.approx(-3.01, abs=0.1)


@pytest.mark.parametrize("fs", [20.0, 100.0, 120.0])
def test_rate_that_cannot_carry_emg_is_refused(fs):
    with pytest.raises(ValueError, match="cannot carry an EMG band"):
        BandPassFilter(fs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample_rate_hz": 0.0}, "sample_rate_hz"),
        ({"sample_rate_hz": 1000.0, "high_pass_hz": -1.0}, "high_pass_hz"),
        ({"sample_rate_hz": 1000.0, "low_pass_hz": 10.0}, "low_pass_hz"),
        ({"sample_rate_hz": 1000.0, "order": 1}, "order"),
    ],
)
def test_bad_configuration_is_a_clear_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        design_emg_band(**kwargs)


def test_noise_bandwidth_of_the_band():
    band = design_emg_band(2000.0)
    assert 400 < band.noise_bandwidth_hz() < 440  # about 450 - 30 Hz


FS = 1000.0
SIGNAL = synthetic_emg(np.full((2, 3000), 5.0), FS, seed=11, offset_uv=250.0)
INFO = emg_info(FS, 2)


def filter_blocks(blocks):
    stage = BandPassFilter(FS)
    return [stage.process(b) for b in blocks]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, SIGNAL.shape[1] - 1), max_size=30, unique=True))
def test_chunked_equals_whole(cuts):
    whole = filter_blocks([Block(INFO, SIGNAL, 100)])[0]
    pieces = filter_blocks(split_blocks(INFO, SIGNAL, sorted(cuts), first_index=100))
    assert [p.first_index for p in pieces] == [b.first_index for b in split_blocks(INFO, SIGNAL, sorted(cuts), 100)]
    np.testing.assert_allclose(np.concatenate([p.data for p in pieces], axis=1), whole.data, rtol=1e-12, atol=1e-12)


def test_dc_offset_gives_no_start_up_transient():
    out = filter_blocks([Block(INFO, SIGNAL, 0)])[0]
    # 250 uV of DC would ring for tens of ms from a zero state; from the steady state the first
    # 50 ms look like the rest.
    assert np.abs(out.data[:, :50]).max() < 4 * out.data[:, 500:].std()


def test_gap_restarts_the_filter():
    stage = BandPassFilter(FS)
    stage.process(Block(INFO, SIGNAL[:, :1000], 0))
    after_gap = stage.process(Block(INFO, SIGNAL[:, 1500:], 1500, gap_before=500))
    fresh = BandPassFilter(FS).process(Block(INFO, SIGNAL[:, 1500:], 1500))
    np.testing.assert_array_equal(after_gap.data, fresh.data)
    assert after_gap.gap_before == 500


def test_non_finite_samples_are_refused_with_advice():
    data = SIGNAL.copy()
    data[0, 10] = np.nan
    with pytest.raises(ValueError, match="FiniteSplitter"):
        BandPassFilter(FS).process(Block(INFO, data, 0))


def test_wrong_rate_is_refused():
    with pytest.raises(ValueError, match=r"1000\.0 Hz"):
        BandPassFilter(2000.0).process(Block(INFO, SIGNAL, 0))
