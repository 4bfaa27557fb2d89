import numpy as np
import pytest

from biofeed.blocks import Block, StreamInfo
from biofeed.dsp.imu.bias import GyroBiasTracker, StillnessCriteria, estimate_gyro_bias
from biofeed.sim.device import SimulatedDevice
from biofeed.sim.imu import ImuGenerator
from tests.dsp.test_imu_recordings import imu_info, random_pieces, sim_imu

INFO = imu_info("imu_thoracic")


def still_then_turning(bias_dps, n_still=300, n_turn=300, seed=0):
    """Still for n_still samples, then a steady 20 deg/s turn about y (the accelerometer follows)."""
    rng = np.random.default_rng(seed)
    n = n_still + n_turn
    theta = np.radians(np.r_[np.zeros(n_still), 20.0 * np.arange(1, n_turn + 1) / 100.0])
    data = np.zeros((6, n))
    data[0], data[2] = np.cos(theta), np.sin(theta)
    data[4, n_still:] = 20.0
    data[3:] += np.asarray(bias_dps)[:, None]
    data[:3] += rng.normal(0, 0.003, (3, n))
    data[3:] += rng.normal(0, 0.05, (3, n))
    return data


def test_offline_estimate_recovers_the_simulated_bias():
    device = SimulatedDevice("flexion-relaxation", seed=3)
    thoracic, _ = sim_imu(device)
    true_bias = ImuGenerator(device.script, "thoracic", seed=3).gyro_bias_dps
    np.testing.assert_allclose(estimate_gyro_bias(thoracic[:3], thoracic[3:], 100.0), true_bias, atol=0.03)


def test_postural_sway_is_not_taken_for_bias():
    """Quiet standing sways at up to 0.6 deg/s, steadily enough within a second to look still."""
    rng = np.random.default_rng(5)
    t = np.arange(12000) / 100.0
    theta = np.radians(0.5 * np.sin(2 * np.pi * 0.2 * t))
    bias = np.array([0.3, -0.8, 0.5])
    data = np.zeros((6, t.shape[0]))
    data[0], data[2] = np.cos(theta), np.sin(theta)
    data[4] = np.degrees(np.gradient(theta, t))
    data[3:] += bias[:, None] + rng.normal(0, 0.05, (3, t.shape[0]))
    data[:3] += rng.normal(0, 0.003, (3, t.shape[0]))
    np.testing.assert_allclose(estimate_gyro_bias(data[:3], data[3:], 100.0), bias, atol=0.03)
    tracker = GyroBiasTracker(100.0)
    tracker.process(Block(INFO, data, 0))
    np.testing.assert_allclose(tracker.bias_dps, bias, atol=0.03)


def test_no_still_window_gives_no_estimate():
    data = still_then_turning([0.5, -0.3, 0.2], n_still=0, n_turn=500)
    assert estimate_gyro_bias(data[:3], data[3:], 100.0) is None


def test_tracker_learns_from_still_windows_and_corrects_causally():
    bias = np.array([0.5, -1.0, 0.3])
    data = still_then_turning(bias)
    tracker = GyroBiasTracker(100.0)
    out = tracker.process(Block(INFO, data, 0)).data
    # The first window is corrected with the initial (zero) bias; the bias it yields applies after it.
    np.testing.assert_array_equal(out[3:, :100], data[3:, :100])
    # Each window's bias carries the accelerometer's tilt-rate noise, about 0.07 deg/s.
    np.testing.assert_allclose(out[3:, 100:300].mean(axis=1), 0.0, atol=0.15)
    np.testing.assert_allclose(out[4, 300:].mean(), 20.0, atol=0.15)  # the turn is not taken for a bias
    assert tracker.n_still_windows == 3
    np.testing.assert_allclose(tracker.bias_dps, bias, atol=0.1)
    np.testing.assert_array_equal(out[:3], data[:3])  # the accelerometer passes through


def test_tracker_is_chunk_invariant():
    data = still_then_turning([0.5, -1.0, 0.3], n_still=450, n_turn=250, seed=1)
    whole = GyroBiasTracker(100.0).process(Block(INFO, data, 37)).data
    rng = np.random.default_rng(2)
    for _ in range(3):
        tracker = GyroBiasTracker(100.0)
        pieces = random_pieces(Block(INFO, data, 37), rng, 60)
        chunked = np.hstack([tracker.process(p).data for p in pieces])
        np.testing.assert_array_equal(chunked, whole)


def test_gap_drops_the_unfinished_window_but_keeps_the_bias():
    bias = np.array([0.5, -1.0, 0.3])
    data = still_then_turning(bias, n_still=400, n_turn=0)
    tracker = GyroBiasTracker(100.0, initial_bias_dps=[0.1, 0.1, 0.1])
    tracker.process(Block(INFO, data[:, :150], 0))  # one window, then half of the next
    learnt = tracker.bias_dps
    tracker.process(Block(INFO, data[:, 150:230], 200, gap_before=50))  # a new segment from 200
    assert tracker.n_still_windows == 1  # 150-200 + 200-230 never make a window
    np.testing.assert_array_equal(tracker.bias_dps, learnt)
    tracker.process(Block(INFO, data[:, 230:330], 280))
    assert tracker.n_still_windows == 2  # 200-300 completes after the gap
    tracker.reset()
    np.testing.assert_array_equal(tracker.bias_dps, [0.1, 0.1, 0.1])


def test_bad_settings_and_streams_are_refused():
    with pytest.raises(ValueError, match="window_s"):
        StillnessCriteria(window_s=0.0)
    with pytest.raises(ValueError, match="n_windows"):
        StillnessCriteria(n_windows=0)
    with pytest.raises(ValueError, match="initial_bias_dps"):
        GyroBiasTracker(100.0, initial_bias_dps=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"100\.0 Hz"):
        GyroBiasTracker(100.0).process(Block(imu_info("imu_thoracic", 200.0), np.zeros((6, 4)), 0))
    emg = Block(StreamInfo("emg", 100.0, INFO.channels[:1]), np.zeros((1, 4)), 0)
    with pytest.raises(ValueError, match="3 acc and 3 gyro"):
        GyroBiasTracker(100.0).process(emg)
