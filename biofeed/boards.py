"""Board profiles (``calibration/boards/*.toml``) and whether a board can resolve true relaxation.

A board profile describes one acquisition front end: ADC bits and reference, analog gain and band,
input-referred noise, how wire counts convert to uV, its channel map and IMU axes. From it,
:func:`assess_board` decides -- before a session starts -- whether a verdict of true relaxation
(SCIENCE.md section 6) can be measured with that board at all (SCIENCE.md section 2):

1. **resolution**: one count, referred to the electrodes, must not exceed the ~1 uV a relaxed lumbar
   rest measures (:data:`RELAXED_REST_UV`). A 12-bit ESP32 ADC behind a gain-200 board gives about
   4-5 uV per count: the rest it must see is smaller than one step.
2. **noise**: the board's own noise in the EMG band (electronics and quantisation, added in power)
   must not exceed the 2 uV that defines true relaxation (SCIENCE.md 6.1, :data:`ABSOLUTE_REST_UV`):
   a board noisier than that level cannot show a rest below it.
3. **band**: the board must pass the whole analysis band (30-450 Hz, SCIENCE.md 3.1-3.2) at a rate of
   at least 1 kHz; amplitudes of another band (the BioAmp EXG Pill's 74.5-149.5 Hz, a 250 Hz OpenBCI
   Cyton's 30-112 Hz) are not comparable with the 2 uV criterion.

A board that fails any check gives ``not_measurable`` instead of ``true``, ``transient`` or ``none``,
with the reason (:func:`apply_board_assessment`); ``rejected`` and ``not_measurable`` verdicts stand,
they already say the measurement failed. These limits are starting points with a source, like every
number in SCIENCE.md.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from biofeed.blocks import DeviceInfo
from biofeed.dsp.filters import DEFAULT_HIGH_PASS_HZ, DEFAULT_LOW_PASS_HZ, MAX_LOW_PASS_FRACTION_OF_NYQUIST
from biofeed.dsp.pandiculation import TrialCriteria, Verdict
from biofeed.dsp.quality import RECOMMENDED_MIN_RATE_HZ

__all__ = [
    "ABSOLUTE_REST_UV",
    "BOARDS_FOLDER",
    "OVERRIDDEN_VERDICTS",
    "RELAXED_REST_UV",
    "BoardAssessment",
    "BoardChannel",
    "BoardImu",
    "BoardProfile",
    "ResolutionCheck",
    "apply_board_assessment",
    "assess_board",
    "assess_device_stream",
    "board_profiles",
    "describe_device_boards",
    "find_board_profile",
    "load_board_profile",
]

BOARDS_FOLDER = Path(__file__).resolve().parent / "calibration" / "boards"
"""The profiles shipped with biofeed: in a checkout ``biofeed/calibration`` links to the top-level
``calibration/`` folder, and a wheel carries the files themselves (package data)."""

RELAXED_REST_UV = 1.0
"""SCIENCE.md 2: resting lumbar EMG is about 1 uV in relaxed standing (0.2 uV lying)."""
ABSOLUTE_REST_UV = TrialCriteria().absolute_rest_uv
"""SCIENCE.md 6.1: true relaxation rests at or below max(2 uV, 1.5 x noise floor)."""
OVERRIDDEN_VERDICTS = frozenset({Verdict.TRUE.value, Verdict.TRANSIENT.value, Verdict.NONE.value})
"""Verdicts that claim a measurement of the rest; a board that cannot resolve it turns them into not_measurable."""

Polarity = Literal["bipolar", "unipolar"]
_POLARITIES = ("bipolar", "unipolar")


@dataclass(frozen=True)
class BoardChannel:
    """One EMG channel of a board.

    Attributes
    ----------
    name : str
        Channel name as the device's INFO gives it (``es_left``, ``ch1``).
    site : str
        Where its electrodes go.
    input : str
        The ADC input it is wired to.
    """

    name: str
    site: str
    input: str


@dataclass(frozen=True)
class BoardImu:
    """The IMUs of a board.

    Attributes
    ----------
    part : str
        Sensor part (``MPU6050``).
    streams : tuple of str
        IMU stream names in INFO (``imu_thoracic``, ``imu_sacral``).
    sites : tuple of str
        Where each is worn, same order.
    axes : dict of str to str
        Sensor axis -> body axis when worn as documented (``{"x": "cranial", ...}``, docs/imu.md).
    sample_rate_hz : float
        Rate of each IMU stream.
    acc_scale_g, gyro_scale_dps : float
        Physical units per count on the wire (0 when the board has no gyroscope).
    """

    part: str
    streams: tuple[str, ...]
    sites: tuple[str, ...]
    axes: dict[str, str]
    sample_rate_hz: float
    acc_scale_g: float
    gyro_scale_dps: float


@dataclass(frozen=True)
class BoardProfile:
    """One acquisition front end, as read from ``calibration/boards/<name>.toml``.

    Attributes
    ----------
    name : str
        File stem, e.g. ``esp32_myoware2``.
    title : str
        Words for people.
    board_profile_names : tuple of str
        Values of INFO ``board_profile`` this profile describes (its name among them).
    adc_bits : int
        ADC resolution.
    reference_voltage_v : float
        ADC reference (full scale for a unipolar ADC, +-full scale for a bipolar one), V.
    polarity : {"bipolar", "unipolar"}
        Input range of the ADC.
    analog_gain : float
        Voltage gain from the electrodes to the ADC input.
    analog_high_pass_hz, analog_low_pass_hz : float
        Band the front end passes (0 for DC-coupled), Hz.
    input_noise_uv : float
        Input-referred RMS noise of the electronics in the EMG band, uV (datasheet or estimate).
    noise_basis : str
        Where ``input_noise_uv`` comes from.
    shorted_input_mode : bool
        The front end can short its inputs for a noise measurement (SCIENCE.md 3.6, first choice).
    scale_uv_per_count : float
        uV at the electrodes per count on the wire (the INFO scale).
    range_uv : tuple of float
        Lowest and highest input the front end converts linearly, uV at the electrodes (the rails).
    sample_rate_hz : float
        EMG rate the board streams at.
    channels : tuple of BoardChannel
        EMG channel map.
    imu : BoardImu or None
        IMUs, when the board has any.
    sources : tuple of str
        Datasheets and documents the numbers come from.
    """

    name: str
    title: str
    board_profile_names: tuple[str, ...]
    adc_bits: int
    reference_voltage_v: float
    polarity: Polarity
    analog_gain: float
    analog_high_pass_hz: float
    analog_low_pass_hz: float
    input_noise_uv: float
    noise_basis: str
    shorted_input_mode: bool
    scale_uv_per_count: float
    range_uv: tuple[float, float]
    sample_rate_hz: float
    channels: tuple[BoardChannel, ...]
    imu: BoardImu | None
    sources: tuple[str, ...]

    @property
    def adc_lsb_uv(self) -> float:
        """One ADC step referred to the electrodes, uV."""
        span_v = 2.0 * self.reference_voltage_v if self.polarity == "bipolar" else self.reference_voltage_v
        return float(span_v / 2**self.adc_bits / self.analog_gain * 1e6)

    @property
    def lsb_uv(self) -> float:
        """The coarser of the ADC step and the wire count, uV: the smallest change the host can see."""
        return max(self.adc_lsb_uv, self.scale_uv_per_count)

    @property
    def quantisation_noise_uv(self) -> float:
        """RMS of uniform quantisation, ``lsb / sqrt(12)``, uV."""
        return self.lsb_uv / math.sqrt(12.0)

    @property
    def board_noise_uv(self) -> float:
        """Electronics and quantisation noise added in power, uV RMS: the board's own floor."""
        return math.hypot(self.input_noise_uv, self.quantisation_noise_uv)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, with the derived resolution and noise."""
        return {
            "name": self.name,
            "title": self.title,
            "board_profile_names": list(self.board_profile_names),
            "adc_bits": self.adc_bits,
            "reference_voltage_v": self.reference_voltage_v,
            "polarity": self.polarity,
            "analog_gain": self.analog_gain,
            "analog_band_hz": [self.analog_high_pass_hz, self.analog_low_pass_hz],
            "input_noise_uv": self.input_noise_uv,
            "noise_basis": self.noise_basis,
            "shorted_input_mode": self.shorted_input_mode,
            "scale_uv_per_count": self.scale_uv_per_count,
            "range_uv": list(self.range_uv),
            "sample_rate_hz": self.sample_rate_hz,
            "channels": [{"name": c.name, "site": c.site, "input": c.input} for c in self.channels],
            "imu": None
            if self.imu is None
            else {
                "part": self.imu.part,
                "streams": list(self.imu.streams),
                "sites": list(self.imu.sites),
                "axes": dict(self.imu.axes),
                "sample_rate_hz": self.imu.sample_rate_hz,
                "acc_scale_g": self.imu.acc_scale_g,
                "gyro_scale_dps": self.imu.gyro_scale_dps,
            },
            "adc_lsb_uv": self.adc_lsb_uv,
            "lsb_uv": self.lsb_uv,
            "quantisation_noise_uv": self.quantisation_noise_uv,
            "board_noise_uv": self.board_noise_uv,
            "sources": list(self.sources),
        }


def _table(data: Mapping[str, Any], key: str, path: Path) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise ValueError(f"{path}: missing table [{key}]")
    return value


def _number(data: Mapping[str, Any], key: str, path: Path, *, positive: bool = True) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{path}: {key} must be a number, got {value!r}")
    if (value <= 0) if positive else (value < 0):
        raise ValueError(f"{path}: {key} must be {'positive' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _text(data: Mapping[str, Any], key: str, path: Path) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{path}: {key} must be non-empty text, got {value!r}")
    return value


def _texts(data: Mapping[str, Any], key: str, path: Path) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{path}: {key} must be a list of text, got {value!r}")
    return tuple(value)


def _imu(data: Mapping[str, Any] | None, path: Path) -> BoardImu | None:
    if data is None:
        return None
    axes = data.get("axes", {})
    if not isinstance(axes, Mapping) or not all(isinstance(v, str) for v in axes.values()):
        raise ValueError(f"{path}: [imu] axes must map sensor axes to body axes, got {axes!r}")
    streams = _texts(data, "streams", path)
    sites = _texts(data, "sites", path)
    if len(sites) != len(streams):
        raise ValueError(f"{path}: [imu] needs one site per stream, got {len(sites)} for {len(streams)}")
    return BoardImu(
        part=_text(data, "part", path),
        streams=streams,
        sites=sites,
        axes=dict(axes),
        sample_rate_hz=_number(data, "sample_rate_hz", path),
        acc_scale_g=_number(data, "acc_scale_g", path),
        gyro_scale_dps=_number(data, "gyro_scale_dps", path, positive=False),
    )


def load_board_profile(path: Path | str) -> BoardProfile:
    """Read one board profile.

    Parameters
    ----------
    path : Path or str
        A ``.toml`` file (layout: docs/sessions.md).

    Returns
    -------
    BoardProfile

    Raises
    ------
    ValueError
        For a file that is not valid TOML or misses a field (naming the file and the field).
    """
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{file}: not valid TOML: {exc}") from None
    name = _text(data, "name", file)
    if name != file.stem:
        raise ValueError(f"{file}: name {name!r} must equal the file name {file.stem!r}")
    adc, analog, noise, emg = (_table(data, key, file) for key in ("adc", "analog", "noise", "emg"))
    polarity = adc.get("polarity")
    if polarity not in _POLARITIES:
        raise ValueError(f"{file}: [adc] polarity must be one of {', '.join(_POLARITIES)}, got {polarity!r}")
    bits = adc.get("bits")
    if type(bits) is not int or not 8 <= bits <= 32:
        raise ValueError(f"{file}: [adc] bits must be a whole number 8..32, got {bits!r}")
    range_uv = emg.get("range_uv")
    if not (isinstance(range_uv, list) and len(range_uv) == 2 and range_uv[0] < range_uv[1]):
        raise ValueError(f"{file}: [emg] range_uv must be [low, high] with low < high, got {range_uv!r}")
    channels = emg.get("channels", [])
    if not isinstance(channels, list) or not channels:
        raise ValueError(f"{file}: [emg] needs at least one [[emg.channels]]")
    imu = data.get("imu")
    return BoardProfile(
        name=name,
        title=_text(data, "title", file),
        board_profile_names=tuple(dict.fromkeys((name, *_texts(data, "board_profile_names", file)))),
        adc_bits=bits,
        reference_voltage_v=_number(adc, "reference_voltage_v", file),
        polarity=polarity,
        analog_gain=_number(analog, "gain", file),
        analog_high_pass_hz=_number(analog, "high_pass_hz", file, positive=False),
        analog_low_pass_hz=_number(analog, "low_pass_hz", file),
        input_noise_uv=_number(noise, "input_referred_uv_rms", file, positive=False),
        noise_basis=_text(noise, "basis", file),
        shorted_input_mode=bool(noise.get("shorted_input_mode", False)),
        scale_uv_per_count=_number(emg, "scale_uv_per_count", file),
        range_uv=(float(range_uv[0]), float(range_uv[1])),
        sample_rate_hz=_number(emg, "sample_rate_hz", file),
        channels=tuple(
            BoardChannel(_text(c, "name", file), str(c.get("site", "")), str(c.get("input", ""))) for c in channels
        ),
        imu=_imu(imu if isinstance(imu, Mapping) else None, file),
        sources=_texts(data, "sources", file),
    )


def board_profiles(folder: Path | str | None = None) -> list[BoardProfile]:
    """Every profile in a folder (default :data:`BOARDS_FOLDER`), sorted by name."""
    return [load_board_profile(p) for p in sorted(Path(folder or BOARDS_FOLDER).glob("*.toml"))]


def find_board_profile(name: str, folder: Path | str | None = None) -> BoardProfile | None:
    """The profile a device's INFO ``board_profile`` (or a profile file name) refers to; None when unknown."""
    for profile in board_profiles(folder):
        if name in profile.board_profile_names:
            return profile
    return None


@dataclass(frozen=True)
class ResolutionCheck:
    """One of the checks of :func:`assess_board`.

    Attributes
    ----------
    name : {"resolution", "noise", "band"}
        Which check.
    passed : bool
        Whether the board meets it.
    value : float
        What the board has (uV, or the highest frequency the board passes of the band for ``band``).
    limit : float
        What the check requires.
    text : str
        The finding in words.
    """

    name: str
    passed: bool
    value: float
    limit: float
    text: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"name": self.name, "passed": self.passed, "value": self.value, "limit": self.limit, "text": self.text}


@dataclass(frozen=True)
class BoardAssessment:
    """Whether a board can resolve true relaxation, and why.

    Attributes
    ----------
    profile : str
        The profile's name.
    title : str
        Its title.
    sample_rate_hz : float
        The rate assessed.
    checks : tuple of ResolutionCheck
        Resolution, noise and band.
    """

    profile: str
    title: str
    sample_rate_hz: float
    checks: tuple[ResolutionCheck, ...]

    @property
    def resolves_true_relaxation(self) -> bool:
        """True when every check passes."""
        return all(c.passed for c in self.checks)

    @property
    def reason(self) -> str:
        """Why not (the failed checks, joined), or what it can do."""
        failed = [c.text for c in self.checks if not c.passed]
        if failed:
            return "; ".join(failed)
        return "resolution, noise and band suffice for the true-relaxation criteria (SCIENCE.md 2 and 6)"

    @property
    def verdict_reason(self) -> str:
        """The reason a ``not_measurable`` verdict gives when this board cannot resolve true relaxation."""
        return f"not measurable with this board ({self.profile}): {self.reason}"

    def describe(self) -> str:
        """One line to show before a session starts."""
        if self.resolves_true_relaxation:
            return f"board {self.profile} ({self.title}): can resolve true relaxation"
        return f"board {self.profile} ({self.title}): true relaxation is not measurable with this board: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "profile": self.profile,
            "title": self.title,
            "sample_rate_hz": self.sample_rate_hz,
            "resolves_true_relaxation": self.resolves_true_relaxation,
            "reason": self.reason,
            "checks": [c.to_json() for c in self.checks],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BoardAssessment:
        """Rebuild from :meth:`to_json`."""
        checks = tuple(
            ResolutionCheck(c["name"], bool(c["passed"]), float(c["value"]), float(c["limit"]), c["text"])
            for c in data["checks"]
        )
        return cls(data["profile"], data["title"], float(data["sample_rate_hz"]), checks)


def assess_board(profile: BoardProfile, sample_rate_hz: float | None = None) -> BoardAssessment:
    """Decide from a profile whether its board can resolve true relaxation (module docstring).

    Parameters
    ----------
    profile : BoardProfile
        The board.
    sample_rate_hz : float, optional
        The EMG rate in use (a device's INFO); the profile's own rate when None.

    Returns
    -------
    BoardAssessment
    """
    rate_hz = profile.sample_rate_hz if sample_rate_hz is None else float(sample_rate_hz)
    lsb = profile.lsb_uv
    resolution = ResolutionCheck(
        "resolution",
        lsb <= RELAXED_REST_UV,
        lsb,
        RELAXED_REST_UV,
        f"one count is {lsb:.3g} uV at the electrodes"
        + (
            f", finer than the ~{RELAXED_REST_UV:g} uV of a relaxed rest"
            if lsb <= RELAXED_REST_UV
            else f", coarser than the ~{RELAXED_REST_UV:g} uV of a relaxed rest it must resolve (SCIENCE.md 2)"
        ),
    )
    noise = profile.board_noise_uv
    noise_check = ResolutionCheck(
        "noise",
        noise <= ABSOLUTE_REST_UV,
        noise,
        ABSOLUTE_REST_UV,
        f"the board's own noise is {noise:.2g} uV RMS"
        + (
            f", below the {ABSOLUTE_REST_UV:g} uV of true relaxation"
            if noise <= ABSOLUTE_REST_UV
            else f", above the {ABSOLUTE_REST_UV:g} uV that defines true relaxation (SCIENCE.md 6.1)"
        ),
    )
    # The highest frequency the chain carries: the analog low-pass, or the analysis low-pass the
    # DSP pulls below Nyquist at this rate.
    top_hz = min(profile.analog_low_pass_hz, MAX_LOW_PASS_FRACTION_OF_NYQUIST * rate_hz / 2.0)
    band_ok = (
        profile.analog_high_pass_hz <= DEFAULT_HIGH_PASS_HZ
        and top_hz >= DEFAULT_LOW_PASS_HZ
        and rate_hz >= RECOMMENDED_MIN_RATE_HZ
    )
    low_hz = max(profile.analog_high_pass_hz, DEFAULT_HIGH_PASS_HZ)
    band = ResolutionCheck(
        "band",
        band_ok,
        top_hz,
        DEFAULT_LOW_PASS_HZ,
        f"at {rate_hz:g} Hz the board passes {low_hz:g}-{top_hz:g} Hz"
        + (
            f", the whole {DEFAULT_HIGH_PASS_HZ:g}-{DEFAULT_LOW_PASS_HZ:g} Hz sEMG band"
            if band_ok
            else f", not the {DEFAULT_HIGH_PASS_HZ:g}-{DEFAULT_LOW_PASS_HZ:g} Hz band the 2 uV criterion is stated in "
            "(amplitudes are not comparable, SCIENCE.md 2)"
        ),
    )
    return BoardAssessment(profile.name, profile.title, rate_hz, (resolution, noise_check, band))


def assess_device_stream(
    device: DeviceInfo, stream_name: str, folder: Path | str | None = None
) -> BoardAssessment | None:
    """Assess the board behind one EMG stream of a device, at the stream's rate.

    Returns
    -------
    BoardAssessment or None
        None when no profile describes the device's ``board_profile`` (verdicts then stand, unchecked).

    Raises
    ------
    ValueError
        When the device has no stream of that name.
    """
    streams = {s.name: s for s in device.streams}
    if stream_name not in streams:
        raise ValueError(f"device {device.device_id!r} has no stream {stream_name!r}; it has {', '.join(streams)}")
    profile = find_board_profile(device.board_profile, folder)
    if profile is None:
        return None
    return assess_board(profile, streams[stream_name].sample_rate_hz)


def apply_board_assessment(trial: Mapping[str, Any], assessment: BoardAssessment | None) -> dict[str, Any]:
    """A trial (the ``trial`` event / ``analyze --json`` contraction) with the board's verdict applied.

    Parameters
    ----------
    trial : mapping
        Holds ``verdict`` and ``verdict_reason``.
    assessment : BoardAssessment or None
        The board's; None (unknown board) leaves the trial as it is.

    Returns
    -------
    dict
        A copy. When the board cannot resolve true relaxation, a ``true``, ``transient`` or ``none``
        verdict becomes ``not_measurable`` with the board's reason, and the analysis's own verdict
        is kept under ``analysis_verdict`` and ``analysis_verdict_reason``.
    """
    out = dict(trial)
    if assessment is None or assessment.resolves_true_relaxation or out.get("verdict") not in OVERRIDDEN_VERDICTS:
        return out
    out["analysis_verdict"] = out["verdict"]
    out["analysis_verdict_reason"] = out.get("verdict_reason")
    out["verdict"] = Verdict.NOT_MEASURABLE.value
    out["verdict_reason"] = assessment.verdict_reason
    return out


def describe_device_boards(device: DeviceInfo, folder: Path | str | None = None) -> list[str]:
    """One line per EMG stream of a device: can its board resolve true relaxation (to say before a session)."""
    profile = find_board_profile(device.board_profile, folder)
    lines = []
    for stream in device.streams:
        if not stream.is_emg:
            continue
        if profile is None:
            lines.append(
                f"{stream.name}: no board profile {device.board_profile!r} in calibration/boards; "
                "resolution not checked"
            )
        else:
            lines.append(assess_board(profile, stream.sample_rate_hz).describe())
    return lines
