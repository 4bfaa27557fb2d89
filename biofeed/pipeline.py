"""Per-stream processing between the decoder and the sinks: the one place gaps are handled.

Each EMG stream gets an :class:`~biofeed.dsp.analyze.EmgAnalyzer`. Its noise floor is fixed before
the first sample is analysed, by the rule of :func:`~biofeed.dsp.analyze.estimate_noise_floor`
applied to the stream's first ``floor_window_s`` device seconds (or given from a board profile or
calibration); those blocks are held and then analysed like every later one. The pipeline sees only
decoded blocks, so running a recording's frames through it again (``biofeed analyze``) gives exactly
the events it gave live.

Indices: the analyzers count samples from the stream's first sample in the recording; every event
carries the device ``sample_index`` and ``time_s`` in seconds from that first sample.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block, DeviceInfo, DeviceStatus, Marker, StreamInfo
from biofeed.boards import BoardAssessment, apply_board_assessment, assess_board, find_board_profile
from biofeed.dsp.analyze import AnalyzerUpdate, EmgAnalyzer, estimate_noise_floor
from biofeed.dsp.envelope import MovingRms
from biofeed.dsp.imu.bias import GyroBiasTracker
from biofeed.dsp.imu.channels import imu_rows
from biofeed.dsp.imu.fusion import OrientationFusion
from biofeed.dsp.imu.gate import PostureGate
from biofeed.dsp.imu.motion import MotionInterval, MotionTracker
from biofeed.dsp.imu.posture import Posture
from biofeed.dsp.quality import clipping_rails_uv
from biofeed.dsp.stage import join_blocks

__all__ = [
    "ANALYSIS_JSON_VERSION",
    "BATCH_COALESCE_S",
    "DEFAULT_FLOOR_WINDOW_S",
    "LIVE_ANALYSIS_SPAN_S",
    "LIVE_CLEAN_OFFSET_S",
    "LIVE_IMU_OFFSET_S",
    "LIVE_IMU_SPAN_S",
    "BlockCoalescer",
    "EmgStreamPipeline",
    "Pipeline",
    "PipelineOutput",
]

ANALYSIS_JSON_VERSION = 1
DEFAULT_FLOOR_WINDOW_S = 10.0
"""Device seconds of a stream's start used to fix its noise floor when no floor is given."""
BATCH_COALESCE_S = 1.0
"""Block span for batch runs (analysis of a recording, simulation as fast as possible)."""
LIVE_ANALYSIS_SPAN_S = 0.1
"""Live: EMG blocks are filtered (the display) as they come and analysed every this many device seconds.

*Decision*: the analysis events already come 0.3 s late (the ECG stage) and up to 0.2 s more with
an IMU; 0.1 s more spares about 4/5 of the later stages' fixed cost per 20 ms block."""
LIVE_CLEAN_OFFSET_S = 0.07
"""Live: the EMG ECG stage runs on its own at this offset from the analysis steps' device-time grid.

*Decision*: the ECG stage was about half of the 0.1 s analysis step's cost; on a block of its own
(20 ms blocks: two before the analysis, one after the IMU step) no block carries more than one of
the three costly steps. The analysis then goes on from what the ECG stage gave 0.03 s earlier: its
events come up to 0.03 s later; the results are the same."""
LIVE_IMU_SPAN_S = 0.1
"""Live: IMU blocks (5 ms to 50 ms packets) are merged into blocks of this many device seconds."""
LIVE_IMU_OFFSET_S = LIVE_IMU_SPAN_S / 2
"""Live: the merged IMU blocks end at this offset from the EMG analysis steps' device-time grid.

*Decision*: the EMG analysis runs at device times that are multiples of :data:`LIVE_ANALYSIS_SPAN_S`,
the IMU step half a period later: the two never fall on the same 20 ms block (they did, and set the
block p99). The results do not depend on it (both chains are chunk-invariant, to the last bit)."""

Item = Block | DeviceInfo | Marker | DeviceStatus
Event = dict[str, Any]

DISPLAY_ENVELOPE_WINDOW_S = 0.25
"""SCIENCE.md 3.5: the 250 ms RMS is the display envelope."""
DISPLAY_ENVELOPE_HOP_S = 0.01


@dataclass
class PipelineOutput:
    """What one item gave.

    Attributes
    ----------
    events : list of dict
        Lines for ``events.jsonl`` (docs/analysis-json.md), in device-time order per stream.
    display : list of Block
        With ``display=True`` only: per EMG stream, ``<stream>.filtered`` (the band-passed and
        notched sEMG, uV, at the stream's rate) and ``<stream>.envelope`` (its 250 ms RMS every
        10 ms, uV, noise not removed), each block's with that block: taken before the ECG stage,
        they do not wait for its 0.3 s hold (nor show its subtraction; docs/dsp.md). Never
        recorded: they are derived from the recording.
    """

    events: list[Event] = field(default_factory=list)
    display: list[Block] = field(default_factory=list)

    def extend(self, other: PipelineOutput) -> None:
        """Append another output's events and blocks."""
        self.events += other.events
        self.display += other.display


@dataclass
class _FloorWindow:
    """Blocks held until the noise floor is fixed."""

    blocks: list[Block] = field(default_factory=list)
    n_samples: int = 0


class ImuPipeline:
    """The IMUs of one device: gyro bias -> orientation per stream, into one motion tracker.

    The tracker and its :class:`~biofeed.dsp.imu.gate.PostureGate` gate the EMG set points
    (quasi-static, per posture: SCIENCE.md 4), give the postures a trial's verdict compares
    (SCIENCE.md 6) and the movements that make a contraction an artifact. Only streams with three
    acc and three gyro channels at the device's first IMU rate are followed.

    Parameters
    ----------
    device : DeviceInfo
        The device whose IMU streams to follow.

    Raises
    ------
    ValueError
        When the device has no IMU stream.
    """

    def __init__(self, device: DeviceInfo) -> None:
        streams = [s for s in device.streams if _is_imu(s)]
        if not streams:
            raise ValueError(f"device {device.device_id!r} has no IMU stream")
        rate_hz = streams[0].sample_rate_hz
        self._chains = {
            s.name: (GyroBiasTracker(rate_hz), OrientationFusion(rate_hz))
            for s in streams
            if s.sample_rate_hz == rate_hz
        }
        self.tracker = MotionTracker(rate_hz, [f"{name}_orientation" for name in self._chains])
        self.gate = PostureGate(self.tracker)
        self.movements: list[MotionInterval] = []
        """Every movement interval closed so far (device seconds), in time order."""

    def follows(self, block: Block) -> bool:
        """Whether ``block`` is one of the IMU streams followed."""
        return block.info.name in self._chains

    def process(self, block: Block) -> None:
        """Take one raw IMU block of a followed stream."""
        bias, fusion = self._chains[block.info.name]
        self.movements += self.tracker.process(fusion.process(bias.process(block)))

    def finish(self) -> None:
        """End of data: the tracker settles everything it holds."""
        self.movements += self.tracker.finish()


def _is_imu(stream: StreamInfo) -> bool:
    try:
        imu_rows(stream)
    except ValueError:
        return False
    return True


class _ShiftedGate:
    """The IMU's gate, postures and movements on an EMG stream's time axis (seconds from its first sample).

    A :class:`~biofeed.dsp.tension.PostureTimeline` and a
    :class:`~biofeed.dsp.pandiculation.PostureSource`.
    """

    def __init__(self, imu: ImuPipeline, origin_s: float) -> None:
        self._imu = imu
        self._origin_s = origin_s

    @property
    def settled_s(self) -> float:
        return self._imu.tracker.settled_s - self._origin_s

    def __call__(self, start_s: float, end_s: float) -> bool:
        return self._imu.gate(start_s + self._origin_s, end_s + self._origin_s)

    def posture_of(self, start_s: float, end_s: float) -> int | None:
        return self._imu.gate.posture_of(start_s + self._origin_s, end_s + self._origin_s)

    def postures_at(self, times_s: npt.ArrayLike) -> npt.NDArray[np.int64]:
        return self._imu.gate.postures_at(np.asarray(times_s, dtype=np.float64) + self._origin_s)

    def posture_label(self, posture_id: int) -> str:
        return self._imu.gate.posture_label(posture_id)

    def movement_between(self, start_s: float, end_s: float) -> MotionInterval | None:
        movement = self._imu.tracker.movement_between(start_s + self._origin_s, end_s + self._origin_s)
        return self.shifted(movement) if movement is not None else None

    def shifted(self, movement: MotionInterval) -> MotionInterval:
        """A movement interval of device time on this stream's axis."""
        return dataclasses.replace(
            movement, start_s=movement.start_s - self._origin_s, end_s=movement.end_s - self._origin_s
        )

    def posture_between(self, start_s: float, end_s: float) -> Posture | None:
        return self._imu.tracker.posture_between(start_s + self._origin_s, end_s + self._origin_s)


class EmgStreamPipeline:
    """The sEMG chain of one stream, with its noise floor fixed from the stream's start.

    Parameters
    ----------
    info : StreamInfo
        The EMG stream.
    origin_index : int
        Device sample index of the stream's first sample in this recording (time zero).
    noise_floor_uv : float or array_like, optional
        Known floor per channel (board profile, calibration); else estimated from the start.
    floor_window_s : float
        Device seconds held to estimate the floor when it is not given.
    analyzer_options : mapping, optional
        Keyword options of :class:`~biofeed.dsp.analyze.EmgAnalyzer` (band, mains, ecg ...).
    display : bool
        Also give the display blocks (:class:`PipelineOutput`).
    imu : ImuPipeline or None
        The device's IMUs: they gate the set point and judge posture changes.
    analysis_span_s : float
        Blocks are filtered (faults, band-pass, mains: the display) as they come, and analysed (ECG,
        phases, set point, trials) by the block that reaches each device time that is a multiple of
        this many seconds (device sample index over rate); 0: every block. The results do not depend
        on it (every stage is chunk-invariant); the analysis events come up to this much later, at a
        fraction of the per-block cost.
    clean_offset_s : float, optional
        With ``analysis_span_s``: the ECG stage runs on its own, by the block that reaches each device
        time this many seconds past a multiple of the span, and the analysis goes on from what it
        cleaned (the rest waits for the next one). None: the ECG stage runs with the analysis.
    board : BoardAssessment or None
        The board behind the stream (:func:`~biofeed.boards.assess_device_stream`). When it cannot
        resolve true relaxation, the stream's first output carries one ``warning`` event saying so
        (with the assessment under ``board``), and every trial's ``true``, ``transient`` or ``none``
        verdict becomes ``not_measurable`` with the board's reason
        (:func:`~biofeed.boards.apply_board_assessment`).
    """

    def __init__(
        self,
        info: StreamInfo,
        origin_index: int,
        *,
        noise_floor_uv: float | npt.ArrayLike | None = None,
        floor_window_s: float = DEFAULT_FLOOR_WINDOW_S,
        analyzer_options: Mapping[str, Any] | None = None,
        display: bool = False,
        imu: ImuPipeline | None = None,
        analysis_span_s: float = 0.0,
        clean_offset_s: float | None = None,
        board: BoardAssessment | None = None,
    ) -> None:
        if not floor_window_s > 0:
            raise ValueError(f"floor_window_s must be positive, got {floor_window_s}")
        if not analysis_span_s >= 0:
            raise ValueError(f"analysis_span_s must be >= 0, got {analysis_span_s}")
        self._analysis_span_samples = math.ceil(analysis_span_s * info.sample_rate_hz)
        self._next_analysis_index = 0  # device sample index: the next block reaching it is analysed
        self._clean_offset_samples = (
            None if clean_offset_s is None or analysis_span_s == 0 else math.ceil(clean_offset_s * info.sample_rate_hz)
        )
        self._next_clean_index = 0  # device sample index: the next block reaching it goes through the ECG stage
        self.info = info
        self.board = board
        self._board_warning_due = board is not None and not board.resolves_true_relaxation
        self.origin_index = origin_index
        self._options = dict(analyzer_options or {})
        self._imu = imu
        self._shifted: _ShiftedGate | None = None
        # A stream re-created after a changed INFO does not repeat the movements its predecessor reported.
        self._n_movements_reported = len(imu.movements) if imu is not None else 0
        if imu is not None:
            self._shifted = _ShiftedGate(imu, origin_index / info.sample_rate_hz)
            self._options.setdefault("gate", self._shifted)
            self._options.setdefault("posture", self._shifted)
        self._given_floor = noise_floor_uv
        self._floor_samples = math.ceil(floor_window_s * info.sample_rate_hz)
        self._held: _FloorWindow | None = _FloorWindow()
        self._analyzer: EmgAnalyzer | None = None
        self._floor_source = ""
        self._trials: list[Event] = []
        self._artifacts: list[Event] = []
        self._faults: list[Event] = []
        self._display = display
        self._filtered_info = StreamInfo(
            f"{info.name}.filtered", info.sample_rate_hz, info.channels, info.device_id, info.stream_id
        )
        self._envelope = MovingRms(info.sample_rate_hz, DISPLAY_ENVELOPE_WINDOW_S, DISPLAY_ENVELOPE_HOP_S)
        self._envelope_info = StreamInfo(
            f"{info.name}.envelope",
            info.sample_rate_hz / self._envelope.hop_samples,
            info.channels,
            info.device_id,
            info.stream_id,
        )

    @property
    def analyzer(self) -> EmgAnalyzer | None:
        """The analyzer, once the noise floor is fixed."""
        return self._analyzer

    def process(self, block: Block) -> PipelineOutput:
        """Take one decoded block of this stream; return the events (and display blocks) it settles."""
        relative = Block(
            self.info,
            block.data,
            block.first_index - self.origin_index,
            block.gap_before,
            block.received_at,
        )
        output = PipelineOutput(events=self._board_warning(relative.first_index))
        if self._held is None:
            analyzer = self._require_analyzer()
            output.extend(self._output(analyzer.filter(relative)))
            if self._clean_offset_samples is not None and block.end_index >= self._next_clean_index:
                output.extend(self._output(analyzer.clean()))
                self._next_clean_index = self._next_on_grid(block.end_index, self._clean_offset_samples)
            if block.end_index >= self._next_analysis_index:
                output.extend(self._output(analyzer.analyze(clean=self._clean_offset_samples is None)))
                output.events += self._movement_events()
                self._next_analysis_index = self._next_on_grid(block.end_index)
            return output
        self._held.blocks.append(relative)
        self._held.n_samples += relative.n_samples
        if self._given_floor is None and self._held.n_samples < self._floor_samples:
            return output
        output.extend(self._start())
        return output

    def _next_on_grid(self, end_index: int, offset: int = 0) -> int:
        """After a step up to device index ``end_index``: the next index of its grid (``offset`` past the span's)."""
        span = self._analysis_span_samples
        return ((end_index - offset) // span + 1) * span + offset if span else end_index

    def _board_warning(self, relative_index: int) -> list[Event]:
        """The one ``warning`` event of a board that cannot resolve true relaxation (at the stream's first block)."""
        if not self._board_warning_due or self.board is None:
            return []
        self._board_warning_due = False
        text = f"{self.info.name}: {self.board.verdict_reason}"
        return [self._event("warning", None, relative_index, text=text, board=self.board.to_json())]

    def finish(self) -> PipelineOutput:
        """End of data: analyse what is held, close faults and trials."""
        output = self._start() if self._held is not None and self._held.blocks else PipelineOutput()
        if self._analyzer is not None:
            output.extend(self._output(self._analyzer.finish()))
            output.events += self._movement_events()
        return output

    def _movement_events(self) -> list[Event]:
        """``motion`` events for the IMU's movements closed since the last call (analysed streams only)."""
        if self._imu is None or self._shifted is None or self._analyzer is None:
            return []
        fresh = self._imu.movements[self._n_movements_reported :]
        self._n_movements_reported = len(self._imu.movements)
        fs = self.info.sample_rate_hz
        events = []
        for movement in fresh:
            shifted = self._shifted.shifted(movement)
            events.append(self._event("motion", None, round(shifted.start_s * fs), **shifted.to_json()))
        return events

    def channel_results(self) -> list[dict[str, Any]]:
        """Per channel, the ``analyze --json`` object (docs/analysis-json.md)."""
        results = []
        for c, channel in enumerate(self.info.channels):
            analyzer = self._analyzer
            set_point = analyzer.set_point_uv(c) if analyzer is not None else math.nan
            by_posture = analyzer.set_points_by_posture(c) if analyzer is not None else {}
            results.append(
                {
                    "name": channel.name,
                    "stream": self.info.name,
                    "fs_hz": self.info.sample_rate_hz,
                    "noise_floor_uv": analyzer.noise_floor(c) if analyzer is not None else None,
                    "noise_floor_source": self._floor_source or None,
                    "set_point_uv": _finite_or_none(set_point),
                    "posture": analyzer.posture_label(analyzer.posture_id(c)) if analyzer is not None else None,
                    "set_points": [
                        {
                            "posture_id": posture_id,
                            "posture": analyzer.posture_label(posture_id) if analyzer is not None else None,
                            "set_point_uv": _finite_or_none(value),
                        }
                        for posture_id, value in by_posture.items()
                    ],
                    "contractions": [_contraction_json(t) for t in self._trials if t["channel"] == channel.name],
                    "movement_artifacts": [
                        _contraction_json(a) for a in self._artifacts if a["channel"] == channel.name
                    ],
                    "signal_faults": sorted(
                        (_contraction_json(f) for f in self._faults if f["channel"] == channel.name),
                        key=lambda f: (f["start_s"], f["kind"]),
                    ),
                }
            )
        return results

    def _require_analyzer(self) -> EmgAnalyzer:
        if self._analyzer is None:
            raise RuntimeError("the analyzer starts once the noise floor is fixed")
        return self._analyzer

    def _start(self) -> PipelineOutput:
        held, self._held = self._held, None
        if held is None:
            return PipelineOutput()
        start_index = held.blocks[0].first_index
        try:
            if self._given_floor is not None:
                floor, source = estimate_noise_floor(held.blocks[0], self._given_floor)
            else:
                data = np.concatenate([b.data for b in held.blocks], axis=1)
                # The floor comes from the signal alone: an IMU gate here would make it depend on
                # how the EMG and IMU blocks happened to interleave.
                options = {k: v for k, v in self._options.items() if k not in ("gate", "posture")}
                floor, source = estimate_noise_floor(Block(self.info, data, start_index), options=options)
            analyzer = EmgAnalyzer(self.info.sample_rate_hz, floor, **self._options)
        except ValueError as exc:
            # Too little data for a noise floor, or a rate that cannot carry an EMG band: this stream
            # is not analysed, and the recording says why.
            warning = self._event("warning", None, start_index, text=f"{self.info.name} not analysed: {exc}")
            return PipelineOutput(events=[warning])
        self._floor_source = source
        self._analyzer = analyzer
        events = [
            self._event(
                "noise_floor",
                c,
                start_index,
                noise_floor_uv=analyzer.noise_floor(c),
                source=source,
            )
            for c in range(self.info.n_channels)
        ]
        events += [self._event("warning", None, start_index, text=w) for w in analyzer.warnings]
        output = PipelineOutput(events=events)
        for block in held.blocks:
            output.extend(self._output(analyzer.filter(block)))
        output.extend(self._output(analyzer.analyze()))
        end_index = held.blocks[-1].end_index + self.origin_index
        self._next_analysis_index = self._next_on_grid(end_index)
        if self._clean_offset_samples is not None:
            self._next_clean_index = self._next_on_grid(end_index, self._clean_offset_samples)
        return output

    def _event(self, event_type: str, channel_index: int | None, relative_index: int, /, **fields: Any) -> Event:
        # Positional-only: the fields may carry any name (a signal fault's ``kind``).
        return {
            "type": event_type,
            "stream": self.info.name,
            "channel": self.info.channels[channel_index].name if channel_index is not None else None,
            "sample_index": self.origin_index + relative_index,
            "time_s": relative_index / self.info.sample_rate_hz,
            **fields,
        }

    def _output(self, update: AnalyzerUpdate) -> PipelineOutput:
        output = PipelineOutput(events=self._events(update))
        if self._display:
            for cleaned in update.filtered:
                absolute = cleaned.first_index + self.origin_index
                output.display.append(
                    Block(self._filtered_info, cleaned.data, absolute, cleaned.gap_before, cleaned.received_at)
                )
                envelope = self._envelope.process(cleaned)
                if envelope.n_samples:
                    first = envelope.first_index + self.origin_index // self._envelope.hop_samples
                    output.display.append(
                        Block(self._envelope_info, envelope.data, first, envelope.gap_before, cleaned.received_at)
                    )
        return output

    def _events(self, update: AnalyzerUpdate) -> list[Event]:
        fs = self.info.sample_rate_hz
        events = []
        analyzer = self._require_analyzer()
        for window in update.windows:
            events.append(
                self._event(
                    "window",
                    window.channel_index,
                    window.end_index,
                    start_time_s=window.start_index / fs,
                    level_uv=_finite_or_none(window.corrected_uv),
                    rest=window.rest,
                    usable=window.usable,
                    set_point_uv=_finite_or_none(window.set_point_uv),
                    posture=analyzer.posture_label(window.posture_id),
                    posture_id=window.posture_id if window.posture_id >= 0 else None,
                )
            )
        for phase in update.events:
            events.append(self._event("phase", phase.channel_index, phase.sample_index, phase=phase.phase.value))
        for fault in update.faults:
            details = {k: v for k, v in fault.to_json().items() if k != "channel_index"}
            event = self._event("signal_fault", fault.channel_index, fault.start_index, **details)
            self._faults.append(event)
            events.append(event)
        for mains in update.mains:
            events.append(self._event("mains", None, round(mains.time_s * fs), **mains.to_json()))
        for ecg in update.ecg:
            details = {k: v for k, v in ecg.to_json().items() if k != "channel_index"}
            events.append(self._event("ecg", ecg.channel_index, round(ecg.time_s * fs), **details))
        for artifact in update.artifacts:
            details = {k: v for k, v in artifact.to_json().items() if k != "channel_index"}
            event = self._event(
                "movement_artifact", artifact.channel_index, artifact.contraction.onset_index, **details
            )
            self._artifacts.append(event)
            events.append(event)
        for trial in update.trials:
            if trial.final:
                contraction = trial.contraction
                details = {k: v for k, v in trial.to_json().items() if k != "channel_index"}
                event = self._event("trial", contraction.channel_index, contraction.onset_index, **details)
                event = apply_board_assessment(event, self.board)
                self._trials.append(event)
                events.append(event)
        return events


def _contraction_json(trial_event: Event) -> dict[str, Any]:
    """A ``trial``, ``movement_artifact`` or ``signal_fault`` event without its envelope, for ``analyze --json``."""
    envelope = ("type", "stream", "channel", "sample_index", "time_s")
    return {k: v for k, v in trial_event.items() if k not in envelope}


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


class BlockCoalescer:
    """Merges contiguous blocks of a stream into blocks of at least ``span_s`` device seconds.

    The DSP stages are chunk-invariant, so merging changes no result; it spares the per-block
    overhead of the 10 ms packets a device sends when nobody waits for each one (analysis of a
    recording, a simulation written as fast as possible). Blocks are never merged across a gap or
    a change of stream description.

    Parameters
    ----------
    span_s : float
        Device seconds per merged block (at least; the last one of a stream may be shorter).
    offset_s : float, optional
        Instead, merged blocks end on a device-time grid: each is given by the first block that
        reaches a time ``offset_s + m * span_s`` (device sample index over rate, any integer ``m``),
        so they end at the same device times however the stream was cut into packets.
    """

    def __init__(self, span_s: float, *, offset_s: float | None = None) -> None:
        if not span_s > 0:
            raise ValueError(f"span_s must be positive, got {span_s}")
        self.span_s = span_s
        self.offset_s = offset_s
        self._held: dict[str, list[Block]] = {}  # per stream: contiguous blocks

    def add(self, block: Block) -> list[Block]:
        """Take one block; return the merged blocks it completes."""
        out: list[Block] = []
        held = self._held.get(block.info.name, [])
        if held and (block.gap_before or block.info != held[0].info or block.first_index != held[-1].end_index):
            out.append(join_blocks(held))
            held = []
        held.append(block)
        if self._completes(held[0].first_index, block.end_index, block.info.sample_rate_hz):
            out.append(join_blocks(held))
            self._held.pop(block.info.name, None)
        else:
            self._held[block.info.name] = held
        return out

    def _completes(self, first_index: int, end_index: int, rate_hz: float) -> bool:
        """Whether held contiguous samples ``first_index`` to ``end_index`` make a merged block."""
        if self.offset_s is None:
            return end_index - first_index >= self.span_s * rate_hz
        return self._grid_cell(end_index, rate_hz) > self._grid_cell(first_index, rate_hz)

    def _grid_cell(self, index: int, rate_hz: float) -> int:
        """The span of the grid device index ``index`` falls in (a grid time within 1 ns counts as reached)."""
        return math.floor((index / rate_hz - (self.offset_s or 0.0)) / self.span_s + 1e-9)

    def flush(self) -> list[Block]:
        """Every block still held, merged per stream."""
        out = [join_blocks(held) for held in self._held.values() if held]
        self._held = {}
        return out


class Pipeline:
    """Routes decoded items to one :class:`EmgStreamPipeline` per EMG stream.

    Parameters
    ----------
    noise_floor_uv : mapping of str to float or array_like, optional
        Known floors by stream name.
    floor_window_s : float
        See :class:`EmgStreamPipeline`.
    analyzer_options : mapping, optional
        Keyword options of :class:`~biofeed.dsp.analyze.EmgAnalyzer`.
    coalesce_s : float
        0 (live): every EMG block is filtered as it comes (the display) and analysed every
        :data:`LIVE_ANALYSIS_SPAN_S` of device time, its ECG stage on its own
        :data:`LIVE_CLEAN_OFFSET_S` later; IMU blocks are merged into :data:`LIVE_IMU_SPAN_S`
        ending :data:`LIVE_IMU_OFFSET_S` after each analysis time, never on the same block. Above 0
        (batch): contiguous blocks of every stream are merged into blocks of this many device
        seconds first. The results are the same.
    display : bool
        Also give display blocks (filtered sEMG, 250 ms envelope) for a live view.
    boards_folder : Path or str, optional
        Where the board profiles are (``calibration/boards`` by default). A device's INFO names its
        board; each EMG stream is assessed against it (:class:`EmgStreamPipeline`, ``board``). The rails
        of the clipping check (``rails_uv`` of :class:`~biofeed.dsp.analyze.EmgAnalyzer`, unless
        ``analyzer_options`` gives them) are the profile's ``range_uv`` within the ADC's full scale that
        the INFO's sample format and scale give (``ChannelInfo.full_scale``); either alone without the
        other (:func:`~biofeed.dsp.quality.clipping_rails_uv`).
    """

    def __init__(
        self,
        *,
        noise_floor_uv: Mapping[str, float | npt.ArrayLike] | None = None,
        floor_window_s: float = DEFAULT_FLOOR_WINDOW_S,
        analyzer_options: Mapping[str, Any] | None = None,
        coalesce_s: float = 0.0,
        display: bool = False,
        boards_folder: Path | str | None = None,
    ) -> None:
        if coalesce_s < 0:
            raise ValueError(f"coalesce_s must be 0 (live) or positive, got {coalesce_s}")
        self._coalescer = BlockCoalescer(coalesce_s) if coalesce_s > 0 else None
        self._imu_coalescer = self._coalescer or BlockCoalescer(LIVE_IMU_SPAN_S, offset_s=LIVE_IMU_OFFSET_S)
        self._analysis_span_s = 0.0 if coalesce_s > 0 else LIVE_ANALYSIS_SPAN_S
        self._display = display
        self._floors = dict(noise_floor_uv or {})
        self._floor_window_s = floor_window_s
        self._options = dict(analyzer_options or {})
        self.streams: dict[str, EmgStreamPipeline] = {}
        self._retired: list[EmgStreamPipeline] = []
        self.imu: ImuPipeline | None = None
        self._boards_folder = boards_folder
        self._device: DeviceInfo | None = None
        self._boards: dict[str, BoardAssessment | None] = {}
        self._profile_range_uv: tuple[float, float] | None = None
        self._emg_streams: dict[str, tuple[StreamInfo, bool]] = {}

    def process(self, item: Item) -> PipelineOutput:
        """Take one decoded item; return the events for ``events.jsonl`` (and display blocks)."""
        output = PipelineOutput()
        if isinstance(item, DeviceInfo):
            if self.imu is None and any(_is_imu(s) for s in item.streams):
                self.imu = ImuPipeline(item)
            if item != self._device:  # INFO comes every second; profiles are read when it changes
                self._device = item
                profile = find_board_profile(item.board_profile, self._boards_folder)
                self._boards = {
                    s.name: assess_board(profile, s.sample_rate_hz) if profile is not None else None
                    for s in item.streams
                    if s.is_emg
                }
                self._profile_range_uv = profile.range_uv if profile is not None else None
            return output
        if not isinstance(item, Block):
            return output
        if not self._is_emg(item.info):
            if self.imu is not None and self.imu.follows(item):
                for block in self._imu_coalescer.add(item):
                    self.imu.process(block)
            return output
        for block in self._coalescer.add(item) if self._coalescer is not None else [item]:
            output.extend(self._process_block(block))
        return output

    def _is_emg(self, info: StreamInfo) -> bool:
        """``info.is_emg``, remembered per stream description (it looks at every channel)."""
        known = self._emg_streams.get(info.name)
        if known is None or known[0] is not info:
            known = self._emg_streams[info.name] = (info, info.is_emg)
        return known[1]

    def _process_block(self, item: Block) -> PipelineOutput:
        stream = self.streams.get(item.info.name)
        if stream is not None and stream.info == item.info:
            return stream.process(item)
        # A new stream, or a changed INFO: a new analyzer on the same time axis.
        output = PipelineOutput()
        if stream is not None:
            output.extend(stream.finish())
            self._retired.append(stream)
        stream = EmgStreamPipeline(
            item.info,
            item.first_index if stream is None else stream.origin_index,
            noise_floor_uv=self._floors.get(item.info.name),
            floor_window_s=self._floor_window_s,
            analyzer_options=self._stream_options(item.info),
            display=self._display,
            imu=self.imu,
            analysis_span_s=self._analysis_span_s,
            clean_offset_s=None if self._analysis_span_s == 0 else LIVE_CLEAN_OFFSET_S,
            board=self._boards.get(item.info.name),
        )
        self.streams[item.info.name] = stream
        output.extend(stream.process(item))
        return output

    def _stream_options(self, info: StreamInfo) -> dict[str, Any]:
        """The analyzer options of a new stream: its clipping rails (``clipping_rails_uv``), unless given."""
        rails_uv = clipping_rails_uv(info, self._profile_range_uv)
        if rails_uv is None:
            return self._options
        return {"rails_uv": rails_uv, **self._options}

    def finish(self) -> PipelineOutput:
        """End of data: every stream's last events."""
        output = PipelineOutput()
        held = self._imu_coalescer.flush()  # every stream's in batch runs (the same coalescer)
        if self.imu is not None:
            for block in held:
                if self.imu.follows(block):
                    self.imu.process(block)
            self.imu.finish()  # settles the gate past every window the EMG streams still hold
        for block in held:
            if block.info.is_emg:
                output.extend(self._process_block(block))
        for stream in self.streams.values():
            output.extend(stream.finish())
        return output

    def analysis_json(self) -> dict[str, Any]:
        """The ``analyze --json`` object of what was processed (call after :meth:`finish`)."""
        channels: dict[tuple[str, str], dict[str, Any]] = {}
        for stream in [*self._retired, *self.streams.values()]:
            for result in stream.channel_results():
                key = (result["stream"], result["name"])
                earlier = channels.get(key)
                if earlier is not None:  # same channel before a changed INFO: keep its lists' items first
                    for listed in ("contractions", "movement_artifacts", "signal_faults"):
                        result[listed] = earlier[listed] + result[listed]
                channels[key] = result
        return {"version": ANALYSIS_JSON_VERSION, "channels": list(channels.values())}
