"""The resting tension set point: median noise-corrected 1 s RMS over the last gated rest windows.

SCIENCE.md section 4: the set point is the median (or 25th percentile) of noise-corrected 1 s RMS
over the last 30-60 s of *gated* rest -- trunk quasi-static, posture within 3 deg of the reference,
no artifact flags -- per channel, and it never adapts during a trial.

The gate is a hook: a boolean mask per window passed to :meth:`RestingTension.process`, and/or a
callable given at construction (the IMU fills it). A window the gate refuses is simply not added, so
the set point stays frozen through a trial: the history counts windows, not seconds, and nothing
ages out while no rest is gated in.

Set points are kept per posture (SCIENCE.md 4): :meth:`RestingTension.add_window` takes the posture
id a window was held in (a :class:`PostureTimeline` gives it), and the set point reported is the one
of the posture of the latest window added; coming back to a posture recalls its windows. Without an
IMU every window is in :data:`NO_POSTURE`, one set point per channel.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block
from biofeed.dsp.imu.motion import MotionInterval
from biofeed.dsp.noise import correct_for_noise

__all__ = [
    "DEFAULT_MIN_WINDOWS",
    "DEFAULT_N_WINDOWS",
    "NEW_POSTURE",
    "NO_POSTURE",
    "SETTLE_WAIT_LIMIT_S",
    "PostureTimeline",
    "RestingTension",
    "SetPointStatistic",
    "SettlingGate",
    "WindowGate",
]

DEFAULT_N_WINDOWS = 30
"""SCIENCE.md 4: the last 30-60 s of rest; 30 matches the pre-trial rest of the simulator's truth."""
DEFAULT_MIN_WINDOWS = 10
"""Fewer gated 1 s windows than this give no set point (NaN)."""

WindowGate = Callable[[float, float], bool]
"""``gate(start_s, end_s) -> bool``: may the 1 s window spanning device time [start_s, end_s) count as rest."""


@runtime_checkable
class SettlingGate(Protocol):
    """A :data:`WindowGate` that can judge a window only once its own data covers it (an IMU).

    Windows are held until ``settled_s`` passes their end, so the answer does not depend on how
    the EMG and IMU blocks interleave.
    """

    @property
    def settled_s(self) -> float:
        """Device time, seconds, up to which windows can be judged."""
        ...

    def __call__(self, start_s: float, end_s: float) -> bool:
        """May the window [start_s, end_s) count as rest."""
        ...


NO_POSTURE = -1
"""Posture id of a moment or window with no posture: moving, unsettled, or no IMU."""
NEW_POSTURE = -2
"""Posture id of a moment held still in a posture that is not (yet) a known one."""

SETTLE_WAIT_LIMIT_S = 5.0
"""Longest wait for a settling gate behind the EMG. An IMU that falls further behind (it stopped, or
its link dropped) is taken to have settled up to this far behind the EMG: its missing span counts
as unknown (refused, no posture, no movement known). Streaming equals offline only while no IMU falls
this far behind; a recording replays the same arrival order, so ``biofeed analyze`` agrees anyway
unless the live run lagged right at this limit."""


@runtime_checkable
class PostureTimeline(Protocol):
    """An IMU's account of device time: quiet posture per moment, and movement (a :class:`SettlingGate`).

    :class:`~biofeed.dsp.imu.gate.PostureGate` is one. Times are device seconds on the EMG stream's
    axis; nothing before :attr:`settled_s` changes once answered, so consumers that wait for it get
    the same answers for any interleaving of EMG and IMU blocks.
    """

    @property
    def settled_s(self) -> float:
        """Device time, seconds, up to which every answer is final."""
        ...

    def __call__(self, start_s: float, end_s: float) -> bool:
        """May the window [start_s, end_s) count as rest (quiet, in one known posture)."""
        ...

    def posture_of(self, start_s: float, end_s: float) -> int | None:
        """The known posture held throughout [start_s, end_s); None when moving or none known."""
        ...

    def postures_at(self, times_s: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Posture id at each time.

        :data:`NO_POSTURE` where moving or unsettled, :data:`NEW_POSTURE` where still in a posture
        not yet known.
        """
        ...

    def posture_label(self, posture_id: int) -> str:
        """Short label of a posture (``lying``, ``standing``, ``sitting``, ``upright``, ``other``)."""
        ...

    def movement_between(self, start_s: float, end_s: float) -> MotionInterval | None:
        """The movement inside [start_s, end_s) with its peaks; None when still throughout."""
        ...


class SetPointStatistic(StrEnum):
    """Statistic of the gated windows (SCIENCE.md 4)."""

    MEDIAN = "median"
    PERCENTILE_25 = "p25"


class RestingTension:
    """Per-channel set point from 1 s RMS windows (a Stage on the 1 s envelope).

    Parameters
    ----------
    noise_floor_uv : float or array_like, shape (n_channels,)
        Noise floor per channel in uV (the same value for all channels when a float).
    n_windows : int
        Gated windows kept per channel (the newest).
    min_windows : int
        Gated windows needed before a set point is given.
    statistic : SetPointStatistic or str
        ``median`` (default) or ``p25``.
    gate : WindowGate or None
        Called once per window with its device time span in seconds; False keeps it out.

    Notes
    -----
    Windows are complete, independent measurements, so a gap in the stream does not clear the
    history (unlike filter state); :meth:`reset` does.
    """

    def __init__(
        self,
        noise_floor_uv: float | npt.ArrayLike,
        n_windows: int = DEFAULT_N_WINDOWS,
        min_windows: int = DEFAULT_MIN_WINDOWS,
        statistic: SetPointStatistic | str = SetPointStatistic.MEDIAN,
        gate: WindowGate | None = None,
    ) -> None:
        noise = np.atleast_1d(np.asarray(noise_floor_uv, dtype=np.float64))
        if noise.ndim != 1 or not (np.isfinite(noise).all() and (noise >= 0).all()):
            raise ValueError(f"noise_floor_uv must be >= 0 uV, a number or one per channel, got {noise_floor_uv!r}")
        if not 1 <= min_windows <= n_windows:
            raise ValueError(
                f"need 1 <= min_windows <= n_windows, got min_windows={min_windows}, n_windows={n_windows}"
            )
        try:
            self.statistic = SetPointStatistic(statistic)
        except ValueError:
            allowed = ", ".join(s.value for s in SetPointStatistic)
            raise ValueError(f"statistic must be one of {allowed}, got {statistic!r}") from None
        self.noise_floor_uv = noise
        self.n_windows = n_windows
        self.min_windows = min_windows
        self.gate = gate
        self._windows: list[dict[int, deque[float]]] = []  # per channel, per posture id
        self._current: list[int] = []  # per channel, the posture of the latest window added
        self._set_points: dict[tuple[int, int], float] = {}  # (channel, posture) -> set point, until a window is added

    def reset(self) -> None:
        """Forget every window."""
        self._windows = []
        self._current = []
        self._set_points = {}

    def process(self, rms_1s: Block, gate_mask: npt.ArrayLike | None = None) -> Block:
        """Add 1 s windows; return the set point after each.

        Parameters
        ----------
        rms_1s : Block
            Band-passed (not yet corrected) 1 s RMS in uV, shape (n_channels, n_windows), from a
            :class:`~biofeed.dsp.envelope.MovingRms` with ``window_s = hop_s = 1``: window ``k``
            covers device samples ``[k*h - h, k*h)``.
        gate_mask : array_like of bool, shape (n_windows,) or (n_channels, n_windows), optional
            False keeps a window out (motion, posture, artifact, a trial in progress).

        Returns
        -------
        Block
            Set point in uV (noise-corrected), shape (n_channels, n_windows), NaN while fewer than
            ``min_windows`` gated windows are held; same stream and indices as ``rms_1s``.
        """
        values = rms_1s.data
        n_channels, n = values.shape
        self._ensure_channels(n_channels)
        usable = np.ones((n_channels, n), dtype=bool)
        if gate_mask is not None:
            usable &= np.broadcast_to(np.asarray(gate_mask, dtype=bool), (n_channels, n))
        usable &= np.isfinite(values)
        corrected = correct_for_noise(values, self._noise(n_channels)[:, None])
        set_points = np.full((n_channels, n), np.nan)
        hop_s = 1.0 / rms_1s.info.sample_rate_hz
        for j in range(n):
            if self.gate is not None:
                end_s = (rms_1s.first_index + j) * hop_s
                usable[:, j] &= self.gate(end_s - hop_s, end_s)
            for c in range(n_channels):
                if usable[c, j]:
                    self.add_window(c, float(corrected[c, j]))
                set_points[c, j] = self.set_point_uv(c)
        return Block(rms_1s.info, set_points, rms_1s.first_index, rms_1s.gap_before, rms_1s.received_at)

    def add_window(self, channel_index: int, corrected_uv: float, posture_id: int = NO_POSTURE) -> None:
        """Add one gated, already noise-corrected window to one channel, held in a posture.

        The channel's current posture becomes ``posture_id``.
        """
        self._ensure_channels(channel_index + 1)
        held = self._windows[channel_index].setdefault(posture_id, deque(maxlen=self.n_windows))
        held.append(float(corrected_uv))
        self._set_points.pop((channel_index, posture_id), None)
        self._current[channel_index] = posture_id

    def current_posture(self, channel_index: int) -> int:
        """Posture of the latest window added to a channel (:data:`NO_POSTURE` before any, or without IMU)."""
        return self._current[channel_index] if channel_index < len(self._current) else NO_POSTURE

    def windows_uv(self, channel_index: int, posture_id: int | None = None) -> npt.NDArray[np.float64]:
        """The gated, noise-corrected windows held for a channel in a posture (default: current), oldest first, uV."""
        if channel_index >= len(self._windows):
            return np.zeros(0)
        posture = self.current_posture(channel_index) if posture_id is None else posture_id
        return np.asarray(self._windows[channel_index].get(posture, ()), dtype=np.float64)

    def set_point_uv(self, channel_index: int, posture_id: int | None = None) -> float:
        """Set point of a channel in a posture (default: current), uV; NaN with fewer than ``min_windows`` windows."""
        posture = self.current_posture(channel_index) if posture_id is None else posture_id
        known = self._set_points.get((channel_index, posture))
        if known is not None:
            return known
        held = self.windows_uv(channel_index, posture)
        if held.shape[0] < self.min_windows:
            return math.nan
        q = 50.0 if self.statistic is SetPointStatistic.MEDIAN else 25.0
        value = self._set_points[channel_index, posture] = float(np.percentile(held, q))
        return value

    def postures(self, channel_index: int) -> list[int]:
        """Posture ids a channel holds windows in, in the order first seen."""
        return list(self._windows[channel_index]) if channel_index < len(self._windows) else []

    def _ensure_channels(self, n_channels: int) -> None:
        while len(self._windows) < n_channels:
            self._windows.append({})
            self._current.append(NO_POSTURE)

    def _noise(self, n_channels: int) -> npt.NDArray[np.float64]:
        if self.noise_floor_uv.size == 1:
            return np.full(n_channels, self.noise_floor_uv[0])
        if self.noise_floor_uv.size != n_channels:
            raise ValueError(f"noise_floor_uv has {self.noise_floor_uv.size} values for {n_channels} channels")
        return self.noise_floor_uv
