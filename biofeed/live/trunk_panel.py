"""Trunk and lumbar angles in the live window (shown when the device has an IMU).

Above the plot, the phase of a flexion-relaxation cycle (standing, flexing, full flexion, extending:
:mod:`biofeed.dsp.flexion_phase`, tracked in the worker) when it is known; on the plot, its flexing,
full flexion and extending stretches shaded.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from biofeed.live.fixed_plot import fix_plot
from biofeed.live.qt import QtWidgets, pg
from biofeed.live.time_spans import TimeSpans
from biofeed.live.wording import FLEXION_PHASE_WORDS
from biofeed.sinks.ring_buffer import PhaseSpan, StreamWindow

__all__ = ["FLEXION_PHASE_BRUSHES", "SHOWN_ANGLES", "TrunkPanel"]

SHOWN_ANGLES: tuple[tuple[str, str, tuple[int, int, int]], ...] = (
    ("lumbar_flexion", "lumbar flexion", (200, 80, 20)),
    ("thoracic_inclination", "trunk inclination", (40, 90, 200)),
)
"""Rows of the ``trunk_angles`` stream drawn: (row name, words, colour)."""
FLEXION_PHASE_BRUSHES: dict[str, tuple[int, int, int, int]] = {
    "flexing": (255, 140, 0, 55),
    "full_flexion": (46, 160, 67, 60),
    "extending": (30, 144, 255, 55),
}
"""Fill of the flexion-relaxation phases on the angle plot (standing is not filled)."""


class TrunkPanel(QtWidgets.QFrame):
    """A scrolling plot of lumbar flexion and trunk inclination (degrees, 0 = posture at calibration).

    Attributes
    ----------
    latest_deg : dict of str to float
        The newest value of each angle shown.
    phase_label : QLabel
        The phase of a flexion-relaxation cycle now ("" when unknown).
    spans : TimeSpans
        Its stretches on the plot.
    """

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.label = QtWidgets.QLabel("trunk angles: waiting for 2 s of stillness to calibrate")
        # its text changes every frame; a label that asks for a new layout repaints the whole window
        self.label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.plot = self.graphics.addPlot()
        fix_plot(self.plot)
        self.plot.setLabel("left", "deg")
        self.plot.setLabel("bottom", "s (0 = now)")
        self.plot.addLegend(offset=(-5, -5))  # bottom right: the angles rest near 0 at the top
        self.curves = {
            name: self.plot.plot(pen=pg.mkPen(colour, width=1), name=words, connect="finite")
            for name, words, colour in SHOWN_ANGLES
        }
        self.latest_deg: dict[str, float] = {}
        self.phase_label = QtWidgets.QLabel("")
        self.phase_label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        self.spans = TimeSpans()
        self.plot.addItem(self.spans)
        self._phases: tuple[PhaseSpan, ...] = ()
        self._window_s = 10.0
        self._y_range = (0.0, 0.0)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addWidget(self.label)
        layout.addWidget(self.phase_label)
        layout.addWidget(self.graphics, 1)

    def show_angles(self, window: StreamWindow, times_s: npt.NDArray[np.float64]) -> None:
        """Draw the ``trunk_angles`` rows :data:`SHOWN_ANGLES` has (``times_s``: seconds, 0 = now)."""
        names = [c.name for c in window.info.channels]
        words = []
        rows = [window.data[names.index(name)] for name, _, _ in SHOWN_ANGLES if name in names]
        values = np.concatenate(rows) if rows else np.zeros(0)
        finite = values[np.isfinite(values)]
        if finite.size:
            low, high = float(finite.min()), float(finite.max())
            margin = max(2.0, 0.2 * (high - low))
            wanted = high - low + 2 * margin
            span = self._y_range[1] - self._y_range[0]
            # rescale when the angles leave the range or fill less than half of it, not every frame
            if not (self._y_range[0] <= low and high <= self._y_range[1]) or span > 2 * wanted:
                self._y_range = (low - margin, high + margin)
                self.plot.setYRange(*self._y_range, padding=0)
        for name, text, _ in SHOWN_ANGLES:
            if name not in names:
                continue
            values = window.data[names.index(name)]
            self.curves[name].setData(times_s, values)
            finite = values[np.isfinite(values)]
            if finite.size:
                self.latest_deg[name] = float(finite[-1])
                words.append(f"{text} {self.latest_deg[name]:+.1f}\u00b0")
        text = "  \u00b7  ".join(words) + "  (0\u00b0 = posture at calibration)"
        if text != self.label.text():
            self.label.setText(text)

    def set_window(self, window_s: float) -> None:
        """Show the last ``window_s`` seconds (the x axis runs from ``-window_s`` to 0, now)."""
        self._window_s = window_s
        self.plot.setXRange(-window_s, 0.0, padding=0)

    def show_flexion_phase(self, phase: str | None, spans: tuple[PhaseSpan, ...]) -> None:
        """Show the current phase of a flexion-relaxation cycle (None: unknown) and its recent spans."""
        words = FLEXION_PHASE_WORDS.get(phase or "")
        text = f"<b>flexion-relaxation: {words}</b>" if words else ""
        if text != self.phase_label.text():
            self.phase_label.setText(text)
        self._phases = spans if words else ()

    @property
    def flexion_phase_text(self) -> str:
        """The phase as shown ("" when unknown)."""
        return self.phase_label.text().removeprefix("<b>flexion-relaxation: ").removesuffix("</b>")

    def show_time(self, now_s: float) -> None:
        """Place the phase spans for ``now_s`` (seconds from the time origin) at 0."""
        oldest_s = now_s - self._window_s
        shown = [
            (max(s.start_s, oldest_s) - now_s, (s.end_s if s.end_s is not None else now_s) - now_s, brush)
            for s in self._phases
            if (brush := FLEXION_PHASE_BRUSHES.get(s.phase)) is not None and (s.end_s is None or s.end_s > oldest_s)
        ]
        self.spans.set_spans(shown, *self._y_range)
