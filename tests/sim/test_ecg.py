import itertools

import numpy as np
import pytest

from biofeed.sim.ecg import ECG_RIGHT_FRACTION, EcgContamination, qrs_template


def test_template_peaks_at_the_r_wave():
    t = np.linspace(-0.4, 0.4, 8001)
    beat = qrs_template(t)
    assert t[np.argmax(beat)] == pytest.approx(0.0, abs=1e-4)
    assert beat.max() == pytest.approx(1.0, abs=0.02)


def test_beats_come_at_60_to_75_bpm_and_do_not_depend_on_chunking():
    fs = 2000.0
    t = np.arange(int(60 * fs)) / fs
    whole = EcgContamination(3, 50.0).segment(t)
    ecg = EcgContamination(3, 50.0)
    cuts = [0, 1, 777, 2000, 50_000, 93_001, t.size]
    pieces = np.hstack([ecg.segment(t[a:b]) for a, b in itertools.pairwise(cuts)])
    np.testing.assert_array_equal(whole, pieces)
    left = whole[0]
    peaks = np.flatnonzero((left[1:-1] > 25.0) & (left[1:-1] >= left[:-2]) & (left[1:-1] > left[2:]))
    assert 55 <= peaks.size <= 80
    assert 60.0 <= ecg.heart_rate_bpm <= 75.0
    np.testing.assert_allclose(whole[1], ECG_RIGHT_FRACTION * whole[0])


def test_negative_amplitude_is_refused():
    with pytest.raises(ValueError, match="r_peak_uv"):
        EcgContamination(0, -1.0)
