"""Signal faults: flagged live (``events.jsonl``) and in ``analyze --json``, and no verdict on a trial they touch.

The simulated board's pandiculation scenario (seed 0) holds one trial per channel at 60 s whose
ground truth is ``none``. Faults are written into its decoded EMG blocks (electrode contact lost:
pinned at the +rail of the board profile, ±187500 uV; a flat line at 0 uV; saturation: the
signal clipped at the rails) or come from the simulator's knobs (mains at 2 mV, an ECG of 1.5 mV R
peaks). Everything runs through the same :class:`~biofeed.pipeline.Pipeline` as ``biofeed record``
(events) and ``biofeed analyze`` (``analysis_json``).

The rails come from the board profile the simulator's INFO names within the ADC's full scale (its
int24 range times its scale), or from the full scale alone for a board without a profile
(``biofeed.dsp.quality.clipping_rails_uv``); the overwhelming ECG is flagged by the ECG stage
(``ecg_residual``, biofeed/dsp/ecg.py).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block, DeviceInfo
from biofeed.pipeline import BATCH_COALESCE_S, Pipeline
from biofeed.protocol.decoder import Decoder, Item
from biofeed.protocol.packets import SampleFormat
from biofeed.sim.device import EMG_SCALE_UV, SimulatedDevice

RAIL_UV = 187_500.0
"""The simulator board profile's ``range_uv`` (calibration/boards/simulator.toml)."""
ADC_UV = tuple(count * float(np.float32(EMG_SCALE_UV)) for count in SampleFormat.INT24.count_range)
"""The simulator's EMG values at the int24 extremes: -187500 uV and +187499.98 uV, inside ``RAIL_UV``."""
FAULT_S = (62.0, 64.0)
"""Inside the first trial's contraction (onset 60.0 s, release end about 68.9 s) on both channels."""
NO_VERDICT = {"not_measurable", "rejected"}


@cache
def _items(duration_s: float, **knobs: Any) -> tuple[Item, ...]:
    device = SimulatedDevice("pandiculation", seed=0, duration_s=duration_s, **knobs)
    return tuple(Decoder().feed(device.frames_until(device.duration_s)))


def _with_fault(items: tuple[Item, ...], fault: Callable[[npt.NDArray[np.float64]], None]) -> list[Item]:
    """The items with ``fault`` applied to the EMG samples within FAULT_S (both channels)."""
    out: list[Item] = []
    for item in items:
        if isinstance(item, Block) and item.info.name == "emg":
            fs = item.info.sample_rate_hz
            lo = max(0, round(FAULT_S[0] * fs) - item.first_index)
            hi = min(item.n_samples, round(FAULT_S[1] * fs) - item.first_index)
            if lo < hi:
                data = item.data.copy()
                fault(data[:, lo:hi])
                item = dataclasses.replace(item, data=data)
        out.append(item)
    return out


def _analyse(items: list[Item] | tuple[Item, ...]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The live events and the ``analyze --json`` object of the items."""
    pipeline = Pipeline(coalesce_s=BATCH_COALESCE_S)
    events: list[dict[str, Any]] = []
    for item in items:
        events += pipeline.process(item).events
    events += pipeline.finish().events
    return events, pipeline.analysis_json()


def _trials(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "trial"]


def _contractions(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for channel in result["channels"] for c in channel["contractions"]]


def _overlapping(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in trials if t["onset_s"] < FAULT_S[1] and FAULT_S[0] < t["release_end_s"]]


def _contact_lost(segment: npt.NDArray[np.float64]) -> None:
    segment[:] = RAIL_UV  # a lead-off front end pins at its rail


def _flat(segment: npt.NDArray[np.float64]) -> None:
    segment[:] = 0.0


def _saturated(segment: npt.NDArray[np.float64]) -> None:
    segment[:] = np.clip(segment * 1e4, -RAIL_UV, RAIL_UV)  # gain far too high: the contraction clips


def _saturated_at_the_adc(segment: npt.NDArray[np.float64]) -> None:
    segment[:] = np.clip(segment * 1e4, *ADC_UV)  # as the device clips its counts


def _pinned_at_the_highest_count(segment: npt.NDArray[np.float64]) -> None:
    segment[:] = ADC_UV[1]


def _without_a_board_profile(items: tuple[Item, ...]) -> tuple[Item, ...]:
    """The items of a device whose INFO names a board that has no profile."""
    return tuple(
        dataclasses.replace(item, board_profile="no-such-board") if isinstance(item, DeviceInfo) else item
        for item in items
    )


def _check_flagged_and_rejected(kinds: set[str], events: list[dict[str, Any]], result: dict[str, Any]) -> None:
    faults = [e for e in events if e["type"] == "signal_fault"]
    assert {f["channel"] for f in faults} == {"es_left", "es_right"}
    assert kinds <= {f["kind"] for f in faults}
    assert all(f["start_s"] <= FAULT_S[0] + 0.01 and f["end_s"] >= FAULT_S[1] - 0.01 for f in faults)
    for trials in (_overlapping(_trials(events)), _overlapping(_contractions(result))):  # live, then analyze
        assert len(trials) == 2  # one per channel
        for trial in trials:
            assert trial["verdict"] == "rejected", trial["verdict_reason"]
            assert any(kind in trial["verdict_reason"] for kind in kinds), trial["verdict_reason"]


def test_electrode_contact_lost_is_flagged_and_the_trial_rejected() -> None:
    events, result = _analyse(_with_fault(_items(120.0), _contact_lost))
    _check_flagged_and_rejected({"flat", "clipped"}, events, result)  # pinned at the rail: flat and clipped


def test_a_flat_line_is_flagged_and_the_trial_rejected() -> None:
    events, result = _analyse(_with_fault(_items(120.0), _flat))
    _check_flagged_and_rejected({"flat"}, events, result)


def test_flagged_windows_never_enter_a_set_point() -> None:
    events, _ = _analyse(_with_fault(_items(120.0), _flat))
    windows = [e for e in events if e["type"] == "window"]
    touching = [w for w in windows if w["start_time_s"] < FAULT_S[1] and FAULT_S[0] < w["time_s"]]
    assert touching and not any(w["usable"] for w in touching)


def test_saturation_is_flagged_and_the_trial_rejected() -> None:
    events, result = _analyse(_with_fault(_items(120.0), _saturated))
    _check_flagged_and_rejected({"clipped"}, events, result)


def test_saturation_is_flagged_live() -> None:
    events, _ = _analyse(_with_fault(_items(120.0), _saturated))
    kinds = {(e["channel"], e["kind"]) for e in events if e["type"] == "signal_fault"}
    assert kinds == {("es_left", "clipped"), ("es_right", "clipped")}


def test_saturation_without_a_board_profile_is_flagged_at_the_adc_extremes_and_the_trial_rejected() -> None:
    """Issue 10 item 3: with no profile, the rails are the INFO's int24 range times its scale."""
    events, result = _analyse(_with_fault(_without_a_board_profile(_items(120.0)), _saturated_at_the_adc))
    _check_flagged_and_rejected({"clipped"}, events, result)


def test_a_lead_off_pinned_at_the_highest_count_is_clipped_though_the_profile_says_a_hair_more() -> None:
    events, result = _analyse(_with_fault(_items(120.0), _pinned_at_the_highest_count))
    _check_flagged_and_rejected({"flat", "clipped"}, events, result)


def test_analyze_json_lists_the_signal_faults() -> None:
    _, result = _analyse(_with_fault(_items(120.0), _flat))
    for channel in result["channels"]:
        (fault,) = channel["signal_faults"]
        assert fault["kind"] == "flat" and fault["start_s"] <= FAULT_S[0] + 0.01 and fault["end_s"] >= FAULT_S[1] - 0.01


def test_mains_100_times_the_rest_level_is_notched_and_the_verdicts_stand() -> None:
    device = SimulatedDevice("pandiculation", seed=0, duration_s=200.0, mains_hz=50.0, mains_uv=2000.0)
    events, result = _analyse(_items(200.0, mains_hz=50.0, mains_uv=2000.0))
    (mains,) = [e for e in events if e["type"] == "mains"]
    assert mains["line_hz"] == 50 and mains["applied"] and 50.0 in mains["notched_hz"]
    expected = [c["expected_verdict"] for c in device.truth()["channels"]["es_left"]["contractions"][:1]]
    for channel in result["channels"]:  # the notch removed it: the trial's verdict is the ground truth's
        assert [c["verdict"] for c in channel["contractions"]] == expected


def test_an_overwhelming_ecg_gives_no_verdict() -> None:
    events, result = _analyse(_items(200.0, ecg_r_peak_uv=1500.0))
    assert {e["channel"] for e in events if e["type"] == "ecg" and e["subtracting"]} == {"es_left", "es_right"}
    for trials in (_trials(events), _contractions(result)):
        assert {t["verdict"] for t in trials} <= NO_VERDICT, [
            (t["onset_s"], t["verdict"]) for t in trials if t["verdict"] not in NO_VERDICT
        ]


def test_ecg_residual_faults_live_equal_batch() -> None:
    """The ECG stage's faults close at the next beat: live (every packet) and batch give the same faults,
    windows and verdicts."""
    items = _items(60.0, ecg_r_peak_uv=1500.0)
    results = []
    for pipeline in (Pipeline(), Pipeline(coalesce_s=BATCH_COALESCE_S)):
        events = [e for item in items for e in pipeline.process(item).events] + pipeline.finish().events
        kept = [e for e in events if e["type"] in ("signal_fault", "window")]
        kept += [{k: t[k] for k in ("channel", "onset_s", "verdict", "verdict_reason")} for t in _trials(events)]
        results.append(sorted(json.dumps(e, sort_keys=True) for e in kept))
    assert any('"kind": "ecg_residual"' in e for e in results[1])
    assert results[0] == results[1]
