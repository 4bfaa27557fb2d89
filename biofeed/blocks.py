"""Everything that flows through biofeed: stream descriptions, sample blocks and events.

Data flows one way: source -> chunks -> decoder -> blocks -> pipeline -> results -> sinks.
Time is the device's: ``first_index / sample_rate_hz``; the host clock enters only through
``received_at`` and the time-sync fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "UNIT_BY_KIND",
    "AnalysisEvent",
    "Block",
    "ChannelInfo",
    "ChannelKind",
    "DeviceInfo",
    "DeviceStatus",
    "LinkEvent",
    "LinkState",
    "Marker",
    "StreamInfo",
]


class ChannelKind(StrEnum):
    """What a channel measures; fixes its physical unit (:data:`UNIT_BY_KIND`)."""

    EMG = "emg"
    ACC = "acc"
    GYRO = "gyro"
    MAG = "mag"
    QUAT = "quat"
    ANGLE = "angle"


UNIT_BY_KIND: dict[ChannelKind, str] = {
    ChannelKind.EMG: "uV",
    ChannelKind.ACC: "g",
    ChannelKind.GYRO: "deg/s",
    ChannelKind.MAG: "uT",
    ChannelKind.QUAT: "1",
    ChannelKind.ANGLE: "deg",
}


@dataclass(frozen=True)
class ChannelInfo:
    """One channel of a stream.

    Attributes
    ----------
    name : str
        Channel name, e.g. ``es_left`` or ``acc_x``.
    kind : ChannelKind
        What it measures.
    unit : str
        Physical unit of the samples (``UNIT_BY_KIND[kind]`` for device streams).
    site : str
        Electrode or sensor placement, e.g. ``erector spinae L1 left``; may be empty.
    full_scale : tuple of float or None
        (lowest, highest) value the channel's wire format can carry, in ``unit``: the integer range of
        its sample format times its scale (int24: ``[-2**23, 2**23 - 1] x scale``). A sample there sits
        at the ADC rail. None when not known (streams that did not come over the wire, a recording's
        meta). Not part of equality, like the scale it follows from: a stream is the same stream
        whatever its encoding.
    """

    name: str
    kind: ChannelKind
    unit: str
    site: str = ""
    full_scale: tuple[float, float] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class StreamInfo:
    """One stream of samples at one nominal rate.

    Attributes
    ----------
    name : str
        Stream name, unique within a device, e.g. ``emg`` or ``imu_thoracic``.
    sample_rate_hz : float
        Nominal sample rate in Hz (device clock).
    channels : tuple of ChannelInfo
        The channels, in the order of the rows of :attr:`Block.data`.
    device_id : str
        The device the stream comes from.
    stream_id : int
        The stream's id on the wire (0 for streams that did not come over the wire).
    """

    name: str
    sample_rate_hz: float
    channels: tuple[ChannelInfo, ...]
    device_id: str = ""
    stream_id: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sample_rate_hz) and self.sample_rate_hz > 0):
            raise ValueError(f"sample_rate_hz must be a positive number, got {self.sample_rate_hz!r}")
        if not self.channels:
            raise ValueError(f"stream {self.name!r} needs at least one channel")

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.channels)

    @property
    def is_emg(self) -> bool:
        """True when every channel is EMG."""
        return all(c.kind is ChannelKind.EMG for c in self.channels)


@dataclass(frozen=True)
class DeviceInfo:
    """What a device says about itself in its INFO packet.

    Attributes
    ----------
    device_id : str
        Stable identifier of the board.
    firmware_version : tuple of int
        (major, minor, patch).
    board_profile : str
        Name of the board profile in ``calibration/boards/``.
    streams : tuple of StreamInfo
        The streams the device sends.
    protocol_version : tuple of int
        (major, minor) of the wire protocol the INFO came in.
    """

    device_id: str
    firmware_version: tuple[int, int, int]
    board_profile: str
    streams: tuple[StreamInfo, ...]
    protocol_version: tuple[int, int] = (1, 0)


@dataclass(frozen=True, eq=False)
class Block:
    """Contiguous samples of one stream in physical units.

    Attributes
    ----------
    info : StreamInfo
        The stream.
    data : ndarray, shape (n_channels, n_samples), float64
        Samples in each channel's physical unit; read-only.
    first_index : int
        Device sample counter (unwrapped) of the first sample. Time is ``first_index / fs``.
    gap_before : int
        Samples known to be missing right before this block (0 when contiguous).
    received_at : float
        Host time (``time.time()``) at which the bytes arrived; NaN when unknown.
    """

    info: StreamInfo
    data: npt.NDArray[np.float64]
    first_index: int
    gap_before: int = 0
    received_at: float = field(default=math.nan)

    def __post_init__(self) -> None:
        data = np.asarray(self.data, dtype=np.float64)
        if data.ndim != 2 or data.shape[0] != self.info.n_channels:
            raise ValueError(
                f"data must have shape ({self.info.n_channels}, n_samples) for stream "
                f"{self.info.name!r}, got {data.shape}"
            )
        if self.gap_before < 0:
            raise ValueError(f"gap_before must be >= 0, got {self.gap_before}")
        if data.flags.writeable:
            data = data.copy() if data is self.data else data
            data.flags.writeable = False
        object.__setattr__(self, "data", data)

    @classmethod
    def _trusted(
        cls,
        info: StreamInfo,
        data: npt.NDArray[np.float64],
        first_index: int,
        gap_before: int,
        received_at: float,
    ) -> Block:
        """A block from fields the caller guarantees valid, without checking or copying them.

        For the decoder's per-packet path, where the checks of ``__init__`` cost as much as the
        rest of decoding a packet: ``data`` must already be a read-only float64 array of shape
        (``info.n_channels``, n_samples) and ``gap_before >= 0``.
        """
        block = object.__new__(cls)
        fields = block.__dict__  # what the frozen __init__ would set, without its per-field __setattr__
        fields["info"] = info
        fields["data"] = data
        fields["first_index"] = first_index
        fields["gap_before"] = gap_before
        fields["received_at"] = received_at
        return block

    @property
    def n_samples(self) -> int:
        """Number of samples per channel."""
        return int(self.data.shape[1])

    @property
    def end_index(self) -> int:
        """Device sample index one past the last sample."""
        return self.first_index + self.n_samples

    @property
    def start_s(self) -> float:
        """Device time of the first sample in seconds."""
        return self.first_index / self.info.sample_rate_hz


@dataclass(frozen=True)
class Marker:
    """A marker: a button on the device, or a key or note from the user.

    Attributes
    ----------
    stream_name : str
        The stream whose sample counter places the marker in time.
    sample_index : int
        Sample index in that stream (unwrapped).
    code : int
        1 = device button; 2..127 firmware-defined; 128..255 host-defined.
    label : str
        Short text; may be empty.
    received_at : float
        Host time of arrival; NaN when unknown.
    """

    stream_name: str
    sample_index: int
    code: int
    label: str = ""
    received_at: float = math.nan


@dataclass(frozen=True)
class DeviceStatus:
    """A STATUS packet: battery and per-channel contact and saturation flags.

    Attributes
    ----------
    stream_name : str
        The stream the channel masks refer to.
    sample_index : int
        Sample index in that stream at which the status was taken.
    battery_pct : int or None
        Battery charge 0..100, None when unknown.
    battery_mv : int or None
        Battery voltage in mV, None when unknown.
    lead_off : tuple of bool
        Per channel: electrode contact lost.
    saturated : tuple of bool
        Per channel: at the ADC rail.
    received_at : float
        Host time of arrival; NaN when unknown.
    """

    stream_name: str
    sample_index: int
    battery_pct: int | None
    battery_mv: int | None
    lead_off: tuple[bool, ...]
    saturated: tuple[bool, ...]
    received_at: float = math.nan


class LinkState(StrEnum):
    """States of a link that can drop and come back (BLE; a serial port that reappears)."""

    CONNECTED = "connected"
    LOST = "lost"
    RECONNECTING = "reconnecting"


@dataclass(frozen=True)
class LinkEvent:
    """A change of link state, reported in-band so it stays ordered with the bytes.

    Attributes
    ----------
    state : LinkState
        The new state.
    detail : str
        Words for the user (why it dropped, which attempt failed how).
    attempt : int
        Reconnect attempt number (1, 2, ...); 0 when not reconnecting.
    """

    state: LinkState
    detail: str = ""
    attempt: int = 0


@dataclass(frozen=True)
class AnalysisEvent:
    """One event of the analysis pipeline, as written to a recording's ``events.jsonl``.

    Attributes
    ----------
    data : dict
        The JSON object: at least ``type``, ``stream``, ``channel``, ``sample_index`` and
        ``time_s`` (docs/analysis-json.md lists every type and its fields).
    """

    data: dict[str, Any]

    @property
    def type(self) -> str:
        """The event type: ``phase``, ``trial``, ``set_point``, ``noise_floor``, ``signal_fault`` ..."""
        return str(self.data["type"])
