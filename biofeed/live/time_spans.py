"""Shaded stretches of time on a plot (phases), all drawn by one graphics item.

A ``pyqtgraph.LinearRegionItem`` per stretch is two movable lines with their signals: moving a
dozen of them every frame as the data scrolls took a third of the frame while a trial's phases were
on screen (docs/live.md, "Where the time goes"). :class:`TimeSpans` keeps a list of rectangles and
paints them with ``fillRect``; setting the same list again does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from biofeed.live.qt import QtCore, QtGui, pg

__all__ = ["Span", "TimeSpans"]

Span = tuple[float, float, tuple[int, int, int, int]]
"""A shaded stretch: (start, end) on the plot's x axis and its RGBA fill."""


class TimeSpans(pg.GraphicsObject):  # type: ignore[misc]  # pyqtgraph is untyped
    """Vertical bands from ``y_low`` to ``y_high`` (the plot's y range, in its coordinates) over x spans.

    Attributes
    ----------
    spans : tuple of Span
        What is drawn, in the plot's x coordinates.
    """

    def __init__(self) -> None:
        super().__init__()
        self.spans: tuple[Span, ...] = ()
        self._y = (0.0, 0.0)
        self._brushes: dict[tuple[int, int, int, int], QtGui.QBrush] = {}
        self.setZValue(-10)

    def set_spans(self, spans: Sequence[Span], y_low: float, y_high: float) -> None:
        """Draw these spans over ``[y_low, y_high]``; nothing happens when both are as drawn."""
        spans = tuple(spans)
        if spans == self.spans and (y_low, y_high) == self._y:
            return
        self.prepareGeometryChange()
        self.spans = spans
        self._y = (y_low, y_high)
        self.update()

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802  (Qt's name)
        """The union of the spans."""
        if not self.spans:
            return QtCore.QRectF()
        start = min(s[0] for s in self.spans)
        end = max(s[1] for s in self.spans)
        low, high = self._y
        return QtCore.QRectF(start, low, end - start, high - low)

    def paint(self, painter: QtGui.QPainter, *args: Any) -> None:
        """Fill each span."""
        low, high = self._y
        for start, end, colour in self.spans:
            brush = self._brushes.get(colour)
            if brush is None:
                brush = self._brushes[colour] = QtGui.QBrush(QtGui.QColor(*colour))
            painter.fillRect(QtCore.QRectF(start, low, end - start, high - low), brush)
