"""The peer adapters on tiny signals: they call each library the way its code (not its docstring) wants."""

import math
import warnings

import numpy as np
import pytest

from bench.accuracy_detectors import DETECTORS, DetectorInput, band_passed, bonato_threshold
from bench.accuracy_scoring import ConditionTally
from bench.accuracy_signals import burst_recording

nk = pytest.importorskip("neurokit2")
pytest.importorskip("biosppy.signals.emg")

BY_NAME = {d.name: d for d in DETECTORS}


def detector_input(record):
    return DetectorInput(record.raw_uv, band_passed(record.raw_uv, record.fs_hz), record.fs_hz, record.rest_indices)


@pytest.fixture(scope="module")
def clean_records():
    """Three step bursts at 20 dB, at 1 and 2 kHz."""
    return {fs: burst_recording("step", 20.0, 0, n_bursts=3, fs_hz=fs) for fs in (1000.0, 2000.0)}


@pytest.mark.parametrize("name", ["biofeed", "bs bonato", "bs lidierth", "bs silva", "nk biosppy (rest 5 SD)"])
def test_adapters_find_clean_bursts_at_both_rates(clean_records, name):
    # biosppy's detectors take `size` and durations in samples: the same settings in seconds must give
    # the same timing at 1 and 2 kHz, and their interleaved output must become one pair per burst.
    for fs, record in clean_records.items():
        if name == "biofeed" and fs < 2000:
            continue  # below 2 kHz analyze_emg needs >= 20 s of rest for its noise floor; this record has 17
        tally = ConditionTally()
        tally.add(record.bursts, BY_NAME[name].detect(detector_input(record)), fs)
        assert tally.n_detected == 3, (name, fs)
        assert np.max(np.abs(tally.onset_errors_s)) < 0.030, (name, fs, tally.onset_errors_s)


def test_hodges_bui_crossings_pair_up_rising_then_falling(clean_records):
    record = clean_records[1000.0]
    pairs = BY_NAME["bs hodges_bui"].detect(detector_input(record))
    assert all(on < off for on, off in pairs)
    # without a hold it also fires on rest, but the activations cover the bursts
    for burst in record.bursts:
        covered = sum(max(0, min(off, burst.offset_index) - max(on, burst.onset_index)) for on, off in pairs)
        assert covered > 0.9 * (burst.offset_index - burst.onset_index)


def test_abbink_adapter_undoes_the_alarm_size_shift():
    record = burst_recording("step", 20.0, 3, n_bursts=2, fs_hz=1000.0)
    tally = ConditionTally()
    tally.add(record.bursts, BY_NAME["bs abbink"].detect(detector_input(record)), 1000.0)
    assert tally.n_detected == 2
    # without the correction the onsets come alarm_size (25 ms) early
    assert np.max(np.abs(tally.onset_errors_s)) < 0.020  # measured 10-11 ms; 35 ms uncorrected


def test_find_onsets_output_is_paired_by_crossing_direction():
    fs = 1000.0
    record = burst_recording("step", 20.0, 1, n_bursts=2, fs_hz=fs)
    cut_at = record.bursts[0].onset_index + 500
    # cut the record inside the first burst: the signal now starts active; calibrate on the rest after it
    rest_start = record.bursts[0].offset_index - cut_at + 1000
    raw = record.raw_uv[cut_at:]
    cut = DetectorInput(raw, band_passed(raw, fs), fs, (rest_start, rest_start + 2000))
    pairs = BY_NAME["bs find_onsets (rest 5 SD)"].detect(cut)
    assert pairs[0][0] == 0  # the first crossing is an offset
    assert abs(pairs[0][1] - (record.bursts[0].offset_index - cut_at)) < 50
    assert all(a < b for a, b in pairs)


def fast_and_public(method, signal, fs, **public_kwargs):
    public = nk.emg_activation(emg_cleaned=signal, sampling_rate=fs, method=method, **public_kwargs)[1]
    return [int(i) for i in public["EMG_Onsets"]], [int(i) for i in public["EMG_Offsets"]]


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("nk biosppy (default)", "biosppy"),
        ("nk threshold (default)", "threshold"),
        ("nk mixture (default)", "mixture"),
        ("nk pelt", "pelt"),
    ],
)
def test_neurokit_fast_path_equals_its_public_function(name, method):
    fs = 500.0
    rng = np.random.default_rng(4)
    activation = np.r_[np.full(600, 1.0), np.full(400, 6.0), np.full(500, 1.0)]
    signal = activation * rng.standard_normal(activation.shape[0])
    data = DetectorInput(signal, signal, fs, (0, 500))
    kwargs = {"emg_amplitude": nk.emg_amplitude(signal)} if method in ("threshold", "mixture") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onsets, offsets = fast_and_public(method, signal, fs, **kwargs)
        pairs = BY_NAME[name].detect(data)
    assert onsets, "the tiny signal must hold an activation"
    assert [on for on, _ in pairs] == onsets
    assert [off for _, off in pairs][: len(offsets)] == offsets


def test_neurokit_silva_raises_index_error_as_its_public_function_does():
    fs = 1000.0
    record = burst_recording("step", 20.0, 2, n_bursts=1, fs_hz=fs)
    data = detector_input(record)
    with pytest.raises(IndexError):
        nk.emg_activation(emg_cleaned=data.filtered_uv, sampling_rate=fs, method="silva")
    with pytest.raises(IndexError):
        BY_NAME["nk silva"].detect(data)


def test_bonato_threshold_gives_five_percent_false_alarms_for_one_of_five():
    threshold = bonato_threshold(0.05)
    assert 1 - (1 - math.exp(-threshold / 2)) ** 5 == pytest.approx(0.05)
    with pytest.raises(ValueError, match="r0"):
        bonato_threshold(r0=2)
