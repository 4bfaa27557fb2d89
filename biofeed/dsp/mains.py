"""Mains interference: look at the spectrum first, notch 50/60 Hz and harmonics only where a line stands out.

SCIENCE.md section 3.4: notch (Q about 30) 50/60 Hz and harmonics only when the line peak is more
than 10 dB above its neighbours, and log that it was used.

:class:`MainsNotch` passes the first ``assess_s`` of band-passed signal through unchanged while it
looks at them (Welch spectrum at 1 Hz resolution; a line's prominence is its peak within +/-1 Hz
over the median density 3-10 Hz away on both sides, worst channel). It then decides once, at a
fixed sample, and notches every harmonic of the more prominent family (50 or 60 Hz) below the
low-pass whose own prominence exceeds the threshold -- a line often shows more at 150 Hz than at
50 Hz. The decision is a :class:`MainsDecision` for the session log; it survives gaps (the wiring
does not change with a lost packet), while the notch state restarts at each segment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import signal

from biofeed.blocks import Block
from biofeed.dsp.sos_stream import SosStream
from biofeed.dsp.stage import check_rate, starts_segment

__all__ = ["LINE_FREQUENCIES_HZ", "MainsDecision", "MainsNotch", "line_prominence_db"]

LINE_FREQUENCIES_HZ = (50.0, 60.0)
_PEAK_HALF_WIDTH_HZ = 1.0
_NEIGHBOUR_HZ = (3.0, 10.0)


@dataclass(frozen=True)
class MainsDecision:
    """What the mains check found and did (for the session log).

    Attributes
    ----------
    sample_index : int
        Device sample from which the notch (if any) applies.
    time_s : float
        Its device time.
    line_hz : float or None
        Line frequency of the notched family, None when nothing was notched.
    notched_hz : tuple of float
        Frequencies notched (empty when none).
    prominence_db : dict of float to float
        Worst-channel prominence of every harmonic examined of the chosen family, dB.
    forced : bool
        True when the line was given rather than detected.
    """

    sample_index: int
    time_s: float
    line_hz: float | None
    notched_hz: tuple[float, ...]
    prominence_db: dict[float, float]
    forced: bool = False

    @property
    def applied(self) -> bool:
        """True when a notch is in use."""
        return bool(self.notched_hz)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "time_s": self.time_s,
            "line_hz": self.line_hz,
            "notched_hz": list(self.notched_hz),
            "prominence_db": {f"{f:g}": v for f, v in self.prominence_db.items()},
            "forced": self.forced,
            "applied": self.applied,
        }


def line_prominence_db(
    data_uv: npt.NDArray[np.float64], sample_rate_hz: float, frequencies_hz: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Prominence of spectral lines over their neighbourhood, worst channel.

    Parameters
    ----------
    data_uv : ndarray, shape (n_channels, n_samples)
        Band-passed signal, at least 1 s.
    sample_rate_hz : float
        Sample rate.
    frequencies_hz : array_like, shape (n_lines,)
        Line frequencies.

    Returns
    -------
    ndarray, shape (n_lines,)
        ``10 log10(peak density within +/-1 Hz / median density 3-10 Hz away)``, max over channels;
        NaN for a line whose neighbourhood falls outside the spectrum.
    """
    n_segment = min(data_uv.shape[1], round(sample_rate_hz))  # 1 Hz resolution
    freqs_hz, density = signal.welch(data_uv, fs=sample_rate_hz, nperseg=n_segment, axis=1)
    out = []
    for f in np.atleast_1d(np.asarray(frequencies_hz, dtype=np.float64)):
        offset = np.abs(freqs_hz - f)
        peak = offset <= _PEAK_HALF_WIDTH_HZ
        around = (offset >= _NEIGHBOUR_HZ[0]) & (offset <= _NEIGHBOUR_HZ[1])
        if not peak.any() or around.sum() < 4 or f + _NEIGHBOUR_HZ[1] > freqs_hz[-1]:
            out.append(math.nan)
            continue
        neighbours = np.median(density[:, around], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = density[:, peak].max(axis=1) / neighbours
        out.append(float(np.nanmax(10.0 * np.log10(ratio))) if np.isfinite(ratio).any() else math.nan)
    return np.asarray(out)


class MainsNotch:
    """Streaming mains check and notch (a Stage).

    Parameters
    ----------
    sample_rate_hz : float
        Rate of the band-passed blocks.
    low_pass_hz : float
        Top of the EMG band: harmonics at or above it are not examined.
    line_hz : float or None
        None to detect (default); 50 or 60 to notch that family from the first sample without
        looking (every harmonic below ``low_pass_hz``).
    assess_s : float
        Signal looked at before deciding.
    threshold_db : float
        A harmonic is notched when more prominent than this.
    q : float
        Quality factor of each notch.
    """

    def __init__(
        self,
        sample_rate_hz: float,
        low_pass_hz: float,
        line_hz: float | None = None,
        assess_s: float = 5.0,
        threshold_db: float = 10.0,
        q: float = 30.0,
    ) -> None:
        if line_hz is not None and line_hz not in LINE_FREQUENCIES_HZ:
            raise ValueError(f"line_hz must be None (detect), 50 or 60, got {line_hz!r}")
        if not (math.isfinite(assess_s) and assess_s >= 1.0):
            raise ValueError(f"assess_s must be >= 1 s (the spectrum needs 1 Hz resolution), got {assess_s!r}")
        if not (math.isfinite(q) and q > 0):
            raise ValueError(f"q must be a positive number, got {q!r}")
        self.sample_rate_hz = float(sample_rate_hz)
        self.low_pass_hz = float(low_pass_hz)
        self.line_hz = line_hz
        self.assess_samples = round(assess_s * sample_rate_hz)
        self.threshold_db = float(threshold_db)
        self.q = float(q)
        self.reset()

    def reset(self) -> None:
        """Forget the decision and the filter state."""
        self.decision: MainsDecision | None = None
        self._decisions: list[MainsDecision] = []
        self._notch_filter: SosStream | None = None
        self._seen: list[npt.NDArray[np.float64]] = []
        self._n_seen = 0
        self._next_index: int | None = None

    def take_decisions(self) -> list[MainsDecision]:
        """Decisions made since the last call (at most one per reset)."""
        out, self._decisions = self._decisions, []
        return out

    def harmonics_hz(self, line_hz: float) -> list[float]:
        """Harmonics of a line below the low-pass (and a notch bandwidth below Nyquist)."""
        top = min(self.low_pass_hz, self.sample_rate_hz / 2.0 - _NEIGHBOUR_HZ[1])
        return [k * line_hz for k in range(1, int(top // line_hz) + 1) if k * line_hz < top]

    def process(self, block: Block) -> Block:
        """Pass, or notch, one block of band-passed sEMG (uV, shape (n_channels, n_samples))."""
        check_rate(block, self.sample_rate_hz)
        if starts_segment(block, self._next_index) and self._notch_filter is not None:
            self._notch_filter.reset()
        self._next_index = block.end_index
        data = block.data
        if self.decision is None and self.line_hz is not None:
            self._decide_forced(block.first_index)
        if self.decision is None:
            take = min(self.assess_samples - self._n_seen, data.shape[1])
            self._seen.append(data[:, :take])
            self._n_seen += take
            if self._n_seen < self.assess_samples:
                return block
            self._decide(block.first_index + take)
            notched = self._notch(data[:, take:])
            if notched is data[:, take:]:
                return block
            return Block(
                block.info,
                np.concatenate([data[:, :take], notched], axis=1),
                block.first_index,
                block.gap_before,
                block.received_at,
            )
        out = self._notch(data)
        if out is data:
            return block
        return Block(block.info, out, block.first_index, block.gap_before, block.received_at)

    def _notch(self, data: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if self._notch_filter is None or data.shape[1] == 0:
            return data
        return self._notch_filter.process(data)

    def _decide_forced(self, sample_index: int) -> None:
        line = float(self.line_hz) if self.line_hz is not None else math.nan
        notched = tuple(self.harmonics_hz(line))
        self._apply(MainsDecision(sample_index, sample_index / self.sample_rate_hz, line, notched, {}, forced=True))

    def _decide(self, sample_index: int) -> None:
        seen = np.concatenate(self._seen, axis=1)
        self._seen = []
        best: tuple[float, float, list[float], npt.NDArray[np.float64]] | None = None
        for line in LINE_FREQUENCIES_HZ:
            harmonics = self.harmonics_hz(line)
            if not harmonics:
                continue
            prominence = line_prominence_db(seen, self.sample_rate_hz, harmonics)
            top = float(np.nanmax(prominence)) if np.isfinite(prominence).any() else -math.inf
            if best is None or top > best[0]:
                best = (top, line, harmonics, prominence)
        if best is None:
            self._apply(MainsDecision(sample_index, sample_index / self.sample_rate_hz, None, (), {}))
            return
        _, line, harmonics, prominence = best
        notched = tuple(f for f, p in zip(harmonics, prominence.tolist(), strict=True) if p > self.threshold_db)
        self._apply(
            MainsDecision(
                sample_index,
                sample_index / self.sample_rate_hz,
                line if notched else None,
                notched,
                {f: p for f, p in zip(harmonics, prominence.tolist(), strict=True)},
            )
        )

    def _apply(self, decision: MainsDecision) -> None:
        self.decision = decision
        self._decisions.append(decision)
        if decision.notched_hz:
            sections = []
            for f in decision.notched_hz:
                b, a = signal.iirnotch(f, self.q, fs=self.sample_rate_hz)
                sections.append(signal.tf2sos(b, a))
            self._notch_filter = SosStream(np.vstack(sections))
