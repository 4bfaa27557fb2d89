"""recording.json: the device INFO survives JSON both ways; anything else is refused clearly."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from biofeed.errors import RecordingError
from biofeed.record.meta import check_meta, device_info_from_json, device_info_to_json, new_meta

from .recording_factory import INFO

DEVICE = INFO.to_device_info()


def test_device_info_round_trips() -> None:
    assert device_info_from_json(Path("r"), device_info_to_json(DEVICE)) == DEVICE


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("device_id"),
        lambda d: d.update(firmware_version=[1, 2]),
        lambda d: d.update(protocol_version=[1, True]),
        lambda d: d["streams"][0].update(sample_rate_hz="fast"),
        lambda d: d["streams"][0].update(sample_rate_hz=0),
        lambda d: d["streams"][0].update(stream_id=1.0),
        lambda d: d["streams"][0].update(channels=[]),
        lambda d: d["streams"][0]["channels"][0].update(kind="ecg"),
        lambda d: d["streams"][0]["channels"].append(3),
    ],
)
def test_a_damaged_device_description_is_a_recording_error(damage) -> None:
    data = copy.deepcopy(device_info_to_json(DEVICE))
    damage(data)
    with pytest.raises(RecordingError, match="invalid device description"):
        device_info_from_json(Path("r"), data)


def test_new_meta_passes_its_own_check() -> None:
    meta = new_meta("sim://rest", "c-01")
    assert check_meta(Path("r"), meta) is meta
    meta["device"] = device_info_to_json(DEVICE)
    check_meta(Path("r"), meta)
