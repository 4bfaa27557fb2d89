"""Phase detection: REST -> CONTRACTION -> RELEASE -> REST, per channel, from two RMS envelopes.

SCIENCE.md section 5:

- **onset**: the 50 ms RMS above rest mean + 5 SD for >= 50 ms; **offset**: below rest mean + 2.5 SD
  for >= 250 ms (the hysteresis that keeps 56 real bursts from becoming 339 detections);
- **release**: on the 250 ms RMS, from below 90 % of (peak - baseline) above baseline to below 10 %;
  its duration, its monotonicity (fraction of 100 ms steps that decrease) and its re-bursts (rises
  of more than 20 % of peak-above-baseline) describe its quality.

Rest statistics (mean and SD of the 50 ms RMS) come from the first ``calibration_s`` of a stream and
are re-estimated from rest hops below the onset threshold, starting ``settle_s`` after an offset:
once ``baseline_s`` of them are gathered, then every ``baseline_step_s`` of them, from the last
``baseline_s``; they never change during a contraction.

Postures (SCIENCE.md 4: set points per posture). Given a
:class:`~biofeed.dsp.tension.PostureTimeline` (the IMU), the detector keeps rest statistics per
posture: hops are gathered only while the trunk is quasi-static in the posture whose statistics are
in force, never while moving or in a posture not yet held long enough to be known. At rest, the first
hop in another known posture recalls that posture's statistics, or, for a posture never seen, starts
a fresh calibration (a CALIBRATING event) gathered in it. While the trunk is held still in a posture
not yet known (:data:`~biofeed.dsp.tension.NEW_POSTURE`) no onset is looked for: no statistics fit
it. While it moves, onsets are looked for with the statistics in force (the analyzer then finds the
contraction to be a movement). A contraction keeps the statistics it started with; the switch
happens at the rest after it, or ends it when the trunk is held in another known posture. The
detector holds its hops until the timeline has settled past them (or lags
:data:`~biofeed.dsp.tension.SETTLE_WAIT_LIMIT_S` behind the EMG), so the events do not depend on how
EMG and IMU blocks interleave. Without a timeline every hop is in one posture: the behaviour above
without the IMU.

Timing. Both envelopes live on one hop grid (:mod:`biofeed.dsp.envelope`); a hop is stamped at the
end of its window. The onset is the end of the first window of the held run (the first window
holding activity ends near the onset), the offset the *start* of the first window of the quiet run
(the first quiet window starts near the offset); release and peak times are the centres of 250 ms
windows (the RMS of a ramp is its value at the centre). Events on a channel never go back in time.

Streaming. The state machine runs over hops, vectorised between state changes. Decisions that need
a held run are taken when the run completes and dated at its start; the release/contraction changes
inside a candidate offset run are held back until the run either breaks (then emitted) or completes
(then dropped), so any chunking gives the same events in the same order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block
from biofeed.dsp.envelope import DEFAULT_HOP_S, DISPLAY_WINDOW_S, TIMING_WINDOW_S, MovingRms
from biofeed.dsp.stage import check_rate, starts_segment
from biofeed.dsp.tension import NEW_POSTURE, NO_POSTURE, SETTLE_WAIT_LIMIT_S, PostureTimeline

__all__ = ["Contraction", "Phase", "PhaseDetector", "PhaseEvent", "PhaseSettings", "count_rebursts"]

_Array = npt.NDArray[np.float64]
_Labels = npt.NDArray[np.int64]
_SHAPE_WINDOWS = 4  # amplitude windows per release-shape step (1 s at the default 250 ms)


class Phase(StrEnum):
    """Where a channel is in the pandiculation cycle."""

    CALIBRATING = "calibrating"  # learning the rest statistics; treated as rest
    REST = "rest"
    CONTRACTION = "contraction"
    RELEASE = "release"


@dataclass(frozen=True)
class PhaseSettings:
    """Thresholds and durations of the phase detector (defaults: SCIENCE.md section 5).

    Attributes
    ----------
    onset_sd, offset_sd : float
        Thresholds in rest SDs above the rest mean of the 50 ms RMS.
    onset_hold_s, offset_hold_s : float
        How long the envelope must stay beyond each threshold.
    settled_rest_s : float
        A contraction also ends when its 250 ms RMS has stayed below the release end (10 % of
        peak above the rest mean) this long, even if the 50 ms RMS keeps flickering above the
        offset threshold: the rest level after it has moved (another posture, another tone), and
        the rest statistics are then re-estimated. With an IMU it also ends when the trunk has been
        held still this long in another known posture. 3 s is the release the score credits fully.
    long_active_s, long_settled_fraction : float
        After ``long_active_s`` in CONTRACTION/RELEASE (a pandiculation's hold and slow release
        take under 20 s, SCIENCE.md 5 and 7), settling for ``settled_rest_s`` below this fraction
        of (peak - rest mean) above the rest mean also ends it: the "contraction" is a rest level
        the rest statistics did not know (they were learnt in another posture, or during the
        electrical silence of full flexion).
    onset_lookback_s : float
        How far back from its held run an onset may be dated: to where the 50 ms RMS last rose
        through the offset threshold (the lower threshold of the hysteresis pair).
    release_start_fraction, release_end_fraction : float
        Release bounds as fractions of (peak - baseline) above baseline, on the 250 ms RMS.
    release_hold_s : float
        How long the 250 ms RMS must stay below the 90 % level before the live phase turns to
        RELEASE (a plateau fluctuates around 90 % of its own maximum; this keeps the live phase
        from flickering). The reported release start is the start of the final drop regardless.
    release_step_s : float
        Step of the monotonicity and re-burst analysis.
    reburst_fraction : float
        A rise of more than this fraction of (peak - baseline) during the release is a re-burst.
    calibration_s : float
        Initial rest used for the first rest statistics.
    baseline_s : float
        Rest hops each later re-estimate is made from (the newest gathered).
    baseline_step_s : float
        Rest hops gathered between re-estimates once ``baseline_s`` are held (after a contraction or a
        change of posture the first re-estimate waits for a whole ``baseline_s`` of new ones). A
        sliding baseline follows a slowly creeping rest level with less lag than back-to-back blocks:
        *measured* on the simulator's transient trials (rest creeping from 2.2 to 4.8 uV in 20 s),
        5 s blocks took the creep for a contraction in 10 of 44 channels, 1 s or 2 s steps in none;
        1 s took 6 more heartbeats for twitches on the real emgGO record (docs/dsp.md).
    settle_s : float
        Hops skipped after an offset before rest statistics are gathered again.
    hop_s : float
        Hop of both envelopes.
    timing_window_s, amplitude_window_s : float
        RMS windows for timing (onset/offset) and amplitude (peak, release).
    """

    onset_sd: float = 5.0
    offset_sd: float = 2.5
    onset_hold_s: float = 0.05
    offset_hold_s: float = 0.25
    settled_rest_s: float = 3.0
    long_active_s: float = 30.0
    long_settled_fraction: float = 0.5
    onset_lookback_s: float = 0.1
    release_start_fraction: float = 0.9
    release_end_fraction: float = 0.1
    release_hold_s: float = 0.25
    release_step_s: float = 0.1
    reburst_fraction: float = 0.2
    calibration_s: float = 5.0
    baseline_s: float = 5.0
    baseline_step_s: float = 2.0
    settle_s: float = 1.0
    hop_s: float = DEFAULT_HOP_S
    timing_window_s: float = TIMING_WINDOW_S
    amplitude_window_s: float = DISPLAY_WINDOW_S

    def __post_init__(self) -> None:
        for name in ("onset_sd", "offset_sd", "onset_hold_s", "offset_hold_s", "settled_rest_s", "release_hold_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("release_step_s", "calibration_s", "baseline_s", "baseline_step_s", "hop_s", "timing_window_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if not self.offset_sd <= self.onset_sd:
            raise ValueError(f"offset_sd must be <= onset_sd (hysteresis), got {self.offset_sd} > {self.onset_sd}")
        if not 0 < self.release_end_fraction < self.release_start_fraction < 1:
            raise ValueError(
                "need 0 < release_end_fraction < release_start_fraction < 1, got "
                f"{self.release_end_fraction} and {self.release_start_fraction}"
            )
        if not 0 < self.reburst_fraction < 1:
            raise ValueError(f"reburst_fraction must be in (0, 1), got {self.reburst_fraction}")
        if not (math.isfinite(self.onset_lookback_s) and self.onset_lookback_s >= 0):
            raise ValueError(f"onset_lookback_s must be >= 0 s, got {self.onset_lookback_s!r}")
        if not (math.isfinite(self.settle_s) and self.settle_s >= 0):
            raise ValueError(f"settle_s must be >= 0 s, got {self.settle_s!r}")
        if not self.amplitude_window_s >= self.timing_window_s:
            raise ValueError("amplitude_window_s must be >= timing_window_s")


@dataclass(frozen=True)
class Contraction:
    """One detected contraction and its release (indices are device sample indices).

    Attributes
    ----------
    channel_index : int
        Row of the channel in the stream.
    sample_rate_hz : float
        Rate of the sample indices.
    onset_index, offset_index : int
        Onset and offset (SCIENCE.md 5).
    peak_index : int
        Centre of the 1 s window of the largest RMS (of the largest 250 ms RMS for a contraction
        shorter than 1 s).
    peak_uv : float
        That RMS in uV (band-passed, not noise-corrected).
    baseline_uv, baseline_sd_uv : float
        Rest mean and SD of the 50 ms RMS in force during the contraction.
    plateau_start_index : int
        First time the 250 ms RMS reached 90 % of (peak - baseline) above baseline.
    release_start_index : int
        Start of the final drop below that 90 % level.
    release_end_index : int
        First time after it below the 10 % level (the last hop examined when it never got there).
    monotonic_fraction : float or None
        Fraction of 100 ms steps between release start and end that decrease, on 1 s RMS (four
        back-to-back 250 ms windows) centred on each step; None with fewer than two steps.
    rebursts : int
        Rises of more than 20 % of (peak - baseline) on the same steps, from release start until
        rest was confirmed.
    """

    channel_index: int
    sample_rate_hz: float
    onset_index: int
    offset_index: int
    peak_index: int
    peak_uv: float
    baseline_uv: float
    baseline_sd_uv: float
    plateau_start_index: int
    release_start_index: int
    release_end_index: int
    monotonic_fraction: float | None
    rebursts: int

    @property
    def onset_s(self) -> float:
        """Onset time, device seconds."""
        return self.onset_index / self.sample_rate_hz

    @property
    def offset_s(self) -> float:
        """Offset time, device seconds."""
        return self.offset_index / self.sample_rate_hz

    @property
    def release_start_s(self) -> float:
        """Release start, device seconds."""
        return self.release_start_index / self.sample_rate_hz

    @property
    def release_end_s(self) -> float:
        """Release end, device seconds."""
        return self.release_end_index / self.sample_rate_hz

    @property
    def release_duration_s(self) -> float:
        """Release duration (90 % to 10 %) in seconds."""
        return (self.release_end_index - self.release_start_index) / self.sample_rate_hz

    @property
    def hold_s(self) -> float:
        """Time spent at or above 90 % before the release, in seconds."""
        return (self.release_start_index - self.plateau_start_index) / self.sample_rate_hz

    @property
    def end_index(self) -> int:
        """Last device index the contraction affects: the later of offset and release end."""
        return max(self.offset_index, self.release_end_index)


@dataclass(frozen=True)
class PhaseEvent:
    """A channel entering a phase.

    Attributes
    ----------
    channel_index : int
        Row of the channel in the stream.
    phase : Phase
        The phase entered.
    sample_index : int
        Device sample index at which it was entered.
    time_s : float
        ``sample_index / sample_rate_hz``.
    contraction : Contraction or None
        On the REST event that ends a contraction: the contraction, measured.
    """

    channel_index: int
    phase: Phase
    sample_index: int
    time_s: float
    contraction: Contraction | None = None


def count_rebursts(steps_uv: _Array, rise_uv: float) -> int:
    """Count rises of more than ``rise_uv`` above the running minimum of a stepped envelope.

    A rise is counted once; the next one needs a fall of ``rise_uv`` from the rise's maximum first.

    Parameters
    ----------
    steps_uv : ndarray, shape (n_steps,)
        Envelope sampled at fixed steps, uV.
    rise_uv : float
        Rise that makes a re-burst, uV.
    """
    count = 0
    low = high = math.inf
    rising = False
    for value in steps_uv.tolist():
        if rising:
            high = max(high, value)
            if value < high - rise_uv:
                rising, low = False, value
        else:
            low = min(low, value)
            if value > low + rise_uv:
                rising, high = True, value
                count += 1
    return count


def _first_run_end(mask: npt.NDArray[np.bool_], carried: int, hold: int) -> tuple[int | None, int]:
    """Position at which a run of True (continuing ``carried`` earlier Trues) first reaches ``hold``.

    Returns (position or None, run length at the end of ``mask``).
    """
    n = mask.shape[0]
    if n == 0:
        return None, carried
    # The common cases (a chunk of a few hops all one way) without the scan below.
    if not mask.any():
        return None, 0
    if mask.all():
        first = max(hold - carried - 1, 0)
        return (first, carried + first + 1) if first < n else (None, carried + n)
    positions = np.arange(n)
    last_false = np.maximum.accumulate(np.where(mask, -1, positions))
    run = np.where(last_false >= 0, positions - last_false, positions + 1 + carried)
    hits = np.flatnonzero(run >= hold)
    if hits.size:
        return int(hits[0]), int(run[hits[0]])
    return None, int(run[-1])


class _HopQueue:
    """Hops of one envelope not yet run through the state machines, from hop ``start_hop`` on."""

    def __init__(self) -> None:
        self.values: _Array = np.zeros((0, 0))
        self.start_hop = 0

    @property
    def end_hop(self) -> int:
        return self.start_hop + int(self.values.shape[1])

    def add(self, envelope: Block) -> None:
        if envelope.n_samples == 0:
            return
        if self.values.shape[1] and envelope.first_index == self.end_hop:
            self.values = np.concatenate([self.values, envelope.data], axis=1)
        else:
            self.values, self.start_hop = envelope.data, envelope.first_index

    def take(self, start_hop: int, end_hop: int) -> _Array:
        """Hops [start_hop, end_hop) (columns), dropping everything before end_hop from the queue."""
        taken = self.values[:, start_hop - self.start_hop : end_hop - self.start_hop]
        self.values = self.values[:, end_hop - self.start_hop :]
        self.start_hop = end_hop
        return taken


@dataclass
class _Segment:
    """Envelope hops of one stretch of signal between gaps, not yet run through the state machines."""

    first_index: int
    timing: _HopQueue = field(default_factory=_HopQueue)
    amplitude: _HopQueue = field(default_factory=_HopQueue)
    started: bool = False  # the channels have been told of its start (a gap)


@dataclass
class _Trial:
    onset_hop: int
    onset_index: int
    mean_uv: float
    sd_uv: float
    offset_threshold_uv: float
    peak_uv: float = -math.inf
    history: list[_Array] = field(default_factory=list)  # 250 ms RMS from the onset hop
    history_tail: _Array = field(default_factory=lambda: np.zeros(0))  # its last hops, for the causal 1 s level
    timing_history: list[_Array] = field(default_factory=list)  # 50 ms RMS from the onset hop
    live_phase: Phase = Phase.CONTRACTION
    release_run: int = 0
    offset_run: int = 0
    settled_run: int = 0
    posture: int = NO_POSTURE  # the channel's at the onset
    moved_run: int = 0
    held_back: list[tuple[int, Phase]] = field(default_factory=list)  # (hop, phase) inside a candidate offset run


@dataclass
class _Channel:
    phase: Phase = Phase.CALIBRATING
    mean_uv: float = math.nan
    sd_uv: float = math.nan
    gathered: list[_Array] = field(default_factory=list)  # rest hops since the last estimate
    n_gathered: int = 0
    recent: _Array = field(default_factory=lambda: np.zeros(0))  # the hops of the last estimate (newest baseline_s)
    gather_from_hop: int = -(1 << 62)
    onset_run: int = 0
    rest_from_hop: int = -(1 << 62)  # first hop of the current rest; an onset is never dated before it
    trial: _Trial | None = None
    last_event_index: int = -(1 << 62)
    posture: int = NO_POSTURE  # whose statistics are in force (REST) or being learnt (CALIBRATING)
    statistics: dict[int, tuple[float, float]] = field(default_factory=dict)  # (mean, SD) per posture


class PhaseDetector:
    """Streaming phase detector for every channel of an sEMG stream.

    Parameters
    ----------
    sample_rate_hz : float
        Rate of the band-passed sEMG blocks.
    settings : PhaseSettings
        Thresholds and durations.
    postures : PostureTimeline or None
        The IMU's postures and stillness on this stream's time axis: rest statistics per posture,
        gathered only while still (module docstring). None: one posture, always still.

    Notes
    -----
    A gap abandons a contraction in progress (no :class:`Contraction` is reported for it) and
    restarts the envelopes; the rest statistics survive it, being statistics rather than filter
    state.
    """

    def __init__(
        self, sample_rate_hz: float, settings: PhaseSettings | None = None, postures: PostureTimeline | None = None
    ) -> None:
        self.settings = settings or PhaseSettings()
        self.postures = postures
        s = self.settings
        self.sample_rate_hz = float(sample_rate_hz)
        self._timing = MovingRms(sample_rate_hz, s.timing_window_s, s.hop_s)
        self._amplitude = MovingRms(sample_rate_hz, s.amplitude_window_s, s.hop_s)
        self._hop = self._timing.hop_samples
        hop_s = self._hop / self.sample_rate_hz
        self._onset_hold = max(1, round(s.onset_hold_s / hop_s))
        self._lookback = round(s.onset_lookback_s / hop_s)
        self._offset_hold = max(1, round(s.offset_hold_s / hop_s))
        self._settled_hold = max(1, round(s.settled_rest_s / hop_s))
        self._long_active_hops = round(s.long_active_s / hop_s)
        self._release_hold = max(1, round(s.release_hold_s / hop_s))
        self._tail_hops = (_SHAPE_WINDOWS - 1) * self._amplitude.hops_per_window  # history before a causal 1 s level
        self._step = max(1, round(s.release_step_s / hop_s))
        self._calibration_hops = max(2, round(s.calibration_s / hop_s))
        self._baseline_hops = max(2, round(s.baseline_s / hop_s))
        self._baseline_step_hops = max(1, min(round(s.baseline_step_s / hop_s), self._baseline_hops))
        self._settle_hops = round(s.settle_s / hop_s)
        self._wait_limit_hops = round(SETTLE_WAIT_LIMIT_S / hop_s)
        self.reset()

    def reset(self) -> None:
        """Forget everything, rest statistics included."""
        self._timing.reset()
        self._amplitude.reset()
        self._channels: list[_Channel] = []
        self._next_index: int | None = None
        self._segments: list[_Segment] = []  # oldest first; only the last one still grows
        self._next_hop = 0  # first hop not yet run through the state machines
        # The hops just before _recent_end_hop (an open onset run is re-scanned, an onset walked back, over them).
        self._recent_timing: _Array = np.zeros((0, 0))
        self._recent_amplitude: _Array = np.zeros((0, 0))
        self._recent_postures: _Labels = np.zeros(0, dtype=np.int64)
        self._recent_end_hop = 0

    def phase(self, channel_index: int) -> Phase:
        """Current phase of a channel."""
        return self._channels[channel_index].phase if channel_index < len(self._channels) else Phase.CALIBRATING

    def rest_statistics_uv(self, channel_index: int) -> tuple[float, float]:
        """(mean, SD) of the 50 ms RMS at rest in uV; NaN while calibrating."""
        if channel_index >= len(self._channels):
            return math.nan, math.nan
        channel = self._channels[channel_index]
        return channel.mean_uv, channel.sd_uv

    def posture(self, channel_index: int) -> int:
        """Posture whose rest statistics a channel uses (or is learning); NO_POSTURE before any."""
        return self._channels[channel_index].posture if channel_index < len(self._channels) else NO_POSTURE

    def settled_index(self, channel_index: int) -> int:
        """Device index before which the channel's phases are final (no later event will date earlier)."""
        if channel_index >= len(self._channels):
            return -(1 << 62)
        channel = self._channels[channel_index]
        if channel.trial is not None:
            return channel.trial.onset_index
        # A future onset may be walked back `lookback` hops from its run and interpolated one hop further.
        return (self._next_hop - channel.onset_run - self._lookback - 1) * self._hop

    def process(self, block: Block) -> list[PhaseEvent]:
        """Add a block of band-passed sEMG; return the phase events it settles, in time order per channel.

        Parameters
        ----------
        block : Block
            Band-passed sEMG in uV, shape (n_channels, n_samples).

        Returns
        -------
        list of PhaseEvent
        """
        check_rate(block, self.sample_rate_hz)
        n_channels = block.data.shape[0]
        if len(self._channels) != n_channels:
            self.reset()
            self._channels = [_Channel() for _ in range(n_channels)]
        if starts_segment(block, self._next_index):
            self._timing.reset()
            self._amplitude.reset()
            self._segments.append(_Segment(block.first_index))
        self._next_index = block.end_index
        segment = self._segments[-1]
        segment.timing.add(self._timing.process(block))
        segment.amplitude.add(self._amplitude.process(block))
        return self._run_segments(final=False)

    def advance(self, final: bool = False) -> list[PhaseEvent]:
        """Run the hops held for the posture timeline that it covers now (all of them when ``final``).

        ``final`` is for the end of the data: hops the timeline never covered run as moving.
        """
        return self._run_segments(final)

    def _run_segments(self, final: bool) -> list[PhaseEvent]:
        events: list[PhaseEvent] = []
        horizon = self._posture_horizon_hop(final)
        while self._segments:
            segment = self._segments[0]
            if not segment.started:
                events.extend(self._start_segment(segment.first_index))
                segment.started = True
            events.extend(self._run(segment, horizon))
            done = self._next_hop >= min(segment.timing.end_hop, segment.amplitude.end_hop)
            if not (done and len(self._segments) > 1):
                break
            self._segments.pop(0)  # a later segment exists, so this one gets no more hops
        return events

    def _posture_horizon_hop(self, final: bool) -> float:
        """First hop whose posture the timeline has not settled (inf without a timeline)."""
        if self.postures is None or final:
            return math.inf
        settled_s = self.postures.settled_s
        if not math.isfinite(settled_s):
            return math.inf
        newest = self._segments[-1].timing.end_hop if self._segments else 0
        return max(math.floor(settled_s * self.sample_rate_hz + 1e-9) // self._hop, newest - self._wait_limit_hops)

    def _labels(self, start_hop: int, end_hop: int) -> _Labels:
        """Posture at each hop's 50 ms window (its last sample); one posture without a timeline."""
        hops = np.arange(start_hop, end_hop)
        if self.postures is None:
            return np.zeros(hops.shape, dtype=np.int64)
        times_s = (hops * self._hop - 0.5) / self.sample_rate_hz
        return np.asarray(self.postures.postures_at(times_s), dtype=np.int64)

    def _run(self, segment: _Segment, horizon: float) -> list[PhaseEvent]:
        events: list[PhaseEvent] = []
        # The 250 ms envelope starts later in a segment than the 50 ms one: run the common hops.
        timing, amplitude = segment.timing, segment.amplitude
        start = max(timing.start_hop, amplitude.start_hop, self._next_hop)
        end = min(timing.end_hop, amplitude.end_hop, horizon)
        if not end > start:
            return events
        end = int(end)
        t_all = timing.take(start, end)
        a_all = amplitude.take(start, end)
        p_all = self._labels(start, end)
        if self._recent_end_hop != start:
            self._clear_recent(start)
        # The hops just before these: an open onset run is re-scanned, and an onset walked back, over them.
        t_ctx = np.concatenate([self._recent_timing, t_all], axis=1)
        a_ctx = np.concatenate([self._recent_amplitude, a_all], axis=1)
        p_ctx = np.concatenate([self._recent_postures, p_all])
        n_before = self._recent_timing.shape[1]
        quiet = self._quiet_channels(t_all, p_all)
        for c, channel in enumerate(self._channels):
            if not (quiet[c] and self._gather_quietly(channel, t_all[c], p_all, start)):
                events.extend(self._advance(c, channel, t_ctx[c], a_ctx[c], p_ctx, start - n_before, n_before))
        keep = self._onset_hold + self._lookback
        self._recent_timing, self._recent_amplitude = t_ctx[:, -keep:], a_ctx[:, -keep:]
        self._recent_postures = p_ctx[-keep:]
        self._next_hop = self._recent_end_hop = end
        return events

    def _clear_recent(self, hop: int) -> None:
        self._recent_timing = np.zeros((len(self._channels), 0))
        self._recent_amplitude = np.zeros((len(self._channels), 0))
        self._recent_postures = np.zeros(0, dtype=np.int64)
        self._recent_end_hop = hop

    def _quiet_channels(self, t_all: _Array, p_all: _Labels) -> npt.NDArray[np.bool_]:
        """Channels at rest, with no run open, no onset threshold crossed and no other known posture reached.

        One vectorised test for all channels: the common case in a live stream needs no state machine.
        """
        resting = np.array([ch.phase is Phase.REST and not ch.onset_run for ch in self._channels])
        if not resting.any():
            return resting
        means = np.array([ch.mean_uv for ch in self._channels])
        sds = np.array([ch.sd_uv for ch in self._channels])
        postures = np.array([ch.posture for ch in self._channels])
        with np.errstate(invalid="ignore"):
            crossing = (t_all > (means + self.settings.onset_sd * sds)[:, None]).any(axis=1)
        elsewhere = ((p_all[None, :] != postures[:, None]) & (p_all[None, :] >= 0)).any(axis=1)
        return np.asarray(resting & ~crossing & ~elsewhere, dtype=np.bool_)

    def _gather_quietly(self, channel: _Channel, t: _Array, p: _Labels, first_hop: int) -> bool:
        """Gather still rest hops in the channel's posture; False when they would complete the statistics."""
        skip = min(max(channel.gather_from_hop - first_hop, 0), t.shape[0])
        still = np.flatnonzero(p[skip:] == channel.posture) + skip
        if still.shape[0] >= self._hops_to_estimate(channel):
            return False
        if still.shape[0]:
            channel.gathered.append(t[still])
            channel.n_gathered += still.shape[0]
        return True

    def _start_segment(self, first_index: int) -> list[PhaseEvent]:
        h = self._hop
        first_hop = -(-first_index // h)
        self._next_hop = first_hop
        self._clear_recent(first_hop)
        events = []
        for c, channel in enumerate(self._channels):
            channel.onset_run = 0
            channel.rest_from_hop = first_hop
            channel.gather_from_hop = first_hop + self._settle_hops
            if channel.trial is not None:
                channel.trial = None
                channel.phase = Phase.REST
                events.append(self._event(c, channel, Phase.REST, first_index))
        return events

    def _event(
        self, c: int, channel: _Channel, phase: Phase, index: int, contraction: Contraction | None = None
    ) -> PhaseEvent:
        index = max(index, channel.last_event_index)
        channel.last_event_index = index
        channel.phase = phase
        return PhaseEvent(c, phase, index, index / self.sample_rate_hz, contraction)

    def _crossing_index(self, hop: int, before_uv: float, at_uv: float, threshold_uv: float) -> int:
        """Stamp at which the 50 ms RMS crossed a threshold between hop - 1 and hop (linear, sub-hop)."""
        fraction = (threshold_uv - before_uv) / (at_uv - before_uv) if at_uv != before_uv else 1.0
        return round((hop - 1 + min(max(fraction, 0.0), 1.0)) * self._hop)

    def _amplitude_centre(self, hop: int) -> int:
        return hop * self._hop - self._amplitude.window_samples // 2

    # -- the state machine ------------------------------------------------------------------------

    def _advance(
        self, c: int, channel: _Channel, t: _Array, a: _Array, p: _Labels, first_hop: int, n_before: int
    ) -> list[PhaseEvent]:
        """Run one channel's machine over hops ``first_hop + n_before ...``; the first ``n_before`` hops are context."""
        i = n_before
        if channel.phase is Phase.REST and channel.onset_run:
            # Re-scan the open onset run from its start; it holds no gathered hops, so this is idempotent.
            i -= channel.onset_run
            channel.onset_run = 0
        events: list[PhaseEvent] = []
        n = t.shape[0]
        while i < n:
            if channel.phase is Phase.CALIBRATING:
                i = self._calibrate(c, channel, t, p, first_hop, i, events)
            elif channel.phase is Phase.REST:
                i = self._rest(c, channel, t, p, first_hop, i, events)
            else:
                i = self._active(c, channel, t, a, p, first_hop, i, events)
        return events

    def _calibrate(
        self, c: int, channel: _Channel, t: _Array, p: _Labels, first_hop: int, i: int, events: list[PhaseEvent]
    ) -> int:
        """Gather every hop still in the posture being calibrated (the first known one at the start)."""
        n = int(t.shape[0])
        if channel.posture == NO_POSTURE:
            known = np.flatnonzero(p[i:] >= 0)
            if not known.size:
                return n
            i += int(known[0])
            channel.posture = int(p[i])
        end = self._posture_end(channel, p, i)
        still = np.flatnonzero(p[i:end] == channel.posture) + i
        need = self._calibration_hops - channel.n_gathered
        if still.shape[0] >= need:
            u = int(still[need - 1])
            channel.gathered.append(t[still[:need]])
            self._set_rest_statistics(channel)
            channel.rest_from_hop = first_hop + u + 1
            events.append(self._event(c, channel, Phase.REST, (first_hop + u + 1) * self._hop))
            return u + 1
        channel.gathered.append(t[still])
        channel.n_gathered += still.shape[0]
        if end < n:
            self._switch_posture(c, channel, int(p[end]), first_hop + end, events)
        return end

    @staticmethod
    def _posture_end(channel: _Channel, p: _Labels, i: int) -> int:
        """First position from ``i`` in a known posture other than the channel's (``len(p)`` when none)."""
        elsewhere = np.flatnonzero((p[i:] != channel.posture) & (p[i:] >= 0))
        return i + int(elsewhere[0]) if elsewhere.size else int(p.shape[0])

    def _switch_posture(self, c: int, channel: _Channel, posture: int, hop: int, events: list[PhaseEvent]) -> None:
        """At rest (or calibrating), the trunk is held in another known posture from ``hop`` on."""
        channel.gathered, channel.n_gathered, channel.onset_run = [], 0, 0
        channel.recent = np.zeros(0)
        channel.posture = posture
        channel.rest_from_hop = channel.gather_from_hop = hop
        known = channel.statistics.get(posture)
        if known is not None:  # seen before: recall its statistics
            channel.mean_uv, channel.sd_uv = known
            if channel.phase is Phase.CALIBRATING:
                events.append(self._event(c, channel, Phase.REST, hop * self._hop))
        else:  # never seen: a fresh calibration in it
            channel.mean_uv = channel.sd_uv = math.nan
            if channel.phase is Phase.REST:
                events.append(self._event(c, channel, Phase.CALIBRATING, hop * self._hop))

    def _hops_to_estimate(self, channel: _Channel) -> int:
        """Rest hops still to gather before the next re-estimate."""
        held = int(channel.recent.shape[0])
        return max(self._baseline_hops - held, self._baseline_step_hops) - channel.n_gathered

    def _set_rest_statistics(self, channel: _Channel) -> None:
        values = np.concatenate([channel.recent, *channel.gathered])
        if channel.recent.shape[0]:  # a re-estimate: the newest baseline_s (a calibration uses all it gathered)
            values = values[-self._baseline_hops :]
        channel.mean_uv = float(values.mean())
        channel.sd_uv = float(values.std())
        channel.statistics[channel.posture] = (channel.mean_uv, channel.sd_uv)
        channel.recent = values[-self._baseline_hops :]
        channel.gathered = []
        channel.n_gathered = 0

    def _rest(
        self, c: int, channel: _Channel, t: _Array, p: _Labels, first_hop: int, i: int, events: list[PhaseEvent]
    ) -> int:
        s = self.settings
        threshold = channel.mean_uv + s.onset_sd * channel.sd_uv
        end = self._posture_end(channel, p, i)
        above = (t[i:end] > threshold) & (p[i:end] != NEW_POSTURE)
        confirmed, run = _first_run_end(above, channel.onset_run, self._onset_hold)
        stop = confirmed + 1 if confirmed is not None else above.shape[0]
        skip = min(max(channel.gather_from_hop - (first_hop + i), 0), stop)
        below = np.flatnonzero(~above[skip:stop] & (p[i + skip : i + stop] == channel.posture)) + skip
        need = self._hops_to_estimate(channel)
        if below.shape[0] >= need:
            # The re-estimate completes before any onset: apply it and go on with the new threshold.
            u = int(below[need - 1])
            channel.gathered.append(t[i + below[:need]])
            self._set_rest_statistics(channel)
            channel.onset_run = 0
            return i + u + 1
        channel.gathered.append(t[i + below])
        channel.n_gathered += below.shape[0]
        if confirmed is None:
            if end < t.shape[0]:  # an open onset run is dropped: the new posture has its own threshold
                self._switch_posture(c, channel, int(p[end]), first_hop + end, events)
                return end
            channel.onset_run = run
            return int(t.shape[0])
        run_start = i + confirmed - self._onset_hold + 1
        offset_threshold = channel.mean_uv + s.offset_sd * channel.sd_uv
        # Date the onset where the envelope rose through the lower threshold (hysteresis).
        earliest = max(run_start - self._lookback, channel.rest_from_hop - first_hop, 0)
        rising = t[earliest:run_start][::-1] >= offset_threshold
        onset_rel = run_start - (int(np.argmin(rising)) if not rising.all() else rising.shape[0])
        onset_hop = first_hop + onset_rel
        onset_index = onset_hop * self._hop
        if onset_rel > earliest:
            onset_index = self._crossing_index(onset_hop, t[onset_rel - 1], t[onset_rel], offset_threshold)
        channel.gathered, channel.n_gathered, channel.onset_run = [], 0, 0
        channel.recent = np.zeros(0)
        channel.trial = _Trial(
            onset_hop=onset_hop,
            onset_index=onset_index,
            mean_uv=channel.mean_uv,
            sd_uv=channel.sd_uv,
            offset_threshold_uv=offset_threshold,
            posture=channel.posture,
        )
        events.append(self._event(c, channel, Phase.CONTRACTION, onset_index))
        return onset_rel  # the contraction's first hops are run again as such

    def _active(
        self,
        c: int,
        channel: _Channel,
        t: _Array,
        a: _Array,
        p: _Labels,
        first_hop: int,
        i: int,
        events: list[PhaseEvent],
    ) -> int:
        trial = channel.trial
        if trial is None:  # unreachable: CONTRACTION/RELEASE always carry a trial
            raise RuntimeError("active phase without a trial")
        s = self.settings
        all_peaks = np.maximum.accumulate(np.concatenate(([trial.peak_uv], a[i:])))[1:]
        quiet, quiet_run = _first_run_end(t[i:] < trial.offset_threshold_uv, trial.offset_run, self._offset_hold)
        first_since = first_hop + i - trial.onset_hop  # hops since the onset, at hop i
        fraction: float | _Array
        if first_since + a.shape[0] - i <= self._long_active_hops:
            fraction = s.release_end_fraction
        elif first_since >= self._long_active_hops:
            fraction = s.long_settled_fraction
        else:
            since_onset = first_since + np.arange(a.shape[0] - i)
            fraction = np.where(since_onset < self._long_active_hops, s.release_end_fraction, s.long_settled_fraction)
        settled_level = trial.mean_uv + fraction * (all_peaks - trial.mean_uv)
        level_1s = self._causal_level(trial, a[i:])
        settled, settled_run = _first_run_end(level_1s < settled_level, trial.settled_run, self._settled_hold)
        elsewhere = (p[i:] >= 0) & (p[i:] != trial.posture)
        moved, moved_run = _first_run_end(elsewhere, trial.moved_run, self._settled_hold)
        # The contraction ends at whichever rest is confirmed first: quiet below the offset
        # threshold, settled below the release end (a rest level that moved), or the trunk held
        # still in another known posture (IMU), whose rest level the onset's statistics do not know.
        confirmed, hold = quiet, self._offset_hold
        for candidate in (settled, moved):
            if candidate is not None and (confirmed is None or candidate < confirmed):
                confirmed, hold = candidate, self._settled_hold
        stop = i + (confirmed + 1 if confirmed is not None else t.shape[0] - i)
        amplitude = a[i:stop]
        trial.history.append(amplitude)
        trial.history_tail = np.concatenate((trial.history_tail, amplitude))[-self._tail_hops :]
        trial.timing_history.append(t[i:stop])
        peaks = all_peaks[: stop - i]
        trial.peak_uv = float(peaks[-1])
        below_90 = amplitude < trial.mean_uv + s.release_start_fraction * (peaks - trial.mean_uv)
        changes = self._live_release_changes(trial, below_90, first_hop + i)
        if confirmed is None:
            trial.offset_run, trial.settled_run, trial.moved_run = quiet_run, settled_run, moved_run
            runs = [run for run in (quiet_run, settled_run, moved_run) if run]
            candidate_hop = first_hop + t.shape[0] - max(runs) if runs else math.inf
        else:
            candidate_hop = first_hop + stop - hold
        queued = trial.held_back + changes
        trial.held_back = [(hop, phase) for hop, phase in queued if hop >= candidate_hop]
        for hop, phase in queued:
            if hop < candidate_hop:
                events.append(self._event(c, channel, phase, self._amplitude_centre(hop)))
        if confirmed is None:
            return stop
        contraction = self._measure(c, trial, first_hop + stop - hold)
        channel.trial = None
        channel.rest_from_hop = contraction.offset_index // self._hop
        channel.gather_from_hop = first_hop + stop + self._settle_hops
        events.append(self._event(c, channel, Phase.REST, contraction.offset_index, contraction))
        return stop

    def _causal_level(self, trial: _Trial, amplitude: _Array) -> _Array:
        """1 s RMS (the last four back-to-back 250 ms windows) ending at each of these hops; inf before 1 s.

        The 250 ms RMS alone carries about 8 % estimation noise, so a resting level just under the
        release end would seldom stay under it for seconds on end; four windows halve the noise.
        """
        span = self._tail_hops
        joined = np.concatenate((trial.history_tail, amplitude))
        m = self._amplitude.hops_per_window
        if trial.history_tail.shape[0] == span:  # over 1 s into the contraction: every hop has its windows
            squares = joined * joined
            k = np.arange(span, joined.shape[0])
            return np.asarray(np.sqrt(np.mean([squares[k - w * m] for w in range(_SHAPE_WINDOWS)], axis=0)))
        n_new = amplitude.shape[0]
        ends = np.arange(joined.shape[0] - n_new, joined.shape[0])
        level = np.full(n_new, np.inf)
        ok = ends >= span
        if ok.any():
            squares = joined * joined
            k = ends[ok]
            level[ok] = np.sqrt(np.mean([squares[k - w * m] for w in range(_SHAPE_WINDOWS)], axis=0))
        return level

    def _live_release_changes(
        self, trial: _Trial, below_90: npt.NDArray[np.bool_], first_hop: int
    ) -> list[tuple[int, Phase]]:
        """Live CONTRACTION <-> RELEASE changes within these hops, as (hop, phase entered)."""
        changes: list[tuple[int, Phase]] = []
        j, n = 0, below_90.shape[0]
        while j < n:
            if trial.live_phase is Phase.CONTRACTION:
                found, run = _first_run_end(below_90[j:], trial.release_run, self._release_hold)
                if found is None:
                    trial.release_run = run
                    break
                changes.append((max(first_hop + j + found - self._release_hold + 1, trial.onset_hop), Phase.RELEASE))
                trial.live_phase, trial.release_run = Phase.RELEASE, 0
                j += found + 1
            else:
                ups = np.flatnonzero(~below_90[j:])
                if ups.size == 0:
                    break
                j += int(ups[0])
                changes.append((first_hop + j, Phase.CONTRACTION))
                trial.live_phase, trial.release_run = Phase.CONTRACTION, 0
                j += 1
        return changes

    def _shape(self, history: _Array) -> _Array:
        """1 s RMS (four back-to-back amplitude windows) centred on each hop's window; NaN off the ends.

        The 250 ms RMS of Gaussian sEMG carries about 8 % estimation noise: at 100 ms steps that makes a
        perfect linear 5 s release look about 65 % monotonic, fakes re-bursts near its top, and lifts
        the peak of a held contraction about 10 % above its level. Four windows halve the noise, keep
        the 100 ms steps, and cost nothing: they are already in the history.
        """
        m = self._amplitude.hops_per_window
        shift = round(1.5 * m)  # the 4-window span ending at hop q + shift is centred on hop q's window
        n = history.shape[0]
        power = np.full(n, np.nan)
        first, last = (_SHAPE_WINDOWS - 1) * m - shift, n - shift  # centres whose span is inside
        if last > max(first, 0):
            squares = history * history
            centres = np.arange(max(first, 0), last)
            power[centres] = np.mean([squares[centres + shift - w * m] for w in range(_SHAPE_WINDOWS)], axis=0)
        return np.asarray(np.sqrt(power), dtype=np.float64)

    def _measure(self, c: int, trial: _Trial, quiet_hop: int) -> Contraction:
        """Measure a finished contraction from its envelope history (onset to confirmed rest).

        ``quiet_hop`` starts the held quiet run. A rest fluctuation above the offset threshold can
        break an earlier quiet run; the offset is dated at the first quiet hop after the last hop
        above the *onset* threshold, which such a fluctuation does not reach.
        """
        s = self.settings
        timing = np.concatenate(trial.timing_history)[: quiet_hop - trial.onset_hop]
        active = np.flatnonzero(timing >= trial.mean_uv + s.onset_sd * trial.sd_uv)
        last_active = int(active[-1]) if active.size else 0
        quiet = np.flatnonzero(timing[last_active:] < trial.offset_threshold_uv)
        offset_rel = last_active + int(quiet[0]) if quiet.size else timing.shape[0]
        offset_end = (trial.onset_hop + offset_rel) * self._hop
        if 0 < offset_rel < timing.shape[0]:
            previous, current = float(timing[offset_rel - 1]), float(timing[offset_rel])
            offset_end = self._crossing_index(
                trial.onset_hop + offset_rel, previous, current, trial.offset_threshold_uv
            )
        history = np.concatenate(trial.history)
        shape = self._shape(history)
        if np.isfinite(shape).any():
            peak_rel = int(np.nanargmax(shape))
            peak_uv = float(shape[peak_rel])
        else:  # shorter than four amplitude windows: a twitch, measured on the 250 ms RMS
            peak_rel = int(np.argmax(history))
            peak_uv = float(history[peak_rel])
        span_uv = peak_uv - trial.mean_uv
        at_plateau = np.flatnonzero(history >= trial.mean_uv + s.release_start_fraction * span_uv)
        plateau_rel = int(at_plateau[0]) if at_plateau.size else peak_rel
        release_rel = min(int(at_plateau[-1]) + 1 if at_plateau.size else peak_rel, history.shape[0] - 1)
        below_10 = np.flatnonzero(history[release_rel:] < trial.mean_uv + s.release_end_fraction * span_uv)
        end_rel = release_rel + int(below_10[0]) if below_10.size else history.shape[0] - 1
        steps = shape[release_rel :: self._step]
        release_steps = steps[: len(range(release_rel, end_rel + 1, self._step))]
        release_steps = release_steps[np.isfinite(release_steps)]
        monotonic = float(np.mean(np.diff(release_steps) < 0)) if release_steps.shape[0] >= 2 else None
        rebursts = count_rebursts(steps[np.isfinite(steps)], s.reburst_fraction * span_uv)
        onset_index = trial.onset_index
        plateau_index = max(self._amplitude_centre(trial.onset_hop + plateau_rel), onset_index)
        release_start_index = max(self._amplitude_centre(trial.onset_hop + release_rel), plateau_index)
        return Contraction(
            channel_index=c,
            sample_rate_hz=self.sample_rate_hz,
            onset_index=onset_index,
            offset_index=max(offset_end - self._timing.window_samples, onset_index),
            peak_index=max(self._amplitude_centre(trial.onset_hop + peak_rel), onset_index),
            peak_uv=peak_uv,
            baseline_uv=trial.mean_uv,
            baseline_sd_uv=trial.sd_uv,
            plateau_start_index=plateau_index,
            release_start_index=release_start_index,
            release_end_index=max(self._amplitude_centre(trial.onset_hop + end_rel), release_start_index),
            monotonic_fraction=monotonic,
            rebursts=rebursts,
        )
