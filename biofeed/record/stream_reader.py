"""A recording as decoded sample blocks per stream, read in bounded memory.

:func:`read_stream_items` feeds every stored frame through the same :class:`Decoder` the live
acquisition used and yields, in arrival order, each sample block with the :class:`StreamLayout` it
belongs to, and each device MARKER placed in device time. The layout carries what the readable
``recording.json`` leaves out and exports need: the resolution of each channel (the INFO's scale,
physical units per count) and its sample format.

A stream whose INFO description changes mid-recording (another rate, scale or channel set) starts
a new timeline in the decoder; here it becomes a new layout named ``<name>_2`` (``_3``, ...), so an
export never mixes two descriptions in one column or signal.

:func:`survey_recording` runs through a recording once and keeps only what is small: per layout
the span of sample indices, the gaps and the range of values; the device markers; the offset
between host and device clocks. Exports that must size their output before writing it (EDF+/BDF+)
call it first and then read the blocks a second time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block, DeviceInfo, Marker, StreamInfo
from biofeed.errors import CorruptPacketError
from biofeed.protocol.decoder import Decoder
from biofeed.protocol.packets import InfoPayload, SampleFormat, StreamFormat, decode_frame
from biofeed.record.reader import Recording

__all__ = [
    "DeviceMarker",
    "LayoutBlock",
    "RecordingSurvey",
    "StreamLayout",
    "StreamSurvey",
    "SurveyCollector",
    "read_stream_items",
    "survey_recording",
]


@dataclass(frozen=True)
class StreamLayout:
    """One stream of a recording under one INFO description.

    Attributes
    ----------
    name : str
        Unique within the recording: the stream's name, suffixed ``_2``, ``_3``... for each later
        description of a stream of the same name.
    info : StreamInfo
        The stream as the decoder describes it (rate, channels, units).
    lsb : tuple of float
        Per channel: the physical value of one count (the INFO's scale), in the channel's unit.
    sample_format : SampleFormat
        How the device encoded the samples (int16 or int24).
    """

    name: str
    info: StreamInfo
    lsb: tuple[float, ...]
    sample_format: SampleFormat

    @property
    def sample_rate_hz(self) -> float:
        """Nominal sample rate in Hz."""
        return self.info.sample_rate_hz

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return self.info.n_channels


@dataclass(frozen=True)
class LayoutBlock:
    """A decoded block and the layout it belongs to.

    Attributes
    ----------
    layout : StreamLayout
        The stream under its description.
    block : Block
        Samples in physical units, shape (n_channels, n_samples), with ``first_index`` and
        ``gap_before`` on the layout's timeline.
    """

    layout: StreamLayout
    block: Block


@dataclass(frozen=True)
class DeviceMarker:
    """A MARKER packet of the device.

    Attributes
    ----------
    time_s : float or None
        Device time in seconds (sample index over the rate of its stream); None for a device-level
        marker, which no stream's counter places.
    stream : str
        Name of the layout whose counter places it; empty for a device-level marker.
    sample_index : int
        Sample index in that stream (the raw counter for a device-level marker).
    code : int
        1 = button, 2..127 firmware-defined, 128..255 host-defined.
    label : str
        Its text; may be empty.
    received_at : float
        Host time of arrival; NaN when unknown.
    """

    time_s: float | None
    stream: str
    sample_index: int
    code: int
    label: str
    received_at: float


def _stream_formats(frame: bytes) -> dict[str, StreamFormat]:
    """The stream formats of the INFO frame the decoder has just accepted, by stream name."""
    try:
        payload = InfoPayload.from_payload(decode_frame(frame).payload)
    except CorruptPacketError:
        # the decoder accepted this frame, so it parses; an empty answer keeps the old layouts
        return {}
    return {s.name: s for s in payload.streams}


def read_stream_items(recording: Recording) -> Iterator[LayoutBlock | DeviceMarker]:
    """Yield every decoded block and device marker of a recording, in arrival order.

    Memory stays bounded: one frame and one block at a time, plus the layouts.

    Parameters
    ----------
    recording : Recording
        An opened recording; its ``torn_tail_bytes`` and ``skipped_bytes`` are known once the
        iteration has run to the end.

    Yields
    ------
    LayoutBlock or DeviceMarker
        Blocks in physical units and markers placed in device time.
    """
    decoder = Decoder()
    current: dict[str, StreamLayout] = {}
    n_versions: dict[str, int] = {}
    for record in recording.frames():
        for item in decoder.decode_frame(record.frame, record.received_at):
            if isinstance(item, Block):
                yield LayoutBlock(current[item.info.name], item)
            elif isinstance(item, DeviceInfo):
                _update_layouts(current, n_versions, item, _stream_formats(record.frame))
            elif isinstance(item, Marker):
                layout = current.get(item.stream_name)
                time_s = None if layout is None else item.sample_index / layout.sample_rate_hz
                yield DeviceMarker(
                    time_s,
                    "" if layout is None else layout.name,
                    item.sample_index,
                    item.code,
                    item.label,
                    item.received_at,
                )


def _lsb(stream_format: StreamFormat) -> tuple[float, ...]:
    return tuple(float(c.scale) for c in stream_format.channels)


def _update_layouts(
    current: dict[str, StreamLayout], n_versions: dict[str, int], info: DeviceInfo, formats: dict[str, StreamFormat]
) -> None:
    """Keep the layout of each stream a new INFO describes as before; give a changed stream a new one."""
    for stream in info.streams:
        stream_format = formats.get(stream.name)
        if stream_format is None:
            continue
        old = current.get(stream.name)
        if old is not None and old.info == stream and old.lsb == _lsb(stream_format):
            continue
        n_versions[stream.name] = n_versions.get(stream.name, 0) + 1
        n = n_versions[stream.name]
        name = stream.name if n == 1 else f"{stream.name}_{n}"
        current[stream.name] = StreamLayout(name, stream, _lsb(stream_format), stream_format.sample_format)


@dataclass
class StreamSurvey:
    """What one layout of a recording holds, found by :func:`survey_recording`.

    Attributes
    ----------
    layout : StreamLayout
        The stream under its description.
    first_index : int
        Sample index of its first decoded sample.
    end_index : int
        Sample index one past its last decoded sample.
    n_samples : int
        Samples per channel decoded.
    gaps : list of (int, int)
        Each gap as (index of the first missing sample, number of samples missing).
    min_value, max_value : ndarray, shape (n_channels,)
        Smallest and largest value per channel, in the channel's unit.
    """

    layout: StreamLayout
    first_index: int
    end_index: int
    n_samples: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)
    min_value: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    max_value: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))

    @property
    def start_s(self) -> float:
        """Device time of the first sample in seconds."""
        return self.first_index / self.layout.sample_rate_hz

    @property
    def end_s(self) -> float:
        """Device time one sample period after the last sample, in seconds."""
        return self.end_index / self.layout.sample_rate_hz


@dataclass(frozen=True)
class RecordingSurvey:
    """A whole recording, summarised in one pass for exports that size their output first.

    Attributes
    ----------
    streams : tuple of StreamSurvey
        Every layout that delivered samples, in order of first appearance.
    markers : tuple of DeviceMarker
        Every device MARKER.
    host_minus_device_s : float or None
        Host time (``time.time()``) minus device time: the smallest difference between a block's
        receive time and the device time of its last sample (the least delayed block is the best
        estimate of the clock offset). None when no block had a receive time.
    torn_tail_bytes : int
        Bytes of a torn tail at the end of ``frames.bin``.
    skipped_bytes : int
        Bytes of damaged records skipped inside it.
    """

    streams: tuple[StreamSurvey, ...]
    markers: tuple[DeviceMarker, ...]
    host_minus_device_s: float | None
    torn_tail_bytes: int
    skipped_bytes: int

    def stream(self, name: str) -> StreamSurvey:
        """The survey of the layout called ``name``.

        Raises
        ------
        KeyError
            When the recording has no such layout.
        """
        for survey in self.streams:
            if survey.layout.name == name:
                return survey
        raise KeyError(name)


class SurveyCollector:
    """Builds a :class:`RecordingSurvey` from the items of :func:`read_stream_items`, one at a time.

    For exports that write in the same pass (CSV, Parquet) and need the survey only at the end.
    """

    def __init__(self) -> None:
        self._streams: dict[str, StreamSurvey] = {}
        self._markers: list[DeviceMarker] = []
        self._offset_s = math.inf

    def add(self, item: LayoutBlock | DeviceMarker) -> None:
        """Take one item."""
        if isinstance(item, DeviceMarker):
            self._markers.append(item)
            return
        layout, block = item.layout, item.block
        survey = self._streams.get(layout.name)
        if survey is None:
            survey = StreamSurvey(
                layout,
                block.first_index,
                block.first_index,
                min_value=np.full(layout.n_channels, np.inf),
                max_value=np.full(layout.n_channels, -np.inf),
            )
            self._streams[layout.name] = survey
        elif block.gap_before:
            survey.gaps.append((block.first_index - block.gap_before, block.gap_before))
        survey.end_index = block.end_index
        survey.n_samples += block.n_samples
        np.minimum(survey.min_value, block.data.min(axis=1), out=survey.min_value)
        np.maximum(survey.max_value, block.data.max(axis=1), out=survey.max_value)
        if math.isfinite(block.received_at):
            self._offset_s = min(self._offset_s, block.received_at - block.end_index / layout.sample_rate_hz)

    def result(self, recording: Recording) -> RecordingSurvey:
        """The survey of everything taken so far (``recording`` gives the damage counts)."""
        return RecordingSurvey(
            tuple(self._streams.values()),
            tuple(self._markers),
            self._offset_s if math.isfinite(self._offset_s) else None,
            recording.torn_tail_bytes,
            recording.skipped_bytes,
        )


def survey_recording(recording: Recording) -> RecordingSurvey:
    """Decode a recording once and keep its extents, gaps, value ranges, markers and clock offset.

    Parameters
    ----------
    recording : Recording
        An opened recording.

    Returns
    -------
    RecordingSurvey
        Memory grows only with the number of gaps and markers, never with the samples.
    """
    collector = SurveyCollector()
    for item in read_stream_items(recording):
        collector.add(item)
    return collector.result(recording)
