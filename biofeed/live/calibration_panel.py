"""The guided calibration in the live window: the step's instruction, its progress, Confirm / Retry / Skip.

:class:`CalibrationPanel` drives a :class:`~biofeed.sessions.calibration_sink.CalibrationSink` whose run
waits for the person at each step (``auto_advance=False``): Confirm starts the step shown, Skip ends
it unmeasured, Retry redoes the last step that ended. Each :meth:`CalibrationPanel.refresh` reads a
snapshot of the run (:meth:`~biofeed.sessions.calibration_sink.CalibrationSink.progress`) and draws the
step, how far it is (seconds of supported rest collected ...), and each step's result as it ends. When
every step has ended, Finish (or closing the window) stores the calibration with the client
(:mod:`biofeed.live.calibration_window`).
"""

from __future__ import annotations

import math

from biofeed.dsp.noise import MIN_REST_WINDOWS
from biofeed.dsp.tension import DEFAULT_MIN_WINDOWS
from biofeed.live.fonts import scaled_font
from biofeed.live.qt import QtCore, QtGui, QtWidgets
from biofeed.sessions.calibrate import StepKind, StepResult, StepStatus
from biofeed.sessions.calibration_sink import CalibrationProgress, CalibrationSink

__all__ = ["STATUS_COLOURS", "CalibrationPanel", "progress_words", "result_words"]

STATUS_COLOURS: dict[StepStatus, str] = {
    StepStatus.PASSED: "#2ea043",
    StepStatus.FAILED: "#d1453b",
    StepStatus.SKIPPED: "#8b949e",
}
"""Colour of each step result."""

_SYMBOLS = {StepStatus.PASSED: "\u2713", StepStatus.FAILED: "\u2717", StepStatus.SKIPPED: "\u2013"}


def progress_words(progress: CalibrationProgress) -> str:
    """How far the current step is, in words (e.g. ``38 s of supported rest collected of 115 s``)."""
    step = progress.step
    if step is None:
        return "every step has ended: Finish stores the calibration with the client (or Retry the last step)"
    if progress.status is StepStatus.WAITING:
        return f"press Confirm when you are ready ({step.duration_s:g} s)"
    if progress.elapsed_s < step.settle_s:
        return f"getting into position: measuring starts in {math.ceil(step.settle_s - progress.elapsed_s)} s"
    measured_s = progress.elapsed_s - step.settle_s
    total_s = step.duration_s - step.settle_s
    done = f"{measured_s:.0f} s"
    if step.kind is StepKind.SIGNAL_CHECK:
        return f"checking contact, mains hum and clipping: {done} of {total_s:g} s"
    if step.kind is StepKind.NOISE_FLOOR:
        if step.method == "shorted_input":
            return f"{done} with the inputs shorted, of {total_s:g} s"
        return f"{done} of supported rest collected of {total_s:g} s (the noise floor needs {MIN_REST_WINDOWS} s)"
    if step.kind is StepKind.SET_POINT:
        where = f" {step.posture.replace('_', ' ')}" if step.posture else ""
        return f"{done} of rest{where} collected of {total_s:g} s (the set point needs {DEFAULT_MIN_WINDOWS} s)"
    if step.kind is StepKind.REFERENCE_CONTRACTION:
        return f"contract gently and hold, pain-free: {math.ceil(progress.remaining_s)} s left"
    return f"stand tall and still: {done} of {total_s:g} s"


def result_words(result: StepResult, n_steps: int) -> str:
    """One step's result, e.g. ``✓ step 2/6 noise_floor (lying_supine) passed: 2nd-5th percentile ...``."""
    label = f"{result.kind.value} ({result.posture})" if result.posture else result.kind.value
    symbol = _SYMBOLS.get(result.status, "?")
    return f"{symbol} step {result.index + 1}/{n_steps} {label} {result.status.value}: {result.reason}"


class CalibrationPanel(QtWidgets.QFrame):
    """The guided calibration's current step, its buttons and the results so far.

    Parameters
    ----------
    sink : CalibrationSink
        The calibration the acquisition feeds; its run waits for Confirm at each step.

    Attributes
    ----------
    finish_requested : Signal
        Emitted when Finish is pressed (every step has ended): stop acquiring and store.
    progress : CalibrationProgress or None
        The snapshot last drawn.
    """

    finish_requested = QtCore.Signal()

    def __init__(self, sink: CalibrationSink, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.sink = sink
        self.progress: CalibrationProgress | None = None
        self._drawn: tuple[object, ...] | None = None
        self._results: tuple[StepResult, ...] | None = None
        self._outcome_shown = False
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.setFixedHeight(250)  # text that changes must not ask the window for a new layout
        protocol = sink.run.protocol
        self._title = QtWidgets.QLabel(f"<b>Guided calibration</b>: {protocol.title}")
        self._step = QtWidgets.QLabel("")
        self._step.setFont(scaled_font(self, 1.5, bold=True))
        self._instruction = QtWidgets.QLabel("")
        self._instruction.setFont(scaled_font(self, 1.3))
        self._instruction.setWordWrap(True)
        self._progress = QtWidgets.QLabel("")
        self._bar = QtWidgets.QProgressBar()
        self._bar.setRange(0, 100)
        self._bar.setTextVisible(False)
        for label in (self._title, self._step, self._instruction, self._progress):
            label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Ignored)
        self.confirm_button = QtWidgets.QPushButton("Confirm: I am ready")
        self.confirm_button.clicked.connect(self.confirm)
        self.retry_button = QtWidgets.QPushButton("Retry the last step")
        self.retry_button.clicked.connect(self.retry)
        self.skip_button = QtWidgets.QPushButton("Skip this step")
        self.skip_button.clicked.connect(self.skip)
        self.finish_button = QtWidgets.QPushButton("Finish and store")
        self.finish_button.clicked.connect(self.finish)
        buttons = QtWidgets.QHBoxLayout()
        for button in (self.confirm_button, self.retry_button, self.skip_button, self.finish_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.results_list = QtWidgets.QListWidget()
        self._outcome = QtWidgets.QLabel("")
        self._outcome.setWordWrap(True)
        self._outcome.setVisible(False)
        left = QtWidgets.QVBoxLayout()
        left.addWidget(self._title)
        left.addWidget(self._step, 2)
        left.addWidget(self._instruction, 3)
        left.addWidget(self._progress, 1)
        left.addWidget(self._bar)
        left.addLayout(buttons)
        right = QtWidgets.QVBoxLayout()
        right.addWidget(QtWidgets.QLabel("<b>Results</b>"))
        right.addWidget(self.results_list, 1)
        right.addWidget(self._outcome)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addLayout(left, 3)
        layout.addLayout(right, 2)

    # -- the person's buttons -------------------------------------------------------------------

    def confirm(self) -> None:
        """Start the step shown."""
        self.sink.confirm()
        self.refresh()

    def retry(self) -> None:
        """Redo the last step that ended."""
        self.sink.retry()
        self.refresh()

    def skip(self) -> None:
        """End the current step unmeasured."""
        self.sink.skip()
        self.refresh()

    def finish(self) -> None:
        """Every step has ended: ask for the calibration to be stored."""
        if self.sink.progress().step is None and not self._outcome_shown:
            self.finish_button.setEnabled(False)
            self.finish_requested.emit()

    def show_outcome(self, text: str, *, ok: bool) -> None:
        """Say how the calibration was stored (or why not); the buttons are disabled from now on."""
        self._outcome_shown = True
        self._outcome.setText(text)
        self._outcome.setStyleSheet(f"color: {STATUS_COLOURS[StepStatus.PASSED if ok else StepStatus.FAILED]}")
        self._outcome.setVisible(True)
        self.refresh()

    # -- drawing ---------------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Draw the run's current state; False when nothing visible changed."""
        while not self.sink.updates.empty():  # the snapshot below says everything; keep the queue short
            self.sink.updates.get_nowait()
        progress = self.sink.progress()
        self.progress = progress
        words = "" if self._outcome_shown else progress_words(progress)
        key = (progress.step_index, progress.status, words, len(progress.results), self._outcome_shown)
        if key == self._drawn:
            return False
        self._drawn = key
        n_steps = len(self.sink.run.protocol.steps)
        step = progress.step
        if step is None or progress.step_index is None:
            self._step.setText("calibration finished")
            self._instruction.setText("")
        else:
            self._step.setText(f"step {progress.step_index + 1} of {n_steps}: {step.label}")
            self._instruction.setText(step.instruction)
        self._progress.setText(words)
        fraction = 1.0 if step is None else min(progress.elapsed_s / step.duration_s, 1.0)
        self._bar.setValue(round(fraction * 100))
        if progress.results != self._results:
            self._results = progress.results
            self.results_list.clear()
            for result in progress.results:
                item = QtWidgets.QListWidgetItem(result_words(result, n_steps))
                item.setToolTip(item.text())
                item.setForeground(QtGui.QBrush(QtGui.QColor(STATUS_COLOURS.get(result.status, "#000000"))))
                self.results_list.addItem(item)
            self.results_list.scrollToBottom()
        open_ = not self._outcome_shown
        self.confirm_button.setEnabled(open_ and progress.status is StepStatus.WAITING)
        self.skip_button.setEnabled(open_ and step is not None)
        self.retry_button.setEnabled(open_ and bool(progress.results))
        self.finish_button.setEnabled(open_ and step is None)
        return True

    # -- what a test or a screenshot reads -------------------------------------------------------

    @property
    def step_text(self) -> str:
        """``step 2 of 6: noise_floor (lying_supine)``, or ``calibration finished``."""
        return self._step.text()

    @property
    def instruction_text(self) -> str:
        """The current step's instruction."""
        return self._instruction.text()

    @property
    def progress_text(self) -> str:
        """How far the step is, in words."""
        return self._progress.text()

    @property
    def result_lines(self) -> list[str]:
        """The results shown, one line per step ended."""
        return [self.results_list.item(k).text() for k in range(self.results_list.count())]

    @property
    def outcome_text(self) -> str:
        """How the calibration was stored ("" before)."""
        return self._outcome.text()
