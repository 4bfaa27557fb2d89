"""The live pipeline: its events equal `biofeed analyze` of the same recording; verdicts match the
simulator's ground truth for the pandiculation scenarios."""

from __future__ import annotations

import json

import numpy as np
import pytest

from biofeed.analysis import analyze_recording
from biofeed.blocks import Block, ChannelInfo, ChannelKind, StreamInfo
from biofeed.pipeline import BlockCoalescer, Pipeline
from biofeed.record.reader import open_recording
from biofeed.record.writer import RecordingWriter
from biofeed.runner import Acquisition
from biofeed.sim.device import SimulatedDevice
from biofeed.sim.outputs import write_recording
from biofeed.sources.sim import SimSource

ENVELOPE = ("type", "stream", "channel", "sample_index", "time_s")


def _trial_events(path) -> list[dict]:
    return [e for e in open_recording(path).events() if e["type"] == "trial"]


def test_live_events_equal_the_analysis_of_the_recording(tmp_path):
    """Streaming equals offline: the live pipeline, fed 10 ms packets, writes exactly the trials that
    `analyze` finds when it replays the recorded frames in 1 s blocks."""
    device = SimulatedDevice("mixed", seed=4, duration_s=150.0)
    with RecordingWriter(tmp_path / "rec", source_url=device.url) as recorder:
        result = Acquisition(SimSource(device, speed=0.0), recorder=recorder, pipeline=Pipeline()).run()
    assert result.error is None
    live = _trial_events(tmp_path / "rec")
    assert live, "the scenario has contractions in its first 150 s"
    offline = analyze_recording(tmp_path / "rec")
    contractions = [c for channel in offline["channels"] for c in channel["contractions"]]
    live_contractions = [{k: v for k, v in e.items() if k not in ENVELOPE} for e in live]
    key = json.dumps
    assert sorted(map(key, live_contractions)) == sorted(map(key, contractions))
    for event in live:
        assert event["sample_index"] / 2000.0 == pytest.approx(event["time_s"])  # the device started at 0


@pytest.mark.parametrize(("scenario", "seed"), [("pandiculation", 0), ("pandiculation-poor", 1)])
def test_scenarios_get_the_verdicts_of_their_ground_truth(tmp_path, scenario, seed):
    device = SimulatedDevice(scenario, seed=seed)
    truth = device.truth()
    write_recording(device, tmp_path / "rec")
    analysis = analyze_recording(tmp_path / "rec")
    for channel in analysis["channels"]:
        expected = truth["channels"][channel["name"]]["contractions"]
        found = channel["contractions"]
        assert [t["verdict"] for t in found] == [t["expected_verdict"] for t in expected], channel["name"]
        for got, want in zip(found, expected, strict=True):
            assert got["onset_s"] == pytest.approx(want["onset_s"], abs=0.1)
        if any(t["rebursts"] for t in expected):  # re-bracing is seen, though not every re-burst is counted
            assert sum(t["rebursts"] for t in found) >= 1
        assert channel["noise_floor_uv"] == pytest.approx(truth["noise_floor_uv"], rel=0.15)
    assert _trial_events(tmp_path / "rec") != []  # the recorder wrote them live too


def _stream(fs_hz: float = 2000.0) -> StreamInfo:
    return StreamInfo("emg", fs_hz, (ChannelInfo("a", ChannelKind.EMG, "uV"),))


def test_coalescer_merges_contiguous_blocks_and_never_across_a_gap():
    info = _stream(100.0)
    coalescer = BlockCoalescer(0.5)
    blocks = [Block(info, np.full((1, 10), k, float), 10 * k) for k in range(4)]
    gap = Block(info, np.ones((1, 10)), 60, gap_before=20)
    out = [b for block in [*blocks, gap] for b in coalescer.add(block)] + coalescer.flush()
    assert [(b.first_index, b.n_samples, b.gap_before) for b in out] == [(0, 40, 0), (60, 10, 20)]
    assert np.array_equal(out[0].data[0], np.repeat(np.arange(4.0), 10))


def test_pipeline_refuses_a_negative_coalescing_span():
    with pytest.raises(ValueError, match="coalesce_s"):
        Pipeline(coalesce_s=-1)
