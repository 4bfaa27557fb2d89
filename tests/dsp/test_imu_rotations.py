import imufusion
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeed.dsp.imu.rotations import (
    cardan_yzx_deg,
    matrix_from_cardan_yzx_deg,
    mean_quaternion,
    quaternion_from_two_vectors,
    quaternion_to_matrix,
    rotation_about_axis,
    vector_angle_deg,
)

angles = st.floats(-170.0, 170.0)
vectors = st.lists(st.floats(-1.0, 1.0), min_size=3, max_size=3).filter(lambda v: np.linalg.norm(v) > 0.1)


def test_axes_turn_right_handed():
    np.testing.assert_allclose(rotation_about_axis(0, 90.0) @ [0, 1, 0], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(rotation_about_axis(1, 90.0) @ [0, 0, 1], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(rotation_about_axis(2, 90.0) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    with pytest.raises(ValueError, match="axis_index"):
        rotation_about_axis(3, 10.0)


@settings(max_examples=60, deadline=None)
@given(angles, st.floats(-85.0, 85.0), angles)
def test_cardan_angles_round_trip(about_y, about_z, about_x):
    matrix = matrix_from_cardan_yzx_deg(about_y, about_z, about_x)
    np.testing.assert_allclose(cardan_yzx_deg(matrix), [about_y, about_z, about_x], atol=1e-7)


def test_quaternion_matrix_agrees_with_imufusion():
    rng = np.random.default_rng(0)
    for q in rng.normal(size=(20, 4)):
        q /= np.linalg.norm(q)
        np.testing.assert_allclose(
            quaternion_to_matrix(q), imufusion.quaternion_to_matrix(q.astype(np.float32)), atol=1e-6
        )


@settings(max_examples=60, deadline=None)
@given(vectors, vectors)
def test_shortest_arc_turns_one_direction_into_the_other(a, b):
    rotated = quaternion_to_matrix(quaternion_from_two_vectors(a, b)) @ np.asarray(a)
    expected = np.asarray(b) / np.linalg.norm(b)
    np.testing.assert_allclose(rotated / np.linalg.norm(rotated), expected, atol=1e-7)  # near-opposite: digits lost


def test_shortest_arc_of_opposite_vectors_is_a_half_turn():
    q = quaternion_from_two_vectors([0, 0, -1], [0, 0, 2])
    np.testing.assert_allclose(quaternion_to_matrix(q) @ [0, 0, -1], [0, 0, 1], atol=1e-12)
    with pytest.raises(ValueError, match="non-zero"):
        quaternion_from_two_vectors([0, 0, 0], [1, 0, 0])


def test_mean_quaternion_ignores_the_sign_of_each_quaternion():
    base = quaternion_from_two_vectors([1, 0, 0], [0, 0, 1])
    near = quaternion_from_two_vectors([1, 0, 0], [0.05, 0, 1])
    mean = mean_quaternion(np.array([base, -near, base, -near]))
    angle_to_base = vector_angle_deg(quaternion_to_matrix(mean) @ [1, 0, 0], [0, 0, 1])
    assert 1.0 < angle_to_base < 2.0  # half of the 2.9 deg between them
    with pytest.raises(ValueError, match="shape"):
        mean_quaternion(np.zeros((0, 4)))


def test_vector_angle_is_accurate_near_zero_and_half_turn():
    assert vector_angle_deg([1, 0, 0], [1, 1e-9, 0]) == pytest.approx(np.degrees(1e-9), rel=1e-6)
    assert vector_angle_deg([1, 0, 0], [-1, 1e-9, 0]) == pytest.approx(180.0, abs=1e-6)
