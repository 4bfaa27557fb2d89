"""BleSource through a scripted fake BleLink: bytes, link events, reconnects, loss accounting."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from biofeed.ble_scan import ble_scan_lines
from biofeed.blocks import Block
from biofeed.errors import DeviceNotFoundError, SourceError, SourceLost
from biofeed.protocol.decoder import Decoder, FrameSplitter
from biofeed.protocol.packets import ControlCommand, ControlPayload, PacketType, decode_frame
from biofeed.record.reader import open_recording
from biofeed.record.summary import summarize_recording
from biofeed.record.writer import RecordingWriter
from biofeed.runner import Acquisition, Item
from biofeed.sim.bluez_packing import NotificationPacker
from biofeed.sim.device import SimulatedDevice
from biofeed.sources.backoff import FIRST_BACKOFF_S, backoff_delay_s
from biofeed.sources.base import LinkState, SourceUrl, TimedChunk
from biofeed.sources.ble import (
    CONTROL_UUID,
    DATA_UUID,
    SERVICE_UUID,
    BleLink,
    BleSource,
    ScannedDevice,
    is_device_address,
)

NAME = "biofeed-sim-1"
ADDRESS = "B1:0F:EE:D0:00:01"
BIOFEED = ScannedDevice(ADDRESS, NAME, -60, (SERVICE_UUID,))
NAMESAKE = ScannedDevice("C0:FF:EE:00:00:02", NAME, -40, ("0000180d-0000-1000-8000-00805f9b34fb",))

# What a connection attempt does: connect and stream, or fail at one of its steps.
OK, ABSENT, CONNECT_FAILS, SUBSCRIBE_FAILS = "ok", "absent", "connect fails", "subscribe fails"


@dataclass
class Connection:
    """Notifications one connection delivers, then the link drops (unless ``drops`` is False)."""

    notifications: list[bytes]
    drops: bool = True


@dataclass
class ScriptedLink:
    """A BleLink that plays connections; attempts go by ``outcomes``, then the device is absent."""

    devices: list[ScannedDevice]
    connections: list[Connection]
    outcomes: list[str]
    write_fails: bool = False
    calls: list[str] = field(default_factory=list)
    writes: list[tuple[str, bytes]] = field(default_factory=list)
    delivered: list[bytes] = field(default_factory=list)
    _outcome: str = ABSENT
    _next_connection: int = 0
    _on_disconnect: Callable[[], None] | None = None
    _delivery: asyncio.Task[None] | None = None

    async def scan(self, service_uuid: str, timeout_s: float) -> list[ScannedDevice]:
        self.calls.append("scan")
        return [d for d in self.devices if service_uuid in d.service_uuids]

    async def find(self, match: Callable[[ScannedDevice], bool], timeout_s: float) -> ScannedDevice | None:
        self.calls.append("find")
        self._outcome = self.outcomes.pop(0) if self.outcomes else ABSENT
        if self._outcome == ABSENT:
            return None
        return next((d for d in self.devices if match(d)), None)

    async def connect(self, address: str, *, timeout_s: float, on_disconnect: Callable[[], None]) -> int:
        self.calls.append("connect")
        if self._outcome == CONNECT_FAILS:
            raise SourceError(f"{address}: connecting failed: le-connection-abort-by-local")
        self._on_disconnect = on_disconnect
        return 247

    async def subscribe(self, char_uuid: str, on_data: Callable[[bytes], None]) -> None:
        self.calls.append("subscribe")
        assert char_uuid == DATA_UUID
        if self._outcome == SUBSCRIBE_FAILS:
            raise SourceError("subscribing failed: Not connected")
        connection = self.connections[self._next_connection]
        self._next_connection += 1
        self._delivery = asyncio.create_task(self._deliver(connection, on_data))

    async def _deliver(self, connection: Connection, on_data: Callable[[bytes], None]) -> None:
        for i, notification in enumerate(connection.notifications):
            self.delivered.append(notification)
            on_data(notification)
            if i % 8 == 7:
                await asyncio.sleep(0)  # let the source's other work interleave
        if connection.drops and self._on_disconnect is not None:
            self._on_disconnect()

    async def write(self, char_uuid: str, data: bytes) -> None:
        self.calls.append("write")
        if self.write_fails:
            raise SourceError("writing failed: Not permitted")
        self.writes.append((char_uuid, data))

    async def disconnect(self) -> None:
        self.calls.append("disconnect")
        if self._delivery is not None:
            self._delivery.cancel()


def _link(connections: list[Connection], outcomes: list[str], *, write_fails: bool = False) -> BleLink:
    link: BleLink = ScriptedLink([NAMESAKE, BIOFEED], connections, outcomes, write_fails=write_fails)
    return link


def _scripted(link: BleLink) -> ScriptedLink:
    assert isinstance(link, ScriptedLink)
    return link


# --- what a radio does to notifications ----------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """A seeded radio session: per connection the notifications delivered; attempts in between."""

    device_bytes: bytes
    connections: list[Connection]
    outcomes: list[str]


def _radio_script(seed: int, *, n_drops: int, max_failures: int) -> Script:
    """Device notifications re-cut, lost, swapped, and cut into connections at random moments."""
    rng = np.random.default_rng(seed)
    device = SimulatedDevice("rest", seed=seed, duration_s=4.0)
    packer = NotificationPacker(int(rng.integers(23, 518)))
    packed: list[bytes] = []
    device_bytes = bytearray()
    for emitted in device.timed_frames_until(device.duration_s):
        device_bytes += emitted.data
        packed += packer.add(emitted.data, emitted.device_time_s)
        packed += packer.due(emitted.device_time_s)
    packed += packer.flush()
    # Boundaries mean nothing: merge neighbours and split at any byte.
    recut: list[bytes] = []
    for notification in packed:
        if recut and rng.random() < 0.2:
            recut[-1] += notification
        elif len(notification) > 1 and rng.random() < 0.2:
            at = int(rng.integers(1, len(notification)))
            recut += [notification[:at], notification[at:]]
        else:
            recut.append(notification)
    # Lost and reordered notifications.
    kept = [n for n in recut if rng.random() >= 0.02]
    for i in range(len(kept) - 1):
        if rng.random() < 0.02:
            kept[i], kept[i + 1] = kept[i + 1], kept[i]
    # Disconnects at random moments; the device sends into the void while the link is down.
    cuts = sorted(rng.choice(np.arange(20, len(kept) - 40), size=n_drops, replace=False).tolist())
    connections, start = [], 0
    for cut in [*cuts, len(kept)]:
        connections.append(Connection(kept[start:cut]))
        start = cut + int(rng.integers(1, 30))
    outcomes = [OK]
    failures = (ABSENT, CONNECT_FAILS, SUBSCRIBE_FAILS)
    for _ in cuts:
        outcomes += [failures[int(rng.integers(0, 3))] for _ in range(int(rng.integers(0, max_failures + 1)))]
        outcomes.append(OK)
    return Script(bytes(device_bytes), connections, outcomes)


def _expected_stream(connections: list[Connection]) -> bytes:
    """What chunks() yields: each connection's bytes, and one 0x00 where each link dropped."""
    return b"".join(b"".join(c.notifications) + (b"\x00" if c.drops else b"") for c in connections)


SEEDS = [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("seed", SEEDS)
def test_every_delivered_byte_reaches_chunks_in_order_with_link_events_between_connections(seed: int) -> None:
    script = _radio_script(seed, n_drops=3, max_failures=2)
    link = _link(script.connections, list(script.outcomes))
    source = BleSource(NAME, link=link, max_reconnects=3, max_backoff_s=0.0)
    received = bytearray()
    events: list[tuple[LinkState, int, int]] = []  # state, attempt, bytes received before it
    times: list[float] = []
    with pytest.raises(SourceLost, match="3 reconnect attempts failed"):
        for chunk in source.chunks():
            if chunk.link_event is not None:
                assert chunk.data == b""
                events.append((chunk.link_event.state, chunk.link_event.attempt, len(received)))
            received += chunk.data
            if chunk.data or chunk.link_event is not None:  # idle chunks only keep the loop's time
                times.append(chunk.received_at)
    assert times == sorted(times)  # each stamped on arrival, in arrival order
    delivered = _scripted(link).delivered
    assert bytes(received) == _expected_stream(script.connections)
    assert b"".join(delivered) == b"".join(b"".join(c.notifications) for c in script.connections)
    # CONNECTED opens each connection, LOST closes it after its last byte, attempts in between.
    boundaries = np.cumsum([len(b"".join(c.notifications)) + 1 for c in script.connections]).tolist()
    states = [state for state, _, _ in events]
    assert states[0] is LinkState.CONNECTED
    lost_at = [n for state, _, n in events if state is LinkState.LOST]
    assert lost_at == [b - 1 for b in boundaries]
    assert states.count(LinkState.CONNECTED) == len(script.connections)
    n_attempts = sum(1 for state in states if state is LinkState.RECONNECTING)
    n_failed = sum(1 for o in script.outcomes if o != OK)
    assert n_attempts == n_failed + (len(script.connections) - 1) + 3  # the last loss: 3 failed attempts
    for (state, attempt, _), (next_state, next_attempt, _) in itertools.pairwise(events):
        if next_state is LinkState.RECONNECTING:
            assert next_attempt == (attempt + 1 if state is LinkState.RECONNECTING else 1)
        if next_state is LinkState.CONNECTED and state is LinkState.RECONNECTING:
            assert next_attempt == attempt


class _Collect:
    def __init__(self) -> None:
        self.items: list[Item] = []

    def write(self, item: Item) -> None:
        self.items.append(item)

    def close(self) -> None:
        pass


def _oracle(stream: bytes, device: SimulatedDevice) -> tuple[list[tuple[str, int]], int]:
    """Sample blocks that arrived whole, in time and after an INFO; and how many arrived late."""
    formats = {s.stream_id: s for s in device.info.streams}
    ends: dict[int, int] = {}
    described = False
    kept, n_late = [], 0
    for frame in FrameSplitter().feed(stream):
        try:
            packet = decode_frame(frame)
        except Exception:  # damaged: the decoder counts it
            continue
        described = described or packet.type == PacketType.INFO
        if packet.type not in (PacketType.EMG, PacketType.IMU) or not described:
            continue
        stream_format = formats[packet.stream_id]
        if packet.first_sample_index < ends.get(packet.stream_id, -1):
            n_late += 1
            continue
        kept.append((stream_format.name, packet.first_sample_index))
        ends[packet.stream_id] = packet.first_sample_index + len(packet.payload) // stream_format.bytes_per_sample_set
    return kept, n_late


@pytest.mark.parametrize("seed", SEEDS)
def test_a_recording_keeps_every_block_that_arrived_and_accounts_every_loss(seed: int, tmp_path: Path) -> None:
    script = _radio_script(seed, n_drops=3, max_failures=1)
    link = _link(script.connections, list(script.outcomes))
    source = BleSource(NAME, link=link, max_reconnects=2, max_backoff_s=0.0)
    sink = _Collect()
    with RecordingWriter(tmp_path / "rec", source_url=source.url) as recorder:
        result = Acquisition(source, recorder=recorder, sinks=[sink]).run()
        recorder.close()
    assert isinstance(result.error, SourceLost)
    assert result.reconnects == len(script.connections) - 1

    reference = {}
    for item in Decoder().feed(script.device_bytes):
        if isinstance(item, Block):
            reference[(item.info.name, item.first_index)] = item.data
    blocks = [item for item in sink.items if isinstance(item, Block)]
    for block in blocks:  # nothing damaged slipped through
        np.testing.assert_array_equal(block.data, reference[(block.info.name, block.first_index)])
    device = SimulatedDevice("rest", seed=seed, duration_s=4.0)
    kept, n_late = _oracle(_expected_stream(script.connections), device)
    assert sorted((b.info.name, b.first_index) for b in blocks) == sorted(kept)
    assert result.stats.duplicates == n_late
    for stats in result.stats.streams.values():
        assert stats.first_index is not None and stats.end_index is not None
        assert stats.n_samples + stats.samples_lost == stats.end_index - stats.first_index
    assert result.stats.streams["emg"].samples_lost > 0

    summary = summarize_recording(tmp_path / "rec")
    assert summary.reconnects == result.reconnects
    events = list(open_recording(tmp_path / "rec").events())
    gaps = [e for e in events if e["type"] == "gap"]
    assert len(gaps) == sum(s.gaps for s in result.stats.streams.values())
    links = [e["state"] for e in events if e["type"] == "link"]
    assert links.count("lost") == len(script.connections)
    assert links.count("connected") == len(script.connections)


# --- opening -------------------------------------------------------------------------------------


def _request_info(data: bytes) -> ControlCommand:
    frames = [f for f in data.split(b"\x00") if f]
    assert len(frames) == 1 and data.startswith(b"\x00")
    packet = decode_frame(frames[0])
    assert packet.type == PacketType.CONTROL
    return ControlPayload.from_payload(packet.payload).command


def test_opening_finds_connects_subscribes_then_asks_for_info() -> None:
    link = _link([Connection([], drops=False)], [OK])
    source = BleSource(NAME, link=link)
    source.close()
    scripted = _scripted(link)
    assert scripted.calls[:4] == ["find", "connect", "subscribe", "write"]
    assert scripted.calls[-1] == "disconnect"
    ((uuid, data),) = scripted.writes
    assert uuid == CONTROL_UUID
    assert _request_info(data) is ControlCommand.REQUEST_INFO
    assert source.mtu_bytes == 247


def test_the_first_chunk_reports_the_connection_then_an_idle_source_keeps_time() -> None:
    source = BleSource(NAME, link=_link([Connection([], drops=False)], [OK]))
    chunks = source.chunks()
    first, second = next(chunks), next(chunks)
    source.close()
    assert first.link_event is not None and first.link_event.state is LinkState.CONNECTED
    assert (
        NAME in first.link_event.detail and ADDRESS in first.link_event.detail and "MTU 247" in first.link_event.detail
    )
    assert second == TimedChunk(b"", second.received_at)
    assert list(chunks) == []  # closed: the iteration ends


def test_a_failed_info_request_does_not_fail_the_connection() -> None:
    link = _link([Connection([b"abc\x00"], drops=False)], [OK], write_fails=True)
    source = BleSource(NAME, link=link)
    data = b""
    for chunk in source.chunks():
        data += chunk.data
        if data:
            source.close()
    assert data == b"abc\x00"


def test_a_name_matches_only_a_device_advertising_the_biofeed_service() -> None:
    link = _link([], [OK])
    _scripted(link).devices = [NAMESAKE]
    with pytest.raises(DeviceNotFoundError, match="biofeed scan"):
        BleSource(NAME, link=link, scan_timeout_s=0.5)
    assert "connect" not in _scripted(link).calls


def test_an_address_matches_exactly_whatever_the_device_advertises() -> None:
    link = _link([Connection([], drops=False)], [OK])
    _scripted(link).devices = [NAMESAKE]
    source = BleSource(NAMESAKE.address.lower(), link=link)
    source.close()
    assert "subscribe" in _scripted(link).calls


def test_nothing_in_range_is_device_not_found() -> None:
    with pytest.raises(DeviceNotFoundError) as caught:
        BleSource(ADDRESS, link=_link([], [ABSENT]), scan_timeout_s=2.0)
    assert caught.value.identifier == ADDRESS
    assert "2 s" in caught.value.reason


def test_a_failed_first_connection_raises_and_releases_the_link() -> None:
    link = _link([], [SUBSCRIBE_FAILS])
    with pytest.raises(SourceError, match="subscribing failed"):
        BleSource(NAME, link=link)
    assert _scripted(link).calls == ["find", "connect", "subscribe", "disconnect"]


# --- reconnecting --------------------------------------------------------------------------------


def test_reconnect_zero_gives_up_right_after_the_loss() -> None:
    source = BleSource(NAME, link=_link([Connection([b"ab\x00"])], [OK]), max_reconnects=0)
    states = []
    with pytest.raises(SourceLost, match="reconnect=0"):
        for chunk in source.chunks():
            if chunk.link_event is not None:
                states.append(chunk.link_event.state)
    assert states == [LinkState.CONNECTED, LinkState.LOST]


def test_close_during_the_backoff_ends_chunks_and_disconnects() -> None:
    link = _link([Connection([b"ab\x00"])], [OK])
    source = BleSource(NAME, link=link, max_backoff_s=3600.0)
    states = []
    for chunk in source.chunks():
        if chunk.link_event is not None:
            states.append(chunk.link_event.state)
            if chunk.link_event.state is LinkState.RECONNECTING:
                source.close()  # returns once the source let go of the link
    assert states == [LinkState.CONNECTED, LinkState.LOST, LinkState.RECONNECTING]
    calls = _scripted(link).calls
    assert calls.count("find") == 1  # the attempt never ran
    assert calls[-1] == "disconnect"


def test_a_failure_that_is_not_the_radios_reaches_the_consumer() -> None:
    class BrokenOnReconnect(ScriptedLink):
        async def find(self, match: Callable[[ScannedDevice], bool], timeout_s: float) -> ScannedDevice | None:
            if "find" in self.calls:
                raise RuntimeError("a bug in the link")
            return await super().find(match, timeout_s)

    link: BleLink = BrokenOnReconnect([BIOFEED], [Connection([b"ab\x00"])], [OK])
    source = BleSource(NAME, link=link, max_backoff_s=0.0)
    with pytest.raises(RuntimeError, match="a bug in the link"):
        list(source.chunks())


def test_backoff_doubles_from_a_quarter_second_up_to_its_bound() -> None:
    assert [backoff_delay_s(a, 5.0) for a in range(1, 8)] == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert FIRST_BACKOFF_S == 0.25
    assert backoff_delay_s(10_000, 5.0) == 5.0
    assert backoff_delay_s(3, 0.0) == 0.0
    with pytest.raises(ValueError, match="from 1"):
        backoff_delay_s(0, 5.0)


# --- URLs ----------------------------------------------------------------------------------------


def test_from_url_reads_the_parameters() -> None:
    link = _link([Connection([], drops=False)], [OK])
    source = BleSource.from_url(SourceUrl.parse(f"ble://{ADDRESS}?timeout=3&reconnect=4&backoff=0.5"), link=link)
    source.close()
    assert source.url == f"ble://{ADDRESS}?timeout=3&reconnect=4&backoff=0.5"
    assert source.target == ADDRESS


def test_a_name_with_spaces_survives_the_url() -> None:
    device = ScannedDevice(ADDRESS, "left back", -50, (SERVICE_UUID,))
    link: BleLink = ScriptedLink([device], [Connection([], drops=False)], [OK])
    source = BleSource.from_url(SourceUrl.parse("ble://left%20back"), link=link)
    source.close()
    assert source.target == "left back"
    assert source.url.startswith("ble://left%20back?")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ble://dev?speed=2", "allowed: backoff, reconnect, timeout"),
        ("ble://?timeout=1", "needs a device address or name"),
        ("ble://dev?timeout=0", "positive"),
        ("ble://dev?timeout=abc", "not a number"),
        ("ble://dev?reconnect=1.5", "whole number"),
        ("ble://dev?reconnect=-1", "at least 0"),
        ("ble://dev?backoff=-1", "at least 0"),
        ("ble://dev?backoff=inf", "finite"),
    ],
)
def test_bad_urls_are_refused_before_any_radio_work(url: str, message: str) -> None:
    link = _link([], [])
    with pytest.raises(ValueError, match=message):
        BleSource.from_url(SourceUrl.parse(url), link=link)
    assert _scripted(link).calls == []


def test_device_addresses_are_macs_or_macos_uuids() -> None:
    assert is_device_address("B1:0F:EE:D0:00:01")
    assert is_device_address("b1:0f:ee:d0:00:01")
    assert is_device_address("4A5B2C3D-1E2F-4A5B-8C9D-0E1F2A3B4C5D")
    assert not is_device_address("biofeed-01")
    assert not is_device_address("B1:0F:EE:D0:00")


# --- scanning ------------------------------------------------------------------------------------


def test_scan_lines_list_biofeed_devices_strongest_first() -> None:
    far = ScannedDevice("B1:0F:EE:D0:00:09", None, -85, (SERVICE_UUID,))
    silent = ScannedDevice("B1:0F:EE:D0:00:0A", "quiet", None, (SERVICE_UUID,))
    link: BleLink = ScriptedLink([far, NAMESAKE, BIOFEED, silent], [], [])
    assert ble_scan_lines(1.0, link=link) == [
        f"ble://{ADDRESS}\t{NAME}\tRSSI -60 dBm",
        "ble://B1:0F:EE:D0:00:09\t(no name)\tRSSI -85 dBm",
        "ble://B1:0F:EE:D0:00:0A\tquiet\tRSSI ? dBm",
    ]


def test_scan_lines_say_when_nothing_was_found_or_bluetooth_is_unusable() -> None:
    assert ble_scan_lines(1.5, link=ScriptedLink([NAMESAKE], [], [])) == ["no biofeed BLE devices found in 1.5 s"]

    class NoAdapter(ScriptedLink):
        async def scan(self, service_uuid: str, timeout_s: float) -> list[ScannedDevice]:
            raise SourceError("Bluetooth scan failed: no Bluetooth adapter found")

    assert ble_scan_lines(1.0, link=NoAdapter([], [], [])) == [
        "no BLE scan: Bluetooth scan failed: no Bluetooth adapter found"
    ]
    with pytest.raises(ValueError, match="positive"):
        ble_scan_lines(0.0, link=NoAdapter([], [], []))
