import dataclasses

import numpy as np
import pytest
from scipy import signal

from biofeed.sim.emg import EMG_BAND_HZ, EmgGenerator, carrier_sos
from biofeed.sim.keyframes import KeyframeTrack
from biofeed.sim.scenarios import build_scenario

FS_HZ = 2000.0


def _constant_script(level_uv: float, duration_s: float = 20.0):
    script = build_scenario("rest", seed=0, duration_s=duration_s)
    flat = KeyframeTrack([0.0], [level_uv])
    return dataclasses.replace(script, emg_level_uv=(flat, flat))


def _render(generator: EmgGenerator, n_segments: int) -> np.ndarray:
    return np.hstack([generator.segment(i) for i in range(n_segments)])


def _band_rms(x: np.ndarray, low_hz: float, high_hz: float) -> np.ndarray:
    """RMS of the part of ``x`` between two frequencies (an ideal band-pass, by FFT)."""
    spectrum = np.fft.rfft(x, axis=-1)
    f = np.fft.rfftfreq(x.shape[-1], 1 / FS_HZ)
    spectrum[..., (f < low_hz) | (f > high_hz)] = 0.0
    return np.sqrt(np.mean(np.fft.irfft(spectrum, n=x.shape[-1], axis=-1) ** 2, axis=-1))


def _butterworth_rms(x: np.ndarray, high_pass_hz: float) -> float:
    high = signal.butter(4, high_pass_hz, btype="highpass", fs=FS_HZ, output="sos")
    low = signal.butter(4, EMG_BAND_HZ[1], fs=FS_HZ, output="sos")
    return float(np.sqrt(np.mean(signal.sosfilt(low, signal.sosfilt(high, x))[4000:] ** 2)))


def test_carrier_has_unit_rms_and_an_semg_spectrum():
    generator = EmgGenerator(_constant_script(10.0), seed=1, noise_floor_uv=0.0)
    emg = _render(generator, 20)
    np.testing.assert_allclose(np.sqrt(np.mean(emg**2, axis=1)), 10.0, rtol=0.03)
    f, power = signal.welch(emg, fs=FS_HZ, nperseg=4096, axis=-1)
    cumulative = np.cumsum(power, axis=-1)
    for channel in range(2):
        median_hz = f[np.searchsorted(cumulative[channel], cumulative[channel, -1] / 2)]
        assert 60.0 <= median_hz <= 120.0
        assert 45.0 <= f[np.argmax(power[channel])] <= 100.0
    in_band = (f >= EMG_BAND_HZ[0]) & (f <= EMG_BAND_HZ[1])
    assert power[:, in_band].sum() / power.sum() > 0.97


def test_noise_floor_is_its_rms_in_the_emg_band_and_reaches_above_it():
    generator = EmgGenerator(_constant_script(0.0), seed=2, noise_floor_uv=1.5)
    noise = _render(generator, 20)
    np.testing.assert_allclose(_band_rms(noise, *EMG_BAND_HZ), 1.5, rtol=0.04)
    # White: the 450-550 Hz band holds its share of the power (the floor estimator of SCIENCE.md 3.6).
    np.testing.assert_allclose(_band_rms(noise, 450.0, 550.0) ** 2, 1.5**2 * 100 / 430, rtol=0.12)


def test_rest_level_is_recovered_after_removing_the_floor_in_power():
    script = build_scenario("rest", seed=3, duration_s=20.0)
    emg = _render(EmgGenerator(script, seed=3, noise_floor_uv=1.5), 20)
    corrected = np.sqrt(_band_rms(emg[:, 2000:], *EMG_BAND_HZ) ** 2 - 1.5**2)
    expected = [track.rms_between(1.0, 20.0) for track in script.emg_level_uv]
    np.testing.assert_allclose(corrected, expected, rtol=0.05)


def test_segments_must_come_in_order():
    generator = EmgGenerator(_constant_script(1.0), seed=0)
    generator.segment(0)
    with pytest.raises(ValueError, match="expected 1"):
        generator.segment(2)


def test_ecg_contaminates_mostly_the_left_channel():
    script = _constant_script(3.0)
    clean = _render(EmgGenerator(script, seed=4), 20)
    dirty = _render(EmgGenerator(script, seed=4, ecg_r_peak_uv=50.0), 20)
    ecg = dirty - clean
    assert 40.0 <= ecg[0].max() <= 60.0
    assert ecg[1].max() < 0.5 * ecg[0].max()
    # SCIENCE.md 3.3, 4th-order Butterworth filters: about +50 % at rest, +7 % after a 30 Hz
    # high-pass, +1 % after 40 Hz.
    inflation = {hp: _butterworth_rms(dirty[0], hp) / _butterworth_rms(clean[0], hp) for hp in (20.0, 30.0, 40.0)}
    assert 1.25 < inflation[20.0] < 1.7
    assert 1.03 < inflation[30.0] < 1.12
    assert inflation[40.0] < 1.04


def test_mains_hum_is_a_line_peak_with_harmonics():
    emg = _render(EmgGenerator(_constant_script(3.0), seed=5, mains_hz=50.0, mains_uv=5.0), 10)
    f, power = signal.welch(emg[0], fs=FS_HZ, nperseg=4000)
    for harmonic_hz in (50.0, 150.0, 250.0):
        at = np.argmin(np.abs(f - harmonic_hz))
        neighbours = np.r_[power[at - 20 : at - 5], power[at + 5 : at + 20]]
        assert 10 * np.log10(power[at] / np.median(neighbours)) > 10.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"noise_floor_uv": -1.0}, "noise"), ({"ecg_r_peak_uv": -5.0}, "ecg"), ({"mains_hz": 55.0}, "mains")],
)
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EmgGenerator(_constant_script(1.0), seed=0, **kwargs)


def test_carrier_needs_a_rate_above_twice_the_band():
    with pytest.raises(ValueError, match="sample_rate_hz"):
        carrier_sos(500.0)
    sos = carrier_sos(FS_HZ)
    assert sos.shape[1] == 6
