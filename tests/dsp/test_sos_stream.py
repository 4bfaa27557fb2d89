"""SosStream: scipy's sosfilt kernel without its per-call checks, bit for bit the public sosfilt."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import signal

from biofeed.dsp import sos_stream
from biofeed.dsp.sos_stream import SosStream


def _sos() -> np.ndarray:
    band = signal.butter(4, [30.0, 450.0], btype="bandpass", fs=2000.0, output="sos")
    notch = signal.tf2sos(*signal.iirnotch(50.0, 30.0, fs=2000.0))
    return np.vstack([band, notch])


@pytest.mark.parametrize("kernel", ["compiled", "public"])
def test_streaming_in_random_blocks_equals_sosfilt_bit_for_bit(kernel, monkeypatch):
    if kernel == "public":
        monkeypatch.setattr(sos_stream, "_KERNEL", sos_stream._public_kernel)
    rng = np.random.default_rng(3)
    sos = _sos()
    x = rng.standard_normal((3, 5000)) * 10 + 100.0
    zi = signal.sosfilt_zi(sos)[:, None, :] * x[None, :, 0, None]
    whole, _ = signal.sosfilt(sos, x, axis=1, zi=zi)
    stream = SosStream(sos)
    stream.start(np.swapaxes(zi, 0, 1))
    cuts = [0, *sorted(rng.choice(np.arange(1, 5000), 60, replace=False).tolist()), 5000]
    pieces = [stream.process(x[:, a:b]) for a, b in itertools.pairwise(cuts)]
    assert np.array_equal(np.concatenate(pieces, axis=1), whole)
    assert not pieces[0].flags.writeable


def test_no_state_starts_from_zero_and_an_empty_block_passes():
    sos = _sos()
    x = np.random.default_rng(0).standard_normal((2, 300))
    stream = SosStream(sos)
    assert stream.process(x[:, :0]).shape == (2, 0)
    assert np.array_equal(stream.process(x), signal.sosfilt(sos, x, axis=1))
    stream.reset()
    assert np.array_equal(stream.process(x), signal.sosfilt(sos, x, axis=1))


def test_a_bad_sos_is_refused():
    with pytest.raises(ValueError, match="n_sections, 6"):
        SosStream(np.zeros((2, 5)))
