import math
import shutil
from pathlib import Path

import pytest

from biofeed.blocks import ChannelInfo, ChannelKind, DeviceInfo, StreamInfo
from biofeed.boards import (
    ABSOLUTE_REST_UV,
    BOARDS_FOLDER,
    RELAXED_REST_UV,
    BoardAssessment,
    apply_board_assessment,
    assess_board,
    assess_device_stream,
    board_profiles,
    find_board_profile,
    load_board_profile,
)
from biofeed.sim.device import BOARD_PROFILE, EMG_SCALE_UV, reference_info

REQUIRED = {"esp32_myoware2", "esp32_bioamp_exg_pill", "ads1292r", "ads1299", "openbci_cyton", "simulator"}


def _profile(name: str):
    profile = find_board_profile(name)
    assert profile is not None, name
    return profile


def test_every_required_board_has_a_profile_with_sources():
    profiles = {p.name: p for p in board_profiles()}
    assert set(profiles) >= REQUIRED
    for profile in profiles.values():
        assert profile.sources, profile.name
        assert profile.channels
        assert profile.range_uv[0] < 0 < profile.range_uv[1]


def test_resolution_follows_from_adc_reference_and_gain():
    myoware = _profile("esp32_myoware2")
    # SCIENCE.md 2: a 12-bit ESP32 ADC behind gain 200 is about 4 uV per LSB
    assert myoware.adc_lsb_uv == pytest.approx(3.3 / 4096 / 200 * 1e6)
    assert 3.9 < myoware.adc_lsb_uv < 4.1
    # the sketch sends 1 mV per count at the pin: 5 uV at the electrodes, the coarser step
    assert myoware.lsb_uv == pytest.approx(5.0)
    assert myoware.quantisation_noise_uv == pytest.approx(5.0 / math.sqrt(12))
    ads1299 = _profile("ads1299")
    assert ads1299.adc_lsb_uv == pytest.approx(4.5 / 2**23 / 24 * 1e6)
    cyton = _profile("brainflow-cyton")
    assert cyton.name == "openbci_cyton"
    assert cyton.adc_lsb_uv == pytest.approx(0.0224, abs=1e-4)


def test_the_simulator_profile_matches_the_simulator():
    profile = _profile(BOARD_PROFILE)
    info = reference_info("sim-0")
    emg = info.streams[0]
    assert profile.scale_uv_per_count == pytest.approx(EMG_SCALE_UV)
    assert all(c.scale == pytest.approx(profile.scale_uv_per_count) for c in emg.channels)
    assert profile.sample_rate_hz == pytest.approx(emg.sample_rate_mhz / 1000)
    assert [c.name for c in profile.channels] == [c.name for c in emg.channels]
    assert profile.input_noise_uv == pytest.approx(1.5)
    assert profile.imu is not None and profile.imu.streams == ("imu_thoracic", "imu_sacral")


def test_reference_firmware_board_profile_exists():
    header = Path(__file__).resolve().parent.parent / "firmware_protocol" / "c" / "reference_device.h"
    name = next(line.split('"')[1] for line in header.read_text().splitlines() if "BOARD_PROFILE" in line)
    assert _profile(name).name == "ads1292r"


@pytest.mark.parametrize(
    ("name", "resolves", "failed"),
    [
        ("esp32_myoware2", False, {"resolution", "noise"}),
        ("esp32_bioamp_exg_pill", False, {"band"}),
        ("openbci_cyton", False, {"band"}),
        ("ads1292r", True, set()),
        ("ads1299", True, set()),
        ("simulator", True, set()),
    ],
)
def test_which_boards_resolve_true_relaxation(name, resolves, failed):
    assessment = assess_board(_profile(name))
    assert assessment.resolves_true_relaxation is resolves
    assert {c.name for c in assessment.checks if not c.passed} == failed
    text = assessment.describe()
    assert ("not measurable with this board" in text) is not resolves


def test_assessment_limits_come_from_science_md():
    assert RELAXED_REST_UV == 1.0
    assert ABSOLUTE_REST_UV == 2.0
    myoware = assess_board(_profile("esp32_myoware2"))
    resolution = next(c for c in myoware.checks if c.name == "resolution")
    assert resolution.value == pytest.approx(5.0) and resolution.limit == 1.0
    assert "coarser than the ~1 uV" in myoware.reason


def test_a_cyton_at_a_higher_rate_passes_the_band_check_only_if_its_filter_allows():
    cyton = _profile("openbci_cyton")
    assert not assess_board(cyton, 250.0).resolves_true_relaxation
    # the ADS1299's decimation filter follows the rate; the profile's 65.5 Hz is the 250 Hz figure
    band = next(c for c in assess_board(cyton, 2000.0).checks if c.name == "band")
    assert not band.passed and band.value == pytest.approx(65.5)


def test_assessment_round_trips_through_json():
    assessment = assess_board(_profile("esp32_myoware2"))
    again = BoardAssessment.from_json(assessment.to_json())
    assert again == assessment
    assert again.reason == assessment.reason


def _trial(verdict: str) -> dict:
    return {"verdict": verdict, "verdict_reason": "because", "ratio": 0.5, "score": 90.0}


@pytest.mark.parametrize("verdict", ["true", "transient", "none"])
def test_a_board_that_cannot_resolve_turns_measured_verdicts_into_not_measurable(verdict):
    assessment = assess_board(_profile("esp32_myoware2"))
    out = apply_board_assessment(_trial(verdict), assessment)
    assert out["verdict"] == "not_measurable"
    assert out["verdict_reason"].startswith("not measurable with this board (esp32_myoware2):")
    assert "5 uV" in out["verdict_reason"]
    assert out["analysis_verdict"] == verdict
    assert out["analysis_verdict_reason"] == "because"
    assert out["ratio"] == 0.5  # the measurements stay


@pytest.mark.parametrize("verdict", ["rejected", "not_measurable"])
def test_failed_measurements_keep_their_own_verdict(verdict):
    out = apply_board_assessment(_trial(verdict), assess_board(_profile("esp32_myoware2")))
    assert out == _trial(verdict)


@pytest.mark.parametrize("verdict", ["true", "transient", "none"])
def test_a_capable_or_unknown_board_leaves_verdicts_alone(verdict):
    assert apply_board_assessment(_trial(verdict), assess_board(_profile("ads1299"))) == _trial(verdict)
    assert apply_board_assessment(_trial(verdict), None) == _trial(verdict)


def _device(board_profile: str, rate_hz: float = 2000.0) -> DeviceInfo:
    emg = StreamInfo("emg", rate_hz, (ChannelInfo("es_left", ChannelKind.EMG, "uV", ""),), "dev")
    return DeviceInfo(device_id="dev", firmware_version=(1, 0, 0), board_profile=board_profile, streams=(emg,))


def test_a_device_is_assessed_at_its_own_rate():
    assert assess_device_stream(_device("esp32_myoware2"), "emg").resolves_true_relaxation is False
    assert assess_device_stream(_device("ads1299"), "emg").resolves_true_relaxation is True
    slow = assess_device_stream(_device("ads1299", 500.0), "emg")
    assert not slow.resolves_true_relaxation and slow.sample_rate_hz == 500.0
    assert assess_device_stream(_device("no-such-board"), "emg") is None
    with pytest.raises(ValueError, match="no stream 'imu'"):
        assess_device_stream(_device("ads1299"), "imu")


def test_bad_profiles_are_refused_with_the_field_named(tmp_path):
    good = BOARDS_FOLDER / "ads1299.toml"
    shutil.copy(good, tmp_path / "ads1299.toml")
    assert load_board_profile(tmp_path / "ads1299.toml").name == "ads1299"
    text = good.read_text()
    (tmp_path / "other.toml").write_text(text)
    with pytest.raises(ValueError, match="must equal the file name"):
        load_board_profile(tmp_path / "other.toml")
    (tmp_path / "ads1299.toml").write_text(text.replace('polarity = "bipolar"', 'polarity = "sideways"'))
    with pytest.raises(ValueError, match="polarity must be one of bipolar, unipolar"):
        load_board_profile(tmp_path / "ads1299.toml")
    (tmp_path / "ads1299.toml").write_text(text.replace("bits = 24", "bits = 2.5"))
    with pytest.raises(ValueError, match="bits"):
        load_board_profile(tmp_path / "ads1299.toml")
    (tmp_path / "ads1299.toml").write_text(text.replace("gain = 24.0", "gain = -1.0"))
    with pytest.raises(ValueError, match="gain must be positive"):
        load_board_profile(tmp_path / "ads1299.toml")
    (tmp_path / "ads1299.toml").write_text("name = [")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_board_profile(tmp_path / "ads1299.toml")
