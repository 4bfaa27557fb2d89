"""The live window, offscreen, on simulated sessions: what it displays (no timer, no sleeps)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from biofeed.blocks import ChannelInfo, ChannelKind, StreamInfo
from biofeed.live.recording_switch import RecordingSwitch
from biofeed.live.session import LiveSession
from biofeed.live.wording import zone_limit_uv
from biofeed.sinks.ring_buffer import ChannelState, RingBufferSink
from biofeed.sources import open_source
from tests.live.conftest import TapePlayer

pytest.importorskip("pytestqt")

from biofeed.live.window import LiveWindow, pair_channels


def _window(qtbot, ring: RingBufferSink, **options) -> LiveWindow:
    window = LiveWindow(ring, **options)
    qtbot.addWidget(window)
    window.resize(1500, 950)
    window.show()
    return window


def test_good_session_ends_in_a_true_relaxation_card(qtbot, good_tape) -> None:
    ring = RingBufferSink()
    TapePlayer(good_tape, ring).play()
    window = _window(qtbot, ring)
    assert window.refresh()
    state = ring.state
    assert {c.key for c in state.channels} == set(window.panels) == {"emg/es_left", "emg/es_right"}
    for key, panel in window.panels.items():
        channel = state.channel(key)
        assert channel is not None and channel.trials
        assert channel.trials[-1]["verdict"] == "true"
        assert panel.card.verdict_text == "true relaxation"
        assert "ratio 0." in panel.card.details_text and "95% CI" in panel.card.details_text
        assert "release" in panel.card.details_text and "re-burst" in panel.card.details_text
    assert window.history.verdicts() == ["true relaxation", "true relaxation"]
    assert "acquisition ended" in window.status_text


def test_poor_session_ends_in_not_reached(qtbot, poor_tape) -> None:
    ring = RingBufferSink()
    TapePlayer(poor_tape, ring).play()
    window = _window(qtbot, ring)
    window.refresh()
    for panel in window.panels.values():
        assert panel.card.verdict_text == "not reached"
        assert panel.card.summary is not None and panel.card.summary.verdict_kind == "none"
    assert window.history.verdicts() == ["not reached", "not reached"]


def test_phases_floor_set_point_and_meter_during_a_trial(qtbot, good_tape) -> None:
    ring = RingBufferSink()
    player = TapePlayer(good_tape, ring)
    player.play(until_s=8.0)
    window = _window(qtbot, ring, window_s=20.0)
    window.refresh()
    left = window.panels["emg/es_left"]
    assert left.meter.status == "calibrating noise floor"  # nothing is analysed in the first 10 s
    assert left.floor_uv() is None
    player.play(until_s=75.0)  # the contraction starts at 60 s, the release ends near 68 s
    window.refresh()
    state = ring.state
    for key, panel in window.panels.items():
        channel = state.channel(key)
        assert channel is not None and channel.noise_floor_uv is not None
        floor = channel.noise_floor_uv
        assert panel.floor_uv() == pytest.approx(floor)
        assert panel.zone_top_uv() == pytest.approx(math.hypot(zone_limit_uv(floor), floor))
        assert channel.set_point_uv is not None
        low, high = panel.set_point_band_uv()
        assert high == pytest.approx(math.hypot(channel.set_point_uv, floor))
        assert low == pytest.approx(math.hypot(0.8 * channel.set_point_uv, floor))
        phases = [phase for phase, _, _ in panel.phase_regions()]
        assert phases[:2] == ["contraction", "release"]
        start = panel.phase_regions()[0][1]
        assert 59.5 < start < 61.0
        # the meter: live level against the set point taken when the contraction began
        assert panel.meter.level_uv == pytest.approx(channel.envelope_corrected_uv)
        assert channel.trial_reference_uv is not None
        assert panel.meter.reference_uv == pytest.approx(channel.trial_reference_uv)
        assert panel.meter.floor_uv == pytest.approx(floor)
        assert panel.meter.level_text.endswith("\u00b5V")
    # the scripted rest before the trial is 6.0 uV left, 5.4 uV right (0.9 x)
    assert state.channel("emg/es_left").trial_reference_uv == pytest.approx(6.0, rel=0.15)
    assert state.channel("emg/es_right").trial_reference_uv == pytest.approx(5.4, rel=0.15)


def test_trace_scrolls_over_the_chosen_window_and_breaks_at_gaps(qtbot, good_tape) -> None:
    ring = RingBufferSink()
    TapePlayer(good_tape, ring).play(until_s=40.0)
    window = _window(qtbot, ring, window_s=10.0)
    window.refresh()
    panel = window.panels["emg/es_left"]
    x, _ = panel.trace_curve.getData()
    assert x[-1] - x[0] == pytest.approx(10.0, abs=0.05)  # the window, clipped to it
    assert x[-1] == pytest.approx(0.0, abs=0.01)  # now is at 0, the axis is fixed and the data scrolls
    assert window.now_s == pytest.approx(ring.state.now_s, abs=0.35)  # the ECG stage delays the display
    assert panel.trace_plot.viewRange()[0] == pytest.approx([-10.0, 0.0])
    window.set_window_s(30.0)
    window.refresh()
    assert panel.trace_plot.viewRange()[0] == pytest.approx([-30.0, 0.0])
    assert window.trunk.plot.viewRange()[0] == pytest.approx([-30.0, 0.0])
    assert window.window_choice.currentData() == 30.0
    x, _ = panel.trace_curve.getData()
    assert x[-1] - x[0] == pytest.approx(30.0, abs=0.05)


def test_pause_freezes_the_display_not_the_data(qtbot, good_tape) -> None:
    ring = RingBufferSink()
    player = TapePlayer(good_tape, ring)
    player.play(until_s=20.0)
    window = _window(qtbot, ring)
    window.refresh()
    panel = window.panels["emg/es_left"]
    shown_before = panel.trace_curve.getData()[1].copy()
    now_before = window.now_s
    window.pause_action.trigger()
    assert window.paused
    player.play(until_s=30.0)
    assert not window.refresh()
    np.testing.assert_array_equal(panel.trace_curve.getData()[1], shown_before)
    assert window.now_s == now_before
    assert "DISPLAY PAUSED" in window.status_text
    window.set_paused(False)
    window.refresh()
    assert window.now_s == pytest.approx(ring.state.now_s, abs=0.5) and window.now_s > now_before + 9


def test_channels_can_be_hidden(qtbot, good_tape) -> None:
    ring = RingBufferSink()
    TapePlayer(good_tape, ring).play(until_s=15.0)
    window = _window(qtbot, ring)
    window.refresh()
    actions = window.channels_menu.actions()
    assert [a.text() for a in actions] == ["es_left", "es_right"]
    actions[1].setChecked(False)
    assert window.panels["emg/es_right"].isHidden()
    assert not window.panels["emg/es_left"].isHidden()
    actions[1].setChecked(True)
    assert not window.panels["emg/es_right"].isHidden()


def test_trunk_angles_are_shown(qtbot, good_tape) -> None:
    ring = RingBufferSink()
    TapePlayer(good_tape, ring, trunk=True).play(until_s=63.0)  # the back arches during the contraction
    window = _window(qtbot, ring, window_s=20.0)
    window.refresh()
    assert window.trunk.isVisible()
    # lying rest calibrated to 0; the contraction arches the lumbar spine by -5 deg (simulator)
    assert window.trunk.latest_deg["lumbar_flexion"] == pytest.approx(-5.0, abs=1.0)
    assert "lumbar flexion" in window.trunk.label.text()


def test_status_bar_and_markers_on_a_real_acquisition(qtbot, tmp_path: Path) -> None:
    url = "sim://pandiculation?speed=0&duration=12"
    recording = RecordingSwitch(url)
    recording.start(tmp_path / "rec")
    session = LiveSession(open_source(url), recording)
    window = _window(qtbot, session.ring, controls=session)
    session.start()
    result = session.wait()
    assert result.error is None
    window.refresh()
    window.marker_label.setText("breath")
    event = window.place_marker(130)
    assert event is not None and event["code"] == 130 and event["label"] == "breath"
    window.refresh()
    text = window.status_text
    for part in (
        "emg 2000 Hz",
        "imu_thoracic 100 Hz",
        "lost 0 packets (0 samples)",
        "battery 100%",
        "acquisition ended",
    ):
        assert part in text
    assert str(tmp_path / "rec") in text
    panel = window.panels["emg/es_left"]
    assert [m.label for m in session.ring.state.markers] == ["breath"]
    assert panel.marker_times_s() == pytest.approx([event["time_s"]])
    window.toggle_recording()  # stop
    assert not session.is_recording and "Record" in window.record_action.text()
    events = (tmp_path / "rec" / "events.jsonl").read_text().splitlines()
    assert any('"type":"marker"' in line and '"label":"breath"' in line for line in events)


def test_a_frozen_window_loses_nothing_from_the_recording(qtbot, tmp_path: Path) -> None:
    from biofeed.record.summary import summarize_recording

    url = "sim://rest?speed=0&duration=15"
    recording = RecordingSwitch(url)
    recording.start(tmp_path / "rec")
    ring = RingBufferSink(capacity_s=2.0)
    session = LiveSession(open_source(url), recording, ring=ring)
    window = _window(qtbot, ring, controls=session, window_s=2.0)
    session.start()  # the window never refreshes while the acquisition runs: it is frozen
    result = session.wait()
    session.close(result)
    window.refresh()
    x, _ = window.panels["emg/es_left"].trace_curve.getData()
    assert window.now_s == pytest.approx(15.0, abs=0.35)  # the ECG stage holds the last 0.3 s
    assert x[-1] - x[0] <= 2.0 + 1e-9  # the ring kept only its capacity
    summary = summarize_recording(tmp_path / "rec")
    emg = next(s for s in summary.streams if s.name == "emg")
    assert emg.n_samples == 15 * 2000 and emg.samples_lost == 0


def test_left_and_right_channels_pair_up() -> None:
    def channel(name: str, site: str = "") -> ChannelState:
        return ChannelState("emg", name, site)

    rows = pair_channels(
        (
            channel("es_left"),
            channel("mf_right"),
            channel("es_right"),
            channel("ch3", "multifidus L5 left"),
            channel("extra"),
            channel("mf_left"),
        )
    )
    names = [(a.channel if a else None, b.channel if b else None) for a, b in rows]
    assert names == [("es_left", "es_right"), ("mf_left", "mf_right"), ("ch3", None), ("extra", None)]


def test_window_refuses_a_window_longer_than_the_ring(qtbot) -> None:
    with pytest.raises(ValueError, match="capacity"):
        LiveWindow(RingBufferSink(capacity_s=10.0), window_s=20.0)


def test_panels_follow_the_device_channels(qtbot) -> None:
    from biofeed.blocks import DeviceInfo

    ring = RingBufferSink()
    channels = tuple(ChannelInfo(f"c{k}", ChannelKind.EMG, "uV") for k in range(4))
    ring.write(DeviceInfo("d", (1, 0, 0), "p", (StreamInfo("emg", 2000.0, channels),)))
    window = _window(qtbot, ring)
    window.refresh()
    assert list(window.panels) == [f"emg/c{k}" for k in range(4)]
