"""What the live view shows, kept in bounded memory by the worker thread and polled by the GUI.

:class:`RingBufferSink` is an acquisition sink (``write(item)``, ``close()``): the worker thread
writes every item into it and never waits for a reader. It keeps

- per block stream, the last ``capacity_s`` device seconds of samples in a ring (the device's raw EMG
  streams are not stored by default: the live view draws the pipeline's ``<stream>.filtered`` and
  ``<stream>.envelope`` display streams); a gap is stored as one NaN column, so a plot draws a break.
  The device's own streams are those of its INFO; any other block stream is derived (display
  streams, ``trunk_angles``);
- per EMG channel, the latest analysis state (:class:`ChannelState`): noise floor, set point, the set
  point before the current trial, the last 1 s level, the last 250 ms envelope value, the phase and
  the recent phase spans, the session's trials, signal faults, ECG subtraction, contact and clipping
  from the device's STATUS;
- the device: its INFO, battery, link state, markers, warnings, samples lost, measured rates, and the
  sample-to-envelope latency of the acquisition path;
- with an IMU: the posture of the trunk now (the "up" direction of each trunk segment, from the last
  ``trunk_angles`` block) and, per channel, its posture label (``window`` events) and the posture over
  the 30 s before the open trial's onset, for the posture-match indicator; the phase of a
  flexion-relaxation cycle (``flexion_phase`` events of :class:`~biofeed.live.trunk.TrunkAngleSink`,
  ``time_s`` in device seconds).

A reader calls :meth:`RingBufferSink.poll`: it gets copies (never views of the rings) and version
counters, so a GUI redraws only what changed. Old samples are overwritten; the recording, fed by the
worker before any sink, keeps everything.

Time: every stream's device time is ``index / sample_rate_hz``; the live view measures it from the
first sample of the first EMG stream (``time_origin_s``), the same zero the analysis events'
``time_s`` use.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from biofeed.blocks import AnalysisEvent, Block, DeviceInfo, DeviceStatus, LinkEvent, Marker, StreamInfo
from biofeed.dsp.imu.posture import Posture
from biofeed.dsp.pandiculation import PRE_POSTURE_S

__all__ = [
    "DEFAULT_CAPACITY_S",
    "TILT_ROWS",
    "TRUNK_ANGLES_STREAM",
    "ChannelState",
    "LiveSnapshot",
    "LiveState",
    "MarkerNote",
    "PhaseSpan",
    "RingBufferSink",
    "StreamWindow",
]

DEFAULT_CAPACITY_S = 300.0
"""Device seconds kept per stream: the longest time window the live view offers."""

_ENVELOPE_SUFFIX = ".envelope"
_MAX_FAULTS = 50  # signal faults kept per channel (the latest; a session rarely has more)
_MAX_MARKERS = 500
_MAX_WARNINGS = 50
_ARRIVALS_KEPT = 512  # raw blocks remembered for the latency lookup (5 s of 10 ms packets)
_RATE_WINDOW_S = 5.0  # host seconds over which receive rates are measured
_LATENCIES_KEPT = 1000
_SAME_ONSET_S = 1.0  # a trial event dated this close to the open contraction's onset closes it

TRUNK_ANGLES_STREAM = "trunk_angles"
"""The stream :class:`~biofeed.dsp.imu.angles.TrunkAngles` writes."""
TILT_ROWS: tuple[tuple[str, str, str], ...] = (
    ("thoracic", "thoracic_inclination", "thoracic_lateral_inclination"),
    ("sacral", "sacral_inclination", "sacral_lateral_inclination"),
)
"""Per trunk segment: its name and its sagittal and lateral inclination rows in ``trunk_angles``."""

Item = Block | DeviceInfo | Marker | DeviceStatus | LinkEvent | AnalysisEvent


@dataclass(frozen=True)
class PhaseSpan:
    """A stretch of one phase on one channel.

    Attributes
    ----------
    phase : str
        ``rest``, ``contraction``, ``release`` (or ``calibrating``).
    start_s : float
        Start, seconds from the time origin.
    end_s : float or None
        End; None while it lasts.
    """

    phase: str
    start_s: float
    end_s: float | None = None


@dataclass(frozen=True)
class ChannelState:
    """The latest analysis of one EMG channel (every level in uV).

    Attributes
    ----------
    stream, channel : str
        Stream and channel names.
    site : str
        Electrode placement from the device INFO.
    noise_floor_uv : float or None
        None until the floor is fixed (the first 10 s of a stream: "calibrating noise floor").
    set_point_uv : float or None
        Current set point (noise-corrected), None while too few rest windows.
    trial_reference_uv : float or None
        The set point when the current or last contraction began: what the rest after it is
        compared with. Before the first contraction, the current set point.
    level_uv : float or None
        The last 1 s window's noise-corrected RMS.
    level_rest : bool
        That window was rest (no contraction).
    envelope_uv : float or None
        The last 250 ms RMS (noise not removed).
    envelope_corrected_uv : float or None
        The same with the noise floor removed in the power domain (the meter's live level).
    phase : str
        Current phase: ``calibrating`` (before the first phase event), ``rest``, ``contraction`` or
        ``release``.
    n_contractions : int
        Contractions begun from rest so far (re-bracing during a release not counted).
    phases : tuple of PhaseSpan
        Phase spans within the capacity, oldest first; the last one is open.
    trials : tuple of dict
        The session's ``trial`` events of this channel (docs: :mod:`biofeed.dsp.pandiculation`).
    faults : tuple of dict
        Recent ``signal_fault`` events (kind, start_s, end_s).
    lead_off, saturated : bool
        Flags of the device's last STATUS for this channel.
    ecg_subtracting : bool
        QRS template subtraction is on.
    posture : str or None
        Label of the current posture (the last ``window`` event's; None without an IMU).
    posture_id : int or None
        Its id.
    trial_open : bool
        A contraction began from rest and neither its ``trial`` nor a ``movement_artifact`` event has
        come yet.
    trial_onset_s : float or None
        Onset of the last contraction begun from rest, seconds from the time origin.
    trial_posture, trial_posture_id : str or int or None
        The posture then.
    trial_posture_before : Posture or None
        The trunk's posture over the 30 s before that onset (None without trunk angles then).
    """

    stream: str
    channel: str
    site: str = ""
    noise_floor_uv: float | None = None
    set_point_uv: float | None = None
    trial_reference_uv: float | None = None
    level_uv: float | None = None
    level_rest: bool = True
    envelope_uv: float | None = None
    phase: str = "calibrating"
    n_contractions: int = 0
    phases: tuple[PhaseSpan, ...] = ()
    trials: tuple[dict[str, Any], ...] = ()
    faults: tuple[dict[str, Any], ...] = ()
    lead_off: bool = False
    saturated: bool = False
    ecg_subtracting: bool = False
    posture: str | None = None
    posture_id: int | None = None
    trial_open: bool = False
    trial_onset_s: float | None = None
    trial_posture: str | None = None
    trial_posture_id: int | None = None
    trial_posture_before: Posture | None = None

    @property
    def key(self) -> str:
        """``stream/channel``, unique within a device."""
        return f"{self.stream}/{self.channel}"

    @property
    def envelope_corrected_uv(self) -> float | None:
        """``envelope_uv`` with the noise floor removed in the power domain; None without both."""
        if self.envelope_uv is None or self.noise_floor_uv is None:
            return None
        return math.sqrt(max(self.envelope_uv**2 - self.noise_floor_uv**2, 0.0))


@dataclass(frozen=True)
class MarkerNote:
    """A marker placed on the live time axis.

    Attributes
    ----------
    time_s : float
        Seconds from the time origin.
    code : int
        1 device button; 128-255 host markers.
    label : str
    """

    time_s: float
    code: int
    label: str


@dataclass(frozen=True)
class LiveState:
    """Everything but the samples, as one immutable value (shared, never copied, between polls).

    Attributes
    ----------
    version : int
        Changes whenever anything in the state changes.
    time_origin_s : float or None
        Device time of the first EMG sample (the zero of every ``*_s`` here).
    now_s : float or None
        Latest device time seen in any stream, from the origin.
    channels : tuple of ChannelState
        Per EMG channel, in device order.
    trials : tuple of dict
        Every ``trial`` event of the session, in arrival order.
    device : DeviceInfo or None
    battery_pct, battery_mv : int or None
    link_state : str or None
        ``connected``, ``lost``, ``reconnecting``; None for sources that report none.
    link_detail : str
    markers : tuple of MarkerNote
    warnings : tuple of str
        Pipeline warnings (a low rate, a stream not analysed) and the mains decision in words.
    mains : dict or None
        The last ``mains`` event.
    samples_lost : dict of str to int
        Samples lost in gaps, per raw stream.
    rates_hz : dict of str to float
        Samples per second of host time over the last seconds, per raw stream.
    latest_index : dict of str to int
        Per raw stream, the device index of the newest sample.
    latency_s : float or None
        Median sample-to-envelope latency of the last second's envelope values (arrival of the
        newest sample an envelope value covers -> the value in this buffer).
    posture_now : Posture or None
        The trunk's posture over the last ``trunk_angles`` block (None without trunk angles); compare
        it with :func:`~biofeed.dsp.imu.posture.compare_postures`.
    flexion_phase : str or None
        Phase of a flexion-relaxation cycle (:data:`biofeed.dsp.flexion_phase.PHASES`); None when
        unknown or without trunk angles.
    flexion_phases : tuple of PhaseSpan
        Its spans within the capacity, oldest first.
    closed : bool
        The acquisition has ended.
    """

    version: int = 0
    time_origin_s: float | None = None
    now_s: float | None = None
    channels: tuple[ChannelState, ...] = ()
    trials: tuple[dict[str, Any], ...] = ()
    device: DeviceInfo | None = None
    battery_pct: int | None = None
    battery_mv: int | None = None
    link_state: str | None = None
    link_detail: str = ""
    markers: tuple[MarkerNote, ...] = ()
    warnings: tuple[str, ...] = ()
    mains: dict[str, Any] | None = None
    samples_lost: dict[str, int] = field(default_factory=dict)
    rates_hz: dict[str, float] = field(default_factory=dict)
    latest_index: dict[str, int] = field(default_factory=dict)
    latency_s: float | None = None
    posture_now: Posture | None = None
    flexion_phase: str | None = None
    flexion_phases: tuple[PhaseSpan, ...] = ()
    closed: bool = False

    def channel(self, key: str) -> ChannelState | None:
        """The channel named ``stream/channel`` (None when unknown)."""
        for state in self.channels:
            if state.key == key:
                return state
        return None


@dataclass(frozen=True)
class StreamWindow:
    """The last seconds of one stream, copied out of its ring.

    Attributes
    ----------
    info : StreamInfo
    index : ndarray, shape (n,), int64
        Device sample index of each column.
    data : ndarray, shape (n_channels, n), float32
        Samples in the channels' units; an all-NaN column marks a gap.
    version : int
        The stream's write counter when copied.
    """

    info: StreamInfo
    index: npt.NDArray[np.int64]
    data: npt.NDArray[np.float32]
    version: int

    def times_s(self, origin_s: float) -> npt.NDArray[np.float64]:
        """Column times in seconds from ``origin_s`` (device seconds), shape (n,)."""
        return np.asarray(self.index / self.info.sample_rate_hz - origin_s, dtype=np.float64)


@dataclass(frozen=True)
class LiveSnapshot:
    """What one poll returns.

    Attributes
    ----------
    state : LiveState
    streams : dict of str to StreamWindow
        Only the streams asked for that changed since the versions the caller passed.
    versions : dict of str to int
        The write counter of every stored stream (pass it back to the next poll).
    """

    state: LiveState
    streams: dict[str, StreamWindow]
    versions: dict[str, int]


class _Ring:
    """The last ``capacity`` columns of one stream (float32), with their device indices."""

    def __init__(self, info: StreamInfo, capacity: int) -> None:
        self.info = info
        self.capacity = capacity
        # filled now, so the whole ring is resident from the start: memory does not creep up as it fills
        self.index = np.full(capacity, -1, dtype=np.int64)
        self.data = np.full((info.n_channels, capacity), np.nan, dtype=np.float32)
        self.n_written = 0  # columns ever written; the next goes to n_written % capacity
        self.version = 0

    @property
    def n_held(self) -> int:
        return min(self.n_written, self.capacity)

    def _position(self, k: int) -> int:
        """Physical column of the k-th oldest held column."""
        return (self.n_written - self.n_held + k) % self.capacity

    def last_index(self) -> int | None:
        return int(self.index[(self.n_written - 1) % self.capacity]) if self.n_written else None

    def append(self, block: Block) -> None:
        last = self.last_index()
        if last is not None and block.first_index <= last:
            self.n_written = 0  # the device's counter went back (a reset): a new timeline
        index = np.arange(block.first_index, block.end_index, dtype=np.int64)
        data = block.data.astype(np.float32)
        if block.gap_before and self.n_written:
            # one NaN column just before the block: the plot breaks there
            index = np.concatenate(([block.first_index - 1], index))
            data = np.concatenate((np.full((data.shape[0], 1), np.nan, dtype=np.float32), data), axis=1)
        n = index.shape[0]
        if n > self.capacity:
            index, data, n = index[-self.capacity :], data[:, -self.capacity :], self.capacity
        start = self.n_written % self.capacity
        first = min(n, self.capacity - start)
        self.index[start : start + first] = index[:first]
        self.data[:, start : start + first] = data[:, :first]
        if first < n:
            self.index[: n - first] = index[first:]
            self.data[:, : n - first] = data[:, first:]
        self.n_written += n
        self.version += 1

    def since(self, start_index: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Copies of the held columns whose index is >= ``start_index``."""
        n_held = self.n_held
        k = bisect.bisect_left(range(n_held), start_index, key=lambda j: int(self.index[self._position(j)]))
        n = n_held - k
        begin = self._position(k)
        if begin + n <= self.capacity:
            return self.index[begin : begin + n].copy(), self.data[:, begin : begin + n].copy()
        tail = self.capacity - begin
        return (
            np.concatenate((self.index[begin:], self.index[: n - tail])),
            np.concatenate((self.data[:, begin:], self.data[:, : n - tail]), axis=1),
        )


@dataclass
class _RawStream:
    """What is kept of a device stream besides its samples: arrival times, rate, gaps."""

    info: StreamInfo
    first_index: int
    end_index: int
    samples_lost: int = 0
    arrivals: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=_ARRIVALS_KEPT))
    received: deque[tuple[float, int]] = field(default_factory=deque)  # (host time, samples) for the rate
    n_received: int = 0  # samples in ``received``


def _posture(angles: Block, use: npt.NDArray[np.bool_]) -> Posture | None:
    """The mean "up" of each trunk segment over the samples ``use`` of a ``trunk_angles`` block.

    Sagittal ``s`` and lateral ``l`` inclination put "up" at ``(cos l cos s, -sin l cos s, sin s)`` in
    body coordinates (:func:`~biofeed.dsp.imu.angles.segment_inclination_deg`): well defined lying
    too, where ``l`` is not.
    """
    names = [c.name for c in angles.info.channels]
    up = {}
    for segment, sagittal, lateral in TILT_ROWS:
        if sagittal in names and lateral in names:
            s = np.radians(angles.data[names.index(sagittal), use])
            lat = np.radians(angles.data[names.index(lateral), use])
            up[segment] = np.array(
                [np.mean(np.cos(lat) * np.cos(s)), np.mean(-np.sin(lat) * np.cos(s)), np.mean(np.sin(s))]
            )
    fs = angles.info.sample_rate_hz
    try:
        return Posture.from_up_vectors(up, angles.first_index / fs, angles.end_index / fs)
    except ValueError:  # no segment, or opposite directions averaging to nothing
        return None


def _optional_float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class RingBufferSink:
    """Thread-safe, bounded store of the live view's data; an acquisition sink.

    Parameters
    ----------
    capacity_s : float
        Device seconds of samples kept per stream.
    store_raw_emg : bool
        Also keep the device's raw EMG samples (by default only their display streams).
    wall_clock : callable returning float
        Host time (``time.time``, the clock of ``Block.received_at``) for latencies and rates.
    latency_history : int
        Sample-to-envelope latencies kept for :meth:`latencies_s`.

    Notes
    -----
    ``write`` takes a lock for a few microseconds per block and never waits on a reader; ``poll``
    holds it while it copies the samples asked for.
    """

    def __init__(
        self,
        capacity_s: float = DEFAULT_CAPACITY_S,
        *,
        store_raw_emg: bool = False,
        wall_clock: Callable[[], float] = time.time,
        latency_history: int = _LATENCIES_KEPT,
    ) -> None:
        if not (math.isfinite(capacity_s) and capacity_s > 0):
            raise ValueError(f"capacity_s must be a positive number of seconds, got {capacity_s!r}")
        if latency_history < 1:
            raise ValueError(f"latency_history must be >= 1, got {latency_history}")
        self.capacity_s = float(capacity_s)
        self.store_raw_emg = store_raw_emg
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._rings: dict[str, _Ring] = {}
        self._raw: dict[str, _RawStream] = {}
        self._channels: dict[str, ChannelState] = {}
        self._envelopes_uv: dict[str, float | None] = {}  # per channel key, merged into the state by a poll
        self._trials: list[dict[str, Any]] = []
        self._markers: deque[MarkerNote] = deque(maxlen=_MAX_MARKERS)
        self._warnings: deque[str] = deque(maxlen=_MAX_WARNINGS)
        self._latencies: deque[tuple[float, float]] = deque(maxlen=latency_history)  # (host time, latency)
        self._state = LiveState()
        self._version = 0
        self._origin_s: float | None = None
        self._now_s: float | None = None
        self._fields: dict[str, Any] = {}
        self._device_streams: set[str] = set()  # the device's own streams (the rest is derived)

    # -- the worker's side ---------------------------------------------------------------------

    def write(self, item: Item) -> None:
        """Take one item from the acquisition (any thread; never blocks for long)."""
        with self._lock:
            if isinstance(item, Block):
                self._on_block(item)
            elif isinstance(item, AnalysisEvent):
                self._on_event(item.data)
            elif isinstance(item, DeviceInfo):
                self._on_device(item)
            elif isinstance(item, DeviceStatus):
                self._on_status(item)
            elif isinstance(item, LinkEvent):
                self._fields["link_state"] = item.state.value
                self._fields["link_detail"] = item.detail
            elif isinstance(item, Marker):
                self._on_marker(item)
            self._version += 1

    def close(self) -> None:
        """The acquisition ended: the state says so (``closed``); the data stays readable."""
        with self._lock:
            self._fields["closed"] = True
            self._version += 1

    def _on_block(self, block: Block) -> None:
        info = block.info
        name = info.name
        if name in self._device_streams:
            self._on_raw_block(block)
        if name not in self._device_streams or not info.is_emg or self.store_raw_emg:
            ring = self._rings.get(name)
            if ring is None or ring.info != info:
                capacity = max(2, math.ceil(self.capacity_s * info.sample_rate_hz) + 1)
                ring = self._rings[name] = _Ring(info, capacity)
            if block.n_samples or block.gap_before:
                ring.append(block)
        if name.endswith(_ENVELOPE_SUFFIX) and block.n_samples:
            self._on_envelope(block)
        if name == TRUNK_ANGLES_STREAM and block.n_samples:
            self._fields["posture_now"] = _posture(block, np.ones(block.n_samples, dtype=bool))
        if block.n_samples:
            end_s = (block.end_index - 1) / info.sample_rate_hz
            if self._origin_s is not None:
                self._now_s = max(self._now_s or -math.inf, end_s - self._origin_s)

    def _on_raw_block(self, block: Block) -> None:
        info = block.info
        raw = self._raw.get(info.name)
        if raw is None or raw.info != info:
            raw = self._raw[info.name] = _RawStream(info, block.first_index, block.first_index)
            if info.is_emg and self._origin_s is None:
                self._origin_s = block.first_index / info.sample_rate_hz
                self._ensure_channels(info)
        raw.end_index = block.end_index
        raw.samples_lost += block.gap_before
        if math.isfinite(block.received_at):
            raw.arrivals.append((block.end_index, block.received_at))
            raw.received.append((block.received_at, block.n_samples))
            raw.n_received += block.n_samples
            while raw.received and raw.received[0][0] < block.received_at - _RATE_WINDOW_S:
                raw.n_received -= raw.received.popleft()[1]

    def _ensure_channels(self, info: StreamInfo) -> None:
        for channel in info.channels:
            key = f"{info.name}/{channel.name}"
            if key not in self._channels:
                self._channels[key] = ChannelState(info.name, channel.name, channel.site)

    def _on_envelope(self, block: Block) -> None:
        stream = block.info.name[: -len(_ENVELOPE_SUFFIX)]
        for channel, value in zip(block.info.channels, block.data[:, -1].tolist(), strict=True):
            key = f"{stream}/{channel.name}"
            if key in self._channels:
                self._envelopes_uv[key] = value if math.isfinite(value) else None
        raw = self._raw.get(stream)
        if raw is None or not math.isfinite(block.received_at):
            return
        # Envelope value k covers device samples up to k * h - 1 (h raw samples per hop).
        hop = round(raw.info.sample_rate_hz / block.info.sample_rate_hz)
        now = self._wall_clock()
        for k in range(block.first_index, block.end_index):
            self._latencies.append((now, now - self._arrival(raw, k * hop - 1, block.received_at)))

    @staticmethod
    def _arrival(raw: _RawStream, sample_index: int, current_arrival: float) -> float:
        """Host time the block holding ``sample_index`` arrived (the block being processed if not yet stored)."""
        arrival = current_arrival
        for end_index, received_at in reversed(raw.arrivals):  # newest first: usually a few blocks back
            if end_index <= sample_index:
                break
            arrival = received_at
        return arrival

    def _on_device(self, info: DeviceInfo) -> None:
        self._fields["device"] = info
        self._device_streams = {stream.name for stream in info.streams}
        for stream in info.streams:
            if stream.is_emg:
                self._ensure_channels(stream)

    def _on_status(self, status: DeviceStatus) -> None:
        self._fields["battery_pct"] = status.battery_pct
        self._fields["battery_mv"] = status.battery_mv
        raw = self._raw.get(status.stream_name)
        if raw is None:
            return
        for c, channel in enumerate(raw.info.channels):
            state = self._channels.get(f"{status.stream_name}/{channel.name}")
            if state is not None:
                lead_off = c < len(status.lead_off) and status.lead_off[c]
                saturated = c < len(status.saturated) and status.saturated[c]
                if (state.lead_off, state.saturated) != (lead_off, saturated):
                    self._channels[state.key] = replace(state, lead_off=lead_off, saturated=saturated)

    def _on_marker(self, marker: Marker) -> None:
        raw = self._raw.get(marker.stream_name)
        if raw is None or self._origin_s is None:
            return
        time_s = marker.sample_index / raw.info.sample_rate_hz - self._origin_s
        self._markers.append(MarkerNote(time_s, marker.code, marker.label))

    def _on_event(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "flexion_phase":
            self._on_flexion_phase(event)
            return
        if kind == "warning":
            self._warnings.append(str(event.get("text", "")))
            return
        if kind == "mains":
            self._fields["mains"] = dict(event)
            return
        state = self._channels.get(f"{event.get('stream')}/{event.get('channel')}")
        if state is None:
            return
        time_s = self._event_time_s(event)
        if kind == "noise_floor":
            state = replace(state, noise_floor_uv=_optional_float(event.get("noise_floor_uv")))
        elif kind == "window":
            set_point = _optional_float(event.get("set_point_uv"))
            reference = state.trial_reference_uv
            if state.n_contractions == 0 and set_point is not None:
                reference = set_point  # no trial yet: the reference follows the set point
            state = replace(
                state,
                set_point_uv=set_point,
                trial_reference_uv=reference,
                level_uv=_optional_float(event.get("level_uv")),
                level_rest=bool(event.get("rest", True)),
                posture=event.get("posture"),
                posture_id=event.get("posture_id"),
            )
        elif kind == "phase":
            state = self._on_phase(state, str(event.get("phase")), time_s)
        elif kind == "trial":
            trial = dict(event)
            state = replace(state, trials=(*state.trials, trial), trial_open=self._still_open(state, time_s))
            self._trials.append(trial)
        elif kind == "movement_artifact":  # the contraction was a movement, not a trial
            state = replace(state, trial_open=self._still_open(state, time_s))
        elif kind == "signal_fault":
            state = replace(state, faults=(*state.faults[-(_MAX_FAULTS - 1) :], dict(event)))
        elif kind == "ecg":
            state = replace(state, ecg_subtracting=bool(event.get("subtracting")))
        self._channels[state.key] = state

    def _event_time_s(self, event: Mapping[str, Any]) -> float:
        raw = self._raw.get(str(event.get("stream")))
        if raw is None or self._origin_s is None:
            return float(event.get("time_s") or 0.0)
        return float(event["sample_index"]) / raw.info.sample_rate_hz - self._origin_s

    def _spans_after(self, spans: tuple[PhaseSpan, ...], phase: str | None, time_s: float) -> tuple[PhaseSpan, ...]:
        """``spans`` with the open one ended at ``time_s``, ``phase`` begun then, those past the capacity dropped."""
        kept = list(spans)
        if kept and kept[-1].end_s is None:
            kept[-1] = replace(kept[-1], end_s=time_s)
        if phase is not None:
            kept.append(PhaseSpan(phase, time_s))
        if self._now_s is not None:
            oldest_s = self._now_s - self.capacity_s
            kept = [s for s in kept if s.end_s is None or s.end_s >= oldest_s]
        return tuple(kept)

    def _on_phase(self, state: ChannelState, phase: str, time_s: float) -> ChannelState:
        previous = state.phase
        state = replace(state, phase=phase, phases=self._spans_after(state.phases, phase, time_s))
        if phase == "contraction" and previous in ("calibrating", "rest"):
            state = replace(
                state,
                trial_reference_uv=state.set_point_uv,  # the rest after this trial is judged against this
                n_contractions=state.n_contractions + 1,
                trial_open=True,
                trial_onset_s=time_s,
                trial_posture=state.posture,
                trial_posture_id=state.posture_id,
                trial_posture_before=self._posture_between(time_s - PRE_POSTURE_S, time_s),
            )
        return state

    @staticmethod
    def _still_open(state: ChannelState, onset_s: float) -> bool:
        """Whether the channel's open trial stays open after a trial or artifact event dated ``onset_s``."""
        onset = state.trial_onset_s
        return state.trial_open and not (onset is not None and abs(onset_s - onset) <= _SAME_ONSET_S)

    def _posture_between(self, start_s: float, end_s: float) -> Posture | None:
        """The trunk's mean posture over [start_s, end_s] (seconds from the origin); None when unknown."""
        ring = self._rings.get(TRUNK_ANGLES_STREAM)
        if ring is None or self._origin_s is None:
            return None
        rate = ring.info.sample_rate_hz
        index, data = ring.since(math.floor((start_s + self._origin_s) * rate))
        inside = (index <= (end_s + self._origin_s) * rate) & np.isfinite(data).all(axis=0)
        block = Block(ring.info, data.astype(np.float64), int(index[0]) if index.size else 0)
        return _posture(block, inside) if inside.any() else None

    def _on_flexion_phase(self, event: Mapping[str, Any]) -> None:
        if self._origin_s is None:
            return
        phase = event.get("phase")
        time_s = float(event["time_s"]) - self._origin_s
        spans = self._spans_after(self._fields.get("flexion_phases", ()), None if phase is None else str(phase), time_s)
        self._fields["flexion_phase"] = phase
        self._fields["flexion_phases"] = spans

    # -- the reader's side ---------------------------------------------------------------------

    def poll(
        self,
        window_s: float,
        streams: tuple[str, ...] | None = None,
        known_versions: Mapping[str, int] | None = None,
    ) -> LiveSnapshot:
        """Copy the state and the last ``window_s`` seconds of the streams that changed.

        Parameters
        ----------
        window_s : float
            Seconds of samples wanted, back from each stream's newest sample.
        streams : tuple of str, optional
            Stream names wanted (default: every stored stream).
        known_versions : mapping of str to int, optional
            The ``versions`` of the previous poll; streams still at that version are left out.

        Returns
        -------
        LiveSnapshot
        """
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"window_s must be a positive number of seconds, got {window_s!r}")
        known = known_versions or {}
        with self._lock:
            state = self._current_state()
            out: dict[str, StreamWindow] = {}
            for name, ring in self._rings.items():
                if (streams is not None and name not in streams) or known.get(name) == ring.version:
                    continue
                last = ring.last_index()
                if last is None:
                    continue
                start = last - math.ceil(window_s * ring.info.sample_rate_hz)
                index, data = ring.since(start)
                out[name] = StreamWindow(ring.info, index, data, ring.version)
            versions = {name: ring.version for name, ring in self._rings.items()}
        return LiveSnapshot(state, out, versions)

    @property
    def state(self) -> LiveState:
        """The current state (no samples)."""
        with self._lock:
            return self._current_state()

    def latest_index(self, stream: str) -> int | None:
        """Device index of the newest sample of a raw stream (None before its first block)."""
        with self._lock:
            raw = self._raw.get(stream)
            return raw.end_index - 1 if raw is not None and raw.end_index > raw.first_index else None

    def stream_info(self, stream: str) -> StreamInfo | None:
        """Description of a raw stream seen so far (None when unknown)."""
        with self._lock:
            raw = self._raw.get(stream)
            return raw.info if raw is not None else None

    def latencies_s(self) -> npt.NDArray[np.float64]:
        """Sample-to-envelope latencies kept (oldest first), seconds, shape (n,)."""
        with self._lock:
            return np.array([latency for _, latency in self._latencies], dtype=np.float64)

    def _current_state(self) -> LiveState:
        if self._state.version == self._version:
            return self._state
        now = self._wall_clock()
        recent = []
        for t, latency in reversed(self._latencies):  # newest first, back one second
            if t < now - 1.0:
                break
            # a source that stamps arrivals ahead of the wall clock (a simulation faster than real
            # time) gives negative latencies: meaningless, not shown
            if latency >= 0:
                recent.append(latency)
        rates = {}
        for name, raw in self._raw.items():
            if len(raw.received) >= 2:
                first = raw.received[0][0]
                span = raw.received[-1][0] - first
                # blocks of one chunk share its arrival time: count what arrived after the first chunk
                n_first = 0
                for t, count in raw.received:
                    if t > first:
                        break
                    n_first += count
                if span > 0:
                    rates[name] = (raw.n_received - n_first) / span
        self._state = LiveState(
            version=self._version,
            time_origin_s=self._origin_s,
            now_s=self._now_s,
            channels=tuple(
                replace(state, envelope_uv=self._envelopes_uv.get(state.key)) for state in self._channels.values()
            ),
            trials=tuple(self._trials),
            markers=tuple(self._markers),
            warnings=tuple(self._warnings),
            samples_lost={name: raw.samples_lost for name, raw in self._raw.items()},
            rates_hz=rates,
            latest_index={name: raw.end_index - 1 for name, raw in self._raw.items()},
            latency_s=float(np.median(recent)) if recent else None,
            **self._fields,
        )
        return self._state
