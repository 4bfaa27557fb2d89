"""Float samples of foreign streams encoded as wire frames, checked through the real decoder."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeed.blocks import Block, ChannelInfo, ChannelKind, DeviceInfo, DeviceStatus, StreamInfo
from biofeed.errors import SourceError
from biofeed.protocol.decoder import Decoder
from biofeed.protocol.packets import PacketType, decode_frame
from biofeed.sources.sample_frames import RESOLUTION_BY_KIND, SampleFramer

EMG = StreamInfo("emg", 1000.0, tuple(ChannelInfo(f"ch{k}", ChannelKind.EMG, "uV", f"site {k}") for k in range(3)))
IMU = StreamInfo(
    "imu", 50.0, (ChannelInfo("acc_x", ChannelKind.ACC, "g"), ChannelInfo("gyro_x", ChannelKind.GYRO, "deg/s"))
)


def blocks_of(items: list[object], name: str) -> list[Block]:
    return [i for i in items if isinstance(i, Block) and i.info.name == name]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cuts=st.lists(st.integers(1, 2999), max_size=8, unique=True))
def test_samples_come_back_within_half_a_count_in_any_chunking(seed: int, cuts: list[int]) -> None:
    rng = np.random.default_rng(seed)
    emg = rng.normal(0, 200, (3, 3000))
    framer = SampleFramer("dev", "test", [EMG, IMU])
    decoder = Decoder()
    items = decoder.feed(framer.start())
    for piece in np.split(emg, sorted(cuts), axis=1):
        items += decoder.feed(framer.samples("emg", piece))
    got = np.concatenate([b.data for b in blocks_of(items, "emg")], axis=1)
    assert np.max(np.abs(got - emg)) <= RESOLUTION_BY_KIND[ChannelKind.EMG] / 2 * (1 + 1e-6)
    assert decoder.stats.corrupt_frames == 0 and decoder.stats.lost_packets == 0
    assert framer.next_index("emg") == 3000


def test_device_info_carries_names_kinds_sites_and_rates() -> None:
    framer = SampleFramer("dev-7", "lsl", [EMG, IMU], firmware_version=(5, 23, 0))
    decoder = Decoder()
    (info,) = decoder.feed(framer.start())
    assert isinstance(info, DeviceInfo)
    assert info == framer.device_info
    assert (info.device_id, info.board_profile, info.firmware_version) == ("dev-7", "lsl", (5, 23, 0))
    assert [s.name for s in info.streams] == ["emg", "imu"]
    assert info.streams[0].channels == EMG.channels
    assert info.streams[1].channels == IMU.channels
    assert [s.sample_rate_hz for s in info.streams] == [1000.0, 50.0]


def test_info_is_repeated_every_second_of_the_first_stream() -> None:
    framer = SampleFramer("dev", "test", [EMG])
    data = framer.start() + framer.samples("emg", np.zeros((3, 3500)))
    frames = [f for f in data.split(b"\x00") if f]
    infos = [decode_frame(f) for f in frames if decode_frame(f).type == PacketType.INFO]
    assert len(infos) == 4  # the first, then at 1 s, 2 s, 3 s
    assert [p.flags for p in infos] == [0, 1, 1, 1]


def test_more_than_16_channels_are_split_and_stay_aligned() -> None:
    wide = StreamInfo("emg", 500.0, tuple(ChannelInfo(f"c{k}", ChannelKind.EMG, "uV") for k in range(20)))
    framer = SampleFramer("dev", "test", [wide])
    assert [(s.name, s.n_channels) for s in framer.device_info.streams] == [("emg_1", 16), ("emg_2", 4)]
    data = np.random.default_rng(1).normal(0, 10, (20, 100))
    data[18, 40:43] = np.nan  # a non-finite value in one part drops the sample set from both
    decoder = Decoder()
    items = decoder.feed(framer.start() + framer.samples("emg", data))
    for name, rows in (("emg_1", slice(0, 16)), ("emg_2", slice(16, 20))):
        blocks = blocks_of(items, name)  # packets hold at most 1024 bytes: 21 sample sets of 16 channels
        assert [(b.first_index, b.gap_before) for b in blocks if b.gap_before] == [(43, 3)]
        got = np.concatenate([b.data for b in blocks], axis=1)
        kept = np.r_[0:40, 43:100]
        assert np.concatenate([np.arange(b.first_index, b.end_index) for b in blocks]).tolist() == kept.tolist()
        np.testing.assert_allclose(got, data[rows][:, kept], atol=0.0125 + 1e-9)


def test_values_beyond_the_range_are_clipped_and_flagged() -> None:
    framer = SampleFramer("dev", "test", [IMU])
    data = np.zeros((2, 30))
    data[0, 10:20] = 100.0  # g: beyond +-84 g
    decoder = Decoder()
    items = decoder.feed(framer.start())
    for k in range(3):
        items += decoder.feed(framer.samples("imu", data[:, 10 * k : 10 * k + 10]))
    statuses = [i for i in items if isinstance(i, DeviceStatus)]
    assert [(s.sample_index, s.saturated) for s in statuses] == [(10, (True, False)), (20, (False, False))]
    top = np.concatenate([b.data for b in blocks_of(items, "imu")], axis=1)[0, 10:20]
    np.testing.assert_allclose(top, (2**23 - 1) * np.float32(1e-5), rtol=1e-6)


def test_gap_before_moves_the_counter() -> None:
    framer = SampleFramer("dev", "test", [IMU])
    decoder = Decoder()
    items = decoder.feed(framer.start() + framer.samples("imu", np.zeros((2, 5))))
    items += decoder.feed(framer.samples("imu", np.ones((2, 5)), gap_before=7))
    assert [(b.first_index, b.gap_before) for b in blocks_of(items, "imu")] == [(0, 0), (12, 7)]


def test_descriptions_that_do_not_fit_are_refused() -> None:
    with pytest.raises(SourceError, match="travel in 'uV'"):
        SampleFramer("dev", "test", [StreamInfo("emg", 100.0, (ChannelInfo("a", ChannelKind.EMG, "mV"),))])
    many = [StreamInfo(f"s{k}", 100.0, (ChannelInfo("a", ChannelKind.ACC, "g"),)) for k in range(9)]
    with pytest.raises(SourceError, match="1 to 8"):
        SampleFramer("dev", "test", many)
    long_sites = tuple(ChannelInfo(f"c{k}", ChannelKind.EMG, "uV", "x" * 200) for k in range(16))
    with pytest.raises(SourceError, match="more than one INFO holds"):
        SampleFramer("dev", "test", [StreamInfo("emg", 100.0, long_sites)])
    with pytest.raises(ValueError, match="shape"):
        SampleFramer("dev", "test", [IMU]).samples("imu", np.zeros((3, 4)))
