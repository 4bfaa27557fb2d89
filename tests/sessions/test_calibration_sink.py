import threading

import numpy as np

from biofeed.blocks import Block, ChannelInfo, ChannelKind, DeviceInfo, StreamInfo
from biofeed.sessions.calibrate import CalibrationProtocol, CalibrationRun, CalibrationStep, StepKind, StepStatus
from biofeed.sessions.calibration_sink import CalibrationSink

FS = 1000.0
EMG = StreamInfo("emg", FS, (ChannelInfo("es_left", ChannelKind.EMG, "uV", ""),), "dev")


def _device(board_profile):
    return DeviceInfo("dev", (1, 0, 0), board_profile, (EMG,))


def _blocks(seconds, start_s=0.0, seed=0):
    rng = np.random.default_rng(seed)
    n = int(0.1 * FS)
    first = int(start_s * FS)
    return [Block(EMG, rng.normal(0, 2.0, size=(1, n)), first + k * n) for k in range(int(seconds * 10))]


def _drain(q):
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


def test_the_board_is_told_before_the_first_step_and_buttons_work_from_another_thread():
    protocol = CalibrationProtocol(
        "t",
        "t",
        (
            CalibrationStep(StepKind.NOISE_FLOOR, 25.0, "lie still"),
            CalibrationStep(StepKind.IMU_UPRIGHT, 5.0, "stand"),
        ),
    )
    sink = CalibrationSink(CalibrationRun(protocol, auto_advance=False))
    assert sink.messages.empty()  # held until the board is known
    sink.write(_device("esp32_myoware2"))
    lines = _drain(sink.messages)
    assert "not measurable with this board" in lines[0]
    assert lines[1].startswith("step 1/2 noise_floor (25 s) [waiting until you are ready]: lie still")
    assert sink.run.board is not None and sink.run.board.name == "esp32_myoware2"
    for block in _blocks(3.0):
        sink.write(block)  # nobody is ready yet: ignored
    button = threading.Thread(target=sink.confirm)
    button.start()
    button.join()
    for block in _blocks(26.0, start_s=3.0):
        sink.write(block)
    lines = _drain(sink.messages)
    assert lines[0].startswith("step 1/2 noise_floor (25 s): ")
    assert lines[1].startswith("  passed: ")
    assert lines[2].startswith("step 2/2 imu_upright (5 s) [waiting")
    sink.skip("no IMU today")
    result = sink.finish()
    assert [s.status for s in result.steps] == [StepStatus.PASSED, StepStatus.SKIPPED]
    assert _drain(sink.messages)[-1] == "calibration finished"
    events = [u.event for u in _drain(sink.updates)]
    assert events[0] == "waiting" and events[-1] == "done"


def test_an_unknown_board_is_said_and_the_run_goes_on():
    protocol = CalibrationProtocol("t", "t", (CalibrationStep(StepKind.NOISE_FLOOR, 21.0, "lie still"),))
    sink = CalibrationSink(CalibrationRun(protocol))
    sink.write(_device("homemade"))
    for block in _blocks(22.0):
        sink.write(block)
    sink.close()
    lines = _drain(sink.messages)
    assert lines[0] == "emg: no board profile 'homemade' in calibration/boards; resolution not checked"
    assert lines[-1] == "calibration finished"
    assert sink.run.board is None and sink.run.result().steps[0].status is StepStatus.PASSED
