"""The exercise protocol's cue in the live window: what to do now, large, its countdown and what comes next.

:class:`CuePanel` reads :attr:`~biofeed.live.cues.CueSink.state` (the cue due at the newest sample,
set by the acquisition thread) on each :meth:`CuePanel.refresh`; a sham trial's cues say so.
"""

from __future__ import annotations

import math

from biofeed.live.cues import CUE_TITLES, CueSink
from biofeed.live.fonts import scaled_font
from biofeed.live.qt import QtCore, QtWidgets
from biofeed.sessions.protocol import CueKind, CueState

__all__ = ["CUE_COLOURS", "CuePanel"]

CUE_COLOURS: dict[CueKind, str] = {
    CueKind.REST: "#2ea043",
    CueKind.CONTRACT: "#d1453b",
    CueKind.RELEASE: "#1f6feb",
    CueKind.STAY_RELAXED: "#8957e5",
}
"""Colour of each cue's name."""

_HEIGHT_PX = 150


class CuePanel(QtWidgets.QFrame):
    """The current cue of a protocol followed live.

    Parameters
    ----------
    cues : CueSink
        What the acquisition thread keeps up to date.

    Attributes
    ----------
    shown : CueState or None
        The state last drawn.
    """

    def __init__(self, cues: CueSink, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.cues = cues
        self.shown: CueState | None = None
        self._drawn: tuple[object, ...] | None = None
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.setFixedHeight(_HEIGHT_PX)  # text that changes must not ask the window for a new layout
        self._protocol = QtWidgets.QLabel(f"protocol {cues.schedule.name}")
        self._title = QtWidgets.QLabel("")
        self._title.setFont(scaled_font(self, 3.0, bold=True))
        self._trial = QtWidgets.QLabel("")
        self._trial.setFont(scaled_font(self, 1.2, bold=True))
        self._instruction = QtWidgets.QLabel("waiting for the device")
        self._instruction.setFont(scaled_font(self, 1.4))
        self._instruction.setWordWrap(True)
        self._next = QtWidgets.QLabel("")
        self._next.setFont(scaled_font(self, 1.2, bold=True))
        self._countdown = QtWidgets.QLabel("")
        self._countdown.setFont(scaled_font(self, 3.0, bold=True))
        self._countdown.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
        self._bar = QtWidgets.QProgressBar()
        self._bar.setRange(0, 100)
        self._bar.setTextVisible(False)
        for label in (self._protocol, self._title, self._trial, self._instruction, self._next, self._countdown):
            label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Ignored)
        left = QtWidgets.QVBoxLayout()
        left.setSpacing(0)
        left.addWidget(self._protocol, 1)
        left.addWidget(self._title, 3)
        left.addWidget(self._trial, 1)
        middle = QtWidgets.QVBoxLayout()
        middle.addWidget(self._instruction, 3)
        middle.addWidget(self._next, 1)
        right = QtWidgets.QVBoxLayout()
        right.addWidget(self._countdown, 3)
        right.addWidget(self._bar)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addLayout(left, 3)
        layout.addLayout(middle, 5)
        layout.addLayout(right, 2)

    # -- what a test or a screenshot reads -------------------------------------------------------

    @property
    def cue_text(self) -> str:
        """The cue's name as shown ("" before the protocol starts)."""
        return self._title.text()

    @property
    def trial_text(self) -> str:
        """Which trial, and whether it is a sham."""
        return self._trial.text()

    @property
    def instruction_text(self) -> str:
        """What to do, in words."""
        return self._instruction.text()

    @property
    def countdown_text(self) -> str:
        """Seconds left in the cue, e.g. ``12 s``."""
        return self._countdown.text()

    @property
    def next_text(self) -> str:
        """The cue that follows, e.g. ``next: RELEASE SLOWLY for 6 s``."""
        return self._next.text()

    # -- drawing ---------------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Draw the cue due at the newest sample; False when nothing visible changed."""
        state = self.cues.state
        now_s = self.cues.now_s
        self.shown = state
        if state is None:
            key: tuple[object, ...] = ("finished" if self.cues.finished else "waiting", now_s is None)
            if key == self._drawn:
                return False
            self._drawn = key
            self._show_outside(finished=self.cues.finished)
            return True
        remaining = math.ceil(state.remaining_s - 1e-9)
        key = (state.cue.index, remaining, round(state.fraction * 100))
        if key == self._drawn:
            return False
        redraw_all = self._drawn is None or self._drawn[0] != state.cue.index
        self._drawn = key
        if redraw_all:
            self._show_cue(state)
        self._countdown.setText(f"{remaining} s")
        self._bar.setValue(round(state.fraction * 100))
        return True

    def _show_cue(self, state: CueState) -> None:
        cue = state.cue
        n_trials = len(self.cues.schedule.trials)
        self._title.setText(CUE_TITLES[cue.kind])
        self._title.setStyleSheet(f"color: {CUE_COLOURS[cue.kind]}")
        if cue.trial_index is None:
            trial = "before the first trial"
        elif cue.sham:
            trial = f"SHAM trial {cue.trial_index + 1} of {n_trials}: no contraction"
        else:
            trial = f"trial {cue.trial_index + 1} of {n_trials}"
        self._trial.setText(trial)
        self._trial.setStyleSheet(f"color: {CUE_COLOURS[CueKind.STAY_RELAXED]}" if cue.sham else "")
        self._instruction.setText(cue.text)
        following = state.next_cue
        if following is None:
            self._next.setText("then the protocol ends")
        else:
            sham = " (sham)" if following.sham and following.kind is CueKind.STAY_RELAXED else ""
            self._next.setText(f"next: {CUE_TITLES[following.kind]}{sham} for {following.duration_s:g} s")

    def _show_outside(self, *, finished: bool) -> None:
        self._title.setText("DONE" if finished else "")
        self._title.setStyleSheet("")
        self._trial.setText("")
        self._instruction.setText(
            "The protocol has ended: rest, and stop when you like." if finished else "waiting for the device"
        )
        self._next.setText("")
        self._countdown.setText("")
        self._bar.setValue(100 if finished else 0)
