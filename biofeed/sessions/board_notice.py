"""Say, as soon as a device's INFO arrives, whether its board can resolve true relaxation.

A :class:`~biofeed.runner.Sink` for ``biofeed record``, ``live`` and ``calibrate``: SCIENCE.md 2 asks
that biofeed says plainly, before a session, when a verdict will be "not measurable with this board".
It writes the check to a stream (the terminal) and keeps it for a window (:attr:`BoardNoticeSink.warnings`).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from biofeed.blocks import DeviceInfo
from biofeed.boards import BoardAssessment, assess_device_stream, describe_device_boards

__all__ = ["BoardNoticeSink"]


class BoardNoticeSink:
    """Writes :func:`~biofeed.boards.describe_device_boards` once, for the first INFO.

    Parameters
    ----------
    out : TextIO or None
        Where to write (stderr by default, beside the status line); None writes nothing.

    Attributes
    ----------
    lines : list of str
        One line per EMG stream once the INFO is in (:func:`~biofeed.boards.describe_device_boards`).
    assessments : dict of str to BoardAssessment or None
        Per EMG stream; None when no board profile describes the device.
    """

    def __init__(self, out: TextIO | None = sys.stderr) -> None:
        self.out = out
        self.lines: list[str] = []
        self.assessments: dict[str, BoardAssessment | None] = {}

    def write(self, item: Any) -> None:
        """Take one item; the first :class:`~biofeed.blocks.DeviceInfo` is described."""
        if isinstance(item, DeviceInfo) and not self.lines:
            self.assessments = {s.name: assess_device_stream(item, s.name) for s in item.streams if s.is_emg}
            self.lines = describe_device_boards(item)
            if self.out is not None:
                for line in self.lines:
                    print(f"biofeed: {line}", file=self.out, flush=True)

    @property
    def warnings(self) -> list[str]:
        """The lines of the streams whose board cannot resolve true relaxation or has no profile ([] before INFO)."""
        return [
            line
            for line, assessment in zip(self.lines, self.assessments.values(), strict=False)
            if assessment is None or not assessment.resolves_true_relaxation
        ]

    def close(self) -> None:
        """Nothing to release."""
