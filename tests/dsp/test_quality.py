import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeed.blocks import Block
from biofeed.dsp.filters import design_emg_band
from biofeed.dsp.quality import (
    CLIP_BRIDGE_S,
    FaultKind,
    FiniteSplitter,
    SignalFault,
    SignalFaultDetector,
    estimate_rails,
    sample_rate_warnings,
)
from tests.dsp.synthetic_emg import carrier, emg_info, split_blocks

FS = 1000.0
INFO = emg_info(FS, 2)


def test_splitter_cuts_non_finite_samples_out_as_gaps():
    data = np.arange(20.0).reshape(2, 10)
    data[0, 3:5] = np.nan
    data[1, 9] = np.inf
    splitter = FiniteSplitter()
    pieces = splitter.process(Block(INFO, data, 100))
    assert [(p.first_index, p.n_samples, p.gap_before) for p in pieces] == [(100, 3, 0), (105, 4, 2)]
    # the trailing inf and a block that is all NaN carry into the next finite sample
    assert splitter.process(Block(INFO, np.full((2, 3), np.nan), 110)) == []
    (after,) = splitter.process(Block(INFO, np.ones((2, 4)), 113, gap_before=5))
    assert (after.first_index, after.gap_before) == (113, 1 + 3 + 5)
    clean = Block(INFO, np.ones((2, 4)), 117)
    assert splitter.process(clean) == [clean]


def signal_with_faults():
    rng = np.random.default_rng(1)
    data = rng.normal(0.0, 5.0, size=(2, 3000)).round(1)  # quantised: short repeats happen
    data[0, 500:520] = np.nan
    data[1, 1000:1400] = 7.0  # 0.4 s flat: a lead off
    data[1, 2000:2100] = 3.0  # 0.1 s flat: too short to flag
    data[0, 2500:2504] = 100.0  # at the rail
    return data


FAULTS = [
    SignalFault(0, FaultKind.NON_FINITE, 500, 520, FS),
    SignalFault(1, FaultKind.FLAT, 1000, 1400, FS),
    SignalFault(0, FaultKind.FLAT, 2500, 2504, FS),
    SignalFault(0, FaultKind.CLIPPED, 2500, 2504, FS),
]


def all_faults(detector, blocks):
    found = [f for b in blocks for f in detector.process(b)] + detector.finish()
    return sorted(found, key=lambda f: (f.start_index, f.kind.value))


def test_faults_are_flagged_with_their_span():
    detector = SignalFaultDetector(FS, flat_s=0.002, rails_uv=(-100.0, 100.0))
    found = all_faults(detector, [Block(INFO, signal_with_faults(), 0)])
    long_flat = SignalFaultDetector(FS, rails_uv=(-100.0, 100.0))
    default = all_faults(long_flat, [Block(INFO, signal_with_faults(), 0)])
    assert default == sorted([FAULTS[0], FAULTS[1], FAULTS[3]], key=lambda f: (f.start_index, f.kind.value))
    assert set(FAULTS) <= set(found)
    assert FAULTS[1].start_s == 1.0 and FAULTS[1].overlaps(1399, 2000) and not FAULTS[1].overlaps(1400, 2000)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 2999), max_size=40, unique=True))
def test_chunked_equals_whole(cuts):
    data = signal_with_faults()
    whole = all_faults(SignalFaultDetector(FS, rails_uv=(-100.0, 100.0)), [Block(INFO, data, 0)])
    detector = SignalFaultDetector(FS, rails_uv=(-100.0, 100.0))
    assert all_faults(detector, split_blocks(INFO, data, sorted(cuts))) == whole


def test_settled_index_waits_for_an_open_run():
    detector = SignalFaultDetector(FS)
    data = np.random.default_rng(2).normal(size=(2, 1000))
    data[1, 900:] = 1.0
    detector.process(Block(INFO, data, 0))
    assert detector.settled_index() == 900
    assert detector.open_faults() == []  # 100 ms of flat line: not yet a fault


def test_rails_are_estimated_from_repeated_extremes():
    # band-limited like sEMG, so a clipped stretch holds the rail for several samples
    data = 50 * carrier(5000, FS, np.random.default_rng(3))[None, :]
    assert estimate_rails(data) is None
    clipped = np.clip(data, -80.0, 120.0)
    assert estimate_rails(clipped) == (-80.0, 120.0)
    one_sided = np.minimum(data, 120.0)
    low, high = estimate_rails(one_sided)
    assert low == -np.inf and high == 120.0


def test_low_rate_warning():
    assert sample_rate_warnings(design_emg_band(1000.0)) == []
    (warning,) = sample_rate_warnings(design_emg_band(250.0))
    assert "30-112.5 Hz" in warning


def test_bad_settings():
    with pytest.raises(ValueError, match="flat_s"):
        SignalFaultDetector(FS, flat_s=0.0)
    with pytest.raises(ValueError, match="rails_uv"):
        SignalFaultDetector(FS, rails_uv=(5.0, -5.0))


def reassemble(pieces, n_samples):
    """The stream the pieces describe: samples at their indices, NaN in the holes; checks the gaps add up."""
    out = np.full((2, n_samples), np.nan)
    expected = 0
    for p in pieces:
        assert p.first_index - expected == p.gap_before
        out[:, p.first_index : p.end_index] = p.data
        expected = p.end_index
    return out


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 2999), max_size=40, unique=True))
def test_splitter_describes_the_same_stream_in_any_chunking(cuts):
    data = signal_with_faults()
    data[:, :3] = np.nan  # a hole at the very start
    whole = FiniteSplitter().process(Block(INFO, data, 0))
    splitter = FiniteSplitter()
    pieces = [p for b in split_blocks(INFO, data, sorted(cuts)) for p in splitter.process(b)]
    np.testing.assert_array_equal(reassemble(pieces, 3000), reassemble(whole, 3000))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 2999), max_size=40, unique=True))
def test_clipped_runs_closer_than_the_bridge_are_one_fault(cuts):
    data = np.zeros((2, 3000))
    bridge = round(CLIP_BRIDGE_S * FS)
    data[0, [500, 501, 502 + bridge, 1500, 1502 + bridge + 1]] = 100.0  # a gap of bridge samples, then bridge + 1
    expected = [
        SignalFault(0, FaultKind.CLIPPED, 500, 503 + bridge, FS),
        SignalFault(0, FaultKind.CLIPPED, 1500, 1501, FS),
        SignalFault(0, FaultKind.CLIPPED, 1502 + bridge + 1, 1503 + bridge + 1, FS),
    ]
    whole = all_faults(SignalFaultDetector(FS, rails_uv=(-100.0, 100.0)), [Block(INFO, data, 0)])
    chunked = all_faults(SignalFaultDetector(FS, rails_uv=(-100.0, 100.0)), split_blocks(INFO, data, sorted(cuts)))
    assert [f for f in whole if f.kind is FaultKind.CLIPPED] == expected
    assert [f for f in chunked if f.kind is FaultKind.CLIPPED] == expected
