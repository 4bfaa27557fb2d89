import numpy as np
import pytest

from biofeed.sim.keyframes import KeyframeTrack, minimum_jerk_fraction_time


def test_linear_track_interpolates_and_holds_outside():
    track = KeyframeTrack([1.0, 3.0, 4.0], [2.0, 6.0, 6.0])
    np.testing.assert_allclose(track.value_at([0.0, 1.0, 2.0, 3.5, 10.0]), [2.0, 2.0, 4.0, 6.0, 6.0])
    np.testing.assert_allclose(track.rate_at([0.5, 2.0, 3.5, 5.0]), [0.0, 2.0, 0.0, 0.0])


def test_minimum_jerk_starts_and_stops_at_rest_and_derivatives_agree():
    track = KeyframeTrack([0.0, 2.0], [0.0, 80.0], interpolation="minimum_jerk")
    t = np.linspace(0.0, 2.0, 20001)
    value = track.value_at(t)
    assert value[0] == 0.0 and value[-1] == pytest.approx(80.0)
    assert track.rate_at(0.0) == 0.0 and track.rate_at(2.0) == 0.0
    assert np.all(np.diff(value) >= 0)
    # Numerical derivatives of the value match the analytic rate and acceleration.
    dt = t[1] - t[0]
    np.testing.assert_allclose(np.gradient(value, dt)[1:-1], track.rate_at(t)[1:-1], atol=1e-3)
    np.testing.assert_allclose(np.gradient(track.rate_at(t), dt)[1:-1], track.acceleration_at(t)[1:-1], atol=0.05)
    assert track.rate_at(1.0) == pytest.approx(80.0 / 2.0 * 1.875)  # peak speed of a minimum-jerk move


def test_fraction_time_inverts_the_profile():
    track = KeyframeTrack([0.0, 1.0], [0.0, 1.0], interpolation="minimum_jerk")
    for fraction in (0.1, 0.5, 0.9):
        u = minimum_jerk_fraction_time(fraction)
        assert track.value_at(u) == pytest.approx(fraction, abs=1e-3)
    with pytest.raises(ValueError, match="fraction"):
        minimum_jerk_fraction_time(1.5)


def test_rms_and_first_time_below():
    track = KeyframeTrack([0.0, 10.0, 20.0], [3.0, 3.0, 1.0])
    assert track.rms_between(0.0, 10.0) == pytest.approx(3.0)
    assert track.first_time_below(2.0, 0.0, 20.0) == pytest.approx(15.0, abs=0.002)
    assert track.first_time_below(0.5, 0.0, 20.0) is None


@pytest.mark.parametrize(
    ("times", "values", "message"),
    [([], [], "at least one"), ([0.0, 0.0], [1.0, 2.0], "strictly increasing"), ([0.0], [np.nan], "finite")],
)
def test_bad_key_points_are_refused(times, values, message):
    with pytest.raises(ValueError, match=message):
        KeyframeTrack(times, values)


def test_unknown_interpolation_is_refused():
    with pytest.raises(ValueError, match="linear"):
        KeyframeTrack([0.0], [1.0], interpolation="cubic")  # type: ignore[arg-type]
