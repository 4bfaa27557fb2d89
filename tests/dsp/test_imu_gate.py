"""The posture gate: postures learnt once held, recalled, labelled; causal labels; the set-point hook."""

import numpy as np
import pytest

from biofeed.blocks import Block
from biofeed.dsp.imu.gate import PostureGate, describe_posture
from biofeed.dsp.imu.motion import MotionTracker
from biofeed.dsp.imu.posture import Posture
from biofeed.dsp.tension import NEW_POSTURE, NO_POSTURE, PostureTimeline
from biofeed.sim.device import SimulatedDevice
from tests.dsp.test_imu_motion import STREAMS, orientation_blocks, tracked
from tests.dsp.test_imu_recordings import random_pieces, sim_imu


@pytest.fixture(scope="module")
def mixed():
    """The `mixed` scenario's IMUs (seed 2): standing, two bends, lying down, three trials, standing up."""
    device = SimulatedDevice("mixed", seed=2)
    blocks = orientation_blocks(*sim_imu(device))
    return device, blocks, tracked(blocks)[0]


def test_postures_are_learnt_once_held_and_recalled_after(mixed):
    device, _, tracker = mixed
    gate = PostureGate(tracker)
    assert isinstance(gate, PostureTimeline)
    assert gate.posture_of(10.0, 25.0) == 0 and gate.posture_of(80.0, 120.0) == 1
    # Bends (held 3-4 s at full flexion) and the arching of the trials never become postures.
    assert [(p.posture_id, p.label) for p in gate.postures] == [(0, "standing"), (1, "lying")]
    lying = next(r for r in device.truth()["rests"] if r["posture"] == "lying_supine")
    moved_s = lying["start_s"]  # the end of the 4 s movement down
    times = np.arange(moved_s - 3.0, moved_s + 8.0, 0.1)
    labels = gate.postures_at(times)
    assert labels[0] == NO_POSTURE  # moving
    assert set(labels[(times > moved_s + 0.5) & (times < moved_s + 4.5)].tolist()) == {NEW_POSTURE}
    first_lying_s = times[np.argmax(labels == 1)]
    assert moved_s + 4.5 <= first_lying_s <= moved_s + 6.0  # held 5 s
    standing_up_s = device.truth()["rests"][-1]["start_s"]
    assert gate.posture_of(standing_up_s + 1.0, standing_up_s + 20.0) == 0  # recalled at once
    for trial in device.script.trials:
        assert gate.posture_of(trial.onset_s - 20.0, trial.onset_s - 1.0) == 1


def test_labels_do_not_depend_on_chunking_or_on_when_they_are_asked(mixed):
    _, blocks, whole_tracker = mixed
    times = np.arange(0.0, 300.0, 0.05)
    whole = PostureGate(whole_tracker).postures_at(times)
    rng = np.random.default_rng(3)
    first_300_s = [Block(b.info, b.data[:, :30000], 0) for b in blocks]
    queues = [random_pieces(b, rng, 60) for b in first_300_s]
    tracker = MotionTracker(100.0, STREAMS)
    gate = PostureGate(tracker)
    while any(queues):
        side = int(rng.integers(2)) if all(queues) else (0 if queues[0] else 1)
        tracker.process(queues[side].pop(0))
        if rng.random() < 0.2:
            gate.posture_of(max(tracker.settled_s - 1.0, 0.0), max(tracker.settled_s, 0.1))  # asked along the way
    tracker.finish()
    assert np.array_equal(gate.postures_at(times), whole)


def up(tilt_deg: float) -> list[float]:
    """ "Up" in a sensor whose cranial axis (+x) is tilted backwards by tilt_deg from vertical."""
    t = np.radians(tilt_deg)
    return [np.cos(t), 0.0, -np.sin(t)]


@pytest.mark.parametrize(
    ("thoracic_deg", "sacral_deg", "label"),
    [
        (0.0, 5.0, "standing"),
        (10.0, 40.0, "sitting"),
        (90.0, 90.0, "lying"),
        (45.0, 20.0, "other"),
        (5.0, None, "upright"),
    ],
)
def test_postures_are_described_by_the_trunk_tilt(thoracic_deg, sacral_deg, label):
    up_by_stream = {"imu_thoracic_orientation": up(thoracic_deg)}
    if sacral_deg is not None:
        up_by_stream["imu_sacral_orientation"] = up(sacral_deg)
    assert describe_posture(Posture.from_up_vectors(up_by_stream, 0.0, 1.0)) == label


def test_a_reference_posture_is_known_from_the_first_tile(mixed):
    _, _, tracker = mixed
    standing = tracker.posture_between(0.0, 5.0)
    gate = PostureGate(tracker, reference=standing)
    assert gate.posture_of(0.0, 1.0) == 0 and gate.posture_label(0) == "standing"
