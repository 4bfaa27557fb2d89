"""Trunk and lumbar angles for the live view, computed in the acquisition's worker thread.

:class:`TrunkAngleSink` sits among the acquisition's sinks, in front of the ring buffer: it runs each
IMU stream through :class:`~biofeed.dsp.imu.bias.GyroBiasTracker` and
:class:`~biofeed.dsp.imu.fusion.OrientationFusion`, calibrates on the first still stretch of
:data:`~biofeed.dsp.imu.trunk_motion.CALIBRATION_MIN_S` (every sample of every IMU quasi-static:
|gyro| < 5 deg/s and |acc - gravity| < 0.05 g, SCIENCE.md 4), then writes the
:class:`~biofeed.dsp.imu.angles.TrunkAngles` blocks (stream ``trunk_angles``) to its target. This is
the rule :func:`~biofeed.dsp.imu.trunk_motion.track_trunk` applies offline, without its look-ahead:
angles are 0 in the posture held at calibration (upright standing when a session starts that way;
lying, when it starts lying), and the flexion axis is each sensor's y axis (no functional
calibration live). Nothing here runs in the GUI thread.

When the calibration posture was upright (:func:`~biofeed.dsp.imu.gate.describe_posture`: standing or
upright), the lumbar flexion angle (trunk inclination with one IMU) also goes through a
:class:`~biofeed.dsp.flexion_phase.FlexionPhaseTracker`, and each change of the phase of a
flexion-relaxation cycle is written to the target as a ``flexion_phase`` event (``phase``: a name of
:data:`~biofeed.dsp.flexion_phase.PHASES` or None when unknown; ``sample_index`` in the angle
stream, ``time_s`` in device seconds). It is for the view only: the recording does not get it. The
phase is unknown (None) while the trunk is not where the test is done: the last ``window`` event's
posture lying or sitting, or the thoracic segment reclined more than 30 deg backwards (lying down,
before the posture label follows): there the lumbar angle is near 0 without anyone standing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from biofeed.blocks import AnalysisEvent, Block, DeviceInfo, DeviceStatus, LinkEvent, Marker, StreamInfo
from biofeed.dsp.flexion_phase import UNKNOWN, FlexionPhaseTracker, phase_name
from biofeed.dsp.imu.angles import TrunkAngles
from biofeed.dsp.imu.bias import GyroBiasTracker
from biofeed.dsp.imu.calibration import UprightCalibration, calibrate_upright
from biofeed.dsp.imu.channels import imu_rows
from biofeed.dsp.imu.fusion import ANGULAR_RATE_ROW, LINEAR_ACCELERATION_ROW, QUATERNION_ROWS, OrientationFusion
from biofeed.dsp.imu.gate import UPRIGHT_TILT_DEG, describe_posture
from biofeed.dsp.imu.motion import QuasiStaticCriteria
from biofeed.dsp.imu.posture import Posture
from biofeed.dsp.imu.trunk_motion import CALIBRATION_MIN_S, SACRAL_STREAM, THORACIC_STREAM

__all__ = ["BlockTarget", "TrunkAngleSink", "pick_imu_streams"]

log = logging.getLogger(__name__)

_Array = npt.NDArray[np.float64]
Item = Block | DeviceInfo | Marker | DeviceStatus | LinkEvent | AnalysisEvent


_UPRIGHT_POSTURES = ("standing", "upright")  # calibrated there, a flexion angle is a forward bend
_PHASE_ANGLES = ("lumbar_flexion", "thoracic_inclination")  # what the phase is tracked on, by preference
_NOT_TESTED_POSTURES = ("lying", "sitting")


class BlockTarget(Protocol):
    """Where the angle blocks and phase events go (the ring buffer)."""

    def write(self, item: Block | AnalysisEvent) -> None:
        """Take one block or event."""
        ...


def pick_imu_streams(streams: tuple[StreamInfo, ...]) -> tuple[StreamInfo, ...]:
    """The thoracic and (when worn) sacral IMU streams of a device, in that order.

    Streams named ``imu_thoracic`` / ``imu_sacral`` (or whose channels' site says thoracic /
    sacral) take those roles; otherwise the first two IMU streams at the first IMU rate do.
    """
    imus = []
    for stream in streams:
        try:
            imu_rows(stream)
        except ValueError:
            continue
        imus.append(stream)
    if not imus:
        return ()
    imus = [s for s in imus if s.sample_rate_hz == imus[0].sample_rate_hz]

    def role(stream: StreamInfo, word: str, name: str) -> bool:
        return stream.name == name or any(word in c.site.lower() for c in stream.channels)

    thoracic = next((s for s in imus if role(s, "thoracic", THORACIC_STREAM)), imus[0])
    others = [s for s in imus if s is not thoracic]
    sacral = next((s for s in others if role(s, "sacral", SACRAL_STREAM)), others[0] if others else None)
    return (thoracic,) if sacral is None else (thoracic, sacral)


@dataclass
class _Chain:
    """One IMU's bias tracker and fusion, and its current quiet run (for the calibration)."""

    bias: GyroBiasTracker
    fusion: OrientationFusion
    run_acc: list[_Array] = field(default_factory=list)  # (3, n) pieces
    run_quaternions: list[_Array] = field(default_factory=list)  # (n, 4) pieces
    run_length: int = 0
    run_end_index: int | None = None

    def restart_run(self) -> None:
        """Forget the quiet run (it was broken, or has been used)."""
        self.run_acc, self.run_quaternions, self.run_length = [], [], 0


class TrunkAngleSink:
    """Computes trunk angles from the IMU streams and writes them to ``target`` (a sink).

    Parameters
    ----------
    target : BlockTarget
        Receives the ``trunk_angles`` blocks (rows :data:`~biofeed.dsp.imu.angles.LUMBAR_CHANNELS`
        with two IMUs, :data:`~biofeed.dsp.imu.angles.SINGLE_SENSOR_CHANNELS` with one).
    calibration_s : float
        Still seconds needed to calibrate.
    quasi_static : QuasiStaticCriteria, optional
        Limits of "still".

    Attributes
    ----------
    calibration : UprightCalibration or None
        None until the first still stretch.
    calibration_posture : str or None
        :func:`~biofeed.dsp.imu.gate.describe_posture` of the calibration (None before it).
    """

    def __init__(
        self,
        target: BlockTarget,
        *,
        calibration_s: float = CALIBRATION_MIN_S,
        quasi_static: QuasiStaticCriteria | None = None,
    ) -> None:
        if not calibration_s > 0:
            raise ValueError(f"calibration_s must be positive, got {calibration_s}")
        self.target = target
        self.calibration_s = calibration_s
        self.quasi_static = quasi_static or QuasiStaticCriteria()
        self.calibration: UprightCalibration | None = None
        self.calibration_posture: str | None = None
        self._phases: FlexionPhaseTracker | None = None
        self._phase_start = 0  # angle index of the tracker's first sample
        self._phase_next: int | None = None  # the angle index the tracker expects next
        self._code = UNKNOWN  # the phase code last written
        self._posture: str | None = None  # of the last window event
        self._chains: dict[str, _Chain] = {}
        self._order: tuple[str, ...] = ()
        self._angles: TrunkAngles | None = None
        self._rate_hz = 0.0

    def write(self, item: Item) -> None:
        """Take one acquisition item; IMU blocks may give an angle block to the target."""
        if isinstance(item, DeviceInfo):
            self._on_device(item)
        elif isinstance(item, Block) and item.info.name in self._chains and item.n_samples:
            self._on_imu(item)
        elif isinstance(item, AnalysisEvent) and item.data.get("type") == "window":
            self._posture = item.data.get("posture")

    def close(self) -> None:
        """Nothing to release."""

    def _on_device(self, device: DeviceInfo) -> None:
        streams = pick_imu_streams(device.streams)
        order = tuple(s.name for s in streams)
        if order == self._order:
            return
        self._order = order
        self._rate_hz = streams[0].sample_rate_hz if streams else 0.0
        self._chains = {
            name: _Chain(GyroBiasTracker(self._rate_hz), OrientationFusion(self._rate_hz)) for name in order
        }
        self.calibration = None
        self.calibration_posture = None
        self._angles = None
        self._phases = None
        self._phase_next = None
        self._code = UNKNOWN

    def _on_imu(self, block: Block) -> None:
        chain = self._chains[block.info.name]
        corrected = chain.bias.process(block)
        orientation = chain.fusion.process(corrected)
        if self._angles is not None:
            angles = self._angles.process(orientation)
            if angles.n_samples:
                self.target.write(angles)
                if self._phases is not None:
                    self._track_phase(self._phases, angles)
            return
        acc, _ = imu_rows(block.info).split(corrected.data)
        self._extend_quiet_run(chain, block, acc, orientation.data)
        needed = round(self.calibration_s * self._rate_hz)
        if all(c.run_length >= needed for c in self._chains.values()):
            self._calibrate(needed)

    def _extend_quiet_run(self, chain: _Chain, block: Block, acc: _Array, orientation: _Array) -> None:
        criteria = self.quasi_static
        quiet = (orientation[ANGULAR_RATE_ROW] < criteria.max_angular_rate_dps) & (
            orientation[LINEAR_ACCELERATION_ROW] < criteria.max_linear_acceleration_g
        )
        moving = np.flatnonzero(~quiet)
        if block.gap_before or chain.run_end_index != block.first_index or moving.size:
            chain.restart_run()
        start = int(moving[-1]) + 1 if moving.size else 0
        chain.run_acc.append(acc[:, start:])
        chain.run_quaternions.append(orientation[QUATERNION_ROWS, start:].T)
        chain.run_length += block.n_samples - start
        chain.run_end_index = block.end_index
        needed = round(self.calibration_s * self._rate_hz)
        if chain.run_length > 2 * needed:  # bounded while the other sensor still moves
            chain.run_acc = [np.concatenate(chain.run_acc, axis=1)[:, -needed:]]
            chain.run_quaternions = [np.concatenate(chain.run_quaternions)[-needed:]]
            chain.run_length = needed

    def _calibrate(self, n_samples: int) -> None:
        spans = [
            (np.concatenate(c.run_acc, axis=1)[:, -n_samples:], np.concatenate(c.run_quaternions)[-n_samples:])
            for c in (self._chains[name] for name in self._order)
        ]
        end_index = self._chains[self._order[0]].run_end_index or 0
        end_s = end_index / self._rate_hz
        try:
            self.calibration = calibrate_upright(
                spans[0][0],
                spans[0][1],
                spans[1][0] if len(spans) == 2 else None,
                spans[1][1] if len(spans) == 2 else None,
                start_s=end_s - n_samples / self._rate_hz,
                end_s=end_s,
            )
        except ValueError as exc:  # a sensor taped along the wrong axis: try again on the next still span
            log.warning("trunk angles: calibration failed (%s)", exc)
            for chain in self._chains.values():
                chain.restart_run()
            return
        self._angles = TrunkAngles(self.calibration, *(f"{name}_orientation" for name in self._order))
        up = {role: acc.mean(axis=1) for role, (acc, _) in zip(("thoracic", "sacral"), spans, strict=False)}
        self.calibration_posture = describe_posture(Posture.from_up_vectors(up, self.calibration.start_s, end_s))
        if self.calibration_posture in _UPRIGHT_POSTURES:
            self._phases = FlexionPhaseTracker(self._rate_hz)
        for chain in self._chains.values():
            chain.restart_run()

    def _track_phase(self, tracker: FlexionPhaseTracker, angles: Block) -> None:
        """Feed the flexion angle to the tracker; write an event for each change of phase."""
        names = [c.name for c in angles.info.channels]
        row = names.index(next(name for name in _PHASE_ANGLES if name in names))
        thoracic = angles.data[names.index("thoracic_inclination")]
        if self._posture in _NOT_TESTED_POSTURES or thoracic.min() < -UPRIGHT_TILT_DEG:
            self._phase_next = None  # start again when back
            self._write_phase(angles, angles.first_index, UNKNOWN)
            return
        if angles.gap_before or angles.first_index != self._phase_next:
            tracker.reset()
            self._phase_start = angles.first_index
        self._phase_next = angles.end_index
        first = self._phase_start + tracker.n_labelled
        codes = tracker.process(angles.data[row])
        before = np.concatenate(([self._code], codes[:-1]))
        for k in np.flatnonzero(codes != before):
            self._write_phase(angles, first + int(k), int(codes[k]))

    def _write_phase(self, angles: Block, index: int, code: int) -> None:
        """Write a ``flexion_phase`` event when ``code`` differs from the last one written."""
        if code == self._code:
            return
        self._code = code
        self.target.write(
            AnalysisEvent(
                {
                    "type": "flexion_phase",
                    "stream": angles.info.name,
                    "channel": None,
                    "sample_index": index,
                    "time_s": index / angles.info.sample_rate_hz,
                    "phase": phase_name(code),
                }
            )
        )
