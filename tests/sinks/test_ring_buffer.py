from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeed.blocks import (
    AnalysisEvent,
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
from biofeed.dsp.imu.posture import compare_postures
from biofeed.sinks.ring_buffer import RingBufferSink

FS_HZ = 2000.0
EMG = StreamInfo(
    "emg", FS_HZ, (ChannelInfo("es_left", ChannelKind.EMG, "uV"), ChannelInfo("es_right", ChannelKind.EMG, "uV"))
)
FILTERED = StreamInfo("emg.filtered", FS_HZ, EMG.channels)
ENVELOPE = StreamInfo("emg.envelope", 100.0, EMG.channels)
IMU = StreamInfo(
    "imu_thoracic",
    100.0,
    tuple(ChannelInfo(f"acc_{a}", ChannelKind.ACC, "g") for a in "xyz")
    + tuple(ChannelInfo(f"gyro_{a}", ChannelKind.GYRO, "deg/s") for a in "xyz"),
)
DEVICE = DeviceInfo("dev", (1, 0, 0), "test", (EMG, IMU))


def _ramp(info: StreamInfo, first: int, n: int, gap: int = 0, received_at: float = math.nan) -> Block:
    """Samples whose value is their own index (row c: index + 0.5 c), so any tear shows."""
    index = np.arange(first, first + n, dtype=np.float64)
    data = np.vstack([index + 0.5 * c for c in range(info.n_channels)])
    return Block(info, data, first, gap, received_at)


def _event(event_type: str, channel: str | None, sample_index: int, **fields: object) -> AnalysisEvent:
    return AnalysisEvent(
        {
            "type": event_type,
            "stream": "emg",
            "channel": channel,
            "sample_index": sample_index,
            "time_s": sample_index / FS_HZ,
            **fields,
        }
    )


def _ring(**options: object) -> RingBufferSink:
    ring = RingBufferSink(**options)  # type: ignore[arg-type]
    ring.write(DEVICE)
    return ring


def test_keeps_only_the_last_capacity_seconds() -> None:
    ring = _ring(capacity_s=1.0)
    for k in range(100):  # 2.5 s in 50-sample blocks
        ring.write(_ramp(FILTERED, 50 * k, 50))
    window = ring.poll(10.0).streams["emg.filtered"]
    assert window.index[0] == 5000 - 2001 and window.index[-1] == 4999
    np.testing.assert_array_equal(window.data[0], window.index.astype(np.float32))
    np.testing.assert_array_equal(window.data[1], (window.index + 0.5).astype(np.float32))
    short = ring.poll(0.5).streams["emg.filtered"]
    assert short.index[0] == 4999 - 1000 and short.index[-1] == 4999


def test_poll_returns_copies_not_views() -> None:
    ring = _ring()
    ring.write(_ramp(FILTERED, 0, 100))
    first = ring.poll(1.0).streams["emg.filtered"]
    first.data[:] = -1.0
    again = ring.poll(1.0).streams["emg.filtered"]
    assert again.data[0, 0] == 0.0


def test_a_gap_is_one_nan_column_before_the_block() -> None:
    ring = _ring()
    ring.write(_ramp(FILTERED, 0, 10))
    ring.write(_ramp(FILTERED, 15, 10, gap=5))
    window = ring.poll(1.0).streams["emg.filtered"]
    assert window.index.tolist() == [*range(10), 14, *range(15, 25)]
    assert np.isnan(window.data[:, 10]).all()
    assert np.isfinite(window.data[:, np.arange(21) != 10]).all()


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(1, 700), min_size=1, max_size=12))
def test_chunking_does_not_change_what_is_kept(cuts: list[int]) -> None:
    total = sum(cuts)
    whole = _ring(capacity_s=0.25)
    whole.write(_ramp(FILTERED, 0, total))
    chunked = _ring(capacity_s=0.25)
    first = 0
    for n in cuts:
        chunked.write(_ramp(FILTERED, first, n))
        first += n
    a = whole.poll(0.2).streams["emg.filtered"]
    b = chunked.poll(0.2).streams["emg.filtered"]
    np.testing.assert_array_equal(a.index, b.index)
    np.testing.assert_array_equal(a.data, b.data)


def test_a_poll_leaves_out_streams_that_did_not_change() -> None:
    ring = _ring()
    ring.write(_ramp(FILTERED, 0, 100))
    ring.write(_ramp(ENVELOPE, 0, 5))
    first = ring.poll(1.0)
    assert set(first.streams) == {"emg.filtered", "emg.envelope"}
    ring.write(_ramp(FILTERED, 100, 100))
    second = ring.poll(1.0, known_versions=first.versions)
    assert set(second.streams) == {"emg.filtered"}
    only = ring.poll(1.0, streams=("emg.envelope",))
    assert set(only.streams) == {"emg.envelope"}


def test_the_state_changes_only_with_writes() -> None:
    ring = _ring()
    ring.write(_ramp(EMG, 0, 20))
    state = ring.state
    assert ring.state is state  # nothing written: the same immutable object
    ring.write(_event("noise_floor", "es_left", 0, noise_floor_uv=1.5))
    assert ring.state.version > state.version
    assert ring.state.channel("emg/es_left").noise_floor_uv == 1.5
    assert state.channel("emg/es_left").noise_floor_uv is None  # an old state never changes


def test_raw_emg_is_tracked_but_not_stored_unless_asked() -> None:
    ring = _ring()
    ring.write(_ramp(EMG, 0, 40))
    ring.write(_ramp(IMU, 0, 5))
    assert set(ring.poll(1.0).streams) == {"imu_thoracic"}
    assert ring.latest_index("emg") == 39 and ring.latest_index("nothing") is None
    kept = _ring(store_raw_emg=True)
    kept.write(_ramp(EMG, 0, 40))
    assert set(kept.poll(1.0).streams) == {"emg"}


def test_a_counter_that_goes_back_starts_a_new_timeline() -> None:
    ring = _ring()
    ring.write(_ramp(FILTERED, 1000, 100))
    ring.write(_ramp(FILTERED, 0, 10))
    assert ring.poll(1.0).streams["emg.filtered"].index.tolist() == list(range(10))


def test_channel_state_follows_the_analysis_events() -> None:
    ring = _ring()
    ring.write(_ramp(EMG, 0, 20))
    ring.write(_event("noise_floor", "es_left", 0, noise_floor_uv=1.5))
    ring.write(_event("window", "es_left", 2000, level_uv=5.0, rest=True, usable=True, set_point_uv=None))
    left = ring.state.channel("emg/es_left")
    assert left.set_point_uv is None and left.level_uv == 5.0 and left.phase == "calibrating"
    ring.write(_event("window", "es_left", 4000, level_uv=6.0, rest=True, usable=True, set_point_uv=6.0))
    assert ring.state.channel("emg/es_left").trial_reference_uv == 6.0  # no trial yet: follows the set point
    ring.write(_event("phase", "es_left", 10_000, phase="rest"))
    ring.write(_event("phase", "es_left", 120_000, phase="contraction"))
    ring.write(_event("phase", "es_left", 122_000, phase="release"))
    ring.write(_event("phase", "es_left", 124_000, phase="contraction"))  # re-bracing: not a new trial
    ring.write(_event("phase", "es_left", 124_400, phase="release"))
    ring.write(_event("phase", "es_left", 138_000, phase="rest"))
    ring.write(_event("window", "es_left", 160_000, level_uv=4.0, rest=True, usable=True, set_point_uv=4.2))
    left = ring.state.channel("emg/es_left")
    assert left.phase == "rest" and left.n_contractions == 1
    assert left.set_point_uv == 4.2
    assert left.trial_reference_uv == 6.0  # the rest after the trial is judged against the set point before it
    assert [(s.phase, s.start_s, s.end_s) for s in left.phases] == [
        ("rest", 5.0, 60.0),
        ("contraction", 60.0, 61.0),
        ("release", 61.0, 62.0),
        ("contraction", 62.0, 62.2),
        ("release", 62.2, 69.0),
        ("rest", 69.0, None),
    ]
    trial = {"verdict": "true", "ratio": 0.7}
    ring.write(_event("trial", "es_left", 120_000, **trial))
    state = ring.state
    assert state.channel("emg/es_left").trials[-1]["verdict"] == "true"
    assert [t["verdict"] for t in state.trials] == ["true"]
    assert state.channel("emg/es_right").trials == ()
    ring.write(_event("signal_fault", "es_right", 150_000, kind="flat", start_s=75.0, end_s=76.0))
    ring.write(_event("ecg", "es_right", 150_000, subtracting=True))
    right = ring.state.channel("emg/es_right")
    assert right.faults[-1]["kind"] == "flat" and right.ecg_subtracting


def test_old_phase_spans_are_dropped() -> None:
    ring = _ring(capacity_s=10.0)
    for k in range(50):
        ring.write(_ramp(EMG, 2000 * k, 2000))
        ring.write(_event("phase", "es_left", 2000 * k, phase="contraction" if k % 2 else "rest"))
    spans = ring.state.channel("emg/es_left").phases
    now_s = ring.state.now_s
    assert now_s == pytest.approx(50.0, abs=0.01)
    assert spans[-1].end_s is None and spans[0].end_s >= now_s - 10.0 > spans[0].start_s - 1.0
    assert len(spans) == 11


def test_envelope_gives_the_corrected_level_and_the_latency() -> None:
    now = [0.0]
    ring = _ring(wall_clock=lambda: now[0])
    ring.write(_event("noise_floor", "es_left", 0, noise_floor_uv=3.0))
    for k in range(40):  # 10 ms packets arriving at 100.00, 100.01, ...
        ring.write(_ramp(EMG, 20 * k, 20, received_at=100.0 + 0.01 * k))
    # an envelope value covering samples up to 19 (arrived at 100.00), handed over at 100.395 with
    # the block that arrived at 100.39 (the ECG stage delays the display by about 0.3 s)
    now[0] = 100.395
    envelope = Block(ENVELOPE, np.array([[5.0], [2.0]]), 1, 0, 100.39)
    ring.write(envelope)
    assert ring.latencies_s() == pytest.approx([0.395])
    left = ring.state.channel("emg/es_left")
    assert left.envelope_uv == 5.0 and left.envelope_corrected_uv == pytest.approx(4.0)
    assert ring.state.channel("emg/es_right").envelope_corrected_uv is None  # no floor yet
    # a value whose newest sample is in the block being processed: that block's arrival
    ring.write(Block(ENVELOPE, np.array([[5.0], [2.0]]), 40, 0, 100.39))
    assert ring.latencies_s()[-1] == pytest.approx(0.005)
    assert ring.state.latency_s == pytest.approx(0.2)  # median of the last second's


def test_device_status_link_markers_and_warnings() -> None:
    ring = _ring()
    ring.write(_ramp(EMG, 4000, 20, received_at=1.0))
    ring.write(DeviceStatus("emg", 4000, 87, 3900, (True, False), (False, True)))
    ring.write(LinkEvent(LinkState.RECONNECTING, "timeout", 2))
    ring.write(Marker("emg", 6000, 128, "breath"))
    ring.write(
        AnalysisEvent(
            {"type": "warning", "stream": "emg", "channel": None, "sample_index": 0, "time_s": 0, "text": "low rate"}
        )
    )
    ring.write(
        AnalysisEvent(
            {"type": "mains", "stream": "emg", "channel": None, "sample_index": 0, "time_s": 0, "line_hz": 50.0}
        )
    )
    state = ring.state
    assert (state.battery_pct, state.battery_mv) == (87, 3900)
    left, right = state.channel("emg/es_left"), state.channel("emg/es_right")
    assert left.lead_off and not left.saturated and right.saturated and not right.lead_off
    assert (state.link_state, state.link_detail) == ("reconnecting", "timeout")
    assert [(m.time_s, m.code, m.label) for m in state.markers] == [(1.0, 128, "breath")]  # origin: first sample
    assert state.warnings == ("low rate",) and state.mains["line_hz"] == 50.0
    assert not state.closed
    ring.close()
    assert ring.state.closed


def test_samples_lost_and_rates_per_device_stream() -> None:
    ring = _ring()
    for k in range(100):  # 10 ms chunks of 20 samples, one 20-sample gap
        first = 20 * k + (20 if k >= 50 else 0)
        ring.write(_ramp(EMG, first, 20, gap=20 if k == 50 else 0, received_at=10.0 + 0.01 * k))
    state = ring.state
    assert state.samples_lost == {"emg": 20}
    assert state.rates_hz["emg"] == pytest.approx(2000.0)
    assert "emg.filtered" not in state.rates_hz


def test_a_writer_and_a_reader_in_two_threads_never_see_a_torn_block() -> None:
    ring = _ring(capacity_s=0.5)
    n_blocks = 3000

    def writer() -> None:
        for k in range(n_blocks):
            ring.write(_ramp(FILTERED, 20 * k, 20))

    thread = threading.Thread(target=writer)
    thread.start()
    polls = 0
    while thread.is_alive() or polls == 0:
        window = ring.poll(0.3).streams.get("emg.filtered")
        polls += 1
        if window is None:
            continue
        assert (np.diff(window.index) == 1).all()
        np.testing.assert_array_equal(window.data[0], window.index.astype(np.float32))
        assert window.index[-1] % 20 == 19  # whole blocks only
    thread.join()
    assert ring.latest_index("emg") is None and ring.poll(1.0).streams["emg.filtered"].index[-1] == 20 * n_blocks - 1


@pytest.mark.parametrize("capacity_s", [0.0, -1.0, math.inf, math.nan])
def test_bad_capacity_is_refused(capacity_s: float) -> None:
    with pytest.raises(ValueError, match="capacity_s"):
        RingBufferSink(capacity_s)


def test_bad_poll_window_is_refused() -> None:
    with pytest.raises(ValueError, match="window_s"):
        _ring().poll(0.0)


def _angles(first: int, n: int, thoracic_deg: float, sacral_deg: float) -> Block:
    """``trunk_angles`` rows with two sensors, held at these sagittal inclinations (100 Hz)."""
    names = [
        "lumbar_flexion",
        "lumbar_lateral_bend",
        "lumbar_axial_rotation",
        "thoracic_inclination",
        "thoracic_lateral_inclination",
        "sacral_inclination",
        "sacral_lateral_inclination",
    ]
    info = StreamInfo("trunk_angles", 100.0, tuple(ChannelInfo(name, ChannelKind.ANGLE, "deg") for name in names))
    values = {"lumbar_flexion": thoracic_deg - sacral_deg, "thoracic_inclination": thoracic_deg}
    values["sacral_inclination"] = sacral_deg
    return Block(info, np.vstack([np.full(n, values.get(name, 0.0)) for name in names]), first)


def test_posture_of_the_open_trial_and_now() -> None:
    ring = _ring()
    ring.write(_ramp(EMG, 0, 20))
    ring.write(_angles(0, 6000, 0.0, 0.0))  # standing for 60 s
    ring.write(_event("window", "es_left", 100_000, level_uv=5.0, set_point_uv=5.0, posture="standing", posture_id=0))
    ring.write(_event("phase", "es_left", 110_000, phase="rest"))
    ring.write(_event("phase", "es_left", 120_000, phase="contraction"))  # at 60 s
    left = ring.state.channel("emg/es_left")
    assert left.trial_open and left.trial_onset_s == 60.0
    assert (left.posture, left.trial_posture, left.trial_posture_id) == ("standing", "standing", 0)
    assert left.trial_posture_before is not None
    ring.write(_angles(6000, 100, -40.0, -30.0))  # reclined: the thoracic segment tilted 40 deg
    now = ring.state.posture_now
    assert now is not None
    assert compare_postures(left.trial_posture_before, now).difference_deg == pytest.approx(40.0, abs=0.01)
    ring.write(_event("trial", "es_left", 100_000, verdict="none"))  # an older trial: this one stays open
    assert ring.state.channel("emg/es_left").trial_open
    ring.write(_event("movement_artifact", "es_left", 120_000))  # it was a movement
    assert not ring.state.channel("emg/es_left").trial_open


def test_flexion_phase_events_make_spans() -> None:
    ring = _ring()
    ring.write(_ramp(EMG, 0, 20))
    for time_s, phase in ((1.0, "standing"), (3.0, "flexing"), (5.0, "full_flexion"), (8.0, None)):
        ring.write(AnalysisEvent({"type": "flexion_phase", "stream": "trunk_angles", "time_s": time_s, "phase": phase}))
    state = ring.state
    assert state.flexion_phase is None
    assert [(s.phase, s.start_s, s.end_s) for s in state.flexion_phases] == [
        ("standing", 1.0, 3.0),
        ("flexing", 3.0, 5.0),
        ("full_flexion", 5.0, 8.0),
    ]
