"""Samples pulled from another acquisition library, as the wire frames a biofeed board would send.

Lab Streaming Layer streams and BrainFlow boards hand over floats in physical units and no wire
frames. Rather than open a second way into the runner, their sources encode what they pull as
frames of firmware_protocol/PROTOCOL.md: an INFO built from the library's metadata (sent first and
again every second of samples), then sample packets. So recording, decoding, replay and export see
one kind of input, and a replay of such a recording goes through the same decoder as a live run.

Counts use a fixed resolution per channel kind (:data:`RESOLUTION_BY_KIND`, int24 on the wire),
fine enough that rounding stays far below any sensor's noise: 0.025 uV for EMG (about the LSB of
an ADS1299 at gain 24, 0.022 uV; range +-210 mV), so rounding adds at most 0.0125 uV. A value
beyond the range is clipped and its channel flagged as saturated in a STATUS packet. A sample set
with a value that is not finite (NaN, inf) is left out, so it becomes a gap, the one way biofeed
marks missing samples. Streams of more than 16 channels, the most one wire stream carries, are
split into parts named ``NAME_1``, ``NAME_2``...
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from biofeed.blocks import UNIT_BY_KIND, ChannelKind, DeviceInfo, StreamInfo
from biofeed.errors import SourceError
from biofeed.protocol.packets import (
    MAX_PAYLOAD_BYTES,
    ChannelFormat,
    InfoPayload,
    Packet,
    PacketType,
    SampleFormat,
    StatusPayload,
    StreamFormat,
    encode_frame,
    encode_samples,
)

__all__ = ["MAX_CHANNELS_PER_STREAM", "MAX_STREAMS", "RESOLUTION_BY_KIND", "SampleFramer"]

RESOLUTION_BY_KIND: dict[ChannelKind, float] = {
    ChannelKind.EMG: 0.025,  # uV per count: +-210 mV
    ChannelKind.ACC: 1e-5,  # g per count: +-84 g
    ChannelKind.GYRO: 1e-3,  # deg/s per count: +-8389 deg/s
    ChannelKind.MAG: 1e-3,  # uT per count: +-8389 uT
    ChannelKind.QUAT: 1e-6,  # per count: +-8.4
    ChannelKind.ANGLE: 1e-4,  # deg per count: +-839 deg
}
"""Physical units per count of each channel kind on the wire (int24, so the range is +-2^23 counts)."""

MAX_CHANNELS_PER_STREAM = 16
"""Channels one wire stream carries (PROTOCOL.md 3.1)."""

MAX_STREAMS = 8
"""Streams one INFO describes (PROTOCOL.md 3.1)."""

_FORMAT = SampleFormat.INT24
_U32 = 1 << 32
_PERIODIC = 0x01
_UNKNOWN_BATTERY_PCT = 255


@dataclass
class _WireStream:
    """One wire stream: a slice of the rows of an input stream, with its counter and flags."""

    format: StreamFormat
    rows: slice
    scales: npt.NDArray[np.float64]  # shape (n_channels, 1): the float32 scales the decoder multiplies by
    max_samples_per_packet: int
    next_index: int = 0
    saturation_mask: int = 0


class SampleFramer:
    """Encodes float sample arrays of named streams as wire frames of one virtual device.

    Parameters
    ----------
    device_id : str
        Device id the INFO carries (e.g. ``lsl:SOURCE_ID`` or ``brainflow:synthetic``).
    board_profile : str
        Board profile the INFO carries (e.g. ``lsl`` or ``brainflow-synthetic``).
    streams : sequence of StreamInfo
        The input streams: names, nominal rates and channels. Every channel's unit must be
        ``UNIT_BY_KIND[kind]``: the caller converts first.
    firmware_version : tuple of int
        (major, minor, patch) the INFO carries; the library's version where it has one.

    Raises
    ------
    SourceError
        When the streams cannot be described in one INFO (more than :data:`MAX_STREAMS` wire
        streams, names too long, more than 1024 bytes), a rate below 0.001 Hz, or a unit that is
        not the kind's.
    """

    def __init__(
        self,
        device_id: str,
        board_profile: str,
        streams: Sequence[StreamInfo],
        *,
        firmware_version: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        self._parts: dict[str, list[_WireStream]] = {}
        formats: list[StreamFormat] = []
        for stream in streams:
            parts = self._split(stream, first_id=len(formats) + 1)
            self._parts[stream.name] = parts
            formats += [p.format for p in parts]
        if len(self._parts) != len(streams):
            raise SourceError(f"stream names must be unique, got {[s.name for s in streams]}")
        if not 1 <= len(formats) <= MAX_STREAMS:
            raise SourceError(
                f"{len(formats)} wire streams (at most {MAX_CHANNELS_PER_STREAM} channels each) cannot be described; "
                f"the wire protocol carries 1 to {MAX_STREAMS}"
            )
        major, minor, patch = firmware_version
        info = InfoPayload((major, minor, patch), device_id, board_profile, tuple(formats))
        try:
            self._info_payload = info.to_payload()
        except ValueError as exc:
            raise SourceError(f"the stream description does not fit the wire protocol: {exc}") from None
        if len(self._info_payload) > MAX_PAYLOAD_BYTES:
            raise SourceError(
                f"the stream description takes {len(self._info_payload)} bytes, more than one INFO holds "
                f"({MAX_PAYLOAD_BYTES}): shorten the channel names or sites"
            )
        self.device_info: DeviceInfo = info.to_device_info()
        """The device as the decoder will see it (wire streams after splitting)."""
        self._seq = 0
        self._clock_part = next(iter(self._parts.values()))[0]
        self._info_second = 0

    @staticmethod
    def _split(stream: StreamInfo, first_id: int) -> list[_WireStream]:
        rate_mhz = round(stream.sample_rate_hz * 1000)
        if rate_mhz < 1 or rate_mhz >= _U32:
            raise SourceError(f"stream {stream.name!r}: nominal rate {stream.sample_rate_hz} Hz cannot be sent")
        for c in stream.channels:
            if c.unit != UNIT_BY_KIND[c.kind]:
                raise SourceError(
                    f"channel {c.name!r} of stream {stream.name!r} is in {c.unit!r}; {c.kind.value} channels travel "
                    f"in {UNIT_BY_KIND[c.kind]!r}"
                )
        n_parts = math.ceil(stream.n_channels / MAX_CHANNELS_PER_STREAM)
        parts = []
        for k in range(n_parts):
            rows = slice(k * MAX_CHANNELS_PER_STREAM, min((k + 1) * MAX_CHANNELS_PER_STREAM, stream.n_channels))
            channels = tuple(
                ChannelFormat(c.kind, RESOLUTION_BY_KIND[c.kind], c.name, c.site) for c in stream.channels[rows]
            )
            name = stream.name if n_parts == 1 else f"{stream.name}_{k + 1}"
            wire = StreamFormat(first_id + k, name, _FORMAT, rate_mhz, channels)
            parts.append(
                _WireStream(
                    format=wire,
                    rows=rows,
                    scales=np.array([[np.float32(c.scale)] for c in channels], dtype=np.float64),
                    max_samples_per_packet=MAX_PAYLOAD_BYTES // wire.bytes_per_sample_set,
                )
            )
        return parts

    def start(self) -> bytes:
        """The first bytes of the virtual device: one 0x00 (flushes a partial frame) and the INFO."""
        return b"\x00" + self._frame(PacketType.INFO, 0, 0, self._info_payload)

    def next_index(self, stream_name: str) -> int:
        """Sample index the next sample of an input stream gets.

        Raises
        ------
        KeyError
            For a stream the framer was not built with.
        """
        return self._parts[stream_name][0].next_index

    def samples(self, stream_name: str, data: npt.ArrayLike, *, gap_before: int = 0) -> bytes:
        """Frames carrying the next samples of a stream.

        Parameters
        ----------
        stream_name : str
            An input stream's name.
        data : array_like, shape (n_channels, n_samples)
            Samples in the channels' physical units (``UNIT_BY_KIND``). Sample sets with a value
            that is not finite are left out and become a gap.
        gap_before : int
            Samples known to be missing before these (the counter skips them).

        Returns
        -------
        bytes
            Sample frames, STATUS frames when a channel's saturation changes, and the periodic INFO
            each time the device's first stream passes a whole second.

        Raises
        ------
        KeyError
            For a stream the framer was not built with.
        ValueError
            When ``data`` has the wrong number of channels or ``gap_before`` is negative.
        """
        parts = self._parts[stream_name]
        n_channels = parts[-1].rows.stop
        values = np.asarray(data, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] != n_channels:
            raise ValueError(f"data must have shape ({n_channels}, n_samples) for {stream_name!r}, got {values.shape}")
        if gap_before < 0:
            raise ValueError(f"gap_before must be >= 0, got {gap_before}")
        # Judged over the whole input stream, so the parts of a split stream stay aligned.
        finite = np.asarray(np.isfinite(values).all(axis=0), dtype=np.bool_)
        out: list[bytes] = []
        for part in parts:
            part.next_index += gap_before
            self._encode_part(part, values[part.rows], finite, out)
        return b"".join(out)

    def _encode_part(
        self, part: _WireStream, values: npt.NDArray[np.float64], finite: npt.NDArray[np.bool_], out: list[bytes]
    ) -> None:
        lo, hi = _FORMAT.count_range
        counts = np.rint(np.where(finite, values, 0.0) / part.scales)
        clipped: npt.NDArray[np.bool_] = (counts < lo) | (counts > hi)
        counts = np.clip(counts, lo, hi).astype(np.int32)
        start = 0
        n_samples = values.shape[1]
        while start < n_samples:
            if not finite[start]:
                run_end = _run_end(finite, start, False)
                part.next_index += run_end - start  # left out: the decoder sees a gap
                start = run_end
                continue
            stop = min(_run_end(finite, start, True), start + part.max_samples_per_packet)
            mask = _mask(np.asarray(clipped[:, start:stop].any(axis=1), dtype=np.bool_))
            if mask != part.saturation_mask:
                part.saturation_mask = mask
                status = StatusPayload(_UNKNOWN_BATTERY_PCT, 0, 0, mask).to_payload()
                out.append(self._frame(PacketType.STATUS, part.format.stream_id, part.next_index, status))
            payload = encode_samples(counts[:, start:stop], _FORMAT)
            ptype = PacketType.EMG if all(c.kind is ChannelKind.EMG for c in part.format.channels) else PacketType.IMU
            out.append(self._frame(ptype, part.format.stream_id, part.next_index, payload))
            part.next_index += stop - start
            start = stop
            self._periodic_info(out)

    def _periodic_info(self, out: list[bytes]) -> None:
        clock = self._clock_part
        second = int(clock.next_index // clock.format.sample_rate_hz)
        if second > self._info_second:
            self._info_second = second
            out.append(self._frame(PacketType.INFO, 0, 0, self._info_payload, _PERIODIC))

    def _frame(self, ptype: PacketType, stream_id: int, first_index: int, payload: bytes, flags: int = 0) -> bytes:
        frame = encode_frame(Packet(ptype, stream_id, self._seq, first_index % _U32, payload, flags))
        self._seq = (self._seq + 1) & 0xFFFF
        return frame


def _run_end(flags: npt.NDArray[np.bool_], start: int, value: bool) -> int:
    """Index one past the run of ``value`` that begins at ``start``."""
    other = np.flatnonzero(flags[start:] != value)
    return start + int(other[0]) if other.size else int(flags.size)


def _mask(bits: npt.NDArray[np.bool_]) -> int:
    return sum(1 << int(i) for i in np.flatnonzero(bits))
