"""The guided calibration in the live window, offscreen.

The panel is driven on the simulator's raw items played by hand (each check at a known sample), then
``biofeed calibrate`` without ``--headless`` runs the whole window on ``sim://rest`` with a test
driver pressing the buttons, and the calibration stored with the client is checked.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from biofeed.blocks import Block
from biofeed.sessions import commands
from biofeed.sessions.calibrate import CalibrationRun, StepStatus, load_calibration_protocol
from biofeed.sessions.calibration_sink import CalibrationSink
from biofeed.sessions.catalogue import Catalogue
from tests.live.conftest import record_tape

pytest.importorskip("pytestqt")

from biofeed.live.calibration_panel import CalibrationPanel
from biofeed.live.qt import QtCore, QtWidgets

SHORT = """
kind = "calibration"
name = "calibration-short"
title = "Short calibration"
[[step]]
kind = "signal_check"
duration_s = 5.0
instruction = "Lie still on your back."
posture = "lying_supine"
[[step]]
kind = "noise_floor"
duration_s = 25.0
instruction = "Stay relaxed, supported."
posture = "lying_supine"
[[step]]
kind = "set_point"
duration_s = 15.0
instruction = "Keep resting."
posture = "lying_supine"
"""


@pytest.fixture(scope="module")
def raw_tape() -> list[object]:
    return record_tape("sim://rest?speed=0&seed=4&duration=80", pipeline=False)


@pytest.fixture
def protocol_file(tmp_path: Path) -> Path:
    path = tmp_path / "calibration-short.toml"
    path.write_text(SHORT)
    return path


class Player:
    """Plays a tape into a sink up to raw EMG times."""

    def __init__(self, tape: Sequence[object], sink: CalibrationSink) -> None:
        self._items: Iterator[object] = iter(tape)
        self.sink = sink
        self.now_s = 0.0

    def play(self, seconds: float) -> None:
        until_s = self.now_s + seconds
        for item in self._items:
            self.sink.write(item)
            if isinstance(item, Block) and item.info.name == "emg":
                self.now_s = item.end_index / item.info.sample_rate_hz
                if self.now_s >= until_s:
                    return


def test_the_panel_walks_through_confirm_skip_retry_and_finish(qtbot, raw_tape, protocol_file) -> None:
    sink = CalibrationSink(CalibrationRun(load_calibration_protocol(str(protocol_file)), auto_advance=False))
    panel = CalibrationPanel(sink)
    qtbot.addWidget(panel)
    player = Player(raw_tape, sink)
    panel.refresh()
    assert panel.step_text == "step 1 of 3: signal_check (lying_supine)"
    assert panel.instruction_text == "Lie still on your back."
    assert panel.progress_text == "press Confirm when you are ready (5 s)"
    assert panel.confirm_button.isEnabled() and panel.skip_button.isEnabled()
    assert not panel.retry_button.isEnabled() and not panel.finish_button.isEnabled()
    player.play(3.0)  # nothing is measured while the step waits
    panel.refresh()
    assert panel.progress.elapsed_s == 0.0 and panel.progress.status is StepStatus.WAITING

    panel.confirm_button.click()
    assert not panel.confirm_button.isEnabled()
    player.play(2.0)
    panel.refresh()
    assert panel.progress_text == "checking contact, mains hum and clipping: 2 s of 5 s"
    player.play(3.5)
    panel.refresh()
    assert panel.result_lines[0].startswith("\u2713 step 1/3 signal_check (lying_supine) passed: contact good")
    assert panel.step_text == "step 2 of 3: noise_floor (lying_supine)"

    panel.skip_button.click()
    assert panel.result_lines[1] == "\u2013 step 2/3 noise_floor (lying_supine) skipped: skipped by the user"
    assert panel.step_text == "step 3 of 3: set_point (lying_supine)"
    assert panel.retry_button.isEnabled()
    panel.retry_button.click()  # the noise floor again
    assert len(panel.result_lines) == 1 and panel.step_text == "step 2 of 3: noise_floor (lying_supine)"

    panel.confirm_button.click()
    player.play(12.0)
    panel.refresh()
    assert panel.progress_text == "12 s of supported rest collected of 25 s (the noise floor needs 20 s)"
    assert 0.4 < panel.progress.elapsed_s / 25.0 < 0.6
    player.play(14.0)
    panel.refresh()
    assert "noise_floor (lying_supine) passed" in panel.result_lines[1]
    panel.confirm_button.click()
    player.play(16.0)
    panel.refresh()
    assert panel.result_lines[2].startswith("\u2713 step 3/3 set_point (lying_supine) passed: set point es_left")
    assert panel.step_text == "calibration finished"
    assert panel.finish_button.isEnabled() and not panel.skip_button.isEnabled()
    with qtbot.waitSignal(panel.finish_requested, timeout=1000):
        panel.finish_button.click()
    panel.show_outcome("calibration 1 stored with anna", ok=True)
    assert panel.outcome_text == "calibration 1 stored with anna"
    assert not any(b.isEnabled() for b in (panel.confirm_button, panel.retry_button, panel.finish_button))
    result = sink.finish()
    assert result.complete
    for channel in ("es_left", "es_right"):
        assert result.noise_floor_uv[channel] == pytest.approx(1.5, rel=0.15)
        assert result.set_points_uv["lying_supine"][channel] == pytest.approx(3.0, rel=0.25)


def _press_buttons_when_ready(app: QtWidgets.QApplication) -> QtCore.QTimer:
    """A stand-in for the person: Confirm each step, Finish at the end, close the window once stored."""

    def act() -> None:
        for widget in app.topLevelWidgets():
            panel = widget.findChild(CalibrationPanel)
            if panel is None or not widget.isVisible():
                continue
            if panel.outcome_text:
                widget.close()
            elif panel.confirm_button.isEnabled():
                panel.confirm_button.click()
            elif panel.finish_button.isEnabled():
                panel.finish_button.click()

    timer = QtCore.QTimer()
    timer.setInterval(20)
    timer.timeout.connect(act)
    timer.start()
    return timer


@pytest.fixture
def anna(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BIOFEED_HOME", str(tmp_path / "home"))
    commands.clients_add("anna", out=io.StringIO())
    return "anna"


def test_calibrate_in_the_window_stores_the_calibration_with_the_client(qapp, anna, tmp_path: Path) -> None:
    # as short as the steps allow (20 and 10 one-second windows): the window runs the live pipeline too
    protocol_file = tmp_path / "calibration-shorter.toml"
    protocol_file.write_text(SHORT.replace("duration_s = 25.0", "duration_s = 21.0").replace("15.0", "11.0"))
    out = io.StringIO()
    timer = _press_buttons_when_ready(qapp)
    try:
        code = commands.calibrate(
            "sim://rest?speed=0&seed=4&duration=120",
            anna,
            headless=False,
            protocol=str(protocol_file),
            out_dir=tmp_path / "calibration",
            out=out,
        )
    finally:
        timer.stop()
    log = out.getvalue()
    assert code == 0, log
    assert "board simulator" in log and "step 3/3 set_point (lying_supine) (11 s) [waiting until you are ready]" in log
    assert "calibration 1 stored with anna" in log
    with Catalogue() as catalogue:
        (stored,) = catalogue.calibrations(catalogue.client(anna))
    assert stored.complete and stored.board_profile == "simulator"
    assert stored.recording_path == str((tmp_path / "calibration").resolve())
    for channel in ("es_left", "es_right"):
        assert stored.result["noise_floor_uv"][channel] == pytest.approx(1.5, rel=0.15)
        assert stored.result["set_points_uv"]["lying_supine"][channel] == pytest.approx(3.0, rel=0.25)
    assert commands.record_pipeline_kwargs(anna)["noise_floor_uv"]["emg"][0] == pytest.approx(1.5, rel=0.15)


def test_without_a_display_calibrate_says_so_and_runs_headless(
    anna, tmp_path: Path, protocol_file, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("biofeed.live.app.sys.platform", "linux")
    out = io.StringIO()
    code = commands.calibrate(
        "sim://rest?speed=0&seed=4&duration=50",
        anna,
        headless=False,
        protocol=str(protocol_file),
        out_dir=tmp_path / "c",
        out=out,
    )
    assert code == 0, out.getvalue()
    assert "no display" in capsys.readouterr().err
    assert "step 2/3 noise_floor (lying_supine) (25 s): Stay" in out.getvalue()  # one step after the other
    assert "calibration 1 stored with anna" in out.getvalue()
