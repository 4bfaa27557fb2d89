"""BleSource over unmodified bleak, against the fake org.bluez on a private dbus-daemon.

No radio is involved: bleak's BlueZ backend talks D-Bus to biofeed.sim.bluez.FakeBluez, which
plays the simulated device 4x faster than real time and drops the link on schedule (the slow
tests: a real-time minute at other MTUs).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from biofeed.ble_scan import ble_scan_lines
from biofeed.blocks import Block
from biofeed.cli import main
from biofeed.errors import DeviceNotFoundError, SourceError
from biofeed.protocol.decoder import Decoder
from biofeed.record.reader import open_recording
from biofeed.record.writer import RecordingWriter
from biofeed.runner import Acquisition
from biofeed.sim.bluez import DEFAULT_MTU_BYTES, FakeBluez
from biofeed.sim.bluez_bus import PrivateBus
from biofeed.sim.device import SimulatedDevice
from biofeed.sources.base import SourceUrl
from biofeed.sources.ble import BleSource

pytestmark = [
    pytest.mark.skipif(shutil.which("dbus-daemon") is None, reason="needs dbus-daemon (apt install dbus-daemon)"),
    pytest.mark.timeout(300),
]

BYSTANDER = ("chest-strap", "C0:FF:EE:00:00:02")


@pytest.fixture(scope="module")
def bus() -> Iterator[PrivateBus]:
    with PrivateBus() as private_bus, pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBUS_SYSTEM_BUS_ADDRESS", private_bus.address)  # where bleak looks for BlueZ
        yield private_bus


Serve = Callable[..., FakeBluez]


@pytest.fixture
def serve(bus: PrivateBus) -> Iterator[Serve]:
    started: list[FakeBluez] = []

    def start(
        device: SimulatedDevice,
        *,
        drop_every_s: float | None = None,
        keep_sent: bool = False,
        speed: float = 4.0,
        mtu_bytes: int = DEFAULT_MTU_BYTES,
    ) -> FakeBluez:
        fake = FakeBluez(
            device,
            bus_address=bus.address,
            speed=speed,
            bystander=BYSTANDER,
            drop_every_s=drop_every_s,
            keep_sent=keep_sent,
            mtu_bytes=mtu_bytes,
        )
        fake.start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()


def test_scan_lists_the_biofeed_device_with_its_rssi_and_passes_over_a_bystander(serve: Serve) -> None:
    fake = serve(SimulatedDevice("rest", duration_s=30))
    lines = ble_scan_lines(0.5)
    assert len(lines) == 1
    url, name, rssi = lines[0].split("\t")
    assert (url, name) == (f"ble://{fake.address}", fake.name)
    assert -70 <= int(rssi.removeprefix("RSSI ").removesuffix(" dBm")) <= -50


def _record_with_drops(
    serve: Serve, path: Path, *, speed: float, mtu_bytes: int, duration_s: float, drop_every_s: float
) -> tuple[FakeBluez, int]:
    """Record ``duration_s`` device seconds while the link drops; check the recording; its reconnects."""
    fake = serve(
        SimulatedDevice("rest", seed=3, duration_s=duration_s * 4, clock_ppm=40.0),
        drop_every_s=drop_every_s,
        keep_sent=True,
        speed=speed,
        mtu_bytes=mtu_bytes,
    )
    source = BleSource.from_url(SourceUrl.parse(f"ble://{fake.name}?timeout=5&backoff=0.05"))
    assert source.mtu_bytes == mtu_bytes
    with RecordingWriter(path, source_url=source.url) as recorder:
        acquisition = Acquisition(source, recorder=recorder, duration_s=duration_s)
        acquisition.start()
        if not acquisition.join(4 * duration_s / speed + 30.0):  # never hang
            acquisition.stop()
        result = acquisition.wait()
        recorder.close()
    assert result.error is None
    assert not fake.biofeed_device.connected  # close() disconnected cleanly

    # Everything notified, per connection, with a 0x00 where each link dropped: what bleak delivered.
    expected = Decoder().feed(b"\x00".join(bytes(s) for s in fake.sent))
    recorded = Decoder()
    blocks: list[Block] = []
    times = []
    for record in open_recording(path).frames():
        times.append(record.received_at)
        blocks += [i for i in recorded.decode_frame(record.frame, record.received_at) if isinstance(i, Block)]
    end = {name: s.end_index or 0 for name, s in recorded.stats.streams.items()}
    sent_blocks = [
        (b.info.name, b.first_index) for b in expected if isinstance(b, Block) and b.first_index < end[b.info.name]
    ]
    assert [(b.info.name, b.first_index) for b in blocks] == sent_blocks
    assert times == sorted(times)

    events = list(open_recording(path).events())
    n_lost = sum(1 for e in events if e["type"] == "link" and e["state"] == "lost")
    assert n_lost >= 3
    assert n_lost <= fake.n_drops
    emg_gaps = [e for e in events if e["type"] == "gap" and e["stream"] == "emg"]
    assert len(emg_gaps) == n_lost  # every drop lost samples, and each loss is marked
    emg = recorded.stats.streams["emg"]
    assert sum(e["n_samples_lost"] for e in emg_gaps) == emg.samples_lost > 0
    assert emg.end_index is not None and emg.first_index is not None
    assert emg.n_samples + emg.samples_lost == emg.end_index - emg.first_index >= duration_s * 2000
    assert result.reconnects == n_lost
    return fake, n_lost


def test_a_recording_over_bleak_with_dropped_links_keeps_every_sample_delivered(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, n_lost = _record_with_drops(serve, tmp_path / "rec", speed=4.0, mtu_bytes=247, duration_s=16.0, drop_every_s=3.0)
    assert main(["info", str(tmp_path / "rec"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["reconnects"] == n_lost
    emg = next(s for s in info["streams"] if s["name"] == "emg")
    assert emg["gaps"] == n_lost and emg["samples_lost"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("mtu_bytes", [185, 517])
def test_a_real_time_minute_over_bleak_with_dropped_links(serve: Serve, tmp_path: Path, mtu_bytes: int) -> None:
    _record_with_drops(serve, tmp_path / "rec", speed=1.0, mtu_bytes=mtu_bytes, duration_s=60.0, drop_every_s=10.0)


def test_scan_without_bluetoothd_says_why() -> None:
    lines = ble_scan_lines(0.3)  # nobody serves org.bluez on the bus now
    assert len(lines) == 1 and lines[0].startswith("no BLE scan: Bluetooth scan failed: ")


def test_a_device_without_the_biofeed_service_is_refused_by_address(serve: Serve) -> None:
    serve(SimulatedDevice("rest", duration_s=30))
    with pytest.raises(SourceError, match="no biofeed data characteristic"):
        BleSource.from_url(SourceUrl.parse(f"ble://{BYSTANDER[1]}?timeout=5&reconnect=0"))


def test_a_name_nobody_advertises_is_not_found(serve: Serve) -> None:
    serve(SimulatedDevice("rest", duration_s=30))
    with pytest.raises(DeviceNotFoundError, match="'biofeed-elsewhere'"):
        BleSource("biofeed-elsewhere", scan_timeout_s=0.3)
    with pytest.raises(DeviceNotFoundError):
        BleSource(BYSTANDER[0], scan_timeout_s=0.3)  # the name is there, the biofeed service is not
