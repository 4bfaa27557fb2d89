import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from biofeed.blocks import Block, ChannelInfo, ChannelKind, DeviceInfo, DeviceStatus, StreamInfo
from biofeed.boards import find_board_profile
from biofeed.dsp.filters import BandPassFilter
from biofeed.sessions.calibrate import (
    CalibrationProtocol,
    CalibrationResult,
    CalibrationRun,
    CalibrationStep,
    StepKind,
    StepStatus,
    load_calibration_protocol,
)

FS = 2000.0
IMU_FS = 100.0
EMG = StreamInfo(
    "emg",
    FS,
    (ChannelInfo("es_left", ChannelKind.EMG, "uV", ""), ChannelInfo("es_right", ChannelKind.EMG, "uV", "")),
    "dev",
)
IMU = StreamInfo(
    "imu_thoracic",
    IMU_FS,
    tuple(ChannelInfo(f"acc_{a}", ChannelKind.ACC, "g", "") for a in "xyz")
    + tuple(ChannelInfo(f"gyro_{a}", ChannelKind.GYRO, "deg/s", "") for a in "xyz"),
    "dev",
)
DEVICE = DeviceInfo("dev", (1, 0, 0), "simulator", (EMG, IMU))
NOISE_SD_UV = 2.0


def _noise(rng, n, sd=NOISE_SD_UV):
    return rng.normal(0.0, sd, size=(2, n))


def _muscle(rng, n, rms_uv):
    """Band-limited 'muscle' activity (60-150 Hz) of a given RMS."""
    sos = signal.butter(4, [60.0, 150.0], btype="bandpass", fs=FS, output="sos")
    x = signal.sosfilt(sos, rng.normal(size=(2, n + 2000)), axis=1)[:, 2000:]
    return x / np.sqrt(np.mean(x**2, axis=1, keepdims=True)) * rms_uv


def _band_noise_uv(sd=NOISE_SD_UV):
    """RMS of white noise of this SD after the default 30-450 Hz band-pass."""
    return sd * math.sqrt(BandPassFilter(FS).band.noise_bandwidth_hz() / (FS / 2))


def _items(emg, acc=(1.0, 0.0, 0.0), chunk_s=0.1, rng=None, gyro_sd=0.05, start_index=0):
    """DeviceInfo, then EMG and IMU blocks interleaved in device time."""
    rng = rng or np.random.default_rng(5)
    n = emg.shape[1]
    n_imu = int(n / FS * IMU_FS)
    acc_data = np.asarray(acc, dtype=float)[:, None] + rng.normal(0, 0.003, size=(3, n_imu))
    imu = np.vstack([acc_data, rng.normal(0, gyro_sd, size=(3, n_imu))])
    items = [DEVICE]
    step = max(1, round(chunk_s * FS))
    for first in range(0, n, step):
        items.append(Block(EMG, emg[:, first : first + step], start_index + first))
        a, b = int(first / FS * IMU_FS), int(min(first + step, n) / FS * IMU_FS)
        if b > a:
            items.append(Block(IMU, imu[:, a:b], int(start_index / FS * IMU_FS) + a))
    return items


def _run(protocol, items, **kwargs):
    run = CalibrationRun(protocol, board=find_board_profile("simulator"), **kwargs)
    updates = run.take_updates()
    for item in items:
        updates += run.process(item)
    updates += run.finish()
    return run, updates


def _protocol(*steps):
    return CalibrationProtocol("test", "test", tuple(steps))


def test_noise_floor_from_a_silent_rest_is_the_sensor_noise():
    rng = np.random.default_rng(1)
    run, _ = _run(_protocol(CalibrationStep(StepKind.NOISE_FLOOR, 40.0, "rest")), _items(_noise(rng, int(40 * FS))))
    result = run.result()
    step = result.steps[0]
    assert step.status is StepStatus.PASSED, step.reason
    assert step.values["source"] == "calibration_rest"
    expected = _band_noise_uv()
    for channel in ("es_left", "es_right"):
        assert result.noise_floor_uv[channel] == pytest.approx(expected, rel=0.1)
        assert step.values["high_band_uv"][channel] == pytest.approx(expected, rel=0.1)


def test_a_rest_with_muscle_activity_falls_back_to_the_450_500_hz_band():
    rng = np.random.default_rng(2)
    n = int(40 * FS)
    run, _ = _run(
        _protocol(CalibrationStep(StepKind.NOISE_FLOOR, 40.0, "rest")), _items(_noise(rng, n) + _muscle(rng, n, 4.0))
    )
    step = run.result().steps[0]
    assert step.status is StepStatus.PASSED
    assert step.values["source"] == "high_band"
    assert "not silent" in step.reason
    for channel in ("es_left", "es_right"):
        assert step.values["rest_percentile_uv"][channel] > 1.25 * step.values["high_band_uv"][channel]
        assert step.values["noise_floor_uv"][channel] == pytest.approx(_band_noise_uv(), rel=0.1)


def test_set_point_and_reference_contraction_are_noise_corrected():
    rng = np.random.default_rng(3)
    floor_n, rest_n, ref_n = int(30 * FS), int(25 * FS), int(10 * FS)
    rest = _noise(rng, rest_n) + _muscle(rng, rest_n, 3.0)
    reference = _noise(rng, ref_n)
    burst = slice(int(4 * FS), int(7 * FS))
    reference[:, burst] += _muscle(rng, burst.stop - burst.start, 40.0)
    emg = np.hstack([_noise(rng, floor_n), rest, reference])
    protocol = _protocol(
        CalibrationStep(StepKind.NOISE_FLOOR, 30.0, "rest"),
        CalibrationStep(StepKind.SET_POINT, 25.0, "rest", posture="lying_supine"),
        CalibrationStep(StepKind.REFERENCE_CONTRACTION, 10.0, "contract"),
    )
    run, _ = _run(protocol, _items(emg, acc=(0.0, 0.0, 1.0)))
    result = run.result()
    assert [s.status for s in result.steps] == [StepStatus.PASSED] * 3, [s.reason for s in result.steps]
    for channel in ("es_left", "es_right"):
        assert result.set_points_uv["lying_supine"][channel] == pytest.approx(3.0, rel=0.12)
        assert result.reference_contraction_uv[channel] == pytest.approx(40.0, rel=0.1)
        assert result.steps[2].values["hold_s"][channel] == pytest.approx(3.0, abs=0.5)
    assert result.steps[1].values["up"]["imu_thoracic"] == pytest.approx([0.0, 0.0, 1.0], abs=0.01)
    kwargs = result.pipeline_kwargs()
    assert kwargs["noise_floor_uv"] == {"emg": [result.noise_floor_uv["es_left"], result.noise_floor_uv["es_right"]]}
    assert kwargs["analyzer_options"]["reference_contraction_uv"] == pytest.approx(
        [result.reference_contraction_uv["es_left"], result.reference_contraction_uv["es_right"]]
    )


def test_steps_needing_a_floor_or_a_contraction_fail_with_the_reason():
    rng = np.random.default_rng(4)
    protocol = _protocol(
        CalibrationStep(StepKind.SET_POINT, 15.0, "rest", posture="lying_supine"),
        CalibrationStep(StepKind.NOISE_FLOOR, 25.0, "rest"),
        CalibrationStep(StepKind.REFERENCE_CONTRACTION, 10.0, "contract", required=False),
    )
    run, _ = _run(protocol, _items(_noise(rng, int(50 * FS))))
    result = run.result()
    assert result.steps[0].status is StepStatus.FAILED and "needs a noise floor" in result.steps[0].reason
    assert result.steps[1].status is StepStatus.PASSED
    assert result.steps[2].status is StepStatus.FAILED and "no contraction" in result.steps[2].reason
    assert not result.complete  # the set point is required
    assert "analyzer_options" not in result.pipeline_kwargs()


def test_signal_check_finds_contact_loss_and_clipping():
    rng = np.random.default_rng(6)
    emg = _noise(rng, int(8 * FS))
    emg[0, int(2 * FS) : int(3 * FS)] = 7.0  # flat: a disconnected electrode
    emg[1, int(5 * FS)] = 190_000.0  # beyond the simulator's +-187.5 mV rails
    items = _items(emg)
    items.insert(3, DeviceStatus("emg", 0, None, None, (False, True), (False, False)))
    run, _ = _run(_protocol(CalibrationStep(StepKind.SIGNAL_CHECK, 8.0, "still")), items)
    step = run.result().steps[0]
    assert step.status is StepStatus.FAILED
    assert step.values["contact"] == {"es_left": "flat", "es_right": "lead-off flag"}
    assert step.values["clipping"] == {"es_left": False, "es_right": True}
    assert "es_left: contact flat" in step.reason and "es_right: clipping" in step.reason
    assert step.values["mains"] is not None  # 8 s >= the 5 s the mains check needs


def test_signal_check_passes_a_clean_signal_and_reports_mains_hum():
    rng = np.random.default_rng(7)
    t = np.arange(int(8 * FS)) / FS
    emg = _noise(rng, t.size) + 20.0 * np.sin(2 * np.pi * 50.0 * t)
    run, _ = _run(_protocol(CalibrationStep(StepKind.SIGNAL_CHECK, 8.0, "still")), _items(emg))
    step = run.result().steps[0]
    assert step.status is StepStatus.PASSED, step.reason
    assert "mains hum at 50" in step.reason
    assert 50.0 in step.values["mains"]["notched_hz"]


@pytest.mark.parametrize(
    ("acc", "passes"), [((1.0, 0.0, 0.0), True), ((0.97, 0.0, 0.26), True), ((0.0, 0.0, 1.0), False)]
)
def test_upright_pose(acc, passes):
    rng = np.random.default_rng(8)
    run, _ = _run(
        _protocol(CalibrationStep(StepKind.IMU_UPRIGHT, 5.0, "stand")), _items(_noise(rng, int(5 * FS)), acc=acc)
    )
    step = run.result().steps[0]
    assert (step.status is StepStatus.PASSED) is passes, step.reason
    up = np.asarray(acc) / np.linalg.norm(acc)
    assert step.values["up"]["imu_thoracic"] == pytest.approx(up.tolist(), abs=0.01)
    if not passes:
        assert "90 deg from vertical" in step.reason
    else:
        assert run.result().upright["imu_thoracic"] == pytest.approx(up.tolist(), abs=0.01)


def test_upright_pose_refuses_movement():
    rng = np.random.default_rng(9)
    items = _items(_noise(rng, int(5 * FS)), gyro_sd=20.0)
    run, _ = _run(_protocol(CalibrationStep(StepKind.IMU_UPRIGHT, 5.0, "stand")), items)
    step = run.result().steps[0]
    assert step.status is StepStatus.FAILED and "imu_thoracic moved" in step.reason


def test_a_set_point_in_another_posture_than_its_reference_fails():
    rng = np.random.default_rng(10)
    n = int(5 * FS)
    standing = _items(_noise(rng, n), acc=(1.0, 0.0, 0.0))
    leaning = _items(_noise(rng, int(45 * FS)), acc=(0.98, 0.0, 0.2), start_index=n)[1:]
    protocol = _protocol(
        CalibrationStep(StepKind.IMU_UPRIGHT, 5.0, "stand", posture="standing"),
        CalibrationStep(StepKind.NOISE_FLOOR, 25.0, "rest"),
        CalibrationStep(StepKind.SET_POINT, 20.0, "rest", posture="standing"),
    )
    run, _ = _run(protocol, standing + leaning)
    step = run.result().steps[2]
    assert step.status is StepStatus.FAILED
    assert step.values["posture_difference_deg"] == pytest.approx(11.5, abs=1.0)
    assert "differs by" in step.reason


def test_waiting_steps_ignore_data_until_confirmed_and_can_be_retried_or_skipped():
    rng = np.random.default_rng(11)
    protocol = _protocol(
        CalibrationStep(StepKind.NOISE_FLOOR, 25.0, "rest"),
        CalibrationStep(StepKind.REFERENCE_CONTRACTION, 5.0, "contract"),
        CalibrationStep(StepKind.IMU_UPRIGHT, 5.0, "stand"),
    )
    items = _items(_noise(rng, int(100 * FS)))
    run = CalibrationRun(protocol, auto_advance=False)
    assert [u.event for u in run.take_updates()] == ["waiting"]
    for item in items[:101]:  # INFO, then 5 s (an EMG and an IMU block per 0.1 s) before anyone is ready
        assert run.process(item) == []
    assert run.status is StepStatus.WAITING and run.remaining_s() == 25.0
    run.confirm()
    events = [u.event for u in run.take_updates()]
    assert events == ["started"]
    rest = iter(items[101:])
    updates = []
    while run.step_index == 0:
        updates += run.process(next(rest))
    assert [u.event for u in updates] == ["finished", "waiting"]
    first = run.results[0]
    assert first.status is StepStatus.PASSED
    assert first.start_s == pytest.approx(5.0, abs=0.11)  # measured from the first block after confirm
    assert first.end_s - first.start_s == pytest.approx(25.0)
    run.retry()  # redo the noise floor
    assert run.step_index == 0 and run.results == ()
    run.confirm()
    while run.step_index == 0:
        run.process(next(rest))
    run.confirm()
    while run.step_index == 1:
        run.process(next(rest))
    assert run.results[1].status is StepStatus.FAILED  # nobody contracted
    run.skip("no IMU worn")
    assert run.finished
    assert run.results[2].status is StepStatus.SKIPPED and run.results[2].reason == "no IMU worn"
    assert [u.event for u in run.take_updates()][-1] == "done"


def test_the_data_ending_early_fails_the_steps_not_reached():
    rng = np.random.default_rng(12)
    protocol = _protocol(
        CalibrationStep(StepKind.NOISE_FLOOR, 25.0, "rest"),
        CalibrationStep(StepKind.SET_POINT, 30.0, "rest", posture="lying_supine"),
        CalibrationStep(StepKind.IMU_UPRIGHT, 5.0, "stand"),
    )
    run, updates = _run(protocol, _items(_noise(rng, int(30 * FS))))
    steps = run.result().steps
    assert steps[0].status is StepStatus.PASSED
    assert steps[1].status is StepStatus.FAILED and "1 s windows" in steps[1].reason  # 5 s of its 30
    assert steps[2].reason == "the data ended before this step"
    assert updates[-1].event == "done"


@settings(max_examples=8, deadline=None)
@given(st.floats(min_value=0.013, max_value=1.7))
def test_step_results_do_not_depend_on_block_sizes(chunk_s):
    rng = np.random.default_rng(13)
    emg = _noise(rng, int(30 * FS)) + np.hstack([np.zeros((2, int(22 * FS))), _muscle(rng, int(8 * FS), 5.0)])
    protocol = _protocol(
        CalibrationStep(StepKind.NOISE_FLOOR, 21.3, "rest"),
        CalibrationStep(StepKind.SET_POINT, 8.7, "rest", posture="lying_supine", settle_s=0.6),
    )
    reference, _ = _run(protocol, _items(emg, chunk_s=0.1))
    other, _ = _run(protocol, _items(emg, chunk_s=chunk_s))
    assert other.result().to_json() == reference.result().to_json()


def test_result_round_trips_and_shipped_protocol_loads():
    protocol = load_calibration_protocol()
    kinds = [s.kind for s in protocol.steps]
    assert kinds[:3] == [StepKind.SIGNAL_CHECK, StepKind.NOISE_FLOOR, StepKind.SET_POINT]
    assert {StepKind.REFERENCE_CONTRACTION, StepKind.IMU_UPRIGHT} <= set(kinds)
    noise = next(s for s in protocol.steps if s.kind is StepKind.NOISE_FLOOR)
    assert noise.duration_s == 120.0  # SCIENCE.md 3.6: two minutes of supported rest
    rng = np.random.default_rng(14)
    run, _ = _run(_protocol(CalibrationStep(StepKind.NOISE_FLOOR, 25.0, "rest")), _items(_noise(rng, int(25 * FS))))
    result = run.result()
    assert CalibrationResult.from_json(result.to_json()) == result
    assert result.board_profile == "simulator" and result.device_id == "dev"


def test_shorted_input_needs_a_board_that_has_it():
    rng = np.random.default_rng(15)
    step = CalibrationStep(StepKind.NOISE_FLOOR, 20.0, "short the inputs", method="shorted_input")
    run, _ = _run(_protocol(step), _items(_noise(rng, int(20 * FS))))  # the simulator profile has no such mode
    assert "has no shorted-input mode" in run.result().steps[0].reason
    run = CalibrationRun(_protocol(step), board=find_board_profile("ads1299"))
    for item in _items(_noise(rng, int(20 * FS))):
        run.process(item)
    run.finish()
    result = run.result()
    assert result.noise_floor_source == "shorted_input"
    assert result.noise_floor_uv["es_left"] == pytest.approx(_band_noise_uv(), rel=0.1)


def test_bad_calibration_protocols_are_refused(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('kind = "calibration"\nname = "c"\n[[step]]\nkind = "dance"\nduration_s = 5.0\n')
    with pytest.raises(ValueError, match="kind must be one of signal_check, noise_floor"):
        load_calibration_protocol(str(path))
    path.write_text(
        'kind = "calibration"\nname = "c"\n[[step]]\nkind = "noise_floor"\nduration_s = 5.0\nmethod = "x"\n'
    )
    with pytest.raises(ValueError, match="method must be one of rest, shorted_input"):
        load_calibration_protocol(str(path))
    with pytest.raises(ValueError, match="kind must be 'calibration'"):
        load_calibration_protocol("pandiculation")
