"""The onset/offset detectors compared, behind one calling convention.

Every detector gets a :class:`DetectorInput` and returns detected activations as (onset, offset)
sample indices. biofeed gets the raw record and runs :func:`biofeed.dsp.analyze_emg`, the chain
``biofeed analyze`` runs (its contractions' ``onset_index`` / ``offset_index``). Every peer gets the
same record band-passed by biofeed's own :class:`~biofeed.dsp.BandPassFilter` (30-450 Hz, 4th-order
Butterworth each side: what biofeed's phase detector sees), so the comparison is between detectors,
not filters, and the same calibration rest (the first :data:`~bench.accuracy_signals.CALIBRATION_S`
seconds, which biofeed's phase detector calibrates on) wherever a method can take one.

Peers (neurokit2 and biosppy are benchmark-only: imported here, never by ``biofeed/``), with the
quirks each adapter handles (ARCHITECTURE.md "Known pitfalls", and what reading their code showed):

- neurokit2 ``emg_activation``: its public function builds a per-sample DataFrame with ``.loc`` in
  a Python loop (about 50 ms per second of 2 kHz signal), so the adapters call the same private
  steps it calls (``_emg_activation_<method>`` then ``_emg_activation_activations``) and read the
  onsets/offsets it would return; ``tests/bench`` checks they equal the public function's.
  ``duration_min`` is in samples (the default ``int(0.05 * sampling_rate)``, i.e. 50 ms, is used).
  ``emg_amplitude`` takes no sampling rate: its 10-400 Hz band and 8 Hz envelope assume 1 kHz
  (at 2 kHz they are 20-800 Hz and 16 Hz). ``method="silva"`` raises IndexError.
- biosppy ``signals.emg`` onset detectors return onsets and offsets in one sorted array
  (de-interleaved here); ``find_onsets`` and ``hodges_bui_onset_detector`` return every threshold
  crossing, both directions, de-duplicated, so a one-sample dip leaves one index for two crossings
  and the array stops alternating: their crossings are paired by reading the direction of each
  from the test function (:func:`bench.accuracy_scoring.pair_crossings`). ``size`` is in samples for
  every detector but ``find_onsets`` (seconds), whatever the docstrings say. With a rest
  *segment* (``[start, end]``) they compute the mean and SD of the zero-meaned raw samples, so the
  "mean" is 0 and the SD is that of the raw signal, not of each method's test function (a moving
  average, the TKEO, a moving variance): their thresholds then mean nothing in SD units. The
  adapters pass the documented dict form ``{"mean", "std_dev"}`` computed on the same rest samples
  from each method's own test function (Bonato's test function is normalised by the raw variance,
  so it gets the segment). ``abbink_onset_detector`` dates its transitions ``alarm_size`` samples
  early (it indexes its transition list from 0 while the window position starts at
  ``alarm_size``; corrected here), rescans the whole history at each alarm (cost grows with the
  square of the record length), and replaces, rather than appends to, its onset/offset lists at
  each detection, so it returns every position of the history that reaches the current extreme.

Parameters (chosen before looking at results, not tuned on these signals): biosppy's docs suggest
none. Bonato uses the defaults of R's ``biosignalEMG::onoff_bonato`` (false-alarm probability 0.05,
m = 5, r0 = 1, 30 ms minimum active state); Hodges & Bui 3 SD over a 25 ms window, a common choice
in the literature; Lidierth, Abbink, Silva and Londral share that window and 3 SD, with SCIENCE.md
5's 50 ms minimum active state where they take one. Solnik's TKEO is heavy-tailed: 15 SD (on one
1 min rest record per SNR, 3 SD gave about 40 false alarms/min and 6 SD 2). Where a library has a
default threshold, the default and a rest-calibrated one (rest mean + 5 SD, SCIENCE.md 5's onset
rule) are both run. :data:`DETECTORS` lists every setting in words (docs/benchmarks.md prints them).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.accuracy_scoring import Activation, pair_crossings, pair_interleaved
from biofeed.blocks import Block, ChannelInfo, ChannelKind, StreamInfo
from biofeed.dsp import BandPassFilter, analyze_emg
from biofeed.dsp.filters import DEFAULT_HIGH_PASS_HZ

__all__ = [
    "ALL_PARTS",
    "BONATO_FALSE_ALARM",
    "DETECTORS",
    "Detector",
    "DetectorInput",
    "band_passed",
    "bonato_threshold",
    "library_version",
]

_Array = npt.NDArray[np.float64]
ALL_PARTS = frozenset({"step", "slow", "rest", "real"})
"""The parts of the benchmark: the two burst kinds, the rest-only records, the real recordings."""
BONATO_FALSE_ALARM = 0.05
"""False-alarm probability Bonato's threshold is set for (with m = 5, r0 = 1)."""


@dataclass(frozen=True)
class DetectorInput:
    """One record as the detectors see it.

    Attributes
    ----------
    raw_uv : ndarray, shape (n_samples,)
        The record, uV.
    filtered_uv : ndarray, shape (n_samples,)
        The record through biofeed's band-pass (what every peer gets).
    fs_hz : float
        Sample rate.
    rest_indices : tuple of int
        [start, end) of the calibration rest, samples.
    """

    raw_uv: _Array
    filtered_uv: _Array
    fs_hz: float
    rest_indices: tuple[int, int]

    @property
    def rest_uv(self) -> _Array:
        """The filtered calibration rest."""
        start, end = self.rest_indices
        return self.filtered_uv[start:end]

    def samples(self, seconds: float) -> int:
        """A duration in samples at this rate (at least 1)."""
        return max(1, round(seconds * self.fs_hz))


@dataclass(frozen=True)
class Detector:
    """A method under comparison.

    Attributes
    ----------
    name : str
        Row name in the tables.
    library : str
        ``biofeed``, ``neurokit2`` or ``biosppy``.
    settings : str
        Its parameters, in words.
    detect : callable
        ``DetectorInput -> list of (onset, offset)``.
    max_records : int or None
        For a method whose pure-Python cost is far above real time: how many records of each
        condition it runs on (None: all); ``--quick`` skips it.
    parts : frozenset of str
        Which parts of the benchmark it runs on: ``step``, ``slow`` (burst kinds), ``rest``, ``real``.
    why_limited : str
        Why, in words, when it is limited.
    """

    name: str
    library: str
    settings: str
    detect: Callable[[DetectorInput], list[Activation]]
    max_records: int | None = None
    parts: frozenset[str] = ALL_PARTS
    why_limited: str = ""

    @property
    def limited(self) -> bool:
        """True when it runs on a subset of the records."""
        return self.max_records is not None or self.parts != ALL_PARTS


def band_passed(raw_uv: npt.ArrayLike, fs_hz: float, high_pass_hz: float = DEFAULT_HIGH_PASS_HZ) -> _Array:
    """``raw_uv`` (shape (n_samples,)) through biofeed's band-pass (4th-order Butterworth each side).

    Returns
    -------
    ndarray, shape (n_samples,)
        uV; the low-pass is 450 Hz or 0.9 x Nyquist, whichever is lower.
    """
    data = np.asarray(raw_uv, dtype=np.float64)[None, :]
    info = StreamInfo("emg", fs_hz, (ChannelInfo("emg", ChannelKind.EMG, "uV"),))
    band_pass = BandPassFilter(fs_hz, high_pass_hz)
    return np.asarray(band_pass.process(Block(info, data, 0)).data[0], dtype=np.float64)


@cache
def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def library_version(library: str) -> str | None:
    """Installed version of a peer library (its distribution's), None when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version(library)
    except metadata.PackageNotFoundError:
        return None


def _rest_stats(test_function_at_rest: _Array) -> dict[str, float]:
    return {"mean": float(np.mean(test_function_at_rest)), "std_dev": float(np.std(test_function_at_rest))}


def _moving_average(values: _Array, size: int) -> _Array:
    return np.convolve(values, np.ones(size) / size, mode="valid")


# -- biofeed -----------------------------------------------------------------------------------------


def _biofeed(data: DetectorInput) -> list[Activation]:
    analysis = analyze_emg(data.raw_uv, data.fs_hz)
    return [(t.contraction.onset_index, t.contraction.offset_index) for t in analysis.channels[0].contractions]


# -- neurokit2 ---------------------------------------------------------------------------------------


def _nk_activation() -> ModuleType:
    # neurokit2.emg.emg_activation is shadowed by the function of that name; the module has the steps.
    return _module("neurokit2.emg.emg_activation")


def _nk_pairs(activity: Any, fs_hz: float) -> list[Activation]:
    """What ``emg_activation`` returns in ``info`` for this activity (its ``duration_min`` default)."""
    info = _nk_activation()._emg_activation_activations(activity, duration_min=int(0.05 * fs_hz))
    onsets = [int(i) for i in info["EMG_Onsets"]]
    offsets = [int(i) for i in info["EMG_Offsets"]]
    # emg_activation drops an offset at the end of the signal but keeps its onset.
    n = len(activity)
    return [(on, offsets[k] if k < len(offsets) else n) for k, on in enumerate(onsets)]


def _nk_amplitude(data: DetectorInput) -> _Array:
    return np.asarray(_module("neurokit2").emg_amplitude(data.filtered_uv), dtype=np.float64)


def _nk_threshold(data: DetectorInput, *, from_rest: bool) -> list[Activation]:
    amplitude = _nk_amplitude(data)
    threshold: Any = "default"
    if from_rest:
        start, end = data.rest_indices
        threshold = float(np.mean(amplitude[start:end]) + 5 * np.std(amplitude[start:end]))
    activity = _nk_activation()._emg_activation_threshold(amplitude, threshold=threshold)
    return _nk_pairs(activity, data.fs_hz)


def _nk_mixture(data: DetectorInput) -> list[Activation]:
    activity = _nk_activation()._emg_activation_mixture(_nk_amplitude(data), threshold="default")
    return _nk_pairs(activity, data.fs_hz)


def _nk_pelt(data: DetectorInput) -> list[Activation]:
    activity = _nk_activation()._emg_activation_pelt(data.filtered_uv, duration_min=int(0.05 * data.fs_hz))
    return _nk_pairs(activity, data.fs_hz)


def _nk_biosppy(data: DetectorInput, *, from_rest: bool) -> list[Activation]:
    threshold: Any = "default"
    if from_rest:
        smoothed = _module("neurokit2").signal_smooth(
            np.abs(data.rest_uv), method="convolution", kernel="boxzen", size=int(0.05 * data.fs_hz)
        )
        threshold = float(np.mean(smoothed) + 5 * np.std(smoothed))
    activity = _nk_activation()._emg_activation_biosppy(
        data.filtered_uv, sampling_rate=data.fs_hz, size=0.05, threshold=threshold
    )
    return _nk_pairs(activity, data.fs_hz)


def _nk_silva(data: DetectorInput) -> list[Activation]:
    activity = _nk_activation()._emg_activation_silva(data.filtered_uv, size=20, threshold_size=22, threshold="default")
    return _nk_pairs(activity, data.fs_hz)


# -- biosppy -----------------------------------------------------------------------------------------


def _bs() -> ModuleType:
    return _module("biosppy.signals.emg")


def _find_onsets(data: DetectorInput, *, from_rest: bool) -> list[Activation]:
    size = int(data.fs_hz * 0.05)  # how find_onsets turns its size in seconds into samples
    tools = _module("biosppy.signals.tools")

    def smoothed(x: _Array) -> _Array:
        return np.asarray(tools.smoother(signal=np.abs(x), kernel="boxzen", size=size, mirror=True)[0])

    envelope = smoothed(data.filtered_uv)
    # find_onsets' own default threshold, unless calibrated on the rest
    threshold = float(1.2 * np.mean(envelope) + 2.0 * np.std(envelope, ddof=1))
    if from_rest:
        at_rest = smoothed(data.rest_uv)
        threshold = float(np.mean(at_rest) + 5 * np.std(at_rest))
    crossings = _bs().find_onsets(signal=data.filtered_uv, sampling_rate=data.fs_hz, size=0.05, threshold=threshold)
    return pair_crossings(crossings["onsets"], envelope > threshold, len(data.filtered_uv))


def _moving_average_rest(data: DetectorInput, size: int) -> dict[str, float]:
    """Rest statistics of the rectified moving average used by Hodges & Bui, Lidierth, Abbink, Silva."""
    zero_mean = data.rest_uv - np.mean(data.filtered_uv)  # the detectors remove the whole signal's mean
    return _rest_stats(_moving_average(np.abs(zero_mean), size))


def _hodges_bui(data: DetectorInput) -> list[Activation]:
    size = data.samples(0.025)
    result = _bs().hodges_bui_onset_detector(
        signal=data.filtered_uv, rest=_moving_average_rest(data, size), sampling_rate=data.fs_hz, size=size, threshold=3
    )
    above = np.asarray(result["processed"]) >= 3
    return pair_crossings(result["onsets"], above, len(data.filtered_uv), shift=int(size / 2))


def bonato_threshold(false_alarm: float = BONATO_FALSE_ALARM, m: int = 5, r0: int = 1) -> float:
    """Bonato's threshold on his chi-square(2) test function for a false-alarm probability.

    With r0 = 1 the detector false-alarms when any of m successive test values exceeds the
    threshold: ``1 - (1 - p)^m = false_alarm`` with ``p = exp(-threshold / 2)``.
    """
    if r0 != 1:
        raise ValueError(f"only r0 = 1 is implemented, got {r0}")
    p = 1.0 - (1.0 - false_alarm) ** (1.0 / m)
    return -2.0 * math.log(p)


def _bonato(data: DetectorInput) -> list[Activation]:
    result = _bs().bonato_onset_detector(
        signal=data.filtered_uv,
        rest=list(data.rest_indices),
        sampling_rate=data.fs_hz,
        threshold=bonato_threshold(),
        active_state_duration=max(1, round(0.030 * data.fs_hz / 2)),  # the test function runs at fs / 2
        samples_above_fail=1,
        fail_size=5,
    )
    return pair_interleaved(result["onsets"], len(data.filtered_uv))


def _lidierth(data: DetectorInput) -> list[Activation]:
    size = data.samples(0.025)
    result = _bs().lidierth_onset_detector(
        signal=data.filtered_uv,
        rest=_moving_average_rest(data, size),
        sampling_rate=data.fs_hz,
        size=size,
        threshold=3,
        active_state_duration=data.samples(0.05),
        fail_size=data.samples(0.01),
    )
    return pair_interleaved(result["onsets"], len(data.filtered_uv))


def _abbink(data: DetectorInput) -> list[Activation]:
    size = alarm_size = data.samples(0.025)
    result = _bs().abbink_onset_detector(
        signal=data.filtered_uv,
        rest=_moving_average_rest(data, size),
        sampling_rate=data.fs_hz,
        size=size,
        alarm_size=alarm_size,
        threshold=3,
        transition_threshold=3,
    )
    return pair_interleaved(np.asarray(result["onsets"]) + alarm_size, len(data.filtered_uv))


def _solnik(data: DetectorInput) -> list[Activation]:
    x = data.rest_uv - np.mean(data.filtered_uv)
    teager_kaiser = np.abs(x[1:-1] ** 2 - x[2:] * x[:-2])
    result = _bs().solnik_onset_detector(
        signal=data.filtered_uv,
        rest=_rest_stats(teager_kaiser),
        sampling_rate=data.fs_hz,
        threshold=15,
        active_state_duration=data.samples(0.025),
    )
    return pair_interleaved(result["onsets"], len(data.filtered_uv))


def _silva(data: DetectorInput) -> list[Activation]:
    size = data.samples(0.025)
    stats = _moving_average_rest(data, size)
    result = _bs().silva_onset_detector(
        signal=data.filtered_uv,
        sampling_rate=data.fs_hz,
        size=size,
        threshold_size=max(size + 1, round(1.1 * size)),
        threshold=stats["mean"] + 3 * stats["std_dev"],
    )
    return pair_interleaved(result["onsets"], len(data.filtered_uv))


def _londral(data: DetectorInput) -> list[Activation]:
    size = data.samples(0.025)
    x = data.rest_uv - np.mean(data.filtered_uv)
    windows = np.lib.stride_tricks.sliding_window_view(x, size)
    result = _bs().londral_onset_detector(
        signal=data.filtered_uv,
        rest=_rest_stats(np.var(windows, axis=1)),  # Londral's test function is the window's variance
        sampling_rate=data.fs_hz,
        size=size,
        threshold=3,
        active_state_duration=data.samples(0.05),
    )
    return pair_interleaved(result["onsets"], len(data.filtered_uv))


DETECTORS: tuple[Detector, ...] = (
    Detector(
        "biofeed",
        "biofeed",
        "`analyze_emg(raw, fs)` defaults (whole chain; phases: onset 5 SD held 50 ms, offset 2.5 SD held 250 ms, "
        "5 s calibration)",
        _biofeed,
    ),
    Detector(
        "nk threshold (default)",
        "neurokit2",
        "`emg_amplitude` (TKEO + envelope), threshold = SD/10 of the whole amplitude (its default)",
        partial(_nk_threshold, from_rest=False),
    ),
    Detector(
        "nk threshold (rest 5 SD)",
        "neurokit2",
        "`emg_amplitude`, threshold = calibration-rest mean + 5 SD of the amplitude",
        partial(_nk_threshold, from_rest=True),
    ),
    Detector(
        "nk mixture (default)",
        "neurokit2",
        "`emg_amplitude`, 2-component Gaussian mixture, activity where P(active) > 0.33 (defaults)",
        _nk_mixture,
        max_records=10,
        why_limited="about 50-80x real time (a scikit-learn Gaussian mixture over every sample)",
    ),
    Detector(
        "nk pelt",
        "neurokit2",
        "PELT on variance, penalty log(n) (defaults)",
        _nk_pelt,
        max_records=1,
        why_limited="about 0.4 s per second of 2 kHz signal (pure-Python PELT)",
    ),
    Detector(
        "nk biosppy (default)",
        "neurokit2",
        "50 ms boxzen smoothing of abs(x), threshold 1.2 x its mean (defaults)",
        partial(_nk_biosppy, from_rest=False),
    ),
    Detector(
        "nk biosppy (rest 5 SD)",
        "neurokit2",
        "50 ms boxzen smoothing of abs(x), threshold = calibration-rest mean + 5 SD",
        partial(_nk_biosppy, from_rest=True),
    ),
    Detector("nk silva", "neurokit2", "defaults (size 20, threshold_size 22 samples, threshold 0.05)", _nk_silva),
    Detector(
        "bs find_onsets (default)",
        "biosppy",
        "50 ms boxzen, threshold 1.2 mean + 2 SD of the whole envelope (defaults); every crossing",
        partial(_find_onsets, from_rest=False),
    ),
    Detector(
        "bs find_onsets (rest 5 SD)",
        "biosppy",
        "50 ms boxzen, threshold = calibration-rest mean + 5 SD of the envelope; every crossing",
        partial(_find_onsets, from_rest=True),
    ),
    Detector(
        "bs hodges_bui",
        "biosppy",
        "25 ms moving average of abs(x), 3 SD of its rest values; every crossing",
        _hodges_bui,
    ),
    Detector(
        "bs bonato",
        "biosppy",
        f"threshold {bonato_threshold():.2f} (5 % false alarm), r0 = 1 of m = 5, active state >= 30 ms",
        _bonato,
    ),
    Detector(
        "bs lidierth",
        "biosppy",
        "25 ms moving average, 3 SD, active state >= 50 ms, fail after 10 ms",
        _lidierth,
    ),
    Detector(
        "bs abbink",
        "biosppy",
        "25 ms moving average, 3 SD, alarm and transition windows 25 ms, transition threshold 3 SD",
        _abbink,
        max_records=1,
        parts=frozenset({"step", "rest"}),
        why_limited="cost grows with the square of the record: 20 s for a 35 s step record, 220 s for a 64 s "
        "slow-release record, 230-280 s for each real record",
    ),
    Detector(
        "bs solnik",
        "biosppy",
        "TKEO, 15 SD of its rest values (on 1 min rest records 3 SD gave about 40 false alarms/min, 6 SD 2), "
        "25 ms above threshold",
        _solnik,
    ),
    Detector(
        "bs silva",
        "biosppy",
        "25 ms and 27.5 ms moving averages (neurokit2's 20:22 ratio), fixed threshold rest mean + 3 SD",
        _silva,
    ),
    Detector(
        "bs londral",
        "biosppy",
        "25 ms moving variance, 3 SD of its rest values, active state >= 50 ms",
        _londral,
        max_records=4,
        why_limited="about 0.05 s per second of 2 kHz signal (a Python function per sample)",
    ),
)
"""biofeed first, then the peers."""
