"""Aligning several devices on one timeline: their clock fits, refined by a shared physical event.

Each device's clock fit (:mod:`biofeed.timesync`) maps its samples to the *earliest* host time
their packets could arrive, which includes the link's smallest delay. That delay differs between
devices (another connection interval, another radio, USB versus BLE) by a few to tens of ms, and
no amount of arrival-time statistics can see it. A physical event both devices sense at the same
moment can:

- **a tap**: a sharp knock on the body or on both boards together, seen by every IMU as a spike of
  acceleration. :class:`SharedEventDetector` finds spikes of the acceleration's deviation from the
  mean of the 2 s before (the norm, so boards mounted in other orientations see the same signature)
  and keeps a 0.5 s window around each. :func:`align_devices` pairs each device's taps with the
  reference device's (fitted times within ``max_offset_s``) and finds the lag that maximises the
  normalised cross-correlation of the two windows, each placed in host time by its own fit (lags on
  a 0.1 ms grid around the peaks' difference, refined by a parabola through the best three);
- **a sync marker**: a MARKER packet of the same firmware-defined code (2..127) and label from both
  devices (firmware that marks a shared trigger line); its sample index is exact. A button press
  (code 1) belongs to one board and is never paired.

The residual offset of a device is the median over its paired events of (its fitted host time of
the event minus the reference's); subtracting it from the device's fitted times aligns it with the
reference. Markers win over taps; with neither the offset is 0 (``method`` ``fit``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from biofeed.blocks import AnalysisEvent, Block, ChannelKind, DeviceInfo, DeviceStatus, LinkEvent, Marker
from biofeed.timesync import ClockFit

__all__ = [
    "DEFAULT_MAX_OFFSET_S",
    "DEFAULT_MIN_TAP_G",
    "DeviceAlignment",
    "DeviceOffset",
    "SharedEventDetector",
    "SyncMarker",
    "TapSignature",
    "align_devices",
    "tap_offset_s",
]

DEFAULT_MIN_TAP_G = 1.0
"""Smallest deviation of the acceleration from its mean over the 2 s before taken as a tap, g."""
DEFAULT_MAX_OFFSET_S = 0.5
"""Events of two devices further apart than this after their fits are not the same event."""
_HALF_WINDOW_S = 0.25  # tap signature: this much either side of the peak
_REFRACTORY_S = 1.0  # one tap per second at most: a tap's ringing is not a second tap
_BASELINE_S = 2.0  # the baseline is the mean acceleration over this much device time before
_MAX_EVENTS = 64  # per device: bounded memory whatever the recording's length
_LAG_STEP_S = 1e-4
_FIRST_SYNC_CODE, _LAST_SYNC_CODE = 2, 127


@dataclass(frozen=True, eq=False)
class TapSignature:
    """A window of acceleration deviation around one tap, in one IMU stream's device time.

    Attributes
    ----------
    stream_name : str
        The IMU stream (the device's own name, without a label).
    sample_rate_hz : float
        Its nominal rate.
    first_index : int
        Sample index of ``deviation_g[0]``.
    peak_index : int
        Sample index of the largest deviation.
    deviation_g : ndarray, shape (n_samples,)
        Norm of the acceleration minus its mean over the 2 s before each sample, g.
    """

    stream_name: str
    sample_rate_hz: float
    first_index: int
    peak_index: int
    deviation_g: npt.NDArray[np.float64]

    def device_times_s(self) -> npt.NDArray[np.float64]:
        """Device time of each sample of the window, s, shape (n_samples,)."""
        return (self.first_index + np.arange(len(self.deviation_g))) / self.sample_rate_hz


@dataclass(frozen=True)
class SyncMarker:
    """A firmware sync MARKER (code 2..127) placed in its stream's device time.

    Attributes
    ----------
    stream_name : str
        The stream whose counter places it (the device's own name).
    sample_index : int
        Its sample index.
    sample_rate_hz : float
        That stream's nominal rate.
    code : int
        Marker code.
    label : str
        Marker label.
    """

    stream_name: str
    sample_index: int
    sample_rate_hz: float
    code: int
    label: str

    @property
    def device_time_s(self) -> float:
        """Device time of the marker, s."""
        return self.sample_index / self.sample_rate_hz


class _ImuTapState:
    """One IMU stream's recent acceleration and the tap being collected."""

    def __init__(self, name: str, sample_rate_hz: float, acc_rows: tuple[int, ...]) -> None:
        self.name = name
        self.rate_hz = sample_rate_hz
        self.acc_rows = acc_rows
        self.half = max(2, round(_HALF_WINDOW_S * sample_rate_hz))
        self.baseline = max(self.half, round(_BASELINE_S * sample_rate_hz))
        self.keep = self.baseline + 4 * self.half
        self.reset(0)

    def reset(self, first_index: int) -> None:
        self.acc = np.empty((len(self.acc_rows), 0))
        self.first_index = first_index  # sample index of acc[:, 0]
        self.reset_index = first_index  # the window's baselines reach no further back than this
        self.next_scan_index = first_index + self.half  # samples before this were searched
        self.pending_start: int | None = None

    def deviation_g(self) -> npt.NDArray[np.float64]:
        """Per buffered sample: norm of the acceleration minus the mean of up to ``baseline`` samples before it.

        Causal and defined by the data since the last reset alone, so the taps found do not depend
        on how the samples were cut into blocks.
        """
        n = self.acc.shape[1]
        sums = np.concatenate([np.zeros((len(self.acc_rows), 1)), np.cumsum(self.acc, axis=1)], axis=1)
        positions = np.arange(n)
        # the buffer holds at least `baseline` samples before every sample still searched, or all
        # of them since the reset
        starts = np.maximum(positions - self.baseline, 0)
        counts = positions - starts
        means = (sums[:, positions] - sums[:, starts]) / np.maximum(counts, 1)
        deviation: npt.NDArray[np.float64] = np.linalg.norm(self.acc - means, axis=0)
        deviation[counts == 0] = 0.0
        return deviation


class SharedEventDetector:
    """Finds the taps and sync markers of one device in its decoded items; also a sink.

    Parameters
    ----------
    min_tap_g : float
        Smallest deviation of the acceleration from its mean over the 2 s before taken as a tap, g.

    Attributes
    ----------
    taps : list of TapSignature
        Taps found, at most 64 (the first ones).
    markers : list of SyncMarker
        Sync markers seen, at most 64.

    Raises
    ------
    ValueError
        A non-positive ``min_tap_g``.
    """

    def __init__(self, *, min_tap_g: float = DEFAULT_MIN_TAP_G) -> None:
        if not (math.isfinite(min_tap_g) and min_tap_g > 0):
            raise ValueError(f"min_tap_g must be a positive number of g, got {min_tap_g!r}")
        self.min_tap_g = min_tap_g
        self.taps: list[TapSignature] = []
        self.markers: list[SyncMarker] = []
        self._imus: dict[str, _ImuTapState] = {}
        self._rates_hz: dict[str, float] = {}

    def write(self, item: Block | DeviceInfo | Marker | DeviceStatus | LinkEvent | AnalysisEvent) -> None:
        """Take one item of the device: its INFO names the IMU streams, their blocks are searched."""
        if isinstance(item, DeviceInfo):
            imus = {}
            for stream in item.streams:
                rows = tuple(i for i, c in enumerate(stream.channels) if c.kind is ChannelKind.ACC)
                state = self._imus.get(stream.name)
                if state is None or (state.rate_hz, state.acc_rows) != (stream.sample_rate_hz, rows):
                    state = _ImuTapState(stream.name, stream.sample_rate_hz, rows)
                if len(rows) == 3:
                    imus[stream.name] = state
            self._imus = imus
            self._rates_hz = {stream.name: stream.sample_rate_hz for stream in item.streams}
        elif isinstance(item, Block):
            state = self._imus.get(item.info.name)
            if state is not None and item.info.sample_rate_hz == state.rate_hz:
                self._add_block(item, state)
        elif isinstance(item, Marker) and _FIRST_SYNC_CODE <= item.code <= _LAST_SYNC_CODE:
            rate_hz = self._rates_hz.get(item.stream_name)  # a device-level marker has no stream time
            if rate_hz is not None and len(self.markers) < _MAX_EVENTS:
                self.markers.append(SyncMarker(item.stream_name, item.sample_index, rate_hz, item.code, item.label))

    def close(self) -> None:
        """Nothing to release."""

    def _add_block(self, block: Block, state: _ImuTapState) -> None:
        if block.gap_before or block.first_index != state.first_index + state.acc.shape[1]:
            state.reset(block.first_index)  # a gap breaks the window: start afresh after it
        state.acc = np.concatenate([state.acc, block.data[list(state.acc_rows)]], axis=1)
        while self._step(state):
            pass
        excess = state.acc.shape[1] - state.keep
        if excess > 0:
            state.acc = state.acc[:, excess:]
            state.first_index += excess

    def _step(self, state: _ImuTapState) -> bool:
        """Advance the search once; True when it should be called again."""
        end = state.first_index + state.acc.shape[1]
        if len(self.taps) >= _MAX_EVENTS or (end <= state.next_scan_index and state.pending_start is None):
            return False
        deviation = state.deviation_g()
        if state.pending_start is None:
            start = max(0, state.next_scan_index - state.first_index)
            above = np.flatnonzero(deviation[start:] >= self.min_tap_g)
            if not len(above):
                state.next_scan_index = end
                return False
            state.pending_start = state.first_index + start + int(above[0])
        pending = state.pending_start - state.first_index
        if state.acc.shape[1] < pending + 2 * state.half + 1:
            return False  # the window after the peak has not arrived yet
        peak = pending + int(np.argmax(deviation[pending : pending + state.half + 1]))
        window = deviation[peak - state.half : peak + state.half + 1].copy()
        first = state.first_index + peak - state.half
        self.taps.append(TapSignature(state.name, state.rate_hz, first, state.first_index + peak, window))
        state.pending_start = None
        state.next_scan_index = state.first_index + peak + round(_REFRACTORY_S * state.rate_hz)
        return True


def tap_offset_s(
    reference: TapSignature, reference_fit: ClockFit, other: TapSignature, other_fit: ClockFit
) -> tuple[float, float]:
    """Residual offset of one tap seen by two devices, after their clock fits.

    Parameters
    ----------
    reference, other : TapSignature
        The same tap, seen by each device.
    reference_fit, other_fit : ClockFit
        The fits of the two IMU streams.

    Returns
    -------
    offset_s : float
        The other device's fitted host time of the tap minus the reference's, s.
    correlation : float
        The normalised cross-correlation at that lag (1 = identical shapes).
    """
    ref_times = reference_fit.host_time_s(reference.device_times_s())
    other_times = other_fit.host_time_s(other.device_times_s())
    ref_values = reference.deviation_g - reference.deviation_g.mean()
    coarse_s = other_fit.host_time_s(other.peak_index / other.sample_rate_hz) - reference_fit.host_time_s(
        reference.peak_index / reference.sample_rate_hz
    )
    reach_s = 2.0 / min(reference.sample_rate_hz, other.sample_rate_hz)
    lags_s = coarse_s + np.arange(-reach_s, reach_s + _LAG_STEP_S / 2, _LAG_STEP_S)
    # the other device's signal, read at the reference's sample times shifted by each lag
    shifted = np.interp(ref_times[None, :] + lags_s[:, None], other_times, other.deviation_g)
    shifted -= shifted.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(shifted, axis=1) * np.linalg.norm(ref_values)
    correlations = np.divide(shifted @ ref_values, norms, out=np.zeros(len(lags_s)), where=norms > 0)
    best = int(np.argmax(correlations))
    lag_s = float(lags_s[best])
    if 0 < best < len(lags_s) - 1:
        left, middle, right = correlations[best - 1 : best + 2]
        curvature = left - 2 * middle + right
        if curvature < 0:
            lag_s += 0.5 * (left - right) / curvature * _LAG_STEP_S
    return lag_s, float(correlations[best])


@dataclass(frozen=True)
class DeviceOffset:
    """How one device's fitted times relate to the reference device's.

    Attributes
    ----------
    label : str
        The device.
    offset_s : float
        Its fitted host time of a shared event minus the reference's (median over events);
        subtract it from the device's fitted times to align them. 0 without shared events.
    method : str
        ``marker`` (sync markers), ``tap`` (acceleration taps), ``fit`` (clock fits only) or
        ``reference`` (the reference device itself).
    n_events : int
        Shared events paired.
    spread_s : float
        Largest minus smallest offset over the events (0 for fewer than two).
    correlation : float or None
        Taps only: the smallest normalised cross-correlation of the pairs.
    """

    label: str
    offset_s: float
    method: str
    n_events: int
    spread_s: float
    correlation: float | None

    def to_json(self) -> dict[str, Any]:
        """Return the offset as a JSON object (keys as the attributes, ``label`` left out)."""
        return {
            "offset_s": self.offset_s,
            "method": self.method,
            "n_events": self.n_events,
            "spread_s": self.spread_s,
            "correlation": self.correlation,
        }


@dataclass(frozen=True)
class DeviceAlignment:
    """The devices of one recording on the reference device's timeline.

    Attributes
    ----------
    reference : str
        The reference device's label (the first device).
    offsets : tuple of DeviceOffset
        One per device, in order, the reference's included (offset 0).
    """

    reference: str
    offsets: tuple[DeviceOffset, ...]

    def offset_s(self, label: str) -> float:
        """A device's residual offset, s (0 for an unknown label or the reference)."""
        return next((o.offset_s for o in self.offsets if o.label == label), 0.0)

    def to_json(self) -> dict[str, Any]:
        """Return ``{"reference": label, "devices": {label: offset object}}`` (the ``alignment`` of recording.json)."""
        return {"reference": self.reference, "devices": {o.label: o.to_json() for o in self.offsets}}


def _marker_offsets(
    reference: Sequence[SyncMarker],
    reference_fits: Mapping[str, ClockFit],
    other: Sequence[SyncMarker],
    other_fits: Mapping[str, ClockFit],
    max_offset_s: float,
) -> list[float]:
    offsets = []
    for marker in other:
        fit = other_fits.get(marker.stream_name)
        if fit is None:
            continue
        time_s = fit.host_time_s(marker.device_time_s)
        candidates = []
        for ref in reference:
            ref_fit = reference_fits.get(ref.stream_name)
            if ref_fit is not None and (ref.code, ref.label) == (marker.code, marker.label):
                difference = time_s - ref_fit.host_time_s(ref.device_time_s)
                if abs(difference) <= max_offset_s:
                    candidates.append(difference)
        if candidates:
            offsets.append(min(candidates, key=abs))
    return offsets


def _tap_offsets(
    reference: Sequence[TapSignature],
    reference_fits: Mapping[str, ClockFit],
    other: Sequence[TapSignature],
    other_fits: Mapping[str, ClockFit],
    max_offset_s: float,
) -> list[tuple[float, float]]:
    found = []
    for tap in other:
        fit = other_fits.get(tap.stream_name)
        if fit is None:
            continue
        time_s = fit.host_time_s(tap.peak_index / tap.sample_rate_hz)
        best: tuple[float, TapSignature, ClockFit] | None = None
        for ref in reference:
            ref_fit = reference_fits.get(ref.stream_name)
            if ref_fit is None:
                continue
            difference = time_s - ref_fit.host_time_s(ref.peak_index / ref.sample_rate_hz)
            if abs(difference) <= max_offset_s and (best is None or abs(difference) < abs(best[0])):
                best = (difference, ref, ref_fit)
        if best is not None:
            found.append(tap_offset_s(best[1], best[2], tap, fit))
    return found


def align_devices(
    events: Mapping[str, SharedEventDetector],
    fits: Mapping[str, Mapping[str, ClockFit]],
    *,
    max_offset_s: float = DEFAULT_MAX_OFFSET_S,
) -> DeviceAlignment:
    """Residual offsets of every device against the first, from their shared events.

    Parameters
    ----------
    events : mapping of label to SharedEventDetector
        Each device's taps and sync markers, in device order (the first is the reference).
    fits : mapping of label to (mapping of stream name to ClockFit)
        Each device's clock fit per stream (its main fit).
    max_offset_s : float
        Events further apart than this after the fits are not paired.

    Raises
    ------
    ValueError
        No device, or a non-positive ``max_offset_s``.
    """
    if not events:
        raise ValueError("align_devices needs at least one device")
    if not (math.isfinite(max_offset_s) and max_offset_s > 0):
        raise ValueError(f"max_offset_s must be a positive number of seconds, got {max_offset_s!r}")
    labels = list(events)
    reference = labels[0]
    ref_events, ref_fits = events[reference], fits.get(reference, {})
    offsets = [DeviceOffset(reference, 0.0, "reference", 0, 0.0, None)]
    for label in labels[1:]:
        other_events, other_fits = events[label], fits.get(label, {})
        marker_offsets = _marker_offsets(ref_events.markers, ref_fits, other_events.markers, other_fits, max_offset_s)
        if marker_offsets:
            values = np.asarray(marker_offsets)
            offsets.append(
                DeviceOffset(label, float(np.median(values)), "marker", len(values), float(np.ptp(values)), None)
            )
            continue
        taps = _tap_offsets(ref_events.taps, ref_fits, other_events.taps, other_fits, max_offset_s)
        if taps:
            values = np.asarray([offset for offset, _ in taps])
            correlation = min(c for _, c in taps)
            offsets.append(
                DeviceOffset(label, float(np.median(values)), "tap", len(values), float(np.ptp(values)), correlation)
            )
        else:
            offsets.append(DeviceOffset(label, 0.0, "fit", 0, 0.0, None))
    return DeviceAlignment(reference, tuple(offsets))
