import numpy as np
import pytest

from biofeed.sessions.sham import SessionWindow, evaluate_sham_trial

FS = 2000.0
FLOOR_UV = 1.5


def _windows(levels_uv, rest=True):
    return [SessionWindow(float(k), float(k + 1), float(v), rest, True) for k, v in enumerate(levels_uv)]


def _levels(rng, before_uv, after_uv, switch_s, n_s=200):
    t = np.arange(n_s)
    mean = np.where(t < switch_s, before_uv, after_uv)
    return mean * (1.0 + 0.05 * rng.standard_normal(n_s))


def _judge(windows, onset_s=60.0):
    return evaluate_sham_trial(
        windows,
        channel_index=0,
        sample_rate_hz=FS,
        noise_floor_uv=FLOOR_UV,
        onset_s=onset_s,
        release_start_s=onset_s + 3.0,
        release_end_s=onset_s + 9.0,
    )


def test_a_sham_whose_rest_did_not_change_is_none():
    rng = np.random.default_rng(1)
    result = _judge(_windows(_levels(rng, 4.0, 4.0, 70)))
    assert result["sham"] is True and result["score"] is None
    assert result["verdict"] == "none"
    assert result["ratio"] == pytest.approx(1.0, abs=0.05)
    assert result["n_pre_windows"] == 30 and result["n_post_windows"] >= 5
    assert result["ratio_ci95"][0] < 1.0 < result["ratio_ci95"][1]


def test_a_sham_with_a_lasting_drop_near_the_floor_passes_like_a_real_trial():
    # rest drifting down by itself: the sham says so, which is the point of having shams
    rng = np.random.default_rng(2)
    result = _judge(_windows(_levels(rng, 4.0, 1.8, 72)))
    assert result["verdict"] == "true", result["verdict_reason"]
    assert result["ratio"] == pytest.approx(0.45, abs=0.05)
    assert result["persistence_ratio"] == pytest.approx(0.45, abs=0.05)


def test_a_sham_cut_short_by_a_contraction_has_no_persistence():
    rng = np.random.default_rng(3)
    levels = _levels(rng, 4.0, 2.0, 72)
    windows = _windows(levels)
    windows[120:] = [SessionWindow(w.start_s, w.end_s, 30.0, False, False) for w in windows[120:]]
    result = _judge(windows)
    assert result["verdict"] == "not_measurable"
    assert "persistence" in result["verdict_reason"] and "later contraction" in result["verdict_reason"]


def test_a_sham_without_rest_before_it_is_not_measurable():
    rng = np.random.default_rng(4)
    result = _judge(_windows(_levels(rng, 4.0, 4.0, 0)), onset_s=5.0)
    assert result["verdict"] == "not_measurable"
    assert "fewer than 10" in result["verdict_reason"]
