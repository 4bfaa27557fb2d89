import numpy as np
import pytest

from biofeed.blocks import Block
from biofeed.dsp.stage import check_rate, starts_segment
from tests.dsp.synthetic_emg import emg_info


def test_starts_segment():
    block = Block(emg_info(1000.0), np.zeros((1, 10)), 100)
    assert starts_segment(block, None)
    assert not starts_segment(block, 100)
    assert starts_segment(block, 90)
    assert starts_segment(Block(block.info, block.data, 100, gap_before=3), 100)


def test_check_rate():
    block = Block(emg_info(1000.0), np.zeros((1, 10)), 0)
    check_rate(block, 1000.0)
    with pytest.raises(ValueError, match=r"2000\.0 Hz"):
        check_rate(block, 2000.0)
