"""Sinks: where decoded items go besides the recording (LSL outlets; ring buffer as it lands).

Each sink implements :class:`biofeed.runner.Sink` (``write(item)``, ``close()``) and is imported
only when used, so optional libraries (pylsl) are needed only then.
"""

__all__: list[str] = []
