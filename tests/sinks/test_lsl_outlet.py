"""The LSL outlet sink, read back with plain pylsl inlets in the same process (loopback)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pylsl
import pytest

from biofeed.blocks import (
    Block,
    ChannelInfo,
    ChannelKind,
    DeviceInfo,
    DeviceStatus,
    LinkEvent,
    LinkState,
    Marker,
    StreamInfo,
)
from biofeed.runner import Acquisition, Item
from biofeed.sim.device import SimulatedDevice
from biofeed.sinks.lsl_outlet import DeviceClockOffset, LslOutletSink
from biofeed.sources.sim import SimSource

RESOLVE_TIMEOUT_S = 5.0
PULL_TIMEOUT_S = 2.0
BASE_S = 5000.0  # LSL time of device time 0, before latency
MIN_LATENCY_S = 0.012


@dataclass
class Capture:
    items: list[Item] = field(default_factory=list)

    def write(self, item: Item) -> None:
        self.items.append(item)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def sim_items() -> list[Item]:
    """Everything the decoder gives for 2 s of the simulated board."""
    capture = Capture()
    Acquisition(SimSource(SimulatedDevice("rest", seed=3, duration_s=2.0), speed=0), sinks=[capture]).run()
    return capture.items


class ScriptedClock:
    """An LSL clock the test sets before each block: arrival = BASE + device time + latency."""

    def __init__(self) -> None:
        self.now_s = BASE_S

    def __call__(self) -> float:
        return self.now_s


def latencies(n_blocks: int, seed: int) -> np.ndarray:
    """Latencies of blocks in s: the first 30 ms, the smallest (12 ms) at block 3, the rest 12-40 ms."""
    lat = np.random.default_rng(seed).uniform(MIN_LATENCY_S, 0.040, n_blocks)
    lat[0] = 0.030
    lat[3] = MIN_LATENCY_S
    return lat


def unique_prefix(tag: str) -> str:
    return f"test-{tag}-{os.getpid()}-"


def open_inlet(prop: str, value: str) -> Any:
    found = pylsl.resolve_byprop(prop, value, timeout=RESOLVE_TIMEOUT_S)
    assert found, f"no LSL stream with {prop}={value!r}"
    inlet = pylsl.StreamInlet(found[0], max_buflen=60, processing_flags=pylsl.proc_none)
    inlet.open_stream(timeout=RESOLVE_TIMEOUT_S)
    return inlet


def pull_all(inlet: Any, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    data, stamps = [], []
    got = 0
    while got < n_samples:  # ends: each pull brings samples or waits at most PULL_TIMEOUT_S and stops
        chunk, ts = inlet.pull_chunk(timeout=PULL_TIMEOUT_S, max_samples=100_000, min_samples=1, as_numpy=True)
        if not len(ts):
            break
        data.append(chunk)
        stamps.append(ts)
        got += len(ts)
    return np.concatenate(data), np.concatenate(stamps)


def pull_markers(inlet: Any, n_markers: int) -> list[tuple[dict[str, Any], float]]:
    out: list[tuple[dict[str, Any], float]] = []
    while len(out) < n_markers:
        sample, stamp = inlet.pull_sample(timeout=PULL_TIMEOUT_S)
        if sample is None:
            break
        out.append((json.loads(sample[0]), stamp))
    return out


def device_blocks(items: list[Item], name: str) -> Iterator[Block]:
    return (i for i in items if isinstance(i, Block) and i.info.name == name)


@pytest.fixture(scope="module")
def published(sim_items: list[Item]) -> dict[str, Any]:
    """The simulated run published through the sink with a scripted clock, read back by plain inlets."""
    prefix = unique_prefix("sink")
    clock = ScriptedClock()
    sink = LslOutletSink(name_prefix=prefix, clock=clock)
    device = sim_items[0]
    assert isinstance(device, DeviceInfo)
    sink.write(device)  # creates every outlet, so the inlets can subscribe before data flows
    inlets = {name: open_inlet("name", prefix + name) for name in ("emg", "imu_thoracic", "imu_sacral", "markers")}
    blocks = [i for i in sim_items[1:] if isinstance(i, Block)]
    lat = latencies(len(blocks), seed=7)
    block_latency: dict[int, float] = {}
    k = 0
    for item in sim_items[1:]:
        if isinstance(item, Block):
            clock.now_s = BASE_S + (item.end_index - 1) / item.info.sample_rate_hz + lat[k]
            block_latency[id(item)] = lat[k]
            k += 1
        sink.write(item)
    emg_info = device.streams[0]
    events: list[Any] = [
        Marker("emg", 3000, 1, "button"),
        DeviceStatus("emg", 3100, 80, 3900, (True, False), (False, False)),
        DeviceStatus("emg", 3200, 80, 3900, (True, False), (False, False)),  # unchanged: not published
        LinkEvent(LinkState.LOST, "unplugged"),
        Block(emg_info, np.zeros((2, 20)), 4020, gap_before=20),
    ]
    clock.now_s = BASE_S + 4039 / 2000 + 0.5  # a late block: does not move the offset
    for event in events:
        sink.write(event)
    n_emg = sum(b.n_samples for b in device_blocks(sim_items, "emg")) + 20
    n_imu = sum(b.n_samples for b in device_blocks(sim_items, "imu_thoracic"))
    result = {
        "sink": sink,
        "emg": pull_all(inlets["emg"], n_emg),
        "imu_thoracic": pull_all(inlets["imu_thoracic"], n_imu),
        "markers": pull_markers(inlets["markers"], 5),  # the sim's first STATUS and our four
        "extra_marker": inlets["markers"].pull_sample(timeout=0.2)[0],
        "infos": {name: inlet.info(timeout=RESOLVE_TIMEOUT_S) for name, inlet in inlets.items()},
        "offset_s": sink.offset_s(device.device_id),
    }
    sink.close()
    return result


def test_samples_arrive_equal_in_order(sim_items: list[Item], published: dict[str, Any]) -> None:
    for name in ("emg", "imu_thoracic"):
        sent = np.concatenate([b.data for b in device_blocks(sim_items, name)], axis=1).T
        data, _ = published[name]
        if name == "emg":
            sent = np.vstack([sent, np.zeros((20, 2))])
        assert data.dtype == np.float32
        np.testing.assert_array_equal(data, sent.astype(np.float32))


def test_nominal_rates_types_and_source_ids(published: dict[str, Any]) -> None:
    infos = published["infos"]
    assert infos["emg"].nominal_srate() == 2000.0
    assert infos["imu_thoracic"].nominal_srate() == 100.0
    assert infos["markers"].nominal_srate() == pylsl.IRREGULAR_RATE
    assert (infos["emg"].type(), infos["imu_sacral"].type(), infos["markers"].type()) == ("EMG", "IMU", "Markers")
    assert infos["emg"].source_id() == "sim-3/emg"
    assert infos["imu_sacral"].source_id() == "sim-3/imu_sacral"
    assert infos["markers"].channel_format() == pylsl.cf_string


def test_channel_metadata_in_desc(published: dict[str, Any]) -> None:
    emg, imu = published["infos"]["emg"], published["infos"]["imu_thoracic"]
    assert emg.get_channel_labels() == ["es_left", "es_right"]
    assert emg.get_channel_units() == ["microvolts", "microvolts"]
    assert emg.get_channel_types() == ["EMG", "EMG"]
    sites = []
    channel = emg.desc().child("channels").child("channel")
    while not channel.empty():
        sites.append(channel.child_value("site"))
        channel = channel.next_sibling()
    assert sites == ["erector spinae L1 left", "erector spinae L1 right"]
    assert imu.get_channel_units() == ["g"] * 3 + ["deg/s"] * 3
    assert imu.get_channel_types() == ["ACC"] * 3 + ["GYRO"] * 3
    acquisition = emg.desc().child("acquisition")
    assert acquisition.child_value("device_id") == "sim-3"
    assert acquisition.child_value("model") == "simulator"


def test_time_stamps_follow_the_device_clock(sim_items: list[Item], published: dict[str, Any]) -> None:
    """Stamps rise; the offset to device time never rises and settles on the smallest latency."""
    for name, fs in (("emg", 2000.0), ("imu_thoracic", 100.0)):
        _, stamps = published[name]
        device_s = np.concatenate([np.arange(b.first_index, b.end_index) for b in device_blocks(sim_items, name)]) / fs
        if name == "emg":
            device_s = np.concatenate([device_s, np.arange(4020, 4040) / fs])
        assert np.all(np.diff(stamps) > 0)
        offset = stamps - device_s - BASE_S
        assert np.all(np.diff(offset) <= 1e-9)
        if name == "emg":
            assert offset[0] == pytest.approx(0.030, abs=1e-9)  # the first block's own latency
        assert offset.min() >= MIN_LATENCY_S - 1e-9
        assert offset[-1] == pytest.approx(MIN_LATENCY_S, abs=1e-9)  # caught up with the best fit
    assert published["offset_s"] == pytest.approx(BASE_S + MIN_LATENCY_S, abs=1e-9)


def test_markers_status_changes_gaps_and_link_events(published: dict[str, Any]) -> None:
    received = published["markers"]
    assert published["extra_marker"] is None
    kinds = [event["event"] for event, _ in received]
    assert kinds.count("status") == 2  # the sim's first STATUS (its second is the same) and the one change
    ours = [(event, stamp) for event, stamp in received if event.get("sample_index", 0) >= 3000 or "state" in event]
    assert [event["event"] for event, _ in ours] == ["marker", "status", "link", "gap"]
    marker, marker_stamp = ours[0]
    assert (marker["code"], marker["label"], marker["stream"], marker["device_time_s"]) == (1, "button", "emg", 1.5)
    assert marker_stamp == pytest.approx(BASE_S + MIN_LATENCY_S + 1.5, abs=1e-9)
    status, _ = ours[1]
    assert status["lead_off"] == [True, False] and status["battery_pct"] == 80
    link, _ = ours[2]
    assert (link["state"], link["detail"]) == ("lost", "unplugged")
    gap, gap_stamp = ours[3]
    assert (gap["sample_index"], gap["n_samples_lost"]) == (4000, 20)
    assert gap_stamp == pytest.approx(BASE_S + MIN_LATENCY_S + 2.0, abs=1e-9)


def test_any_block_stream_gets_its_own_outlet() -> None:
    """A stream the INFO does not list (the pipeline's envelope) is published when its first block comes."""
    prefix = unique_prefix("envelope")
    clock = ScriptedClock()
    sink = LslOutletSink(name_prefix=prefix, clock=clock)
    envelope = StreamInfo("envelope", 50.0, (ChannelInfo("es_left", ChannelKind.EMG, "uV"),), device_id="dev-1")
    rng = np.random.default_rng(1)
    blocks = [Block(envelope, rng.uniform(0, 30, (1, 10)), 10 * k) for k in range(4)]
    clock.now_s = BASE_S + 0.2
    sink.write(blocks[0])
    inlet = open_inlet("source_id", "dev-1/envelope")
    for block in blocks[1:]:
        clock.now_s = BASE_S + block.end_index / 50.0
        sink.write(block)
    data, stamps = pull_all(inlet, 30)
    np.testing.assert_array_equal(data[:, 0], np.concatenate([b.data[0] for b in blocks[1:]]).astype(np.float32))
    np.testing.assert_allclose(np.diff(stamps), 1 / 50.0, atol=1e-9)
    assert inlet.info(timeout=RESOLVE_TIMEOUT_S).nominal_srate() == 50.0
    sink.close()


def test_offset_fit_is_the_smallest_delay() -> None:
    fit = DeviceClockOffset()
    assert math.isnan(fit.offset_s)
    assert fit.update(10.05, 10.0) == pytest.approx(0.05)
    assert fit.update(11.02, 11.0) == pytest.approx(0.02)
    assert fit.update(12.50, 12.0) == pytest.approx(0.02)  # a late block does not move it
