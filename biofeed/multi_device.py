"""Several devices at once (left and right boards, an EMG board and an IMU board): one recording.

Each device runs its own :class:`~biofeed.runner.Acquisition` (its own worker thread, decoder,
pipeline and device folder of the recording), exactly as a single device would: the runner and the
decoder are unchanged, and every device folder reads as a single-device recording
(docs/recording-format.md, "Several devices"). What the devices share:

- the **sinks** (live view, LSL): each device's items reach them renamed by :class:`DeviceLabeller`
  (streams ``label.name``, e.g. ``left.emg``; the decoder and the device folder keep the device's
  own names), through a lock so that a sink sees one write at a time;
- the **timeline**: per device a :class:`~biofeed.timesync.ClockTracker` fits every stream's clock
  live, and a :class:`~biofeed.device_alignment.SharedEventDetector` keeps shared taps and sync
  markers; at the end the fits and the residual offsets go into the recording's ``recording.json``.

The only place stream names change is :class:`DeviceLabeller`; :func:`read_labelled_items` gives the
same decoded view of a finished recording, every device's items merged in order of arrival.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from biofeed.blocks import AnalysisEvent, Block, DeviceInfo, DeviceStatus, LinkEvent, Marker, StreamInfo
from biofeed.device_alignment import DeviceAlignment, SharedEventDetector, align_devices
from biofeed.errors import BiofeedError
from biofeed.pipeline import Pipeline
from biofeed.protocol.decoder import Decoder, DecoderStats, Item
from biofeed.record.reader import open_multi_device_recording
from biofeed.record.writer import MultiDeviceRecordingWriter, check_device_label
from biofeed.runner import Acquisition, AcquisitionResult, Sink
from biofeed.sources.base import Source, TimedChunk
from biofeed.sources.replay import ReplaySource
from biofeed.timesync import ClockFit, ClockTracker

__all__ = [
    "DeviceLabeller",
    "DeviceSpec",
    "LabelledSink",
    "MultiDeviceAcquisition",
    "MultiDeviceResult",
    "labelled_name",
    "open_multi_device_replay",
    "parse_device_specs",
    "read_labelled_items",
    "record_devices",
]

SinkItem = Item | LinkEvent | AnalysisEvent
_LABEL_SEPARATOR = "."
_MAX_CACHED_STREAMS = 256


@dataclass(frozen=True)
class DeviceSpec:
    """One device on the command line: ``LABEL=URL``, or a bare URL (labelled ``dev1``, ``dev2`` ...).

    Attributes
    ----------
    label : str
        The device's label.
    url : str
        Its source URL.
    """

    label: str
    url: str


def parse_device_specs(texts: Sequence[str]) -> tuple[DeviceSpec, ...]:
    """Parse ``--device`` values: ``left=ble://AA:BB:...``, ``sim://rest?seed=2`` ...

    A value is ``LABEL=URL`` when the text before its first ``=`` is a valid label
    (:func:`~biofeed.record.writer.check_device_label`) and what follows contains ``://``; otherwise
    it is a URL and its label is ``dev`` followed by its position (1, 2, ...).

    Raises
    ------
    ValueError
        No device, a repeated label, or a value that is not a URL.
    """
    if not texts:
        raise ValueError("give at least one --device")
    specs = []
    for position, text in enumerate(texts, start=1):
        label, separator, url = text.partition("=")
        if not (separator and "://" in url and "://" not in label and "?" not in label):
            label, url = f"dev{position}", text
        if "://" not in url:
            raise ValueError(f"{text!r} is not a device; expected [LABEL=]URL, e.g. left=ble://biofeed-01")
        specs.append(DeviceSpec(check_device_label(label), url))
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"device labels must differ, got {', '.join(labels)}")
    return tuple(specs)


def labelled_name(label: str, name: str) -> str:
    """The name of a device's stream in the decoded view of several devices: ``label.name``.

    A device-level marker or status (stream name ``""``) gets the label alone.
    """
    return f"{label}{_LABEL_SEPARATOR}{name}" if name else label


class DeviceLabeller:
    """Renames one device's items for the view shared by several devices (``emg`` -> ``left.emg``).

    Blocks keep their data, indices and receive times; only the stream description is swapped (one
    renamed :class:`StreamInfo` per stream, cached). Link events get ``label:`` before their detail,
    analysis events ``"device": label`` and a renamed ``stream``.

    Parameters
    ----------
    label : str
        The device's label.

    Raises
    ------
    ValueError
        An invalid label.
    """

    def __init__(self, label: str) -> None:
        self.label = check_device_label(label)
        self._streams: dict[int, tuple[StreamInfo, StreamInfo]] = {}

    def stream_info(self, info: StreamInfo) -> StreamInfo:
        """The renamed description of a stream."""
        cached = self._streams.get(id(info))
        if cached is not None and cached[0] is info:
            return cached[1]
        renamed = replace(info, name=labelled_name(self.label, info.name))
        if len(self._streams) >= _MAX_CACHED_STREAMS:
            self._streams.clear()
        self._streams[id(info)] = (info, renamed)  # holding info keeps its id from being reused
        return renamed

    def __call__(self, item: SinkItem) -> SinkItem:
        """Return the item as the shared view names it."""
        if isinstance(item, Block):
            return Block(self.stream_info(item.info), item.data, item.first_index, item.gap_before, item.received_at)
        if isinstance(item, DeviceInfo):
            return replace(item, streams=tuple(self.stream_info(s) for s in item.streams))
        if isinstance(item, Marker | DeviceStatus):
            return replace(item, stream_name=labelled_name(self.label, item.stream_name))
        if isinstance(item, LinkEvent):
            return replace(item, detail=f"{self.label}: {item.detail}" if item.detail else self.label)
        data = dict(item.data)
        if isinstance(data.get("stream"), str):
            data["stream"] = labelled_name(self.label, data["stream"])
        data["device"] = self.label
        return AnalysisEvent(data)


class _SharedSink:
    """A sink every device writes to: one write at a time; once it fails, it fails for all."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.lock = threading.Lock()
        self.failed = False


class LabelledSink:
    """One device's view of a shared sink: items renamed by the device's labeller, writes serialised.

    Closing it does nothing: the group closes each shared sink once, after every device ended.
    """

    def __init__(self, labeller: DeviceLabeller, shared: _SharedSink) -> None:
        self._labeller = labeller
        self._shared = shared

    def write(self, item: SinkItem) -> None:
        """Rename the item and hand it to the shared sink.

        Raises
        ------
        RuntimeError
            When the shared sink failed before (so this device's acquisition detaches it too).
        """
        shared = self._shared
        if shared.failed:
            raise RuntimeError(f"{type(shared.sink).__name__} failed on another device")
        renamed = self._labeller(item)
        with shared.lock:
            try:
                shared.sink.write(renamed)
            except Exception:
                shared.failed = True
                raise

    def close(self) -> None:
        """Nothing: the group closes the shared sink."""


class _LockedClockTracker:
    """A device's clock tracker, written by its acquisition thread and read by any other."""

    def __init__(self) -> None:
        self.tracker = ClockTracker()
        self.lock = threading.Lock()

    def write(self, item: SinkItem) -> None:
        with self.lock:
            self.tracker.write(item)

    def close(self) -> None:
        """Nothing to release."""

    def main_fits(self) -> dict[str, ClockFit]:
        with self.lock:
            fits = {name: self.tracker.main_fit(name) for name in self.tracker.stream_names}
        return {name: fit for name, fit in fits.items() if fit is not None}

    def host_time_s(self, stream_name: str, sample_index: int) -> float | None:
        with self.lock:
            return self.tracker.host_time_s(stream_name, sample_index)

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        with self.lock:
            return self.tracker.to_json()


@dataclass
class MultiDeviceResult:
    """How an acquisition of several devices ended.

    Attributes
    ----------
    results : dict of str to AcquisitionResult
        Per device label, as a single device's acquisition ends.
    alignment : DeviceAlignment
        The devices' residual offsets after their clock fits.
    """

    results: dict[str, AcquisitionResult]
    alignment: DeviceAlignment

    @property
    def errors(self) -> dict[str, BiofeedError]:
        """The devices that stopped early, with why."""
        return {label: r.error for label, r in self.results.items() if r.error is not None}


class MultiDeviceAcquisition:
    """Acquire several devices into one recording, each in its own worker thread.

    Parameters
    ----------
    sources : sequence of (str, Source)
        Per device its label and source, in order (the first is the alignment's reference).
    recorder : MultiDeviceRecordingWriter or None
        The recording; its labels must be the sources' labels.
    sinks : sequence of Sink
        Shared by every device; they get items with labelled stream names (``left.emg``).
    duration_s : float or None
        Each device stops once all its streams hold this many device seconds.
    pipeline_factory : callable returning Pipeline, or None
        Makes one analysis pipeline per device (its events go to that device's ``events.jsonl``).

    Raises
    ------
    ValueError
        No source, bad or repeated labels, labels that differ from the recorder's, a bad duration.

    Notes
    -----
    A device that stops early (lost, incompatible firmware) ends its own part; the others go on
    until their duration, their source's end or :meth:`stop`.
    """

    def __init__(
        self,
        sources: Sequence[tuple[str, Source]],
        *,
        recorder: MultiDeviceRecordingWriter | None = None,
        sinks: Sequence[Sink] = (),
        duration_s: float | None = None,
        pipeline_factory: Callable[[], Pipeline] | None = None,
    ) -> None:
        if not sources:
            raise ValueError("a multi-device acquisition needs at least one source")
        labels = [check_device_label(label) for label, _ in sources]
        if len(set(labels)) != len(labels):
            raise ValueError(f"device labels must differ, got {', '.join(labels)}")
        if recorder is not None and tuple(labels) != recorder.labels:
            raise ValueError(
                f"the sources' labels ({', '.join(labels)}) differ from the recording's ({', '.join(recorder.labels)})"
            )
        self.recorder = recorder
        self._shared = [_SharedSink(sink) for sink in sinks]
        self._clocks = {label: _LockedClockTracker() for label in labels}
        self.shared_events = {label: SharedEventDetector() for label in labels}
        """Per device, the taps and sync markers found so far (read them once the device ended)."""
        self.acquisitions: dict[str, Acquisition] = {}
        """Per device label, its acquisition (``link_state``, ``reconnects`` for a status display)."""
        for label, source in sources:
            labeller = DeviceLabeller(label)
            device_sinks: list[Sink] = [self._clocks[label], self.shared_events[label]]
            device_sinks += [LabelledSink(labeller, shared) for shared in self._shared]
            self.acquisitions[label] = Acquisition(
                source,
                recorder=None if recorder is None else recorder.device(label),
                sinks=device_sinks,
                duration_s=duration_s,
                pipeline=None if pipeline_factory is None else pipeline_factory(),
            )
        self._result: MultiDeviceResult | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        """The device labels, in order."""
        return tuple(self.acquisitions)

    def start(self) -> None:
        """Start every device's worker thread."""
        for acquisition in self.acquisitions.values():
            acquisition.start()

    def stop(self) -> None:
        """Ask every device to stop; safe from any thread."""
        for acquisition in self.acquisitions.values():
            acquisition.stop()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait up to ``timeout_s`` in all for every device's thread; True once all have ended."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for acquisition in self.acquisitions.values():
            left_s = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not acquisition.join(left_s):
                return False
        return True

    def wait(self) -> MultiDeviceResult:
        """Block until every device has ended; close the shared sinks; return how it ended.

        Raises
        ------
        Exception
            An unexpected error of a device's thread, re-raised (the others are stopped first).
        """
        results: dict[str, AcquisitionResult] = {}
        try:
            for label, acquisition in self.acquisitions.items():
                results[label] = acquisition.wait()
        except BaseException:
            self.stop()
            for acquisition in self.acquisitions.values():
                acquisition.join()
            raise
        finally:
            for shared in self._shared:
                try:
                    shared.sink.close()
                except Exception:  # a sink that cannot close must not lose the recording
                    shared.failed = True
        self._result = MultiDeviceResult(results, self.alignment())
        return self._result

    def run(self) -> MultiDeviceResult:
        """Start, then wait for every device."""
        self.start()
        return self.wait()

    def snapshot(self) -> dict[str, DecoderStats]:
        """Per device, a consistent copy of its counts so far (for a status line)."""
        return {label: acquisition.snapshot() for label, acquisition in self.acquisitions.items()}

    def clock_fits(self) -> dict[str, dict[str, ClockFit]]:
        """Per device, per stream, the clock fit of its longest segment so far."""
        return {label: clocks.main_fits() for label, clocks in self._clocks.items()}

    def alignment(self) -> DeviceAlignment:
        """The devices' residual offsets from the shared events found so far (call once they ended)."""
        return align_devices(self.shared_events, self.clock_fits())

    def host_time_s(self, label: str, stream_name: str, sample_index: int) -> float | None:
        """Host time of a device's sample from its clock fit so far; None before the stream has one.

        Live, from any thread: the fit of the segment holding the sample. Once :meth:`wait` has
        returned, the device's residual offset (shared taps, sync markers) is taken off too.

        Raises
        ------
        ValueError
            An unknown device label.
        """
        if label not in self._clocks:
            raise ValueError(f"no device {label!r}; devices: {', '.join(self._clocks)}")
        host_s = self._clocks[label].host_time_s(stream_name, sample_index)
        if host_s is None:
            return None
        return host_s - (0.0 if self._result is None else self._result.alignment.offset_s(label))

    def close_recording(self, result: MultiDeviceResult) -> None:
        """Close the recording with each device's clock fits and the alignment in ``recording.json``.

        Each device's own ``recording.json`` gets ``summary`` ``{"error", "clock"}``; the
        recording's device list gets ``clock`` per device and ``alignment``.

        Raises
        ------
        RecordingError
            When the final writes fail.
        """
        if self.recorder is None:
            return
        summaries = {}
        entries = {}
        for label, clocks in self._clocks.items():
            error = result.results[label].error if label in result.results else None
            clock = clocks.to_json()
            summaries[label] = {"error": None if error is None else str(error), "clock": clock}
            entries[label] = {"clock": clock}
        self.recorder.close(device_summaries=summaries, device_entries=entries, alignment=result.alignment.to_json())


def record_devices(
    specs: Sequence[DeviceSpec],
    sources: Sequence[Source],
    out: Path,
    *,
    duration_s: float | None = None,
    client: str | None = None,
    sinks: Sequence[Sink] = (),
    pipeline_factory: Callable[[], Pipeline] | None = Pipeline,
    on_tick: Callable[[MultiDeviceAcquisition], None] | None = None,
    tick_s: float = 0.5,
) -> MultiDeviceResult:
    """Record several devices into one new recording folder until done or interrupted (the CLI's ``record``).

    Parameters
    ----------
    specs : sequence of DeviceSpec
        Labels and URLs (the URLs are kept in the recording).
    sources : sequence of Source
        The opened sources, in the order of ``specs``.
    out : Path
        The recording folder to create.
    duration_s, client, sinks, pipeline_factory
        As :class:`MultiDeviceAcquisition` and :class:`MultiDeviceRecordingWriter`.
    on_tick : callable or None
        Called every ``tick_s`` while recording (a status line reads ``snapshot()``).
    tick_s : float
        Seconds between ticks.

    Raises
    ------
    ValueError
        When specs and sources differ in number, or as the classes used.
    RecordingError
        When the folder cannot be written.
    """
    if len(specs) != len(sources):
        raise ValueError(f"{len(specs)} device specs for {len(sources)} sources")
    with MultiDeviceRecordingWriter(out, devices=[(s.label, s.url) for s in specs], client=client) as recorder:
        group = MultiDeviceAcquisition(
            [(spec.label, source) for spec, source in zip(specs, sources, strict=True)],
            recorder=recorder,
            sinks=sinks,
            duration_s=duration_s,
            pipeline_factory=pipeline_factory,
        )
        group.start()
        try:
            while not group.join(tick_s):
                if on_tick is not None:
                    on_tick(group)
        except KeyboardInterrupt:
            group.stop()
        result = group.wait()
        group.close_recording(result)
    return result


class _DelayedStart:
    """A source that starts another one after a delay (replays sharing one time origin)."""

    def __init__(self, source: Source, delay_s: float) -> None:
        self.url = source.url
        self._source = source
        self._delay_s = delay_s
        self._closed = threading.Event()

    def chunks(self) -> Iterator[TimedChunk]:
        if self._delay_s > 0 and self._closed.wait(self._delay_s):
            return
        yield from self._source.chunks()

    def close(self) -> None:
        self._closed.set()
        self._source.close()


def open_multi_device_replay(path: Path | str, speed: float = 0.0) -> list[tuple[str, Source]]:
    """Replay every device of a recording of several devices, as labelled sources.

    With ``speed`` > 0 the devices share one time origin (the earliest first frame), so each frame
    plays at its recorded receive time relative to it, divided by ``speed``: the devices stay
    merged by host receive time as they were live. With 0 each plays as fast as it is taken.
    Give the result to :class:`MultiDeviceAcquisition`.

    Raises
    ------
    ValueError
        A negative or non-finite speed.
    RecordingError
        When the folder is not a recording of several devices.
    """
    if not (math.isfinite(speed) and speed >= 0):
        raise ValueError(f"speed must be 0 (as fast as possible) or a positive factor on real time, got {speed!r}")
    recording = open_multi_device_recording(path)
    firsts: dict[str, float] = {}
    for entry in recording.devices:
        frames = recording.device(entry.label).frames()
        first = next((r.received_at for r in frames if math.isfinite(r.received_at)), None)
        if first is not None:
            firsts[entry.label] = first
    origin = min(firsts.values(), default=0.0)
    sources: list[tuple[str, Source]] = []
    for entry in recording.devices:
        replay = ReplaySource(entry.path, speed)
        delay_s = (firsts.get(entry.label, origin) - origin) / speed if speed > 0 else 0.0
        sources.append((entry.label, _DelayedStart(replay, delay_s)))
    return sources


def read_labelled_items(path: Path | str) -> Iterator[tuple[str, Item]]:
    """Every decoded item of every device, in the shared view (``left.emg``), merged by arrival.

    Each device's frames go through their own :class:`Decoder`, as live; the items of all devices
    are merged by receive time (ties and frames without one keep device order).

    Yields
    ------
    (str, Item)
        The device label and its renamed item.

    Raises
    ------
    RecordingError
        When the folder is not a readable recording of several devices.
    """
    recording = open_multi_device_recording(path)

    def device_items(order: int, label: str) -> Iterator[tuple[float, int, str, Item]]:
        decoder = Decoder()
        labeller = DeviceLabeller(label)
        last_s = -math.inf
        for record in recording.device(label).frames():
            if math.isfinite(record.received_at):
                last_s = max(last_s, record.received_at)
            for item in decoder.decode_frame(record.frame, record.received_at):
                renamed = labeller(item)
                if isinstance(renamed, Block | DeviceInfo | Marker | DeviceStatus):
                    yield last_s, order, label, renamed

    streams = [device_items(order, entry.label) for order, entry in enumerate(recording.devices)]
    for _, _, label, item in heapq.merge(*streams, key=lambda entry: (entry[0], entry[1])):
        yield label, item
