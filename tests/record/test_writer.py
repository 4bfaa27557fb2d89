"""The recording writer: round trip, private files, atomic recording.json, fsync cadence, write errors."""

from __future__ import annotations

import errno
import json
import os
import stat
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

import biofeed
from biofeed.errors import RecordingError
from biofeed.record.frames_file import FRAMES_FILE, MAX_FRAME_BYTES
from biofeed.record.meta import META_FILE, device_info_to_json
from biofeed.record.reader import FrameRecord, open_recording
from biofeed.record.writer import EVENTS_FILE, RecordingWriter, json_safe, open_private_append

from .recording_factory import INFO, random_frames, write_recording


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def test_frames_and_events_round_trip(tmp_path: Path) -> None:
    frames = random_frames(seed=1, n_frames=200)
    events = [{"type": "marker", "label": "start", "sample_index": 12}, {"type": "note", "text": "ça va\n"}]
    rec = open_recording(write_recording(tmp_path / "rec", frames, events))
    assert list(rec.frames()) == [FrameRecord(t, f) for f, t in frames]
    assert list(rec.events()) == events
    assert rec.torn_tail_bytes == 0
    assert rec.skipped_bytes == 0
    assert rec.skipped_event_lines == 0


def test_recording_json_describes_the_recording(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "rec", source_url="serial:///dev/ttyUSB0", client="c-07") as writer:
        meta = json.loads((tmp_path / "rec" / META_FILE).read_text())
        assert meta["device"] is None
        assert meta["closed"] is None
        writer.set_device_info(INFO.to_device_info())
        writer.close(summary={"frames": 3, "rate": float("nan"), "pair": (1, 2)})
    meta = json.loads((tmp_path / "rec" / META_FILE).read_text())
    assert meta["format_version"] == 1
    assert meta["software_version"] == biofeed.__version__
    assert meta["source_url"] == "serial:///dev/ttyUSB0"
    assert meta["client"] == "c-07"
    assert datetime.fromisoformat(meta["created"]).utcoffset().total_seconds() == 0
    assert datetime.fromisoformat(meta["closed"]) >= datetime.fromisoformat(meta["created"])
    assert meta["device"] == device_info_to_json(INFO.to_device_info())
    assert meta["device"]["streams"][0]["channels"][0] == {
        "name": "es_left",
        "kind": "emg",
        "unit": "uV",
        "site": "erector spinae L1 left",
    }
    assert meta["summary"] == {"frames": 3, "rate": None, "pair": [1, 2]}
    assert open_recording(tmp_path / "rec").device_info == INFO.to_device_info()


def test_recording_json_exists_before_any_frame(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path / "rec", source_url="test://")
    writer.append_frame(b"\x01\x02", 1.0)
    writer.sync()
    # a crash now (no close) leaves a readable recording
    rec = open_recording(tmp_path / "rec")
    assert [r.frame for r in rec.frames()] == [b"\x01\x02"]
    writer.close()


def test_appends_reach_the_file_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # unbuffered appends: a process that dies (no close, no sync) loses nothing
    writer = RecordingWriter(tmp_path / "rec", source_url="test://", fsync_interval_s=1e9)
    monkeypatch.setattr(os, "fsync", lambda fd: pytest.fail("no sync is due"))
    writer.append_frame(b"\x07\x08", 3.0)
    writer.append_event({"type": "gap"})
    rec = open_recording(tmp_path / "rec")
    assert list(rec.frames()) == [FrameRecord(3.0, b"\x07\x08")]
    assert list(rec.events()) == [{"type": "gap"}]
    monkeypatch.undo()
    writer.close()


def test_folder_and_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old_umask = os.umask(0)
    try:
        path = tmp_path / "a" / "b" / "rec"
        with RecordingWriter(path, source_url="test://") as writer:
            writer.set_device_info(INFO.to_device_info())
    finally:
        os.umask(old_umask)
    for folder in (tmp_path / "a", tmp_path / "a" / "b", path):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    names = sorted(p.name for p in path.iterdir())
    assert names == sorted([META_FILE, FRAMES_FILE, EVENTS_FILE])
    for name in names:
        assert stat.S_IMODE((path / name).stat().st_mode) == 0o600


def test_an_existing_empty_folder_is_used_and_made_private(tmp_path: Path) -> None:
    path = tmp_path / "rec"
    path.mkdir(mode=0o755)
    RecordingWriter(path, source_url="test://").close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert open_recording(path).meta["closed"] is not None


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b"x"), "is a file"),
        (lambda p: (p.mkdir(), (p / "other").write_bytes(b"")), "not empty"),
    ],
)
def test_refuses_a_file_or_a_folder_with_contents(tmp_path: Path, make, reason: str) -> None:
    path = tmp_path / "rec"
    make(path)
    with pytest.raises(RecordingError, match=reason) as info:
        RecordingWriter(path, source_url="test://")
    assert info.value.path == path


def test_refuses_dot_dot(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match=r"\.\."):
        RecordingWriter(tmp_path / "x" / ".." / "rec", source_url="test://")
    assert not (tmp_path / "x").exists()


def test_refuses_a_parent_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(RecordingError, match="cannot create"):
        RecordingWriter(tmp_path / "file" / "rec", source_url="test://")


def test_recording_json_is_replaced_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "rec"
    writer = RecordingWriter(path, source_url="test://")
    before = (path / META_FILE).read_bytes()
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def failing_replace(src: os.PathLike[str], dst: os.PathLike[str]) -> None:
        replaced.append((Path(src).name, Path(dst).name))
        # the new text is whole and synced in the temporary file before it takes the name
        assert json.loads(Path(src).read_text())["device"] is not None
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(RecordingError, match=f"cannot write {META_FILE}"):
        writer.set_device_info(INFO.to_device_info())
    assert replaced == [(META_FILE + ".tmp", META_FILE)]
    assert (path / META_FILE).read_bytes() == before
    assert not (path / (META_FILE + ".tmp")).exists()
    monkeypatch.setattr(os, "replace", real_replace)
    writer.close()
    assert open_recording(path).meta["closed"] is not None


def test_fsync_cadence_follows_the_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    writer = RecordingWriter(tmp_path / "rec", source_url="test://", fsync_interval_s=1.0, clock=clock)
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    for t in (0.0, 0.5, 0.99):
        clock.now_s = t
        writer.append_frame(b"\x05", t)
    assert synced == []
    clock.now_s = 1.0
    writer.append_frame(b"\x05", 1.0)
    assert len(synced) == 1  # only frames.bin had new bytes
    # what was synced is readable, the writer still open
    assert len(list(open_recording(tmp_path / "rec").frames())) == 4
    clock.now_s = 1.5
    writer.append_event({"type": "note"})
    assert len(synced) == 1
    clock.now_s = 2.0
    writer.append_frame(b"\x05", 2.0)
    assert len(synced) == 3  # frames.bin and events.jsonl
    clock.now_s = 2.4
    writer.append_frame(b"\x05", 2.4)
    assert not writer.sync_if_due()
    clock.now_s = 3.0
    assert writer.sync_if_due()  # a quiet source still gets its last frame to disk
    assert len(synced) == 4
    writer.close()


def test_fsync_interval_zero_syncs_every_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = RecordingWriter(tmp_path / "rec", source_url="test://", fsync_interval_s=0.0, clock=FakeClock())
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    for i in range(5):
        writer.append_frame(b"\x05", float(i))
    assert len(synced) == 5
    writer.close()


class FullDisk:
    """A frames.bin that takes ``budget`` bytes and then fails like a full disk (keeping a partial write)."""

    def __init__(self, path: Path, budget: int) -> None:
        self._file = open_private_append(path)
        self._budget = budget

    def write(self, data: bytes | memoryview) -> int:
        if len(data) > self._budget:
            self._file.write(data[: self._budget])
            self._file.flush()
            self._budget = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._budget -= len(data)
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def fileno(self) -> int:
        return self._file.fileno()

    def close(self) -> None:
        self._file.close()


def test_disk_full_raises_and_keeps_what_was_written(tmp_path: Path) -> None:
    frames = [(bytes([i + 1]) * 50, 10.0 + i) for i in range(10)]
    record_size = 50 + 16
    budget = 8 + 4 * record_size + 20  # magic, four records, and 20 bytes of the fifth

    def opener(path: Path) -> FullDisk:
        return FullDisk(path, budget if path.name == FRAMES_FILE else 1 << 30)

    path = tmp_path / "rec"
    writer = RecordingWriter(path, source_url="test://", fsync_interval_s=0.0, opener=opener)
    for frame, t in frames[:4]:
        writer.append_frame(frame, t)
    with pytest.raises(RecordingError, match=r"cannot write frames\.bin: the disk is full") as info:
        writer.append_frame(*frames[4])
    assert info.value.path == path
    with pytest.raises(RecordingError, match="stopped after an earlier error"):
        writer.append_frame(*frames[5])
    with pytest.raises(RecordingError, match="stopped after an earlier error"):
        writer.append_event({"type": "note"})
    writer.close()
    rec = open_recording(path)
    assert list(rec.frames()) == [FrameRecord(t, f) for f, t in frames[:4]]
    assert rec.torn_tail_bytes == 20
    assert "disk is full" in rec.meta["write_error"]
    writer.close()  # twice is fine


def test_failure_at_start_is_a_recording_error(tmp_path: Path) -> None:
    def opener(path: Path) -> FullDisk:
        return FullDisk(path, 3)

    with pytest.raises(RecordingError, match="disk is full"):
        RecordingWriter(tmp_path / "rec", source_url="test://", opener=opener)


def test_closed_writer_refuses_appends(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path / "rec", source_url="test://")
    writer.close()
    writer.close()
    with pytest.raises(RecordingError, match="closed"):
        writer.append_frame(b"\x01", 0.0)
    with pytest.raises(RecordingError, match="closed"):
        writer.set_device_info(INFO.to_device_info())


def test_bad_arguments_are_value_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync_interval_s"):
        RecordingWriter(tmp_path / "a", source_url="test://", fsync_interval_s=-1.0)
    writer = RecordingWriter(tmp_path / "rec", source_url="test://")
    with pytest.raises(ValueError, match="delimiter"):
        writer.append_frame(b"\x01\x00", 0.0)
    with pytest.raises(ValueError, match="at most"):
        writer.append_frame(b"\x01" * (MAX_FRAME_BYTES + 1), 0.0)
    with pytest.raises(ValueError, match="object"):
        writer.append_event({"x": object()})
    with pytest.raises(ValueError, match="keys"):
        writer.append_event({1: 2})
    writer.append_frame(b"\x01" * MAX_FRAME_BYTES, 0.0)
    writer.append_frame(memoryview(b"\x02\x03"), 1.0)
    writer.close()
    assert [len(r.frame) for r in open_recording(tmp_path / "rec").frames()] == [MAX_FRAME_BYTES, 2]


def test_json_safe_turns_numpy_and_non_finite_values_into_json() -> None:
    value = {
        "i": np.int64(3),
        "f": np.float32(0.5),
        "nan": float("nan"),
        "inf": -np.inf,
        "t": (True, None, "s"),
        "b": np.bool_(True),
        "a": np.array([[1.5, np.nan]]),
    }
    assert json_safe(value) == {
        "i": 3,
        "f": 0.5,
        "nan": None,
        "inf": None,
        "t": [True, None, "s"],
        "b": True,
        "a": [[1.5, None]],
    }
    assert type(json_safe(np.int64(3))) is int
    json.dumps(json_safe(value), allow_nan=False)
