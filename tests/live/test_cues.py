"""Exercise-protocol cues live: the cue shown follows the device's sample counter, the events line up.

The simulator's raw items (no pipeline: the cues need only the EMG sample counter) are played into a
:class:`CueSink` by hand, so every check is at a known sample; no timer, no sleeps.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from biofeed.blocks import Block
from biofeed.live.app import run_live
from biofeed.live.cues import CUE_TITLES, CueSink, cue_line
from biofeed.record.reader import open_recording
from biofeed.sessions.protocol import CueKind, load_exercise_protocol
from tests.live.conftest import record_tape

pytest.importorskip("pytestqt")

from biofeed.live.cue_panel import CuePanel

# 5 s lead-in; a real trial at 5 s (contract 3, release 6, rest 8); a sham at 22 s; the end at 39 s
SHORT = """
kind = "exercise"
name = "short"
posture = "lying_supine"
lead_in_s = 5.0
[timing]
contract_s = 3.0
release_s = 6.0
rest_s = 8.0
[[trial]]
kind = "real"
[[trial]]
kind = "sham"
"""


class EventList:
    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

    def append_event(self, event) -> None:
        self.events.append(dict(event))


@pytest.fixture(scope="module")
def raw_tape() -> list[object]:
    return record_tape("sim://rest?speed=0&seed=3&duration=42", pipeline=False)


@pytest.fixture
def protocol_file(tmp_path: Path) -> Path:
    path = tmp_path / "short.toml"
    path.write_text(SHORT)
    return path


def _emg_block(item: object) -> Block | None:
    return item if isinstance(item, Block) and item.info.name == "emg" else None


def test_the_cue_at_each_sample_counter_time_is_the_schedules(raw_tape, protocol_file) -> None:
    schedule = load_exercise_protocol(str(protocol_file))
    recorder = EventList()
    sink = CueSink(schedule, recorder)
    origin = next(b.first_index for b in map(_emg_block, raw_tape) if b is not None)
    checked = 0
    for item in raw_tape:
        sink.write(item)
        block = _emg_block(item)
        if block is None:
            continue
        now_s = (block.end_index - origin) / block.info.sample_rate_hz
        assert sink.now_s == pytest.approx(now_s)
        assert sink.state == schedule.state_at(now_s)
        checked += 1
    assert checked > 40 and sink.finished and sink.state is None  # 42 s of data, a 39 s protocol
    # one event per cue, at the sample where the cue starts, in the recording's events format
    assert recorder.events == sink.events
    assert [e["cue_index"] for e in recorder.events] == [c.index for c in schedule.cues]
    for event, cue in zip(recorder.events, schedule.cues, strict=True):
        assert event["type"] == "cue" and event["stream"] == "emg" and event["protocol"] == "short"
        assert event["sample_index"] == origin + round(cue.start_s * 2000)
        assert event["time_s"] == pytest.approx(cue.start_s)
        assert (event["cue"], event["trial_index"], event["sham"]) == (cue.kind.value, cue.trial_index, cue.sham)


def test_the_panel_shows_the_cue_its_countdown_the_next_one_and_shams(qtbot, raw_tape, protocol_file) -> None:
    schedule = load_exercise_protocol(str(protocol_file))
    sink = CueSink(schedule)
    panel = CuePanel(sink)
    qtbot.addWidget(panel)
    assert panel.refresh() and panel.instruction_text == "waiting for the device"
    seen: dict[CueKind, str] = {}
    shams = 0
    for item in raw_tape:
        sink.write(item)
        if _emg_block(item) is None:
            continue
        panel.refresh()
        state = schedule.state_at(sink.now_s)
        if state is None:
            continue
        assert panel.shown == state
        assert panel.cue_text == CUE_TITLES[state.cue.kind]
        assert panel.countdown_text == f"{math.ceil(state.remaining_s - 1e-9)} s"
        assert panel.instruction_text == state.cue.text
        if state.next_cue is not None:
            assert panel.next_text.startswith(f"next: {CUE_TITLES[state.next_cue.kind]}")
        if state.cue.sham:
            shams += 1
            assert panel.trial_text == "SHAM trial 2 of 2: no contraction"
        elif state.cue.trial_index is not None:
            assert panel.trial_text == f"trial {state.cue.trial_index + 1} of 2"
        seen[state.cue.kind] = panel.cue_text
    assert seen == {
        CueKind.REST: "REST",
        CueKind.CONTRACT: "CONTRACT",
        CueKind.RELEASE: "RELEASE SLOWLY",
        CueKind.STAY_RELAXED: "STAY RELAXED",
    }
    assert shams > 0
    assert panel.cue_text == "DONE" and "protocol has ended" in panel.instruction_text
    assert not panel.refresh()  # nothing changed


def test_a_recording_started_late_still_lines_up_its_cues(raw_tape, protocol_file) -> None:
    # the schedule's time 0 is the session's first sample; a recording's analysis counts from its own
    from biofeed.sessions.protocol import schedule_offset_from_events

    schedule = load_exercise_protocol(str(protocol_file))
    sink = CueSink(schedule)
    for item in raw_tape:
        sink.write(item)
    origin = sink.events[0]["sample_index"]
    recording_first_index = origin + 3 * 2000 + 17  # recording started 3 s and 17 samples in
    late = [e for e in sink.events if e["sample_index"] >= recording_first_index]
    offset_s = schedule_offset_from_events(late, {"emg": (recording_first_index, 2000.0)})
    assert offset_s == pytest.approx(-(3 + 17 / 2000))  # the protocol started before the recording


def test_live_headless_prints_the_cues_and_records_their_events(tmp_path: Path, protocol_file, capsys) -> None:
    folder = tmp_path / "rec"
    code = run_live(
        "sim://rest?speed=0&seed=1", record_dir=folder, headless=True, duration_s=24.0, protocol=str(protocol_file)
    )
    assert code == 0
    out = capsys.readouterr().out
    schedule = load_exercise_protocol(str(protocol_file))
    started = [c for c in schedule.cues if c.start_s < 24.0]
    for cue in started:
        assert cue_line(cue, 2) in out
    assert "cue: STAY RELAXED (3 s), sham trial 2/2" in out
    events = [e for e in open_recording(folder).events() if e["type"] == "cue"]
    assert [e["cue_index"] for e in events] == [c.index for c in started]
    assert [e["time_s"] for e in events] == [c.start_s for c in started]
