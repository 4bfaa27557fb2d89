"""A foreign file (EDF, BDF, CSV) played as a source: ``replay://FILE?speed=X``.

The file's channels are encoded as the wire protocol a device would send (INFO every second, int24
sample packets of about 10 ms, MARKER packets for the file's annotations), so they flow through the
same decoder, recorder and pipeline as a live device, paced like the simulator
(:func:`biofeed.sim.pacing.paced_chunks`).

- Channels in µV become EMG streams, one per sample rate (``emg``, ``emg_2``...); channels in
  ``g``, ``deg/s``, ``uT``, ``deg`` or ``1`` become IMU streams (``aux``...); channels in other
  units are left out. At most 16 channels per stream and 8 streams (the protocol's limits).
- Each channel's scale is its largest magnitude over 2^23 - 1 (a float32, as on the wire): the
  quantisation error is at most 2^-24 of that magnitude, finer than any 16-bit file and as fine as
  a 24-bit one.
- Samples that are NaN (empty CSV cells, an export's gap rows) are not sent: the decoder sees the
  gap, as it would on a live link.
- Annotations become MARKER packets (code 128, host-defined) on the first stream, at their onset.

The whole file is held in memory (it is read whole by :func:`biofeed.record.foreign.read_foreign`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from biofeed.blocks import ChannelKind
from biofeed.errors import RecordingError
from biofeed.protocol.packets import (
    MAX_PAYLOAD_BYTES,
    ChannelFormat,
    InfoPayload,
    MarkerPayload,
    Packet,
    PacketType,
    SampleFormat,
    StreamFormat,
    encode_frame,
    encode_samples,
)
from biofeed.record.foreign.recording import ForeignChannel, ForeignRecording
from biofeed.sim.pacing import paced_chunks
from biofeed.sources.base import SourceUrl, TimedChunk

__all__ = ["MARKER_CODE", "ForeignFileSource", "ForeignWireDevice"]

MARKER_CODE = 128
"""Code of the MARKER packets that carry a file's annotations (host-defined range)."""

_KIND_BY_UNIT = {
    "uV": ChannelKind.EMG,
    "g": ChannelKind.ACC,
    "deg/s": ChannelKind.GYRO,
    "uT": ChannelKind.MAG,
    "deg": ChannelKind.ANGLE,
    "1": ChannelKind.QUAT,
}
_MAX_CHANNELS = 16
_MAX_STREAMS = 8
_PACKET_S = 0.01
_FULL_SCALE_COUNTS = (1 << 23) - 1
_MAX_LABEL_BYTES = 100
_STEP_S = 0.02
_MAX_CHUNK_BYTES = 4096
_PERIODIC = 0x01


def _utf8_prefix(text: str, n_bytes: int) -> str:
    return text.encode("utf-8")[:n_bytes].decode("utf-8", errors="ignore")


@dataclass
class _WireStream:
    """One stream to send: its format, its samples as counts and the packets to cut them into."""

    stream: StreamFormat
    counts: npt.NDArray[np.int32]  # (n_channels, n_samples)
    packets: list[tuple[int, int]]  # (first, stop) sample indices, in order
    next_packet: int = 0

    @property
    def packet_type(self) -> PacketType:
        return PacketType.EMG if self.stream.channels[0].kind is ChannelKind.EMG else PacketType.IMU

    def end_time_s(self, k: int) -> float:
        return self.packets[k][1] / self.stream.sample_rate_hz


def _packets(valid: npt.NDArray[np.bool_], n_per_packet: int) -> list[tuple[int, int]]:
    """Cut the runs of valid samples into packets of at most ``n_per_packet``."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], valid, [False])).astype(np.int8)))
    out = []
    for start, stop in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        out += [(k, min(k + n_per_packet, stop)) for k in range(start, stop, n_per_packet)]
    return out


def _channel_format(channel: ForeignChannel, name_bytes: int) -> tuple[ChannelFormat, float]:
    finite = channel.data[np.isfinite(channel.data)]
    peak = float(np.max(np.abs(finite))) if finite.size else 0.0
    scale = float(np.float32(peak / _FULL_SCALE_COUNTS)) if peak > 0 else 1.0
    # a float32 rounded down could push the peak a hair past full scale: nudge it up
    if peak / scale > _FULL_SCALE_COUNTS:
        scale = float(np.nextafter(np.float32(scale), np.float32(np.inf)))
    kind = _KIND_BY_UNIT[channel.unit]
    return ChannelFormat(kind, scale, _utf8_prefix(channel.name, name_bytes)), scale


def _group(recording: ForeignRecording) -> list[tuple[str, list[ForeignChannel]]]:
    """Channels grouped into streams: EMG and others apart, one rate per stream, 16 channels at most."""
    groups: dict[tuple[bool, float], list[ForeignChannel]] = {}
    for channel in recording.channels:
        if channel.unit in _KIND_BY_UNIT and channel.data.size:
            groups.setdefault((channel.unit == "uV", channel.sample_rate_hz), []).append(channel)
    named: list[tuple[str, list[ForeignChannel]]] = []
    counts = {True: 0, False: 0}
    for (is_emg, _), channels in sorted(groups.items(), key=lambda kv: (not kv[0][0], -kv[0][1])):
        for k in range(0, len(channels), _MAX_CHANNELS):
            counts[is_emg] += 1
            base = "emg" if is_emg else "aux"
            named.append((base if counts[is_emg] == 1 else f"{base}_{counts[is_emg]}", channels[k : k + _MAX_CHANNELS]))
    return named


class ForeignWireDevice:
    """A foreign recording as the bytes a device would send (implements :class:`biofeed.sim.pacing.PacedDevice`).

    Parameters
    ----------
    recording : ForeignRecording
        The file, read.
    device_id : str
        The device id its INFO announces.

    Raises
    ------
    RecordingError
        When no channel has a unit the protocol carries, or the channels need more than 8 streams
        or an INFO over 1024 bytes.
    """

    def __init__(self, recording: ForeignRecording, device_id: str = "file") -> None:
        groups = _group(recording)
        if not groups:
            raise RecordingError(recording.path, "no channel in a unit biofeed can replay (uV, g, deg/s, uT, deg)")
        if len(groups) > _MAX_STREAMS:
            raise RecordingError(recording.path, f"needs {len(groups)} streams to replay; the protocol carries 8")
        for name_bytes in (32, 12, 4):
            self._streams = [
                self._wire_stream(k + 1, name, chans, name_bytes) for k, (name, chans) in enumerate(groups)
            ]
            info = InfoPayload((0, 0, 0), _utf8_prefix(device_id, 32), "file", tuple(s.stream for s in self._streams))
            self._info = info.to_payload()
            if len(self._info) <= MAX_PAYLOAD_BYTES:
                break
        else:
            raise RecordingError(recording.path, "too many channels to describe in one INFO packet (1024 bytes)")
        first = self._streams[0].stream
        self._markers = sorted(
            (a.onset_s, round(a.onset_s * first.sample_rate_hz), _utf8_prefix(a.text, _MAX_LABEL_BYTES))
            for a in recording.annotations
            if math.isfinite(a.onset_s) and a.onset_s >= 0
        )
        self._next_marker = 0
        self._next_info_s = 0.0
        self._seq = 0
        ends = [s.end_time_s(len(s.packets) - 1) for s in self._streams if s.packets]
        self.duration_s = max(ends, default=0.0)

    @staticmethod
    def _wire_stream(stream_id: int, name: str, channels: list[ForeignChannel], name_bytes: int) -> _WireStream:
        formats, scales = zip(*(_channel_format(c, name_bytes) for c in channels), strict=True)
        rate_hz = channels[0].sample_rate_hz
        n_samples = min(c.data.size for c in channels)
        data = np.vstack([c.data[:n_samples] for c in channels])
        valid = np.all(np.isfinite(data), axis=0)
        counts = np.rint(np.where(valid, data, 0.0) / np.array(scales)[:, None])
        counts = np.clip(counts, -_FULL_SCALE_COUNTS - 1, _FULL_SCALE_COUNTS).astype(np.int32)
        n_per_packet = max(1, min(round(rate_hz * _PACKET_S), MAX_PAYLOAD_BYTES // (3 * len(channels))))
        stream = StreamFormat(stream_id, name, SampleFormat.INT24, max(1, round(rate_hz * 1000)), tuple(formats))
        return _WireStream(stream, counts, _packets(valid, n_per_packet))

    @property
    def finished(self) -> bool:
        """True once every packet and marker has been sent."""
        return self._next_marker == len(self._markers) and all(s.next_packet == len(s.packets) for s in self._streams)

    def host_time_of(self, device_time_s: float) -> float:
        """Host seconds since the start at which the device clock shows ``device_time_s`` (a file's clock is exact)."""
        return device_time_s

    def _frame(self, ptype: PacketType, stream_id: int, index: int, payload: bytes, flags: int = 0) -> bytes:
        packet = Packet(int(ptype), stream_id, self._seq % 65536, index % (1 << 32), payload, flags=flags)
        self._seq += 1
        return encode_frame(packet)

    def frames_until(self, device_time_s: float) -> bytes:
        """Return the frames (with delimiters) sent up to ``device_time_s`` and not returned before."""
        due: list[tuple[float, int, bytes]] = []
        while self._next_info_s <= device_time_s and (self._next_info_s == 0.0 or not self.finished):
            flags = _PERIODIC if self._next_info_s > 0 else 0
            due.append((self._next_info_s, 0, self._frame(PacketType.INFO, 0, 0, self._info, flags)))
            self._next_info_s += 1.0
        for wire in self._streams:
            while wire.next_packet < len(wire.packets) and wire.end_time_s(wire.next_packet) <= device_time_s:
                start, stop = wire.packets[wire.next_packet]
                payload = encode_samples(wire.counts[:, start:stop], SampleFormat.INT24)
                frame = self._frame(wire.packet_type, wire.stream.stream_id, start, payload)
                due.append((wire.end_time_s(wire.next_packet), 1, frame))
                wire.next_packet += 1
        first_id = self._streams[0].stream.stream_id
        while self._next_marker < len(self._markers) and self._markers[self._next_marker][0] <= device_time_s:
            onset_s, index, label = self._markers[self._next_marker]
            payload = MarkerPayload(MARKER_CODE, label).to_payload()
            due.append((onset_s, 2, self._frame(PacketType.MARKER, first_id, index, payload)))
            self._next_marker += 1
        due.sort(key=lambda d: (d[0], d[1]))
        return b"".join(frame for _, _, frame in due)


class ForeignFileSource:
    """Chunks of a foreign file encoded as a device's wire bytes: ``replay://FILE?speed=X``.

    Parameters
    ----------
    recording : ForeignRecording
        The file, read with :func:`biofeed.record.foreign.read_foreign`.
    speed : float
        1 = real time, 0 = as fast as possible, X = X times faster.
    clock : callable returning float
        Monotonic host seconds that pace the chunks.
    wall_clock : callable returning float
        Host time that stamps them when the file has no start time.
    wait : callable taking seconds, or None
        Sleeps between chunks; a true return value stops. None waits on the source's own stop
        event, so :meth:`close` interrupts a wait at once.

    Attributes
    ----------
    url : str
        ``replay://FILE?speed=X``.
    device : ForeignWireDevice
        The encoded file.

    Raises
    ------
    ValueError
        A negative or non-finite speed.
    RecordingError
        The file's channels cannot be carried by the protocol.
    """

    def __init__(
        self,
        recording: ForeignRecording,
        speed: float = 0.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        wait: Callable[[float], object] | None = None,
    ) -> None:
        if not (math.isfinite(speed) and speed >= 0):
            raise ValueError(f"speed must be 0 (as fast as possible) or a positive factor on real time, got {speed!r}")
        self.device = ForeignWireDevice(recording, Path(recording.path).stem)
        self.url = f"replay://{recording.path}?speed={speed:g}"
        self._speed = speed
        self._clock = clock
        start = recording.start_time
        self._start_s = start.timestamp() if start is not None else wall_clock()
        self._closed = threading.Event()
        self._wait = self._closed.wait if wait is None else wait

    @classmethod
    def from_url(cls, url: SourceUrl) -> ForeignFileSource:
        """Open ``replay://FILE?speed=X&fs=HZ&unit=U`` (``fs`` and ``unit`` for a CSV, as :func:`read_foreign`).

        Raises
        ------
        ValueError
            An unknown parameter or a bad value.
        RecordingError
            The file cannot be read or replayed.
        """
        from biofeed.record.foreign import read_foreign

        url.check_keys({"speed", "fs", "unit"})
        fs_hz = url.number("fs", math.nan)
        recording = read_foreign(
            url.target, sample_rate_hz=None if math.isnan(fs_hz) else fs_hz, unit=url.params.get("unit", "uV")
        )
        return cls(recording, url.number("speed", 0.0, minimum=0.0))

    def _wait_or_closed(self, seconds: float) -> bool:
        return bool(self._wait(seconds)) or self._closed.is_set()

    def chunks(self) -> Iterator[TimedChunk]:
        """Yield the file's frames until it ends or :meth:`close` is called.

        Yields
        ------
        TimedChunk
            Frames with delimiters, stamped with the file's start time plus their device time.
        """
        for chunk in paced_chunks(
            self.device,
            speed=self._speed,
            step_s=_STEP_S,
            max_chunk_bytes=_MAX_CHUNK_BYTES,
            clock=self._clock,
            wait=self._wait_or_closed,
        ):
            if self._closed.is_set():
                return
            yield TimedChunk(chunk.data, self._start_s + chunk.device_time_s)

    def close(self) -> None:
        """Stop: ``chunks()`` returns at its next step. Safe from another thread, and twice."""
        self._closed.set()
