"""Publishes what biofeed receives as Lab Streaming Layer streams (``--lsl`` on ``record`` and ``live``).

One outlet per block stream, created at the device's INFO (or at the first block of a stream the
INFO does not list, such as the pipeline's envelope): name ``biofeed-STREAM``, type ``EMG`` when
every channel is EMG and ``IMU`` otherwise, the stream's nominal rate, float32 samples in the
channels' physical units, and ``source_id`` ``DEVICE_ID/STREAM`` so LSL recovers a restarted
stream. The description (``desc``) holds, per channel, ``label``, ``unit`` (``microvolts`` for
EMG, as XDF and MNE-LSL spell it), ``type`` and ``site``, and under ``acquisition`` the device id,
board profile and firmware version. A stream whose description changes (a new INFO) gets a new
outlet, since LSL metadata cannot change.

Events go to one string stream, ``biofeed-markers`` (type ``Markers``, irregular rate), one JSON
object per sample with ``"event"`` one of ``marker``, ``status`` (published when the battery or
a channel's contact or saturation flags change), ``gap`` and ``link``.

Time stamps come from the device clock: the LSL time of a sample is its device time
(``index / rate``) plus an offset fitted between device time and :func:`pylsl.local_clock`
(:class:`DeviceClockOffset`). For now the fit is the smallest ``arrival - device time`` seen: the
block that arrived with the least delay bounds the offset best, and the offset only ever moves
down. When it moves down, an outlet's time stamps catch up by at most half a sample period per
block so that they never go back. The time-sync work will replace this with a fit that follows
crystal drift; until then stamps drift with the device's crystal (20-75 ppm: up to 0.27 s per
hour). Feed the sink at real-time pace (a live device, or ``replay://`` at speed 1): at speed 0
device time runs ahead of the host clock and the offset keeps falling.

Nothing listens on a network port unless a sink is created (the CLI does so only with ``--lsl``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from biofeed.blocks import AnalysisEvent, Block, ChannelKind, DeviceInfo, DeviceStatus, LinkEvent, Marker, StreamInfo
from biofeed.sources.lsl import import_pylsl, lsl_unit

__all__ = ["MARKER_STREAM_SUFFIX", "DeviceClockOffset", "LslOutletSink"]

MARKER_STREAM_SUFFIX = "markers"
"""The marker stream is named ``PREFIX + MARKER_STREAM_SUFFIX``."""


class DeviceClockOffset:
    """The offset from a device's clock to the host's LSL clock, fitted as the smallest delay seen.

    ``host time = device time + offset``. Each block bounds the offset from above by
    ``arrival - device time of its last sample`` (the block cannot have arrived before its last
    sample was taken), so the minimum over blocks is the tightest bound so far. It ignores clock
    drift; the time-sync fit will take over.

    Attributes
    ----------
    offset_s : float
        Current offset in seconds, NaN before the first block.
    """

    def __init__(self) -> None:
        self.offset_s = math.nan

    def update(self, arrival_s: float, device_time_s: float) -> float:
        """Take one block's arrival (host LSL clock) and device time of its last sample; return the offset."""
        candidate = arrival_s - device_time_s
        if math.isnan(self.offset_s) or candidate < self.offset_s:
            self.offset_s = candidate
        return self.offset_s


@dataclass
class _Outlet:
    info: StreamInfo
    outlet: Any
    last_stamp_s: float = -math.inf


class LslOutletSink:
    """A :class:`biofeed.runner.Sink` that publishes blocks and events as LSL streams.

    Parameters
    ----------
    name_prefix : str
        Prefix of every stream name (``biofeed-emg``, ``biofeed-markers``).
    clock : callable returning float, or None
        Host clock in LSL time; None for :func:`pylsl.local_clock`. Tests inject one.

    Raises
    ------
    SourceError
        When pylsl is not installed.
    """

    def __init__(self, *, name_prefix: str = "biofeed-", clock: Callable[[], float] | None = None) -> None:
        self._lsl = import_pylsl()
        self.name_prefix = name_prefix
        self._clock: Callable[[], float] = clock if clock is not None else self._lsl.local_clock
        self._device: DeviceInfo | None = None
        self._outlets: dict[tuple[str, str], _Outlet] = {}
        self._offsets: dict[str, DeviceClockOffset] = {}
        self._rates_hz: dict[str, float] = {}
        self._statuses: dict[str, tuple[Any, ...]] = {}
        self._markers: Any = None

    # -- the Sink protocol ---------------------------------------------------------------------

    def write(self, item: Block | DeviceInfo | Marker | DeviceStatus | LinkEvent | AnalysisEvent) -> None:
        """Publish one item: blocks on their stream's outlet, everything else on the marker stream."""
        if isinstance(item, Block):
            self._write_block(item)
        elif isinstance(item, DeviceInfo):
            self._write_device(item)
        elif isinstance(item, Marker):
            self._publish_event(
                {
                    "event": "marker",
                    "code": item.code,
                    "label": item.label,
                    **self._place(item.stream_name, item.sample_index),
                },
                self._stamp_of(item.stream_name, item.sample_index),
            )
        elif isinstance(item, DeviceStatus):
            self._write_status(item)
        elif isinstance(item, LinkEvent):
            self.write_link_event(item)
        elif isinstance(item, AnalysisEvent):
            data = item.data
            stamp_s = self._stamp_of(str(data.get("stream", "")), int(data.get("sample_index", 0)))
            self._publish_event({"event": item.type, **{k: v for k, v in data.items() if k != "type"}}, stamp_s)

    def write_link_event(self, event: LinkEvent) -> None:
        """Publish a change of link state, stamped now."""
        detail = {"state": event.state.value, "detail": event.detail, "attempt": event.attempt}
        self._publish_event({"event": "link", **detail}, self._clock())

    def close(self) -> None:
        """Withdraw every outlet (consumers see the streams end)."""
        self._outlets.clear()
        self._markers = None

    # -- blocks --------------------------------------------------------------------------------

    def offset_s(self, device_id: str) -> float:
        """Current device -> LSL clock offset of a device, NaN before its first block."""
        offset = self._offsets.get(device_id)
        return offset.offset_s if offset is not None else math.nan

    def _write_device(self, device: DeviceInfo) -> None:
        self._device = device
        self._marker_outlet()
        for stream in device.streams:
            self._outlet_for(stream)

    def _write_block(self, block: Block) -> None:
        info = block.info
        fs = info.sample_rate_hz
        outlet = self._outlet_for(info)
        self._rates_hz[info.name] = fs
        offset = self._offsets.setdefault(info.device_id, DeviceClockOffset())
        last_device_s = (block.end_index - 1) / fs
        offset_s = offset.update(self._clock(), last_device_s)
        if block.gap_before:
            gap_start = block.first_index - block.gap_before
            self._publish_event(
                {"event": "gap", "n_samples_lost": block.gap_before, **self._place(info.name, gap_start)},
                offset_s + gap_start / fs,
            )
        last_stamp_s = offset_s + last_device_s
        first_stamp_s = last_stamp_s - (block.n_samples - 1) / fs
        # Never back: when the offset has dropped, catch up by half a sample period per block.
        earliest_s = outlet.last_stamp_s + 0.5 / fs
        if first_stamp_s < earliest_s:
            last_stamp_s += earliest_s - first_stamp_s
        # One stamp for the chunk: LSL spaces the others by the nominal rate, as the device does.
        outlet.outlet.push_chunk(np.ascontiguousarray(block.data.T, dtype=np.float32), last_stamp_s)
        outlet.last_stamp_s = last_stamp_s

    def _outlet_for(self, info: StreamInfo) -> _Outlet:
        key = (info.device_id, info.name)
        current = self._outlets.get(key)
        if current is None or current.info != info:
            current = _Outlet(info, self._lsl.StreamOutlet(self._stream_info(info)))
            self._outlets[key] = current
        return current

    def _stream_info(self, info: StreamInfo) -> Any:
        lsl = self._lsl
        if info.is_emg:
            stream_type = "EMG"
        elif all(c.kind is not ChannelKind.EMG for c in info.channels):
            stream_type = "IMU"
        else:
            stream_type = "Mixed"
        device_id = info.device_id or "biofeed"
        stream = lsl.StreamInfo(
            f"{self.name_prefix}{info.name}",
            stream_type,
            info.n_channels,
            info.sample_rate_hz,
            lsl.cf_float32,
            f"{device_id}/{info.name}",
        )
        desc = stream.desc()
        channels = desc.append_child("channels")
        for c in info.channels:
            channel = channels.append_child("channel")
            channel.append_child_value("label", c.name)
            channel.append_child_value("unit", lsl_unit(c.unit))
            channel.append_child_value("type", c.kind.value.upper())
            channel.append_child_value("site", c.site)
        self._describe_acquisition(desc, info.device_id)
        return stream

    def _describe_acquisition(self, desc: Any, device_id: str) -> None:
        acquisition = desc.append_child("acquisition")
        acquisition.append_child_value("manufacturer", "biofeed")
        acquisition.append_child_value("device_id", device_id)
        device = self._device
        if device is not None and device.device_id == device_id:
            acquisition.append_child_value("model", device.board_profile)
            acquisition.append_child_value("firmware_version", ".".join(map(str, device.firmware_version)))
        acquisition.append_child_value("time_stamps", "device clock + smallest-delay offset to local_clock")

    # -- events --------------------------------------------------------------------------------

    def _marker_outlet(self) -> Any:
        if self._markers is None:
            device_id = self._device.device_id if self._device is not None else "biofeed"
            lsl = self._lsl
            info = lsl.StreamInfo(
                f"{self.name_prefix}{MARKER_STREAM_SUFFIX}",
                "Markers",
                1,
                lsl.IRREGULAR_RATE,
                lsl.cf_string,
                f"{device_id}/{MARKER_STREAM_SUFFIX}",
            )
            self._describe_acquisition(info.desc(), device_id)
            self._markers = lsl.StreamOutlet(info)
        return self._markers

    def _write_status(self, status: DeviceStatus) -> None:
        state = (status.battery_pct, status.lead_off, status.saturated)
        if self._statuses.get(status.stream_name) == state:
            return
        self._statuses[status.stream_name] = state
        fields = {
            "event": "status",
            "battery_pct": status.battery_pct,
            "battery_mv": status.battery_mv,
            "lead_off": list(status.lead_off),
            "saturated": list(status.saturated),
            **self._place(status.stream_name, status.sample_index),
        }
        self._publish_event(fields, self._stamp_of(status.stream_name, status.sample_index))

    def _place(self, stream_name: str, sample_index: int) -> dict[str, Any]:
        """Where an event sits: its stream, sample index and (when the rate is known) device time."""
        fs = self._rate_of(stream_name)
        return {
            "device_id": self._device.device_id if self._device is not None else "",
            "stream": stream_name,
            "sample_index": sample_index,
            "device_time_s": sample_index / fs if fs else None,
        }

    def _rate_of(self, stream_name: str) -> float | None:
        if stream_name in self._rates_hz:
            return self._rates_hz[stream_name]
        if self._device is not None:
            for s in self._device.streams:
                if s.name == stream_name:
                    return s.sample_rate_hz
        return None

    def _stamp_of(self, stream_name: str, sample_index: int) -> float:
        """LSL time of a sample of a stream; now when the stream's rate or the offset is unknown."""
        fs = self._rate_of(stream_name)
        device_id = self._device.device_id if self._device is not None else ""
        offset_s = self.offset_s(device_id)
        if fs is None or math.isnan(offset_s):
            return self._clock()
        return offset_s + sample_index / fs

    def _publish_event(self, fields: dict[str, Any], stamp_s: float) -> None:
        self._marker_outlet().push_sample([json.dumps(fields, separators=(",", ":"))], stamp_s)
