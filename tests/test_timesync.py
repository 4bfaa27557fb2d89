"""Device time to host time: the lower-envelope fit, its segments, and what recordings report."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeed.blocks import Block, ChannelInfo, ChannelKind, DeviceInfo, StreamInfo
from biofeed.cli import main
from biofeed.protocol.decoder import Decoder
from biofeed.record.summary import summarize_recording
from biofeed.record.writer import RecordingWriter
from biofeed.runner import Acquisition
from biofeed.sim.bluez import FakeBluez
from biofeed.sim.bluez_bus import PrivateBus
from biofeed.sim.device import EMG_RATE_HZ, IMU_RATE_HZ, SimulatedDevice
from biofeed.sources.base import SourceUrl
from biofeed.sources.ble import BleSource
from biofeed.sources.sim import SimSource
from biofeed.timesync import (
    ClockFit,
    ClockFitter,
    ClockTracker,
    block_arrival_point,
    clock_fits_from_json,
    clock_fits_to_json,
    main_fit,
)

from .link_models import DelayedLink

START_S = 1.7e9
MIN_LATENCY_S = 0.004


def _tracked(source: SimSource | DelayedLink) -> tuple[ClockTracker, list[Block]]:
    decoder = Decoder()
    clocks = ClockTracker()
    blocks = []
    for chunk in source.chunks():
        for item in decoder.feed(chunk.data, chunk.received_at):
            clocks.write(item)
            if isinstance(item, Block):
                blocks.append(item)
    return clocks, blocks


def _sim(clock_ppm: float, duration_s: float, seed: int = 2) -> SimSource:
    device = SimulatedDevice("rest", seed=seed, duration_s=duration_s, clock_ppm=clock_ppm)
    return SimSource(device, speed=0, wall_clock=lambda: START_S)


# -- the fit on the simulator --------------------------------------------------------------------


@pytest.mark.parametrize("clock_ppm", [-50.0, 0.0, 40.0, 75.0])
def test_the_clock_error_of_a_jittered_simulator_is_found_within_5_ppm(clock_ppm: float) -> None:
    link = DelayedLink(_sim(clock_ppm, 60.0), np.random.default_rng(7), min_latency_s=MIN_LATENCY_S)
    clocks, blocks = _tracked(link)
    for name in ("emg", "imu_thoracic", "imu_sacral"):
        fit = clocks.main_fit(name)
        assert fit is not None and len(clocks.fits(name)) == 1  # rare 0.1-0.3 s stalls split nothing
        assert abs(fit.clock_error_ppm - clock_ppm) < 5.0, (name, fit.clock_error_ppm)
        # jitter: the 95th percentile of the true delays above the true envelope
        rate = EMG_RATE_HZ if name == "emg" else IMU_RATE_HZ
        stream = [b for b in blocks if b.info.name == name]
        last_s = np.array([(b.end_index - 1) / rate for b in stream])
        arrival_s = np.array([b.received_at for b in stream])
        # a packet leaves one sample period after its last sample (the simulator's departure)
        envelope_s = START_S + MIN_LATENCY_S + (last_s + 1.0 / rate) / (1 + clock_ppm * 1e-6)
        true_jitter_ms = np.percentile(arrival_s - envelope_s, 95) * 1e3
        assert fit.jitter_ms == pytest.approx(true_jitter_ms, rel=0.1)


def test_exact_arrivals_give_the_exact_line() -> None:
    clocks, _ = _tracked(_sim(40.0, 20.0))
    fit = clocks.main_fit("emg")
    assert fit is not None
    # departure of the packet ending with the sample at device time x: x + 1/fs, in host time
    assert fit.slope == pytest.approx(1 / (1 + 40e-6), abs=1e-9)  # host times near 1.7e9 s: 0.24 us steps
    assert fit.offset_s == pytest.approx(START_S + fit.slope / EMG_RATE_HZ, abs=1e-6)
    assert fit.clock_error_ppm == pytest.approx(40.0, abs=1e-3)
    # two EMG packets per 20 ms chunk: the first waits 10 ms, the second none
    assert fit.jitter_ms == pytest.approx(10.0 / (1 + 40e-6), rel=0.03)
    assert (fit.first_device_s, fit.last_device_s) == (19 / EMG_RATE_HZ, 20.0 - 1 / EMG_RATE_HZ)
    assert fit.n_points == 20.0 * EMG_RATE_HZ / 20


def test_a_recording_from_sim_reports_its_clock_error_in_info_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rec"
    assert main(["record", "--device", "sim://rest?seed=4&clock_ppm=75&speed=0&duration=20", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["reconnects"] == 0
    for stream in info["streams"]:
        assert abs(stream["clock_error_ppm"] - 75.0) < 5.0
        assert stream["jitter_ms"] == pytest.approx(stream["clock_fits"][0]["jitter_ms"])
        assert len(stream["clock_fits"]) == 1
    assert main(["info", str(out)]) == 0
    assert "clock       emg: +75.0 ppm" in capsys.readouterr().out


def test_the_fits_a_live_sink_keeps_equal_the_ones_info_computes(tmp_path: Path) -> None:
    link = DelayedLink(_sim(-20.0, 15.0), np.random.default_rng(3))
    live = ClockTracker()
    with RecordingWriter(tmp_path / "rec", source_url=link.url) as recorder:
        Acquisition(link, recorder=recorder, sinks=[live]).run()
        recorder.close(summary={"clock": live.to_json()})
    summary = summarize_recording(tmp_path / "rec")
    assert {s.name: s.clock_fits for s in summary.streams} == clock_fits_from_json(live.to_json())
    stored = json.loads((tmp_path / "rec" / "recording.json").read_text())["summary"]["clock"]
    assert clock_fits_from_json(stored) == {s.name: s.clock_fits for s in summary.streams}


# -- the estimator alone -------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    offset_s=st.floats(-1e4, 2e9),
    ppm=st.floats(-500, 500),
    mean_delay_s=st.floats(1e-4, 0.05),
    seed=st.integers(0, 2**16),
)
def test_the_fit_lies_under_every_point_and_touches_one(
    offset_s: float, ppm: float, mean_delay_s: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    device_s = np.cumsum(rng.uniform(0.001, 0.05, 2000)) + rng.uniform(0, 1e5)
    host_s = offset_s + device_s / (1 + ppm * 1e-6) + rng.exponential(mean_delay_s, len(device_s))
    fitter = ClockFitter(bin_s=0.05, max_bins=64)  # merges several times
    for x, y in zip(device_s, host_s, strict=True):
        fitter.add(x, y)
    fit = fitter.fit()
    assert fit is not None and fitter.n_bins <= 65
    residual_s = host_s - fit.host_time_s(device_s)
    # every bin keeps its lower hull, so the line is under every point and through two of them
    # (up to the rounding of host times near 2e9 s)
    assert residual_s.min() > -1e-6
    assert residual_s.min() < 1e-6
    # the linear programme's optimum is at least as high at the mean device time as the true floor
    mean_s = device_s.mean()
    assert fit.host_time_s(mean_s) >= offset_s + mean_s / (1 + ppm * 1e-6) - 1e-6


def test_memory_stays_bounded_and_accuracy_survives_bin_merges() -> None:
    rng = np.random.default_rng(11)
    fitter = ClockFitter(bin_s=0.1, max_bins=32)
    device_s = np.arange(200_000) * 0.01  # 2000 s, 100 packets per second
    host_s = 5.0 + device_s * (1 - 30e-6) + 0.002 + rng.uniform(0, 0.0075, len(device_s))
    for x, y in zip(device_s, host_s, strict=True):
        fitter.add(x, y)
    assert fitter.n_bins <= 33
    assert fitter.bin_s >= 2000 / 32
    fit = fitter.fit()
    assert fit is not None
    assert abs(fit.clock_error_ppm - 30.0) < 0.5
    assert fit.jitter_ms == pytest.approx(0.95 * 7.5, rel=0.05)  # uniform 0..7.5 ms above the floor


def test_one_point_gives_no_fit_and_bad_arguments_are_refused() -> None:
    fitter = ClockFitter()
    assert fitter.fit() is None and fitter.expected_host_time_s(1.0) is None
    fitter.add(0.0, 10.0)
    assert fitter.fit() is None
    assert fitter.expected_host_time_s(2.0) == 12.0
    fitter.add(0.05, 10.06)
    fit = fitter.fit()
    assert fit is not None and fit.slope == pytest.approx(1.2)
    with pytest.raises(ValueError, match="finite"):
        fitter.add(math.nan, 1.0)
    with pytest.raises(ValueError, match="bin_s"):
        ClockFitter(bin_s=0)
    with pytest.raises(ValueError, match="max_bins"):
        ClockFitter(max_bins=2)
    with pytest.raises(ValueError, match="quantile"):
        fitter.delay_quantile_s(1.5)
    with pytest.raises(ValueError, match="gap_step_s"):
        ClockTracker(gap_step_s=0)
    with pytest.raises(ValueError, match="confirm_s"):
        ClockTracker(confirm_s=math.inf)


def test_clock_fit_maps_both_ways_and_round_trips_json() -> None:
    fit = ClockFit(offset_s=1.7e9, slope=1 - 40e-6, first_device_s=3.0, last_device_s=60.0, n_points=7, jitter_ms=2.5)
    assert fit.clock_error_ppm == pytest.approx(40.0016, abs=1e-3)
    assert fit.device_time_s(fit.host_time_s(12.345)) == pytest.approx(12.345, abs=1e-6)
    assert np.allclose(fit.host_time_s(np.array([0.0, 1.0])), [1.7e9, 1.7e9 + fit.slope])
    assert ClockFit.from_json(json.loads(json.dumps(fit.to_json()))) == fit
    assert clock_fits_from_json(clock_fits_to_json({"emg": [fit]})) == {"emg": (fit,)}
    with pytest.raises(ValueError, match="slope"):
        ClockFit.from_json({**fit.to_json(), "slope": 0})
    with pytest.raises(ValueError, match="offset_s"):
        ClockFit.from_json({**fit.to_json(), "offset_s": None})
    with pytest.raises(ValueError, match="list"):
        clock_fits_from_json({"emg": {}})
    longer = ClockFit(0.0, 1.0, 0.0, 100.0, 3, 0.0)
    assert main_fit([fit, longer]) is longer and main_fit([]) is None


# -- segments -----------------------------------------------------------------------------------

_EMG = StreamInfo("emg", 1000.0, (ChannelInfo("es_left", ChannelKind.EMG, "uV"),), "dev", 1)
_DEVICE = DeviceInfo("dev", (1, 0, 0), "test", (_EMG,))


def _blocks(
    n_blocks: int,
    *,
    first_block: int = 0,
    host_shift_s: float = 0.0,
    ppm: float = 0.0,
    gap_at: int | None = None,
    speed: float = 1.0,
) -> list[Block]:
    """Blocks of 10 samples at 1 kHz arriving 2..5 ms after their last sample (host times from 100 s).

    ``speed``: played that many times faster than real time (as the fake BlueZ can).
    """
    rng = np.random.default_rng(first_block)
    out = []
    for k in range(first_block, first_block + n_blocks):
        last_s = (10 * k + 9) / 1000
        arrival = 100.0 + host_shift_s + last_s / (1 + ppm * 1e-6) / speed + rng.uniform(0.002, 0.005)
        gap = 10 if k == gap_at else 0
        out.append(Block(_EMG, np.zeros((1, 10)), 10 * k, gap, arrival))
    return out


def test_a_reconnect_gap_that_arrives_on_time_keeps_one_segment() -> None:
    clocks = ClockTracker()
    clocks.write(_DEVICE)
    for block in _blocks(1000, ppm=30) + _blocks(1000, first_block=1500, ppm=30, gap_at=1500):
        clocks.write(block)
    (fit,) = clocks.fits("emg")
    assert abs(fit.clock_error_ppm - 30) < 5
    assert fit.n_points == 2000


@pytest.mark.parametrize("speed", [1.0, 4.0])
def test_a_late_gap_followed_by_blocks_back_on_the_line_was_a_stall_not_a_reset(speed: float) -> None:
    clocks = ClockTracker()
    clocks.write(_DEVICE)
    for block in _blocks(1000, ppm=30, speed=speed):
        clocks.write(block)
    after = _blocks(1000, first_block=1500, ppm=30, gap_at=1500, speed=speed)
    # the host stalled at the reconnect: 0.6 device s of blocks (every sixth kept) arrive in a burst
    # 1.2 s late; against each other they look early, against the envelope they are all late
    burst_s = after[0].received_at + 1.2
    stalled = [
        Block(b.info, b.data, b.first_index, b.gap_before, burst_s + 1e-4 * i) for i, b in enumerate(after[:60:6])
    ]
    for block in stalled:
        clocks.write(block)
    assert clocks.fits("emg")[0].n_points == 1000  # in doubt: kept apart, the old line untouched
    for block in after[60:]:
        clocks.write(block)
    (fit,) = clocks.fits("emg")
    assert fit.n_points == 1000 + 10 + 940
    assert abs(((1 + fit.clock_error_ppm * 1e-6) / speed - 1) * 1e6 - 30) < 5


def test_a_device_reset_and_a_host_clock_step_back_start_new_segments() -> None:
    clocks = ClockTracker()
    clocks.write(_DEVICE)
    before = _blocks(1500)
    # a reset: the decoder continues the timeline right after, but the board was away 3 s
    reset = _blocks(1500, first_block=1501, host_shift_s=3.0, gap_at=1501)
    # then the host clock is set back by 2 s
    stepped = _blocks(1000, first_block=3001, host_shift_s=1.0)
    for block in before + reset + stepped:
        clocks.write(block)
    fits = clocks.fits("emg")
    assert [f.n_points for f in fits] == [1500, 1500, 1000]
    assert all(abs(f.clock_error_ppm) < 20 for f in fits)
    assert fits[1].offset_s - fits[0].offset_s == pytest.approx(3.0, abs=0.004)
    assert fits[2].offset_s - fits[0].offset_s == pytest.approx(1.0, abs=0.004)
    assert clocks.host_time_s("emg", 20_000) == pytest.approx(fits[1].host_time_s(20.0))
    clocks.split()
    assert len(clocks.fits("emg")) == 3  # an empty new segment has no fit yet


def test_the_tracker_follows_only_the_device_streams() -> None:
    clocks = ClockTracker()
    blocks = _blocks(50)
    clocks.write(blocks[0])  # before the INFO: not the device's yet
    clocks.write(_DEVICE)
    derived = StreamInfo("emg.filtered", 1000.0, _EMG.channels, "dev", 1)
    for block in blocks[1:]:
        clocks.write(block)
        clocks.write(Block(derived, block.data, block.first_index, 0, block.received_at))
    assert clocks.stream_names == ("emg",)
    fit = clocks.main_fit("emg")
    assert fit is not None and fit.n_points == 49
    assert clocks.host_time_s("imu", 5) is None
    assert block_arrival_point(Block(_EMG, np.zeros((1, 0)), 0, 0, 1.0)) is None
    assert block_arrival_point(Block(_EMG, np.zeros((1, 3)), 0)) is None


# -- over unmodified bleak, from the fake BlueZ, with dropped links ----------------------------------


@pytest.fixture(scope="module")
def bluez_bus() -> Iterator[PrivateBus]:
    if shutil.which("dbus-daemon") is None:
        pytest.skip("needs dbus-daemon (apt install dbus-daemon)")
    with PrivateBus() as bus, pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)  # where bleak looks for BlueZ
        yield bus


def _record_over_bleak(
    bus: PrivateBus, path: Path, *, clock_ppm: float, speed: float, duration_s: float, drop_every_s: float
) -> int:
    """Record ``duration_s`` device seconds from the fake BlueZ playing at ``speed``; return the reconnects."""
    device = SimulatedDevice("rest", seed=5, duration_s=duration_s + 30 * speed, clock_ppm=clock_ppm)
    fake = FakeBluez(device, bus_address=bus.address, speed=speed, drop_every_s=drop_every_s)
    fake.start()
    try:
        source = BleSource.from_url(SourceUrl.parse(f"ble://{fake.name}?timeout=5&backoff=0.05"))
        with RecordingWriter(path, source_url=source.url) as recorder:
            acquisition = Acquisition(source, recorder=recorder, duration_s=duration_s)
            acquisition.start()
            if not acquisition.join(duration_s / speed + 30.0):  # never hang
                acquisition.stop()
            result = acquisition.wait()
            recorder.close()
    finally:
        fake.stop()
    assert result.error is None
    return result.reconnects


def _crystal_ppm(reported_ppm: float, speed: float) -> float:
    """The device's own clock error from one measured against a fake playing ``speed`` times real time.

    The fake delivers ``speed`` device seconds per host second, so the host sees the device run
    ``speed (1 + ppm 1e-6)`` fast: divide that out. Jitter and the fit's precision stay in host time.
    """
    return ((1 + reported_ppm * 1e-6) / speed - 1) * 1e6


def test_a_recording_over_bleak_with_dropped_links_keeps_one_clock_fit(bluez_bus: PrivateBus, tmp_path: Path) -> None:
    # 100 device seconds at 4x: 25 host seconds, the link dropped every 2 host seconds
    n_reconnects = _record_over_bleak(
        bluez_bus, tmp_path / "rec", clock_ppm=40.0, speed=4.0, duration_s=100.0, drop_every_s=8.0
    )
    assert n_reconnects >= 3
    summary = summarize_recording(tmp_path / "rec")
    assert summary.reconnects == n_reconnects
    for stream in summary.streams:
        assert stream.gaps >= n_reconnects  # each drop is a gap ...
        assert len(stream.clock_fits) == 1  # ... and the device counted on: one line through all of it
    emg = next(s for s in summary.streams if s.name == "emg")
    assert emg.clock_error_ppm is not None and emg.jitter_ms is not None
    # 25 host seconds: on a loaded machine the earliest arrivals wander by 0.1-0.5 ms from second to
    # second (scheduling), which leaves the slope 4-14 ppm off (measured at load 8 on 2 cores); the
    # slow test below runs 120 host seconds, enough for 5 ppm. A fit broken by the drops would be off
    # by thousands of ppm.
    assert abs(_crystal_ppm(emg.clock_error_ppm, 4.0) - 40.0) < 30.0
    assert 0 < emg.jitter_ms < 50.0


@pytest.mark.slow
def test_over_bleak_the_clock_error_matches_the_simulator_within_5_ppm(bluez_bus: PrivateBus, tmp_path: Path) -> None:
    # 480 device seconds at 4x: 120 host seconds, the link dropped every 7.5 host seconds
    n_reconnects = _record_over_bleak(
        bluez_bus, tmp_path / "rec", clock_ppm=75.0, speed=4.0, duration_s=480.0, drop_every_s=30.0
    )
    assert n_reconnects >= 10
    emg = next(s for s in summarize_recording(tmp_path / "rec").streams if s.name == "emg")
    assert emg.clock_error_ppm is not None and len(emg.clock_fits) == 1
    assert abs(_crystal_ppm(emg.clock_error_ppm, 4.0) - 75.0) < 5.0
