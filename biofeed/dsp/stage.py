"""The Stage interface and the two checks every streaming stage makes on a block.

A stage turns blocks into blocks (or into events, for detectors), carries its state explicitly, and
is chunk-invariant: a signal cut into blocks anywhere gives the same output as the signal whole. A
stage starts a new segment, forgetting its filter state, on ``gap_before > 0`` and on a block that
does not follow the previous one.
"""

from __future__ import annotations

from typing import Protocol

from biofeed.blocks import Block

__all__ = ["Stage", "check_rate", "starts_segment"]


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
