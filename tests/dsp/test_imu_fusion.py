import imufusion
import numpy as np
import pytest
from ahrs.filters import Madgwick

from biofeed.blocks import Block
from biofeed.dsp.imu.bias import GyroBiasTracker, estimate_gyro_bias
from biofeed.dsp.imu.fusion import (
    ANGULAR_RATE_ROW,
    LINEAR_ACCELERATION_ROW,
    QUATERNION_ROWS,
    FusionSettings,
    OrientationFusion,
    initial_quaternion,
)
from biofeed.dsp.imu.motion import up_vectors
from biofeed.dsp.imu.rotations import quaternion_to_matrix, rotation_about_axis, vector_angle_deg
from biofeed.sim.device import SimulatedDevice
from tests.dsp.test_imu_recordings import imu_info, random_pieces, sim_imu

INFO = imu_info("imu_thoracic")


def sagittal_deg(quaternions_wxyz_rows):
    up = up_vectors(quaternions_wxyz_rows)
    return np.degrees(np.arctan2(up[2], up[0]))


def turning_about_vertical(rate_dps=30.0, n=300, up_axis=2):
    """A still sensor with axis ``up_axis`` up, turning about the vertical: the accelerometer never sees it."""
    data = np.zeros((6, n))
    data[up_axis] = 1.0
    data[3 + up_axis] = rate_dps
    return data


def turned_deg(quaternions_rows, i):
    """Rotation about earth z between sample 0 and sample i, degrees."""
    r0, r1 = quaternion_to_matrix(quaternions_rows[:, 0]), quaternion_to_matrix(quaternions_rows[:, i])
    relative = r1 @ r0.T
    return np.degrees(np.arctan2(relative[1, 0], relative[0, 0]))


def test_start_up_is_skipped_so_the_heading_moves_from_the_first_sample():
    data = turning_about_vertical()  # lying flat: Fusion's identity start is already level
    out = OrientationFusion(100.0).process(Block(INFO, data, 0)).data
    assert turned_deg(out[QUATERNION_ROWS], 200) == pytest.approx(60.0, abs=0.5)
    upright = OrientationFusion(100.0).process(Block(INFO, turning_about_vertical(up_axis=0), 0)).data
    assert turned_deg(upright[QUATERNION_ROWS], 200) == pytest.approx(60.0, abs=0.5)
    # Plain imufusion holds the heading during its 3 s start-up: this is what the skip avoids.
    ahrs = imufusion.Ahrs()
    quaternions = []
    for i in range(201):
        ahrs.update_no_magnetometer(data[3:, i].copy(), data[:3, i].copy())
        quaternions.append(ahrs.get_quaternion())
    assert abs(turned_deg(np.array(quaternions).T, 200)) < 1.0


def test_first_output_is_already_level():
    theta = np.radians(70.0)
    data = np.zeros((6, 5))
    data[0], data[2] = np.cos(theta), np.sin(theta)
    out = OrientationFusion(100.0).process(Block(INFO, data, 0)).data
    assert sagittal_deg(out[QUATERNION_ROWS, :1])[0] == pytest.approx(70.0, abs=0.01)
    np.testing.assert_allclose(quaternion_to_matrix(initial_quaternion([0.0, 0.0, -2.0])) @ [0, 0, -1], [0, 0, 1])


def test_output_rows_are_orientation_rate_and_linear_acceleration():
    data = turning_about_vertical(rate_dps=12.0, n=60, up_axis=0)
    data[1, 50:] += 0.1  # a sudden 0.1 g sideways push from sample 50
    out = OrientationFusion(100.0).process(Block(INFO, data, 0))
    assert out.info.name == "imu_thoracic_orientation" and out.n_samples == 60 and out.first_index == 0
    np.testing.assert_allclose(out.data[ANGULAR_RATE_ROW], 12.0)
    assert np.linalg.norm(out.data[QUATERNION_ROWS], axis=0) == pytest.approx(np.ones(60), abs=1e-6)
    assert out.data[LINEAR_ACCELERATION_ROW, :50].max() < 1e-3
    assert out.data[LINEAR_ACCELERATION_ROW, 50] == pytest.approx(0.1, abs=0.005)


def test_fusion_is_chunk_invariant_and_restarts_on_a_gap():
    device = SimulatedDevice("flexion-relaxation", seed=2, duration_s=25.0)
    thoracic, _ = sim_imu(device)
    whole = OrientationFusion(100.0).process(Block(INFO, thoracic, 0)).data
    rng = np.random.default_rng(3)
    fusion = OrientationFusion(100.0)
    chunked = np.hstack([fusion.process(p).data for p in random_pieces(Block(INFO, thoracic, 0), rng, 40)])
    np.testing.assert_array_equal(chunked, whole)
    fusion = OrientationFusion(100.0)
    fusion.process(Block(INFO, thoracic[:, :1000], 0))
    after_gap = fusion.process(Block(INFO, thoracic[:, 1200:], 1200, gap_before=200)).data
    fresh = OrientationFusion(100.0).process(Block(INFO, thoracic[:, 1200:], 1200)).data
    np.testing.assert_array_equal(after_gap, fresh)


def test_inclination_matches_the_simulated_angle_and_ahrs_madgwick():
    device = SimulatedDevice("flexion-relaxation", seed=6)
    thoracic, _ = sim_imu(device)
    bias = estimate_gyro_bias(thoracic[:3], thoracic[3:], 100.0)
    corrected = GyroBiasTracker(100.0, initial_bias_dps=bias).process(Block(INFO, thoracic, 0)).data
    ours = sagittal_deg(OrientationFusion(100.0).process(Block(INFO, corrected, 0)).data[QUATERNION_ROWS])
    madgwick = Madgwick(
        gyr=np.radians(corrected[3:].T), acc=corrected[:3].T, frequency=100.0, q0=initial_quaternion(corrected[:3, 0])
    )
    theirs = sagittal_deg(madgwick.Q.T)
    truth = device.script.thoracic_deg.value_at(np.arange(thoracic.shape[1]) / 100.0)
    assert np.sqrt(np.mean((ours - truth) ** 2)) < 0.5  # SCIENCE.md 10: < 1.7 deg dynamic
    assert np.sqrt(np.mean((theirs - truth) ** 2)) < 1.0
    assert np.sqrt(np.mean((ours - theirs) ** 2)) < 1.0


def test_a_tilted_static_sensor_stays_put():
    tilt = rotation_about_axis(2, 25.0) @ rotation_about_axis(1, 40.0)
    data = np.zeros((6, 500))
    data[:3] = (tilt.T @ [0.0, 0.0, 1.0])[:, None] + np.random.default_rng(4).normal(0, 0.003, (3, 500))
    out = OrientationFusion(100.0).process(Block(INFO, data, 0)).data
    up = up_vectors(out[QUATERNION_ROWS])
    assert vector_angle_deg(up.T, tilt.T @ [0.0, 0.0, 1.0]).max() < 0.8  # SCIENCE.md 10: < 0.8 deg static


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        OrientationFusion(100.0).process(Block(INFO, np.full((6, 3), np.nan), 0))
    with pytest.raises(ValueError, match="gain"):
        FusionSettings(gain=-1.0)
    with pytest.raises(ValueError, match="rejection_timeout_s"):
        FusionSettings(rejection_timeout_s=float("nan"))
    with pytest.raises(ValueError, match="sample_rate_hz"):
        OrientationFusion(0.0)
