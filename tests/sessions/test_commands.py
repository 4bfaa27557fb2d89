"""The issue's done-when, end to end on the simulator: a client is created, calibrated, recorded in two
sessions, shown with ``history`` and an HTML report that renders in headless chromium; a board that
cannot resolve true relaxation turns the verdicts into ``not_measurable``."""

import io
import json
import shutil
import stat
import subprocess

import numpy as np
import pytest

from biofeed.boards import BOARDS_FOLDER
from biofeed.errors import CatalogueError
from biofeed.sessions import commands
from biofeed.sessions.catalogue import CATALOGUE_FILE, Catalogue
from biofeed.sessions.session_analysis import analyse_session_recording
from biofeed.sim.device import SimulatedDevice
from biofeed.sim.outputs import write_recording

CALIBRATION = """
kind = "calibration"
name = "calibration-short"
[[step]]
kind = "signal_check"
duration_s = 6.0
instruction = "Lie still."
posture = "lying_supine"
[[step]]
kind = "noise_floor"
duration_s = 30.0
instruction = "Stay relaxed."
posture = "lying_supine"
[[step]]
kind = "set_point"
duration_s = 30.0
instruction = "Keep resting."
posture = "lying_supine"
[[step]]
kind = "reference_contraction"
duration_s = 5.0
instruction = "Contract gently."
required = false
"""

# The simulator's pandiculation scenario: 60 s of rest, a contraction at 60 s, 125 s of rest. A sham
# trial fits in the first rest; the real one lines up with the scenario's contraction.
SHAM_FIRST = """
kind = "exercise"
name = "sham-then-real"
posture = "lying_supine"
lead_in_s = 15.0
[timing]
contract_s = 3.0
release_s = 6.0
[[trial]]
kind = "sham"
rest_s = 36.0
[[trial]]
kind = "real"
rest_s = 125.0
"""


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def practice(tmp_path_factory):
    root = tmp_path_factory.mktemp("practice")
    (root / "calibration-short.toml").write_text(CALIBRATION)
    (root / "sham-then-real.toml").write_text(SHAM_FIRST)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BIOFEED_HOME", str(root / "home"))
        out = io.StringIO()
        assert commands.clients_add("anna", out=out) == 0
        calibration_code = commands.calibrate(
            "sim://rest?speed=0&seed=4&duration=75",
            "anna",
            protocol=str(root / "calibration-short.toml"),
            out_dir=root / "calibration",
            out=out,
        )
        for seed in (1, 2):
            write_recording(SimulatedDevice("pandiculation", seed=seed, duration_s=200.0), root / f"session-{seed}")
        commands.sessions_add("anna", root / "session-1", protocol="pandiculation", out=out)
        commands.sessions_add("anna", root / "session-2", protocol=str(root / "sham-then-real.toml"), out=out)
        commands.report("anna", root / "anna.html", out=out)
        commands.report(str(root / "session-2"), root / "session-2.html", out=out)
        yield {"root": root, "home": root / "home", "log": out.getvalue(), "calibration_code": calibration_code}


@pytest.fixture
def home(practice, monkeypatch):
    monkeypatch.setenv("BIOFEED_HOME", str(practice["home"]))
    return practice["home"]


def _history(client="anna"):
    out = io.StringIO()
    assert commands.history(client, as_json=True, out=out) == 0
    return json.loads(out.getvalue())


def test_calibration_on_the_simulator_is_stored_with_the_client(practice, home):
    log = practice["log"]
    assert practice["calibration_code"] == 0, log  # every required step passed
    # the board is judged before the first step's result
    assert log.index("board simulator") < log.index("passed: contact good")
    assert "step 4/4 reference_contraction" in log and "failed: es_left: no contraction" in log
    with Catalogue() as catalogue:
        anna = catalogue.client("anna")
        (calibration,) = catalogue.calibrations(anna)
    result = calibration.result
    assert calibration.complete and calibration.board_profile == "simulator"
    # sim://rest holds a 3 uV rest over a 1.5 uV sensor floor: the rest is not silent, and the floor
    # comes from the 450-500 Hz band
    assert result["noise_floor_source"] == "high_band"
    for channel in ("es_left", "es_right"):
        assert result["noise_floor_uv"][channel] == pytest.approx(1.5, rel=0.1)
    assert result["set_points_uv"]["lying_supine"]["es_left"] == pytest.approx(3.0, rel=0.2)
    assert result["reference_contraction_uv"] == {}
    assert calibration.recording_path == str((practice["root"] / "calibration").resolve())


def test_history_json_lists_both_sessions_with_set_points_verdicts_and_the_trend(practice, home):
    history = _history()
    assert history["client"]["pseudonym"] == "anna" and "name" not in history["client"]
    first, second = history["sessions"]
    assert first["protocol"] == "pandiculation" and second["protocol"] == "sham-then-real"
    with Catalogue() as catalogue:
        calibration_id = catalogue.calibrations(catalogue.client("anna"))[0].id
    for session in (first, second):
        assert session["calibration_id"] == calibration_id  # applied to later sessions
        assert session["board"]["emg"]["resolves_true_relaxation"] is True
        for channel in ("es_left", "es_right"):
            # the scenario rests at 6.0 (left) / 5.4 (right) uV before and 4.0 / 3.6 uV after
            assert session["set_point_before_uv"][channel] == pytest.approx(
                6.0 if channel == "es_left" else 5.4, rel=0.1
            )
            assert session["set_point_after_uv"][channel] == pytest.approx(
                4.0 if channel == "es_left" else 3.6, rel=0.1
            )
            low, high = session["set_point_before_ci95_uv"][channel]
            assert low < session["set_point_before_uv"][channel] < high
            assert session["set_point_before_rvc_pct"][channel] is None  # no reference contraction on sim://rest
        assert [t["channel"] for t in session["trials"]] == ["es_left", "es_right"]
        for trial in session["trials"]:
            # lower and lasting, but 4 uV is above max(2 uV, 1.5 x floor): SCIENCE.md 6.1
            assert trial["verdict"] == "none" and "absolute limit" in trial["verdict_reason"]
            assert trial["score"] >= 80.0 and 0.6 < trial["ratio"] < 0.75
    assert first["sham_trials"] == []
    assert [t["trial_index"] for t in second["trials"]] == [1, 1]  # lined up with the protocol's real trial
    shams = second["sham_trials"]
    assert [(t["channel"], t["trial_index"], t["sham"]) for t in shams] == [("es_left", 0, True), ("es_right", 0, True)]
    for sham in shams:
        assert sham["verdict"] == "none" and sham["score"] is None
        assert sham["ratio"] == pytest.approx(1.0, abs=0.08)  # rest alone did not lower the set point
    trend = history["trend"]
    for channel in ("es_left", "es_right"):
        change = trend["set_point_before_uv"][channel]
        assert change["n_sessions"] == 2
        low, high = change["change_ci95_uv"]
        assert low < 0.0 < high  # the same scenario twice: no change
        assert change["slope_uv_per_week"] is None and "less than 1 day" in change["note"]
    assert trend["verdicts"] == {"real": {"none": 4}, "sham": {"none": 2}}
    assert trend["true_fraction"] == {"real": 0.0, "sham": 0.0}


def test_text_commands(practice, home):
    out = io.StringIO()
    commands.history("anna", out=out)
    text = out.getvalue()
    assert "client anna: 2 session(s)" in text and "sham  0 es_left: none" in text and "trend es_left" in text
    out = io.StringIO()
    commands.clients_list(out=out)
    assert out.getvalue().startswith("anna\t2 session(s)")
    out = io.StringIO()
    commands.clients_show("anna", as_json=True, out=out)
    shown = json.loads(out.getvalue())
    assert len(shown["calibrations"]) == 1 and len(shown["sessions"]) == 2
    out = io.StringIO()
    commands.sessions_list("anna", as_json=True, out=out)
    assert [s["n_trials"] for s in json.loads(out.getvalue())] == [2, 4]
    out = io.StringIO()
    commands.sessions_show(2, out=out)
    assert "sham  0 es_right" in out.getvalue()
    out = io.StringIO()
    commands.boards("esp32_myoware2", out=out)
    assert "not measurable with this board" in out.getvalue()


def test_user_errors_are_clear(practice, home):
    with pytest.raises(CatalogueError, match="no client 'zoe'; known: anna"):
        commands.history("zoe")
    with pytest.raises(ValueError, match="filed already"):
        commands.sessions_add("anna", practice["root"] / "session-1")
    commands.clients_add("bob", out=io.StringIO())
    with pytest.raises(ValueError, match="was recorded for client 'anna', not 'bob'"):
        commands.sessions_add("bob", practice["root"] / "calibration")
    with pytest.raises(ValueError, match="no protocol 'stretching'; known: calibration"):
        commands.calibrate("sim://rest", "anna", protocol="stretching")


def test_health_data_is_readable_by_its_owner_only(practice, home):
    assert _mode(home) == 0o700
    assert _mode(home / CATALOGUE_FILE) == 0o600
    calibration = practice["root"] / "calibration"
    assert _mode(calibration) == 0o700
    assert all(_mode(p) == 0o600 for p in calibration.iterdir())
    assert _mode(practice["root"] / "anna.html") == 0o600
    assert _mode(practice["root"] / "session-2.html") == 0o600


def _render(html_path, png_path, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--window-size=1200,2400",
            f"--screenshot={png_path}",
            html_path.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    from matplotlib.image import imread

    return imread(png_path)


def _has_colour(image, rgb_hex, tolerance=0.06):
    rgb = np.array([int(rgb_hex[k : k + 2], 16) / 255 for k in (1, 3, 5)])
    return int((np.abs(image[..., :3] - rgb).max(axis=-1) < tolerance).sum())


@pytest.mark.parametrize("target", ["client", "recording"])
def test_html_report_renders_in_headless_chromium(practice, tmp_path, target):
    html_path = practice["root"] / ("anna.html" if target == "client" else "session-2.html")
    text = html_path.read_text()
    assert "data:image/png;base64," in text and "http" not in text.split("<body>")[1]  # self-contained
    assert ("Resting tension across sessions" in text) is (target == "client")
    assert "sham" in text and "not measurable" in text  # the verdict words are explained
    image = _render(html_path, tmp_path / "report.png", tmp_path)
    assert image.shape[0] == 2400 and image.shape[1] == 1200
    assert image[..., :3].std() > 0.05  # not a blank page
    # the embedded plots were decoded and drawn: the set point's teal line is on the page
    assert _has_colour(image, "#1b998b") > 200


def test_a_board_that_cannot_resolve_true_relaxation_gives_not_measurable(practice, tmp_path):
    # the same recording, read as if it came from an ESP32 + MyoWare board
    boards = tmp_path / "boards"
    boards.mkdir()
    text = (BOARDS_FOLDER / "esp32_myoware2.toml").read_text()
    text = text.replace('name = "esp32_myoware2"', 'name = "weak"').replace(
        'board_profile_names = ["esp32_myoware2"]', 'board_profile_names = ["simulator"]'
    )
    (boards / "weak.toml").write_text(text)
    analysis = analyse_session_recording(practice["root"] / "session-1", boards_folder=boards)
    board = analysis["board"]["emg"]
    assert board["profile"] == "weak" and not board["resolves_true_relaxation"]
    assert analysis["trials"]
    for trial in analysis["trials"]:
        assert trial["verdict"] == "not_measurable"
        assert trial["verdict_reason"].startswith("not measurable with this board (weak): one count is 5 uV")
        assert trial["analysis_verdict"] == "none"
