from __future__ import annotations

import numpy as np
import pytest

from biofeed.blocks import AnalysisEvent, Block, ChannelInfo, ChannelKind, DeviceInfo, StreamInfo
from biofeed.dsp.imu.angles import LUMBAR_CHANNELS, SINGLE_SENSOR_CHANNELS
from biofeed.live.trunk import TrunkAngleSink, pick_imu_streams

IMU_CHANNELS = tuple(ChannelInfo(f"acc_{a}", ChannelKind.ACC, "g") for a in "xyz") + tuple(
    ChannelInfo(f"gyro_{a}", ChannelKind.GYRO, "deg/s") for a in "xyz"
)
EMG = StreamInfo("emg", 2000.0, (ChannelInfo("a", ChannelKind.EMG, "uV"),))


class Collect:
    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.events: list[dict] = []

    def write(self, item: Block | AnalysisEvent) -> None:
        if isinstance(item, Block):
            self.blocks.append(item)
        else:
            self.events.append(item.data)


def _imu(name: str, site: str = "") -> StreamInfo:
    return StreamInfo(name, 100.0, tuple(ChannelInfo(c.name, c.kind, c.unit, site) for c in IMU_CHANNELS))


def test_imu_roles_come_from_names_sites_or_order() -> None:
    named = pick_imu_streams((EMG, _imu("imu_sacral"), _imu("imu_thoracic")))
    assert [s.name for s in named] == ["imu_thoracic", "imu_sacral"]
    by_site = pick_imu_streams((_imu("b", "S1 sacral"), _imu("a", "T12 thoracic")))
    assert [s.name for s in by_site] == ["a", "b"]
    assert [s.name for s in pick_imu_streams((_imu("x"), _imu("y"), _imu("z")))] == ["x", "y"]
    assert [s.name for s in pick_imu_streams((EMG, _imu("only")))] == ["only"]
    assert pick_imu_streams((EMG,)) == ()


def test_angles_of_a_simulated_pandiculation(good_tape) -> None:
    target = Collect()
    sink = TrunkAngleSink(target)
    for item in good_tape:
        sink.write(item)
    assert sink.calibration is not None and sink.calibration.end_s <= 3.0  # lying still from the start
    assert target.blocks and all(b.info.name == "trunk_angles" for b in target.blocks)
    assert tuple(c.name for c in target.blocks[0].info.channels) == LUMBAR_CHANNELS
    index = np.concatenate([np.arange(b.first_index, b.end_index) for b in target.blocks])
    flexion = np.concatenate([b.data[0] for b in target.blocks])
    assert (np.diff(index) == 1).all()
    time_s = index / 100.0
    # the simulator arches the back during the contraction (thoracic -3, sacral +2: lumbar -5 deg)
    assert np.median(flexion[(time_s > 61) & (time_s < 63)]) == pytest.approx(-5.0, abs=0.7)
    assert np.abs(np.median(flexion[(time_s > 20) & (time_s < 55)])) < 0.5
    # calibrated lying: angles near 0 are no standing, so no flexion-relaxation phases
    assert sink.calibration_posture == "lying" and target.events == []


def test_one_imu_gives_the_trunk_inclination_only() -> None:
    target = Collect()
    sink = TrunkAngleSink(target)
    info = _imu("imu_thoracic")
    sink.write(DeviceInfo("d", (1, 0, 0), "p", (EMG, info)))
    rng = np.random.default_rng(3)
    data = np.zeros((6, 800))
    data[0] = 1.0  # upright: gravity along the cranial x axis
    data += rng.normal(0.0, 0.002, data.shape)
    data[4, :300] += 30.0 * np.sin(2 * np.pi * np.arange(300) / 100.0)  # rocking for 3 s: no calibration then
    for first in range(0, 800, 5):
        sink.write(Block(info, data[:, first : first + 5], first))
    assert sink.calibration is not None and sink.calibration.sacral is None
    assert sink.calibration.start_s >= 3.0
    assert tuple(c.name for c in target.blocks[0].info.channels) == SINGLE_SENSOR_CHANNELS
    angles = np.concatenate([b.data for b in target.blocks], axis=1)
    assert np.abs(angles).max() < 1.0
    # calibrated upright: the trunk inclination goes through the flexion-phase tracker
    assert sink.calibration_posture == "upright"
    assert [(e["type"], e["phase"]) for e in target.events] == [("flexion_phase", "standing")]
    assert target.events[0]["sample_index"] == target.blocks[0].first_index


def test_a_device_without_imu_gives_nothing() -> None:
    target = Collect()
    sink = TrunkAngleSink(target)
    sink.write(DeviceInfo("d", (1, 0, 0), "p", (EMG,)))
    sink.write(Block(EMG, np.zeros((1, 20)), 0))
    assert target.blocks == [] and sink.calibration is None


def test_calibration_time_must_be_positive() -> None:
    with pytest.raises(ValueError, match="calibration_s"):
        TrunkAngleSink(Collect(), calibration_s=0.0)
