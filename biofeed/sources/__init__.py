"""Sources: the only code that touches hardware. :func:`open_source` picks one by URL scheme.

Hardware libraries (pyserial, bleak, ...) are imported only when their scheme is used.
"""

from __future__ import annotations

from biofeed.sources.base import Source, SourceUrl, TimedChunk

__all__ = ["SCHEMES", "Source", "SourceUrl", "TimedChunk", "open_source"]

SCHEMES: tuple[str, ...] = ("serial", "ble", "sim", "replay", "lsl", "brainflow")
"""URL schemes :func:`open_source` knows."""


def open_source(url: str) -> Source:
    """Open the source a URL names.

    Parameters
    ----------
    url : str
        ``serial://PATH?baud=N``, ``ble://ADDRESS|NAME?timeout=S&reconnect=N&backoff=S``,
        ``sim://SCENARIO?seed=N&speed=X``, ``replay://DIR|FILE?speed=X`` (a recording folder, or an
        EDF/BDF/CSV file), ``lsl://NAME`` or
        ``brainflow://BOARD?params``.

    Raises
    ------
    ValueError
        A malformed URL, an unknown scheme or parameter.
    DeviceNotFoundError
        Nothing at the address.
    SourceError
        A transport that cannot be used (no Bluetooth adapter, an optional library missing).
    RecordingError
        ``replay://`` of a folder that is not a recording.
    """
    parsed = SourceUrl.parse(url)
    if parsed.scheme == "serial":
        from biofeed.sources.serial import SerialSource

        return SerialSource.from_url(parsed)
    if parsed.scheme == "ble":
        from biofeed.sources.ble import BleSource

        return BleSource.from_url(parsed)
    if parsed.scheme == "lsl":
        from biofeed.sources.lsl import LslSource

        return LslSource.from_url(parsed)
    if parsed.scheme == "brainflow":
        from biofeed.sources.brainflow import BrainFlowSource

        return BrainFlowSource.from_url(parsed)
    if parsed.scheme == "sim":
        from biofeed.sources.sim import SimSource

        return SimSource.from_url(parsed)
    if parsed.scheme == "replay":
        from biofeed.record.foreign import ForeignFileSource, is_foreign_file

        if is_foreign_file(parsed.target):  # EDF/BDF/CSV made by another tool: replay://FILE?fs=HZ&unit=uV
            return ForeignFileSource.from_url(parsed)
        from biofeed.sources.replay import ReplaySource

        return ReplaySource.from_url(parsed)
    raise ValueError(
        f"unknown source scheme {parsed.scheme + '://'!r}; use one of {', '.join(s + '://' for s in SCHEMES)}"
    )
