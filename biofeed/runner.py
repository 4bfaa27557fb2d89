"""The acquisition loop: source -> chunks -> frames -> recording + decoder -> sinks, in one thread.

The recording is fed the raw frames before anything decodes them, so whatever arrived is kept
even when it is damaged. A sink that raises is logged and detached; acquisition goes on.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from biofeed.blocks import AnalysisEvent, Block, DeviceInfo, DeviceStatus, LinkEvent, LinkState, Marker
from biofeed.errors import BiofeedError, ProtocolVersionError, RecordingError
from biofeed.pipeline import Pipeline, PipelineOutput
from biofeed.protocol.decoder import Decoder, DecoderStats
from biofeed.protocol.packets import PROTOCOL_VERSION
from biofeed.record.writer import RecordingWriter
from biofeed.sources.base import Source

__all__ = ["Acquisition", "AcquisitionResult", "Sink"]

log = logging.getLogger(__name__)

Item = Block | DeviceInfo | Marker | DeviceStatus
SinkItem = Item | LinkEvent | AnalysisEvent

_REFUSE_AFTER_PACKETS = 3
"""Packets of another major version, with none of ours, before the device is refused."""


class Sink(Protocol):
    """Receives every decoded item. A sink that raises is detached."""

    def write(self, item: SinkItem) -> None:
        """Take one item: a decoded item, a display block, an analysis event or a link change."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...


@dataclass
class AcquisitionResult:
    """How an acquisition ended.

    Attributes
    ----------
    stats : DecoderStats
        Counts of frames, samples, gaps and losses.
    device : DeviceInfo or None
        The device's last INFO.
    error : BiofeedError or None
        Why acquisition stopped early (device lost, incompatible firmware), None when it ended
        normally (duration reached, source exhausted, stopped by the user).
    detached_sinks : list of str
        Sinks detached because they raised.
    reconnects : int
        Times the link came back after it was lost.
    """

    stats: DecoderStats
    device: DeviceInfo | None
    error: BiofeedError | None = None
    detached_sinks: list[str] = field(default_factory=list)
    reconnects: int = 0


class Acquisition:
    """Runs one source into a recording and sinks until a duration, the source's end, or stop().

    Parameters
    ----------
    source : Source
        Where chunks come from.
    recorder : RecordingWriter or None
        Gets every frame as received, gap events, and the device INFO.
    sinks : sequence of Sink
        Get every decoded item, in order.
    duration_s : float or None
        Stop once every stream holds this many device seconds (None: run until stopped).
    pipeline : Pipeline or None
        Gets every decoded item; its events go to the recording's ``events.jsonl``. A pipeline that
        raises is detached like a sink: the recording goes on.
    """

    def __init__(
        self,
        source: Source,
        *,
        recorder: RecordingWriter | None = None,
        sinks: Sequence[Sink] = (),
        duration_s: float | None = None,
        pipeline: Pipeline | None = None,
    ) -> None:
        if duration_s is not None and not duration_s > 0:
            raise ValueError(f"duration_s must be positive, got {duration_s}")
        self.source = source
        self.recorder = recorder
        self.duration_s = duration_s
        self._sinks = list(sinks)
        self.pipeline = pipeline
        self._decoder = Decoder()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._result: AcquisitionResult | None = None
        self._thread: threading.Thread | None = None
        self._detached: list[str] = []
        self._crash: BaseException | None = None
        self._link_state: LinkState | None = None
        self._reconnects = 0

    # -- control ---------------------------------------------------------------------------

    def start(self) -> None:
        """Run in a worker thread; :meth:`wait` returns the result."""
        self._thread = threading.Thread(target=self._run_in_thread, name="biofeed-acquisition", daemon=True)
        self._thread.start()

    def _run_in_thread(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # handed to wait(), which re-raises it in the caller's thread
            self._crash = exc

    def stop(self) -> None:
        """Ask the loop to end; safe from any thread."""
        self._stop.set()
        self.source.close()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait up to ``timeout_s`` for the worker thread; True once it has ended."""
        if self._thread is None:
            raise RuntimeError("start() the acquisition before joining it")
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def wait(self) -> AcquisitionResult:
        """Block until the worker thread has ended and return how it ended.

        Raises
        ------
        RuntimeError
            When :meth:`start` was not called.
        Exception
            Whatever unexpected error ended the worker thread, re-raised here.
        """
        if self._thread is None:
            raise RuntimeError("start() the acquisition before waiting for it")
        self._thread.join()
        if self._crash is not None:
            raise self._crash
        if self._result is None:
            raise RuntimeError("the acquisition thread ended without a result")
        return self._result

    def snapshot(self) -> DecoderStats:
        """A consistent copy of the counts so far, for a status line."""
        with self._lock:
            return copy.deepcopy(self._decoder.stats)

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> AcquisitionResult:
        """Acquire in the calling thread until done; never raises a BiofeedError (it is returned)."""
        error: BiofeedError | None = None
        try:
            for chunk in self.source.chunks():
                if chunk.link_event is not None:
                    self._on_link(chunk.link_event, chunk.received_at)
                if chunk.data:
                    self._take(chunk.data, chunk.received_at)
                elif self.recorder is not None:
                    self.recorder.sync_if_due()  # an idle source still gets its last frames to disk
                if self._stop.is_set() or self._reached_duration():
                    break
        except BiofeedError as exc:
            error = exc
            self._note_error(exc)
        finally:
            self.source.close()
            if self.pipeline is not None:
                self._run_pipeline(self.pipeline.finish)
            for sink in self._sinks:
                self._guard(sink, sink.close)
        self._result = AcquisitionResult(
            self._decoder.stats, self._decoder.device_info, error, self._detached, self._reconnects
        )
        return self._result

    def _on_link(self, event: LinkEvent, received_at: float) -> None:
        with self._lock:
            if event.state is LinkState.CONNECTED and self._link_state is not None:
                self._reconnects += 1
            self._link_state = event.state
        for sink in list(self._sinks):
            self._guard(sink, sink.write, event)
        if self.recorder is not None:
            self.recorder.append_event(
                {
                    "type": "link",
                    "state": event.state.value,
                    "detail": event.detail,
                    "attempt": event.attempt,
                    "host_time": received_at,
                }
            )

    @property
    def link_state(self) -> LinkState | None:
        """The source's last reported link state (None for sources that report none)."""
        return self._link_state

    @property
    def reconnects(self) -> int:
        """Times the link came back after it was lost."""
        return self._reconnects

    def _note_error(self, exc: BiofeedError) -> None:
        if self.recorder is None or isinstance(exc, RecordingError):
            return  # a recording that failed to write cannot take the note either
        try:
            self.recorder.append_event({"type": "acquisition_error", "error": type(exc).__name__, "reason": str(exc)})
        except RecordingError:
            log.warning("could not note %s in the recording", type(exc).__name__)

    def _take(self, data: bytes, received_at: float) -> None:
        with self._lock:
            frames = self._decoder.split(data)
            if self.recorder is not None:  # every frame stored as received before any is decoded
                for frame in frames:
                    self.recorder.append_frame(frame, received_at)
            items = self._decoder.decode_frames(frames, received_at)
        self._check_version()
        for item in items:
            self._route(item)

    def _run_pipeline(self, step: Callable[[], PipelineOutput]) -> None:
        try:
            output = step()
        except Exception as exc:
            log.warning("the analysis pipeline failed and was detached; recording goes on (%s)", exc)
            log.debug("pipeline failure", exc_info=True)
            self.pipeline = None
            self._detached.append("Pipeline")
            output = PipelineOutput(events=[{"type": "sink_detached", "sink": "Pipeline"}])
        if self.recorder is not None:
            for event in output.events:
                self.recorder.append_event(event)
        for sink in list(self._sinks):
            for block in output.display:
                self._guard(sink, sink.write, block)
            for event in output.events:
                self._guard(sink, sink.write, AnalysisEvent(event))

    def _route(self, item: Item) -> None:
        pipeline = self.pipeline
        if pipeline is not None:
            self._run_pipeline(lambda: pipeline.process(item))
        if self.recorder is not None:
            if isinstance(item, DeviceInfo):
                self.recorder.set_device_info(item)
            elif isinstance(item, Block) and item.gap_before:
                fs = item.info.sample_rate_hz
                gap_start = item.first_index - item.gap_before
                self.recorder.append_event(
                    {
                        "type": "gap",
                        "stream": item.info.name,
                        "channel": None,
                        "sample_index": gap_start,
                        "time_s": gap_start / fs,
                        "n_samples_lost": item.gap_before,
                    }
                )
        for sink in list(self._sinks):
            self._guard(sink, sink.write, item)

    def _guard(self, sink: Sink, method: Any, *args: Any) -> None:
        try:
            method(*args)
        except Exception as exc:
            name = type(sink).__name__
            log.warning("sink %s failed and was detached; acquisition goes on (%s)", name, exc)
            log.debug("sink failure", exc_info=True)
            if sink in self._sinks:
                self._sinks.remove(sink)
                self._detached.append(name)
                if self.recorder is not None:
                    self.recorder.append_event({"type": "sink_detached", "sink": name})

    def _check_version(self) -> None:
        stats = self._decoder.stats
        if stats.packets == 0 and stats.refused_major >= _REFUSE_AFTER_PACKETS and stats.refused_version:
            major, minor = stats.refused_version
            raise ProtocolVersionError(
                f"the device speaks wire protocol {major}.{minor}; this biofeed speaks "
                f"{PROTOCOL_VERSION[0]}.x: update the firmware or biofeed"
            )

    def _reached_duration(self) -> bool:
        if self.duration_s is None or self._decoder.device_info is None:
            return False
        streams = self._decoder.stats.streams
        expected = {s.name for s in self._decoder.device_info.streams}
        if not expected or not expected <= set(streams):
            return False
        for name in expected:
            s = streams[name]
            if s.first_index is None or s.end_index is None:
                return False
            if (s.end_index - s.first_index) < self.duration_s * s.sample_rate_hz:
                return False
        return True
