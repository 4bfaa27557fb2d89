import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeed.blocks import Block
from biofeed.dsp.filters import BandPassFilter
from biofeed.dsp.mains import MainsNotch, line_prominence_db
from tests.dsp.synthetic_emg import emg_info, split_blocks, synthetic_emg

FS = 1000.0
INFO = emg_info(FS, 2)
N = 15_000
T = np.arange(N) / FS


def emg(seed=1, line_uv=0.0):
    x = synthetic_emg(np.full((2, N), 4.0), FS, seed)
    hum = line_uv * np.sin(2 * np.pi * 50 * T) + 0.3 * line_uv * np.sin(2 * np.pi * 150 * T + 0.5)
    x[0] += hum  # one channel picks up the line
    return BandPassFilter(FS).process(Block(INFO, x, 0))


def amplitude_at(x, freq_hz):
    t = np.arange(x.shape[-1]) / FS
    return 2 * np.abs(np.mean(x * np.exp(-2j * np.pi * freq_hz * t)))


def test_line_is_detected_logged_and_notched():
    notch = MainsNotch(FS, 450.0)
    out = notch.process(emg(line_uv=10.0))
    (decision,) = notch.take_decisions()
    assert decision.applied and decision.line_hz == 50.0 and not decision.forced
    assert {50.0, 150.0} <= set(decision.notched_hz) and 100.0 not in decision.notched_hz
    assert decision.prominence_db[50.0] > 20 and decision.sample_index == 5000
    assert decision.to_json()["applied"] is True
    np.testing.assert_array_equal(out.data[:, :5000], emg(line_uv=10.0).data[:, :5000])  # looked at, not touched
    late = out.data[0, 8000:]
    assert amplitude_at(late, 50.0) < 0.05 * 10.0
    assert amplitude_at(emg(line_uv=10.0).data[0, 8000:], 50.0) > 0.8 * 10.0


def test_clean_signal_is_left_alone():
    notch = MainsNotch(FS, 450.0)
    clean = emg(line_uv=0.0)
    out = notch.process(clean)
    assert not notch.decision.applied and notch.decision.line_hz is None
    assert max(notch.decision.prominence_db.values()) < 10
    np.testing.assert_array_equal(out.data, clean.data)


def test_forced_line_notches_from_the_first_sample():
    notch = MainsNotch(FS, 450.0, line_hz=60.0)
    notch.process(emg())
    assert notch.decision.forced and notch.decision.sample_index == 0
    assert notch.decision.notched_hz == (60.0, 120.0, 180.0, 240.0, 300.0, 360.0, 420.0)


def test_harmonics_stay_inside_the_band_at_250_hz():
    assert MainsNotch(250.0, 112.5).harmonics_hz(50.0) == [50.0, 100.0]
    assert MainsNotch(250.0, 112.5).harmonics_hz(60.0) == [60.0]


def test_prominence_of_a_pure_line():
    x = np.random.default_rng(0).standard_normal((1, 10_000)) + 5 * np.sin(2 * np.pi * 50 * np.arange(10_000) / FS)
    assert line_prominence_db(x, FS, [50.0, 60.0])[0] > 30
    assert abs(line_prominence_db(x, FS, [50.0, 60.0])[1]) < 6


def test_bad_settings():
    with pytest.raises(ValueError, match="50 or 60"):
        MainsNotch(FS, 450.0, line_hz=55.0)
    with pytest.raises(ValueError, match="assess_s"):
        MainsNotch(FS, 450.0, assess_s=0.5)


HUMMING = emg(seed=2, line_uv=10.0)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(1, N - 1), max_size=30, unique=True))
def test_chunked_equals_whole(cuts):
    whole = MainsNotch(FS, 450.0).process(HUMMING)
    notch = MainsNotch(FS, 450.0)
    pieces = [notch.process(b) for b in split_blocks(INFO, HUMMING.data, sorted(cuts))]
    np.testing.assert_allclose(np.concatenate([p.data for p in pieces], axis=1), whole.data, rtol=1e-12, atol=1e-12)
    assert notch.decision.notched_hz == (50.0, 150.0)
