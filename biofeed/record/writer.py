"""Crash-safe writing of a recording folder (docs/recording-format.md).

The folder is made private (0o700, files 0o600: it holds health data) and ``recording.json`` is
written first, so every folder that holds frames is recognisably a recording. Frames and events
are only ever appended, unbuffered (a dying process loses nothing), and fsynced at least every
``fsync_interval_s`` while data arrives (a power loss takes at most that much); the reader stops
cleanly at the torn tail. ``recording.json`` is only ever replaced whole (temporary file, fsync,
``os.replace``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import numbers
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, Protocol

import numpy as np

from biofeed.blocks import DeviceInfo
from biofeed.errors import RecordingError
from biofeed.record.frames_file import FRAMES_FILE, file_header, pack_record
from biofeed.record.meta import META_FILE, device_info_to_json, new_meta, utc_now_iso

__all__ = [
    "DEVICE_LABEL_PATTERN",
    "EVENTS_FILE",
    "MULTI_DEVICE_FORMAT_VERSION",
    "AppendOnlyFile",
    "MultiDeviceRecordingWriter",
    "RecordingWriter",
    "check_device_label",
    "json_safe",
    "open_private_append",
]

EVENTS_FILE = "events.jsonl"
MULTI_DEVICE_FORMAT_VERSION = 2
"""``format_version`` of the ``recording.json`` of a recording of several devices (device folders stay 1)."""
DEVICE_LABEL_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
"""A device label: also its folder's name and the prefix of its stream names (``left.emg``)."""
_FOLDER_MODE = 0o700
_FILE_MODE = 0o600


class AppendOnlyFile(Protocol):
    """What the writer needs of an open file: a binary file opened for appending."""

    def write(self, data: bytes | memoryview, /) -> int | None:
        """Write bytes and return how many were taken; raise OSError when the disk refuses."""
        ...

    def flush(self) -> None:
        """Hand buffered bytes to the operating system."""
        ...

    def fileno(self) -> int:
        """Return the OS file descriptor, for ``os.fsync``."""
        ...

    def close(self) -> None:
        """Flush and close."""
        ...


def open_private_append(path: Path) -> AppendOnlyFile:
    """Create ``path`` (it must not exist), readable and writable by its owner only, for unbuffered appends."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, _FILE_MODE)
    try:
        # the umask can only remove bits; fchmod makes the mode exact whatever the umask is
        os.fchmod(fd, _FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    # unbuffered: every append reaches the kernel at once, so a dying process loses nothing;
    # fsync then bounds what a power loss can take
    return os.fdopen(fd, "ab", buffering=0)


def json_safe(value: Any) -> Any:
    """Return a copy of ``value`` that ``json.dumps(..., allow_nan=False)`` accepts.

    Non-finite floats become None (strict JSON has no NaN), tuples become lists, numpy scalars
    and arrays become Python numbers and lists.

    Raises
    ------
    ValueError
        For a value JSON cannot hold (naming its type) or a mapping key that is not text.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise ValueError(f"JSON object keys must be text, got {key!r}")
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    raise ValueError(f"cannot store a {type(value).__name__} in JSON: {value!r:.60}")


def _os_reason(exc: OSError) -> str:
    hints = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exhausted",
        errno.EFBIG: "the file reached the size limit set for this process",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
    }
    return hints.get(exc.errno or 0, exc.strerror or str(exc))


def _write_fully(file: AppendOnlyFile, data: bytes) -> None:
    # an unbuffered file may take part of the bytes; the rest follows or the disk's error does
    view = memoryview(data)
    while view:
        n_written = file.write(view)
        if not n_written:
            raise OSError(errno.EIO, "the file took no bytes")
        view = view[n_written:]


def _fsync_folder(path: Path) -> None:
    # a new or renamed directory entry survives a crash only once the folder itself is synced
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json_atomically(folder: Path, document: Mapping[str, Any]) -> None:
    """Replace ``folder/recording.json`` whole: temporary file, fsync, ``os.replace``, fsync of the folder."""
    final = folder / META_FILE
    tmp = folder / (META_FILE + ".tmp")
    data = (json.dumps(document, indent=2, allow_nan=False) + "\n").encode("utf-8")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
        try:
            os.fchmod(fd, _FILE_MODE)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        _fsync_folder(folder)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RecordingError(folder, f"cannot write {META_FILE}: {_os_reason(exc)}") from exc


def _make_private_folder(path: Path) -> None:
    if ".." in path.parts:
        raise RecordingError(path, "a recording path must not contain '..'")
    try:
        if path.exists():
            if not path.is_dir():
                raise RecordingError(path, "exists and is a file, not a folder")
            if any(path.iterdir()):
                raise RecordingError(path, "the folder is not empty; a recording never overwrites anything")
        else:
            missing = [p for p in (path, *path.parents) if not p.exists()]
            for folder in reversed(missing):
                folder.mkdir(mode=_FOLDER_MODE)
        os.chmod(path, _FOLDER_MODE)
    except OSError as exc:
        raise RecordingError(path, f"cannot create the recording folder: {_os_reason(exc)}") from exc


class RecordingWriter:
    """Write one recording folder: ``recording.json``, ``frames.bin``, ``events.jsonl``.

    Parameters
    ----------
    path : Path or str
        The folder to create. It may exist only as an empty folder; missing parents are created
        private (0o700) too.
    source_url : str
        URL of the source the frames come from, kept in ``recording.json``.
    client : str or None
        The client's pseudonym (never a real name).
    fsync_interval_s : float
        Longest time, on ``clock``, between two flush + fsync while data arrives; 0 syncs every write.
    clock : callable returning float
        Time in seconds (monotonic) that paces the syncs.
    opener : callable
        Opens ``frames.bin`` and ``events.jsonl`` for appending (the seam tests use to simulate a
        full disk); the default creates them with mode 0o600.

    Attributes
    ----------
    path : Path
        The recording folder.
    n_frames, n_events : int
        Frames and events appended so far.

    Raises
    ------
    RecordingError
        When the folder cannot be created or written, exists as a file or non-empty folder, or the
        path contains ``..``.
    ValueError
        When ``fsync_interval_s`` is negative or not finite.

    Notes
    -----
    A write error (disk full, read-only file system) raises :class:`RecordingError` and stops the
    writer: everything written before stays readable, and later appends raise again.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        source_url: str,
        client: str | None = None,
        fsync_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        opener: Callable[[Path], AppendOnlyFile] = open_private_append,
    ) -> None:
        if not (math.isfinite(fsync_interval_s) and fsync_interval_s >= 0):
            raise ValueError(f"fsync_interval_s must be a finite number >= 0, got {fsync_interval_s!r}")
        self.path = Path(path)
        self._fsync_interval_s = fsync_interval_s
        self._clock = clock
        self._meta = new_meta(source_url, client)
        self._closed = False
        self._failure: str | None = None
        self._dirty: set[str] = set()
        self.n_frames = 0
        self.n_events = 0
        _make_private_folder(self.path)
        self._write_meta()
        self._files: dict[str, AppendOnlyFile] = {}
        try:
            for name in (FRAMES_FILE, EVENTS_FILE):
                self._files[name] = opener(self.path / name)
            _write_fully(self._files[FRAMES_FILE], file_header())
            self._dirty = set(self._files)
            self.sync()
            _fsync_folder(self.path)
        except (OSError, RecordingError) as exc:
            self._close_files()
            self._closed = True
            if isinstance(exc, RecordingError):
                raise
            raise RecordingError(self.path, f"cannot start the recording: {_os_reason(exc)}") from exc
        self._last_sync_s = clock()

    # --- appending ---------------------------------------------------------------------------

    def append_frame(self, frame: bytes, received_at: float) -> None:
        """Append one frame as received.

        Parameters
        ----------
        frame : bytes
            The COBS bytes of one frame without the 0x00 delimiter, valid or not.
        received_at : float
            Host time (``time.time()``) at which its bytes arrived.

        Raises
        ------
        ValueError
            When the frame contains the delimiter 0x00 or is longer than 64 KiB.
        RecordingError
            When the disk refuses the write, or the writer is closed or stopped by an earlier error.
        """
        frame = bytes(frame)
        if b"\x00" in frame:
            raise ValueError("a frame must not contain the 0x00 delimiter; pass the frame as split from the stream")
        self._append(FRAMES_FILE, pack_record(frame, float(received_at)))
        self.n_frames += 1

    def append_event(self, event: Mapping[str, Any]) -> None:
        """Append one event as one line of JSON.

        Non-finite numbers are stored as ``null`` (strict JSON has no NaN).

        Raises
        ------
        ValueError
            When the event holds something JSON cannot (naming it).
        RecordingError
            As :meth:`append_frame`.
        """
        line = json.dumps(json_safe(event), allow_nan=False, separators=(",", ":")) + "\n"
        self._append(EVENTS_FILE, line.encode("utf-8"))
        self.n_events += 1

    def _append(self, name: str, data: bytes) -> None:
        self._check_writable()
        try:
            _write_fully(self._files[name], data)
        except OSError as exc:
            self._fail(name, exc)
        self._dirty.add(name)
        self.sync_if_due()

    def _check_writable(self) -> None:
        if self._closed:
            raise RecordingError(self.path, "the recording is closed")
        if self._failure is not None:
            raise RecordingError(self.path, f"writing stopped after an earlier error ({self._failure})")

    def _fail(self, name: str, exc: OSError) -> NoReturn:
        self._failure = f"cannot write {name}: {_os_reason(exc)}"
        raise RecordingError(self.path, f"{self._failure}; what was written before stays readable") from exc

    # --- syncing -----------------------------------------------------------------------------

    def sync_if_due(self) -> bool:
        """Flush and fsync when ``fsync_interval_s`` has passed since the last sync.

        Appends call this; a caller that may go quiet (a source with no data) calls it on idle
        ticks so the last frames are on disk within the interval.

        Returns
        -------
        bool
            True when it synced.
        """
        if self._clock() - self._last_sync_s < self._fsync_interval_s:
            return False
        self.sync()
        return True

    def sync(self) -> None:
        """Flush and fsync the files written since the last sync.

        Raises
        ------
        RecordingError
            When the disk refuses.
        """
        self._check_writable()
        for name in sorted(self._dirty):
            try:
                self._files[name].flush()
                os.fsync(self._files[name].fileno())
            except OSError as exc:
                self._fail(name, exc)
        self._dirty.clear()
        self._last_sync_s = self._clock()

    # --- recording.json ----------------------------------------------------------------------

    def set_device_info(self, info: DeviceInfo) -> None:
        """Keep the device's INFO in ``recording.json`` (rewritten atomically when it changed).

        Raises
        ------
        RecordingError
            When the writer is closed or the file cannot be written.
        """
        if self._closed:
            raise RecordingError(self.path, "the recording is closed")
        device = device_info_to_json(info)
        if device != self._meta["device"]:
            self._meta["device"] = device
            self._write_meta()

    def _write_meta(self) -> None:
        _write_json_atomically(self.path, self._meta)

    @property
    def device_json(self) -> dict[str, Any] | None:
        """The device INFO as kept in ``recording.json`` (None before the first INFO)."""
        device = self._meta["device"]
        return None if device is None else dict(device)

    # --- closing -----------------------------------------------------------------------------

    def close(self, summary: Mapping[str, Any] | None = None) -> None:
        """Flush, fsync and close the files, then write the final ``recording.json``.

        Parameters
        ----------
        summary : mapping or None
            JSON-able summary of the recording (e.g. the decoder's counts), kept in
            ``recording.json`` under ``summary``.

        Raises
        ------
        ValueError
            When the summary holds something JSON cannot (nothing is closed then).
        RecordingError
            When the final writes fail; the files are closed all the same. A second call does
            nothing.
        """
        if self._closed:
            return
        safe_summary = None if summary is None else json_safe(summary)
        error: RecordingError | None = None
        if self._failure is None:
            try:
                self._dirty = set(self._files)
                self.sync()
            except RecordingError as exc:
                error = exc
        self._close_files()
        self._closed = True
        self._meta["closed"] = utc_now_iso()
        self._meta["summary"] = safe_summary
        if self._failure is not None:
            self._meta["write_error"] = self._failure
        try:
            self._write_meta()
        except RecordingError:
            if self._failure is None:
                raise
            # the disk that stopped the frames cannot take recording.json either: the earlier
            # version stays, and the first failure is the one to report
            raise RecordingError(self.path, f"{self._failure}; what was written before stays readable") from None
        if error is not None:
            raise error

    def _close_files(self) -> None:
        for file in self._files.values():
            # data that could not be flushed is lost either way; the reader stops at the tear
            with contextlib.suppress(OSError):
                file.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def check_device_label(label: str) -> str:
    """Return ``label`` if it can name a device of a recording, else raise.

    Raises
    ------
    ValueError
        Unless it is 1 to 32 of lowercase letters, digits, ``_`` and ``-``, starting with a letter
        or digit (it names a folder and prefixes stream names: ``left.emg``).
    """
    if not isinstance(label, str) or DEVICE_LABEL_PATTERN.fullmatch(label) is None:
        raise ValueError(
            f"device label {label!r} must be 1 to 32 of a-z, 0-9, '_' and '-', starting with a letter or digit"
        )
    return label


class MultiDeviceRecordingWriter:
    """Write one recording of several devices (docs/recording-format.md, "Several devices").

    The folder holds a ``recording.json`` listing the devices (``format_version`` 2), an
    ``events.jsonl`` for events of the whole recording, and per device a folder named by its label
    that is a complete single-device recording (written by a :class:`RecordingWriter`, readable on
    its own by everything that reads one). ``recording.json`` is written first, so a folder holding
    device folders is recognisably one recording.

    Parameters
    ----------
    path : Path or str
        The folder to create (as :class:`RecordingWriter`).
    devices : sequence of (str, str)
        Per device its label (:func:`check_device_label`) and source URL, in order.
    client : str or None
        The client's pseudonym.
    fsync_interval_s, clock, opener
        As :class:`RecordingWriter`, for every device's writer.

    Raises
    ------
    ValueError
        No device, a bad or repeated label.
    RecordingError
        As :class:`RecordingWriter`.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        devices: Sequence[tuple[str, str]],
        client: str | None = None,
        fsync_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        opener: Callable[[Path], AppendOnlyFile] = open_private_append,
    ) -> None:
        if not devices:
            raise ValueError("a recording of several devices needs at least one device")
        labels = [check_device_label(label) for label, _ in devices]
        if len(set(labels)) != len(labels):
            raise ValueError(f"device labels must differ, got {', '.join(labels)}")
        self.path = Path(path)
        meta = new_meta("", client)
        del meta["source_url"], meta["device"]  # per device, in the device folders and the list below
        meta["format_version"] = MULTI_DEVICE_FORMAT_VERSION
        meta["devices"] = [{"label": label, "folder": label, "source_url": url} for label, url in devices]
        meta["alignment"] = None
        self._meta = meta
        self._closed = False
        _make_private_folder(self.path)
        _write_json_atomically(self.path, self._meta)
        self._writers: dict[str, RecordingWriter] = {}
        self._events: AppendOnlyFile | None = None
        try:
            for label, url in devices:
                self._writers[label] = RecordingWriter(
                    self.path / label,
                    source_url=url,
                    client=client,
                    fsync_interval_s=fsync_interval_s,
                    clock=clock,
                    opener=opener,
                )
            self._events = opener(self.path / EVENTS_FILE)
            _fsync_folder(self.path)
        except (OSError, RecordingError) as exc:
            self._close_all()
            if isinstance(exc, RecordingError):
                raise
            raise RecordingError(self.path, f"cannot start the recording: {_os_reason(exc)}") from exc

    @property
    def labels(self) -> tuple[str, ...]:
        """The device labels, in order."""
        return tuple(self._writers)

    def device(self, label: str) -> RecordingWriter:
        """The writer of one device's folder.

        Raises
        ------
        ValueError
            An unknown label (naming the known ones).
        """
        if label not in self._writers:
            raise ValueError(f"no device {label!r} in this recording; devices: {', '.join(self._writers)}")
        return self._writers[label]

    def append_event(self, event: Mapping[str, Any]) -> None:
        """Append an event of the whole recording to its ``events.jsonl`` and fsync it (they are rare).

        Raises
        ------
        ValueError
            When the event holds something JSON cannot.
        RecordingError
            When the disk refuses, or the writer is closed.
        """
        if self._closed or self._events is None:
            raise RecordingError(self.path, "the recording is closed")
        line = json.dumps(json_safe(event), allow_nan=False, separators=(",", ":")) + "\n"
        try:
            _write_fully(self._events, line.encode("utf-8"))
            os.fsync(self._events.fileno())
        except OSError as exc:
            raise RecordingError(self.path, f"cannot write {EVENTS_FILE}: {_os_reason(exc)}") from exc

    def close(
        self,
        summary: Mapping[str, Any] | None = None,
        *,
        device_summaries: Mapping[str, Mapping[str, Any]] | None = None,
        device_entries: Mapping[str, Mapping[str, Any]] | None = None,
        alignment: Mapping[str, Any] | None = None,
    ) -> None:
        """Close every device's writer, then write the final ``recording.json``.

        Parameters
        ----------
        summary : mapping or None
            Kept under ``summary`` of the recording.
        device_summaries : mapping of label to mapping, or None
            Each device's ``summary`` (:meth:`RecordingWriter.close`); a device closed before keeps its own.
        device_entries : mapping of label to mapping, or None
            Keys added to each device's entry of ``devices`` (e.g. ``clock``, its time fits).
        alignment : mapping or None
            Kept under ``alignment``: how the devices' times were aligned.

        Raises
        ------
        ValueError
            When something given is not JSON-able, or names an unknown device (nothing is closed then).
        RecordingError
            When a final write fails; everything is closed all the same. A second call does nothing.
        """
        if self._closed:
            return
        summaries = dict(device_summaries or {})
        entries = {label: json_safe(dict(extra)) for label, extra in (device_entries or {}).items()}
        unknown = sorted((set(summaries) | set(entries)) - set(self._writers))
        if unknown:
            raise ValueError(f"no device {', '.join(unknown)} in this recording; devices: {', '.join(self._writers)}")
        safe_summary = None if summary is None else json_safe(summary)
        safe_alignment = None if alignment is None else json_safe(alignment)
        error: RecordingError | None = None
        for label, writer in self._writers.items():
            try:
                writer.close(summary=summaries.get(label))
            except RecordingError as exc:
                error = error or exc
        self._close_all()
        for entry in self._meta["devices"]:
            device = self._writers[entry["label"]].device_json
            entry["device_id"] = None if device is None else device.get("device_id")
            entry.update(entries.get(entry["label"], {}))
        self._meta["closed"] = utc_now_iso()
        self._meta["summary"] = safe_summary
        self._meta["alignment"] = safe_alignment
        _write_json_atomically(self.path, self._meta)
        if error is not None:
            raise error

    def _close_all(self) -> None:
        self._closed = True
        for writer in self._writers.values():
            with contextlib.suppress(RecordingError):
                writer.close()
        if self._events is not None:
            with contextlib.suppress(OSError):
                self._events.close()

    def __enter__(self) -> MultiDeviceRecordingWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
