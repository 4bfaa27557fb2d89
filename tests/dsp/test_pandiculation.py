import numpy as np
import pytest

from biofeed.dsp.analyze import analyze_emg
from biofeed.dsp.pandiculation import (
    PandiculationTracker,
    RestWindow,
    TrialCriteria,
    Verdict,
    bootstrap_ratio_ci,
    score_trial,
)
from biofeed.dsp.phases import Contraction
from tests.dsp.synthetic_emg import ramp_envelope, synthetic_emg

FS = 1000.0
NOISE_UV = 1.5
CONTRACTION = [(60, 4), (60.3, 40), (63.5, 40)]  # 60 s of 4 uV rest, then a 40 uV contraction held 3 s


def only_trial(points, duration_s, seed=1, **kwargs):
    x = synthetic_emg(ramp_envelope(FS, points, duration_s), FS, seed, noise_floor_uv=NOISE_UV, offset_uv=300)
    (channel,) = analyze_emg(x, FS, noise_floor_uv=NOISE_UV, **kwargs).channels
    (trial,) = channel.contractions
    return trial


def test_true_relaxation():
    # slow 5 s release down to 1 uV, which lasts two minutes
    trial = only_trial([(0, 4), *CONTRACTION, (68.5, 1), (200, 1)], 200)
    assert trial.verdict is Verdict.TRUE, trial.verdict_reason
    assert trial.pre_rest_uv == pytest.approx(4 * 0.97, rel=0.08)
    assert trial.post_rest_uv == pytest.approx(1 * 0.97, rel=0.15)
    low, high = trial.ratio_ci95
    assert low <= trial.ratio <= high < 0.8
    assert trial.persistence_ratio <= 0.9
    assert trial.contraction.release_duration_s == pytest.approx(4.0, abs=0.6)
    assert trial.score >= 90
    assert trial.components.depth_absolute == 10 and trial.components.persistence == 10
    assert trial.n_pre_windows == 30 and trial.n_post_windows >= 25 and trial.n_persistence_windows >= 50


def test_abrupt_release_with_rebracing_scores_low():
    # drop to 30 % in 0.1 s, brace again to 70 %, drop to the same rest as before
    points = [(0, 4), *CONTRACTION, (63.6, 12), (64.3, 12), (64.6, 28), (65.3, 28), (65.5, 4), (200, 4)]
    trial = only_trial(points, 200)
    assert trial.verdict is Verdict.NONE
    assert trial.contraction.rebursts >= 1
    assert trial.contraction.release_duration_s < 2.5
    assert trial.ratio == pytest.approx(1.0, abs=0.1)
    assert trial.score < 40
    assert trial.components.release_no_rebursts == 0 and trial.components.depth == 0


def test_already_relaxed_is_not_measurable():
    trial = only_trial([(0, 0.5), (60, 0.5), (60.3, 40), (63.5, 40), (68.5, 0.4), (200, 0.4)], 200)
    assert trial.verdict is Verdict.NOT_MEASURABLE
    assert "already relaxed" in trial.verdict_reason


def test_relaxation_that_fades_is_transient():
    # Tension creeps back over 30 s, slowly enough for the rest statistics to follow it (a faster
    # return would be detected as a contraction and end the measurement).
    points = [(0, 4), *CONTRACTION, (68.5, 1.5), (95, 1.5), (125, 4), (200, 4)]
    trial = only_trial(points, 200)
    assert trial.ratio < 0.6 and trial.persistence_ratio > 0.9
    assert trial.verdict is Verdict.TRANSIENT


def test_persistence_never_reached_is_not_measurable():
    trial = only_trial([(0, 4), *CONTRACTION, (68.5, 1), (115, 1)], 115)
    assert trial.ratio < 0.5 and trial.persistence_ratio is None
    assert trial.verdict is Verdict.NOT_MEASURABLE
    assert "persistence" in trial.verdict_reason
    assert trial.components.persistence == 0


def test_to_json_keys_and_times():
    trial = only_trial([(0, 4), *CONTRACTION, (68.5, 1), (200, 1)], 200)
    data = trial.to_json()
    for key in [
        "onset_s",
        "offset_s",
        "peak_uv",
        "release_start_s",
        "release_end_s",
        "release_duration_s",
        "monotonic_fraction",
        "rebursts",
        "pre_rest_uv",
        "post_rest_uv",
        "ratio",
        "ratio_ci95",
        "persistence_ratio",
        "verdict",
        "score",
        "score_components",
    ]:
        assert key in data
    assert data["verdict"] == "true"
    assert data["onset_s"] == pytest.approx(60.0, abs=0.05)
    assert data["score"] == pytest.approx(
        sum(data["score_components"][k] for k in ("contraction", "release", "depth", "persistence"))
    )


def contraction(**overrides):
    fields = {
        "channel_index": 0,
        "sample_rate_hz": 1000.0,
        "onset_index": 10_000,
        "offset_index": 20_000,
        "peak_index": 12_000,
        "peak_uv": 40.0,
        "baseline_uv": 4.0,
        "baseline_sd_uv": 0.4,
        "plateau_start_index": 11_000,
        "release_start_index": 13_000,
        "release_end_index": 17_000,
        "monotonic_fraction": 0.9,
        "rebursts": 0,
    }
    fields.update(overrides)
    return Contraction(**fields)


CRITERIA = TrialCriteria()


def test_score_components_follow_science_section_7():
    full = score_trial(contraction(), None, 0.6, 1.0, 0.8, 1.5, CRITERIA)
    assert full.total == 100
    # release 2 s: half the duration credit; monotonic 0.65: half; one re-burst: none
    half = score_trial(
        contraction(release_end_index=15_000, monotonic_fraction=0.65, rebursts=1), None, 0.6, 1.0, 0.8, 1.5, CRITERIA
    )
    assert (half.release_duration, half.release_monotonic, half.release_no_rebursts) == pytest.approx((10, 5, 0))
    # ratio 0.85: half the ratio credit; post 3 uV above max(2, 2.25): no absolute credit
    depth = score_trial(contraction(), None, 0.85, 3.0, None, 1.5, CRITERIA)
    assert (depth.depth_ratio, depth.depth_absolute, depth.persistence) == pytest.approx((10, 0, 0))
    # hold 0.5 s and peak at 80 % of the reference: 20 x 0.5 x 0.4
    adequacy = score_trial(contraction(release_start_index=11_500), 0.8, None, None, None, 1.5, CRITERIA)
    assert adequacy.contraction == pytest.approx(4.0)
    assert score_trial(contraction(), 0.35, None, None, None, 1.5, CRITERIA).contraction == 20
    assert score_trial(contraction(), None, None, None, 0.95, 1.5, CRITERIA).persistence == pytest.approx(5)


def test_bootstrap_ci_is_seeded_and_brackets_the_ratio():
    rng = np.random.default_rng(0)
    pre, post = rng.normal(4.0, 0.3, 30), rng.normal(2.0, 0.3, 30)
    ci = bootstrap_ratio_ci(pre, post, 2000, np.random.default_rng(7))
    assert ci == bootstrap_ratio_ci(pre, post, 2000, np.random.default_rng(7))
    assert ci[0] < np.median(post) / np.median(pre) < ci[1] and ci[1] - ci[0] < 0.2


def reference_ratio_ci(pre, post, n_bootstrap, rng):
    """The bootstrap as first written: ``np.median`` of each resample."""
    pre_medians = np.median(pre[rng.integers(0, pre.shape[0], size=(n_bootstrap, pre.shape[0]))], axis=1)
    post_medians = np.median(post[rng.integers(0, post.shape[0], size=(n_bootstrap, post.shape[0]))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(pre_medians > 0, post_medians / pre_medians, np.inf)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


@pytest.mark.parametrize(
    ("pre", "post"),
    [
        (np.random.default_rng(1).normal(4.0, 0.3, 30), np.random.default_rng(2).normal(2.0, 0.3, 29)),  # even, odd
        (np.random.default_rng(3).normal(4.0, 0.3, 11), np.random.default_rng(4).normal(2.0, 0.3, 6)),  # odd, even
        (np.round(np.random.default_rng(5).normal(4.0, 1.0, 20)), np.array([0.0, -0.0, 0.0, 1.0, 2.0])),  # ties, zeros
        (np.array([0.0, 0.0, 0.0, 1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0, 5.0])),  # pre medians of 0: inf
        (np.array([4.0, np.nan, 4.5, 3.5, 4.2]), np.array([2.0, 2.5, 1.5, 2.2, 1.9])),  # a NaN window
    ],
)
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # np.percentile, the NaN case
def test_bootstrap_ci_equals_medians_of_the_resamples_to_the_bit(pre, post):
    ci = bootstrap_ratio_ci(pre, post, 2000, np.random.default_rng([3, 1, 4]))
    expected = reference_ratio_ci(pre, post, 2000, np.random.default_rng([3, 1, 4]))
    assert np.array(ci).tobytes() == np.array(expected).tobytes()


def windows_after(c, values, usable=True, start_s=0.0):
    """1 s rest windows starting start_s after the release end."""
    first = c.release_end_index + round(start_s * 1000)
    return [RestWindow(0, first + 1000 * k, first + 1000 * (k + 1), v, True, usable) for k, v in enumerate(values)]


def test_tracker_rejects_when_the_gate_refuses_the_post_rest():
    c = contraction()
    tracker = PandiculationTracker([1.5])
    tracker.start(c, np.full(30, 4.0))
    out = []
    for w in windows_after(c, [1.0] * 10, start_s=0) + windows_after(c, [1.0] * 30, usable=False, start_s=10):
        out += tracker.add_window(w)
    out += tracker.finish()
    assert out[-1].verdict is Verdict.REJECTED and "gate" in out[-1].verdict_reason


def test_tracker_rejects_a_trial_with_a_signal_fault():
    tracker = PandiculationTracker([1.5])
    tracker.start(contraction(), np.full(30, 4.0), fault="flat")
    (trial,) = tracker.finish()
    assert trial.verdict is Verdict.REJECTED and "flat" in trial.verdict_reason


def test_tracker_gives_a_provisional_snapshot_then_a_final_trial():
    c = contraction()
    tracker = PandiculationTracker([1.5])
    tracker.start(c, np.full(30, 4.0))
    out = []
    for w in windows_after(c, [1.0] * 130):
        out += tracker.add_window(w)
    assert [t.final for t in out] == [False, True]
    assert out[0].verdict is Verdict.NOT_MEASURABLE and "not yet reached" in out[0].verdict_reason
    assert out[1].verdict is Verdict.TRUE


def test_a_later_contraction_closes_the_trial():
    c = contraction()
    tracker = PandiculationTracker([1.5])
    tracker.start(c, np.full(30, 4.0))
    out = []
    for w in windows_after(c, [1.0] * 20):
        out += tracker.add_window(w)
    later = c.release_end_index + 25_000
    out += tracker.add_window(RestWindow(0, later, later + 1000, 30.0, False, False))
    (trial,) = out
    assert trial.final and trial.n_post_windows == 10 and trial.ratio is not None
    assert trial.verdict is Verdict.NOT_MEASURABLE and "later contraction" in trial.verdict_reason


def test_post_rest_windows_in_another_posture_count_as_refused():
    c = contraction()
    tracker = PandiculationTracker([1.5])
    tracker.start(c, np.full(30, 4.0), posture_id=1, posture="lying")
    first = c.release_end_index + 10_000
    out = []
    for k in range(130):  # still and rest, but sitting (posture 2) from 10 s on
        start = c.release_end_index + 1000 * k
        out += tracker.add_window(RestWindow(0, start, start + 1000, 1.0, True, True, 1.0, 2 if start >= first else 1))
    trial = out[-1]
    assert trial.verdict is Verdict.REJECTED and "gate" in trial.verdict_reason
    assert trial.posture == "lying" and trial.to_json()["posture"] == "lying"


def test_a_movement_closes_the_open_trials_without_a_trial_of_its_own():
    c = contraction()
    tracker = PandiculationTracker([1.5])
    tracker.start(c, np.full(30, 4.0))
    out = []
    for w in windows_after(c, [1.0] * 45):
        out += tracker.add_window(w)
    movement = contraction(onset_index=c.release_end_index + 50_000, offset_index=c.release_end_index + 53_000)
    out += tracker.skip(movement)
    assert [t.final for t in out] == [False, True]
    assert out[-1].verdict is Verdict.NOT_MEASURABLE and "a movement at 67.0 s" in out[-1].verdict_reason
    assert tracker.finish() == []


def test_bad_criteria_are_refused():
    with pytest.raises(ValueError, match="post_rest_s"):
        TrialCriteria(post_rest_s=(40.0, 10.0))
    with pytest.raises(ValueError, match="ratio_range"):
        TrialCriteria(ratio_range=(0.7, 1.0))
