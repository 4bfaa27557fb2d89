"""Trunk and lumbar angles in the live window (shown when the device has an IMU)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from biofeed.live.qt import QtWidgets, pg
from biofeed.sinks.ring_buffer import StreamWindow

__all__ = ["SHOWN_ANGLES", "TrunkPanel"]

SHOWN_ANGLES: tuple[tuple[str, str, tuple[int, int, int]], ...] = (
    ("lumbar_flexion", "lumbar flexion", (200, 80, 20)),
    ("thoracic_inclination", "trunk inclination", (40, 90, 200)),
)
"""Rows of the ``trunk_angles`` stream drawn: (row name, words, colour)."""


class TrunkPanel(QtWidgets.QFrame):
    """A scrolling plot of lumbar flexion and trunk inclination (degrees, 0 = posture at calibration).

    Attributes
    ----------
    latest_deg : dict of str to float
        The newest value of each angle shown.
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
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setLabel("left", "deg")
        self.plot.setLabel("bottom", "s (0 = now)")
        self.plot.disableAutoRange()  # ranges set here: a range that moves every frame costs an axis layout
        self.plot.addLegend(offset=(-5, -5))  # bottom right: the angles rest near 0 at the top
        self.curves = {
            name: self.plot.plot(pen=pg.mkPen(colour, width=2), name=words, connect="finite")
            for name, words, colour in SHOWN_ANGLES
        }
        self.latest_deg: dict[str, float] = {}
        self._y_range = (0.0, 0.0)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addWidget(self.label)
        layout.addWidget(self.graphics, 1)

    def show_angles(self, window: StreamWindow, times_s: npt.NDArray[np.float64]) -> None:
        """Draw the ``trunk_angles`` rows :data:`SHOWN_ANGLES` has (``times_s``: seconds, 0 = now)."""
        names = [c.name for c in window.info.channels]
        words = []
        shown = [window.data[names.index(name)] for name, _, _ in SHOWN_ANGLES if name in names]
        finite = np.concatenate(shown)[np.isfinite(np.concatenate(shown))] if shown else np.zeros(0)
        if finite.size:
            low, high = float(finite.min()), float(finite.max())
            if not (self._y_range[0] <= low and high <= self._y_range[1]) or high - low < 0.3 * (
                self._y_range[1] - self._y_range[0]
            ):
                margin = max(2.0, 0.2 * (high - low))
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
        self.plot.setXRange(-window_s, 0.0, padding=0)
