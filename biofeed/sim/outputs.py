"""Where a simulated device's bytes go: a file descriptor, a recording folder, a truth file.

A file descriptor is stdout, a pipe or a pseudo-terminal; the ground truth goes to a JSON file.
The ``biofeed sim`` command calls these.
"""

from __future__ import annotations

import errno
import json
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from biofeed.record.writer import RecordingWriter
from biofeed.sim.device import SimulatedDevice
from biofeed.sim.pacing import paced_chunks

__all__ = ["StreamReport", "open_pty", "stream_to_fd", "wait_for_request", "write_recording", "write_truth"]

_REALTIME_STEP_S = 0.01  # one EMG packet: the cadence of a real board's UART
_FAST_STEP_S = 1.0
_REALTIME_CHUNK_BYTES = 4096
_FAST_CHUNK_BYTES = 1 << 16
_FULL_RETRY_S = 0.01
_READER_GONE = (errno.EPIPE, errno.EIO, errno.ECONNRESET)


@dataclass(frozen=True)
class StreamReport:
    """How :func:`stream_to_fd` ended.

    Attributes
    ----------
    n_bytes_written : int
        Bytes the descriptor took.
    n_bytes_dropped : int
        Bytes dropped in real time because the descriptor was full (nobody reading a pty).
    ended_by : {"finished", "stopped", "reader_gone"}
        The run ended, ``wait`` asked to stop, or the reader went away (EPIPE, EIO).
    """

    n_bytes_written: int
    n_bytes_dropped: int
    ended_by: Literal["finished", "stopped", "reader_gone"]


def stream_to_fd(
    device: SimulatedDevice,
    fd: int,
    *,
    realtime: bool,
    clock: Callable[[], float] = time.monotonic,
    wait: Callable[[float], object] = time.sleep,
) -> StreamReport:
    """Write the device's bytes to ``fd`` as they are produced.

    Parameters
    ----------
    device : SimulatedDevice
        The device (consumed).
    fd : int
        An open file descriptor: stdout, a pipe, the master of :func:`open_pty`.
    realtime : bool
        Pace by the host clock (the device clock error applied), one EMG packet (10 ms) at a
        time. A non-blocking descriptor that is full then drops bytes, as a board's UART does
        when nobody reads. Otherwise write as fast as the reader takes the bytes.
    clock : callable returning float
        Monotonic host seconds.
    wait : callable taking seconds
        Sleeps; a true return value stops streaming (pass ``threading.Event.wait`` to make a
        stop request interrupt it).

    Returns
    -------
    StreamReport
        Bytes written and dropped, and why it ended. A reader that went away (EPIPE, EIO) ends it
        cleanly; other OS errors propagate.
    """
    written = dropped = 0
    chunks = paced_chunks(
        device,
        speed=1.0 if realtime else 0.0,
        step_s=_REALTIME_STEP_S if realtime else _FAST_STEP_S,
        max_chunk_bytes=_REALTIME_CHUNK_BYTES if realtime else _FAST_CHUNK_BYTES,
        clock=clock,
        wait=wait,
    )
    for chunk in chunks:
        view = memoryview(chunk.data)
        while view:
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                if realtime:
                    dropped += len(view)
                    break
                if wait(_FULL_RETRY_S):
                    return StreamReport(written, dropped, "stopped")
                continue
            except OSError as exc:
                if exc.errno in _READER_GONE:
                    return StreamReport(written, dropped, "reader_gone")
                raise
            written += n
            view = view[n:]
    return StreamReport(written, dropped, "finished" if device.finished else "stopped")


def open_pty() -> tuple[int, str]:
    """Open a pseudo-terminal for a serial client to read the device from.

    The terminal is put in raw mode (no echo, no CR/LF translation, 8-bit clean), so every byte
    arrives as sent and a client's CONTROL frames are not echoed back to it. The master is
    non-blocking: a client that stops reading makes :func:`stream_to_fd` drop bytes, not hang.

    Returns
    -------
    master_fd : int
        Write the device's bytes here; close it to "unplug" the device.
    slave_path : str
        The path a client opens, e.g. ``/dev/pts/5`` (``serial:///dev/pts/5``).
    """
    master_fd, slave_fd = os.openpty()
    try:
        tty.setraw(slave_fd)
        slave_path = os.ttyname(slave_fd)
    except OSError:
        os.close(master_fd)
        raise
    finally:
        # The terminal keeps its settings while the master is open; the client opens its own end.
        os.close(slave_fd)
    os.set_blocking(master_fd, False)
    return master_fd, slave_path


def write_recording(device: SimulatedDevice, out_dir: Path | str) -> Path:
    """Write the whole run as a recording folder, exactly as ``biofeed record`` of the device would.

    The device runs as fast as possible through :class:`~biofeed.sources.sim.SimSource` (which
    stamps each chunk with the host time it would have arrived at, clock error included) and the
    same acquisition loop and analysis pipeline as ``biofeed record``.

    Parameters
    ----------
    device : SimulatedDevice
        The device (consumed).
    out_dir : Path or str
        The recording folder to create (must not exist, or be empty).

    Returns
    -------
    Path
        The recording folder.

    Raises
    ------
    RecordingError
        The folder exists and is not empty, or cannot be written.
    """
    from biofeed.pipeline import BATCH_COALESCE_S, Pipeline
    from biofeed.runner import Acquisition
    from biofeed.sources.sim import SimSource

    path = Path(out_dir)
    with RecordingWriter(path, source_url=device.url) as writer:
        result = Acquisition(
            SimSource(device, speed=0.0), recorder=writer, pipeline=Pipeline(coalesce_s=BATCH_COALESCE_S)
        ).run()
        if result.error is not None:
            raise result.error
    return path


def write_truth(device: SimulatedDevice, path: Path | str) -> Path:
    """Write the device's ground truth (:meth:`SimulatedDevice.truth`) as indented JSON to ``path``."""
    target = Path(path)
    target.write_text(json.dumps(device.truth(), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return target


def wait_for_request(master_fd: int, stop: threading.Event) -> bool:
    """Wait until a client writes a whole frame to the pty (a serial source asks for INFO on opening).

    Parameters
    ----------
    master_fd : int
        The pty's master side (:func:`open_pty`).
    stop : threading.Event
        Set to give up.

    Returns
    -------
    bool
        True once a frame arrived; False when stopped first.
    """
    received = b""
    while not stop.is_set():
        readable, _, _ = select.select([master_fd], [], [], 0.1)
        if not readable:
            continue
        try:
            received += os.read(master_fd, 256)
        except BlockingIOError:
            continue
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            stop.wait(0.05)  # Linux: EIO until a client opens the terminal
            continue
        if b"\x00" in received.lstrip(b"\x00"):
            return True
    return False
