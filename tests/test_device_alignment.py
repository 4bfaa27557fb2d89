"""Shared events between devices: tap detection, the tap's cross-correlation, pairing and markers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeed.blocks import Block, ChannelInfo, ChannelKind, DeviceInfo, Marker, StreamInfo
from biofeed.device_alignment import SharedEventDetector, SyncMarker, TapSignature, align_devices, tap_offset_s
from biofeed.timesync import ClockFit

RATE_HZ = 100.0
_IMU = StreamInfo(
    "imu",
    RATE_HZ,
    tuple(ChannelInfo(n, ChannelKind.ACC, "g") for n in ("acc_x", "acc_y", "acc_z"))
    + tuple(ChannelInfo(n, ChannelKind.GYRO, "deg/s") for n in ("gyro_x", "gyro_y", "gyro_z")),
    "dev",
    2,
)
_EMG = StreamInfo("emg", 1000.0, (ChannelInfo("es", ChannelKind.EMG, "uV"),), "dev", 1)
_DEVICE = DeviceInfo("dev", (1, 0, 0), "test", (_EMG, _IMU))


def _pulse(times_s: np.ndarray, at_s: float, width_s: float = 0.012) -> np.ndarray:
    return np.asarray(np.exp(-0.5 * ((times_s - at_s) / width_s) ** 2))


def _imu_samples(duration_s: float, taps_s: list[float], seed: int = 0) -> np.ndarray:
    """Gravity on x, a slow 60 deg bend at 4..6 s, noise, and 1.5 g taps on z; shape (6, n)."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(duration_s * RATE_HZ)) / RATE_HZ
    angle = np.deg2rad(60) * np.clip((t - 4.0) / 2.0, 0, 1)
    acc = np.stack([np.cos(angle), np.zeros_like(t), np.sin(angle)]) + rng.normal(0, 0.003, (3, len(t)))
    for tap_s in taps_s:
        acc[2] += 1.5 * _pulse(t, tap_s)
    return np.concatenate([acc, rng.normal(0, 0.05, (3, len(t)))])


def _detect(samples: np.ndarray, block_sizes: list[int], *, gap_at: int | None = None) -> SharedEventDetector:
    """Feed the samples in blocks of the sizes given (cycled); 50 samples go missing before ``gap_at``."""
    detector = SharedEventDetector()
    detector.write(_DEVICE)
    position = shift = k = 0
    while position < samples.shape[1]:
        n = block_sizes[k % len(block_sizes)]
        gap = 50 if position == gap_at else 0
        shift += gap
        detector.write(Block(_IMU, samples[:, position : position + n], position + shift, gap))
        position += n
        k += 1
    return detector


def test_taps_are_found_once_each_whatever_the_blocks_and_slow_bends_are_not() -> None:
    samples = _imu_samples(12.0, [3.213, 7.5, 7.9, 10.0])
    by_fives = _detect(samples, [5])
    peaks = [tap.peak_index for tap in by_fives.taps]
    assert peaks == [321, 750, 1000]  # 7.9 s is within a second of the tap before: its ringing, not a tap
    by_others = _detect(samples, [1, 23, 7, 300])
    assert [t.peak_index for t in by_others.taps] == peaks
    for a, b in zip(by_fives.taps, by_others.taps, strict=True):
        # equal up to rounding: the running sums start at other samples
        assert a.first_index == b.first_index and np.allclose(a.deviation_g, b.deviation_g, rtol=1e-9, atol=1e-12)
    tap = by_fives.taps[0]
    assert tap.stream_name == "imu" and tap.deviation_g.max() > 1.3 and len(tap.deviation_g) == 51
    assert _detect(_imu_samples(12.0, []), [5]).taps == []


def test_a_gap_restarts_the_search_and_markers_outside_sync_codes_are_ignored() -> None:
    samples = _imu_samples(6.0, [1.0, 3.0])
    detector = _detect(samples, [5], gap_at=200)  # the second tap comes 50 samples later, after a gap
    assert [t.peak_index for t in detector.taps] == [100, 350]
    detector.write(Marker("emg", 500, 1, "button"))
    detector.write(Marker("emg", 600, 9, "sync"))
    detector.write(Marker("", 700, 9, "device-level"))
    assert detector.markers == [SyncMarker("emg", 600, 1000.0, 9, "sync")]
    assert detector.markers[0].device_time_s == 0.6
    with pytest.raises(ValueError, match="min_tap_g"):
        SharedEventDetector(min_tap_g=0)


@settings(max_examples=25, deadline=None)
@given(residual_s=st.floats(-0.02, 0.02), phase=st.floats(0, 1), ppm=st.floats(-100, 100))
def test_the_cross_correlation_finds_the_residual_offset_to_a_fraction_of_a_sample(
    residual_s: float, phase: float, ppm: float
) -> None:
    tap_s = 1000.0  # host time of the knock
    reference_fit = ClockFit(990.0, 1.0, 0.0, 100.0, 1000, 1.0)
    # the other device: another clock, and fitted host times late by residual_s
    other_fit = ClockFit(980.0 + phase / RATE_HZ, 1 / (1 + ppm * 1e-6), 0.0, 100.0, 1000, 1.0)

    def signature(fit: ClockFit, late_s: float) -> TapSignature:
        peak = round(fit.device_time_s(tap_s + late_s) * RATE_HZ)
        first = peak - 25
        times = fit.host_time_s((first + np.arange(51)) / RATE_HZ) - late_s  # when each sample was taken
        return TapSignature("imu", RATE_HZ, first, peak, 1.5 * _pulse(times, tap_s))

    offset_s, correlation = tap_offset_s(
        signature(reference_fit, 0.0), reference_fit, signature(other_fit, residual_s), other_fit
    )
    assert offset_s == pytest.approx(residual_s, abs=0.3e-3)
    assert correlation > 0.99


def _events(taps: list[TapSignature], markers: list[SyncMarker]) -> SharedEventDetector:
    detector = SharedEventDetector()
    detector.taps = taps
    detector.markers = markers
    return detector


def test_markers_win_over_taps_and_events_too_far_apart_are_not_paired() -> None:
    fit = ClockFit(0.0, 1.0, 0.0, 100.0, 100, 1.0)
    times = np.arange(51) / RATE_HZ
    tap = TapSignature("imu", RATE_HZ, 500, 525, _pulse(times, 0.25))
    late_tap = TapSignature("imu", RATE_HZ, 500, 525, _pulse(times, 0.254))
    fits = {"a": {"imu": fit, "emg": fit}, "b": {"imu": fit, "emg": fit}}
    marker_a = SyncMarker("emg", 5000, 1000.0, 7, "sync")
    marker_b = SyncMarker("emg", 5003, 1000.0, 7, "sync")
    with_markers = align_devices({"a": _events([tap], [marker_a]), "b": _events([late_tap], [marker_b])}, fits)
    assert with_markers.offsets[1].method == "marker"
    assert with_markers.offset_s("b") == pytest.approx(0.003)
    taps_only = align_devices({"a": _events([tap], []), "b": _events([late_tap], [])}, fits)
    assert taps_only.offsets[1].method == "tap"
    assert taps_only.offset_s("b") == pytest.approx(0.004, abs=0.3e-3)
    far = TapSignature("imu", RATE_HZ, 5500, 5525, _pulse(times, 0.25))  # 50 s later
    unpaired = align_devices({"a": _events([tap], []), "b": _events([far], [])}, fits)
    assert (unpaired.offsets[1].method, unpaired.offset_s("b")) == ("fit", 0.0)
    assert unpaired.to_json()["devices"]["a"]["method"] == "reference"
    with pytest.raises(ValueError, match="at least one device"):
        align_devices({}, {})
    with pytest.raises(ValueError, match="max_offset_s"):
        align_devices({"a": _events([], [])}, {}, max_offset_s=0)
