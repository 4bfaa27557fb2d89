"""A live acquisition feeding a :class:`~biofeed.sessions.calibrate.CalibrationRun`, safely across threads.

The acquisition's worker thread hands every decoded item to :meth:`CalibrationSink.write` (it is a
:class:`~biofeed.runner.Sink`); a window or a terminal in another thread reads what to tell the person
from :attr:`CalibrationSink.messages` and presses the buttons (:meth:`confirm`, :meth:`retry`,
:meth:`skip`). One lock keeps the run consistent between them. The board's verdict -- can it
resolve true relaxation? -- is told first, as soon as the device's INFO is in.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any

from biofeed.blocks import DeviceInfo
from biofeed.boards import describe_device_boards, find_board_profile
from biofeed.sessions.calibrate import (
    CalibrationResult,
    CalibrationRun,
    CalibrationStep,
    CalibrationUpdate,
    StepResult,
    StepStatus,
)

__all__ = ["CalibrationProgress", "CalibrationSink"]


@dataclass(frozen=True)
class CalibrationProgress:
    """Where a calibration is, at one moment (what a window draws).

    Attributes
    ----------
    step_index : int or None
        The current step; None once every step has ended.
    step : CalibrationStep or None
        Its definition.
    status : StepStatus or None
        ``waiting`` (for :meth:`CalibrationSink.confirm`) or ``measuring``; None when finished.
    elapsed_s, remaining_s : float
        Device seconds the step has measured and has left.
    results : tuple of StepResult
        The steps ended so far.
    """

    step_index: int | None
    step: CalibrationStep | None
    status: StepStatus | None
    elapsed_s: float
    remaining_s: float
    results: tuple[StepResult, ...]


class CalibrationSink:
    """Feeds an acquisition's decoded items to a calibration run (see the module docstring).

    Parameters
    ----------
    run : CalibrationRun
        The calibration; its board profile is set from the device's INFO when it has none.

    Attributes
    ----------
    messages : queue.Queue of str
        Lines to show, in order: the board's verdict, each step's instruction as it starts (or
        waits for :meth:`confirm`), each step's result.
    updates : queue.Queue of CalibrationUpdate
        The same as structured updates, for a window.
    """

    def __init__(self, run: CalibrationRun) -> None:
        self.run = run
        self.messages: queue.Queue[str] = queue.Queue()
        self.updates: queue.Queue[CalibrationUpdate] = queue.Queue()
        self._lock = threading.Lock()
        self._held: list[str] | None = []  # until the board has been described
        for update in run.take_updates():
            self.tell(update)

    def write(self, item: Any) -> None:
        """Take one item from the acquisition loop (worker thread)."""
        with self._lock:
            if isinstance(item, DeviceInfo) and self._held is not None:
                if self.run.board is None:
                    self.run.board = find_board_profile(item.board_profile)
                for line in describe_device_boards(item):
                    self.messages.put(line)
                self._release_held()
            if not self.run.finished:
                for update in self.run.process(item):
                    self.tell(update)

    def close(self) -> None:
        """End of the acquisition: pass on anything held back."""
        with self._lock:
            self._release_held()

    def confirm(self) -> None:
        """The person is ready (any thread)."""
        self._control(self.run.confirm)

    def retry(self) -> None:
        """Redo the last step (any thread)."""
        self._control(self.run.retry)

    def skip(self, reason: str = "skipped by the user") -> None:
        """Skip the current step (any thread)."""
        self._control(lambda: self.run.skip(reason))

    def progress(self) -> CalibrationProgress:
        """A consistent snapshot of the run (any thread)."""
        with self._lock:
            run = self.run
            index = run.step_index
            step = run.protocol.steps[index] if index is not None else None
            return CalibrationProgress(index, step, run.status, run.elapsed_s(), run.remaining_s(), run.results)

    def finish(self) -> CalibrationResult:
        """End of data: judge the step measuring, fail the rest; return the result."""
        with self._lock:
            self._release_held()
            for update in self.run.finish():
                self.tell(update)
            return self.run.result()

    def _control(self, action: Any) -> None:
        with self._lock:
            action()
            for update in self.run.take_updates():
                self.tell(update)

    def _release_held(self) -> None:
        held, self._held = self._held, None
        for line in held or []:
            self.messages.put(line)

    def tell(self, update: CalibrationUpdate) -> None:
        """Queue one update and the words for it (called with the lock held, or before any thread runs)."""
        self.updates.put(update)
        total = len(self.run.protocol.steps)
        if update.event in ("started", "waiting") and update.step is not None and update.step_index is not None:
            ready = "" if update.event == "started" else " [waiting until you are ready]"
            line = (
                f"step {update.step_index + 1}/{total} {update.step.label} ({update.step.duration_s:g} s){ready}: "
                f"{update.step.instruction}"
            )
        elif update.event == "finished" and update.result is not None:
            line = f"  {update.result.status.value}: {update.result.reason}"
        elif update.event == "done":
            line = "calibration finished"
        else:
            return
        if self._held is not None:
            self._held.append(line)
        else:
            self.messages.put(line)
