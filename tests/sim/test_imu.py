import numpy as np
import pytest

from biofeed.sim.imu import ImuGenerator
from biofeed.sim.scenarios import build_scenario


def _render(generator: ImuGenerator, n_segments: int) -> np.ndarray:
    return np.hstack([generator.segment(i) for i in range(n_segments)])


def test_angle_from_gravity_matches_the_script_at_rest_points():
    script = build_scenario("flexion-relaxation", seed=1, duration_s=30.0)
    cycle = script.cycles[0]
    rest_points_s = [5.0, (cycle.flexion_end_s + cycle.extension_start_s) / 2, cycle.extension_end_s + 3.0]
    for site, track in (("thoracic", script.thoracic_deg), ("sacral", script.sacral_deg)):
        imu = _render(ImuGenerator(script, site, seed=1), 30)
        for t_s in rest_points_s:
            window = slice(round(t_s * 100) - 25, round(t_s * 100) + 25)
            angle = np.degrees(np.arctan2(imu[2, window].mean(), imu[0, window].mean()))
            assert angle == pytest.approx(float(track.value_at(t_s)), abs=0.5)
            assert np.linalg.norm(imu[:3, window].mean(axis=1)) == pytest.approx(1.0, abs=0.01)


def test_gyro_integrates_to_the_angle_change():
    script = build_scenario("flexion-relaxation", seed=2, duration_s=30.0)
    cycle = script.cycles[0]
    generator = ImuGenerator(script, "thoracic", seed=2)
    imu = _render(generator, 30)
    start, end = round(cycle.flexion_start_s * 100) - 10, round(cycle.flexion_end_s * 100) + 10
    rate_dps = imu[4, start:end] - generator.gyro_bias_dps[1]
    assert np.sum(rate_dps) / 100 == pytest.approx(cycle.max_thoracic_deg, abs=1.0)
    assert np.abs(imu[3, start:end].mean() - generator.gyro_bias_dps[0]) < 0.05


def test_lying_supine_reads_minus_one_g_on_z():
    script = build_scenario("rest", seed=0, duration_s=2.0)
    imu = ImuGenerator(script, "sacral", seed=0).segment(0)
    assert imu[2].mean() == pytest.approx(-1.0, abs=0.01)
    assert abs(imu[0].mean()) < 0.01


def test_segments_are_reproducible_in_any_order_and_sites_differ():
    script = build_scenario("rest", seed=0, duration_s=5.0)
    a, b = ImuGenerator(script, "thoracic", seed=9), ImuGenerator(script, "thoracic", seed=9)
    np.testing.assert_array_equal(a.segment(3), (b.segment(1), b.segment(3))[1])
    assert not np.array_equal(a.segment(0), ImuGenerator(script, "sacral", seed=9).segment(0))


def test_unknown_site_is_refused():
    with pytest.raises(ValueError, match="thoracic"):
        ImuGenerator(build_scenario("rest", seed=0), "cervical", seed=0)  # type: ignore[arg-type]
