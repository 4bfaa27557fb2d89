"""The stateful stream decoder: chunks of wire bytes in, blocks and events out (PROTOCOL.md 4 and 5).

Sans-I/O in the manner of h11: a source hands :meth:`Decoder.feed` whatever bytes one transport
read gave, and gets back the items those bytes completed. The decoder keeps what the stateless
codec of :mod:`biofeed.protocol.packets` cannot: the partial frame at the end of a chunk, the INFO
in force, and per stream the unwrapped sample counter, from which come gaps, duplicates and device
resets.

Invariant: :meth:`Decoder.feed` and :meth:`Decoder.decode_frame` never raise, whatever the bytes.
Damage is counted in :class:`DecoderStats` and the decoder resynchronises at the next 0x00.
Memory stays bounded: :class:`FrameSplitter` drops runs without a delimiter longer than
``max_frame_bytes``, and the decoder keeps state only for the streams of the INFO in force.

Accounting identity of :class:`DecoderStats`::

    frames == packets + corrupt_frames + refused_major
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
from cobs import cobs

from biofeed.blocks import Block, DeviceInfo, DeviceStatus, Marker, StreamInfo
from biofeed.errors import CorruptPacketError
from biofeed.protocol.packets import (
    CORRUPT_REASONS,
    InfoPayload,
    MarkerPayload,
    PacketType,
    StatusPayload,
    StreamFormat,
    decode_frame,
    decode_samples,
)

__all__ = [
    "DAMAGE_REASONS",
    "RESET_BACK_S",
    "RESET_SEQ_LIMIT",
    "SEQ_REORDER_WINDOW",
    "Decoder",
    "DecoderStats",
    "FrameSplitter",
    "Item",
    "StreamStats",
]

Item: TypeAlias = Block | DeviceInfo | Marker | DeviceStatus
"""What the decoder emits."""

DAMAGE_REASONS: tuple[str, ...] = tuple(r for r in CORRUPT_REASONS if r not in ("major_version", "unknown_type"))
"""Keys of :attr:`DecoderStats.corrupt`: the reasons a frame counts as damaged."""

RESET_BACK_S = 10.0
"""A stream's counter must go back by more than this many seconds of samples to mean a device reset."""

RESET_SEQ_LIMIT = 1024
"""``seq`` below this counts as "restarted near 0" (about 7 s of packets of the reference device)."""

SEQ_REORDER_WINDOW = 256
"""A ``seq`` at most this far behind the last one is a late packet; further behind, the counter restarted."""

_SEQ_MODULO = 1 << 16
_INDEX_MODULO = 1 << 32
_INDEX_HALF = 1 << 31
# Plain ints: comparing against IntEnum members costs more on the per-frame path.
_INFO = int(PacketType.INFO)
_EMG = int(PacketType.EMG)
_IMU = int(PacketType.IMU)
_STATUS = int(PacketType.STATUS)
_MARKER = int(PacketType.MARKER)
_CONTROL = int(PacketType.CONTROL)
_SAMPLE_TYPES = frozenset((_EMG, _IMU))


class FrameSplitter:
    """Splits a byte stream at 0x00 into frames (COBS bytes without the delimiter).

    Parameters
    ----------
    max_frame_bytes : int
        Longest frame kept. A run of more bytes without a 0x00 is garbage (or a frame whose
        delimiter was lost): it is dropped up to the next 0x00 and counted in :attr:`n_oversize`,
        so a stream without delimiters cannot grow memory.

    Attributes
    ----------
    n_oversize : int
        Runs dropped for length.
    """

    def __init__(self, max_frame_bytes: int = 4096) -> None:
        if isinstance(max_frame_bytes, bool) or not isinstance(max_frame_bytes, int) or max_frame_bytes < 1:
            raise ValueError(f"max_frame_bytes must be a positive integer, got {max_frame_bytes!r}")
        self.max_frame_bytes = max_frame_bytes
        self.n_oversize = 0
        self._partial = bytearray()
        self._discarding = False  # inside an over-long run: drop bytes up to the next 0x00

    @property
    def n_pending_bytes(self) -> int:
        """Bytes after the last 0x00 kept for the next chunk (at most ``max_frame_bytes``)."""
        return len(self._partial)

    def feed(self, chunk: bytes) -> list[bytes]:
        """Take one chunk and return the frames it completes, in order.

        Parameters
        ----------
        chunk : bytes-like
            Bytes of one transport read; its boundaries mean nothing.

        Returns
        -------
        list of bytes
            Complete non-empty frames without their 0x00 delimiter, each at most
            ``max_frame_bytes`` long. Bytes after the last 0x00 wait for the next chunk.
        """
        parts = bytes(chunk).split(b"\x00")
        tail = parts.pop()
        limit = self.max_frame_bytes
        if parts:
            if self._discarding:
                parts[0] = b""
                self._discarding = False
            elif self._partial:
                parts[0] = bytes(self._partial) + parts[0]
            self._partial.clear()
            frames = [p for p in parts if p]
            if any(len(p) > limit for p in frames):
                kept = [p for p in frames if len(p) <= limit]
                self.n_oversize += len(frames) - len(kept)
                frames = kept
        else:
            frames = []
        if not self._discarding and tail:
            self._partial += tail
            if len(self._partial) > limit:
                self.n_oversize += 1
                self._partial.clear()
                self._discarding = True
        return frames


@dataclass
class StreamStats:
    """Counts of one stream since the INFO that described it.

    Attributes
    ----------
    name : str
        Stream name.
    kind : str
        ``emg`` for a stream of EMG channels (sent as EMG packets), ``imu`` for any other.
    sample_rate_hz : float
        Nominal sample rate in Hz.
    n_channels : int
        Number of channels.
    n_samples : int
        Samples (per channel) delivered in blocks.
    gaps : int
        Blocks delivered with ``gap_before > 0``.
    samples_lost : int
        Sum of ``gap_before`` over delivered blocks.
    duplicates : int
        Blocks dropped because they started before the expected next index (duplicate or late).
    first_index : int or None
        Unwrapped index of the first sample delivered.
    end_index : int or None
        Unwrapped index one past the last sample delivered.
    """

    name: str
    kind: str
    sample_rate_hz: float
    n_channels: int
    n_samples: int = 0
    gaps: int = 0
    samples_lost: int = 0
    duplicates: int = 0
    first_index: int | None = None
    end_index: int | None = None


def _no_damage() -> dict[str, int]:
    return dict.fromkeys(DAMAGE_REASONS, 0)


@dataclass
class DecoderStats:
    """What the decoder has seen, lost and refused.

    Attributes
    ----------
    frames : int
        Non-empty frames seen (over-long runs dropped by the splitter included).
    packets : int
        Frames that decoded to a valid packet with a valid payload, whether delivered or skipped
        (unknown type, CONTROL, no INFO yet, duplicate).
    corrupt : dict of str to int
        Damaged frames by reason, one key per :data:`DAMAGE_REASONS` (zero when none).
    unknown_type : int
        Valid packets of a type this protocol version does not know (skipped).
    control : int
        CONTROL packets (host -> device) that arrived at the host (skipped).
    refused_major : int
        Packets of another major protocol version (refused).
    refused_version : tuple of int or None
        (major, minor) of the last refused packet.
    lost_packets : int
        Packets missing from jumps of ``seq``: lost on the link, or arrived damaged (and then also
        counted in :attr:`corrupt`).
    no_info : int
        Packets of a stream no INFO had described yet (skipped; the raw frames stay in a recording).
    joined_mid_frame : int
        1 when the first frame seen did not decode: the tail of a frame the receiver joined in the
        middle (a port opened while the device was sending), not damage (PROTOCOL.md section 1).
    resets : int
        Device counter resets detected.
    duplicates : int
        Blocks dropped as duplicate or late, over all streams.
    streams : dict of str to StreamStats
        Per stream of the INFO in force, by name.
    """

    frames: int = 0
    packets: int = 0
    corrupt: dict[str, int] = field(default_factory=_no_damage)
    unknown_type: int = 0
    control: int = 0
    refused_major: int = 0
    refused_version: tuple[int, int] | None = None
    lost_packets: int = 0
    no_info: int = 0
    joined_mid_frame: int = 0
    resets: int = 0
    duplicates: int = 0
    streams: dict[str, StreamStats] = field(default_factory=dict)

    @property
    def corrupt_frames(self) -> int:
        """Damaged frames of every reason."""
        return sum(self.corrupt.values())


class _StreamState:
    """One described stream: its format, precomputed decoding constants and its timeline."""

    __slots__ = (
        "base_index",
        "format",
        "info",
        "last_index",
        "last_raw",
        "n_channels",
        "next_index",
        "packet_type",
        "reset_back_samples",
        "scales",
        "set_bytes",
        "stats",
    )

    def __init__(self, stream: StreamFormat, info: StreamInfo) -> None:
        self.format = stream
        self.info = info
        self.n_channels = len(stream.channels)
        self.set_bytes = stream.bytes_per_sample_set
        self.scales: npt.NDArray[np.float64] = stream.scales
        self.packet_type = _EMG if info.is_emg else _IMU
        self.reset_back_samples = RESET_BACK_S * info.sample_rate_hz
        self.stats = StreamStats(info.name, "emg" if info.is_emg else "imu", info.sample_rate_hz, self.n_channels)
        # Unwrapped index = base_index + device counter until the first block fixes a reference;
        # a device reset moves base_index to continue the timeline.
        self.base_index = 0
        self.last_raw: int | None = None
        self.last_index = 0
        self.next_index: int | None = None

    def unwrap(self, raw: int) -> int:
        """Unwrapped index of the u32 device counter ``raw``, nearest the last accepted block."""
        if self.last_raw is None:
            return self.base_index + raw
        step = (raw - self.last_raw) % _INDEX_MODULO
        if step >= _INDEX_HALF:
            step -= _INDEX_MODULO
        return self.last_index + step


class Decoder:
    """Turns wire bytes into :class:`Block`, :class:`DeviceInfo`, :class:`Marker` and :class:`DeviceStatus`.

    Attributes
    ----------
    stats : DecoderStats
        Counts so far.
    device_info : DeviceInfo or None
        The INFO in force, None before the first.

    Notes
    -----
    - A :class:`DeviceInfo` item is emitted on the first INFO and whenever it changes (payload or
      protocol version); periodic identical INFOs emit nothing. A changed stream starts a new
      timeline (its first block has ``gap_before == 0``); unchanged streams continue theirs.
    - Per stream, a block starting after the expected next index has ``gap_before`` set to the
      missing samples; one starting before it is dropped as duplicate or late, unless the counter
      went back by more than :data:`RESET_BACK_S` seconds of samples in a packet whose ``seq`` is
      below :data:`RESET_SEQ_LIMIT`: a device reset. Every stream's timeline then continues one
      sample period of the slowest stream after the latest sample seen, a gap of unknown length
      marked by ``gap_before >= 1``, at the same device time for every stream.
    - STATUS and MARKER of stream 0 (device level) carry ``stream_name == ""``, the raw index and
      no channel flags; of a stream not yet described they count as ``no_info``.
    """

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self.device_info: DeviceInfo | None = None
        self._splitter = FrameSplitter()
        self._streams: dict[int, _StreamState] = {}
        self._info_key: tuple[tuple[int, int], bytes] | None = None
        self._info_content: tuple[tuple[int, int], InfoPayload] | None = None
        self._last_seq: int | None = None
        self._lost_at_last_wrap = 0
        self._missing_seqs: set[int] = set()

    def feed(self, chunk: bytes, received_at: float = math.nan) -> list[Item]:
        """Take one chunk and return the items its completed frames give. Never raises.

        Parameters
        ----------
        chunk : bytes-like
            Bytes of one transport read; boundaries mean nothing.
        received_at : float
            Host time (``time.time()``) of arrival, copied into the items; NaN when unknown.

        Returns
        -------
        list of Item
            In wire order.
        """
        items: list[Item] = []
        for frame in self.split(chunk):
            self._decode_into(frame, received_at, items)
        return items

    def split(self, chunk: bytes) -> list[bytes]:
        """Split one chunk into the frames it completes, without decoding them. Never raises.

        For callers that must see each frame before it is decoded (the recorder stores frames as
        received); they then call :meth:`decode_frame` on each. Over-long runs without a delimiter
        are dropped and counted as ``corrupt["oversize"]`` here.

        Returns
        -------
        list of bytes
            COBS bytes of each completed frame, without the delimiter.
        """
        splitter = self._splitter
        n_oversize = splitter.n_oversize
        frames = splitter.feed(chunk)
        if splitter.n_oversize != n_oversize:
            dropped = splitter.n_oversize - n_oversize
            self.stats.frames += dropped
            self.stats.corrupt["oversize"] += dropped
        return frames

    def decode_frame(self, frame: bytes, received_at: float = math.nan) -> list[Item]:
        """Decode one frame without its 0x00 delimiter (as a recording stores it). Never raises.

        Parameters
        ----------
        frame : bytes-like
            COBS bytes of one frame; an empty frame gives nothing and is not counted.
        received_at : float
            Host time of arrival; NaN when unknown.

        Returns
        -------
        list of Item
            Zero or one item.
        """
        items: list[Item] = []
        if frame:
            self._decode_into(bytes(frame), received_at, items)
        return items

    # -- per frame -------------------------------------------------------------------------------

    def _decode_into(self, frame: bytes, received_at: float, items: list[Item]) -> None:
        stats = self.stats
        stats.frames += 1
        try:
            packet = decode_frame(frame)
        except CorruptPacketError as exc:
            if exc.reason == "major_version":
                version = cobs.decode(frame)[0]
                stats.refused_major += 1
                stats.refused_version = (version >> 4, version & 0x0F)
            elif stats.frames == 1:
                stats.joined_mid_frame = 1
            else:
                stats.corrupt[exc.reason] += 1
            return
        ptype = packet.type
        if ptype == _CONTROL:
            # Sent by a host, so its seq is not the device's counter.
            stats.control += 1
            stats.packets += 1
            return
        self._track_seq(packet.seq)
        try:
            if ptype in _SAMPLE_TYPES:
                self._on_samples(
                    ptype, packet.stream_id, packet.seq, packet.first_sample_index, packet.payload, received_at, items
                )
            elif ptype == _INFO:
                self._on_info(packet.version, packet.payload, items)
            elif ptype == _STATUS:
                self._on_status(packet.stream_id, packet.first_sample_index, packet.payload, received_at, items)
            elif ptype == _MARKER:
                self._on_marker(packet.stream_id, packet.first_sample_index, packet.payload, received_at, items)
            else:
                stats.unknown_type += 1
        except CorruptPacketError as exc:
            stats.corrupt[exc.reason] += 1
            return
        stats.packets += 1

    def _track_seq(self, seq: int) -> None:
        last = self._last_seq
        if last is None:
            self._last_seq = seq
            return
        step = (seq - last) % _SEQ_MODULO
        if step == 1:
            self._last_seq = seq
            return
        if step == 0:
            return
        if step < _SEQ_MODULO // 2:
            n_lost = step - 1
            self._last_seq = seq
            if n_lost:
                self.stats.lost_packets += n_lost
                self._remember_missing(last, n_lost)
            if seq < last:
                # Crossed 0: a wrap, or a restart of the device; a reset found later takes it back.
                self._lost_at_last_wrap = n_lost
        elif _SEQ_MODULO - step <= SEQ_REORDER_WINDOW:
            # A late packet: if it was counted lost, it was not.
            if seq in self._missing_seqs:
                self._missing_seqs.discard(seq)
                self.stats.lost_packets -= 1
                self._lost_at_last_wrap = max(0, self._lost_at_last_wrap - 1)
        else:
            # Far behind: the counter restarted; nothing is known lost.
            self._last_seq = seq
            self._missing_seqs.clear()
            self._lost_at_last_wrap = 0

    def _remember_missing(self, last: int, n_lost: int) -> None:
        """Keep the seqs skipped within the reorder window, so a late arrival is not counted lost."""
        missing = self._missing_seqs
        if n_lost > SEQ_REORDER_WINDOW:
            missing.clear()
            return
        missing.update((last + k) % _SEQ_MODULO for k in range(1, n_lost + 1))
        if len(missing) > SEQ_REORDER_WINDOW:
            newest = (last + n_lost + 1) % _SEQ_MODULO
            self._missing_seqs = {m for m in missing if (newest - m) % _SEQ_MODULO <= SEQ_REORDER_WINDOW}

    def _on_samples(
        self,
        ptype: int,
        stream_id: int,
        seq: int,
        raw_index: int,
        payload: bytes,
        received_at: float,
        items: list[Item],
    ) -> None:
        state = self._streams.get(stream_id)
        if state is None:
            self.stats.no_info += 1
            return
        if ptype != state.packet_type:
            raise CorruptPacketError("payload", f"{PacketType(ptype).name} packet for stream {state.info.name!r}")
        n_bytes = len(payload)
        if not n_bytes or n_bytes % state.set_bytes:
            raise CorruptPacketError("payload_size", f"{n_bytes} bytes is not a multiple of {state.set_bytes}")
        index = state.unwrap(raw_index)
        next_index = state.next_index
        gap = 0
        if next_index is not None:
            gap = index - next_index
            if gap < 0:
                if -gap > state.reset_back_samples and seq < RESET_SEQ_LIMIT:
                    self._on_reset()
                    index = state.base_index + raw_index
                    gap = index - next_index
                else:
                    state.stats.duplicates += 1
                    self.stats.duplicates += 1
                    return
        data = decode_samples(payload, state.format.sample_format, state.n_channels) * state.scales
        data.flags.writeable = False  # hand Block a read-only array, which it then need not copy
        n_samples = n_bytes // state.set_bytes
        state.last_raw = raw_index
        state.last_index = index
        state.next_index = index + n_samples
        s = state.stats
        s.n_samples += n_samples
        if gap:
            s.gaps += 1
            s.samples_lost += gap
        if s.first_index is None:
            s.first_index = index
        s.end_index = index + n_samples
        items.append(Block(state.info, data, index, gap, received_at))

    def _on_reset(self) -> None:
        self.stats.resets += 1
        self.stats.lost_packets -= self._lost_at_last_wrap
        self._lost_at_last_wrap = 0
        self._missing_seqs.clear()
        states = self._streams.values()
        latest_s = max((s.next_index / s.info.sample_rate_hz for s in states if s.next_index is not None), default=0.0)
        resume_s = latest_s + max(1.0 / s.info.sample_rate_hz for s in states)
        for s in states:
            s.base_index = math.ceil(resume_s * s.info.sample_rate_hz)
            if s.next_index is not None:
                # Rounding must never let the new timeline start on or before the old one ends.
                s.base_index = max(s.base_index, s.next_index + 1)
            s.last_raw = None

    def _on_info(self, version: tuple[int, int], payload: bytes, items: list[Item]) -> None:
        key = (version, payload)
        if key == self._info_key:
            return
        parsed = InfoPayload.from_payload(payload)
        if len({s.name for s in parsed.streams}) != len(parsed.streams):
            raise CorruptPacketError("payload", "INFO repeats a stream name")
        self._info_key = key
        if (version, parsed) == self._info_content:
            return  # the same INFO with bytes of a newer minor version appended
        device_info = parsed.to_device_info(version)
        streams: dict[int, _StreamState] = {}
        for stream, info in zip(parsed.streams, device_info.streams, strict=True):
            state = self._streams.get(stream.stream_id)
            if state is None or state.format != stream or state.info != info:
                state = _StreamState(stream, info)
            streams[stream.stream_id] = state
        self._streams = streams
        self.stats.streams = {s.info.name: s.stats for s in streams.values()}
        self._info_content = (version, parsed)
        self.device_info = device_info
        items.append(device_info)

    def _place(self, stream_id: int, raw_index: int) -> tuple[str, int, int] | None:
        """Stream name, unwrapped index and channel count an event refers to; None when undescribed."""
        if not stream_id:
            return "", raw_index, 0
        state = self._streams.get(stream_id)
        if state is None:
            self.stats.no_info += 1
            return None
        return state.info.name, state.unwrap(raw_index), state.n_channels

    def _on_status(self, stream_id: int, raw_index: int, payload: bytes, received_at: float, items: list[Item]) -> None:
        status = StatusPayload.from_payload(payload)
        place = self._place(stream_id, raw_index)
        if place is None:
            return
        name, index, n_channels = place
        items.append(
            DeviceStatus(
                stream_name=name,
                sample_index=index,
                battery_pct=status.battery_pct if status.battery_pct <= 100 else None,
                battery_mv=status.battery_mv or None,
                lead_off=tuple(bool(status.lead_off_mask >> i & 1) for i in range(n_channels)),
                saturated=tuple(bool(status.saturation_mask >> i & 1) for i in range(n_channels)),
                received_at=received_at,
            )
        )

    def _on_marker(self, stream_id: int, raw_index: int, payload: bytes, received_at: float, items: list[Item]) -> None:
        marker = MarkerPayload.from_payload(payload)
        place = self._place(stream_id, raw_index)
        if place is None:
            return
        name, index, _ = place
        items.append(Marker(name, index, marker.code, marker.label, received_at))
