"""ECG removal from trunk sEMG: QRS detection and template subtraction, on when the heart shows.

SCIENCE.md section 3.3: the heart contaminates trunk EMG; at resting levels a 50 uV R peak inflates
20-450 Hz RMS by about 50 %, a 30 Hz high-pass leaves +7 %, template subtraction about 0 %. Offer
QRS template subtraction, switched on when QRS-locked energy exceeds about 10 % of rest power.

Per channel, on the band-passed signal:

- detection: ``e`` = 40 ms mean square on a 1 ms hop (:class:`~biofeed.dsp.envelope.MovingRms`,
  exact and chunk-invariant); a QRS is a local maximum of ``e`` within +/-200 ms that exceeds
  ``detection_factor`` times the mean of ``e`` over the 2 s before it (every 10 ms on the absolute
  hop grid) and is short: ``e`` falls below half its peak 60 ms either side (the onset of a
  ballistic burst passes the first test, not this one); its centre is the centre of that 40 ms
  window (1 ms resolution); Resting sEMG alone rarely reaches 3x its own
  mean energy in 40 ms; a contraction raises the mean, so no QRS is found during one;
- template: the mean of the last ``n_template_beats`` beats, 80 ms before to 120 ms after the QRS
  centre (the 30 Hz high-pass leaves a ringing wavelet of about that length);
- switch: QRS-locked energy (template energy x beat rate) over the mean power of the 2 s before the
  beat (its unlocked share taken off, see ``_qrs_fraction``); subtraction is on while that fraction
  exceeds ``on_fraction`` (and until it drops below half of it) and the last ``min_beats`` beats came
  at heart-like intervals (0.3-2 s:
  repeated ballistic bursts are short too, but not rhythmic); each switch is an :class:`EcgDecision`;
  and is applied to a beat that correlates with the template (r >= 0.3): a stray detection is
  never "cleaned" with a heartbeat's shape;
- residual: while subtracting, each beat's QRS-locked power left after subtraction (its cleaned
  -80..+120 ms segment's energy minus the rest power's share of it, x beat rate) over the rest power
  (the 2 s before it, away from the beats' segments). A beat above :data:`RESIDUAL_FRACTION` is an
  irreducible residual: its segment is a :class:`~biofeed.dsp.quality.SignalFault` of kind
  ``ecg_residual`` (consecutive residual beats less than 2 s apart are one fault), so no verdict is
  given on a contraction it touches (SCIENCE.md 6: ``rejected`` for ECG-dominated rest).

Streaming: a QRS is only known 200 ms after it and its window starts 80 ms before it, so the output
is delayed by :attr:`EcgRemover.delay_samples` (about 0.3 s): an output block covers earlier device
samples than its input (its ``first_index`` says which). On a gap the samples still held are
dropped and counted in the next block's ``gap_before``; :meth:`EcgRemover.flush` returns them at
the end of a recording. Templates survive gaps (the heart does not change with a lost packet).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.ndimage import maximum_filter1d

from biofeed.blocks import Block
from biofeed.dsp.envelope import MovingRms
from biofeed.dsp.quality import FaultKind, SignalFault
from biofeed.dsp.stage import check_rate, starts_segment

__all__ = ["RESIDUAL_FRACTION", "EcgDecision", "EcgRemover"]

RESIDUAL_FRACTION = 0.25
"""A beat whose QRS-locked power after subtraction exceeds this fraction of the rest power is flagged.

*Measured* (tests/faults/test_signal_faults.py's pandiculation scenario, seed 0, with the simulator's
ECG): at 100 uV R peaks the two beats that became spurious contractions (91.3 s and 171.3 s, both
with a ``none`` verdict) left 0.27 and 0.28 while the other beats' median was 0.05; at 1500 uV the
median is 0.20 (left) and 0.09 (right, 35 % of it) with a tail past 1 (detected beats the template
fits badly). The per-beat estimate scatters by about 0.04 (SD) from the sEMG within the segment.
Above the 10 % at which SCIENCE.md 3.3 switches subtraction on: a residual this large is what the
phase detector takes for an onset."""

_SMOOTH_S = 0.04
_ENERGY_HOP_S = 0.001
_SEARCH_S = 0.2
_PRE_S = 0.08
_POST_S = 0.12
_CONTEXT_S = 2.0
_CONTEXT_STEP_S = 0.01
_WIDTH_S = 0.06
_RR_S = (0.3, 2.0)  # beat intervals of a heart at 30-200 bpm
_MIN_CORRELATION = 0.3  # a beat at 10 % QRS-locked power correlates about 0.5; EMG alone about 0 +/- 0.08


def _correlation(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    """Pearson correlation of two segments; 0 when either is flat."""
    a, b = a - a.mean(), b - b.mean()
    norm = math.sqrt(float(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b)) / norm if norm > 0 else 0.0


@dataclass(frozen=True)
class EcgDecision:
    """ECG subtraction switched on or off on a channel (for the session log).

    Attributes
    ----------
    channel_index : int
        Row of the channel.
    sample_index : int
        QRS centre of the first beat handled the new way.
    time_s : float
        Its device time.
    subtracting : bool
        True when subtraction starts, False when it stops.
    qrs_fraction : float
        QRS-locked energy over rest power at that beat.
    """

    channel_index: int
    sample_index: int
    time_s: float
    subtracting: bool
    qrs_fraction: float

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "channel_index": self.channel_index,
            "time_s": self.time_s,
            "subtracting": self.subtracting,
            "qrs_fraction": self.qrs_fraction,
        }


class _Beats:
    """The last beats of one channel: their centres and raw segments, and the residual fault still open."""

    def __init__(self, n_max: int) -> None:
        self.n_max = n_max
        self.centres: list[int] = []
        self.segments: list[npt.NDArray[np.float64]] = []
        self.subtracting = False
        self.residual: tuple[int, int, int] | None = None  # open ecg_residual fault: start, end, last centre

    def add(self, centre: int, segment: npt.NDArray[np.float64]) -> None:
        self.centres.append(centre)
        self.segments.append(segment)
        if len(self.centres) > self.n_max:
            del self.centres[0], self.segments[0]


class EcgRemover:
    """Streaming QRS template subtraction (a Stage with a fixed delay).

    Parameters
    ----------
    sample_rate_hz : float
        Rate of the band-passed blocks.
    on_fraction : float
        QRS-locked energy fraction of rest power above which the template is subtracted.
    detection_factor : float
        A QRS's 40 ms energy must exceed this times the mean energy of the 2 s before it.
    n_template_beats : int
        Beats averaged into the template.
    min_beats : int
        Beats needed before subtracting.
    """

    _next_index: int | None
    _x: npt.NDArray[np.float64]
    _energy: npt.NDArray[np.float64]
    _buffer_start: int
    _out_next: int
    _energy_start: int
    _next_candidate: int | None
    _first_hop: int | None

    def __init__(
        self,
        sample_rate_hz: float,
        on_fraction: float = 0.1,
        detection_factor: float = 3.0,
        n_template_beats: int = 16,
        min_beats: int = 8,
    ) -> None:
        if not (math.isfinite(on_fraction) and 0 <= on_fraction < 1):
            raise ValueError(f"on_fraction must be in [0, 1), got {on_fraction!r}")
        if not (math.isfinite(detection_factor) and detection_factor > 1):
            raise ValueError(f"detection_factor must be a number > 1, got {detection_factor!r}")
        if not 2 <= min_beats <= n_template_beats:
            raise ValueError(f"need 2 <= min_beats <= n_template_beats, got {min_beats} and {n_template_beats}")
        self.sample_rate_hz = float(sample_rate_hz)
        self.on_fraction = float(on_fraction)
        self.detection_factor = float(detection_factor)
        self.n_template_beats = n_template_beats
        self.min_beats = min_beats
        fs = self.sample_rate_hz
        self._energy_rms = MovingRms(fs, _SMOOTH_S, _ENERGY_HOP_S)
        h = self._energy_rms.hop_samples
        self._hop = h
        self._search_hops = max(1, round(_SEARCH_S * fs / h))
        self._width_hops = max(1, round(_WIDTH_S * fs / h))
        self._context_hops = round(_CONTEXT_S * fs / h)
        self._context_step = max(1, round(_CONTEXT_STEP_S * fs / h))
        self._centre_shift = self._energy_rms.window_samples // 2  # hop stamp -> centre of its window
        self._pre = round(_PRE_S * fs)
        self._post = round(_POST_S * fs)
        # A QRS is known search_hops after its hop; its window starts pre before its centre.
        self.delay_samples = (self._search_hops + 1) * h + self._centre_shift + self._pre
        self.reset()

    def reset(self) -> None:
        """Forget everything, templates included."""
        self._beats: list[_Beats] = []
        self._decisions: list[EcgDecision] = []
        self._faults: list[SignalFault] = []
        self._start_segment(None, 0)

    def take_faults(self) -> list[SignalFault]:
        """``ecg_residual`` faults closed since the last call, in order."""
        out, self._faults = self._faults, []
        return out

    def open_faults(self) -> list[SignalFault]:
        """``ecg_residual`` faults still open (the next beat may extend them), as far as they reach."""
        return [
            SignalFault(c, FaultKind.ECG_RESIDUAL, beats.residual[0], beats.residual[1], self.sample_rate_hz)
            for c, beats in enumerate(self._beats)
            if beats.residual is not None
        ]

    def settled_index(self) -> float:
        """Device index before which every ``ecg_residual`` fault is known (inf with none open)."""
        return min((b.residual[1] for b in self._beats if b.residual is not None), default=math.inf)

    def take_decisions(self) -> list[EcgDecision]:
        """Switches since the last call, in order."""
        out, self._decisions = self._decisions, []
        return out

    def subtracting(self, channel_index: int) -> bool:
        """True while a channel's template is being subtracted."""
        return channel_index < len(self._beats) and self._beats[channel_index].subtracting

    def process(self, block: Block) -> Block:
        """Add a block of band-passed sEMG; return the cleaned samples now ``delay_samples`` old.

        Parameters
        ----------
        block : Block
            Band-passed sEMG in uV, shape (n_channels, n_samples).

        Returns
        -------
        Block
            Cleaned sEMG in uV, shape (n_channels, n_out) with ``n_out >= 0``, from device sample
            ``first_index`` on; ``gap_before`` includes the held samples a gap made us drop.
        """
        check_rate(block, self.sample_rate_hz)
        n_channels = block.data.shape[0]
        gap = 0
        if starts_segment(block, self._next_index) or self._x.shape[0] != n_channels:
            held = self._buffer_end - self._out_next if self._next_index is not None else 0
            gap = block.gap_before + held
            self._close_residuals()
            self._start_segment(block.first_index, n_channels)
        self._next_index = block.end_index
        while len(self._beats) < n_channels:
            self._beats.append(_Beats(self.n_template_beats))
        self._append(block)
        self._find_beats()
        out_end = max(self._buffer_end - self.delay_samples, self._out_next)
        out = self._take(out_end)
        return Block(block.info, out, out_end - out.shape[1], gap, block.received_at)

    def flush(self, block_like: Block) -> Block:
        """Return the samples still held (end of a recording), after the beats already found.

        Parameters
        ----------
        block_like : Block
            Any block of the stream (its ``info`` is used).
        """
        out_end = self._buffer_end
        out = self._take(out_end)
        self._close_residuals()
        return Block(block_like.info, out, out_end - out.shape[1], 0, math.nan)

    # -- internals --------------------------------------------------------------------------------

    def _start_segment(self, first_index: int | None, n_channels: int) -> None:
        self._next_index = first_index
        start = first_index if first_index is not None else 0
        self._energy_rms.reset()
        self._x = np.zeros((n_channels, 0))  # samples not yet output, from device index _buffer_start
        self._buffer_start = start
        self._out_next = start
        self._energy = np.zeros((n_channels, 0))  # 40 ms mean square per 1 ms hop, from hop _energy_start
        self._energy_start = 0
        self._next_candidate = None  # first hop not yet examined for a QRS
        self._first_hop = None  # first energy hop of the segment

    @property
    def _buffer_end(self) -> int:
        return self._buffer_start + int(self._x.shape[1])

    def _append(self, block: Block) -> None:
        self._x = np.concatenate([self._x, block.data], axis=1)
        rms = self._energy_rms.process(block)
        if rms.n_samples == 0:
            return
        if self._first_hop is None:
            self._first_hop = self._next_candidate = self._energy_start = rms.first_index
        self._energy = np.concatenate([self._energy, rms.data * rms.data], axis=1)

    def _find_beats(self) -> None:
        if self._next_candidate is None:
            return
        search = self._search_hops
        lo = self._next_candidate
        hi = self._energy_start + self._energy.shape[1] - search  # a candidate needs +/-search hops around it
        if hi <= lo:
            return
        base = self._energy_start
        window_lo = max(lo - search, base)
        energy = self._energy[:, window_lo - base : hi + search - base]
        peaks = maximum_filter1d(energy, size=2 * search + 1, axis=1, mode="constant", cval=-np.inf)
        offset = lo - window_lo
        region = energy[:, offset : offset + hi - lo]
        is_peak = (region == peaks[:, offset : offset + hi - lo]) & (region > 0)
        for c, rel in zip(*np.nonzero(is_peak), strict=True):
            self._consider(int(c), lo + int(rel))
        self._next_candidate = hi
        keep_from = max(hi - search - self._context_hops - self._context_step, base)
        self._energy = self._energy[:, keep_from - base :]
        self._energy_start = keep_from

    def _consider(self, c: int, hop: int) -> None:
        """Test one local energy maximum; record (and maybe subtract) it when it is a QRS."""
        if self._first_hop is None:
            return
        context_lo = hop - self._search_hops - self._context_hops
        if context_lo < self._first_hop:
            return  # not enough history in this segment to judge
        step = self._context_step
        grid = np.arange(-(-context_lo // step) * step, hop - self._search_hops, step)
        level = float(np.mean(self._energy[c, grid - self._energy_start]))
        peak = float(self._energy[c, hop - self._energy_start])
        if not (level > 0 and peak > self.detection_factor * level):
            return
        # A QRS is short: its 40 ms energy halves within 60 ms either side (a burst's does not).
        flanks = self._energy[
            c, [hop - self._width_hops - self._energy_start, hop + self._width_hops - self._energy_start]
        ]
        if not (flanks < 0.5 * peak).all():
            return
        centre = hop * self._hop - self._centre_shift
        beats = self._beats[c]
        if beats.centres and centre - beats.centres[-1] <= self._search_hops * self._hop:
            return  # a tie of two energy maxima (quantised signals): one beat only
        lo, hi = centre - self._pre - self._buffer_start, centre + self._post - self._buffer_start
        if lo < 0 or hi > self._x.shape[1]:
            return
        segment = self._x[c, lo:hi].copy()
        fraction = self._qrs_fraction(beats, centre, level)
        # Hysteresis: on above on_fraction, off below half of it (a real heart hovers near the line).
        needed = self.on_fraction / 2 if beats.subtracting else self.on_fraction
        switched_on = self._rhythmic(beats, centre) and fraction > needed
        if switched_on != beats.subtracting:
            beats.subtracting = switched_on
            self._decisions.append(EcgDecision(c, centre, centre / self.sample_rate_hz, switched_on, fraction))
        if switched_on:
            template = np.mean(beats.segments, axis=0)
            if _correlation(segment, template) >= _MIN_CORRELATION:
                self._x[c, lo:hi] -= template
            residual = self._residual_fraction(beats, centre, self._x[c, lo:hi], c, grid)
            self._track_residual(c, centre, residual > RESIDUAL_FRACTION)
        else:
            self._track_residual(c, centre, False)
        beats.add(centre, segment)

    def _residual_fraction(
        self, beats: _Beats, centre: int, cleaned: npt.NDArray[np.float64], c: int, grid: npt.NDArray[np.int_]
    ) -> float:
        """QRS-locked power left in a beat's cleaned segment over the rest power (module docstring).

        The rest power is the 40 ms energy on the context grid away from the held beats' segments (a
        40 ms window touching one is left out), or the whole grid's when none is away from them.
        """
        fs = self.sample_rate_hz
        energy = self._energy[c, grid - self._energy_start]
        window_centres = grid * self._hop - self._centre_shift
        margin = self._centre_shift
        away = np.ones(grid.shape, dtype=bool)
        for beat in beats.centres:
            away &= (window_centres < beat - self._pre - margin) | (window_centres >= beat + self._post + margin)
        rest = float(np.mean(energy[away] if away.any() else energy))
        if not rest > 0:
            return 0.0
        rate_hz = len(beats.centres) / ((centre - beats.centres[0]) / fs)
        excess = float(np.dot(cleaned, cleaned)) / fs - rest * len(cleaned) / fs  # uV^2 s
        return excess * rate_hz / rest

    def _track_residual(self, c: int, centre: int, residual: bool) -> None:
        """Open, extend or close the channel's ``ecg_residual`` fault with one beat."""
        beats = self._beats[c]
        if beats.residual is not None and (not residual or centre - beats.residual[2] > _RR_S[1] * self.sample_rate_hz):
            self._close_residual(c)
        if residual:
            start = beats.residual[0] if beats.residual is not None else centre - self._pre
            beats.residual = (start, centre + self._post, centre)

    def _close_residual(self, c: int) -> None:
        """Close the channel's open ``ecg_residual`` fault, if any."""
        beats = self._beats[c]
        if beats.residual is not None:
            start, end, _ = beats.residual
            self._faults.append(SignalFault(c, FaultKind.ECG_RESIDUAL, start, end, self.sample_rate_hz))
            beats.residual = None

    def _close_residuals(self) -> None:
        """Close every open ``ecg_residual`` fault (a gap, the end of the data)."""
        for c in range(len(self._beats)):
            self._close_residual(c)

    def _rhythmic(self, beats: _Beats, centre: int) -> bool:
        """True when this beat ends ``min_beats`` beats spaced like a heart (30-200 bpm)."""
        if len(beats.centres) < self.min_beats:
            return False
        recent = np.diff([*beats.centres[-self.min_beats :], centre]) / self.sample_rate_hz
        return bool(((recent >= _RR_S[0]) & (recent <= _RR_S[1])).all())

    def _qrs_fraction(self, beats: _Beats, centre: int, level: float) -> float:
        """QRS-locked power over rest power, from the beats held so far.

        The mean of n segments carries 1/n of their unlocked (EMG) energy; that share is estimated
        from the spread of the segments about the mean and taken off, so stray detections in EMG
        average to about 0, not to a spurious 1/n.
        """
        n = len(beats.centres)
        if n < 2:
            return 0.0
        segments = np.asarray(beats.segments)
        template = segments.mean(axis=0)
        spread = float(np.sum((segments - template) ** 2)) / (n - 1)  # unlocked energy per segment
        locked = max(float(np.sum(template * template)) - spread / n, 0.0) / self.sample_rate_hz  # uV^2 s
        rate_hz = n / ((centre - beats.centres[0]) / self.sample_rate_hz)
        return locked * rate_hz / level

    def _take(self, out_end: int) -> npt.NDArray[np.float64]:
        """Cut samples [_out_next, out_end) out for output."""
        cut = out_end - self._buffer_start
        out = self._x[:, :cut]
        self._x = self._x[:, cut:]
        self._buffer_start = self._out_next = out_end
        return out
