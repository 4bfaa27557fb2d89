import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from biofeed.blocks import Block
from biofeed.dsp.imu.angles import (
    LUMBAR_CHANNELS,
    SINGLE_SENSOR_CHANNELS,
    TrunkAngles,
    lumbar_angles_deg,
    segment_inclination_deg,
)
from biofeed.dsp.imu.calibration import (
    SensorMounting,
    calibrate_upright,
    functional_mediolateral_axis,
    mounting_from_upright,
)
from biofeed.dsp.imu.fusion import OrientationFusion
from biofeed.dsp.imu.rotations import matrix_from_cardan_yzx_deg, rotation_about_axis
from biofeed.dsp.imu.trunk_motion import track_trunk
from biofeed.sim.device import SimulatedDevice
from tests.dsp.test_imu_recordings import imu_info, random_pieces, sim_imu

# Upright body axes (cranial, left, posterior) in earth coordinates (z up).
UPRIGHT = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
IDENTITY_MOUNTING = SensorMounting(np.eye(3), "sensor_y")


def quaternions_of(matrices):
    """(w, x, y, z) rows of rotation matrices."""
    xyzw = Rotation.from_matrix(np.asarray(matrices)).as_quat()
    return np.roll(np.atleast_2d(xyzw), 1, axis=-1)


def misalignment(angle_deg, seed):
    axis = np.random.default_rng(seed).normal(size=3)
    return Rotation.from_rotvec(np.radians(angle_deg) * axis / np.linalg.norm(axis)).as_matrix()


def sensor_quaternions(body, mounting, heading_deg):
    """What a sensor's fusion reports: its own heading, and sensor = body turned by the mounting."""
    return quaternions_of(rotation_about_axis(2, heading_deg) @ body @ mounting.T)


def calibrated(mountings, headings, functional):
    up = [m @ [1.0, 0.0, 0.0] for m in mountings]  # gravity reaction seen upright: the cranial axis
    quaternions = [sensor_quaternions(UPRIGHT, m, h) for m, h in zip(mountings, headings, strict=True)]
    return calibrate_upright(
        np.tile(up[0][:, None], 10),
        np.repeat(quaternions[0], 10, axis=0),
        np.tile(up[1][:, None], 10),
        np.repeat(quaternions[1], 10, axis=0),
        thoracic_mediolateral=mountings[0][:, 1] if functional else None,
        sacral_mediolateral=mountings[1][:, 1] if functional else None,
    )


@settings(max_examples=40, deadline=None)
@given(
    st.floats(-30.0, 110.0),
    st.floats(-40.0, 40.0),
    st.floats(-40.0, 40.0),
    st.floats(-30.0, 60.0),
    st.floats(-180.0, 180.0),
    st.floats(-180.0, 180.0),
)
def test_lumbar_angles_are_recovered_whatever_the_mounting_and_headings(flexion, lateral, axial, pelvis, h_t, h_s):
    mountings = [misalignment(8.0, 1), misalignment(10.0, 2)]
    calibration = calibrated(mountings, (h_t, h_s), functional=True)
    sacral_body = UPRIGHT @ rotation_about_axis(1, pelvis)
    thoracic_body = sacral_body @ matrix_from_cardan_yzx_deg(flexion, lateral, axial)
    angles = lumbar_angles_deg(
        sensor_quaternions(thoracic_body, mountings[0], h_t),
        sensor_quaternions(sacral_body, mountings[1], h_s),
        calibration,
    )
    np.testing.assert_allclose(angles[:, 0], [flexion, lateral, axial], atol=1e-6)


def test_a_sensor_turned_about_the_spine_leaks_flexion_into_lateral_bend_unless_calibrated_functionally():
    mountings = [rotation_about_axis(0, 8.0), np.eye(3)]  # thoracic sensor turned 8 deg about the cranial axis
    thoracic_body = UPRIGHT @ rotation_about_axis(1, 50.0)
    q = (sensor_quaternions(thoracic_body, mountings[0], 0.0), sensor_quaternions(UPRIGHT, mountings[1], 0.0))
    assumed = lumbar_angles_deg(*q, calibrated(mountings, (0.0, 0.0), functional=False))
    functional = lumbar_angles_deg(*q, calibrated(mountings, (0.0, 0.0), functional=True))
    assert abs(assumed[1, 0]) > 5.0  # about sin(8 deg) x 50 deg
    np.testing.assert_allclose(functional[:, 0], [50.0, 0.0, 0.0], atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.floats(-130.0, 130.0), st.floats(-40.0, 40.0), st.floats(-180.0, 180.0))
def test_inclination_is_the_tilt_whatever_the_heading(sagittal, lateral, heading):
    body = (
        rotation_about_axis(2, heading) @ UPRIGHT @ rotation_about_axis(1, sagittal) @ rotation_about_axis(2, lateral)
    )
    np.testing.assert_allclose(
        segment_inclination_deg(quaternions_of(body), IDENTITY_MOUNTING)[:, 0], [sagittal, lateral], atol=1e-6
    )


def test_functional_axis_is_the_dominant_rotation_axis():
    rng = np.random.default_rng(0)
    axis = np.array([0.1, 0.98, -0.17])
    axis /= np.linalg.norm(axis)
    rates = np.r_[rng.uniform(-40, 40, 300), rng.uniform(-5, 5, 300)]
    gyro = axis[:, None] * rates + rng.normal(0, 0.5, (3, 600))
    np.testing.assert_allclose(functional_mediolateral_axis(gyro), axis, atol=0.01)
    np.testing.assert_allclose(functional_mediolateral_axis(-gyro), axis, atol=0.01)  # y kept to the left
    assert functional_mediolateral_axis(gyro[:, :30]) is None  # too little movement
    twisting = np.vstack([rates, rates[::-1], np.zeros(600)])  # as much about x as about y
    assert functional_mediolateral_axis(twisting) is None


def test_mounting_needs_a_left_axis_away_from_up():
    mounting = mounting_from_upright([0.0, 0.0, 2.0])
    np.testing.assert_allclose(mounting.body_to_sensor @ [1, 0, 0], [0, 0, 1], atol=1e-12)
    assert mounting.misalignment_deg() == pytest.approx(90.0)
    with pytest.raises(ValueError, match="along the spine"):
        mounting_from_upright([0.0, 1.0, 0.05])
    with pytest.raises(ValueError, match="non-zero"):
        mounting_from_upright([0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="both"):
        calibrate_upright(np.ones((3, 2)), np.tile([1.0, 0, 0, 0], (2, 1)), sacral_acc_g=np.ones((3, 2)))


@pytest.fixture(scope="module")
def flexion_device():
    device = SimulatedDevice("flexion-relaxation", seed=7)
    return device, sim_imu(device)


def test_track_trunk_follows_the_simulated_angles(flexion_device):
    device, (thoracic, sacral) = flexion_device
    trunk = track_trunk(thoracic, sacral, 100.0)
    t = np.arange(trunk.n_samples) / 100.0
    lumbar = device.script.thoracic_deg.value_at(t) - device.script.sacral_deg.value_at(t)
    assert trunk.angle_names == LUMBAR_CHANNELS and trunk.has_lumbar
    assert np.sqrt(np.mean((trunk.flexion_deg - lumbar) ** 2)) < 0.5
    assert np.sqrt(np.mean((trunk.angle("thoracic_inclination") - device.script.thoracic_deg.value_at(t)) ** 2)) < 0.5
    assert np.sqrt(np.mean((trunk.angle("sacral_inclination") - device.script.sacral_deg.value_at(t)) ** 2)) < 0.5
    for name in ("lumbar_lateral_bend", "lumbar_axial_rotation", "thoracic_lateral_inclination"):
        # Purely sagittal movement: what shows is heading drift from the residual bias (0.03 deg/s).
        assert np.abs(trunk.angle(name)).max() < 1.5
    assert trunk.calibration.start_s == 0.0 and trunk.calibration.end_s == 5.0
    assert trunk.calibration.thoracic.mediolateral_source == "functional"
    assert len(trunk.motion_intervals) == 2 * len(device.script.cycles)  # each bend and each return
    with pytest.raises(ValueError, match="no angle"):
        trunk.angle("pelvis")


def test_one_sensor_gives_trunk_inclination(flexion_device):
    device, (thoracic, _) = flexion_device
    trunk = track_trunk(thoracic, None, 100.0, functional_axes=False, calibration_s=(1.0, 4.0))
    t = np.arange(trunk.n_samples) / 100.0
    assert trunk.angle_names == SINGLE_SENSOR_CHANNELS and not trunk.has_lumbar
    assert trunk.calibration.sacral is None and trunk.calibration.thoracic.mediolateral_source == "sensor_y"
    assert np.sqrt(np.mean((trunk.flexion_deg - device.script.thoracic_deg.value_at(t)) ** 2)) < 0.5


def test_track_trunk_refuses_data_without_a_quiet_start():
    t = np.arange(1000) / 100.0
    theta = np.radians(30.0 * np.sin(2 * np.pi * 0.5 * t))
    data = np.vstack([np.cos(theta), 0 * t, np.sin(theta), 0 * t, np.degrees(np.gradient(theta, t)), 0 * t])
    with pytest.raises(ValueError, match="quiet stretch"):
        track_trunk(data, None, 100.0)
    with pytest.raises(ValueError, match="shape"):
        track_trunk(data[:5], None, 100.0)
    with pytest.raises(ValueError, match="sampled together"):
        track_trunk(data, data[:, :10], 100.0)


def test_trunk_angles_stage_pairs_streams_in_any_interleaving(flexion_device):
    _, (thoracic, sacral) = flexion_device
    n = 3000
    orientations = [
        OrientationFusion(100.0).process(Block(imu_info(name), data[:, :n], 0))
        for name, data in (("imu_thoracic", thoracic), ("imu_sacral", sacral))
    ]
    calibration = track_trunk(thoracic[:, :n], sacral[:, :n], 100.0).calibration
    stage = TrunkAngles(calibration)
    whole = [stage.process(o) for o in orientations][-1]
    assert whole.n_samples == n and whole.first_index == 0
    rng = np.random.default_rng(8)
    queues = [random_pieces(o, rng, 25) for o in orientations]
    stage = TrunkAngles(calibration)
    out = []
    while any(queues):
        side = int(rng.integers(2)) if all(queues) else (0 if queues[0] else 1)
        out.append(stage.process(queues[side].pop(0)))
    np.testing.assert_array_equal(np.hstack([b.data for b in out]), whole.data)
    assert sum(b.gap_before for b in out) == 0


def test_trunk_angles_stage_drops_samples_one_stream_lost(flexion_device):
    _, (thoracic, sacral) = flexion_device
    t_block = OrientationFusion(100.0).process(Block(imu_info("imu_thoracic"), thoracic[:, :600], 0))
    s_block = OrientationFusion(100.0).process(Block(imu_info("imu_sacral"), sacral[:, :600], 0))
    stage = TrunkAngles(track_trunk(thoracic[:, :600], sacral[:, :600], 100.0).calibration)
    first = stage.process(Block(t_block.info, t_block.data[:, :300], 0))
    assert first.n_samples == 0  # waits for its partner
    stage.process(Block(t_block.info, t_block.data[:, 400:], 400, gap_before=100))  # 300-400 lost
    out = [stage.process(Block(s_block.info, s_block.data[:, a : a + 200], a)) for a in (0, 200, 400)]
    assert [(b.first_index, b.n_samples, b.gap_before) for b in out] == [(0, 200, 0), (200, 100, 0), (400, 200, 100)]
    fresh = TrunkAngles(stage.calibration)
    fresh.process(t_block)
    whole = fresh.process(s_block)
    np.testing.assert_array_equal(np.hstack([b.data for b in out]), whole.data[:, np.r_[0:300, 400:600]])
    with pytest.raises(ValueError, match="imu_thoracic_orientation"):
        stage.process(Block(imu_info("emg"), np.zeros((6, 1)), 0))
