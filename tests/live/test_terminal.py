from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from biofeed.live.app import run_live
from biofeed.live.terminal import TerminalStatus, channel_line, trial_card_lines, trunk_line
from biofeed.sinks.ring_buffer import RingBufferSink
from tests.live.conftest import TapePlayer


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, force_terminal=False, highlight=False), out


def test_verdicts_and_cards_are_printed_as_trials_end(poor_tape, good_tape) -> None:
    for tape, words in ((poor_tape, "not reached"), (good_tape, "true relaxation")):
        ring = RingBufferSink()
        player = TapePlayer(tape, ring)
        console, out = _console()
        view = TerminalStatus(console)
        player.play(until_s=30.0)
        view.update(ring.state, None, None)
        assert "trial" not in out.getvalue()
        player.play()
        view.finish(ring.state, None, Path("/rec"))
        text = out.getvalue()
        assert "trial 1 on es_" in text and text.count(words) >= 4  # two cards, two table rows
        assert "trials of this session" in text and "recording /rec" in text and "acquisition ended" in text


def test_channel_lines_show_the_levels(good_tape) -> None:
    ring = RingBufferSink()
    player = TapePlayer(good_tape, ring)
    player.play(until_s=5.0)
    left = ring.state.channel("emg/es_left")
    assert "calibrating noise floor" in channel_line(left)
    player.play(until_s=90.0)
    line = channel_line(ring.state.channel("emg/es_left"))
    for part in ("rest", "level", "set point", "before trial", "floor 3.0", "zone \u2264 4.5"):
        assert part in line
    card = trial_card_lines({"channel": "es_left", "verdict": "none", "onset_s": 61.0}, 3)
    assert card[0] == "trial 3 on es_left at 1:01: not reached"


def test_posture_match_and_flexion_phase_in_the_terminal(mixed_tape) -> None:
    ring = RingBufferSink()
    player = TapePlayer(mixed_tape, ring, trunk=True)
    player.play(until_s=35.5)  # the first flexion-relaxation cycle, at full flexion; no trial yet
    assert trunk_line(ring.state) == "trunk      flexion-relaxation: full flexion"
    assert channel_line(ring.state.channel("emg/es_left"), ring.state).endswith("  standing")
    player.play(until_s=420.0)  # lying: no cycle; the third trial (389.8 s) is open, lying as it began
    assert trunk_line(ring.state) is None
    assert "\u2713 same posture" in channel_line(ring.state.channel("emg/es_left"), ring.state)
    player.play(until_s=527.0)  # standing up: the trunk has left the trial's posture
    assert "\u2717 posture changed" in channel_line(ring.state.channel("emg/es_left"), ring.state)
    assert "posture" not in channel_line(ring.state.channel("emg/es_left"))  # without the state: no IMU words


def test_headless_run_end_to_end(tmp_path: Path, capsys) -> None:
    code = run_live(
        "sim://pandiculation?speed=0&duration=12", headless=True, duration_s=12.0, record_dir=tmp_path / "rec"
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "calibrating noise floor" in out  # the first 10 s
    assert "floor 1.5" in out or "floor 1.6" in out
    assert "no trials in this session" in out
    assert f"recording: {tmp_path / 'rec'}" in out
    assert "emg                24000     2000     0       0" in out
