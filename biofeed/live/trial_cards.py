"""Trial cards and the session's history of trials (the words come from :mod:`biofeed.live.wording`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from biofeed.live.qt import QtCore, QtGui, QtWidgets
from biofeed.live.wording import TrialSummary, summarize_trial

__all__ = ["VERDICT_COLOURS", "TrialCard", "TrialHistory"]

VERDICT_COLOURS: dict[str, str] = {
    "true": "#2ea043",
    "transient": "#d29922",
    "none": "#d1453b",
    "not_measurable": "#8957e5",
    "rejected": "#d1453b",
}
"""Colour of each verdict (raw verdict names)."""

_HISTORY_COLUMNS = ("#", "channel", "at", "verdict", "release", "smoothness", "ratio (95% CI)", "60-120 s", "score")
_VERDICT_COLUMN = _HISTORY_COLUMNS.index("verdict")
_SHORT_VERDICT = 30  # characters; a longer verdict (with its reason) is set in the normal size


class TrialCard(QtWidgets.QFrame):
    """The last trial of one channel: release, smoothness, ratio with its CI, the verdict.

    Attributes
    ----------
    summary : TrialSummary or None
        What is shown (None before the first trial).
    """

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary: TrialSummary | None = None
        self._trial: dict[str, Any] | None = None
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self._title = QtWidgets.QLabel("no trial yet")
        self._verdict = QtWidgets.QLabel("")
        font = QtGui.QFont(self._verdict.font())
        self._base_point_size = max(font.pointSizeF(), 9.0)
        font.setPointSizeF(self._base_point_size * 1.35)
        font.setBold(True)
        self._verdict.setFont(font)
        self._verdict.setWordWrap(True)
        self._details = QtWidgets.QLabel("")
        self._details.setWordWrap(True)
        self._details.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop | QtCore.Qt.AlignmentFlag.AlignLeft)
        headline = QtWidgets.QVBoxLayout()
        headline.setSpacing(0)
        headline.addWidget(self._title)
        headline.addWidget(self._verdict)
        headline.addStretch(1)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(6, 3, 6, 3)
        layout.addLayout(headline, 2)
        layout.addWidget(self._details, 3)
        # fixed size: a new card's text must not ask the window for a new layout (that repaints the
        # whole window, the slowest frames in the benchmark); the headline keeps its lines' heights
        self.setFixedHeight(72)
        for label in (self._title, self._verdict):
            label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        self._details.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Ignored)

    @property
    def verdict_text(self) -> str:
        """The verdict as shown ("" before the first trial)."""
        return self._verdict.text()

    @property
    def details_text(self) -> str:
        """The lines under the verdict."""
        return self._details.text()

    def set_trial(self, trial: dict[str, Any] | None, number: int) -> None:
        """Show ``trial`` (a ``trial`` event) as the session's trial ``number``."""
        if trial is self._trial:
            return
        self._trial = trial
        if trial is None:
            self.summary = None
            self._title.setText("no trial yet")
            self._verdict.setText("")
            self._details.setText("")
            return
        s = self.summary = summarize_trial(trial)
        self._title.setText(f"trial {number} at {s.time}")
        self._verdict.setText(s.verdict)
        font = QtGui.QFont(self._verdict.font())
        font.setPointSizeF(self._base_point_size * (1.35 if len(s.verdict) <= _SHORT_VERDICT else 1.0))
        self._verdict.setFont(font)
        colour = VERDICT_COLOURS.get(s.verdict_kind, "#888888")
        self._verdict.setStyleSheet(f"color: {colour}")
        self._details.setText(
            f"release {s.release}, {s.smoothness}\nratio {s.ratio}, at 60-120 s {s.persistence}\n"
            f"set point {s.levels}, score {s.score}"
        )
        self._details.setToolTip(s.reason)
        self._verdict.setToolTip(s.reason)


class TrialHistory(QtWidgets.QTableWidget):
    """Every trial of the session, newest last, one row each."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(0, len(_HISTORY_COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(_HISTORY_COLUMNS))
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        self.horizontalHeader().setStretchLastSection(True)
        self._n_shown = 0

    def set_trials(self, trials: Sequence[dict[str, Any]]) -> None:
        """Show the session's trials (only new ones are added)."""
        if len(trials) < self._n_shown:
            self.setRowCount(0)
            self._n_shown = 0
        for number, trial in enumerate(trials[self._n_shown :], start=self._n_shown + 1):
            s = summarize_trial(trial)
            row = self.rowCount()
            self.insertRow(row)
            short = s.verdict.split(":")[0]  # the reason is in the tooltip and on the card
            cells = (str(number), s.channel, s.time, short, s.release, s.smoothness, s.ratio, s.persistence, s.score)
            for column, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                item.setToolTip(s.reason)
                self.setItem(row, column, item)
            verdict_item = self.item(row, _VERDICT_COLUMN)
            if verdict_item is not None:
                verdict_item.setForeground(QtGui.QColor(VERDICT_COLOURS.get(s.verdict_kind, "#888888")))
        if len(trials) != self._n_shown:
            self._n_shown = len(trials)
            self.resizeColumnsToContents()
            self.scrollToBottom()

    def verdicts(self) -> list[str]:
        """The verdict column, top to bottom."""
        return [
            item.text() if (item := self.item(row, _VERDICT_COLUMN)) is not None else ""
            for row in range(self.rowCount())
        ]
