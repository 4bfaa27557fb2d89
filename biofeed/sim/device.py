"""The simulated reference device: a scenario's signals as the wire bytes a board would send.

The device is the reference device of firmware_protocol/PROTOCOL.md section 7: stream ``emg``
(id 1, int24, 2000 Hz, ``es_left``/``es_right``, ADS1299-class scale: 4.5 V / 2^23 / gain 24 =
0.02235 uV per count), ``imu_thoracic`` (id 2) and ``imu_sacral`` (id 3) (int16, 100 Hz, acc in
1/16384 g, gyro in 1/131 deg/s per count). It sends one 0x00 first, INFO at start and every second
(flag PERIODIC on repeats), EMG packets of 20 samples, IMU packets of 5 samples, STATUS every
second, all numbered by one device-wide u16 ``seq``.

Time is the device's: a packet leaves when its last sample has been taken, so everything up to
device time ``t`` is the packets of samples before ``t``. Within one instant the order is: EMG, IMU
thoracic, IMU sacral, STATUS (about the second just ended), INFO (opening the next one). Signals are
generated one second at a time, so memory stays bounded however long the run, and the bytes depend
only on the seed and options, never on how :meth:`SimulatedDevice.frames_until` is stepped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import numpy as np
import numpy.typing as npt

from biofeed.blocks import ChannelKind
from biofeed.protocol.packets import (
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
from biofeed.sim.ecg import ECG_RIGHT_FRACTION
from biofeed.sim.emg import EmgGenerator
from biofeed.sim.imu import IMU_CHANNEL_NAMES, ImuGenerator
from biofeed.sim.scenarios import CHANNEL_NAMES, SCENARIO_NAMES, ScenarioScript, build_scenario
from biofeed.sim.truth import scenario_truth

__all__ = [
    "ACC_SCALE_G",
    "BOARD_PROFILE",
    "EMG_RATE_HZ",
    "EMG_SAMPLES_PER_PACKET",
    "EMG_SCALE_UV",
    "FIRMWARE_VERSION",
    "GYRO_SCALE_DPS",
    "IMU_RATE_HZ",
    "IMU_SAMPLES_PER_PACKET",
    "MAX_CLOCK_PPM",
    "EmittedFrame",
    "SimulatedDevice",
    "reference_info",
]

EMG_RATE_HZ = 2000
IMU_RATE_HZ = 100
EMG_SAMPLES_PER_PACKET = 20
IMU_SAMPLES_PER_PACKET = 5
EMG_SCALE_UV = 4.5 / 2**23 / 24 * 1e6
"""uV per count of an ADS1299-class front end (4.5 V reference, 24 bits, gain 24)."""
ACC_SCALE_G = 1 / 16384
GYRO_SCALE_DPS = 1 / 131
FIRMWARE_VERSION = (1, 0, 0)
BOARD_PROFILE = "simulator"
MAX_CLOCK_PPM = 10_000.0
"""Largest crystal error accepted; real crystals are off by 20-75 ppm (SCIENCE.md section 11)."""

_EMG_ID, _THORACIC_ID, _SACRAL_ID = 1, 2, 3
_SECOND_TICKS = EMG_RATE_HZ  # one tick = one EMG sample period
_EMG_PACKET_TICKS = EMG_SAMPLES_PER_PACKET
_IMU_PACKET_TICKS = IMU_SAMPLES_PER_PACKET * EMG_RATE_HZ // IMU_RATE_HZ
_IMU_SAMPLE_TICKS = EMG_RATE_HZ // IMU_RATE_HZ
_PERIODIC = 0x01
_U32 = 1 << 32
_BATTERY_FULL_MV = 4150
_BATTERY_EMPTY_MV = 3650
_BATTERY_LIFE_S = 36_000.0  # 10 hours from full


def reference_info(device_id: str) -> InfoPayload:
    """Describe the reference device (PROTOCOL.md section 7) as an INFO payload with ``device_id``."""
    emg = tuple(
        ChannelFormat(ChannelKind.EMG, EMG_SCALE_UV, name, f"erector spinae L1 {side}")
        for name, side in zip(CHANNEL_NAMES, ("left", "right"), strict=True)
    )
    imu = tuple(
        ChannelFormat(ChannelKind.ACC if name.startswith("acc") else ChannelKind.GYRO, scale, name)
        for name, scale in zip(IMU_CHANNEL_NAMES, (ACC_SCALE_G,) * 3 + (GYRO_SCALE_DPS,) * 3, strict=True)
    )
    rate_mhz = 1000
    return InfoPayload(
        firmware_version=FIRMWARE_VERSION,
        device_id=device_id,
        board_profile=BOARD_PROFILE,
        streams=(
            StreamFormat(_EMG_ID, "emg", SampleFormat.INT24, EMG_RATE_HZ * rate_mhz, emg),
            StreamFormat(_THORACIC_ID, "imu_thoracic", SampleFormat.INT16, IMU_RATE_HZ * rate_mhz, imu),
            StreamFormat(_SACRAL_ID, "imu_sacral", SampleFormat.INT16, IMU_RATE_HZ * rate_mhz, imu),
        ),
    )


@dataclass(frozen=True)
class EmittedFrame:
    """Bytes the device sent at one device time.

    Attributes
    ----------
    device_time_s : float
        Device time at which they left.
    data : bytes
        One frame with its 0x00 delimiter (or the single leading 0x00).
    """

    device_time_s: float
    data: bytes


class _EncodedStream:
    """One stream's current one-second segment, encoded once and sliced into packets."""

    def __init__(self, stream: StreamFormat, segment_samples: int) -> None:
        self.stream = stream
        self.segment_samples = segment_samples
        # Counts use the scale as the device announces it (float32 on the wire), so decoding
        # returns exactly the generated values up to rounding to a count.
        self.scales = np.array([[np.float32(c.scale)] for c in stream.channels], dtype=np.float64)
        self.set_bytes = stream.bytes_per_sample_set
        self.segment_index = -1
        self.payload = b""
        self.saturation_mask = 0

    def load(self, index: int, physical: npt.NDArray[np.float64]) -> None:
        lo, hi = self.stream.sample_format.count_range
        counts = np.rint(physical / self.scales)
        clipped = (counts < lo) | (counts > hi)
        self.saturation_mask = sum(1 << int(i) for i in np.flatnonzero(clipped.any(axis=1)))
        self.payload = encode_samples(np.clip(counts, lo, hi).astype(np.int32), self.stream.sample_format)
        self.segment_index = index

    def slice(self, first_sample: int, n_samples: int) -> bytes:
        offset = (first_sample - self.segment_index * self.segment_samples) * self.set_bytes
        return self.payload[offset : offset + n_samples * self.set_bytes]


class SimulatedDevice:
    """A simulated sensor board playing a scenario.

    Parameters
    ----------
    scenario : str
        One of :data:`biofeed.sim.scenarios.SCENARIO_NAMES` (docs/simulator.md).
    seed : int
        Non-negative seed; the same seed and options give the same bytes.
    duration_s : float or None
        Device seconds to run (rounded up to 0.05 s, a whole IMU packet); None for the script's
        length. Shorter truncates the script; longer extends its last rest (flexion-relaxation
        repeats its cycles).
    clock_ppm : float
        Crystal error: a device fast by p ppm sends its nominal 2000 samples per *device* second,
        so 2000 (1 + p 1e-6) per host second.
    noise_floor_uv : float
        Sensor noise RMS in the 20-450 Hz band, uV.
    ecg_r_peak_uv : float
        R peak of ECG contamination on the left channel, uV (about 50 is typical); 0 for none.
    mains_hz : float or None
        50 or 60 to add mains hum, None for none.
    mains_uv : float
        Amplitude of the mains fundamental on the left channel, uV.

    Raises
    ------
    ValueError
        Unknown scenario (the message lists the allowed ones) or an option out of range.
    """

    def __init__(
        self,
        scenario: str,
        *,
        seed: int = 0,
        duration_s: float | None = None,
        clock_ppm: float = 0.0,
        noise_floor_uv: float = 1.5,
        ecg_r_peak_uv: float = 0.0,
        mains_hz: float | None = None,
        mains_uv: float = 5.0,
    ) -> None:
        if scenario not in SCENARIO_NAMES:
            raise ValueError(f"unknown scenario {scenario!r}; allowed: {', '.join(SCENARIO_NAMES)}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative whole number, got {seed!r}")
        if not (math.isfinite(clock_ppm) and abs(clock_ppm) <= MAX_CLOCK_PPM):
            raise ValueError(f"clock_ppm must lie within +-{MAX_CLOCK_PPM:g}, got {clock_ppm}")
        self.scenario = scenario
        self.seed = int(seed)
        self.clock_ppm = float(clock_ppm)
        self.noise_floor_uv = float(noise_floor_uv)
        self.ecg_r_peak_uv = float(ecg_r_peak_uv)
        self.mains_hz = mains_hz
        self.mains_uv = float(mains_uv)
        script = build_scenario(scenario, seed=self.seed, duration_s=duration_s)
        packets_per_s = IMU_RATE_HZ // IMU_SAMPLES_PER_PACKET
        whole_s = math.ceil(script.duration_s * packets_per_s - 1e-9) / packets_per_s
        if whole_s != script.duration_s:
            script = build_scenario(scenario, seed=self.seed, duration_s=whole_s)
        self.script: ScenarioScript = script
        """The scenario's script: scripted amplitudes and angles (what tests compare against)."""
        self.device_id = f"sim-{self.seed}"
        self.info = reference_info(self.device_id)
        self._emg = EmgGenerator(
            script,
            seed=self.seed,
            sample_rate_hz=EMG_RATE_HZ,
            segment_samples=EMG_RATE_HZ,
            noise_floor_uv=self.noise_floor_uv,
            ecg_r_peak_uv=self.ecg_r_peak_uv,
            mains_hz=mains_hz,
            mains_uv=self.mains_uv,
        )
        self._imus = (
            ImuGenerator(script, "thoracic", seed=self.seed, sample_rate_hz=IMU_RATE_HZ, segment_samples=IMU_RATE_HZ),
            ImuGenerator(script, "sacral", seed=self.seed, sample_rate_hz=IMU_RATE_HZ, segment_samples=IMU_RATE_HZ),
        )
        emg_format, thoracic_format, sacral_format = self.info.streams
        self._emg_stream = _EncodedStream(emg_format, EMG_RATE_HZ)
        self._imu_streams = (_EncodedStream(thoracic_format, IMU_RATE_HZ), _EncodedStream(sacral_format, IMU_RATE_HZ))
        self._info_payload = self.info.to_payload()
        self._end_tick = round(script.duration_s * EMG_RATE_HZ)
        self._next_tick = 0
        self._seq = 0

    # --- time -------------------------------------------------------------------------------

    @property
    def duration_s(self) -> float:
        """Device seconds the run lasts."""
        return self._end_tick / EMG_RATE_HZ

    def host_time_of(self, device_time_s: float) -> float:
        """Host seconds since the start at which the device's clock shows ``device_time_s``."""
        return device_time_s / (1.0 + self.clock_ppm * 1e-6)

    def device_time_at(self, host_elapsed_s: float) -> float:
        """Device clock reading ``host_elapsed_s`` host seconds after the start."""
        return host_elapsed_s * (1.0 + self.clock_ppm * 1e-6)

    @property
    def finished(self) -> bool:
        """True once every packet of the run has been emitted."""
        return self._next_tick > self._end_tick

    @property
    def next_frame_time_s(self) -> float | None:
        """Device time of the next packet to leave; None when finished."""
        return None if self.finished else self._next_tick / EMG_RATE_HZ

    @property
    def url(self) -> str:
        """The ``sim://`` URL that makes an identical device (speed left out)."""
        params: dict[str, Any] = {"seed": self.seed, "duration": f"{self.duration_s:g}"}
        if self.clock_ppm:
            params["clock_ppm"] = f"{self.clock_ppm:g}"
        if self.noise_floor_uv != 1.5:
            params["noise"] = f"{self.noise_floor_uv:g}"
        if self.ecg_r_peak_uv:
            params["ecg"] = f"{self.ecg_r_peak_uv:g}"
        if self.mains_hz is not None:
            params["mains"] = f"{self.mains_hz:g}"
        return f"sim://{self.scenario}?{urlencode(params)}"

    # --- bytes ------------------------------------------------------------------------------

    def frames_until(self, device_time_s: float) -> bytes:
        """Every byte the device has sent up to ``device_time_s`` and not returned before.

        Consecutive calls continue where the previous one stopped; asking for an earlier time
        returns nothing.
        """
        return b"".join(frame.data for frame in self.timed_frames_until(device_time_s))

    def timed_frames_until(self, device_time_s: float) -> list[EmittedFrame]:
        """As :meth:`frames_until`, one :class:`EmittedFrame` per frame with its departure time."""
        target_tick = min(self._end_tick, math.floor(device_time_s * EMG_RATE_HZ + 1e-6))
        out: list[EmittedFrame] = []
        while self._next_tick <= target_tick:
            self._emit_tick(self._next_tick, out)
            self._next_tick += _EMG_PACKET_TICKS
        return out

    def _emit_tick(self, tick: int, out: list[EmittedFrame]) -> None:
        time_s = tick / EMG_RATE_HZ
        if tick > 0:
            out.append(EmittedFrame(time_s, self._emg_packet(tick - _EMG_PACKET_TICKS)))
            if tick % _IMU_PACKET_TICKS == 0:
                first = (tick - _IMU_PACKET_TICKS) // _IMU_SAMPLE_TICKS
                for generator, stream in zip(self._imus, self._imu_streams, strict=True):
                    out.append(EmittedFrame(time_s, self._imu_packet(generator, stream, first)))
            if tick % _SECOND_TICKS == 0:
                out.append(EmittedFrame(time_s, self._status_packet(tick)))
        if tick % _SECOND_TICKS == 0 and tick < self._end_tick:
            if tick == 0:
                out.append(EmittedFrame(0.0, b"\x00"))  # flushes a receiver's partial frame
            flags = _PERIODIC if tick > 0 else 0
            out.append(EmittedFrame(time_s, self._frame(PacketType.INFO, 0, 0, self._info_payload, flags)))

    def _frame(self, ptype: PacketType, stream_id: int, first_index: int, payload: bytes, flags: int = 0) -> bytes:
        frame = encode_frame(Packet(ptype, stream_id, self._seq, first_index % _U32, payload, flags))
        self._seq = (self._seq + 1) & 0xFFFF
        return frame

    def _emg_packet(self, first: int) -> bytes:
        segment = first // EMG_RATE_HZ
        if segment != self._emg_stream.segment_index:
            self._emg_stream.load(segment, self._emg.segment(segment))
        payload = self._emg_stream.slice(first, EMG_SAMPLES_PER_PACKET)
        return self._frame(PacketType.EMG, _EMG_ID, first, payload)

    def _imu_packet(self, generator: ImuGenerator, stream: _EncodedStream, first: int) -> bytes:
        segment = first // IMU_RATE_HZ
        if segment != stream.segment_index:
            stream.load(segment, generator.segment(segment))
        payload = stream.slice(first, IMU_SAMPLES_PER_PACKET)
        return self._frame(PacketType.IMU, stream.stream.stream_id, first, payload)

    def _status_packet(self, tick: int) -> bytes:
        charge = max(0.0, 1.0 - tick / EMG_RATE_HZ / _BATTERY_LIFE_S)
        status = StatusPayload(
            battery_pct=round(100 * charge),
            battery_mv=round(_BATTERY_EMPTY_MV + charge * (_BATTERY_FULL_MV - _BATTERY_EMPTY_MV)),
            lead_off_mask=0,
            saturation_mask=self._emg_stream.saturation_mask,
        )
        return self._frame(PacketType.STATUS, _EMG_ID, tick, status.to_payload())

    # --- truth ------------------------------------------------------------------------------

    def truth(self) -> dict[str, Any]:
        """Return the ground truth of this run, JSON-able (layout in docs/simulator.md)."""
        ecg = None
        if self.ecg_r_peak_uv > 0:
            gains = {CHANNEL_NAMES[0]: self.ecg_r_peak_uv, CHANNEL_NAMES[1]: ECG_RIGHT_FRACTION * self.ecg_r_peak_uv}
            ecg = {"r_peak_uv": gains, "heart_rate_bpm": self._emg.heart_rate_bpm}
        mains = None if self.mains_hz is None else {"frequency_hz": self.mains_hz, "fundamental_uv": self.mains_uv}
        device = {
            "device_id": self.device_id,
            "board_profile": BOARD_PROFILE,
            "clock_ppm": self.clock_ppm,
            "sample_rates_hz": {
                "emg": float(EMG_RATE_HZ),
                "imu_thoracic": float(IMU_RATE_HZ),
                "imu_sacral": float(IMU_RATE_HZ),
            },
            "emg_scale_uv": EMG_SCALE_UV,
            "ecg": ecg,
            "mains": mains,
        }
        return scenario_truth(self.script, seed=self.seed, noise_floor_uv=self.noise_floor_uv, device=device)
