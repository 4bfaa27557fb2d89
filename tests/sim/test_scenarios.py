import numpy as np
import pytest

from biofeed.sim.scenarios import CHANNEL_NAMES, RIGHT_TO_LEFT_RATIO, SCENARIO_NAMES, build_scenario


def test_unknown_scenario_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="allowed: rest, pandiculation, pandiculation-poor"):
        build_scenario("yoga", seed=0)


@pytest.mark.parametrize(("kwargs", "message"), [({"seed": -1}, "seed"), ({"seed": 0, "duration_s": 0.0}, "duration")])
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_scenario("rest", **kwargs)


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_every_scenario_builds_with_sane_levels_and_angles(name):
    script = build_scenario(name, seed=4)
    assert len(CHANNEL_NAMES) == len(script.emg_level_uv)
    t = np.arange(0.0, script.duration_s, 0.05)
    left, right = (track.value_at(t) for track in script.emg_level_uv)
    assert left.min() >= 0.4 and left.max() <= 90.0
    np.testing.assert_allclose(right, RIGHT_TO_LEFT_RATIO * left)
    thoracic = script.thoracic_deg.value_at(t)
    assert thoracic.min() >= -95.0 and thoracic.max() <= 80.0
    for trial in script.trials:
        assert trial.onset_s < trial.release_start_s < trial.release_end_s
    for rest in script.rests:
        assert rest.start_s < rest.end_s <= script.duration_s


def test_pandiculation_levels_follow_the_brief():
    script = build_scenario("pandiculation", seed=1)
    left = script.emg_level_uv[0]
    assert left.value_at(30.0) == pytest.approx(6.0)
    for trial in script.trials:
        peak = float(left.value_at(trial.release_start_s))
        assert 30.0 <= peak <= 60.0
        assert 2.0 <= trial.release_start_s - trial.onset_s - 0.5 <= 3.0  # hold
        assert 4.0 <= trial.release_end_s - trial.release_start_s <= 8.0  # slow release
    last = script.trials[-1]
    assert 2.0 <= float(left.value_at(last.release_end_s + 90.0)) <= 3.0


def test_poor_release_is_abrupt_with_rebursts_and_no_lower_rest():
    script = build_scenario("pandiculation-poor", seed=1)
    left = script.emg_level_uv[0]
    for trial in script.trials:
        pre = float(left.value_at(trial.onset_s))
        peak = float(left.value_at(trial.release_start_s))
        ten_percent_s = left.first_time_below(pre + 0.1 * (peak - pre), trial.release_start_s, trial.release_end_s)
        assert ten_percent_s is not None and ten_percent_s - trial.release_start_s < 1.0
        assert len(trial.rebursts_s) == 2
        assert all(left.value_at(t) > pre + 0.25 * (peak - pre) for t in trial.rebursts_s)
        assert left.value_at(trial.release_end_s + 60.0) == pytest.approx(pre)


def test_flexion_relaxation_cycles_fall_silent_at_full_flexion():
    script = build_scenario("flexion-relaxation", seed=2)
    assert len(script.cycles) == 5
    for cycle in script.cycles:
        assert 70.0 <= cycle.max_thoracic_deg <= 80.0
        assert cycle.flexion_start_s < cycle.silence_start_s < cycle.flexion_end_s
        assert cycle.extension_start_s < cycle.silence_end_s < cycle.extension_end_s
        middle_s = (cycle.flexion_end_s + cycle.extension_start_s) / 2
        assert script.emg_level_uv[0].value_at(middle_s) < 1.0
        assert script.thoracic_deg.value_at(middle_s) == pytest.approx(cycle.max_thoracic_deg)
        assert script.lumbar_deg_at(middle_s) == pytest.approx(0.65 * cycle.max_thoracic_deg)


def test_shorter_duration_truncates_and_longer_extends_the_last_rest():
    natural = build_scenario("pandiculation", seed=3)
    short = build_scenario("pandiculation", seed=3, duration_s=100.0)
    assert short.duration_s == 100.0 and len(short.trials) == 1
    assert short.trials[0] == natural.trials[0]
    assert short.rests[-1].end_s == 100.0
    long = build_scenario("pandiculation", seed=3, duration_s=natural.duration_s + 600.0)
    assert long.trials == natural.trials
    assert long.rests[-1].end_s == long.duration_s
    assert long.emg_level_uv[0].value_at(long.duration_s) == natural.emg_level_uv[0].value_at(natural.duration_s)


def test_flexion_relaxation_repeats_its_cycles_when_longer():
    natural = build_scenario("flexion-relaxation", seed=3)
    long = build_scenario("flexion-relaxation", seed=3, duration_s=3 * natural.duration_s)
    assert len(long.cycles) > 2 * len(natural.cycles)
    assert long.cycles[: len(natural.cycles)] == natural.cycles
    assert long.script_duration_s <= long.duration_s


def test_seed_varies_the_script_and_same_seed_repeats_it():
    a, b, c = (build_scenario("mixed", seed=s) for s in (7, 7, 8))
    assert a.trials == b.trials and a.cycles == b.cycles
    assert a.trials != c.trials
