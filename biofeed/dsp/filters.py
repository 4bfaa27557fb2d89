"""The sEMG band-pass: 4th-order Butterworth high-pass and low-pass, causal, state carried between blocks.

SCIENCE.md section 3.1-3.2: high-pass 30 Hz by default for lumbar sites (Drake & Callaghan 2006: the
best trade-off against ECG contamination), 20 or 40 Hz on request; low-pass 450 Hz, always below
Nyquist. Boards sampling below 1 kHz get the low-pass pulled down to 90 % of Nyquist (a 250 Hz board
keeps 30-112.5 Hz); a rate whose band would be narrower than one octave cannot carry sEMG and is
refused with a :class:`ValueError` at construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import signal

from biofeed.blocks import Block
from biofeed.dsp.sos_stream import SosStream
from biofeed.dsp.stage import check_rate, starts_segment

__all__ = [
    "DEFAULT_HIGH_PASS_HZ",
    "DEFAULT_LOW_PASS_HZ",
    "MAX_LOW_PASS_FRACTION_OF_NYQUIST",
    "MIN_BAND_RATIO",
    "BandPassFilter",
    "EmgBand",
    "design_emg_band",
]

DEFAULT_HIGH_PASS_HZ = 30.0
"""SCIENCE.md 3.1 (Drake & Callaghan 2006)."""
DEFAULT_LOW_PASS_HZ = 450.0
"""SCIENCE.md 3.2."""
MAX_LOW_PASS_FRACTION_OF_NYQUIST = 0.9
"""The low-pass never sits above this fraction of Nyquist (450 Hz at 1 kHz is exactly 0.9)."""
MIN_BAND_RATIO = 2.0
"""The pass band must span at least one octave (low-pass >= 2 x high-pass) to be called sEMG."""


@dataclass(frozen=True, eq=False)
class EmgBand:
    """A designed sEMG band-pass.

    Attributes
    ----------
    sample_rate_hz : float
        Sample rate the filter is designed for.
    high_pass_hz : float
        -3 dB point of the high-pass.
    low_pass_hz : float
        -3 dB point of the low-pass, after adaptation to the sample rate.
    low_pass_adapted : bool
        True when the requested low-pass was pulled down below Nyquist.
    sos : ndarray, shape (n_sections, 6)
        Second-order sections, high-pass sections first.
    """

    sample_rate_hz: float
    high_pass_hz: float
    low_pass_hz: float
    low_pass_adapted: bool
    sos: npt.NDArray[np.float64]

    def noise_bandwidth_hz(self) -> float:
        """Equivalent noise bandwidth: the integral of ``|H(f)|^2`` over 0..Nyquist, in Hz.

        White noise of power density ``p`` (uV^2/Hz, one-sided) leaves the filter with power
        ``p * noise_bandwidth_hz()``.
        """
        n_points = 1 << 16
        freqs_hz, response = signal.sosfreqz(self.sos, worN=n_points, fs=self.sample_rate_hz)
        return float(np.trapezoid(np.abs(response) ** 2, freqs_hz))


def design_emg_band(
    sample_rate_hz: float,
    high_pass_hz: float = DEFAULT_HIGH_PASS_HZ,
    low_pass_hz: float = DEFAULT_LOW_PASS_HZ,
    order: int = 4,
) -> EmgBand:
    """Design the sEMG band-pass for a sample rate.

    Parameters
    ----------
    sample_rate_hz : float
        Sample rate in Hz.
    high_pass_hz : float
        High-pass -3 dB point in Hz (SCIENCE.md: 30 by default, 20 or 40 on request).
    low_pass_hz : float
        Requested low-pass -3 dB point in Hz; lowered to ``0.9 * Nyquist`` when above it.
    order : int
        Butterworth order of each of the high-pass and the low-pass (2..8).

    Returns
    -------
    EmgBand

    Raises
    ------
    ValueError
        When a value is out of range, or when the sample rate leaves less than one octave above
        the high-pass (the rate cannot carry an EMG band).
    """
    if not (math.isfinite(sample_rate_hz) and sample_rate_hz > 0):
        raise ValueError(f"sample_rate_hz must be a positive number, got {sample_rate_hz!r}")
    if not (math.isfinite(high_pass_hz) and high_pass_hz > 0):
        raise ValueError(f"high_pass_hz must be a positive number (30 by default; 20 or 40), got {high_pass_hz!r}")
    if not (math.isfinite(low_pass_hz) and low_pass_hz > high_pass_hz):
        raise ValueError(f"low_pass_hz must be a number above high_pass_hz={high_pass_hz}, got {low_pass_hz!r}")
    if order not in range(2, 9):
        raise ValueError(f"order must be an integer from 2 to 8, got {order!r}")
    max_low_pass_hz = MAX_LOW_PASS_FRACTION_OF_NYQUIST * sample_rate_hz / 2.0
    effective_low_pass_hz = min(low_pass_hz, max_low_pass_hz)
    if effective_low_pass_hz < MIN_BAND_RATIO * high_pass_hz:
        min_rate_hz = MIN_BAND_RATIO * high_pass_hz * 2.0 / MAX_LOW_PASS_FRACTION_OF_NYQUIST
        raise ValueError(
            f"a sample rate of {sample_rate_hz} Hz cannot carry an EMG band: the low-pass would be "
            f"{effective_low_pass_hz:.1f} Hz, less than one octave above the {high_pass_hz} Hz high-pass; "
            f"use at least {min_rate_hz:.0f} Hz (1000 Hz or more recommended, SCIENCE.md 2)"
        )
    high_pass = signal.butter(order, high_pass_hz, btype="highpass", fs=sample_rate_hz, output="sos")
    low_pass = signal.butter(order, effective_low_pass_hz, btype="lowpass", fs=sample_rate_hz, output="sos")
    return EmgBand(
        sample_rate_hz=float(sample_rate_hz),
        high_pass_hz=float(high_pass_hz),
        low_pass_hz=float(effective_low_pass_hz),
        low_pass_adapted=effective_low_pass_hz < low_pass_hz,
        sos=np.vstack([high_pass, low_pass]),
    )


class BandPassFilter:
    """Streaming sEMG band-pass (a Stage): causal ``sosfilt`` with its state carried between blocks.

    The state starts at the steady state of the first sample of a segment, so a DC offset (raw ADC
    values, electrode potentials) gives no start-up transient. It restarts on ``gap_before > 0`` or
    a block that does not follow the previous one.

    Parameters
    ----------
    sample_rate_hz : float
        Sample rate of the blocks.
    high_pass_hz, low_pass_hz : float
        See :func:`design_emg_band`.
    order : int
        See :func:`design_emg_band`.

    Raises
    ------
    ValueError
        See :func:`design_emg_band`.
    """

    def __init__(
        self,
        sample_rate_hz: float,
        high_pass_hz: float = DEFAULT_HIGH_PASS_HZ,
        low_pass_hz: float = DEFAULT_LOW_PASS_HZ,
        order: int = 4,
    ) -> None:
        self.band = design_emg_band(sample_rate_hz, high_pass_hz, low_pass_hz, order)
        self._steady_state = signal.sosfilt_zi(self.band.sos)  # (n_sections, 2) for a unit step
        self._filter = SosStream(self.band.sos)
        self._next_index: int | None = None

    def reset(self) -> None:
        """Forget the filter state; the next block starts a new segment."""
        self._filter.reset()
        self._next_index = None

    def process(self, block: Block) -> Block:
        """Filter one block.

        Parameters
        ----------
        block : Block
            Raw sEMG in uV, shape (n_channels, n_samples), at ``sample_rate_hz``. Samples must be
            finite: split a block at NaN/inf and mark a gap (:class:`biofeed.dsp.quality.FiniteSplitter`).

        Returns
        -------
        Block
            Band-passed sEMG in uV, same shape, indices and gap.
        """
        check_rate(block, self.band.sample_rate_hz)
        data = block.data
        if not np.isfinite(data).all():
            raise ValueError(
                "block holds NaN or inf samples: split it at them and mark a gap first "
                "(biofeed.dsp.quality.FiniteSplitter)"
            )
        if starts_segment(block, self._next_index):
            self._filter.reset()
        self._next_index = block.end_index
        if block.n_samples == 0:
            return block
        state = self._filter.state
        if state is None or state.shape[0] != data.shape[0]:
            self._filter.start(self._steady_state[None, :, :] * data[:, 0, None, None])
        filtered = self._filter.process(data)
        return Block(block.info, filtered, block.first_index, block.gap_before, block.received_at)
