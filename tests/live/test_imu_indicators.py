"""The window's IMU indicators on the simulated mixed session: flexion-relaxation phase and posture match."""

from __future__ import annotations

import pytest

from biofeed.live.trial_cards import TrialCard
from biofeed.sinks.ring_buffer import RingBufferSink
from tests.live.conftest import TapePlayer

pytest.importorskip("pytestqt")

from biofeed.live.window import LiveWindow


def _window(qtbot, ring: RingBufferSink) -> LiveWindow:
    window = LiveWindow(ring, window_s=20.0)
    qtbot.addWidget(window)
    window.resize(1500, 950)
    window.show()
    return window


def test_flexion_relaxation_phase_with_the_angle_trace(qtbot, mixed_tape) -> None:
    ring = RingBufferSink()
    player = TapePlayer(mixed_tape, ring, trunk=True)
    window = _window(qtbot, ring)
    # the first cycle (standing from 0 s): flexion 30.4-33.0 s, full flexion to 38 s, extension to 40.3 s
    shown = {}
    for until_s in (20.0, 31.5, 35.5, 39.0, 45.0):
        player.play(until_s=until_s)
        window.refresh()
        assert window.trunk.isVisible()
        shown[until_s] = window.trunk.flexion_phase_text
    assert shown == {20.0: "standing", 31.5: "flexing", 35.5: "full flexion", 39.0: "extending", 45.0: "standing"}
    # the cycle's stretches shaded on the angle plot, at their times (0 = now)
    spans = window.trunk.spans.spans
    now_s = window.now_s
    assert now_s is not None and len(spans) == 3
    starts = [now_s + start for start, _, _ in spans]
    assert starts == pytest.approx([30.4, 33.0, 38.0], abs=0.1)
    assert window.trunk.latest_deg["lumbar_flexion"] == pytest.approx(0.0, abs=2.0)
    # lying down: a lumbar angle near 0 is no standing, the phase is not shown
    player.play(until_s=100.0)
    window.refresh()
    assert window.trunk.flexion_phase_text == "" and window.trunk.spans.spans == ()


def test_posture_match_on_the_meter(qtbot, mixed_tape) -> None:
    ring = RingBufferSink()
    player = TapePlayer(mixed_tape, ring, trunk=True)
    window = _window(qtbot, ring)
    player.play(until_s=100.0)  # lying, no trial yet
    window.refresh()
    meter = window.panels["emg/es_left"].meter
    assert meter.posture is not None and meter.posture.matched is None and meter.posture.short == "lying"
    player.play(until_s=420.0)  # the third trial (389.8 s) is open, lying as it began
    window.refresh()
    for panel in window.panels.values():
        posture = panel.meter.posture
        assert posture is not None and posture.matched is True
        assert posture.change_deg is not None and posture.change_deg < 1.0
        assert posture.short.startswith("\u2713 same posture")
    player.play(until_s=527.0)  # standing up (from 522.5 s): the trunk has left the posture of 389.8 s
    window.refresh()
    posture = window.panels["emg/es_left"].meter.posture
    assert posture is not None and posture.matched is False
    assert posture.change_deg == pytest.approx(90.0, abs=5.0)
    assert posture.short.startswith("\u2717 posture changed")
    assert "since the trial began" in posture.text
    player.play(until_s=545.0)  # the movement closed it (a movement artifact, not a trial)
    window.refresh()
    posture = window.panels["emg/es_left"].meter.posture
    assert posture is not None and posture.matched is None and posture.short == "standing"
    # the three trials were done lying and kept their posture: none rejected for it
    assert all(t["posture"] == "lying" and t["posture_change_deg"] < 3.0 for t in ring.state.trials)


def test_a_trial_rejected_for_its_posture_says_by_how_much(qtbot) -> None:
    card = TrialCard()
    qtbot.addWidget(card)
    trial = {
        "type": "trial",
        "channel": "es_left",
        "onset_s": 125.0,
        "verdict": "rejected",
        "verdict_reason": "posture changed: posture before and after differs by 7.2 deg (more than 3 deg)",
        "posture_change_deg": 7.24,
        "posture": "lying",
    }
    card.set_trial(trial, 1)
    assert card.verdict_text == "rejected: posture changed by 7.2 deg"
    card.set_trial({**trial, "verdict_reason": "signal fault during the contraction: flat"}, 2)
    assert card.verdict_text == "rejected: signal fault during the contraction: flat"
