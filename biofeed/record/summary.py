"""What a recording holds: the data of ``biofeed info`` (docs/info-json.md).

:func:`summarize_recording` feeds every stored frame through the same :class:`Decoder` the live
acquisition uses, so the counts (corrupt frames, lost packets, gaps) are the ones the live run saw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biofeed.blocks import Marker
from biofeed.device_alignment import DeviceAlignment, SharedEventDetector, align_devices
from biofeed.protocol.decoder import Decoder, Item, StreamStats
from biofeed.record.meta import device_info_to_json
from biofeed.record.reader import Recording, open_multi_device_recording, open_recording
from biofeed.timesync import ClockFit, ClockTracker, main_fit

__all__ = [
    "DeviceSummary",
    "MultiDeviceSummary",
    "RecordingSummary",
    "StreamSummary",
    "summarize_multi_device_recording",
    "summarize_recording",
]


@dataclass(frozen=True)
class StreamSummary:
    """One stream of a recording.

    Attributes
    ----------
    name : str
        Stream name.
    kind : str
        ``emg`` or ``imu``.
    sample_rate_hz : float
        Nominal sample rate in Hz.
    n_channels : int
        Number of channels.
    n_samples : int
        Samples per channel that decoded.
    duration_s : float
        Device time from the first to one past the last sample, gaps included; 0 without samples.
    gaps : int
        Number of gaps (blocks that followed missing samples).
    samples_lost : int
        Samples missing in those gaps.
    clock_fits : tuple of ClockFit
        The stream's device-to-host time fits, one per segment (biofeed.timesync), in order.
    """

    name: str
    kind: str
    sample_rate_hz: float
    n_channels: int
    n_samples: int
    duration_s: float
    gaps: int
    samples_lost: int
    clock_fits: tuple[ClockFit, ...] = ()

    @property
    def clock_fit(self) -> ClockFit | None:
        """The fit of the longest segment; None without one."""
        return main_fit(self.clock_fits)

    @property
    def clock_error_ppm(self) -> float | None:
        """Device clock error of the longest segment, ppm (positive: the device runs fast); None without a fit."""
        fit = self.clock_fit
        return None if fit is None else fit.clock_error_ppm

    @property
    def jitter_ms(self) -> float | None:
        """95th percentile of the arrival delays above the envelope in the longest segment, ms."""
        fit = self.clock_fit
        return None if fit is None else fit.jitter_ms

    @classmethod
    def from_stats(cls, stats: StreamStats, clock_fits: tuple[ClockFit, ...] = ()) -> StreamSummary:
        """Return the summary of a stream from the decoder's counts and its clock fits."""
        if stats.first_index is None or stats.end_index is None:
            duration_s = 0.0
        else:
            duration_s = (stats.end_index - stats.first_index) / stats.sample_rate_hz
        return cls(
            stats.name,
            stats.kind,
            stats.sample_rate_hz,
            stats.n_channels,
            stats.n_samples,
            duration_s,
            stats.gaps,
            stats.samples_lost,
            clock_fits,
        )

    def to_json(self) -> dict[str, Any]:
        """Return the stream as a JSON object (keys as the attributes, plus ``clock_error_ppm`` and ``jitter_ms``)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "sample_rate_hz": self.sample_rate_hz,
            "n_channels": self.n_channels,
            "n_samples": self.n_samples,
            "duration_s": self.duration_s,
            "gaps": self.gaps,
            "samples_lost": self.samples_lost,
            "clock_error_ppm": self.clock_error_ppm,
            "jitter_ms": self.jitter_ms,
            "clock_fits": [fit.to_json() for fit in self.clock_fits],
        }


@dataclass(frozen=True)
class RecordingSummary:
    """Counts and description of one recording; every attribute is a key of :meth:`to_json`.

    Attributes
    ----------
    path : Path
        The recording folder.
    device : dict or None
        The device INFO as in ``recording.json`` (None when no INFO arrived).
    corrupt_frames : int
        Frames that did not decode (damaged on the link).
    corrupt_by_reason : dict of str to int
        Those by reason (``cobs``, ``crc``, ``length``, ...), zero counts included.
    lost_packets : int
        Packets missing from jumps of the device's sequence number.
    duplicates : int
        Sample blocks dropped as duplicate or late.
    joined_mid_frame : int
        1 when the first frame was the tail of a frame the receiver joined in the middle.
    no_info : int
        Packets that arrived before an INFO described their stream.
    unknown_type : int
        Packets of a type this version does not know (from newer firmware).
    resets : int
        Device counter resets.
    refused_major : int
        Packets of another major protocol version (refused).
    torn_tail_bytes : int
        Bytes at the end of ``frames.bin`` after the last whole record (a crash's torn tail).
    skipped_bytes : int
        Bytes of damaged records skipped inside ``frames.bin``.
    markers : int
        MARKER packets from the device (button presses).
    events : int
        Events in ``events.jsonl``.
    reconnects : int
        Times the link came back after it was lost (``link`` events in ``events.jsonl``).
    start_time : str or None
        When the recording started, ISO 8601 UTC.
    streams : tuple of StreamSummary
        Per stream of the INFO in force at the end.
    """

    path: Path
    device: Mapping[str, Any] | None
    corrupt_frames: int
    corrupt_by_reason: Mapping[str, int]
    lost_packets: int
    duplicates: int
    joined_mid_frame: int
    no_info: int
    unknown_type: int
    resets: int
    refused_major: int
    torn_tail_bytes: int
    skipped_bytes: int
    markers: int
    events: int
    reconnects: int
    start_time: str | None
    streams: tuple[StreamSummary, ...]

    def to_json(self) -> dict[str, Any]:
        """Return the object ``biofeed info --json`` prints (docs/info-json.md)."""
        return {
            "path": str(self.path),
            "device": None if self.device is None else dict(self.device),
            "corrupt_frames": self.corrupt_frames,
            "corrupt_by_reason": dict(self.corrupt_by_reason),
            "lost_packets": self.lost_packets,
            "duplicates": self.duplicates,
            "no_info": self.no_info,
            "joined_mid_frame": self.joined_mid_frame,
            "unknown_type": self.unknown_type,
            "resets": self.resets,
            "refused_major": self.refused_major,
            "torn_tail_bytes": self.torn_tail_bytes,
            "skipped_bytes": self.skipped_bytes,
            "markers": self.markers,
            "events": self.events,
            "reconnects": self.reconnects,
            "start_time": self.start_time,
            "streams": [s.to_json() for s in self.streams],
        }

    def to_text(self) -> str:
        """Return a few readable lines for ``biofeed info PATH``."""
        lines = [f"recording   {self.path}", f"started     {self.start_time or 'unknown'}"]
        if self.device is None:
            lines.append("device      no INFO received")
        else:
            firmware = ".".join(str(v) for v in self.device.get("firmware_version", []))
            protocol = ".".join(str(v) for v in self.device.get("protocol_version", []))
            lines.append(
                f"device      {self.device.get('device_id')}  firmware {firmware}  "
                f"board {self.device.get('board_profile')}  protocol {protocol}"
            )
        if self.streams:
            lines.append("")
            header = ("stream", "kind", "rate_hz", "channels", "samples", "duration_s", "gaps", "samples_lost")
            rows = [header] + [
                (
                    s.name,
                    s.kind,
                    f"{s.sample_rate_hz:g}",
                    str(s.n_channels),
                    str(s.n_samples),
                    f"{s.duration_s:.3f}",
                    str(s.gaps),
                    str(s.samples_lost),
                )
                for s in self.streams
            ]
            widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
            lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
            lines.append("")
        reasons = ", ".join(f"{reason} {n}" for reason, n in self.corrupt_by_reason.items() if n)
        lines.append(f"corrupt     {self.corrupt_frames} frames" + (f" ({reasons})" if reasons else ""))
        lines.append(
            f"link        {self.lost_packets} packets lost, {self.duplicates} duplicates, {self.resets} resets, "
            f"{self.no_info} before INFO, {self.joined_mid_frame} joined mid-frame, "
            f"{self.unknown_type} of unknown type, "
            f"{self.refused_major} of another protocol major version"
        )
        lines.append(f"file        {self.torn_tail_bytes} bytes torn tail, {self.skipped_bytes} bytes skipped")
        lines.append(f"markers     {self.markers}")
        lines.append(f"events      {self.events}")
        lines.append(f"reconnects  {self.reconnects}")
        lines += _clock_lines(self.streams)
        return "\n".join(lines)


def _clock_lines(streams: Iterable[StreamSummary]) -> list[str]:
    """One line per stream with a time fit: clock error, jitter, the fit and its span."""
    lines = []
    for s in streams:
        fit = s.clock_fit
        if fit is None:
            continue
        segments = f", {len(s.clock_fits)} segments" if len(s.clock_fits) > 1 else ""
        lines.append(
            f"clock       {s.name}: {fit.clock_error_ppm:+.1f} ppm, jitter {fit.jitter_ms:.1f} ms; "
            f"host = {fit.offset_s:.6f} + {fit.slope:.9f} x device s "
            f"(device {fit.first_device_s:.3f}..{fit.last_device_s:.3f} s{segments})"
        )
    return lines


def _count_events(events: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """Events, and reconnects: ``link`` events ``connected`` that follow a ``lost`` one."""
    n_events = n_reconnects = 0
    lost = False
    for event in events:
        n_events += 1
        if event.get("type") == "link":
            state = event.get("state")
            if state == "lost":
                lost = True
            elif state == "connected" and lost:
                n_reconnects += 1
                lost = False
    return n_events, n_reconnects


def summarize_recording(path: Path | str) -> RecordingSummary:
    """Decode a whole recording and count what it holds.

    Parameters
    ----------
    path : Path or str
        The recording folder.

    Raises
    ------
    RecordingError
        When the folder is not a readable recording (a recording of several devices included:
        :func:`summarize_multi_device_recording` reads those).
    """
    return _summarize(open_recording(path))


def _summarize(recording: Recording, observe: Callable[[Item], None] | None = None) -> RecordingSummary:
    """Decode a recording once, fitting its clocks; ``observe`` sees every decoded item too."""
    decoder = Decoder()
    clocks = ClockTracker()
    n_markers = 0
    n_resets = 0
    for record in recording.frames():
        items = decoder.decode_frame(record.frame, record.received_at)
        if decoder.stats.resets != n_resets:
            n_resets = decoder.stats.resets
            clocks.split()  # the device restarted: the old mapping of its counter ends here
        for item in items:
            n_markers += isinstance(item, Marker)
            clocks.write(item)
            if observe is not None:
                observe(item)
    n_events, n_reconnects = _count_events(recording.events())
    stats = decoder.stats
    device = recording.meta.get("device")
    if device is None and decoder.device_info is not None:
        device = device_info_to_json(decoder.device_info)
    created = recording.meta.get("created")
    return RecordingSummary(
        path=recording.path,
        device=device,
        corrupt_frames=stats.corrupt_frames,
        corrupt_by_reason=dict(stats.corrupt),
        lost_packets=stats.lost_packets,
        duplicates=stats.duplicates,
        no_info=stats.no_info,
        joined_mid_frame=stats.joined_mid_frame,
        unknown_type=stats.unknown_type,
        resets=stats.resets,
        refused_major=stats.refused_major,
        torn_tail_bytes=recording.torn_tail_bytes,
        skipped_bytes=recording.skipped_bytes,
        markers=n_markers,
        events=n_events,
        reconnects=n_reconnects,
        start_time=created if isinstance(created, str) else None,
        streams=tuple(StreamSummary.from_stats(s, clocks.fits(s.name)) for s in stats.streams.values()),
    )


@dataclass(frozen=True)
class DeviceSummary:
    """One device of a recording of several devices.

    Attributes
    ----------
    label : str
        The device's label (its streams are ``label.name`` in the decoded view).
    source_url : str
        Where it was recorded from.
    recording : RecordingSummary
        Its folder's summary, as ``biofeed info`` of that folder.
    """

    label: str
    source_url: str
    recording: RecordingSummary

    def to_json(self) -> dict[str, Any]:
        """Return ``label``, ``source_url`` and every key of the device's own summary."""
        return {"label": self.label, "source_url": self.source_url, **self.recording.to_json()}


@dataclass(frozen=True)
class MultiDeviceSummary:
    """What a recording of several devices holds: each device's summary and their alignment.

    Attributes
    ----------
    path : Path
        The recording folder.
    start_time : str or None
        When the recording started, ISO 8601 UTC.
    devices : tuple of DeviceSummary
        Per device, in order.
    alignment : DeviceAlignment
        Residual offsets between the devices after their clock fits, from shared taps or sync
        markers found in the frames (biofeed.device_alignment).
    events : int
        Events in the recording's own ``events.jsonl``.
    """

    path: Path
    start_time: str | None
    devices: tuple[DeviceSummary, ...]
    alignment: DeviceAlignment
    events: int

    def to_json(self) -> dict[str, Any]:
        """Return the object ``biofeed info --json`` prints for several devices (docs/info-json.md)."""
        return {
            "path": str(self.path),
            "start_time": self.start_time,
            "events": self.events,
            "devices": [d.to_json() for d in self.devices],
            "alignment": self.alignment.to_json(),
        }

    def to_text(self) -> str:
        """Return readable lines: the alignment, then each device's summary under its label."""
        lines = [
            f"recording   {self.path}",
            f"started     {self.start_time or 'unknown'}",
            f"devices     {', '.join(d.label for d in self.devices)}",
            f"events      {self.events}",
        ]
        for offset in self.alignment.offsets:
            if offset.method == "reference":
                lines.append(f"alignment   {offset.label}: reference")
                continue
            detail = f"{offset.n_events} {offset.method}s" if offset.n_events else "clock fits only"
            lines.append(
                f"alignment   {offset.label}: {offset.offset_s * 1e3:+.2f} ms after the fits ({detail}"
                + (f", spread {offset.spread_s * 1e3:.2f} ms" if offset.n_events > 1 else "")
                + ")"
            )
        for device in self.devices:
            lines += ["", f"== {device.label} ({device.source_url})", device.recording.to_text()]
        return "\n".join(lines)


def summarize_multi_device_recording(path: Path | str) -> MultiDeviceSummary:
    """Decode every device of a recording of several devices; fit their clocks and align them.

    Parameters
    ----------
    path : Path or str
        The recording folder (docs/recording-format.md, "Several devices").

    Raises
    ------
    RecordingError
        When it is not a readable recording of several devices.
    """
    recording = open_multi_device_recording(path)
    summaries = []
    detectors: dict[str, SharedEventDetector] = {}
    fits: dict[str, dict[str, ClockFit]] = {}
    for entry in recording.devices:
        detector = detectors[entry.label] = SharedEventDetector()
        summary = _summarize(recording.device(entry.label), detector.write)
        summaries.append(DeviceSummary(entry.label, entry.source_url, summary))
        fits[entry.label] = {s.name: fit for s in summary.streams if (fit := s.clock_fit) is not None}
    n_events, _ = _count_events(recording.events())
    created = recording.meta.get("created")
    return MultiDeviceSummary(
        path=recording.path,
        start_time=created if isinstance(created, str) else None,
        devices=tuple(summaries),
        alignment=align_devices(detectors, fits),
        events=n_events,
    )
