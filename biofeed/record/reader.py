"""Reading a recording folder, whatever a crash or a failing disk left in it.

``frames()`` yields every record whose CRC checks. A damaged record in the middle (bit rot) is
skipped by scanning forward to the next record that checks (``skipped_bytes``); damage that runs to
the end of the file is a torn tail, the normal result of a crash (``torn_tail_bytes``). A length
field never makes the reader allocate more than one 64 KiB record. ``events()`` yields every line that
is a JSON object and skips the rest (``skipped_event_lines``).
"""

from __future__ import annotations

import json
import os
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeGuard

import numpy as np

from biofeed.blocks import DeviceInfo
from biofeed.errors import RecordingError
from biofeed.record.frames_file import (
    FILE_HEADER_SIZE,
    FRAMES_FILE,
    FRAMES_FORMAT_VERSION,
    MAX_FRAME_BYTES,
    RECORD_CRC,
    RECORD_HEADER,
    RECORD_OVERHEAD,
    file_header,
    file_version,
)
from biofeed.record.meta import FORMAT_NAME, META_FILE, check_format_version, check_meta, device_info_from_json
from biofeed.record.writer import EVENTS_FILE, MULTI_DEVICE_FORMAT_VERSION, check_device_label

__all__ = [
    "DeviceEntry",
    "FrameRecord",
    "MultiDeviceRecording",
    "Recording",
    "is_multi_device_recording",
    "open_multi_device_recording",
    "open_recording",
]

_READ_BYTES = 1 << 20
_SCAN_BYTES = 1 << 20
_MAX_META_BYTES = 16 << 20


@dataclass(frozen=True)
class FrameRecord:
    """One frame as it was received.

    Attributes
    ----------
    received_at : float
        Host time (``time.time()``) at which its bytes arrived.
    frame : bytes
        The COBS bytes of the frame without the 0x00 delimiter, valid or not.
    """

    received_at: float
    frame: bytes


class _ReadWindow:
    """Bytes of a file from some offset on, read ahead in large blocks and dropped once passed."""

    def __init__(self, file: BinaryIO, offset: int) -> None:
        self._file = file
        self._buffer = bytearray()
        self._base = offset  # file offset of self._buffer[0]
        self._eof = False

    def peek(self, offset: int, n_bytes: int) -> bytes:
        """Up to ``n_bytes`` from ``offset`` (fewer at the end of the file)."""
        end = offset - self._base + n_bytes
        while len(self._buffer) < end and not self._eof:
            block = self._file.read(max(_READ_BYTES, end - len(self._buffer)))
            self._eof = not block
            self._buffer += block
        return bytes(self._buffer[offset - self._base : end])

    def n_bytes_from(self, offset: int) -> int:
        """Bytes from ``offset`` to the end of the file (the rest is counted, not kept)."""
        n_bytes = len(self._buffer) - (offset - self._base)
        while not self._eof:
            block = self._file.read(_READ_BYTES)
            self._eof = not block
            n_bytes += len(block)
        return n_bytes

    def release_before(self, offset: int) -> None:
        """Forget bytes before ``offset`` (in large steps, so dropping them stays cheap)."""
        if offset - self._base >= _READ_BYTES:
            del self._buffer[: offset - self._base]
            self._base = offset


def _record_at(window: _ReadWindow, offset: int) -> tuple[FrameRecord, int] | None:
    """Return the record at ``offset`` and the offset after it; None when no whole, checking record is there."""
    head = window.peek(offset, RECORD_HEADER.size)
    if len(head) < RECORD_HEADER.size:
        return None
    length, received_at = RECORD_HEADER.unpack(head)
    if length > MAX_FRAME_BYTES:
        return None
    body_size = RECORD_HEADER.size + length
    raw = window.peek(offset, body_size + RECORD_CRC.size)
    if len(raw) < body_size + RECORD_CRC.size:
        return None
    (crc,) = RECORD_CRC.unpack_from(raw, body_size)
    if zlib.crc32(memoryview(raw)[:body_size]) != crc:
        return None
    return FrameRecord(received_at, raw[RECORD_HEADER.size : body_size]), offset + body_size + RECORD_CRC.size


def _next_record_offset(window: _ReadWindow, start: int) -> int | None:
    """Offset of the first checking record at or after ``start``; None when there is none."""
    offset = start
    while True:
        chunk = window.peek(offset, _SCAN_BYTES + RECORD_OVERHEAD - 1)
        n_positions = len(chunk) - RECORD_OVERHEAD + 1
        if n_positions <= 0:
            return None
        b = np.frombuffer(chunk, dtype=np.uint8)
        # only positions whose u32 length is <= MAX_FRAME_BYTES (0x00010000) can start a record
        b0, b1, b2, b3 = (b[k : k + n_positions] for k in range(4))
        plausible = (b3 == 0) & ((b2 == 0) | ((b2 == 1) & (b1 == 0) & (b0 == 0)))
        # 16 zero bytes never check (crc32 of 12 zero bytes is not 0): skips zero-filled tails fast
        n_nonzero = np.concatenate(([0], np.cumsum(b != 0)))
        plausible &= n_nonzero[RECORD_OVERHEAD : RECORD_OVERHEAD + n_positions] > n_nonzero[:n_positions]
        for index in np.flatnonzero(plausible):
            if _record_at(window, offset + int(index)) is not None:
                return offset + int(index)
        if len(chunk) < _SCAN_BYTES + RECORD_OVERHEAD - 1:
            return None
        offset += n_positions
        window.release_before(offset)


def _parse_event(line: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return event if isinstance(event, dict) else None


def _check_inside(folder: Path, path: Path) -> None:
    """Refuse a part of a recording that is a link leading out of its folder."""
    if path.is_symlink() and not path.resolve().is_relative_to(folder.resolve()):
        raise RecordingError(folder, f"{path.name} is a link to {os.readlink(path)}, outside the recording: refused")


def _open_part(folder: Path, name: str) -> BinaryIO | None:
    """Open a part for reading; None when it is missing, RecordingError when it cannot be ours.

    Opened without blocking and checked to be a regular file, so a part that is a FIFO, a device
    (``/dev/zero``) or a link out of the folder is refused instead of read forever or leaked.
    """
    path = folder / name
    try:
        _check_inside(folder, path)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        # a crash between writing recording.json and creating the file: an empty recording
        return None
    except OSError as exc:
        raise RecordingError(folder, f"cannot read {name}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise RecordingError(folder, f"{name} is not a regular file: refused")
    return os.fdopen(fd, "rb")


class Recording:
    """An opened recording folder; made by :func:`open_recording`.

    Attributes
    ----------
    path : Path
        The folder.
    meta : dict
        The contents of ``recording.json``.
    torn_tail_bytes : int
        Bytes after the last whole record of ``frames.bin`` (a crash's torn tail); known once
        :meth:`frames` has run to the end.
    skipped_bytes : int
        Bytes of damaged records skipped in the middle of ``frames.bin``; known likewise.
    skipped_event_lines : int
        Lines of ``events.jsonl`` that were not a JSON object (a torn last line, damage); known
        once :meth:`events` has run to the end.
    """

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = path
        self.meta = meta
        self.torn_tail_bytes = 0
        self.skipped_bytes = 0
        self.skipped_event_lines = 0

    @property
    def device_info(self) -> DeviceInfo | None:
        """The device INFO kept in ``recording.json``; None when no INFO had arrived."""
        device = self.meta.get("device")
        return None if device is None else device_info_from_json(self.path, device)

    def frames(self) -> Iterator[FrameRecord]:
        """Yield every intact frame record in order.

        Yields
        ------
        FrameRecord
            Received time and frame bytes.

        Raises
        ------
        RecordingError
            Only when ``frames.bin`` cannot be read at all (permissions, I/O error); damage never
            raises.
        """
        self.torn_tail_bytes = 0
        self.skipped_bytes = 0
        file = _open_part(self.path, FRAMES_FILE)
        if file is None:
            return
        with file:
            header = file.read(FILE_HEADER_SIZE)
            if len(header) < FILE_HEADER_SIZE:
                self.torn_tail_bytes = len(header)
                return
            window = _ReadWindow(file, FILE_HEADER_SIZE)
            offset = FILE_HEADER_SIZE
            while True:
                window.release_before(offset)
                found = _record_at(window, offset)
                if found is not None:
                    record, offset = found
                    yield record
                    continue
                next_offset = _next_record_offset(window, offset + 1)
                if next_offset is None:
                    self.torn_tail_bytes = window.n_bytes_from(offset)
                    return
                self.skipped_bytes += next_offset - offset
                offset = next_offset

    def events(self) -> Iterator[dict[str, Any]]:
        """Yield every event of ``events.jsonl`` in order, skipping lines that are not a JSON object.

        Raises
        ------
        RecordingError
            Only when the file cannot be read at all.
        """
        self.skipped_event_lines = 0
        file = _open_part(self.path, EVENTS_FILE)
        if file is None:
            return
        with file:
            for line in file:
                event = _parse_event(line)
                if event is None:
                    self.skipped_event_lines += line.strip() != b""
                else:
                    yield event


def _read_meta(path: Path | str) -> tuple[Path, object]:
    """The folder and its parsed ``recording.json``, unchecked."""
    folder = Path(path)
    if not folder.exists():
        raise RecordingError(folder, "no such recording folder")
    if not folder.is_dir():
        raise RecordingError(folder, "is a file, not a recording folder")
    meta_path = folder / META_FILE
    if not meta_path.exists():
        raise RecordingError(folder, f"not a biofeed recording (no {META_FILE})")
    meta_file = _open_part(folder, META_FILE)
    if meta_file is None:
        raise RecordingError(folder, f"not a biofeed recording (no {META_FILE})")
    try:
        with meta_file:
            if os.fstat(meta_file.fileno()).st_size > _MAX_META_BYTES:
                raise RecordingError(folder, f"{META_FILE} is over {_MAX_META_BYTES // (1 << 20)} MiB: not ours")
            text = meta_file.read()
        meta = json.loads(text)
    except OSError as exc:
        raise RecordingError(folder, f"cannot read {META_FILE}: {exc.strerror or exc}") from exc
    except (ValueError, RecursionError):
        raise RecordingError(folder, f"{META_FILE} is damaged (not JSON)") from None
    return folder, meta


def _lists_devices(meta: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(meta, dict) and meta.get("format") == FORMAT_NAME and isinstance(meta.get("devices"), list)


def open_recording(path: Path | str) -> Recording:
    """Open a recording folder for reading.

    Parameters
    ----------
    path : Path or str
        The folder holding ``recording.json``, ``frames.bin`` and ``events.jsonl``.

    Raises
    ------
    RecordingError
        When the path is not a folder, holds no ``recording.json``, or its files are not (or a
        newer version of) this format; also for a recording of several devices, naming its device
        folders, each a recording (:func:`open_multi_device_recording` opens it whole).
    """
    folder, meta = _read_meta(path)
    if _lists_devices(meta):
        labels = list(open_multi_device_recording(folder).labels)  # refuses a hostile device list first
        raise RecordingError(
            folder,
            f"is a recording of {len(labels)} devices ({', '.join(labels)}); "
            f"open one device's folder, e.g. {folder / labels[0] if labels else folder}",
        )
    recording = Recording(folder, check_meta(folder, meta))
    frames_file = _open_part(folder, FRAMES_FILE)
    if frames_file is not None:
        with frames_file:
            header = frames_file.read(FILE_HEADER_SIZE)
        version = file_version(header)
        # a header cut short by a crash is an empty recording, anything else is not ours
        if version is None and not (len(header) < FILE_HEADER_SIZE and file_header().startswith(header)):
            raise RecordingError(folder, f"{FRAMES_FILE} is not a biofeed frames file")
        if version is not None and version > FRAMES_FORMAT_VERSION:
            raise RecordingError(
                folder, f"{FRAMES_FILE} format {version} is newer than this biofeed reads ({FRAMES_FORMAT_VERSION})"
            )
    return recording


@dataclass(frozen=True)
class DeviceEntry:
    """One device of a recording of several devices.

    Attributes
    ----------
    label : str
        The device's label: its folder's name and the prefix of its streams (``left.emg``).
    path : Path
        Its folder, a complete single-device recording.
    source_url : str
        The source it was recorded from.
    entry : dict
        Its object in the recording's ``devices`` list (``device_id``, ``clock`` ... once closed).
    """

    label: str
    path: Path
    source_url: str
    entry: dict[str, Any]


class MultiDeviceRecording:
    """An opened recording of several devices; made by :func:`open_multi_device_recording`.

    Attributes
    ----------
    path : Path
        The folder.
    meta : dict
        Its ``recording.json``.
    devices : tuple of DeviceEntry
        The devices, in order.
    """

    def __init__(self, path: Path, meta: dict[str, Any], devices: tuple[DeviceEntry, ...]) -> None:
        self.path = path
        self.meta = meta
        self.devices = devices
        self._events = Recording(path, meta)

    @property
    def labels(self) -> tuple[str, ...]:
        """The device labels, in order."""
        return tuple(d.label for d in self.devices)

    def device(self, label: str) -> Recording:
        """Open one device's folder as a single-device recording.

        Raises
        ------
        ValueError
            An unknown label (naming the known ones).
        RecordingError
            When the device folder is not a readable recording.
        """
        for device in self.devices:
            if device.label == label:
                return open_recording(device.path)
        raise ValueError(f"no device {label!r} in {self.path}; devices: {', '.join(self.labels)}")

    @property
    def skipped_event_lines(self) -> int:
        """Lines of the recording's own ``events.jsonl`` that were not JSON objects (once read)."""
        return self._events.skipped_event_lines

    def events(self) -> Iterator[dict[str, Any]]:
        """Yield the events of the whole recording (its own ``events.jsonl``), as :meth:`Recording.events`."""
        return self._events.events()


def is_multi_device_recording(path: Path | str) -> bool:
    """True when ``path`` is a folder whose ``recording.json`` lists several devices; never raises."""
    try:
        _, meta = _read_meta(path)
    except RecordingError:
        return False
    return _lists_devices(meta)


def open_multi_device_recording(path: Path | str) -> MultiDeviceRecording:
    """Open a recording of several devices (docs/recording-format.md, "Several devices").

    Raises
    ------
    RecordingError
        When the folder is not such a recording (a single-device one included: use
        :func:`open_recording`), comes from a newer format, or lists a device folder that is not
        one of its own subfolders.
    """
    folder, meta = _read_meta(path)
    if not _lists_devices(meta):
        raise RecordingError(folder, f"is not a recording of several devices (its {META_FILE} lists none)")
    check_format_version(folder, meta, MULTI_DEVICE_FORMAT_VERSION)
    devices = []
    for entry in meta["devices"]:
        try:
            if not isinstance(entry, dict):
                raise ValueError(f"device entry {entry!r:.60} is not an object")
            label = check_device_label(entry.get("label"))  # type: ignore[arg-type]
            if entry.get("folder") != label:
                raise ValueError(f"device {label!r} must live in the folder {label!r}")
            url = entry.get("source_url")
            if not isinstance(url, str):
                raise ValueError(f"device {label!r} has no source_url")
        except ValueError as exc:
            raise RecordingError(folder, f"{META_FILE} holds an invalid device list: {exc}") from None
        _check_inside(folder, folder / label)
        devices.append(DeviceEntry(label, folder / label, url, entry))
    if len({d.label for d in devices}) != len(devices):
        raise RecordingError(folder, f"{META_FILE} lists a device label twice")
    return MultiDeviceRecording(folder, meta, tuple(devices))
