"""``biofeed live --client NAME --record DIR``: the client's calibration applied, the recording filed as
their session with its trials lined up with the protocol's cues; the board check before the session."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from biofeed.blocks import DeviceInfo
from biofeed.errors import CatalogueError
from biofeed.live.app import run_live
from biofeed.live.session_plan import SessionPlan
from biofeed.sessions import commands
from biofeed.sessions.board_notice import BoardNoticeSink
from biofeed.sessions.catalogue import Catalogue
from tests.live.conftest import record_tape

pytest.importorskip("pytestqt")

from biofeed.live.board_banner import BoardBanner

CALIBRATION = """
kind = "calibration"
name = "calibration-short"
[[step]]
kind = "noise_floor"
duration_s = 21.0
instruction = "Stay relaxed."
posture = "lying_supine"
"""


@pytest.fixture
def anna(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """A client with a calibration (noise floor) on the simulator; returns the calibration's id."""
    monkeypatch.setenv("BIOFEED_HOME", str(tmp_path / "home"))
    commands.clients_add("anna", out=io.StringIO())
    protocol = tmp_path / "calibration-short.toml"
    protocol.write_text(CALIBRATION)
    out = io.StringIO()
    code = commands.calibrate(
        "sim://rest?speed=0&seed=4&duration=25", "anna", protocol=str(protocol), out_dir=tmp_path / "cal", out=out
    )
    assert code == 0, out.getvalue()
    with Catalogue() as catalogue:
        (calibration,) = catalogue.calibrations(catalogue.client("anna"))
    return calibration.id


def test_live_client_files_the_recording_as_a_session_with_its_trials(qapp, anna, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "session"
    # the simulator contracts at 60 s, as the pandiculation protocol's first trial asks; 72 s hold the
    # contraction and the release (the verdict then lacks the rest after it)
    code = run_live(
        "sim://pandiculation?speed=0&seed=1",
        client="anna",
        record_dir=folder,
        protocol="pandiculation",
        duration_s=72.0,
        screenshot=tmp_path / "live.png",
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "board simulator" in captured.err and "can resolve true relaxation" in captured.err
    assert f"recording: {folder}" in captured.out
    assert "session 1 of anna" in captured.out and "calibration applied: yes" in captured.out
    with Catalogue() as catalogue:
        client = catalogue.client("anna")
        (session,) = catalogue.sessions(client)
        (recording,) = catalogue.recordings(session)
        trials = catalogue.trials(session)
    assert session.protocol == "pandiculation" and session.posture == "lying_supine"
    assert session.calibration_id == anna
    assert recording.path == str(folder.resolve())
    assert [(t.channel, t.trial_index, t.sham) for t in trials] == [("es_left", 0, False), ("es_right", 0, False)]
    for trial in trials:
        assert abs(trial.trial["onset_s"] - 60.0) < 3.0  # the first contraction cue is at 60 s


def test_the_live_pipeline_gets_the_clients_noise_floor_and_nothing_recorded_is_said(anna, capsys) -> None:
    with Catalogue() as catalogue:
        (calibration,) = catalogue.calibrations(catalogue.client("anna"))
    floor = calibration.result["noise_floor_uv"]
    plan = SessionPlan("anna", None)
    assert plan.pipeline_kwargs == {"noise_floor_uv": {"emg": [floor["es_left"], floor["es_right"]]}}
    assert SessionPlan(None, None).pipeline_kwargs == {}
    assert run_live("sim://rest?speed=0", client="anna", headless=True, duration_s=1.0) == 0
    assert "nothing recorded: no session filed for anna" in capsys.readouterr().out


def test_live_refuses_an_unknown_client_or_protocol_before_opening_the_device(anna) -> None:
    with pytest.raises(CatalogueError, match="no client 'zoe'"):
        run_live("serial:///dev/does-not-exist", client="zoe", headless=True)
    with pytest.raises(ValueError, match="no protocol 'stretching'"):
        run_live("serial:///dev/does-not-exist", protocol="stretching", headless=True)


@pytest.fixture(scope="module")
def simulator_info() -> DeviceInfo:
    return next(
        item for item in record_tape("sim://rest?speed=0&duration=1", pipeline=False) if isinstance(item, DeviceInfo)
    )


def test_the_window_warns_before_a_session_on_a_board_that_cannot_resolve_true_relaxation(
    qtbot, simulator_info: DeviceInfo
) -> None:
    myoware = dataclasses.replace(simulator_info, board_profile="esp32_myoware2")
    for info, warned in ((simulator_info, False), (myoware, True)):
        out = io.StringIO()
        notice = BoardNoticeSink(out)
        banner = BoardBanner(notice)
        qtbot.addWidget(banner)
        assert not banner.refresh() and banner.isHidden()  # nothing before the INFO
        notice.write(info)
        assert banner.refresh()
        assert banner.isHidden() is not warned
        assert out.getvalue().startswith(f"biofeed: board {info.board_profile}")  # the terminal's notice
        if warned:
            assert banner.text().startswith("\u26a0 board esp32_myoware2")
            assert "true relaxation is not measurable with this board" in banner.text()
            assert notice.warnings == notice.lines
        else:
            assert notice.warnings == []
