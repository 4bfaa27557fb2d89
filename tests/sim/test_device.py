from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from biofeed.blocks import Block, DeviceInfo, DeviceStatus
from biofeed.protocol.decoder import Decoder
from biofeed.protocol.packets import InfoPayload, PacketType, decode_frame, decode_samples
from biofeed.sim.device import EMG_SCALE_UV, SimulatedDevice
from biofeed.sim.emg import EmgGenerator


def _decode(data: bytes) -> tuple[Decoder, dict[str, np.ndarray], list[object]]:
    """Decode a whole byte stream: the decoder, each stream's samples end to end, other items."""
    decoder = Decoder()
    items = decoder.feed(data)
    blocks: dict[str, list[Block]] = {}
    for item in items:
        if isinstance(item, Block):
            blocks.setdefault(item.info.name, []).append(item)
    streams = {name: np.hstack([b.data for b in group]) for name, group in blocks.items()}
    return decoder, streams, [i for i in items if not isinstance(i, Block)]


def _frames(data: bytes) -> list[bytes]:
    return [f for f in data.split(b"\x00") if f]


def test_unknown_scenario_is_refused_with_the_allowed_names():
    with pytest.raises(ValueError, match="allowed: rest, pandiculation, pandiculation-poor, flexion-relaxation, mixed"):
        SimulatedDevice("walk")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": -3}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"clock_ppm": 1e6}, "clock_ppm"),
        ({"duration_s": -1}, "duration"),
    ],
)
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SimulatedDevice("rest", **kwargs)


@settings(max_examples=8, deadline=None)
@given(steps=st.lists(st.floats(min_value=0.0005, max_value=1.3), min_size=1, max_size=40))
def test_same_seed_gives_the_same_bytes_however_it_is_stepped(steps):
    whole = SimulatedDevice("mixed", seed=11, duration_s=3.0).frames_until(1e9)
    device = SimulatedDevice("mixed", seed=11, duration_s=3.0)
    parts, t = [], 0.0
    while not device.finished:
        t += steps[len(parts) % len(steps)]
        parts.append(device.frames_until(t))
    assert b"".join(parts) == whole


def test_going_back_in_time_returns_nothing():
    device = SimulatedDevice("rest", seed=0, duration_s=2.0)
    assert device.frames_until(-1.0) == b""
    first = device.frames_until(1.0)
    assert first.startswith(b"\x00") and device.frames_until(0.5) == b""
    assert device.next_frame_time_s == pytest.approx(1.01)


def test_different_seeds_differ():
    a = SimulatedDevice("rest", seed=1, duration_s=2.0)
    b = SimulatedDevice("rest", seed=2, duration_s=2.0)
    assert a.frames_until(2.0) != b.frames_until(2.0)
    assert (a.device_id, b.device_id) == ("sim-1", "sim-2")


def test_every_frame_decodes_in_the_documented_order_and_counts():
    device = SimulatedDevice("flexion-relaxation", seed=3, duration_s=4.0)
    data = device.frames_until(4.0)
    assert device.finished and data[:1] == b"\x00"
    packets = [decode_frame(f) for f in _frames(data)]
    assert [p.seq for p in packets] == list(range(len(packets)))
    counts = Counter(PacketType(p.type) for p in packets)
    assert counts == {PacketType.INFO: 4, PacketType.EMG: 400, PacketType.IMU: 160, PacketType.STATUS: 4}
    infos = [p for p in packets if p.type == PacketType.INFO]
    assert [p.flags for p in infos] == [0, 1, 1, 1]
    info = InfoPayload.from_payload(infos[0].payload)
    assert info.device_id == "sim-3" and info.board_profile == "simulator"
    assert [(s.stream_id, s.name, s.sample_rate_mhz) for s in info.streams] == [
        (1, "emg", 2_000_000),
        (2, "imu_thoracic", 100_000),
        (3, "imu_sacral", 100_000),
    ]
    assert [c.name for c in info.streams[0].channels] == ["es_left", "es_right"]
    assert info.streams[0].channels[1].site == "erector spinae L1 right"
    assert info.streams[0].channels[0].scale == pytest.approx(EMG_SCALE_UV, rel=1e-7)
    assert [c.name for c in info.streams[1].channels] == ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    for stream_id, per_packet in ((1, 20), (2, 5), (3, 5)):
        firsts = [p.first_sample_index for p in packets if p.stream_id == stream_id and p.type in (2, 3)]
        assert firsts == list(range(0, len(firsts) * per_packet, per_packet))
    # A packet leaves once its samples are taken: the one second in has 100 EMG and 20 IMU packets.
    second = packets.index(infos[1])
    assert Counter(p.type for p in packets[:second] if p.type in (2, 3)) == {2: 100, 3: 40}
    emg = decode_samples(packets[1].payload, info.streams[0].sample_format, 2)
    assert emg.shape == (2, 20)


def test_the_stateful_decoder_sees_contiguous_streams_at_nominal_rates():
    device = SimulatedDevice("mixed", seed=4, duration_s=6.0)
    decoder, streams, others = _decode(device.frames_until(6.0))
    stats = decoder.stats
    assert stats.corrupt_frames == 0 and stats.lost_packets == 0 and stats.no_info == 0
    assert {name: (s.n_samples, s.gaps) for name, s in stats.streams.items()} == {
        "emg": (12000, 0),
        "imu_thoracic": (600, 0),
        "imu_sacral": (600, 0),
    }
    assert streams["emg"].shape == (2, 12000)
    assert isinstance(others[0], DeviceInfo) and others[0].device_id == "sim-4"
    statuses = [i for i in others if isinstance(i, DeviceStatus)]
    assert [s.sample_index for s in statuses] == [2000, 4000, 6000, 8000, 10000, 12000]
    assert statuses[0].battery_pct == 100 and not any(statuses[0].saturated)


def test_duration_rounds_up_to_a_whole_imu_packet():
    device = SimulatedDevice("rest", seed=0, duration_s=1.01)
    assert device.duration_s == pytest.approx(1.05)
    _, streams, _ = _decode(device.frames_until(10.0))
    assert streams["emg"].shape[1] == 2100 and streams["imu_thoracic"].shape[1] == 105


def test_clock_ppm_maps_device_and_host_time():
    device = SimulatedDevice("rest", seed=0, clock_ppm=100.0)
    assert device.host_time_of(3600.0) == pytest.approx(3600.0 / 1.0001)
    assert device.device_time_at(device.host_time_of(1234.5)) == pytest.approx(1234.5)
    # A fast crystal sends its nominal count per device second: more per host second.
    assert device.device_time_at(1.0) * 2000 == pytest.approx(2000.2)
    assert SimulatedDevice("rest", clock_ppm=-50.0).host_time_of(3600.0) == pytest.approx(3600.18, abs=1e-3)


def test_wire_samples_are_the_generated_ones_to_a_count():
    device = SimulatedDevice("rest", seed=6, duration_s=2.0)
    _, streams, _ = _decode(device.frames_until(2.0))
    generator = EmgGenerator(device.script, seed=6)
    generated = np.hstack([generator.segment(0), generator.segment(1)])
    np.testing.assert_allclose(streams["emg"], generated, atol=EMG_SCALE_UV / 2 + 1e-9)


def test_rest_rms_matches_the_script_after_removing_the_floor():
    device = SimulatedDevice("rest", seed=7, duration_s=20.0)
    _, streams, _ = _decode(device.frames_until(20.0))
    emg = streams["emg"][:, 2000:]
    spectrum = np.fft.rfft(emg, axis=-1)
    f = np.fft.rfftfreq(emg.shape[1], 1 / 2000)
    spectrum[:, (f < 20) | (f > 450)] = 0
    in_band_rms = np.sqrt(np.mean(np.fft.irfft(spectrum, n=emg.shape[1], axis=-1) ** 2, axis=-1))
    corrected = np.sqrt(in_band_rms**2 - device.noise_floor_uv**2)
    expected = [track.rms_between(1.0, 20.0) for track in device.script.emg_level_uv]
    np.testing.assert_allclose(corrected, expected, rtol=0.05)


def test_envelope_onsets_match_the_truth():
    device = SimulatedDevice("pandiculation", seed=8, duration_s=75.0)
    truth = device.truth()
    _, streams, _ = _decode(device.frames_until(75.0))
    sos = signal.butter(4, [20, 450], btype="bandpass", fs=2000, output="sos")
    filtered = signal.sosfiltfilt(sos, streams["emg"], axis=-1)
    window = np.ones(100) / 100  # 50 ms RMS, centred
    envelope = np.sqrt(np.apply_along_axis(lambda x: np.convolve(x, window, mode="same"), -1, filtered**2))
    for channel_index, name in enumerate(("es_left", "es_right")):
        (contraction,) = truth["channels"][name]["contractions"]
        rest = envelope[channel_index, 20 * 2000 : 55 * 2000]
        above = envelope[channel_index] > rest.mean() + 5 * rest.std()
        start = 55 * 2000
        held = np.convolve(above[start:], np.ones(100), mode="valid") == 100  # held >= 50 ms (SCIENCE.md 5)
        onset_s = (start + int(np.argmax(held))) / 2000
        assert onset_s == pytest.approx(contraction["onset_s"], abs=0.05)
        hold = slice(round((contraction["onset_s"] + 1.0) * 2000), round(contraction["release_start_s"] * 2000))
        peak_rms = np.sqrt(np.mean(filtered[channel_index, hold] ** 2) - device.noise_floor_uv**2)
        assert peak_rms == pytest.approx(contraction["peak_uv"], rel=0.1)


def test_url_names_the_options():
    device = SimulatedDevice("rest", seed=2, duration_s=10.0, clock_ppm=40.0, ecg_r_peak_uv=50.0, mains_hz=50.0)
    assert device.url == "sim://rest?seed=2&duration=10&clock_ppm=40&ecg=50&mains=50"
    assert SimulatedDevice("rest").url == "sim://rest?seed=0&duration=180"


def test_wire_imu_angles_match_the_script_at_rest_points():
    device = SimulatedDevice("flexion-relaxation", seed=9, duration_s=20.0)
    _, streams, _ = _decode(device.frames_until(20.0))
    cycle = device.script.cycles[0]
    for t_s in (4.0, (cycle.flexion_end_s + cycle.extension_start_s) / 2):
        window = slice(round(t_s * 100) - 20, round(t_s * 100) + 20)
        angles = {}
        for name in ("imu_thoracic", "imu_sacral"):
            acc = streams[name][:3, window].mean(axis=1)
            angles[name] = np.degrees(np.arctan2(acc[2], acc[0]))
        assert angles["imu_thoracic"] == pytest.approx(float(device.script.thoracic_deg.value_at(t_s)), abs=0.5)
        lumbar_deg = angles["imu_thoracic"] - angles["imu_sacral"]
        assert lumbar_deg == pytest.approx(device.script.lumbar_deg_at(t_s), abs=0.7)
