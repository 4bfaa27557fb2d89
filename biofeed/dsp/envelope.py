"""Moving RMS envelopes on a decimated hop grid, streaming and exact.

SCIENCE.md section 3.5: RMS over 50 ms (timing), 250 ms (display) and 1 s (set point).

Grid: hop ``k`` of a :class:`MovingRms` is the RMS of the ``window_samples`` samples with device
indices ``[k*h - w, k*h)`` and is stamped at device sample ``k*h`` (the end of its window, the moment
it can first be known). The grid is anchored to absolute device indices, so after a gap it stays
aligned, and an envelope block's ``first_index`` is a hop index whose time is ``k / output_rate_hz``.

Exactness: squares are summed per hop (a fixed run of ``h`` samples), and each window sums its
``w / h`` hop sums directly, never as a difference of running totals. A running total carried across
a 10-minute recording loses about 1e-10 of a resting window's power to cancellation once a strong
contraction has passed; direct sums keep a chunked signal equal to the whole one to rounding
(about 1e-15) at every hop.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block, StreamInfo
from biofeed.dsp.stage import check_rate, starts_segment

__all__ = [
    "DEFAULT_HOP_S",
    "DISPLAY_WINDOW_S",
    "SET_POINT_WINDOW_S",
    "TIMING_WINDOW_S",
    "MovingRms",
]

TIMING_WINDOW_S = 0.05
"""SCIENCE.md 3.5: onset/offset timing."""
DISPLAY_WINDOW_S = 0.25
"""SCIENCE.md 3.5: display, and the amplitude the release is measured on."""
SET_POINT_WINDOW_S = 1.0
"""SCIENCE.md 3.5 and 4: set point."""
DEFAULT_HOP_S = 0.005
"""5 ms hops: onset times quantised to 5 ms (well inside the 25 ms target) at 1/10 the per-sample cost."""


class MovingRms:
    """Streaming moving RMS of every channel, one value per hop (a Stage with a decimated output).

    Parameters
    ----------
    sample_rate_hz : float
        Sample rate of the input blocks.
    window_s : float
        Window length; rounded to a whole number of hops (see :attr:`window_samples`).
    hop_s : float
        Hop; rounded to a whole number of samples, at least one. Use ``hop_s = window_s`` for
        back-to-back (non-overlapping) windows.

    Attributes
    ----------
    hop_samples : int
        ``h``, samples per hop.
    window_samples : int
        ``w``, samples per window, a multiple of ``h``.
    output_rate_hz : float
        Hops per second, ``sample_rate_hz / h``.
    """

    def __init__(self, sample_rate_hz: float, window_s: float, hop_s: float = DEFAULT_HOP_S) -> None:
        if not (math.isfinite(sample_rate_hz) and sample_rate_hz > 0):
            raise ValueError(f"sample_rate_hz must be a positive number, got {sample_rate_hz!r}")
        if not (math.isfinite(hop_s) and hop_s > 0):
            raise ValueError(f"hop_s must be a positive number of seconds, got {hop_s!r}")
        if not (math.isfinite(window_s) and window_s >= hop_s):
            raise ValueError(f"window_s must be a number of seconds >= hop_s={hop_s}, got {window_s!r}")
        self.sample_rate_hz = float(sample_rate_hz)
        self.hop_samples = max(1, round(hop_s * sample_rate_hz))
        self._hops_per_window = max(1, round(window_s * sample_rate_hz / self.hop_samples))
        self.window_samples = self._hops_per_window * self.hop_samples
        self.output_rate_hz = self.sample_rate_hz / self.hop_samples
        self._info_cache: tuple[StreamInfo, StreamInfo] | None = None
        self._bounds: npt.NDArray[np.intp] = np.zeros(0, dtype=np.intp)
        self.reset()

    @property
    def hops_per_window(self) -> int:
        """Hops in one window, ``w / h``."""
        return self._hops_per_window

    @property
    def window_s(self) -> float:
        """Window length actually used, in seconds."""
        return self.window_samples / self.sample_rate_hz

    def reset(self) -> None:
        """Forget all state; the next block starts a new segment."""
        self._next_index: int | None = None
        self._skip = 0  # samples still to drop to reach the next hop boundary
        self._partial: npt.NDArray[np.float64] = np.zeros((0, 0))  # squares of the unfinished hop
        self._hop_sums: npt.NDArray[np.float64] = np.zeros((0, 0))  # last w/h - 1 complete hop sums
        self._next_hop = 0
        self._last_hop_out: int | None = None

    def sample_index_of_hop(self, hop_index: int) -> int:
        """Device sample index a hop is stamped at (the end of its window, exclusive)."""
        return hop_index * self.hop_samples

    def process(self, block: Block) -> Block:
        """Add a block of band-passed sEMG; return the hops it completes.

        Parameters
        ----------
        block : Block
            Band-passed sEMG in uV, shape (n_channels, n_samples).

        Returns
        -------
        Block
            RMS in uV, shape (n_channels, n_hops) with ``n_hops >= 0``, on a stream at
            :attr:`output_rate_hz`; ``first_index`` is the first hop's index and ``gap_before``
            the number of hops skipped since the last output (a gap in the input).
        """
        check_rate(block, self.sample_rate_hz)
        n_channels = block.data.shape[0]
        if starts_segment(block, self._next_index) or self._partial.shape[0] != n_channels:
            self._start_segment(block.first_index, n_channels)
        self._next_index = block.end_index
        squares = block.data * block.data
        if self._skip:
            dropped = min(self._skip, squares.shape[1])
            squares = squares[:, dropped:]
            self._skip -= dropped
        h = self.hop_samples
        pending = np.concatenate([self._partial, squares], axis=1) if self._partial.shape[1] else squares
        n_hops = pending.shape[1] // h
        new_sums = pending[:, : n_hops * h].reshape(n_channels, n_hops, h).sum(axis=2)
        self._partial = pending[:, n_hops * h :]
        m = self._hops_per_window
        if m == 1:
            window_sums = new_sums
        else:
            # Each window sums its m hop sums in order (reduceat over [start, start + m) pairs), so a
            # window's value never depends on the block it was completed in. A zero column lets the
            # last window end at the array's end, which reduceat's indices may not.
            held = self._hop_sums.shape[1]
            sums = np.concatenate([self._hop_sums, new_sums, np.zeros((n_channels, 1))], axis=1)
            n_out = max(0, held + n_hops - m + 1)
            bounds = self._window_bounds(n_out)
            window_sums = np.add.reduceat(sums, bounds, axis=1)[:, ::2] if n_out else sums[:, :0]
            self._hop_sums = sums[:, max(held + n_hops - (m - 1), 0) : held + n_hops]
        n_out = window_sums.shape[1]
        first_hop = self._next_hop
        self._next_hop += n_out
        gap = 0
        if n_out:
            if self._last_hop_out is not None:
                gap = first_hop - self._last_hop_out - 1
            self._last_hop_out = first_hop + n_out - 1
        rms = np.sqrt(window_sums / self.window_samples)
        return Block(self._output_info(block.info), rms, first_hop, gap, block.received_at)

    def _window_bounds(self, n_out: int) -> npt.NDArray[np.intp]:
        """Interleaved [start, end) column pairs of n_out windows for ``np.add.reduceat``."""
        if self._bounds.shape[0] < 2 * n_out:
            starts = np.arange(max(n_out, 2 * self._bounds.shape[0]))
            self._bounds = np.ravel(np.column_stack([starts, starts + self._hops_per_window]))
        return self._bounds[: 2 * n_out]

    def _start_segment(self, first_index: int, n_channels: int) -> None:
        h = self.hop_samples
        first_boundary = -(-first_index // h) * h
        self._skip = first_boundary - first_index
        self._partial = np.zeros((n_channels, 0))
        self._hop_sums = np.zeros((n_channels, 0))
        self._next_hop = first_boundary // h + self._hops_per_window

    def _output_info(self, info: StreamInfo) -> StreamInfo:
        if self._info_cache is None or self._info_cache[0] is not info:
            window_ms = round(self.window_s * 1000)
            out = StreamInfo(
                name=f"{info.name}_rms{window_ms}ms",
                sample_rate_hz=self.output_rate_hz,
                channels=info.channels,
                device_id=info.device_id,
                stream_id=info.stream_id,
            )
            self._info_cache = (info, out)
        return self._info_cache[1]
