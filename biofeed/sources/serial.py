"""USB-serial / UART source over pyserial: ``serial://PATH?baud=N&reconnect=K&backoff=S``.

Any pyserial URL works as the path too (``loop://`` in unit tests). Tests of the real thing go
through a pseudo-terminal: closing its master is what an unplugged board looks like.

Parameters: ``baud`` (default 921600), ``reconnect`` (most attempts to reopen the port after it went
away, default 0: give up at once), ``backoff`` (longest wait between attempts in seconds, default 5).
With ``reconnect``, an unplugged board is handled like a dropped BLE link: :meth:`SerialSource.chunks`
yields a ``LOST`` link event, one 0x00 byte (it ends a frame the unplugging cut), a ``RECONNECTING``
event per attempt and ``CONNECTED`` once the port opened again at the same path (a board plugged
back in), then asks for the INFO; :class:`~biofeed.errors.SourceLost` after the last attempt failed.
The decoder sees what was lost in the device's sample counters.
"""

from __future__ import annotations

import contextlib
import errno
import math
import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

import serial

from biofeed.errors import DeviceNotFoundError, SourceLost
from biofeed.protocol.packets import ControlCommand, ControlPayload, Packet, PacketType, encode_frame
from biofeed.sources.backoff import DEFAULT_MAX_BACKOFF_S, backoff_delay_s
from biofeed.sources.base import LinkEvent, LinkState, SourceUrl, TimedChunk

__all__ = ["DEFAULT_BAUD", "SERIAL_PARAMETERS", "SerialSource"]

DEFAULT_BAUD = 921600
"""PROTOCOL.md 6.1: 115200 baud cannot carry a 2 x 2 kHz int24 EMG stream."""

SERIAL_PARAMETERS: frozenset[str] = frozenset({"baud", "reconnect", "backoff"})
"""Query parameters ``serial://`` takes."""

_READ_TIMEOUT_S = 0.05
_FRAME_END = b"\x00"


class SerialSource:
    """Chunks from a serial port.

    Parameters
    ----------
    port : str
        Device path (``/dev/ttyUSB0``, ``COM3``) or a pyserial URL (``loop://``).
    baud : int
        Baud rate; ignored by USB CDC and pseudo-terminals.
    read_size_bytes : int
        Most bytes one read returns.
    max_reconnects : int
        Attempts to reopen the port after it went away before :class:`SourceLost`; 0 for none.
    max_backoff_s : float
        Longest wait between attempts (:func:`~biofeed.sources.backoff.backoff_delay_s`).
    serial_factory : callable
        Opens the port; ``serial.serial_for_url`` unless a test injects another.
    wait : callable taking seconds, or None
        Waits between reconnect attempts, in slices of at most 50 ms; a true return value stops.
        None: wait on the source's own stop event, so :meth:`close` interrupts a wait at once.

    Raises
    ------
    ValueError
        A parameter out of range.
    DeviceNotFoundError
        Nothing at ``port``, or no permission to open it.
    """

    def __init__(
        self,
        port: str,
        baud: int = DEFAULT_BAUD,
        *,
        read_size_bytes: int = 4096,
        max_reconnects: int = 0,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
        serial_factory: Callable[..., Any] = serial.serial_for_url,
        wait: Callable[[float], object] | None = None,
    ) -> None:
        if baud <= 0:
            raise ValueError(f"baud must be a positive whole number, got {baud}")
        if isinstance(max_reconnects, bool) or not isinstance(max_reconnects, int) or max_reconnects < 0:
            raise ValueError(f"max_reconnects must be a whole number >= 0, got {max_reconnects!r}")
        if not (math.isfinite(max_backoff_s) and max_backoff_s >= 0):
            raise ValueError(f"max_backoff_s must be a finite number of seconds >= 0, got {max_backoff_s}")
        self.url = f"serial://{port}?baud={baud}"
        if max_reconnects:
            self.url += f"&reconnect={max_reconnects}&backoff={max_backoff_s:g}"
        self._path = port
        self._baud = baud
        self._read_size_bytes = read_size_bytes
        self._max_reconnects = max_reconnects
        self._max_backoff_s = max_backoff_s
        self._serial_factory = serial_factory
        self._closed = threading.Event()
        self._wait = self._closed.wait if wait is None else wait
        self._port = self._open()
        self._request_info()

    @classmethod
    def from_url(cls, url: SourceUrl) -> SerialSource:
        """Open ``serial://PATH?baud=N&reconnect=K&backoff=S`` (parameters in the module docstring)."""
        url.check_keys(set(SERIAL_PARAMETERS))
        if not url.target:
            raise ValueError("serial:// needs a port, e.g. serial:///dev/ttyUSB0 or serial://COM3")
        max_backoff_s = url.number("backoff", DEFAULT_MAX_BACKOFF_S, minimum=0.0)
        if not math.isfinite(max_backoff_s):
            raise ValueError(f"parameter backoff={max_backoff_s:g} must be a finite number of seconds")
        return cls(
            url.target,
            url.whole_number("baud", DEFAULT_BAUD, minimum=1),
            max_reconnects=url.whole_number("reconnect", 0),
            max_backoff_s=max_backoff_s,
        )

    def _open(self) -> Any:
        try:
            return self._serial_factory(self._path, baudrate=self._baud, timeout=_READ_TIMEOUT_S)
        except (serial.SerialException, OSError) as exc:
            raise DeviceNotFoundError(self._path, _reason_for(exc)) from exc

    def _request_info(self) -> None:
        # A board that was already streaming before we opened the port would otherwise make us wait
        # up to a second for its periodic INFO.
        request = Packet(PacketType.CONTROL, 0, 0, 0, ControlPayload(ControlCommand.REQUEST_INFO).to_payload())
        with contextlib.suppress(serial.SerialException, OSError):  # a read-only link still streams
            self._port.write(b"\x00" + encode_frame(request))

    def chunks(self) -> Iterator[TimedChunk]:
        """Yield chunks until :meth:`close`.

        Raises
        ------
        SourceLost
            The port went away (unplugged board, closed pseudo-terminal) and did not come back
            within the reconnect attempts.
        """
        try:
            while not self._closed.is_set():
                try:
                    data = self._port.read(max(1, min(self._port.in_waiting, self._read_size_bytes)))
                except (serial.SerialException, OSError) as exc:
                    if self._closed.is_set():
                        return
                    if not self._max_reconnects:
                        raise SourceLost(f"{self.url}: device went away ({_reason_for(exc)})") from exc
                    lost_at, reason = time.time(), _reason_for(exc)
                    self._port.close()
                    yield TimedChunk(b"", lost_at, LinkEvent(LinkState.LOST, f"the port went away ({reason})"))
                    yield TimedChunk(_FRAME_END, lost_at)
                    if not (yield from self._reconnect(reason)):
                        return
                    continue
                yield TimedChunk(bytes(data), time.time())  # empty after a quiet read timeout
        finally:
            self._port.close()

    def _reconnect(self, failure: str) -> Generator[TimedChunk, None, bool]:
        """Reopen the port with backoff, yielding link events and idle chunks; False once closed."""
        for attempt in range(1, self._max_reconnects + 1):
            detail = f"attempt {attempt} of {self._max_reconnects}"
            yield TimedChunk(b"", time.time(), LinkEvent(LinkState.RECONNECTING, detail, attempt))
            left_s = backoff_delay_s(attempt, self._max_backoff_s)
            while left_s > 0:  # in slices, so the acquisition loop keeps time while it waits
                if self._wait(min(left_s, _READ_TIMEOUT_S)) or self._closed.is_set():
                    return False
                left_s -= _READ_TIMEOUT_S
                yield TimedChunk(b"", time.time())
            try:
                self._port = self._open()
            except DeviceNotFoundError as exc:
                failure = exc.reason
                continue
            self._request_info()
            yield TimedChunk(b"", time.time(), LinkEvent(LinkState.CONNECTED, f"{self._path} open again", attempt))
            return True
        raise SourceLost(
            f"{self.url}: the port went away and {self._max_reconnects} attempts to reopen it failed ({failure})"
        )

    def close(self) -> None:
        """Stop reading; ``chunks()`` returns within one read timeout."""
        self._closed.set()


def _reason_for(exc: BaseException) -> str:
    err = getattr(exc, "errno", None)
    cause = exc.__cause__ or exc.__context__
    if err is None and isinstance(cause, OSError):
        err = cause.errno
    text = str(exc)
    if err in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return "permission denied (on Linux, add yourself to the 'dialout' group and log in again)"
    if err == errno.ENOENT or "No such file" in text:
        return "no such port (is the board plugged in? `biofeed scan` lists ports)"
    if err == errno.EIO or "returned no data" in text:
        return "the port reports no data (unplugged?)"
    return text or type(exc).__name__
