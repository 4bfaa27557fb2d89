"""One EMG channel in the live window: its trace, envelope, phases, meter and last trial card.

- Top plot: the filtered sEMG (``<stream>.filtered``, uV), scrolling; a gap is a break in the line.
- Bottom plot: the 250 ms RMS envelope (``<stream>.envelope``, noise *not* removed) on a log
  scale (rest at 2 uV and a contraction at 60 uV both readable), with the noise floor as a dashed
  line (the envelope of noise alone), the set point as a band from 80 % of it (the relative target,
  SCIENCE.md 6.2) up to the set point, and the true-relaxation zone
  ``<= max(2 uV, 1.5 x floor)`` shaded green (6.1). Set point and zone are noise-corrected levels;
  on the envelope's scale a corrected level ``L`` sits at ``hypot(L, floor)``, so they are drawn
  there: an envelope inside the green zone is a rest that meets the absolute criterion.
- Both plots: contraction (orange) and release (blue) as coloured regions, markers as lines.
- Time runs from ``-window`` to 0 (now): the data scrolls under a fixed axis. A scrolling axis
  has pyqtgraph lay its ticks out again every frame, which took about a third of a frame.
- Right: the relaxation meter (:mod:`biofeed.live.meter`); below: the channel's last trial card.

Only drawing happens here (no filtering): every number comes from the ring buffer.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from biofeed.live.columns import min_max_columns
from biofeed.live.fixed_plot import fix_plot
from biofeed.live.meter import RelaxationMeter
from biofeed.live.qt import QtCore, QtWidgets, pg
from biofeed.live.time_spans import TimeSpans
from biofeed.live.trial_cards import TrialCard
from biofeed.live.wording import phase_words, zone_limit_uv
from biofeed.sinks.ring_buffer import ChannelState, MarkerNote, PhaseSpan

__all__ = ["PHASE_BRUSHES", "RELATIVE_TARGET", "ChannelPanel"]

PHASE_BRUSHES: dict[str, tuple[int, int, int, int]] = {
    "contraction": (255, 140, 0, 70),
    "release": (30, 144, 255, 60),
    "calibrating": (128, 128, 128, 35),
}
"""Fill of each phase's regions (rest is not filled)."""
RELATIVE_TARGET = 0.8
"""SCIENCE.md 6.2: the rest after a trial must fall to 80 % of the set point before it."""

_TRACE_PEN = pg.mkPen((90, 90, 90), width=1)
# 1 pixel wide: a wider pen is stroked as polygons, which took 3 ms a frame for the envelopes and angles
_ENVELOPE_PEN = pg.mkPen((0, 0, 0), width=1)
# No grid: pyqtgraph draws it with the axes, and over a scrolling plot (the axes redrawn every
# frame) it took 3 of every 4 ms of a frame (measured, docs/live.md).
_GROW, _SHRINK = 1.15, 0.6  # y-range hysteresis: rescale when the data outgrows it or uses < 60 %
_ZONE_BOTTOM_UV = 0.01  # the zone is shaded from below any visible level
_MIN_COLUMNS = 200  # pixel columns assumed before the plot is laid out


class _LogAxis(pg.AxisItem):  # type: ignore[misc]  # pyqtgraph is untyped
    """A log axis labelled 2, 5, 10, 20 ... instead of 10^0.3 ..."""

    def logTickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        return [f"{10**v:.3g}" for v in values]


def _y_limit(current: float, needed: float) -> float:
    if needed > current or needed < _SHRINK * current:
        return needed * _GROW
    return current


class ChannelPanel(QtWidgets.QFrame):
    """The live view of one EMG channel.

    Parameters
    ----------
    channel : ChannelState
        The channel (its names and site).

    Attributes
    ----------
    key : str
        ``stream/channel``.
    floor_line : pyqtgraph.InfiniteLine
        At the noise floor (log10 uV: the envelope plot's y axis is logarithmic).
    set_point_band, zone : pyqtgraph.LinearRegionItem
        The set point band and the true-relaxation zone (log10 uV, on the envelope's scale).
    meter : RelaxationMeter
    card : TrialCard
    """

    def __init__(self, channel: ChannelState, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = channel.key
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self._title = QtWidgets.QLabel(f"<b>{channel.channel}</b>  {channel.site}")
        self.phase_label = QtWidgets.QLabel("calibrating noise floor")
        # a new phase's text must not ask the window for a new layout (that repaints all of it)
        self.phase_label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        self.phase_label.setMinimumWidth(180)
        self.phase_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.trace_plot = self.graphics.addPlot(row=0, col=0)
        self.envelope_plot = self.graphics.addPlot(row=1, col=0, axisItems={"left": _LogAxis("left")})
        for plot in (self.trace_plot, self.envelope_plot):
            fix_plot(plot)
            plot.getAxis("left").setWidth(46)
        self.envelope_plot.setXLink(self.trace_plot)
        self.envelope_plot.setLogMode(x=False, y=True)
        self.trace_plot.hideAxis("bottom")
        self.trace_plot.setLabel("left", "sEMG \u00b5V")
        self.envelope_plot.setLabel("left", "RMS \u00b5V")
        self.envelope_plot.setLabel("bottom", "s (0 = now)")
        # bare curves, given only what is drawn: the trace as the extremes of each pixel column, the
        # envelope (log10 uV: the plot's log mode maps only PlotDataItems) clipped to the window
        self.trace_curve = pg.PlotCurveItem(pen=_TRACE_PEN, connect="finite")
        self.trace_plot.addItem(self.trace_curve)
        self.envelope_curve = pg.PlotCurveItem(pen=_ENVELOPE_PEN, connect="finite")
        self.envelope_plot.addItem(self.envelope_curve)
        self.zone = pg.LinearRegionItem(
            (0.0, 0.0), orientation="horizontal", movable=False, brush=(46, 160, 67, 60), pen=pg.mkPen(None)
        )
        self.set_point_band = pg.LinearRegionItem(
            (0.0, 0.0), orientation="horizontal", movable=False, brush=(60, 110, 220, 55), pen=pg.mkPen((60, 110, 220))
        )
        self.floor_line = pg.InfiniteLine(
            0.0,
            angle=0,
            movable=False,
            pen=pg.mkPen((110, 110, 110), width=1.5, style=QtCore.Qt.PenStyle.DashLine),
            label="floor",
            labelOpts={"position": 0.03, "color": (90, 90, 90), "anchors": [(0, 1), (0, 1)]},
        )
        for item in (self.zone, self.set_point_band, self.floor_line):
            item.setZValue(-5)
            item.setVisible(False)
            self.envelope_plot.addItem(item)
        # they rarely move, and the envelope drawn over them repaints them every frame
        for item in (self.zone, self.set_point_band, self.floor_line, *self.zone.lines, *self.set_point_band.lines):
            item.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.trace_spans, self.envelope_spans = TimeSpans(), TimeSpans()
        self.trace_plot.addItem(self.trace_spans)
        self.envelope_plot.addItem(self.envelope_spans)
        self._span_phases: tuple[str, ...] = ()  # the phase of each span drawn
        self._marker_items: list[tuple[pg.InfiniteLine, str]] = []
        self._markers: tuple[MarkerNote, ...] = ()
        self._spans: list[PhaseSpan] = []
        self._now_s: float | None = None
        self._window_s = 10.0
        self._trace_limit = 10.0
        self._envelope_limit = 10.0
        self._envelope_bottom = 1.0
        self._state: ChannelState = channel
        self._drawn_levels: tuple[float | None, float | None] | None = None
        self.meter = RelaxationMeter()
        self.card = TrialCard()
        header = QtWidgets.QHBoxLayout()
        header.addWidget(self._title)
        header.addStretch(1)
        header.addWidget(self.phase_label)
        body = QtWidgets.QHBoxLayout()
        body.addWidget(self.graphics, 1)
        body.addWidget(self.meter)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addLayout(body, 1)
        layout.addWidget(self.card)
        self.set_window(self._window_s)

    # -- samples ---------------------------------------------------------------------------------

    def show_trace(self, times_s: npt.NDArray[np.float64], values_uv: npt.NDArray[np.float32]) -> None:
        """Draw the filtered sEMG (NaN: a break)."""
        columns = max(int(self.trace_plot.vb.width()), _MIN_COLUMNS)
        self.trace_curve.setData(*min_max_columns(times_s, values_uv, -self._window_s, columns))
        if values_uv.size:
            peak = float(np.nanmax(np.abs(values_uv))) if np.isfinite(values_uv).any() else 0.0
            limit = _y_limit(self._trace_limit, max(peak, 5.0))
            if limit != self._trace_limit:  # a new range makes pyqtgraph lay the axis out again
                self._trace_limit = limit
                self.trace_plot.setYRange(-limit, limit, padding=0)

    def show_envelope(self, times_s: npt.NDArray[np.float64], values_uv: npt.NDArray[np.float32]) -> None:
        """Draw the 250 ms envelope (NaN: a break)."""
        columns = max(int(self.envelope_plot.vb.width()), _MIN_COLUMNS)
        x, y = min_max_columns(times_s, values_uv, -self._window_s, columns)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.envelope_curve.setData(x, np.where(y > 0, np.log10(y), np.nan))
        finite = values_uv[np.isfinite(values_uv) & (values_uv > 0)]
        peak = float(finite.max()) if finite.size else 0.0
        top = _y_limit(self._envelope_limit, max(peak, 1.5 * self._reference_line_uv(), 3.0))
        floor = self._state.noise_floor_uv
        lowest = min(float(finite.min()) if finite.size else math.inf, floor or math.inf)
        bottom = self._envelope_bottom
        if math.isfinite(lowest) and not 0.5 * lowest <= bottom <= 0.9 * lowest:
            bottom = 0.7 * lowest
        if (top, bottom) != (self._envelope_limit, self._envelope_bottom):
            self._envelope_limit, self._envelope_bottom = top, bottom
            self.envelope_plot.setYRange(*self._envelope_log_range(), padding=0)

    def _envelope_log_range(self) -> tuple[float, float]:
        """The envelope plot's y range, log10 uV."""
        return math.log10(self._envelope_bottom), math.log10(max(self._envelope_limit, 2 * self._envelope_bottom))

    def set_window(self, window_s: float) -> None:
        """Show the last ``window_s`` seconds: the x axis runs from ``-window_s`` to 0 (now)."""
        self._window_s = window_s
        self.trace_plot.setXRange(-window_s, 0.0, padding=0)

    def _reference_line_uv(self) -> float:
        """The highest level line on the envelope's scale (set point or zone), 0 when none."""
        floor = self._state.noise_floor_uv
        if floor is None:
            return 0.0
        set_point = self._state.set_point_uv or 0.0
        return math.hypot(max(set_point, zone_limit_uv(floor)), floor)

    # -- analysis --------------------------------------------------------------------------------

    def show_state(self, channel: ChannelState, markers: tuple[MarkerNote, ...], number: int) -> None:
        """Draw the channel's analysis: phase, floor, set point band, zone, phases, meter, card.

        Parameters
        ----------
        channel : ChannelState
            The channel's state.
        markers : tuple of MarkerNote
            Markers to draw.
        number : int
            Session-wide number of the channel's last trial (for its card).
        """
        self._state = channel
        self.phase_label.setText(f"<b>{phase_words(channel)}</b>")
        floor = channel.noise_floor_uv
        if floor is not None and (floor, channel.set_point_uv) != self._drawn_levels:
            self._drawn_levels = (floor, channel.set_point_uv)
            self.floor_line.setValue(math.log10(floor))
            self.zone.setRegion((math.log10(_ZONE_BOTTOM_UV), math.log10(math.hypot(zone_limit_uv(floor), floor))))
            for item in (self.floor_line, self.zone):
                item.setVisible(True)
            set_point = channel.set_point_uv
            self.set_point_band.setVisible(set_point is not None)
            if set_point is not None:
                self.set_point_band.setRegion(
                    (
                        math.log10(math.hypot(RELATIVE_TARGET * set_point, floor)),
                        math.log10(math.hypot(set_point, floor)),
                    )
                )
        self._spans = [s for s in channel.phases if s.phase in PHASE_BRUSHES]
        self._markers = markers
        self.meter.set_values(
            level_uv=channel.envelope_corrected_uv,
            reference_uv=channel.trial_reference_uv,
            floor_uv=floor,
            status="" if floor is not None else phase_words(channel),
        )
        self.card.set_trial(channel.trials[-1] if channel.trials else None, number)
        if self._now_s is not None:
            self.show_time(self._now_s)

    def show_time(self, now_s: float) -> None:
        """Place the phase regions and markers for ``now_s`` (seconds from the time origin) at 0."""
        self._now_s = now_s
        oldest_s = now_s - self._window_s
        spans = [s for s in self._spans if s.end_s is None or s.end_s > oldest_s]
        shown = [
            (
                max(s.start_s, oldest_s) - now_s,
                (s.end_s if s.end_s is not None else max(now_s, s.start_s)) - now_s,
                PHASE_BRUSHES[s.phase],
            )
            for s in spans
        ]
        self._span_phases = tuple(s.phase for s in spans)
        self.trace_spans.set_spans(shown, -self._trace_limit, self._trace_limit)
        self.envelope_spans.set_spans(shown, *self._envelope_log_range())
        markers = [m for m in self._markers if m.time_s > oldest_s]
        while len(self._marker_items) < len(markers):
            line = pg.InfiniteLine(
                0.0,
                angle=90,
                movable=False,
                pen=pg.mkPen((160, 30, 160), width=1.5),
                label="",
                labelOpts={"position": 0.92, "color": (160, 30, 160)},
            )
            self.trace_plot.addItem(line)
            self._marker_items.append((line, ""))
        for k, (line, text) in enumerate(self._marker_items):
            visible = k < len(markers)
            if line.isVisible() != visible:
                line.setVisible(visible)
            if visible:
                line.setValue(markers[k].time_s - now_s)
                label = markers[k].label or str(markers[k].code)
                if label != text:
                    line.label.setFormat(label)
                    self._marker_items[k] = (line, label)

    # -- what a test reads -----------------------------------------------------------------------

    def floor_uv(self) -> float | None:
        """The noise floor line's level, uV (None while hidden)."""
        return 10 ** float(self.floor_line.value()) if self.floor_line.isVisible() else None

    def set_point_band_uv(self) -> tuple[float, float] | None:
        """The set point band (bottom, top) on the envelope's scale, uV (None while hidden)."""
        if not self.set_point_band.isVisible():
            return None
        low, high = self.set_point_band.getRegion()
        return 10 ** float(low), 10 ** float(high)

    def zone_top_uv(self) -> float | None:
        """Top of the true-relaxation zone on the envelope's scale, uV (None while hidden)."""
        return 10 ** float(self.zone.getRegion()[1]) if self.zone.isVisible() else None

    def phase_regions(self) -> list[tuple[str, float, float]]:
        """The phase regions drawn: (phase, start_s, end_s), seconds from the time origin."""
        now_s = self._now_s or 0.0
        return [
            (phase, now_s + start, now_s + end)
            for phase, (start, end, _) in zip(self._span_phases, self.trace_spans.spans, strict=True)
        ]

    def marker_times_s(self) -> list[float]:
        """Times of the marker lines drawn, seconds from the time origin."""
        now_s = self._now_s or 0.0
        return [now_s + float(line.value()) for line, _ in self._marker_items if line.isVisible()]
