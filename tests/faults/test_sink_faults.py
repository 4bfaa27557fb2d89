"""A sink or the analysis pipeline raising mid-recording: it is detached and logged, the recording goes on whole.

The sinks are the real ones with a failure injected where theirs would come from: the live
view's ring buffer (what the plot polls), the LSL outlet (pylsl's ``push_chunk`` raising), an
exporting sink whose disk fails, and the analysis :class:`~biofeed.pipeline.Pipeline`.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from biofeed.blocks import Block
from biofeed.pipeline import Pipeline
from biofeed.record.reader import open_recording
from biofeed.record.writer import RecordingWriter
from biofeed.runner import Acquisition, SinkItem
from biofeed.sim.device import SimulatedDevice
from biofeed.sinks.ring_buffer import RingBufferSink
from biofeed.sources.sim import SimSource
from tests.faults.wire import frames_of

FAIL_AT_WRITE = 50
"""Each failing sink raises on its 50th item (the first second or so of the run)."""


def _fail_on_call(method: Callable[..., Any], n: int, error: Exception) -> Callable[..., Any]:
    calls = [0]

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] >= n:
            raise error
        return method(*args, **kwargs)

    return failing


class ExportSink:
    """Writes each block's samples to a file, as an export-while-recording sink would; its disk fails."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("w")
        self.n_written = 0

    def write(self, item: SinkItem) -> None:
        self.n_written += 1
        if self.n_written >= FAIL_AT_WRITE:
            raise OSError(errno.EIO, "Input/output error", "export.csv")
        self._file.write(f"{item!r:.40}\n")

    def close(self) -> None:
        self._file.close()


class Counting:
    """A healthy sink: it must go on getting every item."""

    def __init__(self) -> None:
        self.n_emg_samples = 0

    def write(self, item: SinkItem) -> None:
        if isinstance(item, Block) and item.info.name == "emg":
            self.n_emg_samples += item.n_samples

    def close(self) -> None:
        pass


def test_failing_sinks_and_pipeline_are_detached_and_logged_and_the_recording_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ring = RingBufferSink()
    monkeypatch.setattr(ring, "write", _fail_on_call(ring.write, FAIL_AT_WRITE, RuntimeError("plot buffer broke")))
    sinks: list[Any] = [ring, ExportSink(tmp_path / "export.csv")]
    pylsl = pytest.importorskip("pylsl", reason="the LSL outlet needs pylsl (pip install 'biofeed[lsl]')")
    from biofeed.sinks.lsl_outlet import LslOutletSink

    monkeypatch.setattr(
        pylsl.StreamOutlet,
        "push_chunk",
        _fail_on_call(pylsl.StreamOutlet.push_chunk, 20, RuntimeError("LSL outlet: connection reset")),
    )
    sinks.append(LslOutletSink(name_prefix="biofeed-faults-"))
    healthy = Counting()
    sinks.append(healthy)
    pipeline = Pipeline()
    monkeypatch.setattr(
        pipeline, "process", _fail_on_call(pipeline.process, 2 * FAIL_AT_WRITE, ValueError("analysis broke"))
    )

    device = SimulatedDevice("pandiculation", seed=6, duration_s=4.0)
    sent = frames_of(SimulatedDevice("pandiculation", seed=6, duration_s=4.0).frames_until(4.0))
    caplog.set_level(logging.WARNING, logger="biofeed.runner")
    with RecordingWriter(tmp_path / "rec", source_url=device.url) as recorder:
        result = Acquisition(SimSource(device, speed=0.0), recorder=recorder, sinks=sinks, pipeline=pipeline).run()
        recorder.close()

    assert result.error is None
    assert sorted(result.detached_sinks) == ["ExportSink", "LslOutletSink", "Pipeline", "RingBufferSink"]
    recording = open_recording(tmp_path / "rec")
    assert [r.frame for r in recording.frames()] == sent  # the recording holds every frame
    detached = [e["sink"] for e in recording.events() if e["type"] == "sink_detached"]
    assert sorted(detached) == sorted(result.detached_sinks)
    warnings = [r.getMessage() for r in caplog.records]
    for name, reason in [
        ("sink RingBufferSink", "plot buffer broke"),
        ("sink ExportSink", "Input/output error"),
        ("sink LslOutletSink", "connection reset"),
        ("the analysis pipeline", "analysis broke"),
    ]:
        assert any(m.startswith(f"{name} failed and was detached") and reason in m for m in warnings), name
    assert healthy.n_emg_samples == result.stats.streams["emg"].n_samples == 4 * 2000  # to the end
