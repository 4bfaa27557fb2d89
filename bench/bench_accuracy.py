"""Onset/offset accuracy of biofeed's phase detection against neurokit2 and biosppy (issue 3, item 9).

On simulated sEMG with known truth (:mod:`bench.accuracy_signals`: step onsets, step or 2-10 s linear
offsets, SNR -3 to 20 dB, 2 kHz), every detector of :mod:`bench.accuracy_detectors` runs on the same
records and is scored by :mod:`bench.accuracy_scoring`: onset and offset error (median, IQR, share
within 25 and 50 ms), detection rate (a detection starting within 200 ms of the true onset), extra
detections, and false alarms per minute on rest-only records of each SNR's noise. Then the set-point
bias with and without ECG (:mod:`bench.accuracy_set_point`) and burst counts / false alarms on the
real recordings (:mod:`bench.accuracy_real`).

``python -m bench accuracy [--quick] [--json]`` runs it as a benchmark; ``python -m
bench.bench_accuracy [--quick] [--json-out PATH]`` prints the Markdown tables of docs/benchmarks.md.
Full run: 100 bursts per kind and SNR, 10 min of rest per SNR, the peers whose pure-Python cost is
far above real time on a subset (:attr:`Detector.max_records`); ``--quick``: 10 bursts, 1 min of
rest, without those peers.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.accuracy_detectors import DETECTORS, Detector, DetectorInput, band_passed, library_version
from bench.accuracy_real import REAL_DATA_DIR, RealRecording, load_real_recordings
from bench.accuracy_scoring import Activation, ConditionTally, summarize_errors
from bench.accuracy_set_point import SetPointBias, measure_set_point_bias
from bench.accuracy_signals import BURST_KINDS, SNRS_DB, BurstKind, Recording, burst_recording, rest_recording

__all__ = [
    "FULL",
    "QUICK",
    "AccuracyPlan",
    "AccuracyResults",
    "RealTally",
    "RestTally",
    "evaluate",
    "main",
    "markdown_report",
    "run",
    "to_bench_result",
]

SET_POINT_LEVELS_UV = (1.0, 2.0, 4.0)
ECG_R_PEAKS_UV = (0.0, 50.0)
GOAL_ONSET_MEDIAN_ABS_MS = 10.0
GOAL_ONSET_MIN_SNR_DB = 6.0
GOAL_DETECTION_PCT = 90.0
GOAL_DETECTION_SNR_DB = 0.0
GOAL_FALSE_ALARMS_PER_MIN = 0.1


@dataclass(frozen=True)
class AccuracyPlan:
    """How much of everything to run.

    Attributes
    ----------
    n_burst_records : int
        Records per (burst kind, SNR).
    n_bursts_per_record : int
    n_rest_records : int
        Rest-only records per SNR.
    rest_record_s : float
        Length of each rest-only record, s.
    n_set_point_records : int
        Records per set-point condition.
    run_limited : bool
        Run the limited (slow) peers on their subset (:attr:`Detector.max_records`), or skip them.
    seed : int
    real_data_dir : Path or None
        Folder of the real recordings; None skips them.
    """

    n_burst_records: int
    n_bursts_per_record: int
    n_rest_records: int
    rest_record_s: float
    n_set_point_records: int
    run_limited: bool
    seed: int = 0
    real_data_dir: Path | None = REAL_DATA_DIR


FULL = AccuracyPlan(20, 5, 10, 60.0, 5, True)
QUICK = AccuracyPlan(2, 5, 1, 60.0, 1, False)


@dataclass
class RestTally:
    """False alarms of one method on the rest-only records of one SNR."""

    n_false_alarms: int = 0
    minutes: float = 0.0
    n_records: int = 0
    n_failed_records: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def per_minute(self) -> float:
        """False alarms per minute of rest after calibration (NaN when nothing ran)."""
        return self.n_false_alarms / self.minutes if self.minutes else math.nan


@dataclass
class RealTally:
    """One method on one real record."""

    n_detections: int | None = None
    failure: str = ""
    per_minute: float = math.nan


@dataclass
class AccuracyResults:
    """Everything one run measured (keys: detector name, burst kind, SNR)."""

    plan: AccuracyPlan
    detectors: list[Detector]
    unavailable: dict[str, str]
    bursts: dict[tuple[str, BurstKind, float], ConditionTally]
    rest: dict[tuple[str, float], RestTally]
    real: dict[tuple[str, str], RealTally]
    real_records: list[RealRecording]
    set_point: list[SetPointBias]
    cost_s: dict[str, float]
    signal_s: dict[str, float]
    elapsed_s: float = 0.0


def _unavailable(detector: Detector) -> str:
    """Why a detector cannot run here ("" when it can)."""
    if detector.library == "biofeed":
        return ""
    module = {"neurokit2": "neurokit2", "biosppy": "biosppy.signals.emg"}[detector.library]
    try:
        __import__(module)
    except Exception as error:  # biosppy fails with ImportError or cv2 errors: any failure means "cannot run"
        return f"{detector.library} does not import: {type(error).__name__}: {error}"
    return ""


def _detect(detector: Detector, data: DetectorInput, results: AccuracyResults) -> list[Activation]:
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # neurokit2 warns "No events found" on quiet records
            return detector.detect(data)
    finally:
        results.cost_s[detector.name] = results.cost_s.get(detector.name, 0.0) + time.perf_counter() - start
        results.signal_s[detector.name] = results.signal_s.get(detector.name, 0.0) + len(data.raw_uv) / data.fs_hz


def _input(record: Recording | RealRecording) -> DetectorInput:
    return DetectorInput(record.raw_uv, band_passed(record.raw_uv, record.fs_hz), record.fs_hz, record.rest_indices)


def _runs_on(detector: Detector, plan: AccuracyPlan, part: str, index: int = 0) -> bool:
    """Whether a detector runs on record ``index`` of a part of the benchmark."""
    if not detector.limited:
        return True
    if not plan.run_limited or part not in detector.parts:
        return False
    return detector.max_records is None or index < detector.max_records


def evaluate(plan: AccuracyPlan, detectors: Sequence[Detector] = DETECTORS) -> AccuracyResults:
    """Run every detector of ``detectors`` over the plan's records and score them."""
    start = time.perf_counter()
    unavailable = {d.name: why for d in detectors if (why := _unavailable(d))}
    runnable = [d for d in detectors if d.name not in unavailable]
    results = AccuracyResults(plan, list(detectors), unavailable, {}, {}, {}, [], [], {}, {})
    for kind in BURST_KINDS:
        for snr in SNRS_DB:
            for k in range(plan.n_burst_records):
                record = burst_recording(kind, snr, k, n_bursts=plan.n_bursts_per_record, seed=plan.seed)
                data = _input(record)
                for detector in runnable:
                    if not _runs_on(detector, plan, kind, k):
                        continue
                    tally = results.bursts.setdefault((detector.name, kind, snr), ConditionTally())
                    try:
                        tally.add(record.bursts, _detect(detector, data, results), record.fs_hz)
                    except Exception as error:  # a peer's failure is a result, not a crash of the benchmark
                        tally.add_failure(record.bursts, error)
    for snr in SNRS_DB:
        for k in range(plan.n_rest_records):
            record = rest_recording(snr, k, duration_s=plan.rest_record_s, seed=plan.seed)
            data = _input(record)
            rest_end = record.rest_indices[1]
            for detector in runnable:
                if not _runs_on(detector, plan, "rest", k):
                    continue
                rest = results.rest.setdefault((detector.name, snr), RestTally())
                rest.n_records += 1
                try:
                    activations = _detect(detector, data, results)
                except Exception as error:
                    rest.n_failed_records += 1
                    text = f"{type(error).__name__}: {error}"
                    if text not in rest.failures:
                        rest.failures.append(text)
                    continue
                rest.n_false_alarms += sum(1 for onset, _ in activations if onset >= rest_end)
                rest.minutes += (len(record.raw_uv) - rest_end) / record.fs_hz / 60
    results.set_point = measure_set_point_bias(
        SET_POINT_LEVELS_UV, ECG_R_PEAKS_UV, plan.n_set_point_records, seed=plan.seed
    )
    results.real_records = load_real_recordings(plan.real_data_dir) if plan.real_data_dir is not None else []
    for real in results.real_records:
        data = _input(real)
        for detector in runnable:
            if not _runs_on(detector, plan, "real"):
                continue
            real_tally = results.real.setdefault((detector.name, real.name), RealTally())
            try:
                activations = _detect(detector, data, results)
            except Exception as error:
                real_tally.failure = f"{type(error).__name__}: {error}"
                continue
            real_tally.n_detections = len(activations)
            after_calibration = sum(1 for onset, _ in activations if onset >= real.rest_indices[1])
            rest_minutes = (len(real.raw_uv) - real.rest_indices[1]) / real.fs_hz / 60
            real_tally.per_minute = after_calibration / rest_minutes
    results.elapsed_s = time.perf_counter() - start
    return results


# -- goals -------------------------------------------------------------------------------------------


def _headline(results: AccuracyResults, name: str, kind: BurstKind, snr: float) -> tuple[float, float, float, float]:
    """(detection %, median |onset| ms, median |offset| ms, false alarms/min); NaN timing = worst."""
    tally = results.bursts.get((name, kind, snr))
    rest = results.rest.get((name, snr))
    if tally is None or rest is None:
        return (math.nan, math.nan, math.nan, math.nan)
    onset = summarize_errors(tally.onset_errors_s).median_abs_ms
    offset = summarize_errors(tally.offset_errors_s).median_abs_ms
    return (tally.detection_pct, onset, offset, rest.per_minute)


def _beats(peer: tuple[float, ...], ours: tuple[float, ...]) -> bool:
    """Pareto: the peer is at least as good on all four headline figures and better on one."""
    if any(math.isnan(v) for v in peer):
        return False
    signs = (1, -1, -1, -1)  # detection up, errors and false alarms down
    better = [s * (p - o) > 0 if not math.isnan(o) else True for s, p, o in zip(signs, peer, ours, strict=True)]
    no_worse = [s * (p - o) >= 0 if not math.isnan(o) else True for s, p, o in zip(signs, peer, ours, strict=True)]
    return all(no_worse) and any(better)


def _goals(results: AccuracyResults) -> dict[str, Any]:
    """The four goal lines, each with what was measured."""
    beaten: list[str] = []
    metric_wins: list[str] = []
    names = ("detection %", "median |onset| ms", "median |offset| ms", "false alarms/min")
    for kind in BURST_KINDS:
        for snr in SNRS_DB:
            ours = _headline(results, "biofeed", kind, snr)
            for detector in results.detectors[1:]:
                peer = _headline(results, detector.name, kind, snr)
                if _beats(peer, ours):
                    beaten.append(f"{detector.name} ({kind}, {snr:g} dB)")
                for label, sign, p, o in zip(names, (1, -1, -1, -1), peer, ours, strict=True):
                    if not math.isnan(p) and (math.isnan(o) or sign * (p - o) > 0):
                        metric_wins.append(f"{detector.name} {label} ({kind}, {snr:g} dB)")
    onset_ms = {
        (kind, snr): summarize_errors(results.bursts[("biofeed", kind, snr)].onset_errors_s).median_abs_ms
        for kind in BURST_KINDS
        for snr in SNRS_DB
        if snr >= GOAL_ONSET_MIN_SNR_DB
    }
    detection = {kind: results.bursts[("biofeed", kind, GOAL_DETECTION_SNR_DB)].detection_pct for kind in BURST_KINDS}
    false_alarms = {snr: results.rest[("biofeed", snr)].per_minute for snr in SNRS_DB}
    total_alarms = sum(results.rest[("biofeed", snr)].n_false_alarms for snr in SNRS_DB)
    total_minutes = sum(results.rest[("biofeed", snr)].minutes for snr in SNRS_DB)
    worst_onset = max(onset_ms.values())
    return {
        "better_than_every_peer": not beaten,
        "beaten_by": beaten,
        "peer_wins_on_one_figure": metric_wins,
        "onset_median_abs_ms_at_6_db_and_above": worst_onset,
        "onset_goal_met": worst_onset <= GOAL_ONSET_MEDIAN_ABS_MS,
        "detection_pct_at_0_db": min(detection.values()),
        "detection_goal_met": min(detection.values()) >= GOAL_DETECTION_PCT,
        "false_alarms_per_min_worst_snr": max(false_alarms.values()),
        "false_alarms_per_min_pooled": total_alarms / total_minutes if total_minutes else math.nan,
        "false_alarm_goal_met": max(false_alarms.values()) < GOAL_FALSE_ALARMS_PER_MIN,
    }


# -- the benchmark result -----------------------------------------------------------------------------


def _condition_figures(results: AccuracyResults, name: str, full: bool) -> dict[str, float]:
    figures: dict[str, float] = {}
    for (detector, kind, snr), tally in results.bursts.items():
        if detector != name:
            continue
        key = f"{kind}_snr{snr:g}db"
        onset = summarize_errors(tally.onset_errors_s)
        offset = summarize_errors(tally.offset_errors_s)
        figures[f"{key}_detection_pct"] = tally.detection_pct
        figures[f"{key}_onset_median_abs_ms"] = onset.median_abs_ms
        figures[f"{key}_onset_within_25_pct"] = onset.within_25_pct
        figures[f"{key}_offset_median_abs_ms"] = offset.median_abs_ms
        if full:
            figures[f"{key}_n_bursts"] = tally.n_bursts
            figures[f"{key}_onset_median_ms"] = onset.median_ms
            figures[f"{key}_onset_iqr_ms"] = onset.iqr_ms
            figures[f"{key}_onset_within_50_pct"] = onset.within_50_pct
            figures[f"{key}_offset_median_ms"] = offset.median_ms
            figures[f"{key}_offset_iqr_ms"] = offset.iqr_ms
            figures[f"{key}_offset_within_25_pct"] = offset.within_25_pct
            figures[f"{key}_offset_within_50_pct"] = offset.within_50_pct
            figures[f"{key}_extra_per_burst"] = tally.extra_per_burst
    for (detector, snr), rest in results.rest.items():
        if detector == name:
            figures[f"rest_snr{snr:g}db_false_alarms_per_min"] = rest.per_minute
    for (detector, record), real in results.real.items():
        if detector == name and real.n_detections is not None:
            figures[f"real_{record}_detections"] = real.n_detections
    return figures


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").replace("__", "_")


def to_bench_result(results: AccuracyResults) -> dict[str, Any]:
    """The ``run(quick)`` dict: biofeed's figures, the peers' headline figures, goals, tables."""
    figures: dict[str, Any] = _condition_figures(results, "biofeed", full=True)
    goals = _goals(results)
    for key, value in goals.items():
        if not isinstance(value, list):
            figures[f"goal_{key}"] = int(value) if isinstance(value, bool) else value
    for bias in results.set_point:
        key = f"set_point_rest{bias.rest_uv:g}uv_ecg{bias.ecg_r_peak_uv:g}uv"
        figures[f"{key}_biofeed_bias_pct"] = bias.biofeed_bias_pct[0]
        figures[f"{key}_plain_rms_bias_pct"] = bias.plain_bias_pct[0]
        figures[f"{key}_plain_corrected_bias_pct"] = bias.plain_corrected_bias_pct[0]
    figures["elapsed_s"] = results.elapsed_s
    peers: dict[str, Any] = {}
    for detector in results.detectors[1:]:
        for key, value in _condition_figures(results, detector.name, full=False).items():
            peers[f"{_slug(detector.name)}_{key}"] = value
    return {
        "name": "accuracy",
        "figures": _finite_or_none(figures),
        "peers": _finite_or_none(peers),
        "goals": goals,
        "versions": {lib: library_version(lib) for lib in ("neurokit2", "biosppy", "peakutils", "opencv-python")},
        "unavailable": results.unavailable,
        "failures": _failures(results),
        "markdown": markdown_report(results),
    }


def _finite_or_none(figures: dict[str, Any]) -> dict[str, Any]:
    """NaN (nothing to measure) as None, so the JSON line is strict JSON."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in figures.items()}


def _failures(results: AccuracyResults) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    tallies: list[tuple[str, list[str]]] = [(name, t.failures) for (name, _, _), t in results.bursts.items()]
    tallies += [(name, t.failures) for (name, _), t in results.rest.items()]
    tallies += [(name, [t.failure]) for (name, _), t in results.real.items() if t.failure]
    for name, texts in tallies:
        for text in texts:
            if text not in found.setdefault(name, []):
                found[name].append(text)
    return found


def run(quick: bool) -> dict[str, Any]:
    """The benchmark (``python -m bench accuracy``): about 20 s of CPU with ``quick``, 25-30 min without."""
    return to_bench_result(evaluate(QUICK if quick else FULL))


# -- Markdown ------------------------------------------------------------------------------------------


def _number(value: float, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return "-"
    text = f"{value:+.1f}" if signed else f"{value:.1f}"
    if abs(value) >= 100:
        text = f"{value:+.0f}" if signed else f"{value:.0f}"
    return text


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _row_name(results: AccuracyResults, detector: Detector) -> str:
    return f"{detector.name} *" if detector.limited else detector.name


def _cell(results: AccuracyResults, name: str, kind: BurstKind, snr: float, what: str) -> str:
    tally = results.bursts.get((name, kind, snr))
    if tally is None:
        return "n/r"
    if tally.n_failed_records == tally.n_records:
        return "fails"
    onset, offset = summarize_errors(tally.onset_errors_s), summarize_errors(tally.offset_errors_s)
    text = {
        "detection": _number(tally.detection_pct),
        "onset": f"{_number(onset.median_ms, True)} ({_number(onset.iqr_ms)})",
        "onset_within": f"{_number(onset.within_25_pct)} / {_number(onset.within_50_pct)}",
        "onset_abs": _number(onset.median_abs_ms),
        "offset": f"{_number(offset.median_ms, True)} ({_number(offset.iqr_ms)})",
        "offset_within": f"{_number(offset.within_25_pct)} / {_number(offset.within_50_pct)}",
        "extra": f"{tally.extra_per_burst:.2f}",
    }[what]
    return text + (" !" if tally.n_failed_records else "")


_BURST_TABLES: tuple[tuple[str, str], ...] = (
    ("detection", "Detected bursts, % (a detection starting within 200 ms of the true onset)"),
    ("onset", "Onset error of the detected bursts, median (IQR), ms; positive = late"),
    ("onset_abs", "Median absolute onset error, ms"),
    ("onset_within", "Onsets within 25 / 50 ms, % of detected bursts"),
    ("offset", "Offset error, median (IQR), ms; positive = late"),
    ("offset_within", "Offsets within 25 / 50 ms, % of detected bursts"),
    ("extra", "Extra detections (matching no burst) per burst"),
)


def markdown_report(results: AccuracyResults) -> str:
    """The tables of docs/benchmarks.md for these results."""
    plan = results.plan
    snr_header = [f"{snr:g} dB" for snr in SNRS_DB]
    lines: list[str] = []
    lines.append(
        f"{plan.n_burst_records * plan.n_bursts_per_record} bursts per kind and SNR "
        f"({plan.n_burst_records} records of {plan.n_bursts_per_record}), "
        f"{plan.n_rest_records * plan.rest_record_s / 60:g} min of rest-only records per SNR. "
        "`!` = the method raised on some records (their bursts count as missed); `fails` = on all; "
        "`-` = nothing to measure; `n/r` = not run."
    )
    lines.append("")
    lines += _limited_lines(results)
    lines += [f"- not run: {name} ({why})." for name, why in results.unavailable.items()]
    lines += ["", "Methods and their settings (peers get biofeed's 30-450 Hz band-passed signal):", ""]
    lines += _table(
        ["method", "library", "settings"],
        [[d.name, d.library, d.settings] for d in results.detectors if d.name not in results.unavailable],
    )
    rows_detectors = [d for d in results.detectors if d.name not in results.unavailable]
    for kind in BURST_KINDS:
        title = "Step onset, step offset" if kind == "step" else "Step onset, linear release of 2-10 s"
        lines += ["", f"#### {title}"]
        for what, caption in _BURST_TABLES:
            lines += ["", f"{caption}:", ""]
            rows = [
                [_row_name(results, d), *[_cell(results, d.name, kind, snr, what) for snr in SNRS_DB]]
                for d in rows_detectors
            ]
            lines += _table(["method", *snr_header], rows)
    lines += ["", "#### False alarms on rest-only records", ""]
    lines.append("Detections per minute of rest after the 5 s calibration (noise of each SNR):")
    lines.append("")
    rest_rows = []
    for d in rows_detectors:
        cells = []
        for snr in SNRS_DB:
            rest = results.rest.get((d.name, snr))
            if rest is None:
                cells.append("n/r")
            elif rest.n_failed_records == rest.n_records:
                cells.append("fails")
            else:
                cells.append(f"{rest.per_minute:.2f}" + (" !" if rest.n_failed_records else ""))
        rest_rows.append([_row_name(results, d), *cells])
    lines += _table(["method", *snr_header], rest_rows)
    lines += ["", "#### Set-point bias (resting tension vs scripted level, 1.5 uV sensor noise, 90 s, 2 kHz)", ""]
    lines.append(f"Median over {plan.n_set_point_records} records [min, max], %; ECG = the simulator's, 50 uV R peak.")
    lines.append("")
    sp_rows = []
    for b in results.set_point:
        sp_rows.append(
            [
                f"{b.rest_uv:g}",
                "yes" if b.ecg_r_peak_uv else "no",
                _spread_text(b.biofeed_bias_pct),
                _spread_text(b.plain_bias_pct),
                _spread_text(b.plain_corrected_bias_pct),
                f"{b.biofeed_noise_floor_uv:.2f}",
                f"{b.n_ecg_subtracted}/{b.n_records}",
            ]
        )
    lines += _table(
        [
            "rest uV",
            "ECG",
            "biofeed set point",
            "plain 20-450 Hz RMS",
            "plain RMS, true floor removed",
            "biofeed floor uV",
            "ECG subtracted",
        ],
        sp_rows,
    )
    lines += ["", "#### Real recordings (no annotations)", ""]
    real_names = [r.name for r in results.real_records]
    if not real_names:
        lines.append("../shared/data/real not found: not run.")
    else:
        header = ["method", *[f"{r.name} ({_real_caption(r)})" for r in results.real_records]]
        real_rows = []
        for d in rows_detectors:
            cells = []
            for r in results.real_records:
                tally = results.real.get((d.name, r.name))
                if tally is None:
                    cells.append("n/r")
                elif tally.n_detections is None:
                    cells.append("fails")
                elif r.expected_bursts == 0:
                    cells.append(f"{tally.n_detections} ({tally.per_minute:.1f}/min)")
                else:
                    cells.append(str(tally.n_detections))
            real_rows.append([_row_name(results, d), *cells])
        lines += _table(header, real_rows)
    lines += ["", "#### Goals (biofeed)", ""]
    goals = _goals(results)
    lines += _goal_lines(goals)
    lines += ["", *_wins_table(results)]
    lines += ["", "#### Cost", ""]
    cost_rows = []
    for d in rows_detectors:
        cost, signal = results.cost_s.get(d.name, 0.0), results.signal_s.get(d.name, 0.0)
        cost_rows.append([d.name, f"{signal / 60:.0f}", f"{signal / cost:.0f}x" if cost else "-"])
    lines += _table(["method", "signal run, min", "speed (x real time)"], cost_rows)
    lines += ["", f"Whole run: {results.elapsed_s / 60:.1f} min."]
    return "\n".join(lines)


_PART_LABELS = (
    ("step", "step bursts"),
    ("slow", "slow-release bursts"),
    ("rest", "rest-only records"),
    ("real", "real recordings"),
)


def _limited_lines(results: AccuracyResults) -> list[str]:
    """Footnotes on the peers run on a subset (``*``)."""
    lines = []
    for d in results.detectors:
        if not d.limited:
            continue
        if not results.plan.run_limited:
            lines.append(f"- `*` {d.name}: not run with `--quick` ({d.why_limited}).")
            continue
        records = "every record" if d.max_records is None else f"the first {d.max_records} record(s) of each cell"
        parts = ", ".join(label for part, label in _PART_LABELS if part in d.parts)
        lines.append(f"- `*` {d.name}: run on {records}, parts: {parts} ({d.why_limited}).")
    return lines


def _spread_text(spread: tuple[float, float, float]) -> str:
    median, low, high = spread
    return f"{_number(median, True)} [{_number(low, True)}, {_number(high, True)}]"


def _real_caption(record: RealRecording) -> str:
    if record.expected_bursts == 0:
        return f"{record.duration_s:.0f} s rest: detections"
    if record.expected_bursts is None:
        return f"{record.duration_s:.0f} s, bursts not counted"
    return f"{record.expected_bursts} bursts"


def _goal_lines(goals: dict[str, Any]) -> list[str]:
    def verdict(met: bool) -> str:
        return "**met**" if met else "**not met**"

    lines = [
        f"- Better than every peer at every SNR: {verdict(goals['better_than_every_peer'])}"
        + (f"; beaten (Pareto) by {', '.join(goals['beaten_by'])}" if goals["beaten_by"] else ""),
        f"- Median onset error <= {GOAL_ONSET_MEDIAN_ABS_MS:g} ms at >= {GOAL_ONSET_MIN_SNR_DB:g} dB: "
        f"{verdict(goals['onset_goal_met'])} (worst {goals['onset_median_abs_ms_at_6_db_and_above']:.1f} ms)",
        f"- >= {GOAL_DETECTION_PCT:g} % detection at {GOAL_DETECTION_SNR_DB:g} dB: "
        f"{verdict(goals['detection_goal_met'])} (worst kind {goals['detection_pct_at_0_db']:.0f} %)",
        f"- < 1 false alarm per 10 min of rest: {verdict(goals['false_alarm_goal_met'])} "
        f"(worst SNR {goals['false_alarms_per_min_worst_snr']:.2f}/min, "
        f"pooled {goals['false_alarms_per_min_pooled']:.3f}/min)",
    ]
    return lines


def _wins_table(results: AccuracyResults) -> list[str]:
    """Where a peer is better than biofeed on one headline figure, whatever the others."""
    labels = ("detection %", "median abs onset", "median abs offset", "false alarms/min")
    rows = []
    for detector in results.detectors[1:]:
        cells: list[list[str]] = [[] for _ in labels]
        for kind in BURST_KINDS:
            for snr in SNRS_DB:
                ours = _headline(results, "biofeed", kind, snr)
                peer = _headline(results, detector.name, kind, snr)
                for j, (sign, p, o) in enumerate(zip((1, -1, -1, -1), peer, ours, strict=True)):
                    if j == 3 and kind != BURST_KINDS[0]:
                        continue  # false alarms come from the rest records: once per SNR
                    if not math.isnan(p) and (math.isnan(o) or sign * (p - o) > 0):
                        cells[j].append(f"{snr:g}" if j == 3 else f"{kind} {snr:g}")
        if any(cells):
            rows.append([detector.name, *[", ".join(c) or "-" for c in cells]])
    if not rows:
        return ["No peer is better than biofeed on any headline figure."]
    header = ["peer", *[f"better {label} at (dB)" for label in labels]]
    return ["Where a peer is better on one headline figure, whatever the others:", "", *_table(header, rows)]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.bench_accuracy [--quick] [--json-out PATH]``: print the Markdown tables."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 bursts per cell, 1 min of rest, no slow peers")
    parser.add_argument("--json-out", metavar="PATH", help="also write the benchmark's JSON object to PATH")
    args = parser.parse_args(argv)
    result = run(args.quick)
    if args.json_out:
        import json

        from bench.__main__ import machine

        with open(args.json_out, "w", encoding="utf-8") as out:
            json.dump({**result, "machine": machine()}, out)
    print(result["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
