from __future__ import annotations

import json
import threading
from pathlib import Path

from biofeed.blocks import ChannelInfo, ChannelKind, DeviceInfo, StreamInfo
from biofeed.live.recording_switch import RecordingSwitch
from biofeed.record import open_recording

DEVICE = DeviceInfo("dev", (1, 0, 0), "test", (StreamInfo("emg", 2000.0, (ChannelInfo("a", ChannelKind.EMG, "uV"),)),))


def test_nothing_is_written_while_switched_off(tmp_path: Path) -> None:
    switch = RecordingSwitch("sim://rest", new_path=lambda: tmp_path / "never")
    switch.append_frame(b"\x01\x02", 1.0)
    switch.append_event({"type": "x"})
    switch.set_device_info(DEVICE)
    assert not switch.sync_if_due()
    switch.sync()
    assert not switch.recording and switch.path is None and switch.stop() is None
    assert not (tmp_path / "never").exists()


def test_each_start_opens_a_new_recording_with_the_device_info(tmp_path: Path) -> None:
    folders = iter([tmp_path / "one", tmp_path / "two"])
    switch = RecordingSwitch("sim://rest", client="c-1", new_path=lambda: next(folders))
    switch.set_device_info(DEVICE)  # before any recording: kept for later ones
    first = switch.start()
    assert switch.start() == first  # already recording
    switch.append_frame(b"\x01\x02", 1.0)
    switch.append_event({"type": "marker", "label": "a"})
    assert switch.stop({"error": None}) == first
    switch.append_frame(b"\x05", 2.0)  # off: dropped
    second = switch.start()
    switch.append_frame(b"\x03\x04", 3.0)
    switch.close({"error": None})
    assert switch.paths == [tmp_path / "one", tmp_path / "two"]
    for path, frame in ((first, b"\x01\x02"), (second, b"\x03\x04")):
        recording = open_recording(path)
        assert [r.frame for r in recording.frames()] == [frame]
        assert recording.meta["device"]["device_id"] == "dev" and recording.meta["client"] == "c-1"
        assert recording.meta["closed"]
    assert [e["label"] for e in open_recording(first).events()] == ["a"]
    assert list(open_recording(second).events()) == []


def test_two_threads_appending_at_once_write_whole_lines(tmp_path: Path) -> None:
    switch = RecordingSwitch("sim://rest")
    switch.start(tmp_path / "rec")

    def append(name: str) -> None:
        for k in range(500):
            switch.append_event({"type": "marker", "label": name, "k": k, "padding": "x" * 200})

    threads = [threading.Thread(target=append, args=(name,)) for name in ("gui", "worker")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    switch.close()
    lines = (tmp_path / "rec" / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    for name in ("gui", "worker"):
        assert [e["k"] for e in events if e["label"] == name] == list(range(500))
