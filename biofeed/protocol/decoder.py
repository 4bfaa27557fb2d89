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
from collections.abc import Iterable
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
    decode_sample_counts,
    unpack_frame,
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

_SCALE_RUN_SETS = 1024  # sample sets a cached scale run covers (8 kB per channel); longer runs tile anew
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
            frames = list(filter(None, parts))
            if max(map(len, frames), default=0) > limit:
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
        "next_raw",
        "packet_type",
        "reset_back_samples",
        "scale_run",
        "set_bytes",
        "stats",
    )

    def __init__(self, stream: StreamFormat, info: StreamInfo) -> None:
        self.format = stream
        self.info = info
        self.n_channels = len(stream.channels)
        self.set_bytes = stream.bytes_per_sample_set
        # Per-channel scales repeated over sample sets: multiplying a flat run of samples by it is 3x
        # faster than broadcasting a column of n_channels scales, whose inner loop is n_channels long.
        self.scale_run: npt.NDArray[np.float64] = np.tile(stream.scales[:, 0], _SCALE_RUN_SETS)
        self.packet_type = _EMG if info.is_emg else _IMU
        self.reset_back_samples = RESET_BACK_S * info.sample_rate_hz
        self.stats = StreamStats(info.name, "emg" if info.is_emg else "imu", info.sample_rate_hz, self.n_channels)
        # Unwrapped index = base_index + device counter until the first block fixes a reference;
        # a device reset moves base_index to continue the timeline.
        self.base_index = 0
        self.last_raw: int | None = None
        self.last_index = 0
        self.next_index: int | None = None
        self.next_raw: int | None = None  # device counter of next_index while last_raw is known

    def to_physical(self, payloads: list[bytes]) -> npt.NDArray[np.float64]:
        """Samples of payloads of whole sample sets, in physical units, shape (n_channels, n_samples).

        The values of ``decode_samples(b"".join(payloads), ...)`` times the channel scales, in half
        the numpy calls. Read-only and Fortran-contiguous (samples major, as on the wire), so the
        columns of one packet are a contiguous view.
        """
        counts = decode_sample_counts(b"".join(payloads), self.format.sample_format)
        n_values = len(counts)
        scale_run = self.scale_run
        if n_values > len(scale_run):
            scale_run = np.tile(scale_run[: self.n_channels], n_values // self.n_channels)
        values = np.multiply(counts, scale_run[:n_values])
        values.flags.writeable = False
        return values.reshape(-1, self.n_channels).T

    def advance(self, raw: int, index: int, n_samples: int) -> None:
        """Take a block of ``n_samples`` at device counter ``raw``, unwrapped ``index``, as the latest."""
        self.last_raw = raw
        self.last_index = index
        self.next_index = index + n_samples
        self.next_raw = (raw + n_samples) % _INDEX_MODULO

    def unwrap(self, raw: int) -> int:
        """Unwrapped index of the u32 device counter ``raw``, nearest the last accepted block."""
        if self.last_raw is None:
            return self.base_index + raw
        step = (raw - self.last_raw) % _INDEX_MODULO
        if step >= _INDEX_HALF:
            step -= _INDEX_MODULO
        return self.last_index + step


class _PendingSamples:
    """Sample packets of one stream accepted in one call, waiting for their samples to be decoded."""

    __slots__ = ("blocks", "payloads")

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.blocks: list[tuple[int, int, int, int]] = []  # (slot, first index, gap_before, n_samples)


def _decode_samples(pending: dict[_StreamState, _PendingSamples], slots: list[Item | None], received_at: float) -> None:
    """Decode each stream's queued payloads in one numpy pass and put their blocks in their slots.

    A block's data is a read-only view of its columns of the stream's decoded array, which is
    laid out samples-major: each view is Fortran-contiguous, as one packet decoded alone would be.
    """
    for state, queued in pending.items():
        data = state.to_physical(queued.payloads)
        info = state.info
        start = 0
        for slot, index, gap, n_samples in queued.blocks:
            end = start + n_samples
            slots[slot] = Block._trusted(info, data[:, start:end], index, gap, received_at)
            start = end
        stats = state.stats
        stats.n_samples += start
        if stats.first_index is None:
            stats.first_index = queued.blocks[0][1]
        stats.end_index = state.next_index


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
    - The samples of the packets of one stream completed by one call are decoded together: the
      data of their blocks are read-only views of one array, so a block kept alive keeps that
      call's samples of its stream alive (a few kB for a serial read).
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
        return self._decode_frames(self.split(chunk), received_at)

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
        return self.decode_frames((frame,), received_at)

    def decode_frames(self, frames: Iterable[bytes], received_at: float = math.nan) -> list[Item]:
        """Decode frames that arrived together, as :meth:`decode_frame` on each in turn would. Never raises.

        For callers that :meth:`split` a chunk to store its frames before decoding them: the samples
        of all the frames are decoded together, as :meth:`feed` does, several times faster than
        frame by frame.

        Parameters
        ----------
        frames : iterable of bytes-like
            COBS bytes of frames without delimiters, in wire order; empty frames are skipped.
        received_at : float
            Host time of arrival of all of them; NaN when unknown.

        Returns
        -------
        list of Item
            In wire order.
        """
        return self._decode_frames([bytes(frame) for frame in frames if frame], received_at)

    # -- per frame -------------------------------------------------------------------------------

    def _decode_frames(self, frames: list[bytes], received_at: float) -> list[Item]:
        """Decode frames in wire order; the samples of each stream are decoded in one numpy pass at the end."""
        stats = self.stats
        slots: list[Item | None] = []  # None: the block of a pending packet, filled in by _decode_samples
        pending: dict[_StreamState, _PendingSamples] = {}
        for frame in frames:
            stats.frames += 1
            try:
                ptype, stream_id, seq, raw_index, payload, _, version = unpack_frame(frame)
            except CorruptPacketError as exc:
                self._on_corrupt(frame, exc.reason)
                continue
            if ptype == _CONTROL:
                # Sent by a host, so its seq is not the device's counter.
                stats.control += 1
                stats.packets += 1
                continue
            last_seq = self._last_seq
            if last_seq is not None and (seq - last_seq) % _SEQ_MODULO == 1:
                self._last_seq = seq  # the common case of _track_seq, inline
            else:
                self._track_seq(seq)
            try:
                if ptype in _SAMPLE_TYPES:
                    n_bytes = len(payload)
                    state = self._streams.get(stream_id)
                    if (
                        state is not None
                        and raw_index == state.next_raw
                        and ptype == state.packet_type
                        and n_bytes
                        and not n_bytes % state.set_bytes
                        and (index := state.next_index) is not None  # always, with next_raw
                    ):
                        # A whole packet continuing its stream's timeline: the common case of _place_samples.
                        gap = 0
                    else:
                        placed = self._place_samples(ptype, stream_id, seq, raw_index, n_bytes)
                        if placed is None:
                            stats.packets += 1
                            continue
                        state, index, gap = placed
                    n_samples = n_bytes // state.set_bytes
                    state.advance(raw_index, index, n_samples)
                    queued = pending.get(state)
                    if queued is None:
                        queued = pending[state] = _PendingSamples()
                    queued.payloads.append(payload)
                    queued.blocks.append((len(slots), index, gap, n_samples))
                    slots.append(None)
                elif ptype == _INFO:
                    self._on_info(version, payload, slots)
                elif ptype == _STATUS:
                    self._on_status(stream_id, raw_index, payload, received_at, slots)
                elif ptype == _MARKER:
                    self._on_marker(stream_id, raw_index, payload, received_at, slots)
                else:
                    stats.unknown_type += 1
            except CorruptPacketError as exc:
                stats.corrupt[exc.reason] += 1
                continue
            stats.packets += 1
        if pending:
            _decode_samples(pending, slots, received_at)
        return [item for item in slots if item is not None]

    def _on_corrupt(self, frame: bytes, reason: str) -> None:
        stats = self.stats
        if reason == "major_version":
            version = cobs.decode(frame)[0]
            stats.refused_major += 1
            stats.refused_version = (version >> 4, version & 0x0F)
        elif stats.frames == 1:
            stats.joined_mid_frame = 1
        else:
            stats.corrupt[reason] += 1

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

    def _place_samples(
        self, ptype: int, stream_id: int, seq: int, raw_index: int, n_bytes: int
    ) -> tuple[_StreamState, int, int] | None:
        """Stream, unwrapped first index and ``gap_before`` of a sample packet; None when it is skipped."""
        state = self._streams.get(stream_id)
        if state is None:
            self.stats.no_info += 1
            return None
        if ptype != state.packet_type:
            raise CorruptPacketError("payload", f"{PacketType(ptype).name} packet for stream {state.info.name!r}")
        if not n_bytes or n_bytes % state.set_bytes:
            raise CorruptPacketError("payload_size", f"{n_bytes} bytes is not a multiple of {state.set_bytes}")
        index = state.unwrap(raw_index)
        next_index = state.next_index
        if next_index is None:
            return state, index, 0
        gap = index - next_index
        if gap < 0:
            if -gap > state.reset_back_samples and seq < RESET_SEQ_LIMIT:
                self._on_reset()
                index = state.base_index + raw_index
                gap = index - next_index
            else:
                state.stats.duplicates += 1
                self.stats.duplicates += 1
                return None
        if gap:
            state.stats.gaps += 1
            state.stats.samples_lost += gap
        return state, index, gap

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
            s.next_raw = None

    def _on_info(self, version: tuple[int, int], payload: bytes, items: list[Item | None]) -> None:
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

    def _on_status(
        self, stream_id: int, raw_index: int, payload: bytes, received_at: float, items: list[Item | None]
    ) -> None:
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

    def _on_marker(
        self, stream_id: int, raw_index: int, payload: bytes, received_at: float, items: list[Item | None]
    ) -> None:
        marker = MarkerPayload.from_payload(payload)
        place = self._place(stream_id, raw_index)
        if place is None:
            return
        name, index, _ = place
        items.append(Marker(name, index, marker.code, marker.label, received_at))
