"""The Source interface and source URLs.

A source is the only code that touches hardware (or stands in for it). It yields *chunks*: bytes
from one transport read, whose boundaries mean nothing. A source URL names one:

``serial://PATH?baud=N``, ``ble://ADDRESS|NAME``, ``sim://SCENARIO?seed=N&speed=X``,
``replay://DIR?speed=X``, ``lsl://NAME``, ``brainflow://BOARD?params``; see
:func:`biofeed.sources.open_source`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qsl, unquote, urlsplit

from biofeed.blocks import LinkEvent, LinkState

__all__ = ["LinkEvent", "LinkState", "Source", "SourceUrl", "TimedChunk"]

# LinkEvent and LinkState live in biofeed.blocks with everything else that flows; re-exported here
# for sources.


@dataclass(frozen=True)
class TimedChunk:
    """A chunk with the host time it arrived at, or a link event (then ``data`` is empty).

    Attributes
    ----------
    data : bytes
        The bytes of one transport read.
    received_at : float
        Host time (``time.time()``) of arrival.
    link_event : LinkEvent or None
        Set when the link changed state at ``received_at``.
    """

    data: bytes
    received_at: float
    link_event: LinkEvent | None = None


@runtime_checkable
class Source(Protocol):
    """Something that yields chunks of wire bytes.

    ``chunks()`` ends when ``close()`` is called or the source is exhausted (a replay, a
    finite simulation); the device going away raises :class:`biofeed.errors.SourceLost`. A source
    that waits on a device yields an empty chunk at least every 100 ms while no bytes arrive, so
    the acquisition loop keeps time while the device is quiet (fsync, duration, stall detection).
    """

    url: str

    def chunks(self) -> Iterator[TimedChunk]:
        """Yield chunks as they arrive."""
        ...

    def close(self) -> None:
        """Stop: ``chunks()`` returns soon after. Safe to call from another thread, and twice."""
        ...


@dataclass(frozen=True)
class SourceUrl:
    """A parsed source URL.

    Attributes
    ----------
    scheme : str
        ``serial``, ``sim``, ``replay``, ...
    target : str
        What follows ``scheme://`` up to ``?``: a path, a scenario, an address.
    params : dict of str to str
        The query parameters.
    """

    scheme: str
    target: str
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, url: str) -> SourceUrl:
        """Parse ``scheme://target?key=value&...``.

        Raises
        ------
        ValueError
            When the text has no ``scheme://`` part or repeats a parameter.
        """
        if "://" not in url:
            raise ValueError(f"{url!r} is not a source URL; expected scheme://target, e.g. serial:///dev/ttyUSB0")
        parts = urlsplit(url)
        target = unquote(parts.netloc + parts.path)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        params = dict(pairs)
        if len(params) != len(pairs):
            raise ValueError(f"{url!r} repeats a parameter")
        return cls(parts.scheme.lower(), target, params)

    def number(self, key: str, default: float, *, minimum: float = float("-inf")) -> float:
        """A numeric parameter, ``default`` when absent.

        Raises
        ------
        ValueError
            When the value is not a number or is below ``minimum``.
        """
        if key not in self.params:
            return default
        try:
            value = float(self.params[key])
        except ValueError:
            raise ValueError(f"parameter {key}={self.params[key]!r} is not a number") from None
        if value < minimum:
            raise ValueError(f"parameter {key}={value:g} must be at least {minimum:g}")
        return value

    def whole_number(self, key: str, default: int, *, minimum: int = 0) -> int:
        """A whole-number parameter (exact, however large), ``default`` when absent.

        Raises
        ------
        ValueError
            When the value is not a whole number or is below ``minimum``.
        """
        if key not in self.params:
            return default
        text = self.params[key].strip()
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"parameter {key}={text!r} must be a whole number") from None
        if value < minimum:
            raise ValueError(f"parameter {key}={value} must be at least {minimum}")
        return value

    def check_keys(self, allowed: set[str]) -> None:
        """Refuse parameters the source does not know.

        Raises
        ------
        ValueError
            Naming the unknown parameters and the allowed ones.
        """
        unknown = sorted(set(self.params) - allowed)
        if unknown:
            raise ValueError(
                f"{self.scheme}:// does not take {', '.join(unknown)}; allowed: {', '.join(sorted(allowed)) or 'none'}"
            )
