"""Bluetooth Low Energy source: ``ble://ADDRESS`` or ``ble://NAME`` (docs/ble.md).

Parameters: ``timeout`` (seconds to scan for the device, default 10), ``reconnect`` (most attempts
after the link drops, default 10; 0 gives up at once), ``backoff`` (longest wait between attempts in
seconds, default 5; 0 retries at once).

The radio is reached through a small :class:`BleLink` (:class:`biofeed.sources.bleak_link.BleakLink`
adapts bleak; tests inject fakes). Its coroutines run on one private asyncio loop in a daemon
thread, shared by every BLE source of the process, as bleak wants one loop per application.
Notifications go from that thread to :meth:`BleSource.chunks` over a ``queue.Queue``, each stamped
with its host arrival time; asyncio never leaks out of this module.

When the link drops, :meth:`BleSource.chunks` yields a ``LOST`` link event, then one 0x00 byte (it
ends a frame the drop cut, so the cut frame cannot swallow the first frame after the reconnect),
then a ``RECONNECTING`` event per attempt and ``CONNECTED`` once the link is back; it raises
:class:`~biofeed.errors.SourceLost` after the last attempt failed. The decoder sees what was lost
in the device's sample counters, which keep counting while the link is down.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import queue
import re
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from biofeed.errors import DeviceNotFoundError, SourceError, SourceLost
from biofeed.protocol.packets import ControlCommand, ControlPayload, Packet, PacketType, encode_frame
from biofeed.sources.backoff import DEFAULT_MAX_BACKOFF_S, backoff_delay_s
from biofeed.sources.base import LinkEvent, LinkState, SourceUrl, TimedChunk

__all__ = [
    "BLE_PARAMETERS",
    "CONTROL_UUID",
    "DATA_UUID",
    "DEFAULT_MAX_BACKOFF_S",
    "DEFAULT_MAX_RECONNECTS",
    "DEFAULT_SCAN_TIMEOUT_S",
    "SERVICE_UUID",
    "BleLink",
    "BleSource",
    "ScannedDevice",
    "is_device_address",
    "scan_ble",
]

log = logging.getLogger(__name__)

SERVICE_UUID = "b10feed0-0000-4e4d-8f00-62696f666565"
"""The biofeed GATT service, advertised by the device (PROTOCOL.md 6.2)."""
DATA_UUID = "b10feed1-0000-4e4d-8f00-62696f666565"
"""Notify characteristic: device -> host frames."""
CONTROL_UUID = "b10feed2-0000-4e4d-8f00-62696f666565"
"""Write characteristic (with response): host -> device CONTROL frames."""

BLE_PARAMETERS: frozenset[str] = frozenset({"timeout", "reconnect", "backoff"})
"""Query parameters ``ble://`` takes."""
DEFAULT_SCAN_TIMEOUT_S = 10.0
DEFAULT_MAX_RECONNECTS = 10

_DEFAULT_CONNECT_TIMEOUT_S = 20.0
_IDLE_CHUNK_S = 0.05  # base.Source: an idle source yields an empty chunk at least every 100 ms
_DISCONNECT_TIMEOUT_S = 5.0
_CLOSE_WAIT_S = 10.0  # close() waits this long for a clean disconnect before leaving it to the loop
_OPEN_SLACK_S = 10.0  # beyond scan and connect timeouts, before giving up on a stuck backend
_FRAME_END = b"\x00"
_REQUEST_INFO_FRAME = b"\x00" + encode_frame(
    Packet(PacketType.CONTROL, 0, 0, 0, ControlPayload(ControlCommand.REQUEST_INFO).to_payload())
)
_ADDRESS = re.compile(r"(?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}|[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}")

_T = TypeVar("_T")


@dataclass(frozen=True)
class ScannedDevice:
    """A device seen advertising.

    Attributes
    ----------
    address : str
        Bluetooth address (``AA:BB:CC:DD:EE:FF``; on macOS a UUID the OS assigns).
    name : str or None
        Advertised local name, None when it sent none.
    rssi_dbm : int or None
        Received signal strength of the latest advertisement, dBm.
    service_uuids : tuple of str
        Advertised service UUIDs, lower case.
    """

    address: str
    name: str | None
    rssi_dbm: int | None
    service_uuids: tuple[str, ...]

    @property
    def advertises_biofeed(self) -> bool:
        """True when the device advertises the biofeed service."""
        return SERVICE_UUID in self.service_uuids


class BleLink(Protocol):
    """The radio, as the BLE source needs it; one connection at a time.

    Every coroutine runs on the source's private loop. Failures of the radio, the OS stack or
    the device raise :class:`~biofeed.errors.SourceError` (or a subclass), never a backend's own
    exception type.
    """

    async def scan(self, service_uuid: str, timeout_s: float) -> list[ScannedDevice]:
        """Scan for ``timeout_s`` seconds and return the devices that advertise ``service_uuid``."""
        ...

    async def find(self, match: Callable[[ScannedDevice], bool], timeout_s: float) -> ScannedDevice | None:
        """Scan until an advertising device satisfies ``match``; None after ``timeout_s`` seconds."""
        ...

    async def connect(self, address: str, *, timeout_s: float, on_disconnect: Callable[[], None]) -> int:
        """Connect to ``address`` (found by a scan) and return the negotiated ATT MTU in bytes.

        ``on_disconnect`` is called on the loop when this connection ends, whoever ended it.
        """
        ...

    async def subscribe(self, char_uuid: str, on_data: Callable[[bytes], None]) -> None:
        """Enable notifications of a characteristic; ``on_data`` gets each value, on the loop."""
        ...

    async def write(self, char_uuid: str, data: bytes) -> None:
        """Write ``data`` to a characteristic, with response."""
        ...

    async def disconnect(self) -> None:
        """End the connection and release it; nothing happens when there is none."""
        ...


def is_device_address(target: str) -> bool:
    """True when ``target`` is a Bluetooth address (``AA:BB:CC:DD:EE:FF``) or a macOS device UUID."""
    return _ADDRESS.fullmatch(target) is not None


class _LoopThread:
    """One asyncio loop in a daemon thread, started on first use and kept for the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="biofeed-ble", daemon=True)
                self._thread.start()
            return self._loop

    def submit(self, coroutine: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop())

    def run(self, coroutine: Coroutine[Any, Any, _T], limit_s: float, what: str) -> _T:
        """Run ``coroutine`` on the loop and return its result; a SourceError after ``limit_s``."""
        future = self.submit(coroutine)
        done, _ = concurrent.futures.wait([future], limit_s)
        if not done:
            future.cancel()
            raise SourceError(f"{what} did not end within {limit_s:g} s")
        return future.result()

    def is_current(self) -> bool:
        return self._thread is threading.current_thread()


_LOOP = _LoopThread()


def _default_link() -> BleLink:
    from biofeed.sources.bleak_link import BleakLink

    return BleakLink()


def scan_ble(timeout_s: float = 5.0, *, link: BleLink | None = None) -> list[ScannedDevice]:
    """Scan for biofeed devices (those advertising :data:`SERVICE_UUID`), strongest signal first.

    Parameters
    ----------
    timeout_s : float
        Seconds to scan.
    link : BleLink or None
        The radio; bleak's when None.

    Raises
    ------
    ValueError
        A non-positive or non-finite ``timeout_s``.
    SourceError
        No usable Bluetooth (no adapter, switched off, no permission).
    """
    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s}")
    radio = _default_link() if link is None else link
    found = _LOOP.run(radio.scan(SERVICE_UUID, timeout_s), timeout_s + _OPEN_SLACK_S, "the Bluetooth scan")
    return sorted(found, key=lambda d: -127 if d.rssi_dbm is None else d.rssi_dbm, reverse=True)


class _Stopped:
    """What :meth:`BleSource._unless_stopped` returns when ``close()`` came first."""


_STOPPED = _Stopped()
_END = object()  # queued last: chunks() returns


class BleSource:
    """Chunks of a biofeed device's notifications over Bluetooth Low Energy.

    Opening finds the device (by exact address, or by advertised name among devices advertising
    the biofeed service), connects, subscribes to the data characteristic and asks the device for
    its INFO. A dropped link is reconnected with bounded exponential backoff (module docstring).

    Parameters
    ----------
    target : str
        Bluetooth address (``AA:BB:CC:DD:EE:FF``, a UUID on macOS) or advertised name.
    scan_timeout_s : float
        Seconds to scan for the device, at opening and at each reconnect attempt.
    max_reconnects : int
        Reconnect attempts after the link drops before :class:`SourceLost`; 0 for none.
    max_backoff_s : float
        Longest wait between attempts (:func:`~biofeed.sources.backoff.backoff_delay_s`); 0 retries at once.
    connect_timeout_s : float
        Seconds one connection attempt may take.
    link : BleLink or None
        The radio; bleak's (:class:`~biofeed.sources.bleak_link.BleakLink`) when None.

    Attributes
    ----------
    url : str
        The ``ble://`` URL of this source.
    mtu_bytes : int
        ATT MTU of the current connection, as the OS negotiated it.

    Raises
    ------
    ValueError
        An empty target or a parameter out of range.
    DeviceNotFoundError
        Nothing matching ``target`` advertised within ``scan_timeout_s``.
    SourceError
        Bluetooth is unusable (no adapter, switched off, no permission) or the connection failed.
    """

    def __init__(
        self,
        target: str,
        *,
        scan_timeout_s: float = DEFAULT_SCAN_TIMEOUT_S,
        max_reconnects: int = DEFAULT_MAX_RECONNECTS,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
        connect_timeout_s: float = _DEFAULT_CONNECT_TIMEOUT_S,
        link: BleLink | None = None,
    ) -> None:
        if not target:
            raise ValueError("a BLE target must be a device address or name, got an empty string")
        for name, value in (("scan_timeout_s", scan_timeout_s), ("connect_timeout_s", connect_timeout_s)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value}")
        if not (math.isfinite(max_backoff_s) and max_backoff_s >= 0):
            raise ValueError(f"max_backoff_s must be a finite number of seconds >= 0, got {max_backoff_s}")
        if isinstance(max_reconnects, bool) or not isinstance(max_reconnects, int) or max_reconnects < 0:
            raise ValueError(f"max_reconnects must be a whole number >= 0, got {max_reconnects!r}")
        self.target = target
        self.url = (
            f"ble://{quote(target, safe=':-_.')}?timeout={scan_timeout_s:g}"
            f"&reconnect={max_reconnects}&backoff={max_backoff_s:g}"
        )
        self.mtu_bytes = 0
        self._scan_timeout_s = scan_timeout_s
        self._max_reconnects = max_reconnects
        self._max_backoff_s = max_backoff_s
        self._connect_timeout_s = connect_timeout_s
        self._link = _default_link() if link is None else link
        self._queue: queue.Queue[object] = queue.Queue()
        self._closed = threading.Event()
        self._finished = threading.Event()
        self._stop = asyncio.Event()  # set on the loop by close(); binds to the loop on first wait
        self._lost = asyncio.Event()
        self._lost_at = math.nan
        self._held: list[TimedChunk] | None = None  # notifications held until CONNECTED is queued
        self._open()

    @classmethod
    def from_url(cls, url: SourceUrl, *, link: BleLink | None = None) -> BleSource:
        """Open ``ble://ADDRESS`` or ``ble://NAME`` (parameters in the module docstring).

        Raises
        ------
        ValueError
            An empty target, an unknown parameter or a value out of range; the message names the
            allowed ones.
        DeviceNotFoundError, SourceError
            As the constructor.
        """
        url.check_keys(set(BLE_PARAMETERS))
        if not url.target:
            raise ValueError(
                "ble:// needs a device address or name, e.g. ble://AA:BB:CC:DD:EE:FF or ble://biofeed-01 "
                "(`biofeed scan` lists them)"
            )
        scan_timeout_s = url.number("timeout", DEFAULT_SCAN_TIMEOUT_S, minimum=0.0)
        if not (math.isfinite(scan_timeout_s) and scan_timeout_s > 0):
            raise ValueError(f"parameter timeout={scan_timeout_s:g} must be a positive number of seconds")
        max_backoff_s = url.number("backoff", DEFAULT_MAX_BACKOFF_S, minimum=0.0)
        if not math.isfinite(max_backoff_s):
            raise ValueError(f"parameter backoff={max_backoff_s:g} must be a finite number of seconds")
        return cls(
            url.target,
            scan_timeout_s=scan_timeout_s,
            max_reconnects=url.whole_number("reconnect", DEFAULT_MAX_RECONNECTS),
            max_backoff_s=max_backoff_s,
            link=link,
        )

    # -- the consumer's side (any thread) --------------------------------------------------------

    def chunks(self) -> Iterator[TimedChunk]:
        """Yield notifications and link events until :meth:`close`.

        Raises
        ------
        SourceLost
            The link dropped and every reconnect attempt failed.
        """
        while not self._closed.is_set():
            try:
                item = self._queue.get(timeout=_IDLE_CHUNK_S)
            except queue.Empty:
                yield TimedChunk(b"", time.time())
                continue
            if item is _END:
                return
            if isinstance(item, Exception):  # SourceLost, or a failure of the loop's side
                raise item
            if isinstance(item, TimedChunk):
                yield item

    def close(self) -> None:
        """Disconnect and stop: ``chunks()`` returns soon after. Safe from any thread, and twice.

        Waits (up to 10 s) for the device to be disconnected, so that the OS does not keep the
        link open after the process ends.
        """
        self._closed.set()
        loop = _LOOP.loop()
        loop.call_soon_threadsafe(self._stop.set)
        if not _LOOP.is_current():
            self._finished.wait(_CLOSE_WAIT_S)

    # -- the loop's side -------------------------------------------------------------------------

    def _open(self) -> None:
        limit_s = self._scan_timeout_s + self._connect_timeout_s + _OPEN_SLACK_S
        try:
            _LOOP.run(self._connect_once(0), limit_s, f"{self.url}: connecting")
        except BaseException:
            self._finished.set()
            raise
        _LOOP.submit(self._watch())

    def _put_link(self, state: LinkState, detail: str, attempt: int, at: float) -> None:
        self._queue.put(TimedChunk(b"", at, LinkEvent(state, detail, attempt)))

    def _on_data(self, data: bytes) -> None:
        chunk = TimedChunk(data, time.time())
        if self._held is None:
            self._queue.put(chunk)
        else:
            self._held.append(chunk)

    def _matches(self, device: ScannedDevice) -> bool:
        if is_device_address(self.target):
            return device.address.lower() == self.target.lower()
        return device.name == self.target and device.advertises_biofeed

    async def _connect_once(self, attempt: int) -> None:
        """Find, connect, subscribe, ask for INFO, then queue CONNECTED and what arrived meanwhile.

        Notifications can arrive before subscribing has returned; they are held until the
        CONNECTED event is queued, so that it precedes them. That event carries the time the
        connection was made, so every stamp stays in arrival order.
        """
        device = await self._link.find(self._matches, self._scan_timeout_s)
        if device is None:
            kind = "address" if is_device_address(self.target) else "biofeed device named"
            raise DeviceNotFoundError(
                self.target,
                f"no {kind} {self.target!r} advertising within {self._scan_timeout_s:g} s (is it on, in range "
                "and not connected to another host? `biofeed scan` lists biofeed devices)",
            )
        lost = asyncio.Event()

        def on_disconnect() -> None:
            self._lost_at = time.time()
            lost.set()

        self._lost = lost
        held: list[TimedChunk] = []
        self._held = held
        try:
            self.mtu_bytes = await self._link.connect(
                device.address, timeout_s=self._connect_timeout_s, on_disconnect=on_disconnect
            )
            connected_at = time.time()
            await self._link.subscribe(DATA_UUID, self._on_data)
            try:
                await self._link.write(CONTROL_UUID, _REQUEST_INFO_FRAME)
            except SourceError as exc:  # the periodic INFO comes within a second anyway
                log.warning("%s: asking for INFO failed: %s", self.url, exc)
        except BaseException:
            self._held = None
            await self._disconnect_quietly()
            raise
        rssi = "" if device.rssi_dbm is None else f", RSSI {device.rssi_dbm} dBm"
        detail = f"{device.name or 'unnamed'} {device.address}, MTU {self.mtu_bytes} bytes{rssi}"
        self._put_link(LinkState.CONNECTED, detail, attempt, connected_at)
        for chunk in held:
            self._queue.put(chunk)
        self._held = None

    async def _disconnect_quietly(self) -> None:
        try:
            await asyncio.wait_for(self._link.disconnect(), _DISCONNECT_TIMEOUT_S)
        except (SourceError, TimeoutError) as exc:
            log.warning("%s: disconnecting failed: %s", self.url, exc)

    async def _unless_stopped(self, awaitable: Awaitable[_T]) -> _T | _Stopped:
        """Await ``awaitable`` unless close() comes first (then cancel it)."""
        task = asyncio.ensure_future(awaitable)
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, SourceError):
            await task
        return _STOPPED

    async def _watch(self) -> None:
        """Wait for the link to drop and reconnect, until close() or the last attempt failed."""
        try:
            while not isinstance(await self._unless_stopped(self._lost.wait()), _Stopped):
                self._put_link(LinkState.LOST, "the link dropped", 0, self._lost_at)
                self._queue.put(TimedChunk(_FRAME_END, self._lost_at))
                await self._disconnect_quietly()  # releases what the dropped connection held
                if not await self._reconnect():
                    return
        except Exception as exc:  # a bug, not the radio: chunks() raises it in the consumer's thread
            self._queue.put(exc)
        finally:
            await self._disconnect_quietly()
            self._queue.put(_END)
            self._finished.set()

    async def _reconnect(self) -> bool:
        """Reconnect with backoff; False when closed or out of attempts (SourceLost queued)."""
        failure = "reconnect=0: not retrying"
        for attempt in range(1, self._max_reconnects + 1):
            self._put_link(LinkState.RECONNECTING, f"attempt {attempt} of {self._max_reconnects}", attempt, time.time())
            delay_s = backoff_delay_s(attempt, self._max_backoff_s)
            if delay_s > 0 and isinstance(await self._unless_stopped(asyncio.sleep(delay_s)), _Stopped):
                return False
            try:
                outcome = await self._unless_stopped(self._connect_once(attempt))
            except SourceError as exc:
                failure = str(exc)
                log.info("%s: reconnect attempt %d failed: %s", self.url, attempt, failure)
                continue
            return not isinstance(outcome, _Stopped)
        self._queue.put(
            SourceLost(f"{self.url}: the link dropped and {self._max_reconnects} reconnect attempts failed ({failure})")
        )
        return False
