import numpy as np
import pytest

from bench.accuracy_detectors import band_passed
from bench.accuracy_signals import (
    ACTIVE_UV,
    CALIBRATION_S,
    burst_recording,
    carrier,
    noise_for_snr_uv,
    rest_recording,
    rest_tension_recording,
)


def test_step_bursts_have_their_truth_at_the_steps():
    record = burst_recording("step", 10.0, 0, n_bursts=3, fs_hz=1000.0)
    assert len(record.bursts) == 3
    assert record.bursts[0].onset_index >= CALIBRATION_S * 1000 + 1000  # >= 1 s after the calibration rest
    for burst in record.bursts:
        activation = record.activation_uv
        assert activation[burst.onset_index - 1] == 0 and activation[burst.onset_index] == ACTIVE_UV
        assert activation[burst.offset_index - 1] == ACTIVE_UV and activation[burst.offset_index] == 0
        assert burst.release_s == 0
    gaps_s = [(b.onset_index - a.offset_index) / 1000 for a, b in zip(record.bursts, record.bursts[1:], strict=False)]
    assert min(gaps_s) >= 3.0


def test_slow_releases_reach_the_rest_level_at_the_offset():
    record = burst_recording("slow", 10.0, 1, n_bursts=4, fs_hz=1000.0)
    for burst in record.bursts:
        assert 2.0 <= burst.release_s <= 10.0
        ramp = record.activation_uv[burst.offset_index - round(burst.release_s * 1000) : burst.offset_index]
        assert np.all(np.diff(ramp) < 0) and ramp[0] == ACTIVE_UV and 0 < ramp[-1] < ACTIVE_UV / 1000
        assert record.activation_uv[burst.offset_index] == 0


def test_snr_is_active_rms_over_band_noise_rms():
    fs = 2000.0
    rng = np.random.default_rng(3)
    assert np.std(carrier(200_000, fs, rng)) == pytest.approx(1.0, rel=0.03)
    noise = rest_recording(6.0, 0, duration_s=60.0, fs_hz=fs)
    assert noise.noise_uv == pytest.approx(noise_for_snr_uv(6.0))
    assert noise.noise_uv == pytest.approx(ACTIVE_UV / 1.995, rel=1e-3)
    # in biofeed's 30-450 Hz band the white noise keeps (450 - 30) / (450 - 20) of its 20-450 Hz power
    measured = np.std(band_passed(noise.raw_uv, fs)[4000:])
    assert measured == pytest.approx(noise.noise_uv * np.sqrt(420 / 430), rel=0.03)


def test_records_are_reproducible_and_independent():
    a = burst_recording("step", 0.0, 2, fs_hz=1000.0)
    assert np.array_equal(a.raw_uv, burst_recording("step", 0.0, 2, fs_hz=1000.0).raw_uv)
    assert not np.array_equal(a.raw_uv[:5000], burst_recording("step", 0.0, 3, fs_hz=1000.0).raw_uv[:5000])
    with pytest.raises(ValueError, match="kind"):
        burst_recording("ramp", 0.0, 0)


def test_rest_tension_record_carries_the_ecg_on_request():
    quiet = rest_tension_recording(2.0, 0.0, 0, duration_s=20.0, fs_hz=1000.0)
    hearty = rest_tension_recording(2.0, 50.0, 0, duration_s=20.0, fs_hz=1000.0)
    assert np.max(np.abs(hearty.raw_uv - quiet.raw_uv)) == pytest.approx(50.0, rel=0.2)
    assert np.all(quiet.activation_uv == 2.0) and quiet.bursts == ()
