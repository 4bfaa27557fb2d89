"""Quasi-static test, movement intervals, posture comparison and the set-point gate."""

import dataclasses
import json

import numpy as np
import pytest

from biofeed.blocks import Block, ChannelInfo, ChannelKind, StreamInfo
from biofeed.dsp.analyze import EmgAnalyzer
from biofeed.dsp.envelope import MovingRms
from biofeed.dsp.imu.bias import GyroBiasTracker, estimate_gyro_bias
from biofeed.dsp.imu.fusion import ANGULAR_RATE_ROW, LINEAR_ACCELERATION_ROW, QUATERNION_ROWS, OrientationFusion
from biofeed.dsp.imu.gate import PostureGate
from biofeed.dsp.imu.motion import MotionInterval, MotionTracker, QuasiStaticCriteria, up_vectors
from biofeed.dsp.imu.posture import Posture, compare_postures, posture_difference_deg
from biofeed.dsp.pandiculation import Verdict
from biofeed.sim.device import SimulatedDevice
from biofeed.sim.keyframes import KeyframeTrack
from biofeed.sim.scenarios import ScenarioScript, build_scenario
from tests.dsp.test_imu_recordings import imu_info, random_pieces, sim_emg, sim_imu

NAMES = ("imu_thoracic", "imu_sacral")
STREAMS = tuple(f"{n}_orientation" for n in NAMES)


def orientation_blocks(thoracic, sacral):
    out = []
    for name, data in zip(NAMES, (thoracic, sacral), strict=True):
        bias = GyroBiasTracker(100.0, initial_bias_dps=estimate_gyro_bias(data[:3], data[3:], 100.0))
        out.append(OrientationFusion(100.0).process(bias.process(Block(imu_info(name), data, 0))))
    return out


def tracked(blocks):
    tracker = MotionTracker(100.0, STREAMS)
    intervals = [i for b in blocks for i in tracker.process(b)]
    return tracker, intervals + tracker.finish()


@pytest.fixture(scope="module")
def flexion():
    device = SimulatedDevice("flexion-relaxation", seed=9)
    return device, orientation_blocks(*sim_imu(device))


def test_every_bend_and_return_is_a_gross_movement_and_standing_is_quiet(flexion):
    device, blocks = flexion
    tracker, intervals = tracked(blocks)
    cycles = device.script.cycles
    assert len(intervals) == 2 * len(cycles)
    for cycle, bend, back in zip(cycles, intervals[::2], intervals[1::2], strict=True):
        assert bend.start_s <= cycle.flexion_start_s + 0.5 and bend.end_s >= cycle.flexion_end_s - 0.5
        assert back.start_s <= cycle.extension_start_s + 0.5 and back.end_s >= cycle.extension_end_s - 0.5
        assert bend.gross and back.gross and bend.peak_angular_rate_dps > 30.0
        assert tracker.is_quiet(cycle.standing_start_s + 0.5, cycle.flexion_start_s) is True
        assert tracker.is_quiet(cycle.flexion_start_s, cycle.flexion_end_s) is False
        assert tracker.is_quiet(cycle.flexion_end_s + 0.3, cycle.extension_start_s - 0.3) is True  # held still, bent
    assert json.loads(json.dumps(intervals[0].to_json()))["gross"] is True


def test_intervals_and_quiet_spans_do_not_depend_on_chunking(flexion):
    _, blocks = flexion
    whole_tracker, whole = tracked(blocks)
    rng = np.random.default_rng(10)
    queues = [random_pieces(b, rng, 37) for b in blocks]
    tracker = MotionTracker(100.0, STREAMS)
    intervals = []
    while any(queues):
        side = int(rng.integers(2)) if all(queues) else (0 if queues[0] else 1)
        intervals += tracker.process(queues[side].pop(0))
    intervals += tracker.finish()
    assert intervals == whole
    spans = [(s, s + 1.0) for s in np.arange(0.0, 80.0, 0.7)]
    assert [tracker.is_quiet(*s) for s in spans] == [whole_tracker.is_quiet(*s) for s in spans]
    # Every tile is summed once from all its samples: postures are equal to the last bit (a live
    # pipeline's IMU blocks need not end on tile boundaries; its verdicts must equal the batch ones).
    postures = [tracker.posture_between(*s) for s in spans]
    assert any(p is not None for p in postures)
    assert postures == [whole_tracker.posture_between(*s) for s in spans]


def looped_posture(blocks, start_s, end_s, tile_samples=10):
    """The posture of [start_s, end_s) as a loop over each whole stream's tiles (from index 0), adding the
    "up" sums of the quiet ones one after the other from zero."""
    up = {}
    first, last = round(start_s * 100) // tile_samples, (round(end_s * 100) - 1) // tile_samples
    for block in blocks:
        starts = np.arange(0, block.n_samples, tile_samples)
        tile_up = np.add.reduceat(up_vectors(block.data[QUATERNION_ROWS]), starts, axis=1).T
        rate = np.maximum.reduceat(block.data[ANGULAR_RATE_ROW], starts)
        linear = np.maximum.reduceat(block.data[LINEAR_ACCELERATION_ROW], starts)
        total = np.zeros(3)
        for tile in range(first, min(last + 1, starts.shape[0])):
            if rate[tile] < 5.0 and linear[tile] < 0.05:
                total += tile_up[tile]
        if not np.linalg.norm(total) > 0:
            return None
        up[block.info.name] = total
    return Posture.from_up_vectors(up, start_s, end_s)


def test_postures_are_the_quiet_tiles_added_in_order_to_the_bit(flexion):
    _, blocks = flexion
    rng = np.random.default_rng(12)
    tracker = MotionTracker(100.0, STREAMS)
    for piece in sorted((p for b in blocks for p in random_pieces(b, rng, 23)), key=lambda p: p.first_index):
        tracker.process(piece)
    tracker.finish()
    starts = np.round(rng.uniform(0.0, 70.0, 60), 1)
    spans = [(float(s), float(s + d)) for s, d in zip(starts, np.round(rng.uniform(0.1, 30.0, 60), 1), strict=True)]
    postures = [tracker.posture_between(*s) for s in spans]
    assert sum(p is not None for p in postures) > 30
    assert postures == [looped_posture(blocks, *s) for s in spans]


def test_old_tiles_are_forgotten_and_a_jump_back_replaces_the_tiles_it_covers(flexion):
    _, (thoracic, sacral) = flexion
    n = thoracic.n_samples // 10 * 10
    jump = n - 1000
    criteria = QuasiStaticCriteria(history_s=20.0)
    tracker = MotionTracker(100.0, STREAMS[:1], criteria)
    for piece in random_pieces(Block(thoracic.info, thoracic.data[:, :n], 0), np.random.default_rng(13), 7):
        tracker.process(piece)
    assert tracker.first_tile == n // 10 - 200  # 20 s of 0.1 s tiles
    assert tracker.is_quiet(0.0, 5.0) is False and tracker.posture_between(0.0, 5.0) is None
    # The stream jumps back 10 s and sends other samples: they replace those tiles.
    tracker.process(Block(thoracic.info, sacral.data[:, jump:n], jump))
    spliced = Block(thoracic.info, np.concatenate([thoracic.data[:, :jump], sacral.data[:, jump:n]], axis=1), 0)
    straight = MotionTracker(100.0, STREAMS[:1], criteria)
    straight.process(spliced)
    end_s = n / 100
    spans = [(end_s - 20.0 + s, end_s - 20.0 + s + d) for s in np.arange(0.0, 19.0, 0.7) for d in (0.5, 3.0, 12.0)]
    assert [tracker.posture_between(*s) for s in spans] == [straight.posture_between(*s) for s in spans]
    assert [tracker.posture_between(*s) for s in spans] == [looped_posture([spliced], *s) for s in spans]
    assert [tracker.is_quiet(*s) for s in spans] == [straight.is_quiet(*s) for s in spans]
    assert [tracker.movement_between(*s) for s in spans] == [straight.movement_between(*s) for s in spans]
    assert {True, False} <= {tracker.is_quiet(*s) for s in spans}


def test_a_span_is_unsettled_until_every_stream_covered_it(flexion):
    _, blocks = flexion
    tracker = MotionTracker(100.0, STREAMS)
    tracker.process(Block(blocks[0].info, blocks[0].data[:, :500], 0))
    assert tracker.settled_s == 0.0 and tracker.is_quiet(1.0, 2.0) is None
    tracker.process(Block(blocks[1].info, blocks[1].data[:, :305], 0))
    assert tracker.settled_s == pytest.approx(3.0) and tracker.is_quiet(1.0, 2.0) is True
    assert tracker.is_quiet(2.5, 3.05) is None  # the tile 3.0-3.1 is still filling
    with pytest.raises(ValueError, match="imu_thoracic_orientation"):
        tracker.process(Block(imu_info("imu_other"), np.zeros((6, 2)), 0))
    with pytest.raises(ValueError, match="end_s > start_s"):
        tracker.is_quiet(2.0, 2.0)


def test_a_gap_leaves_its_tiles_missing_so_not_quiet(flexion):
    _, blocks = flexion
    tracker = MotionTracker(100.0, STREAMS[:1])
    tracker.process(Block(blocks[0].info, blocks[0].data[:, :250], 0))
    tracker.process(Block(blocks[0].info, blocks[0].data[:, 400:800], 400, gap_before=150))
    assert tracker.is_quiet(0.5, 2.0) is True
    assert tracker.is_quiet(2.0, 3.0) is False  # 2.5-4.0 never arrived
    assert tracker.posture_between(2.6, 3.9) is None


def test_arching_during_a_contraction_is_movement_but_not_gross():
    device = SimulatedDevice("pandiculation", seed=1, duration_s=80.0)
    _, intervals = tracked(orientation_blocks(*sim_imu(device)))
    onset = device.script.trials[0].onset_s
    arching = [i for i in intervals if i.overlaps(onset, onset + 10.0)]
    assert arching and not any(i.gross for i in arching)
    assert all(5.0 < i.peak_angular_rate_dps < 30.0 for i in arching)


def test_postures_compare_by_the_largest_tilt_change():
    tilt = np.radians(2.5)
    before = Posture.from_up_vectors({"a": [1, 0, 0], "b": [0, 0, -2]}, 0.0, 30.0)
    after = Posture.from_up_vectors({"a": [np.cos(tilt), 0, np.sin(tilt)], "b": [0, 0, -1]}, 50.0, 80.0)
    assert posture_difference_deg(before, after) == pytest.approx(2.5)
    comparison = compare_postures(before, after)
    assert comparison.matched and dict(comparison.by_stream)["b"] == pytest.approx(0.0)
    strict = compare_postures(before, after, tolerance_deg=2.0)
    assert not strict.matched and "more than 2 deg" in strict.reason()
    assert json.loads(json.dumps(strict.to_json()))["matched"] is False
    with pytest.raises(ValueError, match="share no sensor"):
        compare_postures(before, Posture.from_up_vectors({"c": [1, 0, 0]}, 0.0, 1.0))
    with pytest.raises(ValueError, match="non-zero"):
        Posture.from_up_vectors({"a": [0, 0, 0]}, 0.0, 1.0)
    with pytest.raises(ValueError, match="tolerance_deg"):
        compare_postures(before, after, tolerance_deg=-1.0)


def test_gate_accepts_quiet_windows_in_a_posture_held_5_s_and_recalls_it(flexion):
    device, blocks = flexion
    tracker, _ = tracked(blocks)
    gate = PostureGate(tracker)
    info = StreamInfo("emg_rms1000ms", 1.0, (ChannelInfo("es_left", ChannelKind.EMG, "uV"),))
    mask = gate.mask(Block(info, np.ones((1, 88)), 1))  # windows [0, 1), [1, 2), ... [87, 88)
    assert not mask[:5].any() and mask[5:9].all()  # standing counts once held 5 s
    assert [(p.posture_id, p.label) for p in gate.postures] == [(0, "standing")]
    assert gate.postures[0].reference.start_s == 0.0
    cycle = device.script.cycles[0]
    assert not mask[int(cycle.flexion_start_s) + 1 : int(cycle.extension_end_s)].any()  # bent, or moving
    between = int(device.script.cycles[1].standing_start_s) + 2
    assert mask[between] and gate.posture_of(between, between + 1.0) == 0  # standing again: recalled at once
    bent = cycle.flexion_end_s + 0.5
    assert tracker.is_quiet(bent, bent + 1.0) and not gate(bent, bent + 1.0)  # still, but 70 deg off
    assert len(gate.postures) == 1  # a full flexion held 3-4 s is no posture
    with pytest.raises(ValueError, match="tolerance_deg"):
        PostureGate(tracker, tolerance_deg=float("nan"))
    with pytest.raises(ValueError, match="hold_s"):
        PostureGate(tracker, hold_s=-1.0)


def _shifted(track: KeyframeTrack, start_s: float, duration_s: float, change_deg: float) -> KeyframeTrack:
    """The track, plus a change of ``change_deg`` over [start_s, start_s + duration_s] that stays."""
    end_s = start_s + duration_s
    keys = [(t, v) for t, v in zip(track.times_s.tolist(), track.values.tolist(), strict=True) if t < start_s]
    keys += [(start_s, float(track.value_at(start_s))), (end_s, float(track.value_at(end_s)) + change_deg)]
    keys += [
        (t, v + change_deg) for t, v in zip(track.times_s.tolist(), track.values.tolist(), strict=True) if t > end_s
    ]
    return KeyframeTrack([t for t, _ in keys], [v for _, v in keys], interpolation="minimum_jerk")


def pandiculation_with_posture_change(change_deg: float) -> tuple[ScenarioScript, SimulatedDevice]:
    device = SimulatedDevice("pandiculation", seed=1, duration_s=120.0)
    script = device.script
    start_s = script.trials[0].release_end_s + 3.0
    moved = dataclasses.replace(
        script,
        thoracic_deg=_shifted(script.thoracic_deg, start_s, 2.0, change_deg),
        sacral_deg=_shifted(script.sacral_deg, start_s, 2.0, change_deg),
    )
    device.script = moved
    return moved, device


@pytest.mark.parametrize("change_deg", [0.0, 6.0])
def test_a_posture_change_after_a_pandiculation_rejects_it(change_deg):
    script, device = pandiculation_with_posture_change(change_deg)
    assert build_scenario("pandiculation", seed=1, duration_s=120.0).trials == script.trials
    tracker, _ = tracked(orientation_blocks(*sim_imu(device)))
    trial = script.trials[0]
    comparison = compare_postures(
        tracker.posture_between(trial.onset_s - 30.0, trial.onset_s),
        tracker.posture_between(trial.release_end_s + 10.0, trial.release_end_s + 40.0),
    )
    assert comparison.difference_deg == pytest.approx(change_deg, abs=0.5)
    assert comparison.matched == (change_deg < 3.0)
    emg = sim_emg(device)
    analyzer = EmgAnalyzer(2000.0, 1.5, mains="off", ecg="off", gate=PostureGate(tracker))
    info = StreamInfo("emg", 2000.0, tuple(ChannelInfo(n, ChannelKind.EMG, "uV") for n in ("es_left", "es_right")))
    trials = analyzer.process(Block(info, emg, 0)).trials + analyzer.finish().trials
    final = [t for t in trials if t.final and t.channel_index == 0]
    assert len(final) == 1
    if change_deg:
        assert final[0].verdict is Verdict.REJECTED and "gate" in final[0].verdict_reason
    else:
        assert final[0].verdict is not Verdict.REJECTED and final[0].n_post_windows >= 25


def test_bad_criteria_are_refused():
    with pytest.raises(ValueError, match="max_angular_rate_dps"):
        QuasiStaticCriteria(max_angular_rate_dps=0.0)
    with pytest.raises(ValueError, match="merge_s"):
        QuasiStaticCriteria(merge_s=-1.0)
    with pytest.raises(ValueError, match="orientation stream"):
        MotionTracker(100.0, [])
    interval = MotionInterval(1.0, 2.0, 40.0, 0.01)
    assert interval.overlaps(1.5, 3.0) and not interval.overlaps(2.0, 3.0)
    assert MotionInterval(0.0, 1.0, 10.0, 0.3).gross and not MotionInterval(0.0, 1.0, 10.0, 0.1).gross


def test_rms_windows_of_the_dsp_core_line_up_with_gate_windows(flexion):
    """The gate mask indexes the same device seconds as a 1 s MovingRms block."""
    _, blocks = flexion
    tracker, _ = tracked(blocks)
    info = StreamInfo("emg", 2000.0, (ChannelInfo("es_left", ChannelKind.EMG, "uV"),))
    rms = MovingRms(2000.0, 1.0, 1.0).process(Block(info, np.ones((1, 2000 * 12)), 0))
    assert rms.first_index == 1 and rms.n_samples == 12  # window k covers [k - 1, k) s
    standing = tracker.posture_between(0.0, 5.0)
    assert PostureGate(tracker, reference=standing).mask(rms)[:9].all()
