"""Device time to host time: a lower-envelope linear fit of arrival times, online, in bounded memory.

A device stamps its samples with its own counter; the host only knows when the bytes arrived
(``received_at``). Bytes can arrive late (BLE connection events, retransmissions, USB polling,
scheduling) but never before the samples exist, so every arrival lies *on or above* the line

    host_time_s = offset_s + slope * device_time_s

that maps a sample's device time to the earliest moment its packet could have arrived. That line is
the lower envelope of the points (device time of a block's last sample, arrival time), and its
best estimate is the one of Moon, Skelly and Towsley (1999), "Estimation and removal of clock skew
from network delay measurements", IEEE INFOCOM: the line below every point that minimises the sum
of the vertical distances to them (a linear programme). Its solution is an edge of the points'
lower convex hull, the one that spans their mean device time (Zhang, Liu and Xia 2002, "Clock
synchronization algorithms for network measurements", IEEE INFOCOM), so the fit needs only the
hull, the number of points and the sum of their device times. Least squares would be biased by the
one-sided delays; the envelope is not, and a few points arriving early enough suffice.

Bounded memory (:class:`ClockFitter`): points are grouped in bins of device time (0.1 s at first)
and each bin keeps only the lower hull of its points (2 to 4 vertices for jittered arrivals), with
its count and sum of device times; when the bins exceed ``max_bins``, neighbours merge and the bin
width doubles. The hull of the bins' vertices is the hull of every point, kept incrementally
(points come in device-time order: Andrew's monotone chain), so an update costs O(1) amortised.
The fit covers the whole segment, not a sliding window: a recording needs one mapping for all its
samples, and a crystal's drift with temperature over an hour (a few ppm) moves arrivals by less
than BLE's jitter.

Jitter: ``jitter_ms`` is the 95th percentile of the arrival delay above the fitted envelope, over
every point of the segment (each bin's points measured against the fit in force when the bin
closed; a fixed log-spaced histogram, 2.3 % resolution, keeps memory bounded). It says how much
later than the earliest possible moment 95 % of the packets arrive.

Clock error: ``clock_error_ppm = (1 / slope - 1) * 1e6``, device seconds per host second minus
one, in ppm: positive when the device's clock runs fast (it delivers more than its nominal rate per
host second), as the simulator's ``clock_ppm``. It is measured against the host's ``time.time()``,
so an NTP slew of the host clock during the recording shows up in it too.

Segments (:class:`ClockTracker`): one fit holds while the device counter and the host clock run
on. A new segment starts when a stream's description changes, when a block arrives earlier than
the envelope of a segment spanning 10 s allows (by more than ``max(min_step_s, 5 x jitter)``: the
host clock stepped back or the counter jumped), when a block after a gap arrives more than ``gap_step_s`` later than the
envelope predicts and no block of the next ``confirm_s`` host seconds comes back to it (the
device was away longer than the samples it reports missing: a reset and reboot; a late block that
is followed by ones back on the line was a stall of the host or the link), or when
:meth:`ClockTracker.split` is called (a caller that knows of a device reset).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from biofeed.blocks import AnalysisEvent, Block, DeviceInfo, DeviceStatus, LinkEvent, Marker, StreamInfo

__all__ = [
    "DEFAULT_BIN_S",
    "DEFAULT_CONFIRM_S",
    "DEFAULT_GAP_STEP_S",
    "DEFAULT_MAX_BINS",
    "DEFAULT_MIN_STEP_S",
    "JITTER_QUANTILE",
    "ClockFit",
    "ClockFitter",
    "ClockTracker",
    "block_arrival_point",
    "clock_fits_from_json",
    "clock_fits_to_json",
    "main_fit",
]

DEFAULT_BIN_S = 0.1
"""Device seconds per bin at the start (doubles when the bins exceed ``max_bins``)."""
DEFAULT_MAX_BINS = 1024
"""Bins kept per segment: 16 bytes each plus counts, whatever the recording's length."""
DEFAULT_MIN_STEP_S = 0.05
"""Smallest jump below the envelope taken as a clock step rather than slope error."""
DEFAULT_GAP_STEP_S = 0.5
"""A block after a gap arriving this much later than the envelope predicts may start a new segment."""
DEFAULT_CONFIRM_S = 10.0
"""Host seconds after such a block during which one block back on the envelope makes it a stall."""
JITTER_QUANTILE = 0.95
"""``jitter_ms`` is this quantile of the arrival delays above the envelope."""

_DELAY_EDGES_S = np.geomspace(1e-6, 1e3, 901)  # 100 bins per decade: 2.3 % resolution
_MAX_SEGMENTS = 64  # per stream; resets are rare, this only bounds a pathological device
_MAX_BIN_VERTICES = 16
_ESTABLISHED_S = 10.0  # device seconds a segment spans before its envelope judges steps below it


@dataclass(frozen=True)
class ClockFit:
    """One segment's mapping from a stream's device time to host time.

    ``host_time_s = offset_s + slope * device_time_s``, with ``device_time_s = sample_index /
    sample_rate_hz`` (nominal rate): the earliest host time at which the packet holding the sample
    could arrive (the link's smallest delay included, which a shared tap measures between devices).

    Attributes
    ----------
    offset_s : float
        Host time (``time.time()`` seconds) at device time 0.
    slope : float
        Host seconds per device second.
    first_device_s, last_device_s : float
        Device times of the first and last point fitted: where the fit is valid (it extrapolates
        outside, with an error growing by the slope's uncertainty).
    n_points : int
        Points (sample blocks) fitted.
    jitter_ms : float
        95th percentile of the arrival delay above the envelope, ms.
    """

    offset_s: float
    slope: float
    first_device_s: float
    last_device_s: float
    n_points: int
    jitter_ms: float

    @property
    def clock_error_ppm(self) -> float:
        """Device clock error in ppm: ``(1 / slope - 1) * 1e6``, positive when the device runs fast."""
        return (1.0 / self.slope - 1.0) * 1e6

    @property
    def span_s(self) -> float:
        """Device seconds between the first and last point fitted."""
        return self.last_device_s - self.first_device_s

    @overload
    def host_time_s(self, device_time_s: float) -> float: ...

    @overload
    def host_time_s(self, device_time_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...

    def host_time_s(self, device_time_s: float | npt.NDArray[np.float64]) -> float | npt.NDArray[np.float64]:
        """Host time (s since the epoch) of a device time (s), scalar or array of any shape."""
        return self.offset_s + self.slope * device_time_s

    def device_time_s(self, host_time_s: float) -> float:
        """Device time (s) at a host time (s since the epoch): the inverse of :meth:`host_time_s`."""
        return (host_time_s - self.offset_s) / self.slope

    def to_json(self) -> dict[str, Any]:
        """Return the fit as a JSON object: the attributes plus ``clock_error_ppm``."""
        return {
            "offset_s": self.offset_s,
            "slope": self.slope,
            "first_device_s": self.first_device_s,
            "last_device_s": self.last_device_s,
            "n_points": self.n_points,
            "clock_error_ppm": self.clock_error_ppm,
            "jitter_ms": self.jitter_ms,
        }

    @classmethod
    def from_json(cls, data: object) -> ClockFit:
        """Return the fit described by :meth:`to_json`'s object (``clock_error_ppm`` is derived, ignored).

        Raises
        ------
        ValueError
            When a key is missing or not a finite number, or the slope is not positive.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a clock fit must be a JSON object, got {data!r:.60}")
        numbers: dict[str, float] = {}
        for key in ("offset_s", "slope", "first_device_s", "last_device_s", "n_points", "jitter_ms"):
            value = data.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"clock fit key {key!r} must be a finite number, got {value!r}")
            numbers[key] = float(value)
        if not numbers["slope"] > 0:
            raise ValueError(f"clock fit slope must be positive, got {numbers['slope']}")
        return cls(
            numbers["offset_s"],
            numbers["slope"],
            numbers["first_device_s"],
            numbers["last_device_s"],
            int(numbers["n_points"]),
            numbers["jitter_ms"],
        )


def _delay_histogram(delays_s: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Counts of delays (s) in the bins of ``_DELAY_EDGES_S`` (bin 0: below 1 us; last: 1000 s and more)."""
    indices = np.searchsorted(_DELAY_EDGES_S, delays_s, side="right")
    return np.bincount(indices, minlength=len(_DELAY_EDGES_S) + 1).astype(np.int64)


def _histogram_quantile(counts: npt.NDArray[np.int64], quantile: float) -> float:
    """A quantile of delays from their histogram, interpolated geometrically within a bin; 0 when empty."""
    total = int(counts.sum())
    if total == 0:
        return 0.0
    cumulative = np.cumsum(counts)
    rank = quantile * total
    i = int(np.searchsorted(cumulative, rank, side="left"))
    if i == 0:
        return 0.0
    if i >= len(_DELAY_EDGES_S):
        return float(_DELAY_EDGES_S[-1])
    fraction = (rank - cumulative[i - 1]) / counts[i]
    lo, hi = _DELAY_EDGES_S[i - 1], _DELAY_EDGES_S[i]
    return float(lo * (hi / lo) ** min(max(fraction, 0.0), 1.0))


def _cross(ox: float, oy: float, ax: float, ay: float, bx: float, by: float) -> float:
    """Cross product (a - o) x (b - o): <= 0 when a lies on or above the segment o -> b (a leaves the lower hull)."""
    return (ax - ox) * (by - oy) - (ay - oy) * (bx - ox)


def _push_lower_hull(hull_x: list[float], hull_y: list[float], x: float, y: float) -> None:
    """Append a point right of every hull point, popping those it shows are not on the lower hull."""
    while len(hull_x) >= 2 and _cross(hull_x[-2], hull_y[-2], hull_x[-1], hull_y[-1], x, y) <= 0:
        hull_x.pop()
        hull_y.pop()
    hull_x.append(x)
    hull_y.append(y)


@dataclass
class _Bin:
    """A closed bin: the lower hull of its points, their count and the sum of their device times."""

    index: int
    hull_x: list[float]
    hull_y: list[float]
    n_points: int
    sum_x: float


class ClockFitter:
    """The lower-envelope fit of one segment, updated point by point in bounded memory.

    Parameters
    ----------
    bin_s : float
        Device seconds per bin at the start.
    max_bins : int
        Bins kept; beyond, neighbours merge and the bin width doubles (at least 4).
    slope : float
        Host seconds per device second to assume until the points give their own (1: a device
        whose clock is right; a segment that follows another takes that one's).

    Raises
    ------
    ValueError
        A non-positive or non-finite ``bin_s`` or ``slope``, or ``max_bins`` below 4.

    Notes
    -----
    Each bin keeps the lower hull of its points (at most 16 vertices; typically 2 to 4), so the
    hull of the bins is the hull of every point and the fit lies under all of them. Points must come
    in non-decreasing device time (a stream's blocks do); a point earlier than the open bin is
    counted in it.
    """

    def __init__(self, *, bin_s: float = DEFAULT_BIN_S, max_bins: int = DEFAULT_MAX_BINS, slope: float = 1.0) -> None:
        if not (math.isfinite(bin_s) and bin_s > 0):
            raise ValueError(f"bin_s must be a positive number of seconds, got {bin_s!r}")
        if not (math.isfinite(slope) and slope > 0):
            raise ValueError(f"slope must be a positive number, got {slope!r}")
        if isinstance(max_bins, bool) or not isinstance(max_bins, int) or max_bins < 4:
            raise ValueError(f"max_bins must be a whole number >= 4, got {max_bins!r}")
        self._bin_s = float(bin_s)
        self._max_bins = max_bins
        # Coordinates are relative to the first point: host times near 1.7e9 s would lose the
        # precision the hull's cross products need.
        self._x0 = 0.0
        self._y0 = 0.0
        self._n_points = 0
        self._first_x = 0.0
        self._last_x = 0.0
        self._newest_x = -math.inf  # relative
        self._slope = float(slope)  # current estimate: extrapolates, and thins a bin with too many vertices
        self._bins: list[_Bin] = []
        self._hull_x: list[float] = []  # lower hull of the closed bins' vertices
        self._hull_y: list[float] = []
        self._closed_n = 0
        self._closed_sum_x = 0.0
        # the open bin keeps its points until it closes (one bin of a stream: bounded)
        self._open_index: int | None = None
        self._open_x: list[float] = []
        self._open_y: list[float] = []
        self._open_sum_x = 0.0
        self._open_low: tuple[float, float] = (0.0, 0.0)  # its lowest point by the current slope
        self._delay_counts = np.zeros(len(_DELAY_EDGES_S) + 1, dtype=np.int64)
        self._jitter_s = 0.0  # JITTER_QUANTILE of the delays, refreshed when a bin closes
        self._envelope: tuple[float, float] | None = None  # (intercept, slope) when a bin last closed

    @property
    def n_points(self) -> int:
        """Points added."""
        return self._n_points

    @property
    def bin_s(self) -> float:
        """Current bin width in device seconds."""
        return self._bin_s

    @property
    def slope(self) -> float:
        """Current estimate of the slope (host seconds per device second)."""
        return self._slope

    @property
    def n_bins(self) -> int:
        """Bins held (closed ones plus the open one): the memory in use."""
        return len(self._bins) + bool(self._open_x)

    def add(self, device_time_s: float, host_time_s: float) -> None:
        """Add one point: the device time of a block's last sample and the block's arrival (host) time.

        Raises
        ------
        ValueError
            When either time is not finite.
        """
        if not (math.isfinite(device_time_s) and math.isfinite(host_time_s)):
            raise ValueError(f"times must be finite, got {device_time_s!r} and {host_time_s!r}")
        if self._n_points == 0:
            self._x0, self._y0 = device_time_s, host_time_s
            self._first_x = device_time_s
        # a point out of order is taken at the newest device time so far: the hulls need order
        x = max(device_time_s - self._x0, self._newest_x)
        self._newest_x = x
        y = host_time_s - self._y0
        if self._open_index is not None and math.floor(x / self._bin_s) > self._open_index:
            self._close_open_bin()  # may merge bins and double their width
        if not self._open_x:
            self._open_index = math.floor(x / self._bin_s)
            self._open_low = (x, y)
        elif y - self._slope * x < self._open_low[1] - self._slope * self._open_low[0]:
            self._open_low = (x, y)
        self._open_x.append(x)
        self._open_y.append(y)
        self._open_sum_x += x
        self._n_points += 1
        self._last_x = max(self._last_x, device_time_s)

    # -- the hull ----------------------------------------------------------------------------------

    def _bin_hull(self, xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
        """Lower hull of a bin's points (sorted by device time), thinned to its lowest 16 vertices."""
        hull_x: list[float] = []
        hull_y: list[float] = []
        for x, y in zip(xs, ys, strict=True):
            _push_lower_hull(hull_x, hull_y, x, y)
        if len(hull_x) > _MAX_BIN_VERTICES:  # a strongly curved run of arrivals; never seen in practice
            keys = np.asarray(hull_y) - self._slope * np.asarray(hull_x)
            keep = np.sort(np.argsort(keys, kind="stable")[:_MAX_BIN_VERTICES])
            hull_x = [hull_x[i] for i in keep]
            hull_y = [hull_y[i] for i in keep]
        return hull_x, hull_y

    def _relative_line(self, hull_x: Sequence[float], hull_y: Sequence[float], mean_x: float) -> tuple[float, float]:
        """(intercept, slope) in relative coordinates of the hull edge over the mean device time."""
        # the edge [i, i+1] with x_i <= mean_x <= x_{i+1}, clamped to the hull's ends
        i = bisect.bisect_right(hull_x, mean_x) - 1
        i = min(max(i, 0), len(hull_x) - 2)
        slope = (hull_y[i + 1] - hull_y[i]) / (hull_x[i + 1] - hull_x[i])
        return hull_y[i] - slope * hull_x[i], slope

    def _current_line(self) -> tuple[float, float] | None:
        """The envelope line of every point so far, the open bin's included; None with fewer than two vertices."""
        hull_x, hull_y = self._hull_x, self._hull_y
        n = self._closed_n
        sum_x = self._closed_sum_x
        if self._open_x:
            hull_x, hull_y = list(hull_x), list(hull_y)
            for x, y in zip(*self._bin_hull(self._open_x, self._open_y), strict=True):
                _push_lower_hull(hull_x, hull_y, x, y)
            n += len(self._open_x)
            sum_x += self._open_sum_x
        if len(hull_x) < 2:
            return None
        return self._relative_line(hull_x, hull_y, sum_x / n)

    # -- bins ----------------------------------------------------------------------------------------

    def _close_open_bin(self) -> None:
        if self._open_index is None or not self._open_x:
            return
        hull_x, hull_y = self._bin_hull(self._open_x, self._open_y)
        self._bins.append(_Bin(self._open_index, hull_x, hull_y, len(self._open_x), self._open_sum_x))
        for x, y in zip(hull_x, hull_y, strict=True):
            _push_lower_hull(self._hull_x, self._hull_y, x, y)
        self._closed_n += len(self._open_x)
        self._closed_sum_x += self._open_sum_x
        points_x = np.asarray(self._open_x)
        points_y = np.asarray(self._open_y)
        self._open_index = None
        self._open_x = []
        self._open_y = []
        self._open_sum_x = 0.0
        if len(self._hull_x) >= 2:
            intercept, slope = self._relative_line(self._hull_x, self._hull_y, self._closed_sum_x / self._closed_n)
            if slope > 0:
                self._slope = slope
                self._envelope = (intercept, slope)
        else:
            intercept, slope = self._hull_y[0] - self._slope * self._hull_x[0], self._slope
        self._delay_counts += _delay_histogram(np.maximum(points_y - (intercept + slope * points_x), 0.0))
        self._jitter_s = self.delay_quantile_s(JITTER_QUANTILE)
        if len(self._bins) > self._max_bins:
            self._merge_bins()

    def _merge_bins(self) -> None:
        """Halve the bins: each pair of neighbours keeps the hull of both; the width doubles."""
        merged: list[_Bin] = []
        for b in self._bins:
            index = b.index // 2
            if merged and merged[-1].index == index:
                last = merged[-1]
                hull_x, hull_y = self._bin_hull(last.hull_x + b.hull_x, last.hull_y + b.hull_y)
                merged[-1] = _Bin(index, hull_x, hull_y, last.n_points + b.n_points, last.sum_x + b.sum_x)
            else:
                merged.append(_Bin(index, b.hull_x, b.hull_y, b.n_points, b.sum_x))
        self._bins = merged
        self._bin_s *= 2.0
        if self._open_index is not None:
            self._open_index //= 2
        # the open bin may now share its index with the last closed one: closing merges nothing,
        # it only appends; both hulls are exact, so the global hull stays the hull of every point
        self._hull_x, self._hull_y = [], []
        for b in merged:
            for x, y in zip(b.hull_x, b.hull_y, strict=True):
                _push_lower_hull(self._hull_x, self._hull_y, x, y)

    # -- results -------------------------------------------------------------------------------------

    def delay_quantile_s(self, quantile: float) -> float:
        """A quantile (0..1) of the arrival delays above the envelope, s, over the closed bins; 0 before any.

        Raises
        ------
        ValueError
            A quantile outside 0..1.
        """
        if not 0.0 <= quantile <= 1.0:
            raise ValueError(f"quantile must lie in 0..1, got {quantile!r}")
        return _histogram_quantile(self._delay_counts, quantile)

    @property
    def jitter_s(self) -> float:
        """The :data:`JITTER_QUANTILE` of the delays above the envelope as of the last closed bin, s."""
        return self._jitter_s

    def expected_host_time_s(self, device_time_s: float) -> float | None:
        """The envelope near the newest points, extrapolated to a device time; None before any point.

        Uses the newest low point (the open bin's lowest, else the hull's last vertex) and the
        current slope, so it is accurate even while the segment is too short for a good global fit.
        """
        if self._n_points == 0:
            return None
        x, y = self._open_low if self._open_x else (self._hull_x[-1], self._hull_y[-1])
        return self._y0 + y + self._slope * (device_time_s - self._x0 - x)

    @property
    def closed_span_s(self) -> float:
        """Device seconds from the first point to the newest vertex of a closed bin (0 before one closed)."""
        return self._hull_x[-1] if self._hull_x else 0.0

    def envelope_host_time_s(self, device_time_s: float) -> float | None:
        """The envelope of the closed bins, at a device time; None before it has two vertices.

        Under every point of the closed bins, so a late point (a burst after a stall) never raises
        it, unlike :meth:`expected_host_time_s`; its extrapolation is as good as the slope, so use it
        once the segment spans some seconds.
        """
        if self._envelope is None:
            return None
        intercept, slope = self._envelope
        return self._y0 + intercept + slope * (device_time_s - self._x0)

    def fit(self) -> ClockFit | None:
        """The envelope fit of every point so far; None until the hull has two vertices."""
        line = self._current_line()
        if line is None:
            return None
        intercept, slope = line
        if not slope > 0:
            return None
        offset_s = self._y0 + intercept - slope * self._x0
        counts = self._delay_counts
        if self._open_x:  # the open bin's points count too, without being committed
            delays = np.maximum(np.asarray(self._open_y) - (intercept + slope * np.asarray(self._open_x)), 0.0)
            counts = counts + _delay_histogram(delays)
        jitter_ms = _histogram_quantile(counts, JITTER_QUANTILE) * 1e3
        return ClockFit(offset_s, slope, self._first_x, self._last_x, self._n_points, jitter_ms)


def block_arrival_point(block: Block) -> tuple[float, float] | None:
    """The fit's point of a block: device time of its last sample (s) and its arrival (host s).

    The packet leaves once its last sample exists, so its arrival bounds that sample's host time
    from above. None for an empty block or one without a receive time.
    """
    if block.n_samples == 0 or not math.isfinite(block.received_at):
        return None
    return (block.end_index - 1) / block.info.sample_rate_hz, block.received_at


class _Segment:
    __slots__ = ("fitter", "info")

    def __init__(self, info: StreamInfo, bin_s: float, max_bins: int, slope: float) -> None:
        self.info = info
        self.fitter = ClockFitter(bin_s=bin_s, max_bins=max_bins, slope=slope)


class _Suspect:
    """Blocks after a late gap, held until they show a reset (all late) or a stall (one back on the line)."""

    __slots__ = ("deadline_s", "points", "segment")

    def __init__(self, segment: _Segment, deadline_s: float) -> None:
        self.segment = segment
        self.deadline_s = deadline_s
        self.points: list[tuple[float, float]] = []


class ClockTracker:
    """Clock fits of every stream of one device, from its decoded blocks, segment by segment.

    Also a sink (``write``/``close``): give it the decoder's items (a runner's sinks get them) and
    it follows the streams the device's INFO describes, ignoring derived blocks (a pipeline's
    ``emg.filtered``) and everything else.

    Parameters
    ----------
    bin_s, max_bins : float, int
        Of each segment's :class:`ClockFitter`.
    min_step_s : float
        Smallest jump below the envelope that starts a new segment (the threshold is
        ``max(min_step_s, 5 x the segment's jitter)``; judged once the segment spans 10 device s).
    gap_step_s : float
        A block after a gap arriving this much later than the envelope predicts (or 5 x the
        jitter, if more) starts a new segment, unless a block of the next ``confirm_s`` host
        seconds is back on the envelope.
    confirm_s : float
        Host seconds to wait for that.

    Raises
    ------
    ValueError
        Non-positive thresholds, or bad ``bin_s`` / ``max_bins``.
    """

    def __init__(
        self,
        *,
        bin_s: float = DEFAULT_BIN_S,
        max_bins: int = DEFAULT_MAX_BINS,
        min_step_s: float = DEFAULT_MIN_STEP_S,
        gap_step_s: float = DEFAULT_GAP_STEP_S,
        confirm_s: float = DEFAULT_CONFIRM_S,
    ) -> None:
        for name, value in (("min_step_s", min_step_s), ("gap_step_s", gap_step_s), ("confirm_s", confirm_s)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        ClockFitter(bin_s=bin_s, max_bins=max_bins)  # validates both
        self._bin_s = bin_s
        self._max_bins = max_bins
        self._min_step_s = min_step_s
        self._gap_step_s = gap_step_s
        self._confirm_s = confirm_s
        self._segments: dict[str, list[_Segment]] = {}
        self._suspects: dict[str, _Suspect] = {}
        self._device_streams: frozenset[str] = frozenset()

    # -- as a sink -------------------------------------------------------------------------------

    def write(self, item: Block | DeviceInfo | Marker | DeviceStatus | LinkEvent | AnalysisEvent) -> None:
        """Take one item of a device: its INFO names the streams, its blocks feed the fits."""
        if isinstance(item, DeviceInfo):
            self._device_streams = frozenset(s.name for s in item.streams)
        elif isinstance(item, Block) and item.info.name in self._device_streams:
            self.add(item)

    def close(self) -> None:
        """Nothing to release (the fits stay readable)."""

    # -- fitting ---------------------------------------------------------------------------------

    def add(self, block: Block) -> None:
        """Add one decoded block of the device (any stream)."""
        point = block_arrival_point(block)
        if point is None:
            return
        device_s, host_s = point
        name = block.info.name
        segments = self._segments.get(name)
        current = segments[-1] if segments else None
        changed = current is not None and current.info is not block.info and current.info != block.info
        if current is None or changed:
            self._confirm(name)
            current = self._new_segment(name, block.info)
        elif name in self._suspects:
            if self._settle(name, current, device_s, host_s):
                return
            current = self._segments[name][-1]
        if self._early(current, device_s, host_s):
            current = self._new_segment(name, block.info)
        elif block.gap_before > 0 and self._late(current, device_s, host_s):
            segment = _Segment(block.info, self._bin_s, self._max_bins, current.fitter.slope)
            suspect = _Suspect(segment, host_s + self._confirm_s)
            self._suspects[name] = suspect
            suspect.points.append((device_s, host_s))
            suspect.segment.fitter.add(device_s, host_s)
            return
        current.fitter.add(device_s, host_s)

    def _tolerance_s(self, segment: _Segment, floor_s: float) -> float:
        return max(floor_s, 5.0 * segment.fitter.jitter_s)

    def _envelope_s(self, segment: _Segment, device_s: float) -> float | None:
        """The segment's envelope at a device time, once it spans enough to be trusted; else None."""
        if segment.fitter.closed_span_s < _ESTABLISHED_S:
            return None
        return segment.fitter.envelope_host_time_s(device_s)

    def _early(self, segment: _Segment, device_s: float, host_s: float) -> bool:
        # only against an established envelope: the newest points of a young segment may be a
        # burst after a stall, and the points after them would look early against them
        expected = self._envelope_s(segment, device_s)
        return expected is not None and host_s < expected - self._tolerance_s(segment, self._min_step_s)

    def _late(self, segment: _Segment, device_s: float, host_s: float) -> bool:
        expected = self._envelope_s(segment, device_s)
        if expected is None:
            expected = segment.fitter.expected_host_time_s(device_s)
        return expected is not None and host_s > expected + self._tolerance_s(segment, self._gap_step_s)

    def _settle(self, name: str, current: _Segment, device_s: float, host_s: float) -> bool:
        """Take a block while a late gap is in doubt; True when the block was taken."""
        suspect = self._suspects[name]
        if not self._late(current, device_s, host_s) and not self._early(current, device_s, host_s):
            # back on the old envelope: the late blocks were a stall, and belong to the old segment
            del self._suspects[name]
            for x, y in suspect.points:
                current.fitter.add(x, y)
            current.fitter.add(device_s, host_s)
            return True
        if host_s < suspect.deadline_s and not self._early(suspect.segment, device_s, host_s):
            suspect.points.append((device_s, host_s))
            suspect.segment.fitter.add(device_s, host_s)
            return True
        # the late blocks stayed late (a reset), or another step follows them: they are a segment
        self._confirm(name)
        return False

    def _confirm(self, name: str) -> None:
        """A late gap that stayed late: its blocks start a new segment."""
        suspect = self._suspects.pop(name, None)
        if suspect is not None:
            self._append_segment(name, suspect.segment)

    def _new_segment(self, name: str, info: StreamInfo) -> _Segment:
        # a young segment extrapolates with the slope the stream had: 1 would be far off for a
        # device replayed faster than real time, and would make its next blocks look early
        previous = self._segments.get(name)
        slope = previous[-1].fitter.slope if previous else 1.0
        segment = _Segment(info, self._bin_s, self._max_bins, slope)
        self._append_segment(name, segment)
        return segment

    def _append_segment(self, name: str, segment: _Segment) -> None:
        segments = self._segments.setdefault(name, [])
        segments.append(segment)
        if len(segments) > _MAX_SEGMENTS:
            del segments[0]

    def split(self, name: str | None = None) -> None:
        """Start new segments for one stream, or every stream (a caller that saw a device reset)."""
        for stream in list(self._suspects):
            if name is None or stream == name:
                self._confirm(stream)
        for stream, segments in self._segments.items():
            if (name is None or stream == name) and segments and segments[-1].fitter.n_points:
                self._new_segment(stream, segments[-1].info)

    # -- results ---------------------------------------------------------------------------------

    @property
    def stream_names(self) -> tuple[str, ...]:
        """Streams seen, in order of their first block."""
        return tuple(self._segments)

    def _all_segments(self, name: str) -> list[_Segment]:
        """A stream's segments, with the blocks of a late gap still in doubt as the newest."""
        segments = list(self._segments.get(name, ()))
        if name in self._suspects:
            segments.append(self._suspects[name].segment)
        return segments

    def fits(self, name: str) -> tuple[ClockFit, ...]:
        """The fits of a stream's segments in order (segments too short to fit left out)."""
        fits = (segment.fitter.fit() for segment in self._all_segments(name))
        return tuple(fit for fit in fits if fit is not None)

    def main_fit(self, name: str) -> ClockFit | None:
        """The fit of a stream's longest segment (device span); None without one."""
        return main_fit(self.fits(name))

    def host_time_s(self, name: str, sample_index: int) -> float | None:
        """Fitted host time of a stream's sample, from the segment whose span holds it (else the newest).

        None when the stream has no fit yet.
        """
        fitted = [(s.info, fit) for s in self._all_segments(name) if (fit := s.fitter.fit()) is not None]
        if not fitted:
            return None
        info, chosen = fitted[-1]
        device_s = sample_index / info.sample_rate_hz
        for _, fit in fitted:
            if fit.first_device_s <= device_s <= fit.last_device_s:
                chosen = fit
        return chosen.host_time_s(device_s)

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        """Per stream, the list of its segments' fits as JSON objects (:func:`clock_fits_to_json`)."""
        return clock_fits_to_json({name: self.fits(name) for name in self._segments})


def main_fit(fits: Sequence[ClockFit]) -> ClockFit | None:
    """The fit with the longest device span (the first of equals); None for none."""
    best: ClockFit | None = None
    for fit in fits:
        if best is None or fit.span_s > best.span_s:
            best = fit
    return best


def clock_fits_to_json(fits: Mapping[str, Sequence[ClockFit]]) -> dict[str, list[dict[str, Any]]]:
    """Per stream fits as JSON: ``{stream: [fit, ...]}`` (the ``clock`` object of recording.json)."""
    return {name: [fit.to_json() for fit in stream_fits] for name, stream_fits in fits.items()}


def clock_fits_from_json(data: object) -> dict[str, tuple[ClockFit, ...]]:
    """Parse :func:`clock_fits_to_json`'s object.

    Raises
    ------
    ValueError
        When it is not an object of lists of fits.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"clock fits must be a JSON object of streams, got {data!r:.60}")
    fits: dict[str, tuple[ClockFit, ...]] = {}
    for name, stream_fits in data.items():
        if not isinstance(name, str) or not isinstance(stream_fits, list):
            raise ValueError(f"clock fits of {name!r} must be a list")
        fits[name] = tuple(ClockFit.from_json(fit) for fit in stream_fits)
    return fits
