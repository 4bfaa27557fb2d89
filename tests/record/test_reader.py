"""The recording reader: torn tails, bit rot, hostile lengths and random bytes never get past it."""

from __future__ import annotations

import json
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biofeed.errors import RecordingError
from biofeed.record.frames_file import FILE_HEADER_SIZE, FRAMES_FILE, file_header, pack_record
from biofeed.record.meta import META_FILE
from biofeed.record.reader import FrameRecord, open_recording
from biofeed.record.writer import EVENTS_FILE

from .recording_factory import random_frames, write_recording

FRAMES = random_frames(seed=7, n_frames=12)
RECORDS = [FrameRecord(t, f) for f, t in FRAMES]


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    return write_recording(tmp_path / "rec", FRAMES, [{"type": "note", "n": i} for i in range(3)])


def _record_offsets(frames: list[tuple[bytes, float]]) -> list[int]:
    offsets = [FILE_HEADER_SIZE]
    for frame, _ in frames:
        offsets.append(offsets[-1] + len(frame) + 16)
    return offsets


def test_torn_tail_at_every_byte_of_the_last_record(recording: Path) -> None:
    path = recording / FRAMES_FILE
    whole = path.read_bytes()
    last_start = _record_offsets(FRAMES)[-2]
    for n_kept in range(whole.__len__() - last_start):
        path.write_bytes(whole[: last_start + n_kept])
        rec = open_recording(recording)
        assert list(rec.frames()) == RECORDS[:-1]
        assert rec.torn_tail_bytes == n_kept
        assert rec.skipped_bytes == 0


def test_bad_crc_of_the_last_record_is_a_torn_tail(recording: Path) -> None:
    path = recording / FRAMES_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    rec = open_recording(recording)
    assert list(rec.frames()) == RECORDS[:-1]
    assert rec.torn_tail_bytes == len(FRAMES[-1][0]) + 16


@pytest.mark.parametrize("field_offset", [0, 3, 5, 12, -1])
def test_bit_rot_in_the_middle_skips_one_record(recording: Path, field_offset: int) -> None:
    path = recording / FRAMES_FILE
    data = bytearray(path.read_bytes())
    offsets = _record_offsets(FRAMES)
    damaged = 5
    position = offsets[damaged] + field_offset if field_offset >= 0 else offsets[damaged + 1] + field_offset
    data[position] ^= 0x40
    path.write_bytes(bytes(data))
    rec = open_recording(recording)
    assert list(rec.frames()) == RECORDS[:damaged] + RECORDS[damaged + 1 :]
    assert rec.skipped_bytes == offsets[damaged + 1] - offsets[damaged]
    assert rec.torn_tail_bytes == 0


def test_garbage_between_records_is_skipped_and_counted(recording: Path) -> None:
    path = recording / FRAMES_FILE
    data = path.read_bytes()
    cut = _record_offsets(FRAMES)[4]
    garbage = np.random.default_rng(3).integers(0, 256, size=3000, dtype=np.uint8).tobytes() + bytes(5000)
    path.write_bytes(data[:cut] + garbage + data[cut:])
    rec = open_recording(recording)
    assert list(rec.frames()) == RECORDS
    assert rec.skipped_bytes == len(garbage)


@pytest.mark.parametrize("length", [0xFFFFFFFF, 0x80000000, 64 * 1024 + 1])
def test_hostile_length_never_allocates(recording: Path, length: int) -> None:
    path = recording / FRAMES_FILE
    data = path.read_bytes()
    cut = _record_offsets(FRAMES)[2]
    hostile = struct.pack("<Id", length, 1.0) + b"\x11" * 40
    path.write_bytes(data[:cut] + hostile + data[cut:])
    tracemalloc.start()
    try:
        rec = open_recording(recording)
        records = list(rec.frames())
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert records == RECORDS
    assert rec.skipped_bytes == len(hostile)
    assert peak_bytes < 8 * 1024 * 1024


def test_hostile_length_at_the_end_is_a_torn_tail(recording: Path) -> None:
    path = recording / FRAMES_FILE
    with path.open("ab") as f:
        f.write(struct.pack("<Id", 0xFFFFFFFF, 1.0) + b"\x22" * 10)
    rec = open_recording(recording)
    assert list(rec.frames()) == RECORDS
    assert rec.torn_tail_bytes == 22


def test_a_long_damaged_stretch_is_scanned_in_blocks(tmp_path: Path) -> None:
    frames = random_frames(seed=9, n_frames=3)
    path = write_recording(tmp_path / "rec", frames)
    data = (path / FRAMES_FILE).read_bytes()
    cut = _record_offsets(frames)[1]
    garbage = np.random.default_rng(4).integers(0, 256, size=3 * 1024 * 1024 + 17, dtype=np.uint8).tobytes()
    (path / FRAMES_FILE).write_bytes(data[:cut] + garbage + data[cut:] + garbage)
    rec = open_recording(path)
    assert list(rec.frames()) == [FrameRecord(t, f) for f, t in frames]
    assert rec.skipped_bytes == len(garbage)
    assert rec.torn_tail_bytes == len(garbage)


def test_missing_or_torn_frames_file_is_an_empty_recording(recording: Path) -> None:
    path = recording / FRAMES_FILE
    path.write_bytes(file_header()[:3])
    rec = open_recording(recording)
    assert list(rec.frames()) == []
    assert rec.torn_tail_bytes == 3
    path.unlink()
    assert list(open_recording(recording).frames()) == []


def test_events_skip_a_torn_last_line_and_damaged_lines(recording: Path) -> None:
    path = recording / EVENTS_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + b"\xff\xfe not json\n" + b"[1, 2]\n" + b"\n" + lines[1] + lines[2] + b'{"type": "ma')
    rec = open_recording(recording)
    assert list(rec.events()) == [{"type": "note", "n": i} for i in range(3)]
    assert rec.skipped_event_lines == 3


def test_a_last_event_line_without_newline_but_whole_is_kept(recording: Path) -> None:
    path = recording / EVENTS_FILE
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    assert len(list(open_recording(recording).events())) == 3


def test_folder_without_recording_json_is_refused(recording: Path) -> None:
    (recording / META_FILE).unlink()
    with pytest.raises(RecordingError, match=r"not a biofeed recording \(no recording.json\)"):
        open_recording(recording)


def test_a_file_or_nothing_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(RecordingError, match="is a file"):
        open_recording(tmp_path / "file")
    with pytest.raises(RecordingError, match="no such"):
        open_recording(tmp_path / "absent")


@pytest.mark.parametrize(
    ("meta", "reason"),
    [
        (b"{not json", "damaged"),
        (b"[1]", "not a biofeed recording description"),
        (b'{"format": "biofeed-recording", "format_version": 99}', "newer"),
        (b'{"format": "biofeed-recording", "format_version": "1"}', "format_version"),
        (b'{"format": "biofeed-recording", "format_version": 1, "device": {"streams": 3}}', "device"),
        (b"[" * 100_000, "damaged"),
    ],
)
def test_bad_recording_json_is_refused(recording: Path, meta: bytes, reason: str) -> None:
    (recording / META_FILE).write_bytes(meta)
    with pytest.raises(RecordingError, match=reason):
        open_recording(recording)


@pytest.mark.parametrize(("header", "reason"), [(b"NOTOURS!", "not a biofeed frames file"), (file_header(2), "newer")])
def test_foreign_or_newer_frames_file_is_refused(recording: Path, header: bytes, reason: str) -> None:
    path = recording / FRAMES_FILE
    path.write_bytes(header + path.read_bytes()[FILE_HEADER_SIZE:])
    with pytest.raises(RecordingError, match=reason):
        open_recording(recording)


def test_reading_twice_gives_the_same(recording: Path) -> None:
    rec = open_recording(recording)
    assert list(rec.frames()) == list(rec.frames()) == RECORDS


# --- fuzz -----------------------------------------------------------------------------------------


@pytest.fixture
def fuzz_recording(tmp_path: Path) -> Path:
    # one folder per test; every example overwrites the one file it fuzzes
    return write_recording(tmp_path / "rec", [])


_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_FUZZ
@given(st.binary(max_size=600))
def test_random_frames_file_never_crashes(fuzz_recording: Path, content: bytes) -> None:
    path = fuzz_recording
    (path / FRAMES_FILE).write_bytes(content)
    try:
        rec = open_recording(path)
    except RecordingError:
        return
    list(rec.frames())


@_FUZZ
@given(st.binary(max_size=2000), st.lists(st.binary(min_size=0, max_size=40).map(lambda b: b.replace(b"\0", b"\1"))))
def test_random_records_are_all_accounted_for(fuzz_recording: Path, garbage: bytes, frames: list[bytes]) -> None:
    # Valid records and garbage in any mix: every byte is a record yielded, skipped or torn.
    path = fuzz_recording
    records = b"".join(pack_record(f, float(i)) for i, f in enumerate(frames))
    (path / FRAMES_FILE).write_bytes(file_header() + garbage + records + garbage[: len(garbage) // 2])
    rec = open_recording(path)
    got = list(rec.frames())
    assert sum(len(r.frame) + 16 for r in got) + rec.skipped_bytes + rec.torn_tail_bytes == (
        len(garbage) + len(records) + len(garbage) // 2
    )
    # the valid records survive the garbage around them (barring garbage that checks by chance: 2**-32)
    assert [r.frame for r in got][len(got) - len(frames) :] == frames


@_FUZZ
@given(
    st.lists(st.binary(min_size=1, max_size=60).map(lambda b: b.replace(b"\0", b"\1")), min_size=1, max_size=8),
    st.data(),
)
def test_one_flipped_byte_loses_one_record(fuzz_recording: Path, frames: list[bytes], data) -> None:
    path = fuzz_recording
    records = b"".join(pack_record(f, float(i)) for i, f in enumerate(frames))
    content = bytearray(file_header() + records)
    position = data.draw(st.integers(FILE_HEADER_SIZE, len(content) - 1))
    content[position] ^= data.draw(st.integers(1, 255))
    (path / FRAMES_FILE).write_bytes(bytes(content))
    offsets = _record_offsets([(f, 0.0) for f in frames])
    damaged = max(i for i, start in enumerate(offsets[:-1]) if start <= position)
    rec = open_recording(path)
    assert [r.frame for r in rec.frames()] == frames[:damaged] + frames[damaged + 1 :]
    assert rec.skipped_bytes + rec.torn_tail_bytes == len(frames[damaged]) + 16


@_FUZZ
@given(st.binary(max_size=400))
def test_random_events_file_yields_only_objects(fuzz_recording: Path, content: bytes) -> None:
    path = fuzz_recording
    (path / EVENTS_FILE).write_bytes(content)
    for event in open_recording(path).events():
        assert isinstance(event, dict)


@_FUZZ
@given(
    st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["format", "format_version", "device", "streams", "x"]), inner, max_size=4
                )
            ),
            max_leaves=10,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_random_recording_json_raises_only_recording_error(fuzz_recording: Path, content: bytes) -> None:
    path = fuzz_recording
    (path / META_FILE).write_bytes(content)
    try:
        rec = open_recording(path)
    except RecordingError:
        return
    assert isinstance(rec.meta, dict)


def test_a_huge_recording_json_is_refused_unread(recording: Path) -> None:
    with (recording / META_FILE).open("r+b") as f:
        f.truncate(17 << 20)  # sparse: no 17 MiB written or read
    with pytest.raises(RecordingError, match="over 16 MiB"):
        open_recording(recording)
