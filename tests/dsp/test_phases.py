from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeed.blocks import Block
from biofeed.dsp.filters import BandPassFilter
from biofeed.dsp.phases import Phase, PhaseDetector, PhaseSettings, count_rebursts
from tests.dsp.scripted_postures import ScriptedTimeline
from tests.dsp.synthetic_emg import emg_info, ramp_envelope, random_cuts, split_blocks, synthetic_emg

REAL = Path("/work/shared/data/real")


def band_passed(x, fs):
    return BandPassFilter(fs).process(Block(emg_info(fs, x.shape[0]), x, 0))


def contractions(events):
    return [e.contraction for e in events if e.contraction is not None]


def bursts_at_10_db(seed, fs=2000.0, duration_s=60.0, noise_uv=1.5):
    """Rest of pure sensor noise and step bursts whose RMS is 10 dB above it; returns (signal, truth)."""
    rng = np.random.default_rng(seed)
    activation = np.zeros(round(duration_s * fs))
    truth = []
    t = 8.0
    while t < duration_s - 5:
        start = round((t + rng.uniform(0, 0.01)) * fs)
        end = start + round(rng.uniform(1.0, 3.0) * fs)
        activation[start:end] = noise_uv * 10 ** (10 / 20)
        truth.append((start / fs, end / fs))
        t = end / fs + rng.uniform(3.0, 5.0)
    return synthetic_emg(activation, fs, seed, noise_floor_uv=noise_uv), truth


def test_onset_and_offset_within_25_ms_at_10_db_snr():
    fs = 2000.0
    onset_errors, offset_errors = [], []
    for seed in range(10):
        x, truth = bursts_at_10_db(seed, fs)
        found = contractions(PhaseDetector(fs).process(band_passed(x, fs)))
        assert len(found) == len(truth)
        onset_errors += [c.onset_s - on for c, (on, _) in zip(found, truth, strict=True)]
        offset_errors += [c.offset_s - off for c, (_, off) in zip(found, truth, strict=True)]
    onset_ms, offset_ms = 1000 * np.abs(onset_errors), 1000 * np.abs(offset_errors)
    # Measured over these 81 bursts: onset +5.9 +/- 5.6 ms, offset +1.3 +/- 9.2 ms; one onset (-31.5 ms,
    # dated back into a rest fluctuation) and one offset (+66.5 ms) fall outside 25 ms.
    assert len(onset_ms) == 81
    assert np.mean(onset_ms <= 25) >= 0.97 and onset_ms.max() <= 40
    assert np.mean(offset_ms <= 25) >= 0.97 and offset_ms.max() <= 80
    assert np.median(onset_ms) <= 10 and np.median(offset_ms) <= 10
    # Bonato (SCIENCE.md 5): bias < 10 ms, SD < 15 ms
    assert abs(np.mean(onset_errors)) < 0.010 and np.std(onset_errors) < 0.015
    assert abs(np.mean(offset_errors)) < 0.010 and np.std(offset_errors) < 0.015


def test_slow_release_is_measured():
    fs = 1000.0
    # rest 2 uV, contraction 40 uV held 3 s, linear release over 5 s back to 2 uV
    envelope = ramp_envelope(fs, [(0, 2), (20, 2), (20.2, 40), (23.2, 40), (28.2, 2), (40, 2)], 40)
    events = PhaseDetector(fs).process(band_passed(synthetic_emg(envelope, fs, seed=2), fs))
    (c,) = contractions(events)
    assert c.peak_uv == pytest.approx(np.hypot(40 * 0.97, 1.5), rel=0.08)
    # By the definition, 90 % -> 10 % of a linear 5 s ramp lasts 4 s.
    assert c.release_duration_s == pytest.approx(4.0, abs=0.5)
    assert c.release_start_s == pytest.approx(23.7, abs=0.5)  # 90 % of the span, 0.5 s into the ramp
    assert c.monotonic_fraction >= 0.8
    assert c.rebursts == 0
    assert c.hold_s == pytest.approx(3.5, abs=0.5)  # from about 20.2 s to the 90 % crossing
    assert c.onset_s == pytest.approx(20.0, abs=0.1)
    phases = [e.phase for e in events]
    assert phases[:2] == [Phase.REST, Phase.CONTRACTION] and phases[-1] is Phase.REST
    assert Phase.RELEASE in phases
    times = [e.sample_index for e in events]
    assert times == sorted(times)


def test_rebracing_during_release_is_a_reburst():
    fs = 1000.0
    points = [(0, 2), (20, 2), (20.2, 40), (23, 40), (23.1, 12), (23.8, 12), (24.1, 30), (24.8, 30), (25.0, 2), (35, 2)]
    events = PhaseDetector(fs).process(band_passed(synthetic_emg(ramp_envelope(fs, points, 35), fs, seed=3), fs))
    (c,) = contractions(events)
    assert c.rebursts >= 1


def test_count_rebursts():
    steps = np.array([10, 8, 6, 4, 9, 9, 3, 2, 7, 1], dtype=float)
    assert count_rebursts(steps, 3.0) == 2  # 4 -> 9 and 2 -> 7
    assert count_rebursts(steps, 6.0) == 0
    assert count_rebursts(np.linspace(10, 0, 20), 0.5) == 0


def test_rest_statistics_follow_a_quieter_rest():
    fs = 1000.0
    envelope = ramp_envelope(fs, [(0, 6), (5, 6), (5.01, 1), (30, 1)], 30)
    detector = PhaseDetector(fs)
    detector.process(band_passed(synthetic_emg(envelope, fs, seed=4), fs))
    mean, sd = detector.rest_statistics_uv(0)
    assert mean == pytest.approx(np.hypot(0.97, 1.5), rel=0.1)
    assert 0 < sd < 0.3 * mean


def test_gap_abandons_a_contraction_in_progress():
    fs = 1000.0
    envelope = ramp_envelope(fs, [(0, 2), (10, 2), (10.1, 40), (20, 40)], 20)
    y = band_passed(synthetic_emg(envelope, fs, seed=5), fs)
    detector = PhaseDetector(fs)
    before = detector.process(Block(y.info, y.data[:, :15000], 0))
    assert detector.phase(0) is Phase.CONTRACTION
    after = detector.process(Block(y.info, y.data[:, 16000:], 16000, gap_before=1000))
    assert after[0].phase is Phase.REST and after[0].contraction is None and after[0].sample_index == 16000
    assert not contractions(before + after)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="hysteresis"):
        PhaseSettings(onset_sd=2.0, offset_sd=3.0)
    with pytest.raises(ValueError, match="release_end_fraction"):
        PhaseSettings(release_start_fraction=0.1, release_end_fraction=0.9)
    with pytest.raises(ValueError, match="onset_hold_s"):
        PhaseSettings(onset_hold_s=0.0)


FS = 1000.0
CHUNK_SIGNAL = band_passed(
    synthetic_emg(
        ramp_envelope(
            FS,
            [
                (0, 3),
                (7, 3),
                (7.05, 30),
                (9, 30),
                (11, 3),
                (14, 3),
                (14.1, 25),
                (14.6, 8),
                (15, 20),
                (15.3, 3),
                (22, 3),
            ],
            22,
        ),
        FS,
        seed=6,
    ),
    FS,
).data
CHUNK_SETTINGS = PhaseSettings(calibration_s=3.0, baseline_s=2.0, settle_s=0.5)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(1, CHUNK_SIGNAL.shape[1] - 1), max_size=60, unique=True), st.integers(0, 7))
def test_chunked_equals_whole(cuts, first_index):
    info = emg_info(FS)
    whole = PhaseDetector(FS, CHUNK_SETTINGS).process(Block(info, CHUNK_SIGNAL, first_index))
    detector = PhaseDetector(FS, CHUNK_SETTINGS)
    chunked = [e for b in split_blocks(info, CHUNK_SIGNAL, sorted(cuts), first_index) for e in detector.process(b)]
    assert len(contractions(whole)) == 2
    assert chunked == whole


def load_emggo():
    data = np.loadtxt(REAL / "emggo-ta-250hz" / "sample_ta_250hz.csv.gz", delimiter=",", skiprows=1)
    return data[:, 1][None, :]


def test_real_tibialis_anterior_bursts_at_250_hz():
    # emgGO's tutorial counts 56 ballistic bursts in this record; the band adapts to 30-112.5 Hz.
    fs = 250.0
    found = contractions(PhaseDetector(fs).process(band_passed(load_emggo(), fs)))
    assert 53 <= len(found) <= 59  # measured: 56
    durations = np.array([c.offset_s - c.onset_s for c in found])
    assert (durations > 0.5).all() and (durations < 3.0).all()


def bitalino_uv(name):
    counts = np.loadtxt(REAL / "biosppy-emg" / name)
    return ((counts / 4096 - 0.5) * 3.3 / 1009 * 1e6)[None, :]


def test_real_bitalino_rest_gives_few_false_alarms():
    # 100 s of near-rest at a commodity 10-bit board; measured: 5 detections, 3 of them < 0.2 s twitches.
    fs = 1000.0
    found = contractions(PhaseDetector(fs).process(band_passed(bitalino_uv("emg.txt"), fs)))
    assert len(found) <= 6


def test_real_bitalino_bursts_are_found():
    fs = 1000.0
    found = contractions(PhaseDetector(fs).process(band_passed(bitalino_uv("emg_1.txt"), fs)))
    # the two strong bursts (1 s RMS about 70-90 uV at 15-17 s, 25-30 uV at 25-27 s) are among them
    onsets = [c.onset_s for c in found]
    assert any(14 < t < 16 for t in onsets) and any(22 < t < 27 for t in onsets)
    assert len(found) <= 8


# A standing rest (4 uV), a bend whose full flexion is electrically silent for 9 s, lying down (2 uV),
# standing up again: the IMU's postures (0 standing, 1 lying; none while moving or bent) and the sEMG.
POSTURE_FS = 1000.0
POSTURE_SPANS = [(0.0, 20.0, 0), (32.0, 40.0, 0), (44.0, 70.0, 1), (72.0, 90.0, 0)]
POSTURE_SIGNAL = band_passed(
    synthetic_emg(
        ramp_envelope(
            POSTURE_FS,
            [
                *[(0, 4), (20, 4), (20.5, 30), (21.5, 0.5), (30.5, 0.5), (31, 40), (32, 4), (40, 4), (42, 20)],
                *[(44, 2), (70, 2), (71, 20), (72, 4), (90, 4)],
            ],
            90,
        ),
        POSTURE_FS,
        seed=3,
    ),
    POSTURE_FS,
)


def onsets_s(events):
    return [e.time_s for e in events if e.phase is Phase.CONTRACTION]


def test_rest_statistics_are_kept_per_posture_and_never_learnt_while_moving():
    detector = PhaseDetector(POSTURE_FS, postures=ScriptedTimeline(POSTURE_SPANS))
    events = detector.process(POSTURE_SIGNAL) + detector.advance(final=True)
    # Only the movements' bursts; standing after the silent bend and after lying is rest.
    assert all(20 < t < 21 or 30 < t < 32 or 40 < t < 42 or 70 < t < 71 for t in onsets_s(events))
    assert len(onsets_s(events)) == 4
    calibrating = [e.time_s for e in events if e.phase is Phase.CALIBRATING]
    assert calibrating == [pytest.approx(44.0, abs=0.05)]  # lying is new: a fresh calibration ...
    rest = [e.time_s for e in events if e.phase is Phase.REST]
    assert any(t == pytest.approx(49.0, abs=0.05) for t in rest)  # ... of calibration_s
    assert events[-1].phase is Phase.REST and events[-1].time_s < 72.5  # standing again ends the burst
    assert detector.posture(0) == 0  # standing recalled ...
    mean, _ = detector.rest_statistics_uv(0)
    assert mean == pytest.approx(np.hypot(4.0, 1.5), rel=0.1)  # ... with its own statistics

    blind = PhaseDetector(POSTURE_FS)  # no IMU: the silence becomes the rest, standing a contraction
    blind_events = blind.process(POSTURE_SIGNAL)
    assert len(onsets_s(blind_events)) > 10 and blind.rest_statistics_uv(0)[0] < 2.0


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_hops_wait_for_the_timeline_so_any_interleaving_gives_the_same_events(seed):
    rng = np.random.default_rng(seed)
    whole_detector = PhaseDetector(POSTURE_FS, postures=ScriptedTimeline(POSTURE_SPANS))
    whole = whole_detector.process(POSTURE_SIGNAL) + whole_detector.advance(final=True)
    timeline = ScriptedTimeline(POSTURE_SPANS)
    detector = PhaseDetector(POSTURE_FS, postures=timeline)
    events = []
    n = POSTURE_SIGNAL.n_samples
    timeline.settled_s = 0.0
    for block in split_blocks(POSTURE_SIGNAL.info, POSTURE_SIGNAL.data, random_cuts(n, 40, rng)):
        # The IMU lags the EMG by up to 4.5 s, or is ahead of it.
        imu_s = block.end_index / POSTURE_FS + float(rng.uniform(-4.5, 1.0))
        timeline.settled_s = max(timeline.settled_s, imu_s)
        fresh = detector.process(block)
        assert all(e.sample_index <= timeline.settled_s * POSTURE_FS for e in fresh)
        events += fresh
    timeline.settled_s = n / POSTURE_FS
    events += detector.advance() + detector.advance(final=True)
    assert events == whole


def test_an_imu_that_stops_holds_the_hops_no_longer_than_the_wait_limit():
    timeline = ScriptedTimeline(POSTURE_SPANS)
    timeline.settled_s = 1.0  # the IMU stopped after 1 s
    detector = PhaseDetector(POSTURE_FS, postures=timeline)
    events = detector.process(Block(POSTURE_SIGNAL.info, POSTURE_SIGNAL.data[:, :20000], 0))
    assert detector.settled_index(0) == pytest.approx(15000, abs=150)  # 5 s behind the EMG (less the lookback)
    assert events == []  # still calibrating: nothing was known still after 1 s
