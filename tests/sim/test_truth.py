import json

import numpy as np
import pytest

from biofeed.sim.device import SimulatedDevice
from biofeed.sim.emg import EmgGenerator
from biofeed.sim.truth import criteria_of, expected_verdict


@pytest.mark.parametrize(
    ("pre", "post", "late", "verdict"),
    [
        (2.8, 2.0, 2.0, "true"),  # all three criteria
        (6.0, 4.0, 4.0, "none"),  # lower and lasting but not near the floor
        (5.0, 2.2, 4.8, "transient"),  # back up at 60-120 s
        (6.0, 6.0, 6.0, "none"),  # no reduction
        (1.2, 0.5, 0.5, "not_measurable"),  # already within 1 uV of the floor
        (6.0, None, None, None),  # run ended before the post window
        (6.0, 2.0, None, None),  # ... or before the persistence window
    ],
)
def test_expected_verdict_follows_science_section_6(pre, post, late, verdict):
    assert expected_verdict(pre, post, late, 1.5) == verdict


def test_absolute_criterion_scales_with_a_large_noise_floor():
    assert criteria_of(4.0, 2.9, 2.9, 2.0)["absolute"] is True  # 1.5 x 2.0 = 3.0 uV
    assert criteria_of(4.0, 2.9, 2.9, 1.0)["absolute"] is False  # max(2, 1.5) = 2 uV


def test_truth_is_json_and_names_every_field():
    truth = SimulatedDevice("mixed", seed=5).truth()
    text = json.dumps(truth, allow_nan=False)
    assert json.loads(text) == truth
    assert truth["scenario"] == "mixed" and truth["seed"] == 5 and truth["device_id"] == "sim-5"
    assert truth["sample_rates_hz"] == {"emg": 2000.0, "imu_thoracic": 100.0, "imu_sacral": 100.0}
    contraction = truth["channels"]["es_left"]["contractions"][0]
    for key in ("onset_s", "offset_s", "peak_uv", "release_start_s", "release_end_s", "pre_rest_uv", "post_rest_uv"):
        assert isinstance(contraction[key], float)
    verdicts = [c["expected_verdict"] for c in truth["channels"]["es_left"]["contractions"]]
    assert verdicts == ["none", "transient", "true"]
    assert [r["posture"] for r in truth["rests"]][:2] == ["standing", "standing"]
    assert {"time_s", "thoracic_deg", "sacral_deg", "lumbar_deg"} <= set(truth["angles"]["key_points"][0])
    assert len(truth["flexion_relaxation"]["cycles"]) == 2


def test_pandiculation_truth_ends_in_true_relaxation():
    truth = SimulatedDevice("pandiculation", seed=0).truth()
    for channel in ("es_left", "es_right"):
        contractions = truth["channels"][channel]["contractions"]
        assert len(contractions) == 3
        assert contractions[-1]["expected_verdict"] == "true"
        assert all(c["criteria"]["relative"] and c["criteria"]["persistent"] for c in contractions)
        assert all(c["release_10_s"] - c["release_90_s"] >= 3.0 for c in contractions)  # slow releases
    assert truth["channels"]["es_left"]["contractions"][0]["pre_rest_uv"] == pytest.approx(6.0)


def test_poor_pandiculation_truth_is_none():
    truth = SimulatedDevice("pandiculation-poor", seed=0).truth()
    contractions = truth["channels"]["es_left"]["contractions"]
    assert [c["expected_verdict"] for c in contractions] == ["none"] * 3
    assert all(c["release_10_s"] - c["release_start_s"] < 1.0 for c in contractions)
    assert all(len(c["rebursts"]) == 2 for c in contractions)


def test_truncated_run_leaves_undecidable_verdicts_null():
    truth = SimulatedDevice("pandiculation", seed=0, duration_s=90.0).truth()
    (contraction,) = truth["channels"]["es_left"]["contractions"]
    assert contraction["complete"] is True
    assert contraction["post_rest_uv"] is not None and contraction["late_rest_uv"] is None
    assert contraction["expected_verdict"] is None


def test_flexion_relaxation_truth_has_phases_and_silence_angles():
    truth = SimulatedDevice("flexion-relaxation", seed=1).truth()
    cycles = truth["flexion_relaxation"]["cycles"]
    assert len(cycles) == 5
    for cycle in cycles:
        assert (
            cycle["standing_start_s"]
            < cycle["flexion_start_s"]
            < cycle["full_flexion_start_s"]
            < cycle["flexion_end_s"]
            < cycle["extension_start_s"]
            < cycle["full_flexion_end_s"]
            < cycle["extension_end_s"]
        )
        silence = cycle["silence"]
        assert silence["cessation_thoracic_deg"] < silence["onset_thoracic_deg"] <= cycle["max_thoracic_deg"]
        assert silence["cessation_lumbar_deg"] == pytest.approx(0.65 * silence["cessation_thoracic_deg"])
        levels = cycle["levels"]["es_left"]
        assert levels["full_flexion_uv"] < 1.0 < levels["standing_uv"] < levels["peak_flexion_uv"]


@pytest.mark.parametrize("scenario", ["pandiculation", "pandiculation-poor", "mixed"])
def test_set_points_measured_on_the_signal_give_the_expected_verdicts(scenario):
    """The truth is what a correct pipeline finds: SCIENCE.md 4 and 6 applied to the rendered EMG."""
    device = SimulatedDevice(scenario, seed=2)
    truth = device.truth()
    n_seconds = round(device.duration_s)
    generator = EmgGenerator(device.script, seed=device.seed, noise_floor_uv=device.noise_floor_uv)
    emg = np.hstack([generator.segment(i) for i in range(n_seconds)])
    spectrum = np.fft.rfft(emg, axis=-1)
    f = np.fft.rfftfreq(emg.shape[1], 1 / 2000)
    spectrum[:, (f < 20) | (f > 450)] = 0
    in_band = np.fft.irfft(spectrum, n=emg.shape[1], axis=-1)
    rms_1s = np.sqrt(np.mean(in_band.reshape(2, n_seconds, 2000) ** 2, axis=-1))
    corrected = np.sqrt(np.maximum(rms_1s**2 - device.noise_floor_uv**2, 0.0))

    def set_point(channel_index: int, start_s: float, end_s: float) -> float:
        return float(np.median(corrected[channel_index, int(np.ceil(start_s)) : int(end_s)]))

    for channel_index, name in enumerate(("es_left", "es_right")):
        for c in truth["channels"][name]["contractions"]:
            pre = set_point(channel_index, c["onset_s"] - 30, c["onset_s"])
            post = set_point(channel_index, c["release_end_s"] + 10, c["release_end_s"] + 40)
            late = set_point(channel_index, c["release_end_s"] + 60, c["release_end_s"] + 120)
            assert pre == pytest.approx(c["pre_rest_uv"], rel=0.1)
            assert post == pytest.approx(c["post_rest_uv"], rel=0.1)
            assert late == pytest.approx(c["late_rest_uv"], rel=0.1)
            assert expected_verdict(pre, post, late, device.noise_floor_uv) == c["expected_verdict"]
