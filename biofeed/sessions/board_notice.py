"""Say, as soon as a device's INFO arrives, whether its board can resolve true relaxation.

A :class:`~biofeed.runner.Sink` for ``biofeed record`` and ``live``: SCIENCE.md 2 asks that biofeed
says plainly, before a session, when a verdict will be "not measurable with this board".
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from biofeed.blocks import DeviceInfo
from biofeed.boards import describe_device_boards

__all__ = ["BoardNoticeSink"]


class BoardNoticeSink:
    """Writes :func:`~biofeed.boards.describe_device_boards` once, for the first INFO.

    Parameters
    ----------
    out : TextIO
        Where to write (stderr by default, beside the status line).
    """

    def __init__(self, out: TextIO = sys.stderr) -> None:
        self.out = out
        self.lines: list[str] = []

    def write(self, item: Any) -> None:
        """Take one item; the first :class:`~biofeed.blocks.DeviceInfo` is described."""
        if isinstance(item, DeviceInfo) and not self.lines:
            self.lines = describe_device_boards(item)
            for line in self.lines:
                print(f"biofeed: {line}", file=self.out, flush=True)

    def close(self) -> None:
        """Nothing to release."""
