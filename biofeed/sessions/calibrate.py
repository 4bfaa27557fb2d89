"""Guided calibration as a pure state machine driven by decoded items (blocks, INFO, STATUS).

The steps come from a calibration protocol (``calibration/protocols/calibration.toml``,
``kind = "calibration"``); each lasts a number of device seconds, so recorded data drives it as
well as a live device, with no wall clock:

- ``signal_check``: contact (no flat line, no NaN, no lead-off flag), clipping (no sample at the
  board's rails, no saturation flag), mains (the 50/60 Hz check of :class:`~biofeed.dsp.mains.MainsNotch`).
- ``noise_floor``: SCIENCE.md 3.6. ``method = "rest"``: the 2nd-5th percentile of 1 s RMS over a
  supported, relaxed rest (2 minutes); at >= 2 kHz the 450-500 Hz band is measured too, and when
  the rest's percentile lies more than :data:`REST_NOT_SILENT_RATIO` above it the rest held muscle
  activity and the band estimate is taken. ``method = "shorted_input"``: the board shorts its
  inputs; the floor is the median 1 s RMS.
- ``set_point`` (one step per posture): SCIENCE.md 4, the median noise-corrected 1 s RMS of the
  last 30 windows, with the IMU's "up" per sensor for that posture.
- ``reference_contraction``: SCIENCE.md 8, a pain-free submaximal contraction held >= 1 s: the
  noise-corrected RMS over the hold.
- ``imu_upright``: standing still and upright; each IMU's "up" and mounting
  (:func:`~biofeed.dsp.imu.calibration.mounting_from_upright`).

:class:`CalibrationRun` takes items in device-time order (:meth:`CalibrationRun.process`) and
returns what changed (a step started, a step finished). With ``auto_advance`` (headless) the steps
follow each other; without it each step waits for :meth:`CalibrationRun.confirm` (the person says
"ready" in the live window), and a failed step can be redone with :meth:`CalibrationRun.retry`.
The result (:class:`CalibrationResult`) is stored with the client and gives later sessions their
noise floor and reference contraction (:meth:`CalibrationResult.pipeline_kwargs`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block, DeviceInfo, DeviceStatus, Marker
from biofeed.boards import BoardProfile
from biofeed.dsp.envelope import SET_POINT_WINDOW_S, MovingRms
from biofeed.dsp.filters import BandPassFilter
from biofeed.dsp.imu.calibration import mounting_from_upright
from biofeed.dsp.imu.channels import imu_rows
from biofeed.dsp.imu.posture import POSTURE_TOLERANCE_DEG
from biofeed.dsp.imu.rotations import vector_angle_deg
from biofeed.dsp.mains import MainsNotch
from biofeed.dsp.noise import (
    MIN_HIGH_BAND_RATE_HZ,
    MIN_REST_WINDOWS,
    correct_for_noise,
    noise_floor_from_high_band,
    noise_floor_from_rest,
)
from biofeed.dsp.quality import FaultKind, FiniteSplitter, SignalFaultDetector, clipping_rails_uv
from biofeed.dsp.tension import DEFAULT_MIN_WINDOWS, DEFAULT_N_WINDOWS
from biofeed.sessions.protocol import protocol_path, read_protocol_file

__all__ = [
    "QUIET_ACC_G",
    "QUIET_GYRO_DPS",
    "REFERENCE_MIN_FLOOR_RATIO",
    "REST_NOT_SILENT_RATIO",
    "UPRIGHT_MAX_TILT_DEG",
    "CalibrationProtocol",
    "CalibrationResult",
    "CalibrationRun",
    "CalibrationStep",
    "CalibrationUpdate",
    "StepKind",
    "StepResult",
    "StepStatus",
    "load_calibration_protocol",
]

REST_NOT_SILENT_RATIO = 1.25
"""On sensor noise alone the rest percentile sits about 5 % below the floor (biofeed.dsp.noise) and the
450-500 Hz estimate within a few % of it; 25 % above means muscle activity of about 0.75 x the floor
remained, so the rest cannot stand for the floor."""
REFERENCE_MIN_FLOOR_RATIO = 5.0
"""A reference contraction must reach 5 x the noise floor (noise-corrected); a comfortable lumbar
contraction reaches 30-60 uV (docs/simulator.md) against a 1-2 uV floor."""
REFERENCE_HOLD_FRACTION = 0.5
"""250 ms windows at or above this fraction of the peak make the hold."""
REFERENCE_MIN_HOLD_S = 1.0
"""SCIENCE.md 7: a contraction held >= 1 s."""
UPRIGHT_MAX_TILT_DEG = 30.0
"""Sensors are taped with x along the spine (docs/imu.md); upright puts "up" within this of +x."""
QUIET_GYRO_DPS = 5.0
"""SCIENCE.md 4: quasi-static below 5 deg/s."""
QUIET_ACC_G = 0.05
"""SCIENCE.md 4: linear acceleration below 0.05 g."""
_ENVELOPE_S = 0.25


class StepKind(StrEnum):
    """The calibration steps."""

    SIGNAL_CHECK = "signal_check"
    NOISE_FLOOR = "noise_floor"
    SET_POINT = "set_point"
    REFERENCE_CONTRACTION = "reference_contraction"
    IMU_UPRIGHT = "imu_upright"


class StepStatus(StrEnum):
    """Where a step is."""

    PENDING = "pending"
    WAITING = "waiting"
    """For :meth:`CalibrationRun.confirm`."""
    MEASURING = "measuring"
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


NoiseMethod = Literal["rest", "shorted_input"]
_NOISE_METHODS = ("rest", "shorted_input")


@dataclass(frozen=True)
class CalibrationStep:
    """One step of a calibration protocol.

    Attributes
    ----------
    kind : StepKind
        What it measures.
    duration_s : float
        Device seconds it lasts.
    instruction : str
        What to tell the person.
    posture : str
        The posture it is done in (``lying_supine``, ``standing`` ...), "" when any.
    method : {"rest", "shorted_input"}
        How a ``noise_floor`` step measures.
    required : bool
        The calibration is complete only when it passed.
    settle_s : float
        Seconds at its start left out (getting into position).
    """

    kind: StepKind
    duration_s: float
    instruction: str
    posture: str = ""
    method: NoiseMethod = "rest"
    required: bool = True
    settle_s: float = 0.0

    @property
    def label(self) -> str:
        """Short name, e.g. ``set_point (lying_supine)``."""
        return f"{self.kind.value} ({self.posture})" if self.posture else self.kind.value


@dataclass(frozen=True)
class CalibrationProtocol:
    """The steps of a calibration.

    Attributes
    ----------
    name, title : str
        Protocol name and words for people.
    steps : tuple of CalibrationStep
        In order.
    """

    name: str
    title: str
    steps: tuple[CalibrationStep, ...]

    @property
    def duration_s(self) -> float:
        """Device seconds of all steps."""
        return sum(s.duration_s for s in self.steps)


def load_calibration_protocol(name: str = "calibration", folder: Path | str | None = None) -> CalibrationProtocol:
    """Read a calibration protocol by name (``calibration/protocols/<name>.toml``) or path.

    Raises
    ------
    ValueError
        Unknown protocol, invalid file, an unknown step kind or noise method (naming the allowed ones).
    """
    path = protocol_path(name, folder)
    data = read_protocol_file(path, "calibration")
    steps = []
    for k, raw in enumerate(data.get("step", [])):
        try:
            kind = StepKind(raw.get("kind"))
        except ValueError:
            allowed = ", ".join(s.value for s in StepKind)
            raise ValueError(f"{path}: step {k} kind must be one of {allowed}, got {raw.get('kind')!r}") from None
        duration_s = raw.get("duration_s")
        settle_s = raw.get("settle_s", 0.0)
        if not (isinstance(duration_s, int | float) and duration_s > 0 and 0 <= settle_s < duration_s):
            raise ValueError(f"{path}: step {k} needs duration_s > 0 and 0 <= settle_s < duration_s")
        method = raw.get("method", "rest")
        if method not in _NOISE_METHODS:
            raise ValueError(f"{path}: step {k} method must be one of {', '.join(_NOISE_METHODS)}, got {method!r}")
        steps.append(
            CalibrationStep(
                kind=kind,
                duration_s=float(duration_s),
                instruction=str(raw.get("instruction", "")),
                posture=str(raw.get("posture", "")),
                method=method,
                required=bool(raw.get("required", True)),
                settle_s=float(settle_s),
            )
        )
    if not steps:
        raise ValueError(f"{path}: a calibration protocol needs at least one [[step]]")
    return CalibrationProtocol(str(data["name"]), str(data.get("title", data["name"])), tuple(steps))


@dataclass(frozen=True)
class StepResult:
    """How a step ended.

    Attributes
    ----------
    index : int
        Position in the protocol.
    kind : StepKind
        What it measured.
    posture : str
        Its posture.
    status : StepStatus
        ``passed``, ``failed`` or ``skipped``.
    reason : str
        Why, in words.
    values : dict
        What it measured (JSON-able; per step kind, docs/sessions.md).
    start_s, end_s : float or None
        The device time it covered.
    """

    index: int
    kind: StepKind
    posture: str
    status: StepStatus
    reason: str
    values: dict[str, Any] = field(default_factory=dict)
    start_s: float | None = None
    end_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "index": self.index,
            "kind": self.kind.value,
            "posture": self.posture,
            "status": self.status.value,
            "reason": self.reason,
            "values": self.values,
            "start_s": self.start_s,
            "end_s": self.end_s,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepResult:
        """Rebuild from :meth:`to_json`."""
        return cls(
            int(data["index"]),
            StepKind(data["kind"]),
            str(data["posture"]),
            StepStatus(data["status"]),
            str(data["reason"]),
            dict(data["values"]),
            data.get("start_s"),
            data.get("end_s"),
        )


@dataclass(frozen=True)
class CalibrationUpdate:
    """Something that changed.

    Attributes
    ----------
    event : {"waiting", "started", "finished", "done"}
        A step waits for confirmation, started measuring, ended; or the calibration is over.
    step_index : int or None
        The step (None for ``done``).
    step : CalibrationStep or None
        Its definition.
    result : StepResult or None
        With ``finished``.
    """

    event: Literal["waiting", "started", "finished", "done"]
    step_index: int | None
    step: CalibrationStep | None
    result: StepResult | None = None


@dataclass(frozen=True)
class CalibrationResult:
    """What a calibration measured, to store with the client and apply to later sessions.

    Attributes
    ----------
    protocol : str
        Calibration protocol name.
    board_profile : str or None
        INFO ``board_profile`` of the device calibrated.
    device_id : str or None
        Its device id.
    steps : tuple of StepResult
        Every step, in order.
    """

    protocol: str
    board_profile: str | None
    device_id: str | None
    steps: tuple[StepResult, ...]

    @property
    def complete(self) -> bool:
        """Every required step passed."""
        return all(s.status is StepStatus.PASSED for s in self.steps if s.values.get("required", True))

    def _passed(self, kind: StepKind) -> list[StepResult]:
        return [s for s in self.steps if s.kind is kind and s.status is StepStatus.PASSED]

    @property
    def stream(self) -> str | None:
        """The EMG stream calibrated."""
        for step in self.steps:
            if "stream" in step.values:
                return str(step.values["stream"])
        return None

    @property
    def noise_floor_uv(self) -> dict[str, float]:
        """Noise floor per channel (uV), from the last passed noise-floor step; {} without one."""
        passed = self._passed(StepKind.NOISE_FLOOR)
        return dict(passed[-1].values["noise_floor_uv"]) if passed else {}

    @property
    def noise_floor_source(self) -> str | None:
        """``calibration_rest``, ``high_band`` or ``shorted_input``; None without a floor."""
        passed = self._passed(StepKind.NOISE_FLOOR)
        return str(passed[-1].values["source"]) if passed else None

    @property
    def set_points_uv(self) -> dict[str, dict[str, float]]:
        """Set point per posture, then per channel (uV)."""
        return {s.posture or "unspecified": dict(s.values["set_point_uv"]) for s in self._passed(StepKind.SET_POINT)}

    @property
    def reference_contraction_uv(self) -> dict[str, float]:
        """Reference contraction per channel (noise-corrected uV); {} without one."""
        passed = self._passed(StepKind.REFERENCE_CONTRACTION)
        return dict(passed[-1].values["reference_contraction_uv"]) if passed else {}

    @property
    def upright(self) -> dict[str, list[float]]:
        """IMU stream -> "up" in sensor coordinates while upright; {} without it."""
        passed = self._passed(StepKind.IMU_UPRIGHT)
        return {k: list(v) for k, v in passed[-1].values["up"].items()} if passed else {}

    @property
    def channels(self) -> list[str]:
        """EMG channel names, in stream order."""
        for step in self.steps:
            if "channels" in step.values:
                return list(step.values["channels"])
        return []

    def pipeline_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~biofeed.pipeline.Pipeline` that apply this calibration.

        Returns
        -------
        dict
            ``noise_floor_uv`` ({stream: [uV per channel]}) when a floor was measured, and
            ``analyzer_options`` with ``reference_contraction_uv`` ([uV per channel]) when a reference
            contraction was. Empty when neither.
        """
        kwargs: dict[str, Any] = {}
        stream, channels = self.stream, self.channels
        floor = self.noise_floor_uv
        if stream is not None and floor and all(c in floor for c in channels):
            kwargs["noise_floor_uv"] = {stream: [floor[c] for c in channels]}
        reference = self.reference_contraction_uv
        if reference and all(c in reference for c in channels):
            kwargs["analyzer_options"] = {"reference_contraction_uv": [reference[c] for c in channels]}
        return kwargs

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the steps and the values later sessions use."""
        return {
            "protocol": self.protocol,
            "board_profile": self.board_profile,
            "device_id": self.device_id,
            "complete": self.complete,
            "stream": self.stream,
            "channels": self.channels,
            "noise_floor_uv": self.noise_floor_uv,
            "noise_floor_source": self.noise_floor_source,
            "set_points_uv": self.set_points_uv,
            "reference_contraction_uv": self.reference_contraction_uv,
            "upright": self.upright,
            "steps": [s.to_json() for s in self.steps],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CalibrationResult:
        """Rebuild from :meth:`to_json`."""
        return cls(
            str(data["protocol"]),
            data.get("board_profile"),
            data.get("device_id"),
            tuple(StepResult.from_json(s) for s in data["steps"]),
        )


@dataclass
class _ImuSamples:
    """Accelerometer and gyroscope samples of one IMU stream with their device times."""

    times_s: list[npt.NDArray[np.float64]] = field(default_factory=list)
    acc_g: list[npt.NDArray[np.float64]] = field(default_factory=list)
    gyro_dps: list[npt.NDArray[np.float64]] = field(default_factory=list)

    def between(self, start_s: float, end_s: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Acc and gyro (each shape (3, n)) of the samples in [start_s, end_s)."""
        if not self.times_s:
            return np.zeros((3, 0)), np.zeros((3, 0))
        times = np.concatenate(self.times_s)
        keep = (times >= start_s) & (times < end_s)
        return np.concatenate(self.acc_g, axis=1)[:, keep], np.concatenate(self.gyro_dps, axis=1)[:, keep]

    def forget_before(self, t_s: float) -> None:
        """Drop samples older than ``t_s``."""
        while self.times_s and self.times_s[0].size and self.times_s[0][-1] < t_s:
            del self.times_s[0], self.acc_g[0], self.gyro_dps[0]


@dataclass
class _StepData:
    """What the current step has collected."""

    start_s: float
    emg: list[Block] = field(default_factory=list)
    lead_off: set[int] = field(default_factory=set)
    saturated: set[int] = field(default_factory=set)


class CalibrationRun:
    """Runs a calibration protocol over decoded items (see the module docstring).

    Parameters
    ----------
    protocol : CalibrationProtocol
        The steps.
    board : BoardProfile or None
        The board's profile: its rails for the clipping check, its shorted-input mode.
    auto_advance : bool
        True (headless): each step starts as soon as the previous one ended. False (live window):
        each step waits for :meth:`confirm`.
    emg_stream : str or None
        The EMG stream to calibrate; the device's first EMG stream when None.
    """

    def __init__(
        self,
        protocol: CalibrationProtocol,
        *,
        board: BoardProfile | None = None,
        auto_advance: bool = True,
        emg_stream: str | None = None,
    ) -> None:
        self.protocol = protocol
        self.board = board
        self.auto_advance = auto_advance
        self._emg_stream = emg_stream
        self._device: DeviceInfo | None = None
        self._index = 0
        self._status = StepStatus.MEASURING if auto_advance else StepStatus.WAITING
        self._data: _StepData | None = None
        self._results: list[StepResult] = []
        self._imu: dict[str, _ImuSamples] = {}
        self._emg_time_s = 0.0
        self._pending: list[CalibrationUpdate] = [self._announce()]

    # --- state ---------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Every step has ended."""
        return self._index >= len(self.protocol.steps)

    @property
    def step_index(self) -> int | None:
        """The current step, None when finished."""
        return None if self.finished else self._index

    @property
    def status(self) -> StepStatus | None:
        """The current step's status, None when finished."""
        return None if self.finished else self._status

    @property
    def results(self) -> tuple[StepResult, ...]:
        """Steps ended so far."""
        return tuple(self._results)

    def elapsed_s(self) -> float:
        """Device seconds the current step has been measuring (0 while waiting)."""
        if self._data is None:
            return 0.0
        return max(0.0, self._emg_time_s - self._data.start_s)

    def remaining_s(self) -> float:
        """Device seconds left in the current step (its whole duration while waiting; 0 when finished)."""
        if self.finished:
            return 0.0
        return max(0.0, self.protocol.steps[self._index].duration_s - self.elapsed_s())

    def take_updates(self) -> list[CalibrationUpdate]:
        """Updates produced by :meth:`confirm`, :meth:`skip` and :meth:`retry` (and the first one)."""
        out, self._pending = self._pending, []
        return out

    # --- control -------------------------------------------------------------------------------

    def confirm(self) -> None:
        """The person is ready: the waiting step measures from the next EMG block on."""
        if not self.finished and self._status is StepStatus.WAITING:
            self._status = StepStatus.MEASURING
            self._pending.append(CalibrationUpdate("started", self._index, self.protocol.steps[self._index]))

    def skip(self, reason: str = "skipped by the user") -> None:
        """End the current step without a measurement and go on."""
        if self.finished:
            return
        step = self.protocol.steps[self._index]
        self._pending += self._end_step(
            StepResult(self._index, step.kind, step.posture, StepStatus.SKIPPED, reason, {"required": step.required})
        )

    def retry(self) -> None:
        """Redo the last step that ended (e.g. after it failed); its result is dropped."""
        if not self._results:
            return
        self._results.pop()
        self._index = len(self._results)
        self._data = None
        self._status = StepStatus.MEASURING if self.auto_advance else StepStatus.WAITING
        self._pending.append(self._announce())

    # --- data ----------------------------------------------------------------------------------

    def process(self, item: Block | DeviceInfo | DeviceStatus | Marker) -> list[CalibrationUpdate]:
        """Take one decoded item in device-time order; return what changed."""
        updates = self.take_updates()
        if isinstance(item, DeviceInfo):
            self._device = item
            if self._emg_stream is None:
                emg = [s.name for s in item.streams if s.is_emg]
                self._emg_stream = emg[0] if emg else None
        elif isinstance(item, DeviceStatus):
            if item.stream_name == self._emg_stream and self._data is not None:
                self._data.lead_off |= {c for c, off in enumerate(item.lead_off) if off}
                self._data.saturated |= {c for c, sat in enumerate(item.saturated) if sat}
        elif isinstance(item, Block):
            if item.info.name == self._emg_stream:
                updates += self._take_emg(item)
            else:
                self._take_imu(item)
        return updates

    def finish(self) -> list[CalibrationUpdate]:
        """End of data: the step measuring is judged on what it has; the steps not reached fail."""
        updates = self.take_updates()
        while not self.finished:
            step = self.protocol.steps[self._index]
            if self._data is not None and self._status is StepStatus.MEASURING:
                updates += self._end_step(self._evaluate(step, self._emg_time_s))
            else:
                result = StepResult(
                    self._index,
                    step.kind,
                    step.posture,
                    StepStatus.FAILED,
                    "the data ended before this step",
                    {"required": step.required},
                )
                updates += self._end_step(result)
        return updates

    def result(self) -> CalibrationResult:
        """The calibration so far (complete once every required step passed)."""
        device = self._device
        return CalibrationResult(
            self.protocol.name,
            device.board_profile if device is not None else None,
            device.device_id if device is not None else None,
            tuple(self._results),
        )

    # --- internals -----------------------------------------------------------------------------

    def _announce(self) -> CalibrationUpdate:
        step = self.protocol.steps[self._index]
        event: Literal["waiting", "started"] = "started" if self._status is StepStatus.MEASURING else "waiting"
        return CalibrationUpdate(event, self._index, step)

    def _take_emg(self, block: Block) -> list[CalibrationUpdate]:
        updates: list[CalibrationUpdate] = []
        fs = block.info.sample_rate_hz
        while block.n_samples and not self.finished:
            if self._status is not StepStatus.MEASURING:
                break
            step = self.protocol.steps[self._index]
            if self._data is None:
                self._data = _StepData(block.first_index / fs)
            end_index = math.ceil((self._data.start_s + step.duration_s) * fs - 1e-6)
            split = min(max(end_index - block.first_index, 0), block.n_samples)
            if split:
                self._data.emg.append(Block(block.info, block.data[:, :split], block.first_index, block.gap_before))
            self._emg_time_s = (block.first_index + split) / fs
            if block.first_index + split < end_index:
                break
            updates += self._end_step(self._evaluate(step, end_index / fs))
            rest = block.data[:, split:]
            block = Block(block.info, rest, block.first_index + split, 0, block.received_at)
        self._emg_time_s = max(self._emg_time_s, block.end_index / fs)
        return updates

    def _take_imu(self, block: Block) -> None:
        try:
            rows = imu_rows(block.info)
        except ValueError:
            return  # not an IMU stream with acc and gyro
        samples = self._imu.setdefault(block.info.name, _ImuSamples())
        acc, gyro = rows.split(np.asarray(block.data))
        samples.times_s.append(np.arange(block.first_index, block.end_index) / block.info.sample_rate_hz)
        samples.acc_g.append(acc)
        samples.gyro_dps.append(gyro)
        # keep what the current step may still ask for
        start_s = self._data.start_s if self._data is not None else self._emg_time_s
        samples.forget_before(start_s - 1.0)

    def _end_step(self, result: StepResult) -> list[CalibrationUpdate]:
        step = self.protocol.steps[self._index]
        self._results.append(result)
        self._data = None
        self._index += 1
        updates = [CalibrationUpdate("finished", result.index, step, result)]
        if self.finished:
            updates.append(CalibrationUpdate("done", None, None))
            return updates
        self._status = StepStatus.MEASURING if self.auto_advance else StepStatus.WAITING
        updates.append(self._announce())
        return updates

    def _floor(self) -> dict[str, float] | None:
        for result in reversed(self._results):
            if result.kind is StepKind.NOISE_FLOOR and result.status is StepStatus.PASSED:
                return dict(result.values["noise_floor_uv"])
        return None

    def _evaluate(self, step: CalibrationStep, end_s: float) -> StepResult:
        data = self._data
        start_s = data.start_s if data is not None else end_s
        base: dict[str, Any] = {"required": step.required}
        blocks = [b for b in (data.emg if data is not None else []) if b.n_samples]
        settled = _after(blocks, start_s + step.settle_s)
        if not settled:
            return StepResult(
                self._index, step.kind, step.posture, StepStatus.FAILED, "no EMG samples", base, start_s, end_s
            )
        info = settled[0].info
        base |= {"stream": info.name, "channels": [c.name for c in info.channels]}
        evaluate = {
            StepKind.SIGNAL_CHECK: self._signal_check,
            StepKind.NOISE_FLOOR: self._noise_floor,
            StepKind.SET_POINT: self._set_point,
            StepKind.REFERENCE_CONTRACTION: self._reference_contraction,
            StepKind.IMU_UPRIGHT: self._imu_upright,
        }[step.kind]
        passed, reason, values = evaluate(step, settled, start_s + step.settle_s, end_s)
        status = StepStatus.PASSED if passed else StepStatus.FAILED
        return StepResult(self._index, step.kind, step.posture, status, reason, base | values, start_s, end_s)

    # --- the steps ------------------------------------------------------------------------------

    def _signal_check(
        self, step: CalibrationStep, blocks: list[Block], start_s: float, end_s: float
    ) -> tuple[bool, str, dict[str, Any]]:
        info = blocks[0].info
        fs = info.sample_rate_hz
        names = [c.name for c in info.channels]
        detector = SignalFaultDetector(
            fs, rails_uv=clipping_rails_uv(info, self.board.range_uv if self.board is not None else None)
        )
        faults = [f for b in blocks for f in detector.process(b)] + detector.finish()
        data = self._data
        lead_off = data.lead_off if data is not None else set()
        saturated = data.saturated if data is not None else set()
        contact: dict[str, str] = {}
        clipping: dict[str, bool] = {}
        for c, name in enumerate(names):
            kinds = {f.kind for f in faults if f.channel_index == c}
            problems = [k.value.replace("_", "-") for k in (FaultKind.NON_FINITE, FaultKind.FLAT) if k in kinds]
            if c in lead_off:
                problems.append("lead-off flag")
            contact[name] = ", ".join(problems) or "ok"
            clipping[name] = FaultKind.CLIPPED in kinds or c in saturated
        cleaned = _band_passed(blocks)
        mains = MainsNotch(fs, BandPassFilter(fs).band.low_pass_hz)
        for block in cleaned:
            mains.process(block)
        decision = mains.decision
        rms = _window_rms(cleaned, SET_POINT_WINDOW_S)
        values: dict[str, Any] = {
            "contact": contact,
            "clipping": clipping,
            "mains": decision.to_json() if decision is not None else None,
            "rms_uv": {n: float(np.median(rms[c])) if rms[c].size else None for c, n in enumerate(names)},
        }
        problems = [f"{n}: contact {v}" for n, v in contact.items() if v != "ok"]
        problems += [f"{n}: clipping at the rails" for n, v in clipping.items() if v]
        if decision is None:
            mains_text = "mains not checked (step shorter than 5 s)"
        elif decision.applied:
            mains_text = f"mains hum at {', '.join(f'{f:g}' for f in decision.notched_hz)} Hz: notched"
        else:
            mains_text = "no mains hum"
        if problems:
            return False, "; ".join(problems) + f"; {mains_text}", values
        return True, f"contact good on {len(names)} channels, no clipping, {mains_text}", values

    def _noise_floor(
        self, step: CalibrationStep, blocks: list[Block], start_s: float, end_s: float
    ) -> tuple[bool, str, dict[str, Any]]:
        info = blocks[0].info
        names = [c.name for c in info.channels]
        fs = info.sample_rate_hz
        rms = _window_rms(_band_passed(blocks), SET_POINT_WINDOW_S)
        n_windows = min(r.size for r in rms)
        if step.method == "shorted_input":
            if self.board is not None and not self.board.shorted_input_mode:
                return False, f"board {self.board.name} has no shorted-input mode", {}
            if n_windows < DEFAULT_MIN_WINDOWS:
                return False, f"{n_windows} 1 s windows, needs {DEFAULT_MIN_WINDOWS}", {}
            floor = {n: float(np.median(rms[c])) for c, n in enumerate(names)}
            return True, "shorted inputs: median 1 s RMS", {"noise_floor_uv": floor, "source": "shorted_input"}
        if n_windows < MIN_REST_WINDOWS:
            return False, f"{n_windows} 1 s windows of rest, needs {MIN_REST_WINDOWS}", {}
        rest = {n: float(noise_floor_from_rest(rms[c])) for c, n in enumerate(names)}
        values: dict[str, Any] = {"rest_percentile_uv": rest, "high_band_uv": None}
        if fs >= MIN_HIGH_BAND_RATE_HZ:
            raw = np.concatenate([b.data for b in _finite(blocks)], axis=1)
            high = noise_floor_from_high_band(raw, BandPassFilter(fs).band)
            values["high_band_uv"] = {n: float(high[c]) for c, n in enumerate(names)}
            noisy = [n for c, n in enumerate(names) if rest[n] > REST_NOT_SILENT_RATIO * high[c]]
            if noisy:
                values |= {"noise_floor_uv": dict(values["high_band_uv"]), "source": "high_band"}
                return (
                    True,
                    f"the rest was not silent on {', '.join(noisy)} (2nd-5th percentile more than "
                    f"{REST_NOT_SILENT_RATIO:g} x the 450-500 Hz estimate): the floor is the 450-500 Hz estimate",
                    values,
                )
        values |= {"noise_floor_uv": rest, "source": "calibration_rest"}
        return True, f"2nd-5th percentile of {n_windows} 1 s windows of rest", values

    def _set_point(
        self, step: CalibrationStep, blocks: list[Block], start_s: float, end_s: float
    ) -> tuple[bool, str, dict[str, Any]]:
        floor = self._floor()
        if floor is None:
            return False, "needs a noise floor first (a noise_floor step that passed)", {}
        names = [c.name for c in blocks[0].info.channels]
        rms = _window_rms(_band_passed(blocks), SET_POINT_WINDOW_S)
        set_points: dict[str, float] = {}
        for c, name in enumerate(names):
            corrected = correct_for_noise(rms[c][-DEFAULT_N_WINDOWS:], floor.get(name, 0.0))
            if corrected.size < DEFAULT_MIN_WINDOWS:
                return False, f"{corrected.size} 1 s windows, needs {DEFAULT_MIN_WINDOWS}", {}
            set_points[name] = float(np.median(corrected))
        up, moved = self._imu_posture(start_s, end_s)
        values: dict[str, Any] = {"posture": step.posture, "set_point_uv": set_points, "up": up, "moved": moved}
        text = ", ".join(f"{n} {v:.2f} uV" for n, v in set_points.items())
        if moved:
            return False, f"the trunk moved during the rest ({', '.join(moved)}); set point would be {text}", values
        reference = self._posture_reference(step.posture)
        if reference is not None and up:
            tilt = max((float(vector_angle_deg(up[n], reference[n])) for n in up if n in reference), default=0.0)
            values["posture_difference_deg"] = tilt
            if tilt > POSTURE_TOLERANCE_DEG:
                return (
                    False,
                    (
                        f"the posture differs by {tilt:.1f} deg from the {step.posture} reference (more than "
                        f"{POSTURE_TOLERANCE_DEG:g} deg, SCIENCE.md 4); set point would be {text}"
                    ),
                    values,
                )
        return True, f"set point {text}", values

    def _posture_reference(self, posture: str) -> dict[str, list[float]] | None:
        """The up vector per IMU stream of an earlier passed step in the same posture (upright pose first)."""
        if not posture:
            return None
        passed = [r for r in self._results if r.posture == posture and r.status is StepStatus.PASSED]
        for result in sorted(passed, key=lambda r: r.kind is not StepKind.IMU_UPRIGHT):
            if result.values.get("up"):
                return dict(result.values["up"])
        return None

    def _reference_contraction(
        self, step: CalibrationStep, blocks: list[Block], start_s: float, end_s: float
    ) -> tuple[bool, str, dict[str, Any]]:
        floor = self._floor()
        if floor is None:
            return False, "needs a noise floor first (a noise_floor step that passed)", {}
        names = [c.name for c in blocks[0].info.channels]
        envelope = _window_rms(_band_passed(blocks), _ENVELOPE_S)
        reference: dict[str, float] = {}
        hold: dict[str, float] = {}
        problems = []
        for c, name in enumerate(names):
            corrected = correct_for_noise(envelope[c], floor.get(name, 0.0))
            peak = float(corrected.max()) if corrected.size else 0.0
            held = corrected[corrected >= REFERENCE_HOLD_FRACTION * peak] if peak > 0 else corrected[:0]
            hold[name] = held.size * _ENVELOPE_S
            needed = REFERENCE_MIN_FLOOR_RATIO * floor.get(name, 0.0)
            if peak < needed:
                problems.append(
                    f"{name}: no contraction (peak {peak:.1f} uV, below {REFERENCE_MIN_FLOOR_RATIO:g} x the floor "
                    f"= {needed:.1f} uV)"
                )
                continue
            if hold[name] < REFERENCE_MIN_HOLD_S:
                problems.append(f"{name}: held {hold[name]:.2f} s, needs {REFERENCE_MIN_HOLD_S:g} s")
                continue
            reference[name] = float(np.sqrt(np.mean(held**2)))
        values = {"reference_contraction_uv": reference, "hold_s": hold}
        if problems:
            return False, "; ".join(problems), values
        return True, "reference " + ", ".join(f"{n} {v:.1f} uV" for n, v in reference.items()), values

    def _imu_upright(
        self, step: CalibrationStep, blocks: list[Block], start_s: float, end_s: float
    ) -> tuple[bool, str, dict[str, Any]]:
        if not self._imu:
            return False, "the device sends no IMU stream with accelerometer and gyroscope", {}
        up, moved = self._imu_posture(start_s, end_s)
        if not up:
            return False, "no IMU samples during the step", {}
        mounting = {name: mounting_from_upright(vector).to_json() for name, vector in up.items()}
        tilted = {name: m["misalignment_deg"] for name, m in mounting.items()}
        values = {"up": up, "mounting": mounting, "moved": moved}
        problems = [f"{n} moved" for n in moved]
        problems += [
            f"{n}: the sensor's x axis is {deg:.0f} deg from vertical (standing upright with the sensor along the "
            "spine puts it within "
            f"{UPRIGHT_MAX_TILT_DEG:g} deg)"
            for n, deg in tilted.items()
            if deg > UPRIGHT_MAX_TILT_DEG
        ]
        if problems:
            return False, "; ".join(problems), values
        return (
            True,
            "upright: " + ", ".join(f"{n} {deg:.1f} deg off the spine axis" for n, deg in tilted.items()),
            values,
        )

    def _imu_posture(self, start_s: float, end_s: float) -> tuple[dict[str, list[float]], list[str]]:
        """Per IMU stream: mean "up" over the span (sensor coordinates) and the streams that moved."""
        up: dict[str, list[float]] = {}
        moved: list[str] = []
        for name, samples in sorted(self._imu.items()):
            acc, gyro = samples.between(start_s, end_s)
            if acc.shape[1] == 0:
                continue
            mean = acc.mean(axis=1)
            up[name] = (mean / np.linalg.norm(mean)).tolist()
            linear_g = np.abs(np.linalg.norm(acc, axis=0) - 1.0)
            if float(np.linalg.norm(gyro, axis=0).max()) >= QUIET_GYRO_DPS or float(linear_g.max()) >= QUIET_ACC_G:
                moved.append(name)
        return up, moved


def _after(blocks: Sequence[Block], start_s: float) -> list[Block]:
    """The samples of ``blocks`` from device time ``start_s`` on."""
    out = []
    for block in blocks:
        first = math.ceil(start_s * block.info.sample_rate_hz - 1e-6)
        cut = min(max(first - block.first_index, 0), block.n_samples)
        if cut < block.n_samples:
            gap = block.gap_before if cut == 0 else 0
            out.append(Block(block.info, block.data[:, cut:], block.first_index + cut, gap))
    return out


def _finite(blocks: Sequence[Block]) -> list[Block]:
    splitter = FiniteSplitter()
    return [piece for b in blocks for piece in splitter.process(b)]


def _band_passed(blocks: Sequence[Block]) -> list[Block]:
    """The default sEMG band of the blocks (NaN cut out as gaps)."""
    if not blocks:
        return []
    band = BandPassFilter(blocks[0].info.sample_rate_hz)
    return [band.process(b) for b in _finite(blocks)]


def _window_rms(blocks: Sequence[Block], window_s: float) -> list[npt.NDArray[np.float64]]:
    """Back-to-back RMS windows per channel (each an array), over band-passed blocks."""
    if not blocks:
        return []
    rms = MovingRms(blocks[0].info.sample_rate_hz, window_s, window_s)
    out = [rms.process(b).data for b in blocks]
    joined = np.concatenate(out, axis=1) if out else np.zeros((blocks[0].info.n_channels, 0))
    return [row[np.isfinite(row)] for row in joined]
