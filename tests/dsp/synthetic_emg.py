"""Synthetic sEMG with known truth for the dsp tests: a band-limited Gaussian carrier times a scripted
activation envelope (uV RMS), plus white sensor noise whose RMS in the EMG band is known."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
from scipy import signal

from biofeed.blocks import Block, ChannelInfo, ChannelKind, StreamInfo
from biofeed.dsp.filters import design_emg_band

__all__ = ["carrier", "emg_info", "in_band_noise", "ramp_envelope", "random_cuts", "split_blocks", "synthetic_emg"]

CARRIER_BAND_HZ = (40.0, 200.0)


def emg_info(sample_rate_hz: float, n_channels: int = 1) -> StreamInfo:
    channels = tuple(ChannelInfo(f"ch{c}", ChannelKind.EMG, "uV") for c in range(n_channels))
    return StreamInfo("emg", sample_rate_hz, channels)


def carrier(n_samples: int, sample_rate_hz: float, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Unit-RMS Gaussian noise shaped by a 2nd-order 40-200 Hz band-pass (most sEMG power)."""
    sos = signal.butter(2, CARRIER_BAND_HZ, btype="bandpass", fs=sample_rate_hz, output="sos")
    shaped = signal.sosfilt(sos, rng.standard_normal(n_samples + 2000))[2000:]
    return shaped / shaped.std()


def in_band_noise(n_samples: int, sample_rate_hz: float, noise_floor_uv: float, rng: np.random.Generator):
    """White noise whose RMS after the default EMG band-pass is ``noise_floor_uv``."""
    band = design_emg_band(sample_rate_hz)
    scale = noise_floor_uv * np.sqrt((sample_rate_hz / 2.0) / band.noise_bandwidth_hz())
    return scale * rng.standard_normal(n_samples)


def synthetic_emg(
    activation_uv: npt.ArrayLike, sample_rate_hz: float, seed: int, noise_floor_uv: float = 1.5, offset_uv: float = 0.0
) -> npt.NDArray[np.float64]:
    """sEMG of shape (n_channels, n_samples): carrier x activation (uV RMS) + in-band noise (+ DC offset)."""
    activation = np.atleast_2d(np.asarray(activation_uv, dtype=np.float64))
    rng = np.random.default_rng(seed)
    rows = [
        carrier(activation.shape[1], sample_rate_hz, rng) * row
        + in_band_noise(activation.shape[1], sample_rate_hz, noise_floor_uv, rng)
        + offset_uv
        for row in activation
    ]
    return np.vstack(rows)


def ramp_envelope(
    sample_rate_hz: float, points: list[tuple[float, float]], duration_s: float
) -> npt.NDArray[np.float64]:
    """Piecewise-linear activation through (time_s, uV) points, held at the ends."""
    t = np.arange(round(duration_s * sample_rate_hz)) / sample_rate_hz
    times, values = zip(*points, strict=True)
    return np.interp(t, times, values)


def split_blocks(info: StreamInfo, data: npt.NDArray[np.float64], cuts: list[int], first_index: int = 0) -> list[Block]:
    """Blocks cutting ``data`` at the given sample positions (sorted, unique, inside the signal)."""
    edges = [0, *cuts, data.shape[1]]
    return [Block(info, data[:, a:b], first_index + a) for a, b in itertools.pairwise(edges)]


def random_cuts(n_samples: int, n_cuts: int, rng: np.random.Generator) -> list[int]:
    """Sorted unique cut positions in (0, n_samples)."""
    return sorted({int(x) for x in rng.integers(1, n_samples, size=n_cuts)})
