import io

import numpy as np

from biofeed.blocks import Block, ChannelInfo, ChannelKind, DeviceInfo, StreamInfo
from biofeed.sessions.board_notice import BoardNoticeSink

EMG = StreamInfo("emg", 2000.0, (ChannelInfo("es_left", ChannelKind.EMG, "uV", ""),), "dev")


def _device(board_profile):
    return DeviceInfo("dev", (1, 0, 0), board_profile, (EMG,))


def test_the_board_notice_speaks_once_for_the_first_info():
    out = io.StringIO()
    sink = BoardNoticeSink(out)
    sink.write(Block(EMG, np.zeros((1, 10)), 0))
    assert out.getvalue() == ""
    sink.write(_device("esp32_myoware2"))
    sink.write(_device("ads1299"))
    sink.close()
    (line,) = out.getvalue().splitlines()
    assert line.startswith("biofeed: board esp32_myoware2") and "not measurable with this board" in line
    assert sink.lines == [line.removeprefix("biofeed: ")]
