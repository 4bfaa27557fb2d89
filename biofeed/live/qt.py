"""The one place the live view imports Qt (PySide6) and pyqtgraph; imported only when a window opens.

pyqtgraph is told to use PySide6 (the binding biofeed pins: 6.12.0 aborts CPython 3.11, see
pyproject.toml) before it looks for one.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

__all__ = ["QtCore", "QtGui", "QtWidgets", "application", "pg"]

_SILENCED = ("propagateSizeHints",)  # the offscreen platform says it once per window: not a problem


def _qt_message(mode: QtCore.QtMsgType, context: QtCore.QMessageLogContext, message: str) -> None:
    if not any(text in message for text in _SILENCED):
        sys.stderr.write(message + "\n")


QtCore.qInstallMessageHandler(_qt_message)


def application() -> QtWidgets.QApplication:
    """The process's QApplication (created on first use)."""
    app = QtWidgets.QApplication.instance()
    if isinstance(app, QtWidgets.QApplication):
        return app
    created = pg.mkQApp("biofeed")
    if not isinstance(created, QtWidgets.QApplication):
        raise RuntimeError("Qt did not create a widget application")
    return created
