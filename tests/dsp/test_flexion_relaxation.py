"""The flexion-relaxation test against the simulator's ground truth.

Tolerances (docs/imu.md; worst over 30 seeds in brackets): phase bounds at 90 % of the maximum within
0.1 s (0.02), movement starts and ends within 0.7 s (0.58: the +-5 deg/s rule dates them about 0.4 s
inside a smooth bend), maxima within 1 deg (0.4), silence times within 0.1 s (0.05) and angles within
2.5 deg (1.6), FRR and ERR within 25 % per cycle (22 %) and 15 % for the mean over cycles (9 %).
"""

import dataclasses
import json

import numpy as np
import pytest

from biofeed.blocks import Block
from biofeed.dsp.flexion_relaxation import (
    FlexionCriteria,
    analyze_flexion_relaxation,
    analyze_flexion_relaxation_blocks,
    find_flexion_cycles,
    silence_limit_uv,
)
from biofeed.dsp.imu.trunk_motion import track_trunk
from biofeed.protocol.decoder import Decoder
from biofeed.sim.device import SimulatedDevice
from biofeed.sim.keyframes import KeyframeTrack
from biofeed.sim.truth import scenario_truth
from tests.dsp.test_imu_recordings import sim_emg, sim_imu

SIDES = ("es_left", "es_right")
SUMMARY_KEYS = {
    "n_cycles",
    "n_incomplete_cycles",
    "noise_floor_uv",
    "silence_limit_uv",
    "frr",
    "err",
    "present",
    "silence",
}


def analysed(device):
    thoracic, sacral = sim_imu(device)
    trunk = track_trunk(thoracic, sacral, 100.0)
    return analyze_flexion_relaxation(sim_emg(device), 2000.0, trunk, SIDES).to_json()


@pytest.fixture(scope="module", params=[11, 12])
def simulated(request):
    device = SimulatedDevice("flexion-relaxation", seed=request.param)
    result = analysed(device)
    return result, device.truth()["flexion_relaxation"]


def test_result_is_json_with_the_keys_of_the_truth(simulated):
    result, truth = simulated
    assert json.loads(json.dumps(result, allow_nan=False)) == result
    assert set(result) >= SUMMARY_KEYS and set(truth) >= SUMMARY_KEYS
    assert result["angle"] == "lumbar_flexion" and result["noise_floor_source"] == "high_band"
    for key in ("frr", "err", "present", "silence"):
        for side in SIDES:
            assert set(result[key][side]) == set(truth[key][side])
    cycle_keys = set(result["cycles"][0])
    assert cycle_keys <= set(truth["cycles"][0])
    assert set(result["cycles"][0]["levels"]["es_left"]) == set(truth["cycles"][0]["levels"]["es_left"])


def test_cycles_and_their_phases_match_the_truth(simulated):
    result, truth = simulated
    assert result["n_cycles"] == truth["n_cycles"] == 5 and result["n_incomplete_cycles"] == 0
    for found, true in zip(result["cycles"], truth["cycles"], strict=True):
        for key in ("full_flexion_start_s", "full_flexion_end_s"):
            assert found[key] == pytest.approx(true[key], abs=0.1)
        for key in ("flexion_start_s", "flexion_end_s", "extension_start_s", "extension_end_s"):
            assert found[key] == pytest.approx(true[key], abs=0.7)
        for key in ("max_lumbar_deg", "max_thoracic_deg"):
            assert found[key] == pytest.approx(true[key], abs=1.0)


def test_ratios_match_the_truth(simulated):
    result, truth = simulated
    for key in ("frr", "err"):
        for side in SIDES:
            found, true = result[key][side], truth[key][side]
            np.testing.assert_allclose(found["per_cycle"], true["per_cycle"], rtol=0.25)
            assert found["mean"] == pytest.approx(true["mean"], rel=0.15)
            assert found["sd"] is not None and found["cv"] == pytest.approx(found["sd"] / found["mean"])


def test_silence_is_present_at_the_true_angles(simulated):
    result, truth = simulated
    for side in SIDES:
        assert result["present"][side] == truth["present"][side]
        assert result["present"][side]["verdict"] == "present"
        assert result["silence_limit_uv"][side] == pytest.approx(silence_limit_uv(result["noise_floor_uv"][side]))
        for found, true in zip(result["silence"][side]["per_cycle"], truth["silence"][side]["per_cycle"], strict=True):
            for key in ("cessation_lumbar_deg", "onset_lumbar_deg", "cessation_thoracic_deg", "onset_thoracic_deg"):
                assert found[key] == pytest.approx(true[key], abs=2.5)
            assert found["start_s"] == pytest.approx(true["start_s"], abs=0.1)
            assert found["end_s"] == pytest.approx(true["end_s"], abs=0.1)
        mean = result["silence"][side]["cessation_lumbar_deg"]["mean"]
        assert mean == pytest.approx(truth["silence"][side]["cessation_lumbar_deg"]["mean"], abs=1.5)


def test_a_back_that_stays_active_at_full_flexion_has_no_flexion_relaxation():
    device = SimulatedDevice("flexion-relaxation", seed=13)
    script = device.script
    levels = []
    for track in script.emg_level_uv:
        values = np.where(track.values < 1.0, 10.0 * track.values / track.values.min(), track.values)
        levels.append(KeyframeTrack(track.times_s, values))
    device.script = dataclasses.replace(script, emg_level_uv=(levels[0], levels[1]))
    result = analysed(device)
    truth = scenario_truth(device.script, seed=13, noise_floor_uv=1.5, device={})["flexion_relaxation"]
    for side in SIDES:
        assert result["present"][side]["per_cycle"] == [False] * 5 == truth["present"][side]["per_cycle"]
        assert result["present"][side]["verdict"] == "absent"
        assert result["silence"][side]["per_cycle"] == [None] * 5
        assert result["silence"][side]["cessation_lumbar_deg"]["mean"] is None
        np.testing.assert_allclose(result["frr"][side]["per_cycle"], truth["frr"][side]["per_cycle"], rtol=0.25)
    levels_found = [c["levels"]["es_left"]["full_flexion_uv"] for c in result["cycles"]]
    np.testing.assert_allclose(levels_found, 10.0, rtol=0.1)


def test_one_imu_gives_the_test_on_trunk_inclination():
    device = SimulatedDevice("flexion-relaxation", seed=11)
    thoracic, _ = sim_imu(device)
    trunk = track_trunk(thoracic, None, 100.0)
    result = analyze_flexion_relaxation(sim_emg(device), 2000.0, trunk, SIDES, noise_floor_uv=1.5).to_json()
    truth = device.truth()["flexion_relaxation"]
    assert result["angle"] == "thoracic_inclination" and result["noise_floor_source"] == "given"
    assert result["n_cycles"] == 5
    span = result["silence"]["es_left"]["per_cycle"][0]
    assert span["cessation_lumbar_deg"] is None
    true_span = truth["silence"]["es_left"]["per_cycle"][0]
    assert span["cessation_thoracic_deg"] == pytest.approx(true_span["cessation_thoracic_deg"], abs=2.5)
    assert result["cycles"][0]["max_lumbar_deg"] is None
    np.testing.assert_allclose(result["frr"]["es_left"]["per_cycle"], truth["frr"]["es_left"]["per_cycle"], rtol=0.25)


def test_decoded_blocks_give_the_same_test_in_device_time():
    """What ``biofeed analyze`` has: the device's decoded blocks, here from a recording joined 3 s late."""
    device = SimulatedDevice("flexion-relaxation", seed=14, duration_s=45.0)
    blocks = [b for b in Decoder().feed(device.frames_until(device.duration_s)) if isinstance(b, Block)]
    whole = analyze_flexion_relaxation_blocks(blocks, noise_floor_uv=1.5).to_json()
    direct = analysed(device)
    assert whole["n_cycles"] == direct["n_cycles"] == 2
    for key in ("frr", "err"):
        np.testing.assert_allclose(whole[key]["es_left"]["per_cycle"], direct[key]["es_left"]["per_cycle"], rtol=0.02)
    # Joined late, off the IMU grid: EMG from 3.0035 s, the IMUs from 3.0 s; the test starts at 3.01 s.
    late = [b for b in blocks if b.start_s >= 3.0]
    first_emg = next(i for i, b in enumerate(late) if b.info.name == "emg")
    late[first_emg] = Block(late[first_emg].info, late[first_emg].data[:, 7:], late[first_emg].first_index + 7)
    shifted = analyze_flexion_relaxation_blocks(late, noise_floor_uv=1.5).to_json()
    truth = device.truth()["flexion_relaxation"]
    assert shifted["n_cycles"] == 2
    for found, true in zip(shifted["cycles"], truth["cycles"], strict=False):
        assert found["full_flexion_start_s"] == pytest.approx(true["full_flexion_start_s"], abs=0.1)
    first_silence = shifted["silence"]["es_left"]["per_cycle"][0]["start_s"]
    assert first_silence == pytest.approx(truth["silence"]["es_left"]["per_cycle"][0]["start_s"], abs=0.1)
    gap = blocks[:50] + blocks[60:]
    with pytest.raises(ValueError, match="gap"):
        analyze_flexion_relaxation_blocks(gap)
    with pytest.raises(ValueError, match="thoracic IMU"):
        analyze_flexion_relaxation_blocks([b for b in blocks if b.info.name == "emg"])


def minimum_jerk(t, start_s, duration_s, to_deg):
    u = np.clip((t - start_s) / duration_s, 0.0, 1.0)
    return to_deg * u**3 * (10 - 15 * u + 6 * u**2)


def test_phases_of_a_synthetic_bend_and_an_unfinished_one():
    fs = 100.0
    t = np.arange(0, 30, 1 / fs)
    angle = minimum_jerk(t, 3.0, 3.0, 60.0) - minimum_jerk(t, 9.0, 3.0, 60.0)  # bend, hold 3 s, return
    angle += minimum_jerk(t, 16.0, 3.0, 40.0) - minimum_jerk(t, 28.0, 3.0, 40.0)  # a second bend, cut off
    cycles, n_incomplete = find_flexion_cycles(angle, fs)
    assert n_incomplete == 1 and len(cycles) == 1
    (cycle,) = cycles
    assert cycle.max_flexion_deg == pytest.approx(60.0) and cycle.max_lumbar_deg is None
    assert cycle.standing_before_s == (0.0, pytest.approx(3.35, abs=0.1))
    assert cycle.full_flexion_start_s == pytest.approx(3.0 + 3.0 * 0.7505, abs=0.02)  # 90 % of a minimum-jerk path
    assert cycle.full_flexion_end_s == pytest.approx(9.0 + 3.0 * (1 - 0.7505), abs=0.02)
    assert 3.2 < cycle.flexion_start_s < 3.5 and 5.5 < cycle.flexion_end_s < 6.0
    assert 9.0 < cycle.extension_start_s < 9.5 and 11.5 < cycle.extension_end_s < 11.8
    small = find_flexion_cycles(0.2 * angle, fs, FlexionCriteria(min_peak_deg=15.0))
    assert small == ([], 0)  # 12 deg is not a bend to test


def test_bad_input_is_refused():
    device = SimulatedDevice("flexion-relaxation", seed=11, duration_s=20.0)
    thoracic, sacral = sim_imu(device)
    trunk = track_trunk(thoracic, sacral, 100.0)
    emg = sim_emg(device)
    with pytest.raises(ValueError, match="finite"):
        analyze_flexion_relaxation(np.full((2, 100), np.nan), 2000.0, trunk)
    with pytest.raises(ValueError, match="channel names"):
        analyze_flexion_relaxation(emg, 2000.0, trunk, ["es_left"])
    with pytest.raises(ValueError, match="mains"):
        analyze_flexion_relaxation(emg, 2000.0, trunk, mains=55)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="full_flexion_fraction"):
        FlexionCriteria(full_flexion_fraction=1.0)
    with pytest.raises(ValueError, match="standing_hold_s"):
        FlexionCriteria(standing_hold_s=0.0)
    assert silence_limit_uv(1.0) == 2.0 and silence_limit_uv(2.0) == 3.0
