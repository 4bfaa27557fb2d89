"""The relaxation meter: one large bar, readable from across the room.

It shows the channel's live level (the 250 ms RMS with the noise floor removed in the power domain,
noise-corrected uV) against the set point before the current trial, 80 % of it (the relative
criterion of SCIENCE.md 6.2), and the true-relaxation zone ``<= max(2 uV, 1.5 x floor)`` shaded
green (6.1). The bar is green inside the zone, teal below 80 % of the set point, amber below the set
point and red above it. Until the noise floor is fixed it says so instead.

With an IMU, a line above the floor says the posture, and while a trial is open whether the trunk is
still in the posture the trial began in (green within 3 deg, red beyond: such a trial is rejected).
"""

from __future__ import annotations

import math

from biofeed.live.fonts import scaled_font
from biofeed.live.qt import QtCore, QtGui, QtWidgets
from biofeed.live.wording import PostureMatch, format_uv, zone_limit_uv

__all__ = ["RelaxationMeter"]

_RELATIVE_TARGET = 0.8
_ZONE = QtGui.QColor(46, 160, 67, 70)
_COLOURS = {
    "zone": QtGui.QColor(46, 160, 67),
    "relaxed": QtGui.QColor(0, 150, 170),
    "below": QtGui.QColor(230, 160, 0),
    "above": QtGui.QColor(210, 60, 50),
}
_POSTURE_COLOURS = {True: QtGui.QColor(30, 130, 50), False: QtGui.QColor(200, 40, 30)}


class RelaxationMeter(QtWidgets.QWidget):
    """A vertical bar of the live level against the set point, its 80 % and the true-relaxation zone.

    Attributes
    ----------
    level_uv, reference_uv, floor_uv, limit_uv : float or None
        What is drawn (noise-corrected uV); None when unknown.
    status : str
        Words under the number (``calibrating noise floor``, ``-28% vs set point`` ...).
    posture : PostureMatch or None
        The posture-match indicator (None without an IMU).
    """

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.level_uv: float | None = None
        self.reference_uv: float | None = None
        self.floor_uv: float | None = None
        self.limit_uv: float | None = None
        self.status = "calibrating noise floor"
        self.posture: PostureMatch | None = None
        self.setMinimumHeight(150)
        self.setFixedWidth(155)

    def set_values(
        self, *, level_uv: float | None, reference_uv: float | None, floor_uv: float | None, status: str = ""
    ) -> None:
        """Set what to draw; repaints only when something changed."""
        limit = zone_limit_uv(floor_uv) if floor_uv is not None else None
        if floor_uv is None:
            status = status or "calibrating noise floor"
        elif not status and level_uv is not None and reference_uv:
            status = f"{100 * (level_uv / reference_uv - 1):+.0f}% vs set point"
        values = (level_uv, reference_uv, floor_uv, limit, status)
        if values == (self.level_uv, self.reference_uv, self.floor_uv, self.limit_uv, self.status):
            return
        self.level_uv, self.reference_uv, self.floor_uv, self.limit_uv, self.status = values
        self.update()

    def set_posture(self, posture: PostureMatch | None) -> None:
        """Set the posture-match indicator; repaints only when it changed."""
        if posture == self.posture:
            return
        self.posture = posture
        self.setToolTip(posture.text if posture is not None else "")
        self.update()

    @property
    def level_text(self) -> str:
        """The big number."""
        return format_uv(self.level_uv, 1)

    @property
    def scale_max_uv(self) -> float:
        """Top of the bar's scale: room above the set point and the zone."""
        candidates = [1.0]
        if self.reference_uv is not None:
            candidates.append(1.6 * self.reference_uv)
        if self.limit_uv is not None:
            candidates.append(2.0 * self.limit_uv)
        return max(candidates)

    def colour_name(self) -> str:
        """Which colour the bar has now: ``zone``, ``relaxed``, ``below`` or ``above``."""
        level = self.level_uv
        if level is None:
            return "above"
        if self.limit_uv is not None and level <= self.limit_uv:
            return "zone"
        if self.reference_uv is not None and level <= _RELATIVE_TARGET * self.reference_uv:
            return "relaxed"
        if self.reference_uv is None or level <= self.reference_uv:
            return "below"
        return "above"

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:  # noqa: N802  (Qt's name)
        """Draw the number, the bar, the zone and the set point lines."""
        painter = QtGui.QPainter(self)
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        width, height = self.width(), self.height()
        text_colour = self.palette().color(QtGui.QPalette.ColorRole.WindowText)
        big = scaled_font(self, 2.2, bold=True)
        painter.setFont(big)
        painter.setPen(text_colour)
        number_height = QtGui.QFontMetrics(big).height()
        painter.drawText(
            QtCore.QRectF(0, 0, width, number_height), QtCore.Qt.AlignmentFlag.AlignCenter, self.level_text
        )
        small = QtGui.QFont(self.font())
        painter.setFont(small)
        line = QtGui.QFontMetrics(small).height()
        painter.drawText(QtCore.QRectF(0, number_height, width, line), QtCore.Qt.AlignmentFlag.AlignCenter, self.status)
        top = number_height + line + 6
        bottom = height - line - 4
        if self.posture is not None:
            bottom -= line
            matched = self.posture.matched
            painter.setPen(_POSTURE_COLOURS[matched] if matched is not None else text_colour)
            painter.drawText(
                QtCore.QRectF(0, bottom + 2, width, line), QtCore.Qt.AlignmentFlag.AlignCenter, self.posture.short
            )
        bar_left, bar_width = 10, 40
        if bottom - top < 20:
            painter.end()
            return
        scale = self.scale_max_uv

        def y_of(value_uv: float) -> float:
            return bottom - (bottom - top) * min(max(value_uv / scale, 0.0), 1.0)

        painter.setPen(QtGui.QPen(text_colour, 1))
        painter.drawRect(QtCore.QRectF(bar_left, top, bar_width, bottom - top))
        if self.limit_uv is not None:
            zone_top = y_of(self.limit_uv)
            painter.fillRect(QtCore.QRectF(bar_left, zone_top, bar_width, bottom - zone_top), _ZONE)
        if self.level_uv is not None and math.isfinite(self.level_uv):
            level_top = y_of(self.level_uv)
            bar = QtCore.QRectF(bar_left + 6, level_top, bar_width - 12, bottom - level_top)
            painter.fillRect(bar, _COLOURS[self.colour_name()])
        labels = []
        if self.reference_uv is not None:
            labels.append((self.reference_uv, f"set point {self.reference_uv:.1f}", QtCore.Qt.PenStyle.SolidLine))
            target = _RELATIVE_TARGET * self.reference_uv
            labels.append((target, f"-20% {target:.1f}", QtCore.Qt.PenStyle.DashLine))
        if self.limit_uv is not None:
            labels.append((self.limit_uv, f"zone \u2264 {self.limit_uv:.1f}", QtCore.Qt.PenStyle.DotLine))
        text_y = -math.inf
        for value, label, style in sorted(labels, key=lambda entry: -entry[0]):  # top to bottom
            y = y_of(value)
            painter.setPen(QtGui.QPen(text_colour, 2, style))
            painter.drawLine(QtCore.QPointF(bar_left - 4, y), QtCore.QPointF(bar_left + bar_width + 4, y))
            text_y = max(y + line / 3, text_y + line)  # labels of close levels stack instead of overlapping
            painter.drawText(QtCore.QPointF(bar_left + bar_width + 8, text_y), label)
        painter.setPen(text_colour)
        floor = f"floor {format_uv(self.floor_uv)}" if self.floor_uv is not None else ""
        painter.drawText(QtCore.QRectF(0, height - line, width, line), QtCore.Qt.AlignmentFlag.AlignCenter, floor)
        painter.end()
