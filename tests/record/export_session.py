"""A simulated session with gaps, a device marker and every kind of event, for the export and import tests.

The simulator's 20 s pandiculation run (its frames, taken straight from the device without the
analysis pipeline that ``write_recording`` runs, to stay fast) is re-sent with fresh sequence
numbers, minus five EMG packets (a gap of 100 samples) and one thoracic IMU packet (5 samples),
plus a device MARKER; events.jsonl gets markers, a note, a phase, a trial, a verdict, the runner's
own gap event, a link event (host time only), an event with no time at all and a burst of notes at
one instant. ``expected_streams`` decodes the recording independently into full arrays with NaN in
the gaps.
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block
from biofeed.protocol import (
    Decoder,
    FrameSplitter,
    InfoPayload,
    MarkerPayload,
    Packet,
    PacketType,
    decode_frame,
    encode_frame,
)
from biofeed.record import open_recording
from biofeed.record.export import ClientIdentity
from biofeed.record.writer import RecordingWriter
from biofeed.sim.device import SimulatedDevice

NAME = "Annabelle Zwieback"
BIRTH_DATE = datetime.date(1980, 2, 3)
PSEUDONYM = "client-7q3x"
IDENTITY = ClientIdentity(PSEUDONYM, NAME, BIRTH_DATE, "F")
SECRETS = (NAME, "Annabelle", "Zwieback", "Annabelle_Zwieback", PSEUDONYM, "1980-02-03", "03-FEB-1980", "03.02.80")

EMG_DROPPED = range(6000, 6100)  # first indices of the EMG packets left out (5 packets of 20)
IMU_DROPPED = 300  # first index of the thoracic IMU packet left out
MARKER_INDEX = 24_000  # emg sample index of the device marker
BURST_TIME_S = 12.0
N_BURST = 40


@dataclass(frozen=True)
class ExpectedStream:
    rate_hz: float
    first_index: int
    data: npt.NDArray[np.float64]  # (n_channels, n_samples), NaN in gaps
    gaps: list[tuple[int, int]]


def _device_frames(device: SimulatedDevice) -> list[tuple[bytes, float]]:
    """The simulator's frames (without delimiters) and their host times, without running the pipeline."""
    start_s = 1.8e9
    splitter = FrameSplitter()
    out = []
    for emitted in device.timed_frames_until(device.duration_s + 1.0):
        received_at = start_s + device.host_time_of(emitted.device_time_s)
        out += [(frame, received_at) for frame in splitter.feed(emitted.data)]
    return out


def _write_session(target: Path) -> None:
    """The simulator's frames with new seq numbers, minus some sample packets, plus a device marker."""
    seq = 0
    marker_sent = False
    frames = _device_frames(SimulatedDevice("pandiculation", seed=1, duration_s=20))
    with RecordingWriter(target, source_url="sim://pandiculation?seed=1", client=PSEUDONYM) as writer:
        for frame, received_at in frames:
            packet = decode_frame(frame)
            if packet.type == PacketType.INFO and not marker_sent:
                writer.set_device_info(InfoPayload.from_payload(packet.payload).to_device_info())
            if packet.type == PacketType.EMG and packet.first_sample_index in EMG_DROPPED:
                seq += 1  # lost on the link: the seq jumps
                continue
            if packet.type == PacketType.IMU and packet.stream_id == 2 and packet.first_sample_index == IMU_DROPPED:
                seq += 1
                continue
            if packet.type == PacketType.EMG and packet.first_sample_index >= MARKER_INDEX and not marker_sent:
                marker = Packet(
                    PacketType.MARKER, 1, seq % 65536, MARKER_INDEX, MarkerPayload(1, "button").to_payload()
                )
                writer.append_frame(encode_frame(marker)[:-1], received_at)
                seq += 1
                marker_sent = True
            renumbered = Packet(
                packet.type, packet.stream_id, seq % 65536, packet.first_sample_index, packet.payload, packet.flags
            )
            writer.append_frame(encode_frame(renumbered)[:-1], received_at)
            seq += 1
        for event in _events(frames[0][1] + 7.25):
            writer.append_event(event)


def _events(host_time: float) -> list[dict[str, object]]:
    events: list[dict[str, object]] = [
        {"type": "marker", "stream": "emg", "sample_index": 4000, "label": "start", "code": 128},
        {"type": "note", "time_s": 5.5, "text": f"{NAME} yawned"},
        {"type": "phase", "stream": "emg", "sample_index": 9000, "phase": "contraction", "duration_s": 1.5},
        {"type": "trial", "time_s": 8.0, "duration_s": 6.0, "trial": 1},
        {"type": "verdict", "time_s": 14.0, "verdict": "true_relaxation", "score": 0.82},
        {"type": "gap", "stream": "emg", "channel": None, "sample_index": 6000, "time_s": 3.0, "n_samples_lost": 100},
        {"type": "link", "state": "lost", "detail": "BLE dropped", "attempt": 0, "host_time": host_time},
        {"type": "sink_detached", "sink": "LslOutlet"},
    ]
    events += [{"type": "note", "time_s": BURST_TIME_S, "text": f"burst note {k}"} for k in range(N_BURST)]
    return events


def make_session(folder: Path) -> Path:
    """Write the session under ``folder`` and return the recording folder (``folder/session``)."""
    target = folder / "session"
    _write_session(target)
    meta_path = target / "recording.json"
    meta = json.loads(meta_path.read_text())
    meta["patient"] = {"name": NAME, "birth_date": BIRTH_DATE.isoformat(), "sex": "F"}
    meta_path.write_text(json.dumps(meta, indent=2))
    return target


def expected_streams(path: Path) -> dict[str, ExpectedStream]:
    """Decode a recording with a plain Decoder into full arrays per stream (NaN for lost samples)."""
    decoder = Decoder()
    blocks: dict[str, list[Block]] = {}
    for record in open_recording(path).frames():
        for item in decoder.decode_frame(record.frame, record.received_at):
            if isinstance(item, Block):
                blocks.setdefault(item.info.name, []).append(item)
    out = {}
    for name, stream_blocks in blocks.items():
        first = stream_blocks[0].first_index
        end = stream_blocks[-1].end_index
        data = np.full((stream_blocks[0].info.n_channels, end - first), np.nan)
        gaps = []
        for block in stream_blocks:
            data[:, block.first_index - first : block.end_index - first] = block.data
            if block.gap_before:
                gaps.append((block.first_index - block.gap_before, block.gap_before))
        out[name] = ExpectedStream(stream_blocks[0].info.sample_rate_hz, first, data, gaps)
    return out


def host_minus_device_s(path: Path) -> float:
    """The clock offset the exports use: least delayed block's receive time minus its device end time."""
    decoder = Decoder()
    best = math.inf
    for record in open_recording(path).frames():
        for item in decoder.decode_frame(record.frame, record.received_at):
            if isinstance(item, Block):
                best = min(best, item.received_at - item.end_index / item.info.sample_rate_hz)
    return best
