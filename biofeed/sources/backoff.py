"""How long a source waits before each attempt to get a lost device back (BLE and serial)."""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_BACKOFF_S", "FIRST_BACKOFF_S", "backoff_delay_s"]

DEFAULT_MAX_BACKOFF_S = 5.0
FIRST_BACKOFF_S = 0.25
"""Wait before the first reconnect attempt; it doubles per attempt up to the ``backoff`` bound."""


def backoff_delay_s(attempt: int, max_backoff_s: float) -> float:
    """Seconds to wait before reconnect attempt ``attempt`` (1, 2, ...).

    :data:`FIRST_BACKOFF_S` before the first attempt, doubling per attempt, never above
    ``max_backoff_s``.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    return min(max_backoff_s, FIRST_BACKOFF_S * 2.0 ** min(attempt - 1, 62))
