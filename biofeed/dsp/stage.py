"""The Stage interface, the two checks every streaming stage makes on a block, and joining blocks.

A stage turns blocks into blocks (or into events, for detectors), carries its state explicitly, and
is chunk-invariant: a signal cut into blocks anywhere gives the same output as the signal whole. A
stage starts a new segment, forgetting its filter state, on ``gap_before > 0`` and on a block that
does not follow the previous one.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from biofeed.blocks import Block

__all__ = ["Stage", "check_rate", "join_blocks", "starts_segment"]


class Stage(Protocol):
    """A streaming block-to-block stage."""

    def process(self, block: Block) -> Block:
        """Process one block; the output has the input's first_index and n_samples unless documented."""
        ...

    def reset(self) -> None:
        """Forget all state."""
        ...


def check_rate(block: Block, sample_rate_hz: float) -> None:
    """Raise ValueError when a block's stream rate is not the rate a stage was built for."""
    if block.info.sample_rate_hz != sample_rate_hz:
        raise ValueError(
            f"stage built for {sample_rate_hz} Hz got a block of stream {block.info.name!r} at "
            f"{block.info.sample_rate_hz} Hz"
        )


def starts_segment(block: Block, next_index: int | None) -> bool:
    """True when ``block`` cannot continue the previous one (first block, a gap, or a jump in index).

    Parameters
    ----------
    block : Block
        The incoming block.
    next_index : int or None
        ``end_index`` of the previous block, None before the first.
    """
    return block.gap_before > 0 or block.first_index != next_index


def join_blocks(run: list[Block]) -> Block:
    """Contiguous blocks of one stream as one block (read-only data), the first itself when alone."""
    if len(run) == 1:
        return run[0]
    first = run[0]
    data = np.concatenate([b.data for b in run], axis=1)
    data.flags.writeable = False
    return Block(first.info, data, first.first_index, first.gap_before, first.received_at)
