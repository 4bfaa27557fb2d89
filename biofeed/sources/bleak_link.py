"""bleak behind the :class:`~biofeed.sources.ble.BleLink` protocol (bleak 3.x).

Everything here runs on the BLE source's private loop. bleak's exceptions become
:class:`~biofeed.errors.SourceError` with words for the user. On the MTU: no OS stack lets an
application ask for one through bleak; BlueZ asks the peer for 517 bytes on connecting, macOS and
Windows negotiate on their own, so :meth:`BleakLink.connect` reads what was agreed.
"""

from __future__ import annotations

from collections.abc import Callable

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
)

from biofeed.errors import DeviceNotFoundError, SourceError
from biofeed.sources.ble import DATA_UUID, SERVICE_UUID, ScannedDevice

__all__ = ["BleakLink"]

_ATT_HEADER_BYTES = 3
_NO_BLUETOOTHD = "cannot reach the Bluetooth service (Linux: is bluetoothd running? see docs/ble.md)"
_DBUS_ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"
_DBUS_NO_SERVICE = "org.freedesktop.DBus.Error.ServiceUnknown"
# What the OS stack, D-Bus or a vanished device can raise through bleak.
_RADIO_ERRORS = (BleakError, TimeoutError, OSError, EOFError)
_UNAVAILABLE_HINTS = {
    BleakBluetoothNotAvailableReason.NO_BLUETOOTH: "no Bluetooth adapter found",
    BleakBluetoothNotAvailableReason.NO_BLE_CENTRAL_ROLE: "the Bluetooth adapter cannot act as a BLE central",
    BleakBluetoothNotAvailableReason.POWERED_OFF: "Bluetooth is switched off",
    BleakBluetoothNotAvailableReason.DENIED_BY_USER: (
        "Bluetooth permission denied (macOS: allow your terminal under Privacy & Security > Bluetooth)"
    ),
    BleakBluetoothNotAvailableReason.DENIED_BY_SYSTEM: (
        "Bluetooth access denied by the system (Linux: is bluetoothd running and your user allowed? see docs/ble.md)"
    ),
}


def _reason(exc: BaseException) -> str:
    if isinstance(exc, BleakBluetoothNotAvailableError):
        return _UNAVAILABLE_HINTS.get(exc.reason, f"Bluetooth is not available ({exc.args[0]})")
    if isinstance(exc, BleakDBusError) and exc.dbus_error == _DBUS_NO_SERVICE:
        return _NO_BLUETOOTHD
    if isinstance(exc, BleakDBusError) and exc.dbus_error == _DBUS_ACCESS_DENIED:
        return _UNAVAILABLE_HINTS[BleakBluetoothNotAvailableReason.DENIED_BY_SYSTEM]
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        return _NO_BLUETOOTHD
    return str(exc) or type(exc).__name__


def _scanned(device: BLEDevice, advertisement: AdvertisementData) -> ScannedDevice:
    return ScannedDevice(
        address=device.address,
        name=advertisement.local_name or device.name,
        rssi_dbm=advertisement.rssi,
        service_uuids=tuple(u.lower() for u in advertisement.service_uuids),
    )


class BleakLink:
    """A :class:`~biofeed.sources.ble.BleLink` over bleak; one connection at a time."""

    def __init__(self) -> None:
        self._client: BleakClient | None = None
        # bleak connects faster and more reliably to a device object from a scan than to an
        # address (which makes it scan again), so remember what scans saw.
        self._seen: dict[str, BLEDevice] = {}

    async def scan(self, service_uuid: str, timeout_s: float) -> list[ScannedDevice]:
        """Scan for ``timeout_s`` seconds; the devices advertising ``service_uuid``."""
        try:
            found = await BleakScanner.discover(timeout=timeout_s, return_adv=True, service_uuids=[service_uuid])
        except _RADIO_ERRORS as exc:
            raise SourceError(f"Bluetooth scan failed: {_reason(exc)}") from exc
        out = []
        for device, advertisement in found.values():
            self._seen[device.address] = device
            out.append(_scanned(device, advertisement))
        return out

    async def find(self, match: Callable[[ScannedDevice], bool], timeout_s: float) -> ScannedDevice | None:
        """Scan until a device satisfies ``match``; None after ``timeout_s`` seconds."""
        hits: list[ScannedDevice] = []

        def accept(device: BLEDevice, advertisement: AdvertisementData) -> bool:
            scanned = _scanned(device, advertisement)
            if match(scanned):
                hits.append(scanned)
                return True
            return False

        try:
            device = await BleakScanner.find_device_by_filter(accept, timeout=timeout_s)
        except _RADIO_ERRORS as exc:
            raise SourceError(f"Bluetooth scan failed: {_reason(exc)}") from exc
        if device is None:
            return None
        self._seen[device.address] = device
        return hits[-1]

    async def connect(self, address: str, *, timeout_s: float, on_disconnect: Callable[[], None]) -> int:
        """Connect, resolve the biofeed service, return the negotiated ATT MTU in bytes."""
        client = BleakClient(
            self._seen.get(address, address),
            disconnected_callback=lambda _client: on_disconnect(),
            services=[SERVICE_UUID],
            timeout=timeout_s,
        )
        try:
            await client.connect()
        except BleakDeviceNotFoundError as exc:
            raise DeviceNotFoundError(address, "the device disappeared before it could be connected") from exc
        except _RADIO_ERRORS as exc:
            raise SourceError(f"{address}: connecting failed: {_reason(exc)}") from exc
        self._client = client
        data = client.services.get_characteristic(DATA_UUID)
        if data is None:
            await self.disconnect()
            raise SourceError(f"{address}: no biofeed data characteristic (not a biofeed device, or old firmware)")
        return data.max_write_without_response_size + _ATT_HEADER_BYTES

    def _connected_client(self) -> BleakClient:
        if self._client is None:
            raise SourceError("not connected")
        return self._client

    async def subscribe(self, char_uuid: str, on_data: Callable[[bytes], None]) -> None:
        """Enable notifications; ``on_data`` gets each value as bytes."""
        client = self._connected_client()
        try:
            await client.start_notify(char_uuid, lambda _char, data: on_data(bytes(data)))
        except _RADIO_ERRORS as exc:
            raise SourceError(f"subscribing to {char_uuid} failed: {_reason(exc)}") from exc

    async def write(self, char_uuid: str, data: bytes) -> None:
        """Write with response."""
        client = self._connected_client()
        try:
            await client.write_gatt_char(char_uuid, data, response=True)
        except _RADIO_ERRORS as exc:
            raise SourceError(f"writing to {char_uuid} failed: {_reason(exc)}") from exc

    async def disconnect(self) -> None:
        """Disconnect and release the connection's resources; a no-op without one."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            await client.disconnect()
        except _RADIO_ERRORS as exc:
            raise SourceError(f"disconnecting failed: {_reason(exc)}") from exc
