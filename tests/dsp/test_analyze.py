import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeed.blocks import Block
from biofeed.dsp.analyze import MOTION_MARGIN_S, EmgAnalyzer, analyze_emg
from biofeed.dsp.imu.motion import MotionInterval
from biofeed.dsp.pandiculation import Verdict
from biofeed.dsp.quality import FaultKind
from biofeed.dsp.tension import NO_POSTURE
from tests.dsp.scripted_postures import ScriptedTimeline
from tests.dsp.synthetic_emg import emg_info, ramp_envelope, random_cuts, split_blocks, synthetic_emg

FS = 1000.0
TRUE_RELAXATION = [(0, 4), (60, 4), (60.3, 40), (63.5, 40), (68.5, 1), (200, 1)]


def two_channel_session(duration_s=200.0, seed=1):
    """Left side relaxes truly; right side contracts and returns to the same rest (verdict none)."""
    left = ramp_envelope(FS, TRUE_RELAXATION, duration_s)
    right = ramp_envelope(FS, [(0, 3), (60, 3), (60.3, 30), (62, 30), (62.5, 3), (200, 3)], duration_s)
    return synthetic_emg(np.vstack([left, right]), FS, seed, offset_uv=500.0)


SESSION = two_channel_session()


def test_offline_analysis_of_a_session():
    analysis = analyze_emg(SESSION, FS, ["es_left", "es_right"], noise_floor_uv=1.5)
    left, right = analysis.channels
    assert (left.name, left.fs_hz, left.noise_floor_uv, left.noise_floor_source) == ("es_left", FS, 1.5, "given")
    (left_trial,) = left.contractions
    (right_trial,) = right.contractions
    assert left_trial.verdict is Verdict.TRUE
    assert right_trial.verdict is Verdict.NONE
    assert left.set_point_uv == pytest.approx(0.97, rel=0.15)
    assert right.set_point_uv == pytest.approx(3 * 0.97, rel=0.1)
    assert (analysis.high_pass_hz, analysis.low_pass_hz) == (30.0, 450.0)
    assert analysis.mains is not None and not analysis.mains.applied
    assert analysis.faults == () and analysis.warnings == ()
    data = json.loads(json.dumps(analysis.to_json()))
    assert data["channels"][0]["contractions"][0]["verdict"] == "true"
    assert data["channels"][1]["set_point_uv"] == pytest.approx(right.set_point_uv)


@settings(max_examples=4, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_streaming_in_random_blocks_equals_offline(seed):
    offline = analyze_emg(SESSION, FS, noise_floor_uv=1.5, rails_uv=None)
    rng = np.random.default_rng(seed)
    cuts = sorted({int(c) for c in rng.integers(1, SESSION.shape[1], size=int(rng.integers(50, 2000)))})
    analyzer = EmgAnalyzer(FS, 1.5)
    updates = [analyzer.process(b) for b in split_blocks(emg_info(FS, 2), SESSION, cuts)]
    updates.append(analyzer.finish())
    trials = sorted((t for u in updates for t in u.trials if t.final), key=lambda t: t.channel_index)
    assert [t.to_json() for t in trials] == [t.to_json() for c in offline.channels for t in c.contractions]
    events = [e for u in updates for e in u.events]
    for c in range(2):  # each channel's events in the same order (channels interleave by block)
        assert [e for e in events if e.channel_index == c] == [e for e in offline.events if e.channel_index == c]
    for c in range(2):
        assert analyzer.set_point_uv(c) == offline.channels[c].set_point_uv


def test_filtering_cleaning_and_analysing_on_different_blocks_equals_offline():
    """Live: every block is filtered; the ECG stage (clean) and the later stages (analyze) on blocks of their own."""
    offline = analyze_emg(SESSION, FS, noise_floor_uv=1.5, rails_uv=None)
    rng = np.random.default_rng(3)
    analyzer = EmgAnalyzer(FS, 1.5)
    updates = []
    for block in split_blocks(emg_info(FS, 2), SESSION, list(range(40, SESSION.shape[1], 40))):
        updates.append(analyzer.filter(block))
        step = int(rng.integers(6))
        if step == 0:
            updates.append(analyzer.clean())
        elif step == 1:
            updates.append(analyzer.analyze(clean=False))  # only what clean() took through the ECG stage
    updates.append(analyzer.finish())
    trials = sorted((t for u in updates for t in u.trials if t.final), key=lambda t: t.channel_index)
    assert trials
    assert [t.to_json() for t in trials] == [t.to_json() for c in offline.channels for t in c.contractions]
    events = [e for u in updates for e in u.events]
    for c in range(2):
        assert [e for e in events if e.channel_index == c] == [e for e in offline.events if e.channel_index == c]


def test_nan_stretch_is_flagged_and_skipped():
    data = SESSION.copy()
    data[:, 150_000:150_500] = np.nan  # in the persistence window of both channels
    analysis = analyze_emg(data, FS, noise_floor_uv=1.5)
    faults = [f for f in analysis.faults if f.kind is FaultKind.NON_FINITE]
    assert [(f.channel_index, f.start_index, f.end_index) for f in faults] == [
        (0, 150_000, 150_500),
        (1, 150_000, 150_500),
    ]
    left_trial = analysis.channels[0].contractions[0]
    assert left_trial.verdict is Verdict.TRUE  # a few windows lost, none corrupted


def test_lead_off_during_the_contraction_rejects_the_trial():
    data = SESSION.copy()
    data[0, 62_000:63_000] = data[0, 62_000]  # electrode lifts: 1 s flat line
    analysis = analyze_emg(data, FS, noise_floor_uv=1.5)
    trial = analysis.channels[0].contractions[0]
    assert trial.verdict is Verdict.REJECTED and "flat" in trial.verdict_reason
    assert analysis.channels[1].contractions[0].verdict is Verdict.NONE


def test_clipped_rest_is_kept_out_of_the_set_point():
    data = SESSION.copy()
    rng = np.random.default_rng(5)
    spikes = rng.integers(5_000, 55_000, 40)
    data[1, spikes] = 2000.0  # the rail, hit by artifacts in the pre-rest
    data[1, spikes + 1] = 2000.0
    analysis = analyze_emg(data, FS, noise_floor_uv=1.5)
    assert any(f.kind is FaultKind.CLIPPED for f in analysis.faults)
    trial = analysis.channels[1].contractions[0]
    assert trial.n_pre_windows < 30  # windows with clipped samples are refused


def test_noise_floor_sources():
    quiet = synthetic_emg(np.full(60_000, 1.0), FS, seed=2)
    from_record = analyze_emg(quiet, FS)
    # the lower percentiles of 1 s RMS of 1 uV EMG over a 1.5 uV floor: about hypot(0.97, 1.5)
    assert from_record.channels[0].noise_floor_source == "record_percentile"
    assert from_record.channels[0].noise_floor_uv == pytest.approx(np.hypot(0.97, 1.5), rel=0.1)
    calibrated = analyze_emg(quiet, FS, calibration_s=(0.0, 40.0))
    assert calibrated.channels[0].noise_floor_source == "calibration_rest"
    fast = synthetic_emg(np.full(60_000, 3.0), 2000.0, seed=3)
    from_band = analyze_emg(fast, 2000.0)
    assert from_band.channels[0].noise_floor_source == "high_band"
    assert 1.45 < from_band.channels[0].noise_floor_uv < 1.8  # an upper bound (see test_noise)


def test_bad_input_is_a_clear_value_error():
    with pytest.raises(ValueError, match="cannot carry an EMG band"):
        analyze_emg(np.zeros((1, 10_000)), 100.0, noise_floor_uv=1.0)
    with pytest.raises(ValueError, match="channel names"):
        analyze_emg(np.zeros((2, 10_000)), FS, ["only_one"], noise_floor_uv=1.0)
    with pytest.raises(ValueError, match="shape"):
        analyze_emg(np.zeros((2, 3, 4)), FS, noise_floor_uv=1.0)
    with pytest.raises(ValueError, match="mains"):
        EmgAnalyzer(FS, 1.0, mains="on")
    with pytest.raises(ValueError, match="ecg"):
        EmgAnalyzer(FS, 1.0, ecg="yes")


def test_real_250_hz_record_through_the_whole_chain():
    path = Path("/work/shared/data/real/emggo-ta-250hz/sample_ta_250hz.csv.gz")
    data = np.loadtxt(path, delimiter=",", skiprows=1)[:, 1]
    analysis = analyze_emg(data, 250.0, ["ta"])
    assert analysis.low_pass_hz == 112.5 and len(analysis.warnings) == 1
    # 56 bursts; measured 57 through the whole chain (the record carries a heartbeat and 50 Hz hum,
    # both found: ECG subtraction switches on in stretches, a 50 Hz notch at 13.5 dB)
    assert 53 <= len(analysis.channels[0].contractions) <= 60
    assert analysis.mains.notched_hz == (50.0,)


# Standing rest (4 uV) with a bend at 30 s, lying down at 60 s (2.5 uV), a pandiculation lying at 120 s
# that relaxes to 1 uV (its arching is movement, but not gross), standing up at 310 s.
MOVEMENTS = [
    MotionInterval(29.5, 33.0, 42.0, 0.04),  # the bend
    MotionInterval(60.0, 63.0, 45.0, 0.04),  # lying down
    MotionInterval(120.2, 120.6, 11.0, 0.06),  # the pandiculation's arching
    MotionInterval(310.0, 313.0, 44.0, 0.04),  # standing up
]
IMU_SPANS = [(0.0, 29.5, 0), (33.0, 36.0, 0), (68.0, 120.2, 1), (121.0, 310.0, 1), (318.0, 340.0, 0)]
IMU_SESSION = synthetic_emg(
    ramp_envelope(
        FS,
        [
            *[(0, 4), (30, 4), (30.5, 25), (31.5, 0.5), (32.3, 0.5), (32.6, 30), (33.5, 4), (60, 4), (61.5, 20)],
            *[(63, 2.5), (120, 2.5), (120.3, 40), (123.5, 40), (128.5, 1), (310, 1), (311.5, 20), (313, 4), (340, 4)],
        ],
        340,
    ),
    FS,
    seed=8,
)


def run_with_imu(timeline, cuts=()):
    analyzer = EmgAnalyzer(FS, 1.5, gate=timeline, posture=None)
    blocks = split_blocks(emg_info(FS), IMU_SESSION, list(cuts))
    updates = []
    for block in blocks:
        if timeline.settled_s != np.inf:  # an IMU lagging the EMG by up to 4 s
            lag_s = float(np.random.default_rng(block.first_index).uniform(0, 4))
            timeline.settled_s = max(timeline.settled_s, block.end_index / FS - lag_s)
        updates.append(analyzer.process(block))
    timeline.settled_s = np.inf
    updates.append(analyzer.finish())
    return analyzer, updates


def test_contractions_near_gross_movement_are_artifacts_and_set_points_are_per_posture():
    timeline = ScriptedTimeline(IMU_SPANS, MOVEMENTS)
    analyzer, updates = run_with_imu(timeline)
    artifacts = [a for u in updates for a in u.artifacts]
    trials = [t for u in updates for t in u.trials if t.final]
    assert [round(a.movement.start_s) for a in artifacts] == [30, 30, 60, 310]  # bend down and up, lying, standing
    assert all(a.movement.gross and "gross movement" in a.reason() for a in artifacts)
    (trial,) = trials  # the pandiculation, though it arched the back
    assert trial.contraction.onset_s == pytest.approx(120.0, abs=0.1)
    assert trial.verdict is Verdict.TRUE and trial.posture == "lying"
    assert trial.pre_rest_uv == pytest.approx(2.5, rel=0.15)  # lying's set point, not standing's
    windows = [w for u in updates for w in u.windows]
    by_end = {round(w.end_index / FS): w for w in windows}
    assert by_end[25].posture_id == 0 and by_end[25].set_point_uv == pytest.approx(4.0, rel=0.1)
    assert by_end[65].posture_id == 0 and not by_end[65].usable  # not yet known to be lying: standing's still
    assert by_end[100].posture_id == 1 and by_end[100].set_point_uv == pytest.approx(2.5, rel=0.15)
    assert by_end[320].posture_id == 0 and by_end[320].set_point_uv == pytest.approx(4.0, rel=0.1)  # recalled
    assert analyzer.set_points_by_posture(0)[1] == pytest.approx(1.0, rel=0.2)
    assert analyzer.posture_label(analyzer.posture_id(0)) == "standing"
    assert not any(w.usable for w in windows if 30 <= w.end_index / FS <= 33)  # the bend
    json.dumps([a.to_json() for a in artifacts])
    assert any(start <= 30.0 - MOTION_MARGIN_S + 0.6 for start, _ in timeline.queries)


@settings(max_examples=3, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_with_an_imu_any_chunking_and_lag_gives_the_same_result(seed):
    _, whole = run_with_imu(ScriptedTimeline(IMU_SPANS, MOVEMENTS))
    lagging = ScriptedTimeline(IMU_SPANS, MOVEMENTS)
    lagging.settled_s = 0.0
    _, chunked = run_with_imu(lagging, random_cuts(IMU_SESSION.shape[1], 300, np.random.default_rng(seed)))
    for field in ("trials", "artifacts", "windows"):
        assert [x for u in chunked for x in getattr(u, field)] == [x for u in whole for x in getattr(u, field)]


def test_without_an_imu_windows_have_no_posture():
    analyzer = EmgAnalyzer(FS, 1.5)
    update = analyzer.process(Block(emg_info(FS), IMU_SESSION[:, :20000], 0))
    assert update.windows and all(w.posture_id == NO_POSTURE for w in update.windows)
    assert analyzer.posture_label(NO_POSTURE) is None and update.artifacts == []
