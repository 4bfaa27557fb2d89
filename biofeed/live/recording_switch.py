"""Start and stop recording while acquisition runs: the recorder the live acquisition writes through.

The acquisition hands every frame, event and the device INFO to one recorder. In the live view the
practitioner starts and stops recording at will, and places markers from the GUI thread; a
:class:`~biofeed.record.writer.RecordingWriter` is not made for two threads. :class:`RecordingSwitch`
stands in for it: while recording it forwards to the current writer, otherwise it drops the call,
and one lock orders the worker's writes with the GUI's markers. Each start opens a new recording
folder (a recording never overwrites anything) and gives it the device's last INFO at once; its
frames start at the next frame received (replay resynchronises on the device's periodic INFO).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from biofeed.blocks import DeviceInfo
from biofeed.home import new_recording_path
from biofeed.record.writer import RecordingWriter

__all__ = ["RecordingSwitch"]


def _new_live_path() -> Path:
    return new_recording_path("live")


class RecordingSwitch:
    """A recorder that records only while switched on; safe to use from several threads.

    Parameters
    ----------
    source_url : str
        Kept in each recording's ``recording.json``.
    client : str or None
        Client pseudonym kept in each recording.
    new_path : callable returning Path
        Folder of a recording started without a path (default: a new ``live-<time>`` folder under
        ``BIOFEED_HOME/recordings``).

    Attributes
    ----------
    paths : list of Path
        Every recording started, in order.
    """

    def __init__(
        self, source_url: str, *, client: str | None = None, new_path: Callable[[], Path] = _new_live_path
    ) -> None:
        self.source_url = source_url
        self.client = client
        self._new_path = new_path
        self._lock = threading.RLock()
        self._writer: RecordingWriter | None = None
        self._device: DeviceInfo | None = None
        self.paths: list[Path] = []

    @property
    def recording(self) -> bool:
        """True while a recording is open."""
        return self._writer is not None

    @property
    def path(self) -> Path | None:
        """Folder of the open recording (None when not recording)."""
        writer = self._writer
        return writer.path if writer is not None else None

    def start(self, path: Path | None = None) -> Path:
        """Open a new recording (at ``path``, else a new folder); a no-op while one is open.

        Raises
        ------
        RecordingError
            When the folder cannot be created (exists and is not empty, no permission...).
        """
        with self._lock:
            if self._writer is not None:
                return self._writer.path
            writer = RecordingWriter(path or self._new_path(), source_url=self.source_url, client=self.client)
            if self._device is not None:
                writer.set_device_info(self._device)
            self._writer = writer
            self.paths.append(writer.path)
            return writer.path

    def stop(self, summary: Mapping[str, Any] | None = None) -> Path | None:
        """Close the open recording (with ``summary`` in its ``recording.json``); returns its folder."""
        with self._lock:
            writer, self._writer = self._writer, None
            if writer is None:
                return None
            writer.close(summary)
            return writer.path

    # -- what the acquisition calls (RecordingWriter's interface) -------------------------------

    def append_frame(self, frame: bytes, received_at: float) -> None:
        """Append a frame to the open recording, if any."""
        with self._lock:
            if self._writer is not None:
                self._writer.append_frame(frame, received_at)

    def append_event(self, event: Mapping[str, Any]) -> None:
        """Append an event line to the open recording, if any."""
        with self._lock:
            if self._writer is not None:
                self._writer.append_event(event)

    def set_device_info(self, info: DeviceInfo) -> None:
        """Remember the device's INFO (for recordings started later) and keep it in the open one."""
        with self._lock:
            self._device = info
            if self._writer is not None:
                self._writer.set_device_info(info)

    def sync_if_due(self) -> bool:
        """Flush and fsync the open recording when its interval has passed."""
        with self._lock:
            return self._writer.sync_if_due() if self._writer is not None else False

    def sync(self) -> None:
        """Flush and fsync the open recording."""
        with self._lock:
            if self._writer is not None:
                self._writer.sync()

    def close(self, summary: Mapping[str, Any] | None = None) -> None:
        """Stop recording (the end of the session)."""
        self.stop(summary)
