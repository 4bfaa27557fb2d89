from __future__ import annotations

import json
from pathlib import Path

import pytest

from biofeed.blocks import Block
from biofeed.live.recording_switch import RecordingSwitch
from biofeed.live.session import LiveSession
from biofeed.record.summary import summarize_recording
from biofeed.sources import open_source


def test_markers_need_data_and_a_valid_code(tmp_path: Path) -> None:
    session = LiveSession(open_source("sim://rest?speed=0&duration=1"), RecordingSwitch("sim://rest"))
    assert session.add_marker("too early") is None
    with pytest.raises(ValueError, match="128-255"):
        session.add_marker("x", code=12)
    with pytest.raises(ValueError, match="at most"):
        session.add_marker("x" * 65)


def test_markers_placed_while_acquisition_runs_are_recorded_whole(tmp_path: Path) -> None:
    url = "sim://rest?speed=0&duration=8"
    recording = RecordingSwitch(url)
    recording.start(tmp_path / "rec")
    session = LiveSession(open_source(url), recording)
    session.start()
    placed = []
    while not session.finished and len(placed) < 200:
        event = session.add_marker(f"m{len(placed)}", code=128 + len(placed) % 128)
        if event is not None:
            placed.append(event)
    session.close(session.wait())
    lines = (tmp_path / "rec" / "events.jsonl").read_text().splitlines()
    markers = [event for event in map(json.loads, lines) if event["type"] == "marker"]
    assert [m["label"] for m in markers] == [p["label"] for p in placed]
    indices = [m["sample_index"] for m in markers]
    assert indices == sorted(indices) and all(0 <= i < 8 * 2000 for i in indices)
    for marker in markers:
        assert marker["stream"] == "emg" and marker["time_s"] == pytest.approx(marker["sample_index"] / 2000)
    assert [m.label for m in session.ring.state.markers] == [p["label"] for p in placed]


class _Switcher:
    """Starts recording at 5 s and stops it at 10 s of device time, from the worker thread."""

    def __init__(self, folder: Path) -> None:
        self.session: LiveSession | None = None
        self.folder = folder

    def write(self, item: object) -> None:
        if self.session is not None and isinstance(item, Block) and item.info.name == "emg":
            if item.first_index == 5 * 2000:
                self.session.start_recording(self.folder)
            elif item.first_index == 10 * 2000:
                self.session.stop_recording()

    def close(self) -> None:
        pass


def test_recording_can_start_and_stop_mid_session(tmp_path: Path) -> None:
    url = "sim://rest?speed=0&duration=12"
    recording = RecordingSwitch(url)
    switcher = _Switcher(tmp_path / "mid")
    session = switcher.session = LiveSession(open_source(url), recording, trunk_angles=False, sinks=[switcher])
    session.start()
    paths = session.close(session.wait())
    assert paths == [tmp_path / "mid"] and not session.is_recording
    emg = next(s for s in summarize_recording(tmp_path / "mid").streams if s.name == "emg")
    # the decoder of a replay starts at the device's next periodic INFO (every second)
    assert 4 * 2000 <= emg.n_samples <= 5 * 2000
