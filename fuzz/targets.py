"""The harnesses: one function per input biofeed reads from outside, and what it must never do.

Each ``TARGETS[name]`` takes the fuzzer's bytes. Raising anything is a crash, except the one
clear refusal each reader promises (:class:`~biofeed.errors.RecordingError`); a broken invariant
raises ``AssertionError``. Files are written to one scratch folder (in ``/dev/shm`` when it exists).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import edfio  # noqa: F401  (imported here, under atheris' instrumentation: read_edf_file imports it lazily)

from biofeed.errors import RecordingError
from biofeed.protocol.decoder import Decoder
from biofeed.record.foreign import read_csv_file, read_edf_file
from biofeed.record.frames_file import FILE_HEADER_SIZE, FRAMES_FILE, RECORD_OVERHEAD, file_version
from biofeed.record.meta import META_FILE
from biofeed.record.reader import open_recording
from biofeed.record.summary import summarize_recording
from biofeed.record.writer import EVENTS_FILE

__all__ = ["TARGETS"]

_SCRATCH_ROOT = Path("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir())
_SCRATCH = _SCRATCH_ROOT / f"biofeed-fuzz-{os.getpid()}"
_FOLDER = _SCRATCH / "rec"


def _remove_stale_scratch() -> None:
    """Remove the scratch folders of fuzzers that ended: libFuzzer exits without Python's atexit."""
    for folder in _SCRATCH_ROOT.glob("biofeed-fuzz-*"):
        pid = folder.name.rsplit("-", 1)[1]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(folder, ignore_errors=True)


_remove_stale_scratch()
_FOLDER.mkdir(parents=True, exist_ok=True)
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
_META = {
    "format": "biofeed-recording",
    "format_version": 1,
    "software_version": "fuzz",
    "created": "2026-01-01T00:00:00.000000Z",
    "source_url": "sim://pandiculation",
    "client": None,
    "device": None,
    "closed": None,
    "summary": None,
}


def _write(name: str, data: bytes) -> Path:
    path = _FOLDER / name
    path.write_bytes(data)
    return path


def _recording(meta: bytes, frames: bytes, events: bytes) -> None:
    _write(META_FILE, meta)
    _write(FRAMES_FILE, frames)
    _write(EVENTS_FILE, events)


def decoder(data: bytes) -> None:
    """Wire bytes, cut into chunks at every 0xFF: the decoder never raises, and counts every frame.

    Also as the runner takes a read: split, then its frames decoded together (``decode_frames``),
    which must give the items ``decode_frame`` gives one frame at a time.
    """
    stream_decoder = Decoder()
    for chunk in data.split(b"\xff"):
        stream_decoder.feed(chunk + b"\xff", 0.0)
    frame_decoder = Decoder()
    one_by_one = []
    for frame in data.split(b"\x00"):
        one_by_one += frame_decoder.decode_frame(frame, 0.0)
    together = Decoder().decode_frames(data.split(b"\x00"), 0.0)
    if [type(item) for item in together] != [type(item) for item in one_by_one]:
        raise AssertionError("decode_frames and decode_frame disagree")


def frames(data: bytes) -> None:
    """``frames.bin``: every byte is a record, skipped or torn tail; ``info`` refuses or summarises."""
    _recording(json.dumps(_META).encode(), data, b"")
    try:
        recording = open_recording(_FOLDER)
    except RecordingError:
        assert file_version(data[:FILE_HEADER_SIZE]) != 1, "a frames.bin with our header was refused"
        return
    record_bytes = sum(RECORD_OVERHEAD + len(r.frame) for r in recording.frames())
    if len(data) >= FILE_HEADER_SIZE:
        accounted = FILE_HEADER_SIZE + record_bytes + recording.skipped_bytes + recording.torn_tail_bytes
        assert accounted == len(data), f"{accounted} bytes accounted for of {len(data)}"
    summarize_recording(_FOLDER)


def meta(data: bytes) -> None:
    """``recording.json``: opened and summarised, or refused with RecordingError."""
    _recording(data, b"", b"")
    try:
        recording = open_recording(_FOLDER)
        _ = recording.device_info
        summarize_recording(_FOLDER).to_json()
    except RecordingError:
        return


def events(data: bytes) -> None:
    """``events.jsonl``: every line is an event or counted as skipped; reading never raises."""
    _recording(json.dumps(_META).encode(), b"", data)
    recording = open_recording(_FOLDER)
    n_events = sum(1 for _ in recording.events())
    assert n_events + recording.skipped_event_lines <= len(data.splitlines()) + 1


def edf(data: bytes) -> None:
    """An EDF(+) or BDF(+) file of another tool: read, or refused with RecordingError."""
    try:
        read_edf_file(_write("foreign.edf", data))
    except RecordingError:
        return


def csv(data: bytes) -> None:
    """A CSV file of another tool: read, or refused with RecordingError."""
    for rate_hz in (None, 500.0):
        try:
            read_csv_file(_write("foreign.csv", data), sample_rate_hz=rate_hz)
        except RecordingError:
            continue


TARGETS: dict[str, Callable[[bytes], None]] = {
    "decoder": decoder,
    "frames": frames,
    "meta": meta,
    "events": events,
    "edf": edf,
    "csv": csv,
}
