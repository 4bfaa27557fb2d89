"""Test sources around the simulated device: a link with one-sided delays, and taps on the IMUs.

The simulator at speed 0 stamps each chunk with the exact host time a real-time run would deliver
it at. Real links deliver later, never earlier: :class:`DelayedLink` adds a fixed smallest latency
plus BLE-like jitter (the wait for the next connection event, retransmissions one or more
connection intervals later, rare stalls of a few hundred ms), and keeps arrivals in order (a
packet cannot overtake the one before it). :class:`TappedDevice` adds knocks on the body, felt by
the IMUs at given physical (host) moments, to a simulated device's acceleration.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from biofeed.protocol.decoder import FrameSplitter
from biofeed.protocol.packets import (
    MarkerPayload,
    Packet,
    PacketType,
    SampleFormat,
    decode_frame,
    decode_samples,
    encode_frame,
    encode_samples,
)
from biofeed.sim.device import ACC_SCALE_G, EMG_RATE_HZ, EMG_SAMPLES_PER_PACKET, IMU_RATE_HZ
from biofeed.sources.base import Source, TimedChunk
from biofeed.sources.sim import SimSource

__all__ = ["TAP_WIDTH_S", "DelayedLink", "TappedDevice"]

TAP_WIDTH_S = 0.012
"""Standard deviation of a tap's Gaussian acceleration pulse, s."""


class DelayedLink:
    """A source whose chunks arrive later than the wrapped one says, by one-sided random delays.

    Parameters
    ----------
    source : Source
        The wrapped source (a simulator at speed 0: exact departure times).
    rng : numpy Generator
        Seeded randomness.
    min_latency_s : float
        Smallest delay: every chunk is at least this late.
    interval_s : float
        BLE connection interval: uniform wait for the next connection event; retransmissions add
        1 to 3 intervals with ``retry_probability``.
    stall_probability : float
        Chance of a stall of 0.1 to 0.3 s.
    """

    def __init__(
        self,
        source: Source,
        rng: np.random.Generator,
        *,
        min_latency_s: float = 0.004,
        interval_s: float = 0.0075,
        retry_probability: float = 0.05,
        stall_probability: float = 0.002,
    ) -> None:
        self.url = source.url
        self._source = source
        self._rng = rng
        self._min_latency_s = min_latency_s
        self._interval_s = interval_s
        self._retry_probability = retry_probability
        self._stall_probability = stall_probability

    def delay_s(self) -> float:
        """One chunk's delay, s."""
        rng = self._rng
        delay = self._min_latency_s + rng.uniform(0.0, self._interval_s)
        if rng.random() < self._retry_probability:
            delay += self._interval_s * int(rng.integers(1, 4))
        if rng.random() < self._stall_probability:
            delay += rng.uniform(0.1, 0.3)
        return delay

    def chunks(self) -> Iterator[TimedChunk]:
        """The wrapped chunks, each with its later arrival time (never before the previous one)."""
        last_s = -np.inf
        for chunk in self._source.chunks():
            arrival_s = max(last_s, chunk.received_at + self.delay_s())
            last_s = arrival_s
            yield TimedChunk(chunk.data, arrival_s, chunk.link_event)

    def close(self) -> None:
        """Close the wrapped source."""
        self._source.close()


class TappedDevice:
    """A simulated device's source with taps added to its IMUs' acceleration.

    Each tap is a Gaussian pulse of ``amplitude_g`` along ``axis`` (0..2: acc_x, acc_y, acc_z), of
    width :data:`TAP_WIDTH_S`, centred at a host time; an IMU sample gets the pulse's value at the
    host time it was taken: ``start_s + device.host_time_of(index / rate)`` (the device's clock
    error included), so two devices tapped at one host moment saw one physical event.

    Parameters
    ----------
    source : SimSource
        The device's source, at speed 0, whose ``wall_clock`` returned ``start_s``.
    start_s : float
        Host time of the device's sample 0.
    tap_times_s : sequence of float
        Host times of the taps.
    amplitude_g : float
        Peak of each pulse, g.
    axis : int
        Accelerometer axis the tap pushes along.
    marker_code : int or None
        Also send a MARKER of this code on the EMG stream at each tap, at the EMG sample nearest
        the tap (a firmware sync marker), right after the EMG packet holding that sample.
    """

    def __init__(
        self,
        source: SimSource,
        *,
        start_s: float,
        tap_times_s: Sequence[float],
        amplitude_g: float = 1.5,
        axis: int = 2,
        marker_code: int | None = None,
    ) -> None:
        self.url = source.url
        self._source = source
        self._start_s = start_s
        self._tap_times_s = np.asarray(tap_times_s, dtype=np.float64)
        self._amplitude_g = amplitude_g
        self._axis = axis
        self._marker_code = marker_code
        device = source.device
        self._marker_indices = [round(device.device_time_at(t - start_s) * EMG_RATE_HZ) for t in tap_times_s]
        self._splitter = FrameSplitter()

    def tap_g(self, first_index: int, n_samples: int) -> np.ndarray:
        """The pulses' sum at IMU samples ``first_index ..``, g, shape (n_samples,)."""
        device = self._source.device
        host_s = self._start_s + np.array(
            [device.host_time_of((first_index + k) / IMU_RATE_HZ) for k in range(n_samples)]
        )
        pulses = np.exp(-0.5 * ((host_s[:, None] - self._tap_times_s[None, :]) / TAP_WIDTH_S) ** 2)
        return np.asarray(self._amplitude_g * pulses.sum(axis=1))

    def _tapped(self, frame: bytes) -> bytes:
        packet = decode_frame(frame)
        if packet.type == PacketType.EMG and self._marker_code is not None:
            end = packet.first_sample_index + EMG_SAMPLES_PER_PACKET
            for index in self._marker_indices:
                if packet.first_sample_index <= index < end:
                    payload = MarkerPayload(self._marker_code, "sync").to_payload()
                    # the seq of the packet it follows: the decoder neither counts it lost nor skipped
                    marker = Packet(PacketType.MARKER, packet.stream_id, packet.seq, index, payload)
                    return frame + b"\x00" + encode_frame(marker)[:-1]
            return frame
        if packet.type != PacketType.IMU:
            return frame
        counts = decode_samples(packet.payload, SampleFormat.INT16, 6)
        counts[self._axis] += np.rint(self.tap_g(packet.first_sample_index, counts.shape[1]) / ACC_SCALE_G).astype(
            np.int32
        )
        payload = encode_samples(np.clip(counts, -32768, 32767), SampleFormat.INT16)
        tapped = Packet(
            packet.type, packet.stream_id, packet.seq, packet.first_sample_index, payload, packet.flags, packet.version
        )
        return encode_frame(tapped)[:-1]  # without its delimiter, like the frames split above

    def chunks(self) -> Iterator[TimedChunk]:
        """The device's chunks with every IMU packet re-encoded with the taps added."""
        for chunk in self._source.chunks():
            frames = self._splitter.feed(chunk.data)
            data = b"".join(self._tapped(frame) + b"\x00" for frame in frames)
            yield TimedChunk(data, chunk.received_at, chunk.link_event)

    def close(self) -> None:
        """Close the wrapped source."""
        self._source.close()
