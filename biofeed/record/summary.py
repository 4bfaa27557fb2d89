"""What a recording holds: the data of ``biofeed info`` (docs/info-json.md).

:func:`summarize_recording` feeds every stored frame through the same :class:`Decoder` the live
acquisition uses, so the counts (corrupt frames, lost packets, gaps) are the ones the live run saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biofeed.blocks import Marker
from biofeed.protocol.decoder import Decoder, StreamStats
from biofeed.record.meta import device_info_to_json
from biofeed.record.reader import open_recording

__all__ = ["RecordingSummary", "StreamSummary", "summarize_recording"]


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
    """

    name: str
    kind: str
    sample_rate_hz: float
    n_channels: int
    n_samples: int
    duration_s: float
    gaps: int
    samples_lost: int

    @classmethod
    def from_stats(cls, stats: StreamStats) -> StreamSummary:
        """Return the summary of a stream from the decoder's counts."""
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
        )

    def to_json(self) -> dict[str, Any]:
        """Return the stream as a JSON object (keys as the attributes)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "sample_rate_hz": self.sample_rate_hz,
            "n_channels": self.n_channels,
            "n_samples": self.n_samples,
            "duration_s": self.duration_s,
            "gaps": self.gaps,
            "samples_lost": self.samples_lost,
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
        return "\n".join(lines)


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
        When the folder is not a readable recording.
    """
    recording = open_recording(path)
    decoder = Decoder()
    n_markers = 0
    for record in recording.frames():
        for item in decoder.decode_frame(record.frame, record.received_at):
            n_markers += isinstance(item, Marker)
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
        streams=tuple(StreamSummary.from_stats(s) for s in stats.streams.values()),
    )
