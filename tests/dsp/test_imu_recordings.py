"""Simulated recordings for the IMU and flexion-relaxation tests, and the live-equals-offline check.

The helpers render a :class:`SimulatedDevice`'s signals straight from its generators (what the
device encodes, without the int16/int24 rounding); the test below decodes the device's actual bytes
and checks that the streaming IMU chain fed block by block, as the decoder delivers them, gives the
angles :func:`track_trunk` computes offline.
"""

import itertools
import math

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block, ChannelInfo, ChannelKind, StreamInfo
from biofeed.dsp.imu.angles import TrunkAngles
from biofeed.dsp.imu.bias import GyroBiasTracker, estimate_gyro_bias
from biofeed.dsp.imu.fusion import OrientationFusion
from biofeed.dsp.imu.trunk_motion import IMU_CHANNEL_NAMES, track_trunk
from biofeed.protocol.decoder import Decoder
from biofeed.sim.device import SimulatedDevice
from biofeed.sim.emg import EmgGenerator
from biofeed.sim.imu import ImuGenerator

Array = npt.NDArray[np.float64]


def imu_info(name: str, sample_rate_hz: float = 100.0) -> StreamInfo:
    channels = tuple(
        ChannelInfo(n, ChannelKind.ACC, "g") if n.startswith("acc") else ChannelInfo(n, ChannelKind.GYRO, "deg/s")
        for n in IMU_CHANNEL_NAMES
    )
    return StreamInfo(name, sample_rate_hz, channels)


def sim_imu(device: SimulatedDevice) -> tuple[Array, Array]:
    """Thoracic and sacral IMU, each (6, n) at 100 Hz, over the device's duration."""
    n = round(device.duration_s * 100)
    out = []
    for site in ("thoracic", "sacral"):
        generator = ImuGenerator(device.script, site, seed=device.seed)
        out.append(np.hstack([generator.segment(i) for i in range(math.ceil(n / 100))])[:, :n])
    return out[0], out[1]


def sim_emg(device: SimulatedDevice) -> Array:
    """Both EMG channels, (2, n) at 2000 Hz, uV."""
    n = round(device.duration_s * 2000)
    generator = EmgGenerator(device.script, seed=device.seed, noise_floor_uv=device.noise_floor_uv)
    return np.hstack([generator.segment(i) for i in range(math.ceil(n / 2000))])[:, :n]


def random_pieces(block: Block, rng: np.random.Generator, max_samples: int) -> list[Block]:
    """The block cut at random points into contiguous pieces."""
    cuts = [0]
    while cuts[-1] < block.n_samples:
        cuts.append(min(block.n_samples, cuts[-1] + int(rng.integers(1, max_samples + 1))))
    return [Block(block.info, block.data[:, a:b], block.first_index + a) for a, b in itertools.pairwise(cuts)]


def test_simulated_arrays_are_what_the_device_sends():
    device = SimulatedDevice("flexion-relaxation", seed=4, duration_s=12.0)
    blocks = [b for b in Decoder().feed(device.frames_until(device.duration_s)) if isinstance(b, Block)]
    thoracic, sacral = sim_imu(device)
    for name, expected in (("imu_thoracic", thoracic), ("imu_sacral", sacral)):
        decoded = np.hstack([b.data for b in blocks if b.info.name == name])
        assert decoded.shape == expected.shape
        assert np.abs(decoded[:3] - expected[:3]).max() <= 1 / 16384  # one count of acc
        assert np.abs(decoded[3:] - expected[3:]).max() <= 1 / 131  # one count of gyro


def test_streaming_chain_on_decoded_blocks_equals_track_trunk():
    device = SimulatedDevice("flexion-relaxation", seed=5, duration_s=30.0)
    blocks = [b for b in Decoder().feed(device.frames_until(device.duration_s)) if isinstance(b, Block)]
    names = ("imu_thoracic", "imu_sacral")
    whole = [np.hstack([b.data for b in blocks if b.info.name == name]) for name in names]
    offline = track_trunk(whole[0], whole[1], 100.0)
    stages = {
        name: (
            GyroBiasTracker(100.0, initial_bias_dps=estimate_gyro_bias(data[:3], data[3:], 100.0)),
            OrientationFusion(100.0),
        )
        for name, data in zip(names, whole, strict=True)
    }
    angles = TrunkAngles(offline.calibration)
    out = []
    for block in blocks:  # as the decoder delivers them: 5-sample IMU blocks, the two streams interleaved
        if block.info.name in stages:
            bias, fusion = stages[block.info.name]
            out.append(angles.process(fusion.process(bias.process(block))))
    live = np.hstack([b.data for b in out])
    assert out[-1].end_index == offline.n_samples
    np.testing.assert_allclose(live, offline.angles_deg, rtol=0, atol=1e-9)
