"""USB-serial / UART source over pyserial: ``serial://PATH?baud=N``.

Any pyserial URL works as the path too (``loop://`` in unit tests). Tests of the real thing go
through a pseudo-terminal: closing its master is what an unplugged board looks like.
"""

from __future__ import annotations

import contextlib
import errno
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import serial

from biofeed.errors import DeviceNotFoundError, SourceLost
from biofeed.protocol.packets import ControlCommand, ControlPayload, Packet, PacketType, encode_frame
from biofeed.sources.base import SourceUrl, TimedChunk

__all__ = ["DEFAULT_BAUD", "SerialSource"]

DEFAULT_BAUD = 921600
"""PROTOCOL.md 6.1: 115200 baud cannot carry a 2 x 2 kHz int24 EMG stream."""

_READ_TIMEOUT_S = 0.05


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
    serial_factory : callable
        Opens the port; ``serial.serial_for_url`` unless a test injects another.

    Raises
    ------
    DeviceNotFoundError
        Nothing at ``port``, or no permission to open it.
    """

    def __init__(
        self,
        port: str,
        baud: int = DEFAULT_BAUD,
        *,
        read_size_bytes: int = 4096,
        serial_factory: Callable[..., Any] = serial.serial_for_url,
    ) -> None:
        if baud <= 0:
            raise ValueError(f"baud must be a positive whole number, got {baud}")
        self.url = f"serial://{port}?baud={baud}"
        self._read_size_bytes = read_size_bytes
        self._closed = threading.Event()
        try:
            self._port = serial_factory(port, baudrate=baud, timeout=_READ_TIMEOUT_S)
        except serial.SerialException as exc:
            raise DeviceNotFoundError(port, _reason_for(exc)) from exc
        except OSError as exc:
            raise DeviceNotFoundError(port, _reason_for(exc)) from exc
        self._request_info()

    @classmethod
    def from_url(cls, url: SourceUrl) -> SerialSource:
        """Open ``serial://PATH?baud=N``."""
        url.check_keys({"baud"})
        if not url.target:
            raise ValueError("serial:// needs a port, e.g. serial:///dev/ttyUSB0 or serial://COM3")
        return cls(url.target, url.whole_number("baud", DEFAULT_BAUD, minimum=1))

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
            The port went away (unplugged board, closed pseudo-terminal).
        """
        try:
            while not self._closed.is_set():
                try:
                    data = self._port.read(max(1, min(self._port.in_waiting, self._read_size_bytes)))
                except (serial.SerialException, OSError) as exc:
                    if self._closed.is_set():
                        return
                    raise SourceLost(f"{self.url}: device went away ({_reason_for(exc)})") from exc
                yield TimedChunk(bytes(data), time.time())  # empty after a quiet read timeout
        finally:
            self._port.close()

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
