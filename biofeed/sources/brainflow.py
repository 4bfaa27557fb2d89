"""A board BrainFlow supports as a source: ``brainflow://BOARD?serial_port=/dev/ttyUSB0&...``.

``BOARD`` is a name from BrainFlow's ``BoardIds`` without ``_BOARD``, in any case, with ``-`` or
``_`` (``synthetic``, ``cyton``, ``cyton-daisy``, ``ganglion``, ``unicorn``, ...), or its number
(``-1`` is the synthetic board). The parameters are BrainFlow's ``BrainFlowInputParams``:
``serial_port``, ``mac_address``, ``ip_address``, ``ip_port``, ``ip_protocol``, ``serial_number``,
``timeout``, ``other_info``, ``file`` and ``master_board``; each board's page in the BrainFlow
documentation says which it needs.

Like ``lsl://``, the source encodes what it pulls as the frames of a biofeed board
(:mod:`biofeed.sources.sample_frames`), so recording, decoding, replay and export stay one path.
The virtual device (id ``brainflow-BOARD``, board profile ``brainflow-BOARD``, firmware version =
BrainFlow's version) has up to two streams at the board's rate: ``emg``, the board's EMG channels
(its EXG channels when it names no EMG ones) in uV, named ``ch1``, ``ch2``, ...; and ``imu``, its
accelerometer channels (``acc_x``, ``acc_y``, ``acc_z``) in g. Lost samples are found from the
board's package counter (0..255), with its time stamps deciding how many times the counter went
round during a longer loss. A board whose counter does not step by one per sample would report
false gaps.

BrainFlow is an optional extra (``pip install 'biofeed[brainflow]'``), imported only here.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from biofeed.blocks import ChannelInfo, ChannelKind, StreamInfo
from biofeed.errors import DeviceNotFoundError, SourceError, SourceLost
from biofeed.sources.base import SourceUrl, TimedChunk
from biofeed.sources.sample_frames import SampleFramer

__all__ = ["BRAINFLOW_PARAMETERS", "BrainFlowSource", "board_id_from_name", "import_brainflow", "package_gaps"]

BRAINFLOW_PARAMETERS: frozenset[str] = frozenset(
    {
        "serial_port",
        "mac_address",
        "ip_address",
        "ip_port",
        "ip_protocol",
        "serial_number",
        "timeout",
        "other_info",
        "file",
        "master_board",
    }
)
"""Query parameters ``brainflow://`` takes (fields of BrainFlow's ``BrainFlowInputParams``)."""

_WHOLE_NUMBER_PARAMETERS = frozenset({"ip_port", "ip_protocol", "timeout", "master_board"})
_PACKAGE_MODULO = 256
_POLL_S = 0.02
_RING_S = 10  # BrainFlow's own buffer: a longer stall overwrites samples, which the counter shows as a gap


def import_brainflow() -> Any:
    """Import ``brainflow.board_shim``, or explain how to install it.

    Raises
    ------
    SourceError
        When BrainFlow is not installed (it is an optional extra).
    """
    try:
        from brainflow import board_shim
    except ImportError as exc:
        raise SourceError(f"brainflow:// needs BrainFlow: pip install 'biofeed[brainflow]' ({exc})") from None
    return board_shim


def _board_names(board_ids: Any) -> dict[str, int]:
    names = {}
    for member in board_ids:
        name = member.name.lower().removesuffix("_board").replace("_", "-")
        names[name] = int(member.value)
    return names


def board_id_from_name(name: str) -> int:
    """BrainFlow's numeric board id for a board name or number.

    Parameters
    ----------
    name : str
        ``synthetic``, ``cyton``, ``cyton-daisy`` (or ``CYTON_DAISY_BOARD``), ... or a number.

    Raises
    ------
    ValueError
        For a name BrainFlow does not know; the message lists the known ones.
    SourceError
        When BrainFlow is not installed.
    """
    board_ids = import_brainflow().BoardIds
    names = _board_names(board_ids)
    text = name.strip()
    try:
        number = int(text)
    except ValueError:
        key = text.lower().removesuffix("_board").replace("_", "-")
        if key in names:
            return names[key]
        raise ValueError(f"unknown BrainFlow board {name!r}; known: {', '.join(sorted(names))}") from None
    if number not in names.values():
        raise ValueError(f"unknown BrainFlow board id {number}; known: {sorted(names.values())}")
    return number


def package_gaps(
    previous: tuple[int, float] | None, packages: npt.ArrayLike, stamps_s: npt.ArrayLike, sample_rate_hz: float
) -> npt.NDArray[np.int64]:
    """Samples lost before each sample, from BrainFlow's package counter and time stamps.

    The counter (mod 256) gives the loss modulo 256; the host time stamps say how many times it
    went round: of the counts that agree with the counter, the one closest to ``dt * rate - 1``.

    Parameters
    ----------
    previous : (int, float) or None
        Package number and time stamp of the sample before the first; None at the start.
    packages : array_like, shape (n_samples,)
        Package numbers (0..255).
    stamps_s : array_like, shape (n_samples,)
        Host time stamps in seconds (NaN where unknown: the counter alone decides).
    sample_rate_hz : float
        The board's rate.

    Returns
    -------
    ndarray of int64, shape (n_samples,)
        Samples lost right before each sample (0 for the first sample of a run).
    """
    pkg = np.asarray(packages, dtype=np.int64)
    ts = np.asarray(stamps_s, dtype=np.float64)
    prev_pkg = np.empty_like(pkg)
    prev_ts = np.empty_like(ts)
    if pkg.size:
        prev_pkg[1:], prev_ts[1:] = pkg[:-1], ts[:-1]
        if previous is None:
            prev_pkg[0], prev_ts[0] = pkg[0] - 1, ts[0]
        else:
            prev_pkg[0], prev_ts[0] = previous
    lost_mod = (pkg - prev_pkg - 1) % _PACKAGE_MODULO
    expected = (ts - prev_ts) * sample_rate_hz - 1
    turns = np.where(np.isfinite(expected), np.round((expected - lost_mod) / _PACKAGE_MODULO), 0.0)
    return lost_mod + _PACKAGE_MODULO * np.maximum(turns, 0).astype(np.int64)


class BrainFlowSource:
    """Streams a BrainFlow board and yields its samples as wire frames.

    Parameters
    ----------
    board_id : int
        BrainFlow board id (:func:`board_id_from_name`).
    params : dict of str to str or int
        Fields of ``BrainFlowInputParams`` (see :data:`BRAINFLOW_PARAMETERS`).
    url : str or None
        The URL to report; None builds ``brainflow://ID``.
    wait : callable taking seconds, or None
        Waits between polls of the board; a true return value stops. None: the source's own stop
        event, so :meth:`close` interrupts a wait at once.

    Attributes
    ----------
    url : str
    device_id : str
        ``brainflow-BOARD``.

    Raises
    ------
    DeviceNotFoundError
        When BrainFlow cannot open the board (nothing at the port or address).
    SourceError
        When BrainFlow is not installed, or the board has neither EXG nor accelerometer channels.
    """

    def __init__(
        self,
        board_id: int,
        params: dict[str, str | int] | None = None,
        *,
        url: str | None = None,
        wait: Callable[[float], object] | None = None,
    ) -> None:
        shim = import_brainflow()
        self.url = url if url is not None else f"brainflow://{board_id}"
        self._closed = threading.Event()
        self._wait = self._closed.wait if wait is None else wait
        self._running = False
        input_params = shim.BrainFlowInputParams()
        for key, value in (params or {}).items():
            if key not in BRAINFLOW_PARAMETERS:
                raise ValueError(
                    f"unknown BrainFlow parameter {key!r}; allowed: {', '.join(sorted(BRAINFLOW_PARAMETERS))}"
                )
            setattr(input_params, key, value)
        board = shim.BoardShim
        board.disable_board_logger()  # errors reach the user as biofeed errors, not BrainFlow's log lines
        self._error: type[Exception] = shim.BrainFlowError
        self._rate_hz = float(board.get_sampling_rate(board_id))
        self._emg_rows = self._rows(board.get_emg_channels, board_id) or self._rows(board.get_exg_channels, board_id)
        self._acc_rows = self._rows(board.get_accel_channels, board_id)
        self._package_row = int(board.get_package_num_channel(board_id))
        self._stamp_row = self._row(board.get_timestamp_channel, board_id)
        name = next((n for n, i in _board_names(shim.BoardIds).items() if i == board_id), str(board_id))
        streams = []
        if self._emg_rows:
            emg = tuple(ChannelInfo(f"ch{k + 1}", ChannelKind.EMG, "uV") for k in range(len(self._emg_rows)))
            streams.append(StreamInfo("emg", self._rate_hz, emg))
        if self._acc_rows:
            acc = tuple(ChannelInfo(f"acc_{axis}", ChannelKind.ACC, "g") for axis in "xyz"[: len(self._acc_rows)])
            streams.append(StreamInfo("imu", self._rate_hz, acc))
        if not streams:
            raise SourceError(f"{self.url}: BrainFlow lists neither EXG nor accelerometer channels for board {name!r}")
        self.device_id = f"brainflow-{name}"
        version = tuple(int(v) for v in str(board.get_version()).split(".")[:3] if v.isdigit())
        major, minor, patch = (*version, 0, 0, 0)[:3]
        self._framer = SampleFramer(
            self.device_id, f"brainflow-{name}", streams, firmware_version=(major % 256, minor % 256, patch % 256)
        )
        self._board = board(board_id, input_params)
        try:
            self._board.prepare_session()
        except self._error as exc:
            raise DeviceNotFoundError(self.url, f"BrainFlow could not open the board: {exc}") from None
        self._previous: tuple[int, float] | None = None

    @staticmethod
    def _rows(getter: Callable[[int], list[int]], board_id: int) -> list[int]:
        """Rows of a channel type; empty when BrainFlow says the board has none (it raises then)."""
        try:
            return [int(r) for r in getter(board_id)]
        except Exception:  # BrainFlowError(UNSUPPORTED_BOARD_ERROR): the board has no such channels
            return []

    @staticmethod
    def _row(getter: Callable[[int], int], board_id: int) -> int | None:
        try:
            return int(getter(board_id))
        except Exception:  # BrainFlowError: no such row on this board
            return None

    @classmethod
    def from_url(cls, url: SourceUrl) -> BrainFlowSource:
        """Open ``brainflow://BOARD?...`` (parameters in the module docstring).

        Raises
        ------
        ValueError
            An unknown board or parameter, or a whole-number parameter that is not one.
        DeviceNotFoundError
            When BrainFlow cannot open the board.
        SourceError
            When BrainFlow is not installed.
        """
        url.check_keys(set(BRAINFLOW_PARAMETERS))
        if not url.target:
            raise ValueError(
                "brainflow:// needs a board, e.g. brainflow://synthetic or brainflow://cyton?serial_port=..."
            )
        board_id = board_id_from_name(url.target)
        params: dict[str, str | int] = {}
        for key, value in url.params.items():
            params[key] = url.whole_number(key, 0, minimum=-(2**31)) if key in _WHOLE_NUMBER_PARAMETERS else value
        text = f"brainflow://{url.target}" + (
            "?" + "&".join(f"{k}={v}" for k, v in url.params.items()) if url.params else ""
        )
        return cls(board_id, params, url=text)

    def chunks(self) -> Iterator[TimedChunk]:
        """Start the board's stream and yield its samples as frames, polling every 20 ms.

        Raises
        ------
        SourceLost
            When BrainFlow reports an error while streaming.
        """
        self._running = True
        try:
            try:
                self._board.start_stream(max(1, round(self._rate_hz * _RING_S)))
            except self._error as exc:
                raise SourceLost(f"{self.url}: BrainFlow could not start the stream: {exc}") from None
            yield TimedChunk(self._framer.start(), time.time())
            while not self._closed.is_set():
                if self._wait(_POLL_S) or self._closed.is_set():
                    return
                try:
                    data = self._board.get_board_data()
                except self._error as exc:
                    raise SourceLost(f"{self.url}: BrainFlow stopped: {exc}") from None
                yield TimedChunk(self._frames(np.asarray(data, dtype=np.float64)), time.time())
        finally:
            self._release()

    def _frames(self, data: npt.NDArray[np.float64]) -> bytes:
        n_samples = data.shape[1] if data.ndim == 2 else 0
        if not n_samples:
            return b""
        packages = np.rint(data[self._package_row]).astype(np.int64)
        stamps = data[self._stamp_row] if self._stamp_row is not None else np.full(n_samples, math.nan)
        lost = package_gaps(self._previous, packages, stamps, self._rate_hz)
        self._previous = (int(packages[-1]), float(stamps[-1]))
        starts = sorted({0, *(int(s) + 1 for s in np.flatnonzero(lost[1:]))})
        out: list[bytes] = []
        for start, stop in zip(starts, [*starts[1:], n_samples], strict=True):
            gap = int(lost[start])
            if self._emg_rows:
                out.append(self._framer.samples("emg", data[self._emg_rows, start:stop], gap_before=gap))
            if self._acc_rows:
                out.append(self._framer.samples("imu", data[self._acc_rows, start:stop], gap_before=gap))
        return b"".join(out)

    def _release(self) -> None:
        if not self._board.is_prepared():
            return
        for step in (self._board.stop_stream, self._board.release_session):
            with contextlib.suppress(self._error):  # never started, or the board is gone: nothing to undo
                step()

    def close(self) -> None:
        """Stop: ``chunks()`` returns at its next poll and releases the board. Safe from another thread, and twice."""
        self._closed.set()
        if not self._running:
            self._release()
