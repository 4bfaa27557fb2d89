"""Larger fonts for the live window's headline text (cues, calibration steps, the meter's number)."""

from __future__ import annotations

from biofeed.live.qt import QtGui, QtWidgets

__all__ = ["scaled_font"]

_MIN_BASE_PT = 9.0  # a platform font reported smaller (or without a point size) is scaled from this


def scaled_font(widget: QtWidgets.QWidget, factor: float, *, bold: bool = False) -> QtGui.QFont:
    """``widget``'s font, ``factor`` times as large (from at least 9 pt), bold when asked.

    Parameters
    ----------
    widget : QWidget
        Whose font is scaled.
    factor : float
        Size relative to that font.
    bold : bool
        Make it bold (else its weight is kept).

    Returns
    -------
    QFont
        A new font; the widget's own is unchanged.
    """
    font = QtGui.QFont(widget.font())
    font.setPointSizeF(max(font.pointSizeF(), _MIN_BASE_PT) * factor)
    if bold:
        font.setBold(True)
    return font
