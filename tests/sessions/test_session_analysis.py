import math

from biofeed.blocks import ChannelInfo, ChannelKind, DeviceInfo, StreamInfo
from biofeed.sessions.calibrate import CalibrationResult, StepKind, StepResult, StepStatus
from biofeed.sessions.session_analysis import calibration_applies, session_windows

EMG = StreamInfo(
    "emg",
    2000.0,
    (ChannelInfo("es_left", ChannelKind.EMG, "uV", ""), ChannelInfo("es_right", ChannelKind.EMG, "uV", "")),
    "dev",
)


def _calibration(board="simulator", channels=("es_left", "es_right")):
    floor = StepResult(
        0,
        StepKind.NOISE_FLOOR,
        "",
        StepStatus.PASSED,
        "ok",
        {"stream": "emg", "channels": list(channels), "noise_floor_uv": dict.fromkeys(channels, 1.5), "source": "x"},
    )
    return CalibrationResult("calibration", board, "dev", (floor,))


def test_a_calibration_applies_only_to_the_same_board_and_channels():
    device = DeviceInfo("dev", (1, 0, 0), "simulator", (EMG,))
    assert calibration_applies(_calibration(), device) == ""
    assert "made on board ads1299" in calibration_applies(_calibration("ads1299"), device)
    assert "channels differ" in calibration_applies(_calibration(channels=("ch1", "ch2")), device)
    assert calibration_applies(None, device) == "no calibration"
    assert calibration_applies(_calibration(), None) == "the recording holds no device description"
    assert _calibration().pipeline_kwargs() == {"noise_floor_uv": {"emg": [1.5, 1.5]}}


def test_session_windows_read_the_stored_layout():
    analysis = {
        "windows": {
            "es_left": {
                "start_s": [0.0, 1.0],
                "end_s": [1.0, 2.0],
                "level_uv": [3.0, None],
                "rest": [True, False],
                "usable": [True, False],
                "set_point_uv": [None, None],
            }
        }
    }
    first, second = session_windows(analysis, "es_left")
    assert (first.start_s, first.end_s, first.level_uv, first.rest, first.usable) == (0.0, 1.0, 3.0, True, True)
    assert math.isnan(second.level_uv) and not second.rest
    assert session_windows(analysis, "es_right") == []
