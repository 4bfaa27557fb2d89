"""A fake ``org.bluez`` service presenting the simulated device over BLE GATT (docs/ble.md).

Unmodified bleak, pointed at a private bus (:class:`~biofeed.sim.bluez_bus.PrivateBus`) by
``DBUS_SYSTEM_BUS_ADDRESS``, finds, connects to and streams from :class:`FakeBluez` as it would
from bluetoothd and a real board. The fake implements what bleak 3.1's BlueZ backend uses:

- the object manager (``GetManagedObjects``, ``InterfacesAdded``/``InterfacesRemoved``, from
  dbus-fast's exports);
- ``org.bluez.Adapter1`` ``hci0``: ``StartDiscovery``, ``StopDiscovery``, ``SetDiscoveryFilter``
  (its ``UUIDs`` filter is honoured), ``GetDiscoveryFilters``, ``RemoveDevice``, and the properties
  bleak reads (``Powered``, ``Roles``, ...);
- ``org.bluez.Device1`` per device: ``Connect``, ``Disconnect``, ``Connected``,
  ``ServicesResolved``, ``RSSI``, ``Name``, ``Alias``, ``UUIDs``, ``Address``; while the adapter
  discovers, every device not connected "advertises" by changing its ``RSSI`` each advertising
  interval (bleak's scanner reports a device on any change of its properties);
- ``org.bluez.GattService1`` and two ``org.bluez.GattCharacteristic1`` in PROTOCOL.md 6.2's
  layout: data (``StartNotify``/``StopNotify``; each notification is a ``PropertiesChanged`` of
  ``Value``; an ``MTU`` property) and control (``WriteValue``). bleak 3.1 subscribes with
  ``StartNotify`` unless told otherwise, so ``AcquireNotify`` is absent, as on characteristics
  whose ``NotifyAcquired`` property is missing.

No agent, pairing or profile manager is offered: bleak calls none of them to connect and notify.
The biofeed device plays a :class:`~biofeed.sim.device.SimulatedDevice` paced by the host clock
(times ``speed``), packing whole frames into notifications of at most MTU - 3 bytes
(:class:`~biofeed.sim.bluez_packing.NotificationPacker`). The device keeps counting while the link
is down, so what it sent then is lost, as with a real board. The link drops on command
(:meth:`FakeBluez.drop_link`, or the D-Bus method ``org.biofeed.Simulator1.DropLink`` on the
device object) and every ``drop_every_s`` device seconds.

The device does not act on CONTROL frames (docs/simulator.md); it records the commands it got.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Annotated, TextIO

import numpy as np
from dbus_fast import BusType, DBusError, NameFlag, RequestNameReply, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import (
    DBusBool,
    DBusBytes,
    DBusDict,
    DBusInt16,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
    DBusUInt16,
)
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from biofeed.errors import CorruptPacketError
from biofeed.protocol.decoder import FrameSplitter
from biofeed.protocol.packets import ControlCommand, ControlPayload, PacketType, decode_frame
from biofeed.sim.bluez_bus import PrivateBus
from biofeed.sim.bluez_packing import NotificationPacker
from biofeed.sim.device import SimulatedDevice
from biofeed.sources.ble import CONTROL_UUID, DATA_UUID, SERVICE_UUID

__all__ = [
    "ADAPTER_PATH",
    "DEFAULT_MTU_BYTES",
    "HEART_RATE_UUID",
    "FakeBluez",
    "serve_bluez",
]

ADAPTER_PATH = "/org/bluez/hci0"
DEFAULT_MTU_BYTES = 247
"""ATT MTU the fake negotiates: what an ESP32 with data length extension typically gets."""
HEART_RATE_UUID = "0000180d-0000-1000-8000-00805f9b34fb"
"""Service a bystander device advertises (a chest strap in the next room)."""

_BLUEZ = "org.bluez"
_ADAPTER_ADDRESS = "00:1A:7D:DA:71:13"
_STEP_S = 0.01  # device seconds per feeding step: one EMG packet
_ADVERTISING_INTERVAL_S = 0.1
_RSSI_DBM = -58
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0

_StrList = Annotated[list[str], DBusSignature("as")]
_PathList = Annotated[list[str], DBusSignature("ao")]
_NoReply = Annotated[None, DBusSignature("")]  # a bare None annotation is not a D-Bus signature


def _not_connected() -> DBusError:
    return DBusError("org.bluez.Error.NotConnected", "Not Connected")


class _Adapter(ServiceInterface):
    """``org.bluez.Adapter1``: discovery on and off, with a service UUID filter."""

    def __init__(self, owner: FakeBluez) -> None:
        super().__init__("org.bluez.Adapter1")
        self._owner = owner
        self.discovering = False
        self.filter_uuids: set[str] = set()

    @dbus_method(name="StartDiscovery")
    def start_discovery(self) -> _NoReply:
        self._set_discovering(True)

    @dbus_method(name="StopDiscovery")
    def stop_discovery(self) -> _NoReply:
        if not self.discovering:
            raise DBusError("org.bluez.Error.Failed", "No discovery started")
        self._set_discovering(False)

    @dbus_method(name="SetDiscoveryFilter")
    def set_discovery_filter(self, properties: DBusDict) -> _NoReply:
        uuids = properties.get("UUIDs")
        self.filter_uuids = {u.lower() for u in uuids.value} if uuids is not None else set()

    @dbus_method(name="GetDiscoveryFilters")
    def get_discovery_filters(self) -> _StrList:
        return ["UUIDs", "RSSI", "Pathloss", "Transport", "DuplicateData", "Discoverable", "Pattern"]

    @dbus_method(name="RemoveDevice")
    def remove_device(self, device: DBusObjectPath) -> _NoReply:
        raise DBusError("org.bluez.Error.NotPermitted", "the fake keeps its devices")

    def _set_discovering(self, on: bool) -> None:
        if on != self.discovering:
            self.discovering = on
            self.emit_properties_changed({"Discovering": on})

    @dbus_property(access=PropertyAccess.READ, name="Address")
    def address(self) -> DBusStr:
        return _ADAPTER_ADDRESS

    @dbus_property(access=PropertyAccess.READ, name="AddressType")
    def address_type(self) -> DBusStr:
        return "public"

    @dbus_property(access=PropertyAccess.READ, name="Name")
    def name_property(self) -> DBusStr:
        return "biofeed-fake-bluez"

    @dbus_property(access=PropertyAccess.READ, name="Alias")
    def alias(self) -> DBusStr:
        return "biofeed-fake-bluez"

    @dbus_property(access=PropertyAccess.READ, name="Powered")
    def powered(self) -> DBusBool:
        return True

    @dbus_property(access=PropertyAccess.READ, name="Discoverable")
    def discoverable(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ, name="Pairable")
    def pairable(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ, name="Discovering")
    def discovering_property(self) -> DBusBool:
        return self.discovering

    @dbus_property(access=PropertyAccess.READ, name="UUIDs")
    def uuids(self) -> _StrList:
        return []

    @dbus_property(access=PropertyAccess.READ, name="Roles")
    def roles(self) -> _StrList:
        return ["central", "peripheral"]


class _Device(ServiceInterface):
    """``org.bluez.Device1`` of one remote device."""

    def __init__(self, owner: FakeBluez, name: str, address: str, uuids: tuple[str, ...], *, biofeed: bool) -> None:
        super().__init__("org.bluez.Device1")
        self._owner = owner
        self.device_name = name
        self.device_address = address
        self.device_uuids = uuids
        self.biofeed = biofeed
        self.path = f"{ADAPTER_PATH}/dev_{address.replace(':', '_')}"
        self.connected = False
        self.rssi_dbm = _RSSI_DBM

    @dbus_method(name="Connect")
    def connect_method(self) -> _NoReply:
        self._owner.connect(self)

    @dbus_method(name="Disconnect")
    def disconnect_method(self) -> _NoReply:
        self._owner.disconnect(self, dropped=False)

    @dbus_method(name="Pair")
    def pair(self) -> _NoReply:
        raise DBusError("org.bluez.Error.NotSupported", "biofeed devices need no pairing")

    @dbus_method(name="CancelPairing")
    def cancel_pairing(self) -> _NoReply:
        raise DBusError("org.bluez.Error.DoesNotExist", "no pairing in progress")

    def advertise(self, rssi_dbm: int) -> None:
        self.rssi_dbm = rssi_dbm
        self.emit_properties_changed({"RSSI": rssi_dbm})

    def set_connected(self, connected: bool) -> None:
        self.connected = connected
        if connected:
            self.emit_properties_changed({"Connected": True})
            self.emit_properties_changed({"ServicesResolved": True})
        else:
            self.emit_properties_changed({"ServicesResolved": False})
            self.emit_properties_changed({"Connected": False})

    @dbus_property(access=PropertyAccess.READ, name="Address")
    def address(self) -> DBusStr:
        return self.device_address

    @dbus_property(access=PropertyAccess.READ, name="AddressType")
    def address_type(self) -> DBusStr:
        return "random"

    @dbus_property(access=PropertyAccess.READ, name="Name")
    def name_property(self) -> DBusStr:
        return self.device_name

    @dbus_property(access=PropertyAccess.READ, name="Alias")
    def alias(self) -> DBusStr:
        return self.device_name

    @dbus_property(access=PropertyAccess.READ, name="Adapter")
    def adapter(self) -> DBusObjectPath:
        return ADAPTER_PATH

    @dbus_property(access=PropertyAccess.READ, name="Connected")
    def connected_property(self) -> DBusBool:
        return self.connected

    @dbus_property(access=PropertyAccess.READ, name="ServicesResolved")
    def services_resolved(self) -> DBusBool:
        return self.connected

    @dbus_property(access=PropertyAccess.READ, name="Paired")
    def paired(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ, name="Bonded")
    def bonded(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ, name="Trusted")
    def trusted(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ, name="Blocked")
    def blocked(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ, name="LegacyPairing")
    def legacy_pairing(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ, name="RSSI")
    def rssi(self) -> DBusInt16:
        return self.rssi_dbm

    @dbus_property(access=PropertyAccess.READ, name="UUIDs")
    def uuids(self) -> _StrList:
        return list(self.device_uuids)

    @dbus_property(access=PropertyAccess.READ, name="ManufacturerData")
    def manufacturer_data(self) -> Annotated[dict[int, Variant], DBusSignature("a{qv}")]:
        return {}

    @dbus_property(access=PropertyAccess.READ, name="ServiceData")
    def service_data(self) -> DBusDict:
        return {}


class _SimulatorControl(ServiceInterface):
    """``org.biofeed.Simulator1``: lets another process drop the link (not part of BlueZ)."""

    def __init__(self, owner: FakeBluez) -> None:
        super().__init__("org.biofeed.Simulator1")
        self._owner = owner

    @dbus_method(name="DropLink")
    def drop_link(self) -> DBusBool:
        return self._owner.drop_now()


class _GattService(ServiceInterface):
    """``org.bluez.GattService1``: the biofeed service."""

    def __init__(self, device_path: str) -> None:
        super().__init__("org.bluez.GattService1")
        self._device_path = device_path

    @dbus_property(access=PropertyAccess.READ, name="UUID")
    def uuid(self) -> DBusStr:
        return SERVICE_UUID

    @dbus_property(access=PropertyAccess.READ, name="Device")
    def device(self) -> DBusObjectPath:
        return self._device_path

    @dbus_property(access=PropertyAccess.READ, name="Primary")
    def primary(self) -> DBusBool:
        return True

    @dbus_property(access=PropertyAccess.READ, name="Includes")
    def includes(self) -> _PathList:
        return []

    @dbus_property(access=PropertyAccess.READ, name="Handle")
    def handle(self) -> DBusUInt16:
        return 0x0010


class _GattCharacteristic(ServiceInterface):
    """``org.bluez.GattCharacteristic1``: the data (notify) or control (write) characteristic."""

    def __init__(
        self, owner: FakeBluez, uuid: str, service_path: str, flags: list[str], handle: int, mtu_bytes: int
    ) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self._owner = owner
        self._uuid = uuid
        self._service_path = service_path
        self._flags = flags
        self._handle = handle
        self._mtu_bytes = mtu_bytes
        self.value = b""
        self.notifying = False

    @dbus_method(name="ReadValue")
    def read_value(self, options: DBusDict) -> DBusBytes:
        raise DBusError("org.bluez.Error.NotPermitted", "Read not permitted")

    @dbus_method(name="WriteValue")
    def write_value(self, value: DBusBytes, options: DBusDict) -> _NoReply:
        if "write" not in self._flags:
            raise DBusError("org.bluez.Error.NotPermitted", "Write not permitted")
        if not self._owner.biofeed_device.connected:
            raise _not_connected()
        self._owner.on_control(bytes(value))

    @dbus_method(name="StartNotify")
    def start_notify(self) -> _NoReply:
        if "notify" not in self._flags:
            raise DBusError("org.bluez.Error.NotSupported", "Operation is not supported")
        if not self._owner.biofeed_device.connected:
            raise _not_connected()
        self.set_notifying(True)

    @dbus_method(name="StopNotify")
    def stop_notify(self) -> _NoReply:
        self.set_notifying(False)

    def set_notifying(self, on: bool) -> None:
        if on != self.notifying:
            self.notifying = on
            self.emit_properties_changed({"Notifying": on})

    def notify(self, value: bytes) -> None:
        self.value = value
        self.emit_properties_changed({"Value": value})

    @dbus_property(access=PropertyAccess.READ, name="UUID")
    def uuid(self) -> DBusStr:
        return self._uuid

    @dbus_property(access=PropertyAccess.READ, name="Service")
    def service(self) -> DBusObjectPath:
        return self._service_path

    @dbus_property(access=PropertyAccess.READ, name="Value")
    def value_property(self) -> DBusBytes:
        return self.value

    @dbus_property(access=PropertyAccess.READ, name="Notifying")
    def notifying_property(self) -> DBusBool:
        return self.notifying

    @dbus_property(access=PropertyAccess.READ, name="Flags")
    def flags(self) -> _StrList:
        return list(self._flags)

    @dbus_property(access=PropertyAccess.READ, name="MTU")
    def mtu(self) -> DBusUInt16:
        return self._mtu_bytes

    @dbus_property(access=PropertyAccess.READ, name="Handle")
    def handle(self) -> DBusUInt16:
        return self._handle


class FakeBluez:
    """A fake bluetoothd with one adapter and a simulated biofeed device, on a given bus.

    Parameters
    ----------
    device : SimulatedDevice
        What the biofeed device sends (consumed as it plays).
    bus_address : str
        D-Bus address to serve on (:attr:`PrivateBus.address`).
    name : str or None
        Advertised name; ``biofeed-<device id>`` when None.
    address : str
        Bluetooth address of the biofeed device.
    mtu_bytes : int
        ATT MTU of every connection; notifications carry at most ``mtu_bytes - 3`` bytes.
    speed : float
        Device seconds per host second (1 = real time).
    drop_every_s : float or None
        Drop the link at every multiple of this many device seconds when connected.
    keep_sent : bool
        Keep every byte notified, per connection, in :attr:`sent` (tests); off for long runs.
    bystander : tuple of (str, str) or None
        Name and address of a second device that advertises only the heart-rate service and
        offers no GATT: scans must pass it over.

    Attributes
    ----------
    bus_address : str
        The bus it serves on.
    n_connects, n_drops, n_notifications : int
        Connections made, links dropped by the fake, notifications sent.
    control_commands : list of ControlCommand
        CONTROL commands written by clients, in order.
    sent : list of bytearray
        With ``keep_sent``: per connection, the bytes notified.
    finished : threading.Event
        Set once the simulated device has sent its whole run.
    """

    def __init__(
        self,
        device: SimulatedDevice,
        *,
        bus_address: str,
        name: str | None = None,
        address: str = "B1:0F:EE:D0:00:01",
        mtu_bytes: int = DEFAULT_MTU_BYTES,
        speed: float = 1.0,
        drop_every_s: float | None = None,
        keep_sent: bool = False,
        bystander: tuple[str, str] | None = None,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        if drop_every_s is not None and not drop_every_s > 0:
            raise ValueError(f"drop_every_s must be positive seconds or None, got {drop_every_s}")
        self._device = device
        self.bus_address = bus_address
        self._speed = speed
        self._drop_every_s = drop_every_s
        self._keep_sent = keep_sent
        self._packer = NotificationPacker(mtu_bytes)
        self._rng = np.random.default_rng(device.seed)
        self.biofeed_device = _Device(
            self, name or f"biofeed-{device.device_id}", address, (SERVICE_UUID,), biofeed=True
        )
        self._devices = [self.biofeed_device]
        if bystander is not None:
            self._devices.append(_Device(self, bystander[0], bystander[1], (HEART_RATE_UUID,), biofeed=False))
        self._adapter = _Adapter(self)
        service_path = f"{self.biofeed_device.path}/service0010"
        self._service_path = service_path
        self._gatt_service = _GattService(self.biofeed_device.path)
        self._data = _GattCharacteristic(self, DATA_UUID, service_path, ["notify"], 0x0011, mtu_bytes)
        self._control = _GattCharacteristic(self, CONTROL_UUID, service_path, ["write"], 0x0014, mtu_bytes)
        self._splitter = FrameSplitter()
        self.n_connects = 0
        self.n_drops = 0
        self.n_notifications = 0
        self.control_commands: list[ControlCommand] = []
        self.sent: list[bytearray] = []
        self.finished = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def name(self) -> str:
        """Advertised name of the biofeed device."""
        return self.biofeed_device.device_name

    @property
    def address(self) -> str:
        """Bluetooth address of the biofeed device."""
        return self.biofeed_device.device_address

    # -- control from any thread ------------------------------------------------------------------

    def start(self, timeout_s: float = _START_TIMEOUT_S) -> None:
        """Serve in a daemon thread; returns once ``org.bluez`` is owned on the bus.

        Raises
        ------
        RuntimeError
            The service did not come up within ``timeout_s`` (or failed: the cause is chained).
        """
        self._thread = threading.Thread(target=self._run, name="biofeed-fake-bluez", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            self.stop()
            raise RuntimeError(f"the fake BlueZ did not start within {timeout_s:g} s")
        if self._startup_error is not None:
            raise RuntimeError(f"the fake BlueZ failed to start: {self._startup_error}") from self._startup_error

    def drop_link(self) -> None:
        """Drop the link now (as a radio losing the connection), from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.drop_now)

    def stop(self, timeout_s: float = _STOP_TIMEOUT_S) -> None:
        """Stop serving and leave the bus; safe from any thread, and twice."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    # -- on the service's loop ------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported by start() when it happens before ready
            self._startup_error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        bus = await MessageBus(bus_address=self.bus_address, bus_type=BusType.SYSTEM).connect()
        exports: list[tuple[str, ServiceInterface]] = [(ADAPTER_PATH, self._adapter)]
        exports += [(device.path, device) for device in self._devices]
        exports += [
            (self.biofeed_device.path, _SimulatorControl(self)),
            (self._service_path, self._gatt_service),
            (f"{self._service_path}/char0011", self._data),
            (f"{self._service_path}/char0014", self._control),
        ]
        try:
            for path, interface in exports:
                bus.export(path, interface)
            reply = await bus.request_name(_BLUEZ, NameFlag.DO_NOT_QUEUE)
            if reply is not RequestNameReply.PRIMARY_OWNER:
                raise RuntimeError(f"{_BLUEZ} is already served on {self.bus_address} ({reply.name})")
            self._ready.set()
            tasks = [asyncio.create_task(self._feed()), asyncio.create_task(self._advertise())]
            await self._stopping.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # Leave as bluetoothd would: objects removed, then the name released, so a fake
            # started next on the same bus finds it free and clients drop their cached objects.
            for path, _ in reversed(exports):
                bus.unexport(path)
            await bus.release_name(_BLUEZ)
        finally:
            bus.disconnect()

    async def _advertise(self) -> None:
        while True:
            await asyncio.sleep(_ADVERTISING_INTERVAL_S / self._speed)
            if not self._adapter.discovering:
                continue
            wanted = self._adapter.filter_uuids
            for device in self._devices:
                if not device.connected and (not wanted or wanted & set(device.device_uuids)):
                    device.advertise(_RSSI_DBM + int(self._rng.integers(-6, 7)))

    async def _feed(self) -> None:
        loop = asyncio.get_running_loop()
        start_s = loop.time()
        device = self._device
        next_drop_s = self._drop_every_s
        step_index = 0
        while not device.finished:
            device_time_s = step_index * _STEP_S
            delay_s = start_s + device.host_time_of(device_time_s) / self._speed - loop.time()
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            streaming = self._data.notifying
            for emitted in device.timed_frames_until(device_time_s):
                if streaming:  # otherwise the device sends into the void: lost
                    self._notify_all(self._packer.add(emitted.data, emitted.device_time_s))
            if streaming:
                self._notify_all(self._packer.due(device_time_s))
            if next_drop_s is not None and device_time_s >= next_drop_s - 1e-9:
                self.drop_now()
                next_drop_s += self._drop_every_s or 0.0
            step_index += 1
        if self._data.notifying:
            self._notify_all(self._packer.flush())
        self.finished.set()

    def _notify_all(self, notifications: list[bytes]) -> None:
        for value in notifications:
            self._data.notify(value)
            self.n_notifications += 1
            if self._keep_sent:
                self.sent[-1] += value

    def drop_now(self) -> bool:
        """Drop the link of the biofeed device if it is connected (on the service's loop)."""
        if not self.biofeed_device.connected:
            return False
        self.disconnect(self.biofeed_device, dropped=True)
        return True

    def connect(self, device: _Device) -> None:
        """Connect a device (``Device1.Connect``)."""
        if device.connected:
            return
        device.set_connected(True)
        if device.biofeed:
            self.n_connects += 1
            self._packer.clear()
            if self._keep_sent:
                self.sent.append(bytearray())

    def disconnect(self, device: _Device, *, dropped: bool) -> None:
        """End a device's connection: by a client (``Device1.Disconnect``) or a lost link."""
        if not device.connected:
            return
        if device.biofeed:
            self._data.set_notifying(False)
            self._packer.clear()
            self.n_drops += dropped
        device.set_connected(False)

    def on_control(self, value: bytes) -> None:
        """Record the CONTROL commands in bytes a client wrote to the control characteristic."""
        for frame in self._splitter.feed(value):
            with contextlib.suppress(CorruptPacketError, ValueError):
                packet = decode_frame(frame)
                if packet.type == PacketType.CONTROL:
                    self.control_commands.append(ControlPayload.from_payload(packet.payload).command)


def serve_bluez(
    device: SimulatedDevice,
    *,
    drop_every_s: float | None = None,
    out: TextIO,
    wait: Callable[[float], object] | None = None,
) -> int:
    """``biofeed sim --bluez``: serve the device over a private bus until its run ends.

    Starts a :class:`PrivateBus` and a :class:`FakeBluez` on it, prints ``bus: <address>`` and
    ``device: <name> <address>`` (flushed), streams in real time, then stops both.

    Parameters
    ----------
    device : SimulatedDevice
        The device to serve.
    drop_every_s : float or None
        Drop the link every this many device seconds.
    out : text stream
        Where the two lines go.
    wait : callable taking seconds, or None
        Sleeps between checks for the end of the run; a true return value stops serving
        (``threading.Event.wait`` makes a stop request interrupt it). None: ``time.sleep``.

    Returns
    -------
    int
        0, the exit code.
    """
    pause = threading.Event().wait if wait is None else wait
    with PrivateBus() as bus:
        fake = FakeBluez(device, bus_address=bus.address, drop_every_s=drop_every_s)
        fake.start()
        try:
            print(f"bus: {bus.address}", file=out, flush=True)
            print(f"device: {fake.name} {fake.address}", file=out, flush=True)
            while not fake.finished.is_set():
                if pause(0.2):
                    break
        finally:
            fake.stop()
    return 0
