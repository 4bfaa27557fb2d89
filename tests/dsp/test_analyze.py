import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeed.dsp.analyze import EmgAnalyzer, analyze_emg
from biofeed.dsp.pandiculation import Verdict
from biofeed.dsp.quality import FaultKind
from tests.dsp.synthetic_emg import emg_info, ramp_envelope, split_blocks, synthetic_emg

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
