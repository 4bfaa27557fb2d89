"""Signal faults: NaN/inf, flat line (a disconnected electrode), clipping at the rails, a rate too low.

No verdict is given on a flagged segment (SCIENCE.md 6: ``rejected`` covers contact loss): the
analysis keeps 1 s windows that overlap a fault out of every set point, and rejects a trial whose
contraction overlaps one.

- Non-finite samples cannot pass an IIR filter (one NaN poisons its state for good), so
  :class:`FiniteSplitter` cuts them out and marks the hole as a gap, which every stage already
  handles; :class:`SignalFaultDetector` reports them as faults.
- A flat line is a run of identical samples of at least ``flat_s`` (0.25 s by default; the
  commodity 10-bit BITalino rest recording in shared/data/real repeats a value at most 7 times).
- Clipping is a sample at or beyond the ADC rails, known from the board profile, or estimated offline
  by :func:`estimate_rails` from extremes that repeat. Clipped samples less than
  :data:`CLIP_BRIDGE_S` apart are one fault: a saturated sEMG leaves the rail at every zero crossing.
- An ECG the QRS subtraction cannot remove is a fault too (``ecg_residual``); the ECG stage
  (:class:`~biofeed.dsp.ecg.EcgRemover`) flags it, not this module.
- A rate that cannot carry an EMG band is a :class:`ValueError` from
  :func:`biofeed.dsp.filters.design_emg_band`; :func:`sample_rate_warnings` words the softer case of a
  rate below the recommended 1 kHz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block, StreamInfo
from biofeed.dsp.filters import EmgBand
from biofeed.dsp.stage import check_rate, starts_segment

__all__ = [
    "CLIP_BRIDGE_S",
    "DEFAULT_FLAT_S",
    "MIN_CLIP_RUN",
    "RECOMMENDED_MIN_RATE_HZ",
    "FaultKind",
    "FiniteSplitter",
    "SignalFault",
    "SignalFaultDetector",
    "clipping_rails_uv",
    "estimate_rails",
    "sample_rate_warnings",
]

DEFAULT_FLAT_S = 0.25
"""Identical samples for this long make a flat line."""
CLIP_BRIDGE_S = 0.05
"""Clipped samples closer than this are one clipping fault. *Decision*: sEMG driven far beyond the
rails leaves them only around its zero crossings, for a few ms (E's saturation fault in
tests/faults/test_signal_faults.py: at most 11 ms at 2 kHz); 50 ms is 1.5 periods of the band's
lowest frequency (30 Hz), well short of the 1 s windows the clipping keeps out of the set point."""
MIN_CLIP_RUN = 2
"""An extreme value repeated this many times in a row is taken for a rail by :func:`estimate_rails`.

sEMG at 1-2 kHz swings through a rail in 2-3 samples; the extremes of every file in
shared/data/real (10-bit BITalino, 12-bit lower-limb set) occur once, never twice in a row."""
RECOMMENDED_MIN_RATE_HZ = 1000.0
"""SCIENCE.md 2: sample EMG at >= 1000 Hz (2000 Hz preferred)."""


class FaultKind(StrEnum):
    """What is wrong with a stretch of signal."""

    NON_FINITE = "non_finite"
    FLAT = "flat"
    CLIPPED = "clipped"
    ECG_RESIDUAL = "ecg_residual"
    """QRS-locked power the ECG subtraction could not remove (flagged by :class:`~biofeed.dsp.ecg.EcgRemover`)."""


@dataclass(frozen=True)
class SignalFault:
    """A flagged stretch of one channel.

    Attributes
    ----------
    channel_index : int
        Row of the channel.
    kind : FaultKind
        What is wrong.
    start_index, end_index : int
        Device samples [start, end).
    sample_rate_hz : float
        Rate of the indices.
    """

    channel_index: int
    kind: FaultKind
    start_index: int
    end_index: int
    sample_rate_hz: float

    @property
    def start_s(self) -> float:
        """Start, device seconds."""
        return self.start_index / self.sample_rate_hz

    @property
    def end_s(self) -> float:
        """End, device seconds."""
        return self.end_index / self.sample_rate_hz

    def overlaps(self, start_index: int, end_index: int) -> bool:
        """True when the fault touches device samples [start_index, end_index)."""
        return self.start_index < end_index and start_index < self.end_index

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "channel_index": self.channel_index,
            "kind": self.kind.value,
            "start_s": self.start_s,
            "end_s": self.end_s,
        }


def sample_rate_warnings(band: EmgBand) -> list[str]:
    """Plain-words warnings about a stream's rate (empty at >= 1 kHz)."""
    if band.sample_rate_hz >= RECOMMENDED_MIN_RATE_HZ:
        return []
    return [
        f"{band.sample_rate_hz:g} Hz is below the recommended {RECOMMENDED_MIN_RATE_HZ:g} Hz: the EMG band is "
        f"limited to {band.high_pass_hz:g}-{band.low_pass_hz:g} Hz, so amplitudes are not comparable with "
        "20-450 Hz sEMG"
    ]


def estimate_rails(data_uv: npt.ArrayLike, min_run: int = MIN_CLIP_RUN) -> tuple[float, float] | None:
    """Guess the ADC rails of a recording from its extremes (offline).

    Parameters
    ----------
    data_uv : array_like, shape (n_channels, n_samples)
        Raw samples; non-finite values are ignored.
    min_run : int
        An extreme counts as a rail when it is repeated this many times in a row on some channel.

    Returns
    -------
    tuple of float or None
        (low, high) rails, with +/-inf for a side that shows no clipping; None when neither does.
    """
    data = np.atleast_2d(np.asarray(data_uv, dtype=np.float64))
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return None
    rails = []
    for extreme in (float(finite.min()), float(finite.max())):
        hits = data == extreme
        clipped = any(_longest_run(row) >= min_run for row in hits)
        rails.append(extreme if clipped else math.copysign(math.inf, extreme - float(np.median(finite))))
    if math.isinf(rails[0]) and math.isinf(rails[1]):
        return None
    return rails[0], rails[1]


def _longest_run(mask: npt.NDArray[np.bool_]) -> int:
    if not mask.any():
        return 0
    edges = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


def _runs(mask: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Starts and ends (exclusive) of the runs of True in a 1-D mask."""
    edges = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


class FiniteSplitter:
    """Cut NaN/inf samples out of a stream, marking each hole as a gap (a Stage returning blocks).

    A sample index is cut when any channel is non-finite there.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the carried hole."""
        self._carried_gap = 0

    def process(self, block: Block) -> list[Block]:
        """Split one block into its finite stretches.

        Returns
        -------
        list of Block
            Finite blocks in order; each one's ``gap_before`` counts the samples cut right before it
            (plus the input's own gap for the first).
        """
        missing = block.gap_before + self._carried_gap
        self._carried_gap = 0
        finite = np.asarray(np.isfinite(block.data).all(axis=0))
        if finite.all():
            if missing == block.gap_before:
                return [block]
            return [Block(block.info, block.data, block.first_index, missing, block.received_at)]
        out = []
        cursor = 0
        starts, ends = _runs(finite)
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            gap = missing + start - cursor
            out.append(Block(block.info, block.data[:, start:end], block.first_index + start, gap, block.received_at))
            missing, cursor = 0, end
        self._carried_gap = missing + block.n_samples - cursor
        return out


class SignalFaultDetector:
    """Streaming detector of NaN/inf, flat lines and clipping, per channel.

    Parameters
    ----------
    sample_rate_hz : float
        Rate of the raw blocks.
    flat_s : float
        Shortest flat line.
    rails_uv : tuple of float or None
        (low, high) ADC rails in uV; samples at or beyond them are clipped. None: no clipping check.
    """

    def __init__(
        self, sample_rate_hz: float, flat_s: float = DEFAULT_FLAT_S, rails_uv: tuple[float, float] | None = None
    ) -> None:
        if not (math.isfinite(flat_s) and flat_s > 0):
            raise ValueError(f"flat_s must be a positive number of seconds, got {flat_s!r}")
        if rails_uv is not None and not rails_uv[0] < rails_uv[1]:
            raise ValueError(f"rails_uv must be (low, high) with low < high, got {rails_uv!r}")
        self.sample_rate_hz = float(sample_rate_hz)
        self.flat_samples = max(2, round(flat_s * sample_rate_hz))
        self.clip_bridge_samples = round(CLIP_BRIDGE_S * sample_rate_hz)
        self.rails_uv = rails_uv
        self.reset()

    def reset(self) -> None:
        """Forget open runs."""
        self._open: dict[tuple[int, FaultKind], int] = {}  # open run -> its start index
        self._clip_end: dict[int, int] = {}  # per channel with an open clipping fault: end of its last clipped run
        self._last_value: npt.NDArray[np.float64] | None = None
        self._next_index: int | None = None

    def settled_index(self) -> int:
        """Device index before which every fault is known (the start of the earliest open run)."""
        next_index = self._next_index if self._next_index is not None else 0
        return min([*self._open.values(), next_index])

    def open_faults(self) -> list[SignalFault]:
        """Faults still going on at the last sample (flat runs only once they are long enough)."""
        end = self._next_index if self._next_index is not None else 0
        return [
            SignalFault(c, kind, start, self._clip_end[c] if kind is FaultKind.CLIPPED else end, self.sample_rate_hz)
            for (c, kind), start in self._open.items()
            if kind is not FaultKind.FLAT or end - start >= self.flat_samples
        ]

    def process(self, block: Block) -> list[SignalFault]:
        """Scan one raw block; return the faults that ended in it.

        Parameters
        ----------
        block : Block
            Raw sEMG in uV (NaN/inf allowed), shape (n_channels, n_samples).

        Returns
        -------
        list of SignalFault
        """
        check_rate(block, self.sample_rate_hz)
        # Runs do not continue across a gap: close what was open at the old end.
        closed = self.finish() if starts_segment(block, self._next_index) else []
        self._next_index = block.end_index
        data = block.data
        if data.shape[1] == 0:
            return closed
        previous = self._last_value if self._last_value is not None else np.full(data.shape[0], np.nan)
        self._last_value = data[:, -1].copy()
        masks = {FaultKind.NON_FINITE: ~np.isfinite(data)}
        masks[FaultKind.FLAT] = data == np.concatenate([previous[:, None], data[:, :-1]], axis=1)
        if self.rails_uv is not None:
            with np.errstate(invalid="ignore"):
                masks[FaultKind.CLIPPED] = (data <= self.rails_uv[0]) | (data >= self.rails_uv[1])
        open_kinds = {k for _, k in self._open}
        for kind, mask in masks.items():
            if kind not in open_kinds and not mask.any():
                continue
            if kind is FaultKind.FLAT:
                # A run of equal samples inside the block, shorter than a flat line, gives nothing: only
                # runs touching an end of the block or long enough need a scan.
                busy = mask[:, 0] | mask[:, -1] | (np.count_nonzero(mask, axis=1) >= self.flat_samples - 1)
            else:
                busy = mask.any(axis=1)
            rows = {c for c, k in self._open if k is kind}.union(np.flatnonzero(busy).tolist())
            scan = self._scan_clipped if kind is FaultKind.CLIPPED else self._scan
            for c in sorted(rows):
                closed.extend(scan(c, kind, mask[c], block.first_index))
        return closed

    def finish(self) -> list[SignalFault]:
        """Close the open runs at the last sample (end of data or a gap) and return the faults among them."""
        faults = self.open_faults()
        self._open = {}
        self._clip_end = {}
        self._last_value = None
        return faults

    def _scan(self, c: int, kind: FaultKind, mask: npt.NDArray[np.bool_], first_index: int) -> list[SignalFault]:
        faults = []
        key = (c, kind)
        # A flat run of k equal neighbours spans k + 1 samples: it starts one sample before its first match.
        lead = 1 if kind is FaultKind.FLAT else 0
        min_length = self.flat_samples if kind is FaultKind.FLAT else 1
        if key in self._open and not mask[0]:
            start = self._open.pop(key)
            if first_index - start >= min_length:
                faults.append(SignalFault(c, kind, start, first_index, self.sample_rate_hz))
        starts, ends = _runs(mask)
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            run_start = self._open.pop(key) if start == 0 and key in self._open else first_index + start - lead
            if end == mask.shape[0]:
                self._open[key] = run_start
            elif first_index + end - run_start >= min_length:
                faults.append(SignalFault(c, kind, run_start, first_index + end, self.sample_rate_hz))
        return faults

    def _scan_clipped(
        self, c: int, kind: FaultKind, mask: npt.NDArray[np.bool_], first_index: int
    ) -> list[SignalFault]:
        """Clipped runs less than ``clip_bridge_samples`` apart merge; a fault closes once that much passed clean."""
        faults = []
        key = (c, kind)
        starts, ends = _runs(mask)
        for start, end in zip((starts + first_index).tolist(), (ends + first_index).tolist(), strict=True):
            if key in self._open and start - self._clip_end[c] > self.clip_bridge_samples:
                faults.append(SignalFault(c, kind, self._open.pop(key), self._clip_end[c], self.sample_rate_hz))
            self._open.setdefault(key, start)
            self._clip_end[c] = end
        block_end = first_index + mask.shape[0]
        if key in self._open and block_end - self._clip_end[c] > self.clip_bridge_samples:
            faults.append(SignalFault(c, kind, self._open.pop(key), self._clip_end.pop(c), self.sample_rate_hz))
        return faults


def clipping_rails_uv(info: StreamInfo, profile_range_uv: tuple[float, float] | None) -> tuple[float, float] | None:
    """The (low, high) rails of an EMG stream's clipping check, uV; None: no check.

    A clipped sample sits at the ADC's integer extreme (``ChannelInfo.full_scale``, when every channel
    has the same one) or at the board profile's ``range_uv``, the front end's linear range. With both,
    the inner of the two: a profile's nominal range can lie a fraction of a count beyond what the wire
    carries (the simulator's +187500 uV against its highest value, 187499.98 uV), and the front end
    can clip before the ADC does.

    Parameters
    ----------
    info : StreamInfo
        The EMG stream.
    profile_range_uv : tuple of float or None
        The ``range_uv`` of the board profile the device's INFO names; None without one.

    Returns
    -------
    tuple of float or None
        The rails, or None when neither is known.
    """
    full_scales = {c.full_scale for c in info.channels}
    adc_uv = full_scales.pop() if len(full_scales) == 1 else None  # unknown, or per channel: no single pair
    if adc_uv is None or profile_range_uv is None:
        return profile_range_uv if adc_uv is None else adc_uv
    low_uv, high_uv = max(adc_uv[0], profile_range_uv[0]), min(adc_uv[1], profile_range_uv[1])
    return (low_uv, high_uv) if low_uv < high_uv else adc_uv
