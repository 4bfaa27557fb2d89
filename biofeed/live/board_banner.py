"""The board check in the live window: a banner when the device's board cannot resolve true relaxation.

SCIENCE.md 2: biofeed says before a session when verdicts will be "not measurable with this board".
:class:`BoardBanner` shows :attr:`~biofeed.sessions.board_notice.BoardNoticeSink.warnings` (filled by the
acquisition thread from the device's INFO, before any trial) and stays hidden for a board that can.
"""

from __future__ import annotations

from biofeed.live.qt import QtWidgets
from biofeed.sessions.board_notice import BoardNoticeSink

__all__ = ["BoardBanner"]


class BoardBanner(QtWidgets.QLabel):
    """A red line per EMG stream whose board cannot resolve true relaxation (hidden otherwise).

    Parameters
    ----------
    notice : BoardNoticeSink
        The acquisition's board check.
    """

    def __init__(self, notice: BoardNoticeSink, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("", parent)
        self.notice = notice
        self._checked = False
        self.setWordWrap(True)
        self.setStyleSheet("background: #f8d7da; color: #842029; padding: 4px; font-weight: bold;")
        self.setVisible(False)

    def refresh(self) -> bool:
        """Show the check once the device's INFO is in; False when nothing changed."""
        if self._checked or not self.notice.lines:
            return False
        self._checked = True
        warnings = self.notice.warnings
        if warnings:
            self.setText("\u26a0 " + "\n\u26a0 ".join(warnings))
            self.setVisible(True)
        return True
