from __future__ import annotations

import pytest

from biofeed.live.wording import (
    channel_warnings,
    device_warnings,
    format_uv,
    phase_words,
    status_line,
    summarize_trial,
    verdict_words,
    zone_limit_uv,
)
from biofeed.sinks.ring_buffer import ChannelState, LiveState

TRIAL = {
    "channel": "es_left",
    "onset_s": 329.9,
    "release_duration_s": 3.57,
    "monotonic_fraction": 0.96,
    "rebursts": 1,
    "ratio": 0.7025,
    "ratio_ci95": [0.68, 0.72],
    "persistence_ratio": 0.71,
    "pre_rest_uv": 2.62,
    "post_rest_uv": 1.84,
    "score": 99.8,
    "verdict": "true",
    "verdict_reason": "absolute, relative and persistent criteria met",
}


@pytest.mark.parametrize(
    ("verdict", "reason", "words"),
    [
        ("true", "", "true relaxation"),
        ("transient", "persistence ratio 0.95 > 0.9", "transient"),
        ("none", "ratio 1.01", "not reached"),
        (
            "not_measurable",
            "already relaxed: the pre-rest is within 1.0 uV of the noise floor",
            "not measurable with this board",
        ),
        (
            "not_measurable",
            "fewer than 10 gated 1 s rest windows before the onset",
            "not measurable: fewer than 10 gated 1 s rest windows before the onset",
        ),
        (
            "rejected",
            "signal fault during the contraction: flat",
            "rejected: signal fault during the contraction: flat",
        ),
    ],
)
def test_verdicts_in_words(verdict: str, reason: str, words: str) -> None:
    assert verdict_words({"verdict": verdict, "verdict_reason": reason}) == words


def test_a_trial_in_words() -> None:
    s = summarize_trial(TRIAL)
    assert s.time == "5:29" and s.release == "3.6 s"
    assert s.smoothness == "96% falling, 1 re-burst"
    assert s.ratio == "0.70 (95% CI 0.68\u20130.72)"
    assert s.persistence == "0.71" and s.score == "100/100"
    assert s.levels == "2.62 \u00b5V \u2192 1.84 \u00b5V"
    assert s.verdict == "true relaxation" and s.verdict_kind == "true"
    missing = summarize_trial({"verdict": "not_measurable", "verdict_reason": "already relaxed", "ratio": None})
    assert missing.ratio == "\u2013" and missing.release == "\u2013 s" and missing.smoothness.startswith("\u2013")


def test_zone_and_levels() -> None:
    assert zone_limit_uv(1.0) == 2.0 and zone_limit_uv(3.0) == pytest.approx(4.5)
    assert format_uv(None) == "\u2013" and format_uv(2.345) == "2.35 \u00b5V"


def test_phase_words_say_what_is_still_being_learnt() -> None:
    assert phase_words(ChannelState("emg", "a")) == "calibrating noise floor"
    assert phase_words(ChannelState("emg", "a", noise_floor_uv=1.5)) == "learning rest"
    assert phase_words(ChannelState("emg", "a", noise_floor_uv=1.5, phase="release")) == "release"


def test_signal_quality_warnings() -> None:
    channel = ChannelState(
        "emg",
        "es_left",
        lead_off=True,
        saturated=True,
        ecg_subtracting=True,
        faults=(
            {"kind": "flat", "start_s": 10.0, "end_s": 14.0},
            {"kind": "clipped", "start_s": 100.0, "end_s": 101.0},
        ),
    )
    words = channel_warnings(channel, now_s=110.0)
    assert words == [
        "es_left: contact lost (lead-off)",
        "es_left: clipping (at the ADC rail)",
        "es_left: clipping 1:40\u20131:41",
        "es_left: ECG in the signal, subtracted",
    ]  # the flat stretch ended more than 30 s ago
    state = LiveState(
        link_state="reconnecting",
        link_detail="attempt 2",
        mains={"line_hz": 50.0, "applied": True, "notched_hz": [50.0, 150.0]},
        warnings=("emg not analysed: too short",),
    )
    assert device_warnings(state) == [
        "link reconnecting (attempt 2)",
        "mains 50 Hz in the signal, notched at 50, 150 Hz",
        "emg not analysed: too short",
    ]


def test_status_line() -> None:
    state = LiveState(now_s=12.5, rates_hz={"emg": 1999.6}, samples_lost={"emg": 40}, latency_s=0.0123, battery_pct=80)
    line = status_line(state, None, None)
    assert line == "   12.5 s | emg 2000 Hz | lost 40 samples | latency 12 ms | battery 80% | not recording"
