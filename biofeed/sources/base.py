"""The Source interface and source URLs.

A source is the only code that touches hardware (or stands in for it). It yields *chunks*: bytes
from one transport read, whose boundaries mean nothing. A source URL names one:

``serial://PATH?baud=N``, ``sim://SCENARIO?seed=N&speed=X``, ``replay://DIR?speed=X`` (and, as they
land, ``ble://``, ``lsl://``, ``brainflow://``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["LinkEvent", "LinkState", "Source", "SourceUrl", "TimedChunk"]


class LinkState(StrEnum):
    """States of a link that can drop and come back (BLE; a serial port that reappears)."""

    CONNECTED = "connected"
    LOST = "lost"
    RECONNECTING = "reconnecting"


@dataclass(frozen=True)
class LinkEvent:
    """A change of link state, reported in-band so it stays ordered with the bytes.

    Attributes
    ----------
    state : LinkState
        The new state.
    detail : str
        Words for the user (why it dropped, which attempt failed how).
    attempt : int
        Reconnect attempt number (1, 2, ...); 0 when not reconnecting.
    """

    state: LinkState
    detail: str = ""
    attempt: int = 0


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
