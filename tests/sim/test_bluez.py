"""The fake org.bluez and its private bus, seen by a plain dbus-fast client (no bleak)."""

from __future__ import annotations

import asyncio
import io
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from biofeed.protocol.packets import ControlCommand, ControlPayload, Packet, PacketType, encode_frame
from biofeed.sim.bluez import ADAPTER_PATH, HEART_RATE_UUID, FakeBluez, serve_bluez
from biofeed.sim.bluez_bus import PrivateBus
from biofeed.sim.device import SimulatedDevice
from biofeed.sources.ble import CONTROL_UUID, DATA_UUID, SERVICE_UUID

pytestmark = [
    pytest.mark.skipif(shutil.which("dbus-daemon") is None, reason="needs dbus-daemon (apt install dbus-daemon)"),
    pytest.mark.timeout(60),
]

BYSTANDER = ("chest-strap", "C0:FF:EE:00:00:02")
WAIT_S = 10.0
_PROPERTIES_CHANGED = (
    "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',path_namespace='/org/bluez'"
)


@pytest.fixture(scope="module")
def bus() -> Iterator[PrivateBus]:
    with PrivateBus() as private_bus:
        yield private_bus


@pytest.fixture
def fake(bus: PrivateBus) -> Iterator[FakeBluez]:
    service = FakeBluez(
        SimulatedDevice("rest", seed=2, duration_s=60),
        bus_address=bus.address,
        speed=8.0,
        keep_sent=True,
        bystander=BYSTANDER,
    )
    service.start()
    yield service
    service.stop()


class Client:
    """A D-Bus client of the fake that records PropertiesChanged signals."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.changes: list[tuple[str, str, dict[str, Any]]] = []  # path, interface, changed
        self._waiters: list[tuple[Callable[[], bool], asyncio.Event]] = []
        bus.add_message_handler(self._on_message)

    @classmethod
    async def connect(cls, address: str) -> Client:
        client = cls(await MessageBus(bus_address=address).connect())
        await client.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", "s",
                          [_PROPERTIES_CHANGED])  # fmt: skip
        return client

    def _on_message(self, message: Message) -> None:
        if message.message_type == MessageType.SIGNAL and message.member == "PropertiesChanged":
            interface, changed, _ = message.body
            self.changes.append((str(message.path), interface, {k: v.value for k, v in changed.items()}))
            for condition, event in self._waiters:
                if condition():
                    event.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        event = asyncio.Event()
        if not condition():
            self._waiters.append((condition, event))
            await asyncio.wait_for(event.wait(), WAIT_S)

    async def call(
        self, destination: str, path: str, interface: str, member: str, signature: str = "", body: Any = ()
    ) -> Message:
        reply = await self.bus.call(
            Message(
                destination=destination,
                path=path,
                interface=interface,
                member=member,
                signature=signature,
                body=list(body),
            )
        )
        assert reply is not None
        return reply

    async def bluez(self, path: str, interface: str, member: str, signature: str = "", body: Any = ()) -> Message:
        return await self.call("org.bluez", path, interface, member, signature, body)

    def values(self, path: str, name: str) -> list[Any]:
        return [changed[name] for p, _, changed in self.changes if p == path and name in changed]


def _device_path(address: str) -> str:
    return f"{ADAPTER_PATH}/dev_{address.replace(':', '_')}"


def test_the_fake_presents_an_adapter_the_devices_and_the_gatt_layout_of_protocol_6_2(fake: FakeBluez) -> None:
    async def scenario() -> dict[str, dict[str, dict[str, Any]]]:
        client = await Client.connect(fake.bus_address)
        reply = await client.bluez("/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        client.bus.disconnect()
        return {
            path: {iface: {k: v.value for k, v in props.items()} for iface, props in interfaces.items()}
            for path, interfaces in reply.body[0].items()
        }

    objects = asyncio.run(scenario())
    adapter = objects[ADAPTER_PATH]["org.bluez.Adapter1"]
    assert adapter["Powered"] is True and "central" in adapter["Roles"]
    device = objects[_device_path(fake.address)]["org.bluez.Device1"]
    assert (device["Name"], device["Address"], device["UUIDs"]) == (fake.name, fake.address, [SERVICE_UUID])
    assert (device["Connected"], device["ServicesResolved"], device["Adapter"]) == (False, False, ADAPTER_PATH)
    bystander = objects[_device_path(BYSTANDER[1])]["org.bluez.Device1"]
    assert bystander["UUIDs"] == [HEART_RATE_UUID]
    service_path = f"{_device_path(fake.address)}/service0010"
    assert objects[service_path]["org.bluez.GattService1"]["UUID"] == SERVICE_UUID
    data = objects[f"{service_path}/char0011"]["org.bluez.GattCharacteristic1"]
    control = objects[f"{service_path}/char0014"]["org.bluez.GattCharacteristic1"]
    assert (data["UUID"], data["Flags"], data["MTU"], data["Service"]) == (DATA_UUID, ["notify"], 247, service_path)
    assert "NotifyAcquired" not in data  # so bleak subscribes with StartNotify
    assert (control["UUID"], control["Flags"]) == (CONTROL_UUID, ["write"])


def test_discovery_honours_the_uuid_filter_and_connected_devices_stop_advertising(fake: FakeBluez) -> None:
    biofeed_path, bystander_path = _device_path(fake.address), _device_path(BYSTANDER[1])

    async def scenario() -> tuple[int, int, int]:
        client = await Client.connect(fake.bus_address)
        adapter = "org.bluez.Adapter1"
        heart_rate = {"UUIDs": Variant("as", [HEART_RATE_UUID]), "Transport": Variant("s", "le")}
        await client.bluez(ADAPTER_PATH, adapter, "SetDiscoveryFilter", "a{sv}", [heart_rate])
        await client.bluez(ADAPTER_PATH, adapter, "StartDiscovery")
        await client.until(lambda: len(client.values(bystander_path, "RSSI")) >= 3)
        filtered = len(client.values(biofeed_path, "RSSI"))
        await client.bluez(ADAPTER_PATH, adapter, "SetDiscoveryFilter", "a{sv}", [{}])
        await client.until(lambda: len(client.values(biofeed_path, "RSSI")) >= 3)
        await client.bluez(biofeed_path, "org.bluez.Device1", "Connect")
        seen_when_connected = len(client.values(biofeed_path, "RSSI"))
        n_bystander = len(client.values(bystander_path, "RSSI"))
        await client.until(lambda: len(client.values(bystander_path, "RSSI")) >= n_bystander + 3)
        still = len(client.values(biofeed_path, "RSSI")) - seen_when_connected
        await client.bluez(ADAPTER_PATH, adapter, "StopDiscovery")
        await client.bluez(biofeed_path, "org.bluez.Device1", "Disconnect")
        client.bus.disconnect()
        return filtered, seen_when_connected, still

    filtered, seen, still = asyncio.run(scenario())
    assert filtered == 0
    assert seen >= 3
    assert still == 0


def test_connect_notify_write_and_drop_on_command(fake: FakeBluez) -> None:
    device_path = _device_path(fake.address)
    data_path = f"{device_path}/service0010/char0011"
    control_path = f"{device_path}/service0010/char0014"
    request = b"\x00" + encode_frame(
        Packet(PacketType.CONTROL, 0, 0, 0, ControlPayload(ControlCommand.REQUEST_INFO).to_payload())
    )

    async def scenario() -> tuple[list[bytes], list[Any], bool, str | None]:
        client = await Client.connect(fake.bus_address)
        characteristic = "org.bluez.GattCharacteristic1"
        refused = await client.bluez(data_path, characteristic, "StartNotify")  # not connected yet
        await client.bluez(device_path, "org.bluez.Device1", "Connect")
        await client.bluez(data_path, characteristic, "StartNotify")
        await client.bluez(control_path, characteristic, "WriteValue", "aya{sv}", [request, {}])
        await client.until(lambda: len(client.values(data_path, "Value")) >= 50)
        dropped = await client.call("org.bluez", device_path, "org.biofeed.Simulator1", "DropLink")
        values = client.values(data_path, "Value")
        connected = client.values(device_path, "Connected")
        client.bus.disconnect()
        return values, connected, dropped.body[0], refused.error_name

    values, connected, dropped, refused = asyncio.run(scenario())
    assert refused == "org.bluez.Error.NotConnected"
    assert dropped is True
    assert connected == [True, False]
    assert fake.n_drops == 1 and fake.n_connects == 1
    assert b"".join(values) == bytes(fake.sent[0])  # every notification of the connection, in order
    assert all(0 < len(v) <= 244 for v in values)
    assert fake.control_commands == [ControlCommand.REQUEST_INFO]


def test_a_second_fake_on_the_same_bus_is_refused(fake: FakeBluez, bus: PrivateBus) -> None:
    second = FakeBluez(SimulatedDevice("rest", duration_s=5), bus_address=bus.address)
    with pytest.raises(RuntimeError, match="already served"):
        second.start()
    second.stop()


def test_bad_options_are_refused(bus: PrivateBus) -> None:
    device = SimulatedDevice("rest", duration_s=5)
    with pytest.raises(ValueError, match="speed"):
        FakeBluez(device, bus_address=bus.address, speed=0.0)
    with pytest.raises(ValueError, match="drop_every_s"):
        FakeBluez(device, bus_address=bus.address, drop_every_s=-1.0)


class _Lines(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.two_lines = threading.Event()

    def write(self, text: str) -> int:
        n = super().write(text)
        if self.getvalue().count("\n") >= 2:
            self.two_lines.set()
        return n


def test_serve_bluez_prints_the_bus_and_the_device_then_cleans_up() -> None:
    out = _Lines()
    stop = threading.Event()
    outcome: list[int] = []
    server = threading.Thread(
        target=lambda: outcome.append(serve_bluez(SimulatedDevice("rest", duration_s=60), out=out, wait=stop.wait))
    )
    server.start()
    try:
        assert out.two_lines.wait(WAIT_S)
        bus_line, device_line = out.getvalue().splitlines()
        address = bus_line.removeprefix("bus: ")
        assert bus_line.startswith("bus: unix:path=")
        _, name, device_address = device_line.split(" ")
        assert device_line.startswith("device: ") and name == "biofeed-sim-0"

        async def names() -> dict[str, Any]:
            client = await Client.connect(address)
            reply = await client.bluez(_device_path(device_address), "org.freedesktop.DBus.Properties", "GetAll",
                                       "s", ["org.bluez.Device1"])  # fmt: skip
            client.bus.disconnect()
            return {k: v.value for k, v in reply.body[0].items()}

        assert asyncio.run(names())["Name"] == name
    finally:
        stop.set()
        server.join(WAIT_S)
    assert outcome == [0]
    socket = Path(address.removeprefix("unix:path=").split(",")[0])
    assert not socket.parent.exists()  # the private bus is gone with its folder


def test_serve_bluez_returns_when_the_run_has_ended() -> None:
    assert serve_bluez(SimulatedDevice("rest", duration_s=0.1), out=io.StringIO()) == 0


def test_a_private_bus_without_dbus_daemon_is_a_clear_error() -> None:
    with pytest.raises(FileNotFoundError, match="apt install dbus-daemon"):
        PrivateBus(daemon="no-such-dbus-daemon")
