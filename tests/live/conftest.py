"""Live-view tests run Qt offscreen and share simulated sessions recorded once per test run.

A *tape* is every item an acquisition handed its sinks, in order. The sessions are shortened so the
suite stays fast (docs/live.md, "Tests"):

- ``good``: ``pandiculation`` with a 3 uV noise floor, 150 s. Its first trial (6 -> 4 uV) meets
  all three criteria there (4 uV <= 1.5 x 3 uV), with persistence windows 60-70 s after the release:
  a ``true`` verdict in a third of the full scenario's time (whose first true trial is its third).
- ``poor``: ``pandiculation-poor``, 110 s: the first trial's rest returns to the old level, ``none``.
- ``mixed``: the whole ``mixed`` scenario (556 s, IMUs): two flexion-relaxation cycles standing, lying
  down, three pandiculations lying, standing up (a movement, not a trial).

The tapes come from the real runner and pipeline over ``sim://...?speed=0``, with the pipeline's
batch coalescing (1 s blocks), which gives the same events (tested in tests/test_pipeline.py).
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Sequence

import pytest

from biofeed.blocks import AnalysisEvent, Block, DeviceInfo, DeviceStatus, LinkEvent, Marker
from biofeed.live.trunk import TrunkAngleSink
from biofeed.pipeline import BATCH_COALESCE_S, Pipeline
from biofeed.runner import Acquisition
from biofeed.sinks.ring_buffer import RingBufferSink
from biofeed.sources import open_source

Item = Block | DeviceInfo | Marker | DeviceStatus | LinkEvent | AnalysisEvent

GOOD_URL = "sim://pandiculation?speed=0&duration=150&noise=3"
POOR_URL = "sim://pandiculation-poor?speed=0&duration=110"
MIXED_URL = "sim://mixed?speed=0"


class TapeSink:
    """Keeps every item it is given."""

    def __init__(self) -> None:
        self.items: list[Item] = []

    def write(self, item: Item) -> None:
        self.items.append(item)

    def close(self) -> None:
        pass


def record_tape(url: str, *, pipeline: bool = True) -> list[Item]:
    """Every item ``url``'s acquisition hands its sinks: through the display pipeline, or raw."""
    tape = TapeSink()
    stages = Pipeline(display=True, coalesce_s=BATCH_COALESCE_S) if pipeline else None
    Acquisition(open_source(url), sinks=[tape], pipeline=stages).run()
    return tape.items


def item_time_s(item: Item) -> float | None:
    """Device seconds of a raw EMG block's end (None for anything else)."""
    if isinstance(item, Block) and item.info.name == "emg":
        return item.end_index / item.info.sample_rate_hz
    return None


class TapePlayer:
    """Writes a tape's items to a ring buffer (and with ``trunk`` a trunk-angle stage), as the runner would."""

    def __init__(self, tape: Sequence[Item], ring: RingBufferSink, *, trunk: bool = False) -> None:
        self.tape = tape
        self.ring = ring
        self.trunk = TrunkAngleSink(ring) if trunk else None
        self.position = 0

    def play(self, until_s: float | None = None) -> None:
        """Play on to the first raw EMG block ending at or past ``until_s`` (None: to the end, then close)."""
        while self.position < len(self.tape):
            item = self.tape[self.position]
            self.position += 1
            self.ring.write(item)
            if self.trunk is not None:
                self.trunk.write(item)
            time_s = item_time_s(item)
            if until_s is not None and time_s is not None and time_s >= until_s:
                return
        self.ring.close()


@pytest.fixture(scope="session")
def good_tape() -> list[Item]:
    return record_tape(GOOD_URL)


@pytest.fixture(scope="session")
def poor_tape() -> list[Item]:
    return record_tape(POOR_URL)


@pytest.fixture(scope="session")
def mixed_tape() -> list[Item]:
    return record_tape(MIXED_URL)
