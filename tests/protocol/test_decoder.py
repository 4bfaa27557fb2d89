"""Tests of the stateful decoder: framing, loss accounting, versions, and the never-raises invariant."""

from __future__ import annotations

import dataclasses
import itertools
import math
import tracemalloc
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeed.blocks import Block, ChannelKind, DeviceInfo, DeviceStatus, Marker
from biofeed.protocol.decoder import (
    DAMAGE_REASONS,
    Decoder,
    DecoderStats,
    FrameSplitter,
    Item,
)
from biofeed.protocol.packets import (
    ChannelFormat,
    ControlCommand,
    ControlPayload,
    InfoPayload,
    MarkerPayload,
    Packet,
    PacketType,
    SampleFormat,
    StatusPayload,
    StreamFormat,
    encode_frame,
    encode_samples,
)

# --- a reference device, as the firmware would number its packets --------------------------------

EMG_ID, IMU_ID = 1, 2
EMG_PER_PACKET, IMU_PER_PACKET = 20, 5
EMG_SCALE_UV = 0.0286
ACC_SCALE_G = 1 / 4096
GYRO_SCALE_DPS = 1 / 16.4


def reference_info(emg_rate_mhz: int = 2_000_000, device_id: str = "ref-0001") -> InfoPayload:
    """emg: int24, 2 kHz, 2 channels; imu: int16, 100 Hz, 6 channels."""
    emg = StreamFormat(
        EMG_ID,
        "emg",
        SampleFormat.INT24,
        emg_rate_mhz,
        (
            ChannelFormat(ChannelKind.EMG, EMG_SCALE_UV, "es_left", "erector spinae L1 left"),
            ChannelFormat(ChannelKind.EMG, EMG_SCALE_UV, "es_right", "erector spinae L1 right"),
        ),
    )
    imu = StreamFormat(
        IMU_ID,
        "imu",
        SampleFormat.INT16,
        100_000,
        tuple(ChannelFormat(ChannelKind.ACC, ACC_SCALE_G, f"acc_{a}") for a in "xyz")
        + tuple(ChannelFormat(ChannelKind.GYRO, GYRO_SCALE_DPS, f"gyro_{a}") for a in "xyz"),
    )
    return InfoPayload((1, 2, 3), device_id, "ads1292r", (emg, imu))


class ReferenceDevice:
    """Makes frames like the reference firmware: seq +1 per packet, one sample counter per stream."""

    def __init__(self, *, seq: int = 0, emg_index: int = 0, imu_index: int = 0, seed: int = 0) -> None:
        self.info = reference_info()
        self.seq = seq
        self.next_index = {EMG_ID: emg_index, IMU_ID: imu_index}
        self.rng = np.random.default_rng(seed)

    def frame(
        self, ptype: int, stream_id: int, first_index: int, payload: bytes, version: tuple[int, int] = (1, 0)
    ) -> bytes:
        packet = Packet(ptype, stream_id, self.seq % 65536, first_index % 2**32, payload, version=version)
        self.seq += 1
        return encode_frame(packet)

    def info_frame(self, info: InfoPayload | None = None) -> bytes:
        return self.frame(PacketType.INFO, 0, 0, (info or self.info).to_payload())

    def samples_frame(self, stream_id: int, n_samples: int | None = None) -> bytes:
        if stream_id == EMG_ID:
            counts = self.rng.integers(-(2**23), 2**23, (2, n_samples or EMG_PER_PACKET))
            ptype, fmt = PacketType.EMG, SampleFormat.INT24
        else:
            counts = self.rng.integers(-(2**15), 2**15, (6, n_samples or IMU_PER_PACKET))
            ptype, fmt = PacketType.IMU, SampleFormat.INT16
        first = self.next_index[stream_id]
        self.next_index[stream_id] += counts.shape[1]
        return self.frame(ptype, stream_id, first, encode_samples(counts, fmt))

    def status_frame(self, payload: StatusPayload, stream_id: int = EMG_ID) -> bytes:
        return self.frame(PacketType.STATUS, stream_id, self.next_index.get(stream_id, 0), payload.to_payload())

    def marker_frame(self, code: int, label: str, stream_id: int = EMG_ID) -> bytes:
        return self.frame(
            PacketType.MARKER, stream_id, self.next_index.get(stream_id, 0), MarkerPayload(code, label).to_payload()
        )

    def session(self, n_emg_packets: int, *, with_info: bool = True) -> list[bytes]:
        """INFO, then EMG packets with an IMU packet every 4th and a periodic INFO + STATUS every 100th."""
        frames = [self.info_frame()] if with_info else []
        for k in range(n_emg_packets):
            frames.append(self.samples_frame(EMG_ID))
            if k % 4 == 3:
                frames.append(self.samples_frame(IMU_ID))
            if k % 100 == 99:
                frames.append(self.info_frame())
                frames.append(self.status_frame(StatusPayload(80, 3900, 0b01, 0b10)))
            if k % 37 == 36:
                frames.append(self.marker_frame(1, "button"))
        return frames


def item_key(item: Item) -> object:
    """A comparable value for an item, ignoring received_at."""
    if isinstance(item, Block):
        return ("block", item.info, item.first_index, item.gap_before, item.data.shape, item.data.tobytes())
    if isinstance(item, Marker | DeviceStatus):
        return dataclasses.replace(item, received_at=0.0)
    return item


def keys(items: Sequence[Item]) -> list[object]:
    return [item_key(i) for i in items]


def feed_chunks(decoder: Decoder, data: bytes, cuts: Sequence[int]) -> list[Item]:
    items: list[Item] = []
    bounds = [0, *sorted(set(cuts)), len(data)]
    for start, stop in itertools.pairwise(bounds):
        items += decoder.feed(data[start:stop])
    return items


def decode_all(data: bytes) -> tuple[list[Item], DecoderStats]:
    decoder = Decoder()
    items = decoder.feed(data)
    return items, decoder.stats


def blocks_of(items: Sequence[Item], name: str) -> list[Block]:
    return [i for i in items if isinstance(i, Block) and i.info.name == name]


def check_identity(stats: DecoderStats) -> None:
    assert stats.frames == stats.packets + stats.corrupt_frames + stats.refused_major + stats.joined_mid_frame


SESSION = ReferenceDevice(seed=1).session(240)
STREAM = b"".join(SESSION)


# --- FrameSplitter --------------------------------------------------------------------------------


def test_splitter_splits_at_delimiters_and_keeps_the_partial_frame() -> None:
    splitter = FrameSplitter()
    assert splitter.feed(b"\x00\x00ab\x00cd") == [b"ab"]
    assert splitter.n_pending_bytes == 2
    assert splitter.feed(b"e") == []
    assert splitter.feed(b"f\x00\x00g\x00") == [b"cdef", b"g"]
    assert splitter.n_pending_bytes == 0
    assert splitter.n_oversize == 0


def test_splitter_drops_over_long_runs_and_resyncs() -> None:
    splitter = FrameSplitter(max_frame_bytes=8)
    assert splitter.feed(b"12345") == []
    assert splitter.feed(b"6789") == []  # 9 bytes without 0x00: dropped
    assert splitter.n_oversize == 1
    assert splitter.n_pending_bytes == 0
    assert splitter.feed(b"more garbage") == []
    assert splitter.feed(b"tail\x00ok\x00") == [b"ok"]
    assert splitter.feed(b"123456789\x00short\x00") == [b"short"]
    assert splitter.n_oversize == 2


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_splitter_refuses_bad_limits(bad: object) -> None:
    with pytest.raises(ValueError, match="max_frame_bytes"):
        FrameSplitter(max_frame_bytes=bad)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=30))
def test_splitter_output_does_not_depend_on_chunking(data: bytes, cuts: list[int]) -> None:
    limit = 40
    whole = FrameSplitter(limit)
    expected = whole.feed(data)
    chunked = FrameSplitter(limit)
    frames: list[bytes] = []
    bounds = [0, *sorted({c for c in cuts if c <= len(data)}), len(data)]
    for start, stop in itertools.pairwise(bounds):
        frames += chunked.feed(data[start:stop])
        assert chunked.n_pending_bytes <= limit
    assert frames == expected
    assert chunked.n_oversize == whole.n_oversize
    assert all(f and b"\x00" not in f and len(f) <= limit for f in frames)


# --- never raises ---------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 2000), max_size=40))
def test_arbitrary_bytes_in_arbitrary_chunks_never_raise(data: bytes, cuts: list[int]) -> None:
    decoder = Decoder()
    feed_chunks(decoder, data, [c for c in cuts if c <= len(data)])
    check_identity(decoder.stats)


@settings(max_examples=60, deadline=None)
@given(
    garbage=st.lists(st.tuples(st.integers(0, len(STREAM)), st.binary(min_size=1, max_size=80)), max_size=12),
    cuts=st.lists(st.integers(0, len(STREAM) + 1000), max_size=30),
)
def test_garbage_spliced_into_a_valid_stream_never_raises(garbage: list[tuple[int, bytes]], cuts: list[int]) -> None:
    data = STREAM
    for position, junk in sorted(garbage, reverse=True):
        data = data[:position] + junk + data[position:]
    decoder = Decoder()
    items = feed_chunks(decoder, data, [c for c in cuts if c <= len(data)])
    check_identity(decoder.stats)
    assert all(b.gap_before >= 0 for b in items if isinstance(b, Block))


_VALID_INFO = reference_info().to_payload()
_payloads = st.one_of(
    st.binary(max_size=80),
    st.integers(0, len(_VALID_INFO)).map(lambda n: _VALID_INFO[:n]),
    st.tuples(st.integers(0, len(_VALID_INFO) - 1), st.integers(0, 255)).map(
        lambda p: _VALID_INFO[: p[0]] + bytes([p[1]]) + _VALID_INFO[p[0] + 1 :]
    ),
    st.sampled_from([StatusPayload().to_payload(), MarkerPayload(1, "x").to_payload(), b"\x00" * 12, b"\x01" * 36]),
)
_packets = st.builds(
    Packet,
    type=st.sampled_from([0, 1, 2, 3, 4, 5, 0x10, 0x11, 0xFF]),
    stream_id=st.integers(0, 3),
    seq=st.integers(0, 65535),
    first_sample_index=st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 100)),
    payload=_payloads,
    flags=st.integers(0, 255),
    version=st.sampled_from([(1, 0), (1, 0), (1, 7), (2, 0), (0, 1)]),
)


@settings(max_examples=120, deadline=None)
@given(start_with_info=st.booleans(), packets=st.lists(_packets, max_size=25))
def test_well_framed_packets_with_any_fields_never_raise(start_with_info: bool, packets: list[Packet]) -> None:
    decoder = Decoder()
    if start_with_info:
        decoder.feed(ReferenceDevice().info_frame())
    for packet in packets:
        items = decoder.feed(encode_frame(packet))
        assert len(items) <= 1
    check_identity(decoder.stats)
    stats = decoder.stats
    assert stats.packets + stats.refused_major + stats.corrupt_frames + stats.joined_mid_frame == stats.frames


# --- a valid stream ------------------------------------------------------------------------------


def test_valid_stream_decodes_to_the_counts_times_scale() -> None:
    device = ReferenceDevice(seed=3)
    info = InfoPayload.from_payload(device.info.to_payload())  # scales rounded to float32, as on the wire
    frames = [device.info_frame()]
    expected_emg = []
    for _ in range(3):
        frames.append(device.samples_frame(EMG_ID))
    rng = np.random.default_rng(3)  # same draws as the device: rebuild the counts it sent
    for _ in range(3):
        expected_emg.append(rng.integers(-(2**23), 2**23, (2, EMG_PER_PACKET)) * info.streams[0].scales)
    items, stats = decode_all(b"".join(frames))
    assert isinstance(items[0], DeviceInfo)
    assert items[0] == info.to_device_info()
    emg = blocks_of(items, "emg")
    assert [b.first_index for b in emg] == [0, 20, 40]
    assert all(b.gap_before == 0 and not b.data.flags.writeable for b in emg)
    for block, expected in zip(emg, expected_emg, strict=True):
        np.testing.assert_array_equal(block.data, expected)
    assert stats.streams["emg"].n_samples == 60
    assert (stats.streams["emg"].first_index, stats.streams["emg"].end_index) == (0, 60)
    assert stats.frames == stats.packets == 4
    assert stats.lost_packets == stats.corrupt_frames == 0


def test_session_items_and_stats() -> None:
    items, stats = decode_all(STREAM)
    assert len(blocks_of(items, "emg")) == 240
    assert len(blocks_of(items, "imu")) == 60
    assert sum(isinstance(i, DeviceInfo) for i in items) == 1  # periodic INFOs emit nothing
    statuses = [i for i in items if isinstance(i, DeviceStatus)]
    assert statuses[0] == DeviceStatus("emg", 100 * EMG_PER_PACKET, 80, 3900, (True, False), (False, True))
    markers = [i for i in items if isinstance(i, Marker)]
    assert markers[0] == Marker("emg", 37 * EMG_PER_PACKET, 1, "button")
    assert stats.streams["imu"].n_samples == 300
    assert stats.streams["imu"].kind == "imu" and stats.streams["emg"].kind == "emg"
    assert stats.frames == stats.packets == len(SESSION)
    assert stats.lost_packets == stats.no_info == stats.duplicates == 0
    assert stats.corrupt == dict.fromkeys(DAMAGE_REASONS, 0)


def test_received_at_is_carried_into_items() -> None:
    decoder = Decoder()
    items = decoder.feed(b"".join(SESSION[:40]), received_at=12.5)
    assert items and all(i.received_at == 12.5 for i in items if not isinstance(i, DeviceInfo))


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(0, len(STREAM)), max_size=200))
def test_random_chunkings_decode_like_the_whole_stream(cuts: list[int]) -> None:
    whole_items, whole_stats = decode_all(STREAM)
    decoder = Decoder()
    assert keys(feed_chunks(decoder, STREAM, cuts)) == keys(whole_items)
    assert decoder.stats == whole_stats


def test_byte_by_byte_decodes_like_the_whole_stream() -> None:
    data = b"".join(SESSION[:80])
    whole_items, whole_stats = decode_all(data)
    decoder = Decoder()
    items: list[Item] = []
    for k in range(len(data)):
        items += decoder.feed(data[k : k + 1])
    assert keys(items) == keys(whole_items)
    assert decoder.stats == whole_stats


def test_decode_frame_matches_feed() -> None:
    decoder = Decoder()
    items: list[Item] = []
    for frame in SESSION:
        items += decoder.decode_frame(frame[:-1])
    assert decoder.decode_frame(b"") == []
    whole_items, whole_stats = decode_all(STREAM)
    assert keys(items) == keys(whole_items)
    assert decoder.stats == whole_stats


@settings(max_examples=30, deadline=None)
@given(
    damaged=st.lists(st.tuples(st.integers(0, len(SESSION) - 1), st.integers(0, 200), st.integers(1, 255)), max_size=8),
    cuts=st.lists(st.integers(0, len(SESSION)), max_size=40),
)
def test_decode_frames_matches_decode_frame_one_by_one(damaged: list[tuple[int, int, int]], cuts: list[int]) -> None:
    mutable = [bytearray(f[:-1]) for f in SESSION]
    for k, position, flip in damaged:
        mutable[k][position % len(mutable[k])] ^= flip
    frames = [bytes(f) for f in mutable]
    frames.insert(len(frames) // 2, b"")
    one = Decoder()
    items_one: list[Item] = []
    for frame in frames:
        items_one += one.decode_frame(frame, 3.0)
    many = Decoder()
    items_many: list[Item] = []
    for start, stop in itertools.pairwise([0, *sorted(set(cuts)), len(frames)]):
        items_many += many.decode_frames(frames[start:stop], 3.0)
    assert keys(items_many) == keys(items_one)
    assert all(i.received_at == 3.0 for i in items_many if not isinstance(i, DeviceInfo))
    assert many.stats == one.stats


def test_blocks_are_read_only_views_that_pass_the_checks_of_block() -> None:
    items, _ = decode_all(STREAM)
    blocks = blocks_of(items, "emg") + blocks_of(items, "imu")
    for block in blocks:
        data = block.data
        assert data.dtype == np.float64 and data.shape == (block.info.n_channels, block.n_samples)
        assert not data.flags.writeable and data.flags.f_contiguous  # sample sets as on the wire
        checked = Block(block.info, data, block.first_index, block.gap_before, block.received_at)
        assert checked.data is data  # nothing for Block's checks to copy or convert
        assert repr(checked) == repr(block)
    with pytest.raises(dataclasses.FrozenInstanceError):
        blocks[0].first_index = 1  # type: ignore[misc]


# --- damage: only damaged frames are lost, each counted -------------------------------------------


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_only_damaged_frames_are_lost(data: st.DataObject) -> None:
    n = len(SESSION)
    damage = data.draw(
        # Not the first frame: an undecodable first frame counts as joined_mid_frame (its own test).
        st.dictionaries(st.integers(1, n - 1), st.sampled_from(["flip", "prefix", "delimited"]), max_size=12)
    )
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    damaged_stream = []
    intact = []
    for k, frame in enumerate(SESSION):
        action = damage.get(k)
        if action == "flip":
            body = bytearray(frame)
            position = int(rng.integers(0, len(frame) - 1))  # not the delimiter
            body[position] = (body[position] + int(rng.integers(1, 255))) % 256 or 1
            if body[position] == frame[position]:
                body[position] = body[position] % 255 + 1
            damaged_stream.append(bytes(body))
        elif action == "prefix":
            damaged_stream.append(rng.integers(1, 256, int(rng.integers(1, 30)), dtype=np.uint8).tobytes() + frame)
        elif action == "delimited":
            junk = rng.integers(1, 256, int(rng.integers(1, 60)), dtype=np.uint8).tobytes()
            damaged_stream.append(junk + b"\x00" + frame)
            intact.append(frame)
        else:
            damaged_stream.append(frame)
            intact.append(frame)
    items, stats = decode_all(b"".join(damaged_stream))
    clean_items, clean_stats = decode_all(b"".join(intact))
    assert keys(items) == keys(clean_items)
    assert stats.streams == clean_stats.streams
    assert stats.lost_packets == clean_stats.lost_packets
    assert stats.corrupt_frames == len(damage)
    assert stats.corrupt_frames == sum(stats.corrupt[r] for r in ("cobs", "too_short", "length", "oversize", "crc"))
    check_identity(stats)


def test_dropped_frames_give_exact_gaps() -> None:
    device = ReferenceDevice(seed=5)
    frames = [device.info_frame()] + [device.samples_frame(EMG_ID) for _ in range(20)]
    frames += [device.samples_frame(IMU_ID) for _ in range(10)]
    dropped = {3, 4, 5, 10, 25, 26}  # EMG packets 2-4 and 9, IMU packets 4-5
    items, stats = decode_all(b"".join(f for k, f in enumerate(frames) if k not in dropped))
    emg = blocks_of(items, "emg")
    assert [(b.first_index, b.gap_before) for b in emg if b.gap_before] == [(100, 60), (200, 20)]
    imu = blocks_of(items, "imu")
    assert [(b.first_index, b.gap_before) for b in imu if b.gap_before] == [(30, 10)]
    assert (stats.streams["emg"].gaps, stats.streams["emg"].samples_lost) == (2, 80)
    assert (stats.streams["imu"].gaps, stats.streams["imu"].samples_lost) == (1, 10)
    assert stats.streams["emg"].n_samples == 16 * EMG_PER_PACKET
    assert stats.lost_packets == len(dropped)


def test_duplicated_and_reordered_frames() -> None:
    device = ReferenceDevice(seed=6)
    frames = [device.info_frame()] + [device.samples_frame(EMG_ID) for _ in range(6)]
    order = [0, 1, 1, 2, 4, 3, 5, 6]  # packet 1 twice; 3 arrives after 4
    items, stats = decode_all(b"".join(frames[k] for k in order))
    emg = blocks_of(items, "emg")
    assert [(b.first_index, b.gap_before) for b in emg] == [(0, 0), (20, 0), (60, 20), (80, 0), (100, 0)]
    assert stats.streams["emg"].duplicates == stats.duplicates == 2
    assert stats.lost_packets == 0  # the late packet arrived after all
    assert stats.streams["emg"].samples_lost == 20  # delivered late, so missing from the stream


def test_u32_sample_index_wraps_into_a_continuing_timeline() -> None:
    start = 2**32 - 50
    device = ReferenceDevice(emg_index=start, seed=7)
    frames = [device.info_frame()] + [device.samples_frame(EMG_ID) for _ in range(6)]
    frames.append(device.marker_frame(9, "after wrap"))
    items, stats = decode_all(b"".join(frames))
    emg = blocks_of(items, "emg")
    assert [b.first_index for b in emg] == [start + 20 * k for k in range(6)]
    assert all(b.gap_before == 0 for b in emg)
    marker = items[-1]
    assert isinstance(marker, Marker) and marker.sample_index == start + 120 > 2**32
    assert stats.streams["emg"].end_index == start + 120
    assert stats.duplicates == 0


@pytest.mark.parametrize("drop", [None, 4])
def test_u16_seq_wraps(drop: int | None) -> None:
    device = ReferenceDevice(seq=65530, seed=8)
    frames = [device.info_frame()] + [device.samples_frame(EMG_ID) for _ in range(10)]
    items, stats = decode_all(b"".join(f for k, f in enumerate(frames) if k != drop))
    assert stats.lost_packets == (0 if drop is None else 1)
    assert len(blocks_of(items, "emg")) == (10 if drop is None else 9)


@pytest.mark.parametrize("seq_before_reset", [0, 40_000])
def test_device_reset_continues_the_timeline(seq_before_reset: int) -> None:
    before = ReferenceDevice(seq=seq_before_reset, seed=9)
    frames = [before.info_frame()]
    for k in range(1200):  # 12 s of EMG, 12 s of IMU
        frames.append(before.samples_frame(EMG_ID))
        if k % 5 == 4:
            frames.append(before.samples_frame(IMU_ID))
    after = ReferenceDevice(seed=10)  # counters restart at 0
    frames += [
        after.info_frame(),
        after.samples_frame(IMU_ID),
        after.samples_frame(EMG_ID),
        after.samples_frame(EMG_ID),
    ]
    items, stats = decode_all(b"".join(frames))
    assert stats.resets == 1
    assert stats.duplicates == 0
    assert stats.lost_packets == 0
    assert sum(isinstance(i, DeviceInfo) for i in items) == 1  # same INFO after the reset
    emg, imu = blocks_of(items, "emg"), blocks_of(items, "imu")
    # Both streams resume at 12.01 s: one sample period of the slowest stream after the latest sample.
    assert (imu[-1].first_index, imu[-1].gap_before) == (1201, 1)
    assert [(b.first_index, b.gap_before) for b in emg[-2:]] == [(24020, 20), (24040, 0)]
    assert imu[-1].start_s == pytest.approx(emg[-2].start_s)


def test_a_short_step_back_is_a_duplicate_not_a_reset() -> None:
    device = ReferenceDevice(seq=0, seed=11)
    frames = [device.info_frame()] + [device.samples_frame(EMG_ID) for _ in range(500)]  # 5 s
    again = ReferenceDevice(seed=12)
    frames += [again.info_frame(), again.samples_frame(EMG_ID)]
    items, stats = decode_all(b"".join(frames))
    assert stats.resets == 0
    assert stats.duplicates == 1
    assert len(blocks_of(items, "emg")) == 500


def test_changed_info_starts_a_new_epoch_for_changed_streams_only() -> None:
    device = ReferenceDevice(seed=13)
    frames = [device.info_frame(), device.samples_frame(EMG_ID), device.samples_frame(IMU_ID), device.info_frame()]
    slower = reference_info(emg_rate_mhz=1_000_000)
    frames.append(device.info_frame(slower))
    device.next_index[EMG_ID] = 7  # the firmware restarted the EMG counter at the new rate
    frames += [device.samples_frame(EMG_ID), device.samples_frame(IMU_ID)]
    items, stats = decode_all(b"".join(frames))
    infos = [i for i in items if isinstance(i, DeviceInfo)]
    assert infos == [reference_info().to_device_info(), slower.to_device_info()]
    emg = blocks_of(items, "emg")
    assert emg[-1].info.sample_rate_hz == 1000.0
    assert (emg[-1].first_index, emg[-1].gap_before) == (7, 0)
    assert stats.streams["emg"].n_samples == EMG_PER_PACKET  # counts of the new epoch
    imu = blocks_of(items, "imu")
    assert [(b.first_index, b.gap_before) for b in imu] == [(0, 0), (5, 0)]
    assert stats.streams["imu"].n_samples == 10
    assert stats.duplicates == stats.resets == 0


def test_newer_minor_version_unknown_type_skipped_and_appended_fields_ignored() -> None:
    device = ReferenceDevice(seed=14)
    frames = [device.info_frame(), device.samples_frame(EMG_ID)]
    frames.append(device.frame(0x20, 1, 20, b"a future packet", version=(1, 3)))
    status = StatusPayload(55, 3700, 0, 0).to_payload() + b"future fields"
    frames.append(device.frame(PacketType.STATUS, EMG_ID, 20, status, version=(1, 3)))
    frames.append(device.frame(PacketType.INFO, 0, 0, device.info.to_payload() + b"future fields"))
    frames.append(device.samples_frame(EMG_ID))
    items, stats = decode_all(b"".join(frames))
    assert sum(isinstance(i, DeviceInfo) for i in items) == 1  # the same INFO, with fields appended
    assert stats.unknown_type == 1
    assert stats.lost_packets == stats.corrupt_frames == 0
    assert [i.battery_pct for i in items if isinstance(i, DeviceStatus)] == [55]
    assert [(b.first_index, b.gap_before) for b in blocks_of(items, "emg")] == [(0, 0), (20, 0)]


def test_another_major_version_is_refused() -> None:
    device = ReferenceDevice(seed=15)
    info = device.frame(PacketType.INFO, 0, 0, device.info.to_payload(), version=(2, 1))
    emg = device.frame(
        PacketType.EMG, EMG_ID, 0, encode_samples(np.zeros((2, 20), int), SampleFormat.INT24), version=(2, 1)
    )
    items, stats = decode_all(info + emg)
    assert items == []
    assert stats.refused_major == 2
    assert stats.refused_version == (2, 1)
    assert stats.packets == stats.corrupt_frames == 0
    check_identity(stats)


def test_samples_before_info_count_as_no_info_then_decode() -> None:
    device = ReferenceDevice(emg_index=400, seed=16)
    early = [device.samples_frame(EMG_ID) for _ in range(3)] + [device.marker_frame(1, "early")]
    later = [device.info_frame()] + [device.samples_frame(EMG_ID) for _ in range(2)]
    items, stats = decode_all(b"".join(early + later))
    assert stats.no_info == 4
    assert stats.packets == 7
    assert [(b.first_index, b.gap_before) for b in blocks_of(items, "emg")] == [(460, 0), (480, 0)]


def test_device_level_status_and_marker() -> None:
    device = ReferenceDevice(seed=17)
    frames = [device.status_frame(StatusPayload(255, 0, 0xFFFF, 0), stream_id=0), device.marker_frame(200, "note", 0)]
    items, stats = decode_all(b"".join(frames))
    assert items == [DeviceStatus("", 0, None, None, (), ()), Marker("", 0, 200, "note")]
    assert stats.no_info == 0


def test_wrong_type_for_stream_and_bad_sizes_are_corrupt_payloads() -> None:
    device = ReferenceDevice(seed=18)
    frames = [device.info_frame()]
    frames.append(device.frame(PacketType.IMU, EMG_ID, 0, encode_samples(np.zeros((2, 4), int), SampleFormat.INT24)))
    frames.append(device.frame(PacketType.EMG, EMG_ID, 0, b"\x01" * 7))  # not whole sample sets
    frames.append(device.frame(PacketType.IMU, IMU_ID, 0, b"\x01" * 8))  # a 4-channel sample set
    frames.append(device.frame(PacketType.EMG, EMG_ID, 0, b""))
    frames.append(device.frame(PacketType.STATUS, EMG_ID, 0, b"\x01\x02"))
    duplicate_names = dataclasses.replace(
        device.info, streams=(device.info.streams[0], dataclasses.replace(device.info.streams[1], name="emg"))
    )
    frames.append(device.frame(PacketType.INFO, 0, 0, duplicate_names.to_payload()))
    items, stats = decode_all(b"".join(frames))
    assert len(items) == 1
    assert stats.corrupt["payload"] == 3
    assert stats.corrupt["payload_size"] == 3
    assert stats.lost_packets == 0
    check_identity(stats)


def test_control_packets_are_counted_and_skipped() -> None:
    device = ReferenceDevice(seed=19)
    control = encode_frame(Packet(PacketType.CONTROL, 0, 999, 0, ControlPayload(ControlCommand.START).to_payload()))
    frames = [device.info_frame(), control, device.samples_frame(EMG_ID)]
    items, stats = decode_all(b"".join(frames))
    assert stats.control == 1
    assert stats.lost_packets == 0  # a host's seq is not the device's
    assert len(items) == 2


def test_oversize_garbage_runs_are_bounded() -> None:
    rng = np.random.default_rng(20)
    garbage = [rng.integers(1, 256, 2000, dtype=np.uint8).tobytes() for _ in range(200)]  # 400 kB, no 0x00
    decoder = Decoder()
    tracemalloc.start()
    try:
        for chunk in garbage:
            assert decoder.feed(chunk) == []
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_bytes < 64_000  # a few chunks and one max_frame_bytes partial, not the 400 kB fed
    assert decoder.stats.corrupt["oversize"] == 1
    items = decoder.feed(b"\x00" + b"".join(SESSION[:20]))
    assert keys(items) == keys(decode_all(b"".join(SESSION[:20]))[0])


def test_a_frame_over_the_protocol_limit_is_oversize() -> None:
    items, stats = decode_all(SESSION[0] + b"\x01" * 3000 + b"\x00")
    assert len(items) == 1  # the INFO before it
    assert stats.corrupt["oversize"] == 1


def test_stats_are_plain_values() -> None:
    _, stats = decode_all(STREAM)
    copied = dataclasses.replace(stats)
    assert copied == stats
    assert math.isclose(stats.streams["emg"].sample_rate_hz, 2000.0)


def _scaled(counts: npt.NDArray[np.int64], scale: float) -> npt.NDArray[np.float64]:
    return counts * np.float64(np.float32(scale))


def test_int16_imu_scaling_per_channel() -> None:
    device = ReferenceDevice(seed=21)
    counts = np.array([[1, -2], [3, -4], [5, -6], [-32768, 32767], [10, 0], [0, -1]])
    frame = device.frame(PacketType.IMU, IMU_ID, 0, encode_samples(counts, SampleFormat.INT16))
    items, _ = decode_all(device.info_frame() + frame)
    (block,) = blocks_of(items, "imu")
    np.testing.assert_array_equal(block.data[:3], _scaled(counts[:3], ACC_SCALE_G))
    np.testing.assert_array_equal(block.data[3:], _scaled(counts[3:], GYRO_SCALE_DPS))
    assert block.info.channels[3].unit == "deg/s"


def test_the_tail_of_a_frame_joined_mid_way_is_not_damage():
    stream = STREAM
    cut = stream.index(b"\x00", 1) + 5  # land inside the second frame, as a port opened mid-send would
    decoder = Decoder()
    decoder.feed(stream[cut:])
    assert decoder.stats.joined_mid_frame == 1
    assert decoder.stats.corrupt_frames == 0
    again = Decoder()
    again.feed(stream[cut : cut + 3] + b"\x00" + stream)  # a damaged frame later on is damage
    again.feed(b"\x01\x02\x00")
    assert again.stats.joined_mid_frame == 1 and again.stats.corrupt_frames == 1
