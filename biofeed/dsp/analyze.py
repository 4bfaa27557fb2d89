"""The sEMG analysis chain, streaming (:class:`EmgAnalyzer`) and offline (:func:`analyze_emg`).

Per raw block: signal faults are flagged on the raw samples; NaN/inf are cut out as gaps; then
band-pass -> mains check/notch -> ECG removal (which flags heartbeats it cannot remove as faults too)
-> (phase detector | 1 s RMS windows). A 1 s window is *rest* when it overlaps no contraction and
*usable* when the gate accepts it and no fault touches it; usable rest windows feed the set point,
and every window goes to the trial tracker; a trial whose contraction a fault touches is rejected.
Windows (and trials) are held until the phase detector and the fault detectors have settled past
their end, so a window is never classified before an onset that dates before its end is known: any
chunking gives the same result.

With an IMU (a :class:`~biofeed.dsp.tension.PostureTimeline` as ``gate``), set points and rest
statistics are kept per posture, and a contraction that overlaps *gross* movement (a bend, a change
of posture, a bump: :attr:`~biofeed.dsp.imu.motion.MotionInterval.gross`) within
:data:`MOTION_MARGIN_S` is not a pandiculation: it becomes a :class:`MovementArtifact`, not a trial.
The decision waits until the IMU has settled that far past the contraction's end; the windows and
phase events after it wait with it (the phase events are reported at once, only their bookkeeping
waits), so the result does not depend on how EMG and IMU blocks interleave.

:func:`analyze_emg` is the same chain over a whole array: streaming equals offline by construction.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block, ChannelInfo, ChannelKind, StreamInfo
from biofeed.dsp.ecg import EcgDecision, EcgRemover
from biofeed.dsp.envelope import SET_POINT_WINDOW_S, MovingRms
from biofeed.dsp.filters import DEFAULT_HIGH_PASS_HZ, DEFAULT_LOW_PASS_HZ, BandPassFilter
from biofeed.dsp.imu.motion import MotionInterval
from biofeed.dsp.mains import MainsDecision, MainsNotch
from biofeed.dsp.noise import (
    MIN_HIGH_BAND_RATE_HZ,
    correct_for_noise,
    noise_floor_from_high_band,
    noise_floor_from_rest,
)
from biofeed.dsp.pandiculation import (
    PandiculationTracker,
    PandiculationTrial,
    PostureSource,
    RestWindow,
    TrialCriteria,
)
from biofeed.dsp.phases import Contraction, Phase, PhaseDetector, PhaseEvent, PhaseSettings
from biofeed.dsp.quality import (
    FiniteSplitter,
    SignalFault,
    SignalFaultDetector,
    estimate_rails,
    sample_rate_warnings,
)
from biofeed.dsp.stage import join_blocks
from biofeed.dsp.tension import (
    DEFAULT_N_WINDOWS,
    NO_POSTURE,
    SETTLE_WAIT_LIMIT_S,
    PostureTimeline,
    RestingTension,
    SettlingGate,
    WindowGate,
)

__all__ = [
    "MOTION_MARGIN_S",
    "AnalyzerUpdate",
    "EmgAnalysis",
    "EmgAnalyzer",
    "EmgChannelAnalysis",
    "MovementArtifact",
    "analyze_emg",
    "estimate_noise_floor",
]

MOTION_MARGIN_S = 2.0
"""Gross movement this close to a contraction (before its onset or after its end) makes it a movement
artifact. *Decision*: a movement's artifact spike and EMG burst come in its slow first second, before
the trunk reaches 30 deg/s (the simulator's 4 s posture changes and 3-4 s bends pass 30 deg/s about
1.1-1.2 s in), and a burst can outlast the movement's end by the settling of the new posture."""

MainsMode = Literal["auto", "off", 50, 60]
EcgMode = Literal["auto", "off"]
_MAINS_MODES = ("auto", "off", 50, 60)
_ECG_MODES = ("auto", "off")


@dataclass(frozen=True)
class MovementArtifact:
    """A contraction that overlapped gross movement: a bend, a change of posture, a bump, not a trial.

    Attributes
    ----------
    contraction : Contraction
        The contraction as the phase detector measured it.
    movement : MotionInterval
        The movement within :data:`MOTION_MARGIN_S` of it (device seconds on the EMG stream's axis).
    peak_uv : float
        Noise-corrected peak (1 s RMS), uV.
    """

    contraction: Contraction
    movement: MotionInterval
    peak_uv: float

    @property
    def channel_index(self) -> int:
        """Row of the channel."""
        return self.contraction.channel_index

    def reason(self) -> str:
        """Why it is not a trial, in words."""
        m = self.movement
        return (
            f"gross movement {m.start_s:.1f}-{m.end_s:.1f} s (peak {m.peak_angular_rate_dps:.0f} deg/s, "
            f"{m.peak_linear_acceleration_g:.2f} g): a movement, not a pandiculation"
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (docs/analysis-json.md)."""
        c = self.contraction
        return {
            "channel_index": c.channel_index,
            "onset_s": c.onset_s,
            "end_s": c.end_index / c.sample_rate_hz,
            "peak_uv": self.peak_uv,
            "movement": self.movement.to_json(),
            "reason": self.reason(),
        }


@dataclass(frozen=True)
class AnalyzerUpdate:
    """What one block settled.

    Attributes
    ----------
    events : list of PhaseEvent
        Phase changes (the REST that ends a contraction carries it).
    windows : list of RestWindow
        1 s windows classified (rest/usable, noise-corrected).
    trials : list of PandiculationTrial
        Trials completed (``final``) or updated after their post-rest window (provisional).
    faults : list of SignalFault
        Signal faults that ended.
    mains : list of MainsDecision
        The mains decision, once.
    ecg : list of EcgDecision
        ECG subtraction switching on or off.
    artifacts : list of MovementArtifact
        Contractions found to be movement (IMU), in place of trials.
    filtered : list of Block
        The band-passed (and notched) sEMG of the raw blocks taken by this update, uV, for display:
        before the ECG stage, so without its 0.3 s delay (and without its subtraction).
    """

    events: list[PhaseEvent] = field(default_factory=list)
    windows: list[RestWindow] = field(default_factory=list)
    trials: list[PandiculationTrial] = field(default_factory=list)
    faults: list[SignalFault] = field(default_factory=list)
    mains: list[MainsDecision] = field(default_factory=list)
    ecg: list[EcgDecision] = field(default_factory=list)
    artifacts: list[MovementArtifact] = field(default_factory=list)
    filtered: list[Block] = field(default_factory=list)


@dataclass
class _Contractions:
    """Per channel: finished contraction spans, the open one, and the pre-rest captured at its onset."""

    spans: list[tuple[int, int]] = field(default_factory=list)
    open_onset: int | None = None
    pre_rest_uv: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    queue: deque[tuple[int, int, float]] = field(default_factory=deque)  # (start, end, raw RMS)
    phase: Phase = Phase.CALIBRATING
    pending: deque[PhaseEvent] = field(default_factory=deque)  # reported, not yet applied to windows/trials
    posture: int = NO_POSTURE  # of the latest window held still in a known posture: its set point is shown
    trial_posture: int = NO_POSTURE  # the open contraction's, from its onset


class EmgAnalyzer:
    """The whole sEMG chain for one stream, block by block.

    Parameters
    ----------
    sample_rate_hz : float
        Rate of the raw blocks.
    noise_floor_uv : float or array_like, shape (n_channels,)
        Noise floor per channel in the EMG band, uV.
    high_pass_hz, low_pass_hz : float
        Band-pass (:func:`biofeed.dsp.filters.design_emg_band`).
    mains : {"auto", "off", 50, 60}
        Detect and notch when needed; never; or always notch that line.
    ecg : {"auto", "off"}
        QRS template subtraction when the heart shows (adds a 0.3 s delay), or none.
    rails_uv : tuple of float or None
        ADC rails for the clipping check.
    reference_contraction_uv : array_like or None
        Reference contraction per channel (noise-corrected uV) for the contraction score.
    gate : WindowGate or None
        Called per 1 s window with its device time span; False keeps it out of the set points (IMU).
        A :class:`~biofeed.dsp.tension.SettlingGate` holds windows until it covers them; a
        :class:`~biofeed.dsp.tension.PostureTimeline` also keeps rest statistics and set points per
        posture and makes contractions near gross movement :class:`MovementArtifact` s.
    posture : PostureSource or None
        Trunk posture over device time (IMU): a trial whose posture changed is ``rejected``.
    set_point_windows : int
        Gated windows in the set point (SCIENCE.md 4: 30-60).
    phase_settings : PhaseSettings or None
    criteria : TrialCriteria or None
    seed : int
        Bootstrap seed.

    Raises
    ------
    ValueError
        For a bad mode, or a rate that cannot carry an EMG band.
    """

    def __init__(
        self,
        sample_rate_hz: float,
        noise_floor_uv: float | npt.ArrayLike,
        *,
        high_pass_hz: float = DEFAULT_HIGH_PASS_HZ,
        low_pass_hz: float = DEFAULT_LOW_PASS_HZ,
        mains: MainsMode = "auto",
        ecg: EcgMode = "auto",
        rails_uv: tuple[float, float] | None = None,
        reference_contraction_uv: npt.ArrayLike | None = None,
        gate: WindowGate | None = None,
        posture: PostureSource | None = None,
        set_point_windows: int = DEFAULT_N_WINDOWS,
        phase_settings: PhaseSettings | None = None,
        criteria: TrialCriteria | None = None,
        seed: int = 0,
    ) -> None:
        if mains not in _MAINS_MODES:
            raise ValueError(f"mains must be one of {_MAINS_MODES}, got {mains!r}")
        if ecg not in _ECG_MODES:
            raise ValueError(f"ecg must be one of {_ECG_MODES}, got {ecg!r}")
        self.sample_rate_hz = float(sample_rate_hz)
        self.band_pass = BandPassFilter(sample_rate_hz, high_pass_hz, low_pass_hz)
        band = self.band_pass.band
        self.mains = (
            None
            if mains == "off"
            else MainsNotch(sample_rate_hz, band.low_pass_hz, None if mains == "auto" else float(mains))
        )
        self.ecg = None if ecg == "off" else EcgRemover(sample_rate_hz)
        self._timeline = gate if isinstance(gate, PostureTimeline) else None
        self.phases = PhaseDetector(sample_rate_hz, phase_settings, self._timeline)
        self.windows = MovingRms(sample_rate_hz, SET_POINT_WINDOW_S, SET_POINT_WINDOW_S)
        self.faults = SignalFaultDetector(sample_rate_hz, rails_uv=rails_uv)
        self.noise_floor_uv = np.atleast_1d(np.asarray(noise_floor_uv, dtype=np.float64))
        self.tension = RestingTension(self.noise_floor_uv, n_windows=set_point_windows)
        self.trials = PandiculationTracker(self.noise_floor_uv, reference_contraction_uv, criteria, seed, posture)
        self.gate = gate
        self._settling = gate if isinstance(gate, SettlingGate) else None  # a Protocol check: slow, done once
        self._splitter = FiniteSplitter()
        self._channels: list[_Contractions] = []
        self._known_faults: list[SignalFault] = []
        self._last_block: Block | None = None
        self._held: list[list[Block]] = []  # filtered, not yet cleaned: runs of contiguous pieces
        self._cleaned: list[Block] = []  # through the ECG stage, not yet analysed

    @property
    def warnings(self) -> list[str]:
        """Plain-words warnings about the configuration (a low rate)."""
        return sample_rate_warnings(self.band_pass.band)

    def noise_floor(self, channel_index: int) -> float:
        """Noise floor of a channel, uV."""
        floor = self.noise_floor_uv
        return float(floor[channel_index] if floor.size > 1 else floor[0])

    def process(self, block: Block) -> AnalyzerUpdate:
        """Run one raw block (uV, shape (n_channels, n_samples); NaN allowed) through the chain."""
        update = self.filter(block)
        self._clean_held(update)
        self._analyze_cleaned(update)
        return update

    def filter(self, block: Block) -> AnalyzerUpdate:
        """Run one raw block through the first stages only (faults, band-pass, mains); hold it for :meth:`analyze`.

        The update carries the faults ended, the mains decision and the ``filtered`` blocks (display).
        A live caller filters every block and analyses every few (the results do not depend on it: every
        stage is chunk-invariant), sparing the later stages' fixed cost per block.
        """
        update = AnalyzerUpdate()
        n_channels = block.data.shape[0]
        if self.noise_floor_uv.size not in (1, n_channels):
            raise ValueError(f"noise_floor_uv has {self.noise_floor_uv.size} values for {n_channels} channels")
        while len(self._channels) < n_channels:
            self._channels.append(_Contractions())
        self._last_block = block
        update.faults.extend(self.faults.process(block))
        self._known_faults.extend(update.faults)
        for piece in self._splitter.process(block):
            filtered = self.band_pass.process(piece)
            if self.mains is not None:
                filtered = self.mains.process(filtered)
                update.mains.extend(self.mains.take_decisions())
            update.filtered.append(filtered)
            self._hold(filtered)
        return update

    def clean(self) -> AnalyzerUpdate:
        """Run what :meth:`filter` holds through the ECG stage only; hold its output for :meth:`analyze`.

        The update carries the ECG stage's decisions and closed ``ecg_residual`` faults. A live caller
        may clean and analyse on different blocks, spreading the cost (the results do not depend on it).
        """
        update = AnalyzerUpdate()
        self._clean_held(update)
        return update

    def analyze(self, *, clean: bool = True) -> AnalyzerUpdate:
        """Run what :meth:`filter` holds through the ECG stage, the phase detector and the set point.

        Parameters
        ----------
        clean : bool
            False: only what :meth:`clean` already took through the ECG stage goes on; the rest stays held.
        """
        update = AnalyzerUpdate()
        if clean:
            self._clean_held(update)
        self._analyze_cleaned(update)
        return update

    def _hold(self, filtered: Block) -> None:
        """Hold a filtered piece, in the last run when it follows it without a gap."""
        if self._held and filtered.gap_before == 0 and filtered.first_index == self._held[-1][-1].end_index:
            self._held[-1].append(filtered)
        else:
            self._held.append([filtered])

    def _clean_held(self, update: AnalyzerUpdate) -> None:
        held, self._held = self._held, []
        for run in held:
            filtered = join_blocks(run)
            if self.ecg is not None:
                filtered = self.ecg.process(filtered)
                self._take_ecg(update)
            self._cleaned.append(filtered)

    def _analyze_cleaned(self, update: AnalyzerUpdate) -> None:
        cleaned, self._cleaned = self._cleaned, []
        for block in cleaned:
            self._run(block, update)
        self._release(update, final=False)

    def finish(self) -> AnalyzerUpdate:
        """End of data: flush the ECG delay, close faults and trials; return what that settles."""
        update = self.analyze()
        if self.ecg is not None and self._last_block is not None:
            cleaned = self.ecg.flush(self._last_block)
            self._take_ecg(update)
            self._run(cleaned, update)
        self._take_events(self.phases.advance(final=True), update)
        update.faults.extend(self.faults.finish())
        self._known_faults.extend(update.faults)
        self._release(update, final=True)
        update.trials.extend(self.trials.finish())
        return update

    def _take_ecg(self, update: AnalyzerUpdate) -> None:
        """The ECG stage's switches and closed ``ecg_residual`` faults, into the update."""
        if self.ecg is None:
            return
        update.ecg.extend(self.ecg.take_decisions())
        faults = self.ecg.take_faults()
        update.faults.extend(faults)
        self._known_faults.extend(faults)

    def set_point_uv(self, channel_index: int) -> float:
        """Current set point of a channel, in its current posture (noise-corrected uV; NaN with too few windows)."""
        return self.tension.set_point_uv(channel_index, self.posture_id(channel_index))

    def posture_id(self, channel_index: int) -> int:
        """The channel's current posture (of its latest window held still); NO_POSTURE without an IMU."""
        return self._channels[channel_index].posture if channel_index < len(self._channels) else NO_POSTURE

    def posture_label(self, posture_id: int) -> str | None:
        """Short label of a posture (``lying``, ``standing`` ...); None for NO_POSTURE or without an IMU."""
        if self._timeline is None or posture_id == NO_POSTURE:
            return None
        return self._timeline.posture_label(posture_id)

    def set_points_by_posture(self, channel_index: int) -> dict[int, float]:
        """Set point of a channel in every posture it has rest windows in (NaN with too few), uV."""
        return {p: self.tension.set_point_uv(channel_index, p) for p in self.tension.postures(channel_index)}

    def _run(self, cleaned: Block, update: AnalyzerUpdate) -> None:
        events = self.phases.process(cleaned)
        windows = self.windows.process(cleaned)
        h = self.windows.hop_samples
        for j in range(windows.n_samples):
            end = (windows.first_index + j) * h
            for c, channel in enumerate(self._channels):
                channel.queue.append((end - h, end, float(windows.data[c, j])))
        self._take_events(events, update)

    def _take_events(self, events: list[PhaseEvent], update: AnalyzerUpdate) -> None:
        """Report phase events now; apply them to windows and trials in order once they can be (_apply_events)."""
        for event in events:
            self._channels[event.channel_index].pending.append(event)
        update.events.extend(events)

    def _apply_events(self, c: int, horizon: float, final: bool, update: AnalyzerUpdate) -> None:
        """Apply a channel's pending phase events in order, while each can be.

        A contraction's onset once faults and gate have settled past it, the rest ending it once faults
        have settled past its end and the IMU past its end and MOTION_MARGIN_S.
        """
        channel = self._channels[c]
        while channel.pending:
            event = channel.pending[0]
            if event.phase is Phase.CONTRACTION and channel.phase in (Phase.REST, Phase.CALIBRATING):
                if event.sample_index > horizon:
                    break
                # Windows ending before the onset are rest or belong to earlier contractions: settle them,
                # then the set point's windows (in the posture held then) are this trial's pre-rest.
                self._release_channel(c, event.sample_index, update)
                channel.open_onset = event.sample_index
                channel.trial_posture = channel.posture
                channel.pre_rest_uv = self.tension.windows_uv(c, channel.posture)
            elif event.phase is Phase.REST and channel.open_onset is not None:
                contraction = event.contraction
                if contraction is None:  # abandoned at a gap: its windows are still not rest
                    channel.spans.append((channel.open_onset, event.sample_index))
                else:
                    # A fault still open may yet reach into it: its trial waits for the fault detector too.
                    if not (final or (self._movement_settled(contraction) and horizon >= contraction.end_index)):
                        break
                    channel.spans.append((contraction.onset_index, contraction.end_index))
                    self._end_contraction(contraction, channel, update)
                channel.open_onset = None
            channel.phase = event.phase
            channel.pending.popleft()

    def _end_contraction(self, contraction: Contraction, channel: _Contractions, update: AnalyzerUpdate) -> None:
        c = contraction.channel_index
        movement = self._gross_movement(contraction)
        if movement is not None:
            noise = self.noise_floor(c)
            peak = float(correct_for_noise(contraction.peak_uv, noise))
            update.artifacts.append(MovementArtifact(contraction, movement, peak))
            update.trials.extend(self.trials.skip(contraction))
            return
        # Any fault during it rejects a trial (issue 10: no verdict on a flagged segment): contact loss,
        # saturation (its peak and release are not measured), an ECG the subtraction could not remove.
        fault = self._fault_between(c, contraction.onset_index, contraction.end_index)
        update.trials.extend(
            self.trials.start(
                contraction,
                channel.pre_rest_uv,
                fault,
                posture_id=channel.trial_posture,
                posture=self.posture_label(channel.trial_posture),
            )
        )

    def _newest_s(self) -> float:
        return self._last_block.end_index / self.sample_rate_hz if self._last_block is not None else -math.inf

    def _timeline_settled_s(self) -> float:
        """How far the settling gate can answer, or is taken to (SETTLE_WAIT_LIMIT_S)."""
        if self._settling is None:
            return math.inf
        return max(self._settling.settled_s, self._newest_s() - SETTLE_WAIT_LIMIT_S)

    def _movement_settled(self, contraction: Contraction) -> bool:
        if self._timeline is None:
            return True
        end_s = contraction.end_index / self.sample_rate_hz
        return self._timeline_settled_s() >= end_s + MOTION_MARGIN_S

    def _gross_movement(self, contraction: Contraction) -> MotionInterval | None:
        if self._timeline is None:
            return None
        fs = self.sample_rate_hz
        movement = self._timeline.movement_between(
            contraction.onset_index / fs - MOTION_MARGIN_S, contraction.end_index / fs + MOTION_MARGIN_S
        )
        return movement if movement is not None and movement.gross else None

    def _fault_between(self, c: int, start: int, end: int) -> str:
        """The kinds of fault touching device samples [start, end) of a channel, as words ("" for none)."""
        faults = self._known_faults + self.faults.open_faults()
        if self.ecg is not None:
            faults += self.ecg.open_faults()
        found = {f.kind.value for f in faults if f.channel_index == c and f.overlaps(start, end)}
        return ", ".join(sorted(found))

    def _release(self, update: AnalyzerUpdate, final: bool) -> None:
        if not any(ch.queue or ch.pending for ch in self._channels):
            return  # the common case: a 1 s window completes once a second
        fault_horizon: float = math.inf if final else self.faults.settled_index()
        if self.ecg is not None and not final:  # an open ecg_residual fault may reach further
            fault_horizon = min(fault_horizon, self.ecg.settled_index())
        settled_s = self._timeline_settled_s()
        if math.isfinite(settled_s) and not final:  # an IMU gate judges a window only once it covers it
            fault_horizon = min(fault_horizon, math.floor(settled_s * self.sample_rate_hz))
        for c, channel in enumerate(self._channels):
            self._apply_events(c, fault_horizon, final, update)
            horizon = math.inf if final else min(self.phases.settled_index(c), fault_horizon)
            if channel.pending:
                horizon = min(horizon, channel.pending[0].sample_index)
            if channel.open_onset is not None:
                horizon = min(horizon, channel.open_onset)
            self._release_channel(c, horizon, update)
        if self._known_faults:
            # Keep what a queued window, an open contraction or a contraction yet to be dated may touch.
            oldest = min((ch.queue[0][0] for ch in self._channels if ch.queue), default=fault_horizon)
            opens = [ch.open_onset for ch in self._channels if ch.open_onset is not None]
            waiting = [
                e.contraction.onset_index if e.contraction is not None else e.sample_index
                for ch in self._channels
                for e in ch.pending
            ]
            unsettled = [self.phases.settled_index(c) for c in range(len(self._channels))]
            keep_from = min([oldest, *opens, *waiting, *unsettled])
            self._known_faults = [f for f in self._known_faults if f.end_index > keep_from]

    def _release_channel(self, c: int, horizon: float, update: AnalyzerUpdate) -> None:
        channel = self._channels[c]
        noise = self.noise_floor(c)
        while channel.queue and channel.queue[0][1] <= horizon:
            start, end, rms = channel.queue.popleft()
            rest = not (
                any(s < end and start < e for s, e in channel.spans)
                or (channel.open_onset is not None and end > channel.open_onset)
            )
            usable = rest and math.isfinite(rms) and self._fault_between(c, start, end) == ""
            start_s, end_s = start / self.sample_rate_hz, end / self.sample_rate_hz
            if self._timeline is not None:
                held_in = self._timeline.posture_of(start_s, end_s)
                if held_in is not None:
                    channel.posture = held_in
                usable = usable and held_in is not None
            elif usable and self.gate is not None:
                usable = bool(self.gate(start_s, end_s))
            corrected = float(correct_for_noise(rms, noise))
            if usable:
                self.tension.add_window(c, corrected, channel.posture)
            set_point = self.tension.set_point_uv(c, channel.posture)
            window = RestWindow(c, start, end, corrected, rest, usable, set_point, channel.posture)
            update.windows.append(window)
            update.trials.extend(self.trials.add_window(window))
        # Old spans can no longer overlap a queued window.
        if channel.queue:
            first = channel.queue[0][0]
            channel.spans = [(s, e) for s, e in channel.spans if e > first]


@dataclass(frozen=True)
class EmgChannelAnalysis:
    """Offline results of one channel.

    Attributes
    ----------
    name : str
        Channel name.
    fs_hz : float
        Sample rate.
    noise_floor_uv : float
        Noise floor used, uV.
    noise_floor_source : str
        ``given``, ``calibration_rest``, ``high_band`` or ``record_percentile``.
    set_point_uv : float or None
        Set point at the end of the record (noise-corrected uV), None with too few gated windows.
    contractions : tuple of PandiculationTrial
        One trial per detected contraction, final.
    """

    name: str
    fs_hz: float
    noise_floor_uv: float
    noise_floor_source: str
    set_point_uv: float | None
    contractions: tuple[PandiculationTrial, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "fs_hz": self.fs_hz,
            "noise_floor_uv": self.noise_floor_uv,
            "noise_floor_source": self.noise_floor_source,
            "set_point_uv": self.set_point_uv,
            "contractions": [t.to_json() for t in self.contractions],
        }


@dataclass(frozen=True)
class EmgAnalysis:
    """Offline results of a recording.

    Attributes
    ----------
    channels : tuple of EmgChannelAnalysis
    high_pass_hz, low_pass_hz : float
        Band used.
    events : tuple of PhaseEvent
    faults : tuple of SignalFault
    mains : MainsDecision or None
    ecg : tuple of EcgDecision
    warnings : tuple of str
    """

    channels: tuple[EmgChannelAnalysis, ...]
    high_pass_hz: float
    low_pass_hz: float
    events: tuple[PhaseEvent, ...]
    faults: tuple[SignalFault, ...]
    mains: MainsDecision | None
    ecg: tuple[EcgDecision, ...]
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        channels = []
        for c, channel in enumerate(self.channels):
            listed = channel.to_json()
            listed["signal_faults"] = [
                {k: v for k, v in f.to_json().items() if k != "channel_index"}
                for f in self.faults
                if f.channel_index == c
            ]
            channels.append(listed)
        return {
            "band_hz": [self.high_pass_hz, self.low_pass_hz],
            "channels": channels,
            "faults": [f.to_json() for f in self.faults],
            "mains": self.mains.to_json() if self.mains is not None else None,
            "ecg": [d.to_json() for d in self.ecg],
            "warnings": list(self.warnings),
        }


def _stream_info(fs_hz: float, names: Sequence[str]) -> StreamInfo:
    return StreamInfo("emg", fs_hz, tuple(ChannelInfo(n, ChannelKind.EMG, "uV") for n in names))


def _collect(analyzer: EmgAnalyzer, block: Block) -> AnalyzerUpdate:
    whole = analyzer.process(block)
    end = analyzer.finish()
    return AnalyzerUpdate(
        events=whole.events + end.events,
        windows=whole.windows + end.windows,
        trials=whole.trials + end.trials,
        faults=whole.faults + end.faults,
        mains=whole.mains + end.mains,
        ecg=whole.ecg + end.ecg,
        artifacts=whole.artifacts + end.artifacts,
    )  # filtered blocks are for display only: an offline analysis does not keep them


def analyze_emg(
    data_uv: npt.ArrayLike,
    fs_hz: float,
    channel_names: Sequence[str] | None = None,
    *,
    noise_floor_uv: float | npt.ArrayLike | None = None,
    calibration_s: tuple[float, float] | None = None,
    high_pass_hz: float = DEFAULT_HIGH_PASS_HZ,
    low_pass_hz: float = DEFAULT_LOW_PASS_HZ,
    mains: MainsMode = "auto",
    ecg: EcgMode = "auto",
    rails_uv: tuple[float, float] | Literal["auto"] | None = "auto",
    reference_contraction_uv: npt.ArrayLike | None = None,
    phase_settings: PhaseSettings | None = None,
    criteria: TrialCriteria | None = None,
    seed: int = 0,
) -> EmgAnalysis:
    """Analyse a whole sEMG recording with the streaming chain.

    Parameters
    ----------
    data_uv : array_like, shape (n_channels, n_samples) or (n_samples,)
        Raw sEMG in uV; NaN/inf allowed (flagged and skipped as gaps).
    fs_hz : float
        Sample rate.
    channel_names : sequence of str, optional
        Names; ``ch0, ch1, ...`` by default.
    noise_floor_uv : float or array_like, optional
        Known floor (shorted-input test, board profile). Otherwise, in order: the 2nd-5th percentile
        of 1 s RMS in ``calibration_s``; the 450-500 Hz band at fs >= 2 kHz; the 2nd-5th percentile
        of 1 s RMS over the whole record (an upper bound unless the record holds relaxed rest).
    calibration_s : tuple of float, optional
        (start, end) seconds of a supported, relaxed calibration rest.
    high_pass_hz : float
        High-pass of the band (:class:`EmgAnalyzer`).
    low_pass_hz : float
        Low-pass of the band, lowered below Nyquist for low-rate boards.
    mains : {"auto", "off", 50, 60}
        Mains check (:class:`EmgAnalyzer`).
    ecg : {"auto", "off"}
        ECG removal (:class:`EmgAnalyzer`).
    rails_uv : tuple of float, None or "auto"
        ADC rails; "auto" guesses them from repeated extremes (:func:`biofeed.dsp.quality.estimate_rails`).
    reference_contraction_uv : array_like, optional
        Reference contraction per channel, noise-corrected uV.
    phase_settings : PhaseSettings, optional
        Phase detector settings.
    criteria : TrialCriteria, optional
        Verdict and score criteria.
    seed : int
        Bootstrap seed.

    Returns
    -------
    EmgAnalysis

    Raises
    ------
    ValueError
        For bad shapes, names, modes, or a rate that cannot carry an EMG band.
    """
    data = np.asarray(data_uv, dtype=np.float64)
    if data.ndim == 1:
        data = data[None, :]
    if data.ndim != 2 or data.shape[1] == 0:
        raise ValueError(f"data_uv must have shape (n_channels, n_samples), got {np.shape(data_uv)}")
    names = list(channel_names) if channel_names is not None else [f"ch{c}" for c in range(data.shape[0])]
    if len(names) != data.shape[0]:
        raise ValueError(f"{len(names)} channel names for {data.shape[0]} channels")
    info = _stream_info(float(fs_hz), names)
    block = Block(info, data, 0)
    rails = estimate_rails(data) if rails_uv == "auto" else rails_uv
    options: dict[str, Any] = {
        "high_pass_hz": high_pass_hz,
        "low_pass_hz": low_pass_hz,
        "mains": mains,
        "ecg": ecg,
        "rails_uv": rails,
        "reference_contraction_uv": reference_contraction_uv,
        "phase_settings": phase_settings,
        "criteria": criteria,
        "seed": seed,
    }
    floor, source = estimate_noise_floor(block, noise_floor_uv, calibration_s, options)
    analyzer = EmgAnalyzer(float(fs_hz), floor, **options)
    result = _collect(analyzer, block)
    channels = []
    for c, name in enumerate(names):
        set_point = analyzer.set_point_uv(c)
        channels.append(
            EmgChannelAnalysis(
                name=name,
                fs_hz=float(fs_hz),
                noise_floor_uv=analyzer.noise_floor(c),
                noise_floor_source=source,
                set_point_uv=set_point if math.isfinite(set_point) else None,
                contractions=tuple(t for t in result.trials if t.final and t.channel_index == c),
            )
        )
    band = analyzer.band_pass.band
    return EmgAnalysis(
        channels=tuple(channels),
        high_pass_hz=band.high_pass_hz,
        low_pass_hz=band.low_pass_hz,
        events=tuple(result.events),
        faults=tuple(result.faults),
        mains=result.mains[0] if result.mains else None,
        ecg=tuple(result.ecg),
        warnings=tuple(analyzer.warnings),
    )


def estimate_noise_floor(
    block: Block,
    noise_floor_uv: float | npt.ArrayLike | None = None,
    calibration_s: tuple[float, float] | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[npt.NDArray[np.float64], str]:
    """The noise floor per channel and where it came from, by the rule of :func:`analyze_emg`.

    Parameters
    ----------
    block : Block
        Raw sEMG, uV, shape (n_channels, n_samples).
    noise_floor_uv : float or array_like, optional
        A known floor: returned as it is (source ``given``).
    calibration_s : tuple of float, optional
        (start, end) seconds of a relaxed calibration rest within the block.
    options : dict, optional
        :class:`EmgAnalyzer` keyword options (band, mains, ecg ...) for the first pass.

    Returns
    -------
    floor_uv : ndarray, shape (n_channels,)
    source : str
        ``given``, ``high_band``, ``calibration_rest`` or ``record_percentile``.
    """
    options = dict(options or {})
    options.setdefault("high_pass_hz", DEFAULT_HIGH_PASS_HZ)
    options.setdefault("low_pass_hz", DEFAULT_LOW_PASS_HZ)
    n_channels = block.data.shape[0]
    if noise_floor_uv is not None:
        floor = np.broadcast_to(np.asarray(noise_floor_uv, dtype=np.float64), (n_channels,)).copy()
        return floor, "given"
    fs = block.info.sample_rate_hz
    if calibration_s is None and fs >= MIN_HIGH_BAND_RATE_HZ:
        band = BandPassFilter(fs, options["high_pass_hz"], options["low_pass_hz"]).band
        finite = np.isfinite(block.data).all(axis=0)
        return noise_floor_from_high_band(block.data[:, finite], band), "high_band"
    # A first pass with a zero floor: its windows are the uncorrected 1 s RMS of the same chain.
    first_pass = _collect(EmgAnalyzer(fs, 0.0, **options), block)
    rms: list[list[float]] = [[] for _ in range(n_channels)]
    for window in first_pass.windows:
        inside = calibration_s is None or (
            window.start_index >= calibration_s[0] * fs and window.end_index <= calibration_s[1] * fs
        )
        if inside and window.usable:
            rms[window.channel_index].append(window.corrected_uv)
    source = "calibration_rest" if calibration_s is not None else "record_percentile"
    return np.array([noise_floor_from_rest(np.asarray(r)) for r in rms]), source
