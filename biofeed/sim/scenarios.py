"""The named scenarios of the simulated device: scripted EMG amplitude, trunk angles and events.

A scenario is a timeline (docs/simulator.md draws each one) written as key points of

- the EMG amplitude of each channel: the RMS in uV of the noise-free sEMG carrier, the quantity a
  noise-corrected set point estimates (SCIENCE.md sections 3.6 and 4);
- the thoracic and sacral IMU flexion angles in degrees (0 = upright, + = forward flexion,
  -90 = lying supine); lumbar flexion is thoracic minus sacral (SCIENCE.md section 10);

plus the timing of what happens (pandiculation trials, rests, flexion-relaxation cycles, motion
artifacts), from which :mod:`biofeed.sim.truth` derives the ground truth. Levels and timings are the
scenario's; the seed varies peaks, durations and angles within the ranges documented below.

A ``duration_s`` shorter than the script truncates it. A longer one extends the last rest (the
tracks hold their last value), except for ``flexion-relaxation``, which repeats its cycles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from biofeed.sim.keyframes import KeyframeTrack, minimum_jerk_fraction_time
from biofeed.sim.random_streams import RandomStream, stream_rng

__all__ = [
    "CHANNEL_NAMES",
    "RIGHT_TO_LEFT_RATIO",
    "SCENARIO_NAMES",
    "FlexionCycle",
    "MotionArtifact",
    "Posture",
    "RestSpan",
    "ScenarioScript",
    "Trial",
    "TrialKind",
    "build_scenario",
]

SCENARIO_NAMES: tuple[str, ...] = ("rest", "pandiculation", "pandiculation-poor", "flexion-relaxation", "mixed")
"""Scenarios :func:`build_scenario` knows."""

CHANNEL_NAMES: tuple[str, str] = ("es_left", "es_right")
"""EMG channels of the reference device (PROTOCOL.md section 7)."""

RIGHT_TO_LEFT_RATIO = 0.9
"""Right erector spinae amplitude relative to the left: a mild, realistic asymmetry."""

Posture = Literal["standing", "lying_supine"]
TrialKind = Literal["good", "poor", "transient"]

_REST_SET_POINT_UV = 3.0
_REST_DRIFT_SD = 0.08  # relative SD of the slow wander of a resting set point
_REST_DRIFT_STEP_S = 30.0
_PANDICULATION_SET_POINTS_UV = (6.0, 4.0, 2.8, 2.0)
_POOR_SET_POINT_UV = 6.0
_STANDING_UV = 4.0
_SILENCE_UV = 0.5  # flexion-relaxation silence: below the noise floor, as in healthy backs
_INITIAL_REST_S = 60.0  # SCIENCE.md 4: a set point needs 30-60 s of rest
_REST_AFTER_RELEASE_S = 125.0  # so that the 60-120 s persistence window (SCIENCE.md 6.3) fits
_SETTLE_S = 6.0  # the post-release settling reaches its level before the 10 s mark (SCIENCE.md 6.2)
_ARCH_THORACIC_DEG = -3.0  # a lumbar contraction arches the back slightly (extension)
_ARCH_SACRAL_DEG = 2.0
_PELVIS_FRACTION = 0.35  # share of trunk flexion done by the pelvis (sacral IMU)
_LYING_DEG = -90.0
_STANDING_BETWEEN_CYCLES_S = 5.0
_N_FLEXION_CYCLES = 5
_ARTIFACT_PROBABILITY = 0.6


@dataclass(frozen=True)
class Trial:
    """Timing of one scripted pandiculation (both channels share it).

    Attributes
    ----------
    kind : {"good", "poor", "transient"}
        Good: slow release, lower rest that lasts. Poor: abrupt release with re-bracing, rest back
        at the old set point. Transient: slow release, lower rest that creeps back within 60 s.
    onset_s : float
        Start of the contraction.
    release_start_s : float
        End of the hold, start of the release.
    release_end_s : float
        End of the release: the amplitude is back at the pre-trial rest level.
    rebursts_s : tuple of float
        Times of the re-bracing peaks during a poor release.
    posture : Posture
        Posture the trial is done in.
    """

    kind: TrialKind
    onset_s: float
    release_start_s: float
    release_end_s: float
    rebursts_s: tuple[float, ...]
    posture: Posture


@dataclass(frozen=True)
class RestSpan:
    """A span of quiet rest at a settled level.

    Attributes
    ----------
    start_s, end_s : float
        The span in device seconds.
    posture : Posture
        Posture during it.
    """

    start_s: float
    end_s: float
    posture: Posture


@dataclass(frozen=True)
class FlexionCycle:
    """One standing -> flexion -> full flexion -> extension -> standing cycle.

    Attributes
    ----------
    standing_start_s : float
        Start of the quiet standing before the flexion.
    flexion_start_s, flexion_end_s : float
        The forward bend (thoracic angle from 0 to ``max_thoracic_deg``).
    extension_start_s, extension_end_s : float
        The return to upright.
    standing_end_s : float
        End of the quiet standing after the extension.
    max_thoracic_deg : float
        Peak thoracic flexion.
    silence_start_s, silence_end_s : float
        EMG silence: from the cessation of activity during flexion to its onset during extension.
    """

    standing_start_s: float
    flexion_start_s: float
    flexion_end_s: float
    extension_start_s: float
    extension_end_s: float
    standing_end_s: float
    max_thoracic_deg: float
    silence_start_s: float
    silence_end_s: float


@dataclass(frozen=True)
class MotionArtifact:
    """A low-frequency electrode-motion spike (cable or skin movement at a movement's start).

    Shape: an alpha function ``a (t/tau) exp(1 - t/tau)`` from ``time_s``, peak ``a`` at ``tau``.

    Attributes
    ----------
    time_s : float
        Start of the spike.
    time_constant_s : float
        ``tau``: time from start to peak.
    amplitude_uv : tuple of float
        Peak per channel (may be negative).
    """

    time_s: float
    time_constant_s: float
    amplitude_uv: tuple[float, float]


@dataclass(frozen=True)
class ScenarioScript:
    """Everything scripted about one scenario run.

    Attributes
    ----------
    name : str
        Scenario name, one of :data:`SCENARIO_NAMES`.
    duration_s : float
        Device seconds the run lasts.
    script_duration_s : float
        Natural length of the script (before truncation or extension).
    emg_level_uv : tuple of KeyframeTrack
        Per channel (:data:`CHANNEL_NAMES` order): RMS amplitude of the noise-free sEMG in uV.
    thoracic_deg, sacral_deg : KeyframeTrack
        Sagittal flexion angles of the two IMUs in degrees.
    trials : tuple of Trial
    rests : tuple of RestSpan
    cycles : tuple of FlexionCycle
    motion_artifacts : tuple of MotionArtifact
    """

    name: str
    duration_s: float
    script_duration_s: float
    emg_level_uv: tuple[KeyframeTrack, KeyframeTrack]
    thoracic_deg: KeyframeTrack
    sacral_deg: KeyframeTrack
    trials: tuple[Trial, ...]
    rests: tuple[RestSpan, ...]
    cycles: tuple[FlexionCycle, ...]
    motion_artifacts: tuple[MotionArtifact, ...]

    def lumbar_deg_at(self, t_s: float) -> float:
        """Lumbar flexion (thoracic minus sacral) at device time ``t_s``, degrees."""
        return float(self.thoracic_deg.value_at(t_s) - self.sacral_deg.value_at(t_s))


class _Timeline:
    """Accumulates key points and events while a scenario is written, phase after phase."""

    def __init__(self, rng: np.random.Generator, level_uv: float, thoracic_deg: float, sacral_deg: float) -> None:
        self.rng = rng
        self.t_s = 0.0
        self.level_keys: list[tuple[float, float]] = [(0.0, level_uv)]
        self.angle_keys: list[tuple[float, float, float]] = [(0.0, thoracic_deg, sacral_deg)]
        self.trials: list[Trial] = []
        self.rests: list[RestSpan] = []
        self.cycles: list[FlexionCycle] = []
        self.artifacts: list[MotionArtifact] = []

    @property
    def level_uv(self) -> float:
        return self.level_keys[-1][1]

    @property
    def angles_deg(self) -> tuple[float, float]:
        return self.angle_keys[-1][1], self.angle_keys[-1][2]

    def level(self, t_s: float, uv: float) -> None:
        last_s, last_uv = self.level_keys[-1]
        if t_s > last_s:
            self.level_keys.append((t_s, uv))
        elif not (t_s == last_s and uv == last_uv):
            raise RuntimeError(f"amplitude key point at {t_s} s does not follow the one at {last_s} s")

    def angle(self, t_s: float, thoracic_deg: float, sacral_deg: float) -> None:
        last = self.angle_keys[-1]
        if t_s > last[0]:
            self.angle_keys.append((t_s, thoracic_deg, sacral_deg))
        elif (t_s, thoracic_deg, sacral_deg) != last:
            raise RuntimeError(f"angle key point at {t_s} s does not follow the one at {last[0]} s")

    def hold_until(self, t_s: float) -> None:
        """Keep amplitude and angles where they are until ``t_s``; moves the cursor there."""
        self.level(t_s, self.level_uv)
        self.angle(t_s, *self.angles_deg)
        self.t_s = max(self.t_s, t_s)

    def rest(self, duration_s: float, posture: Posture, *, start_s: float | None = None) -> None:
        """Quiet rest until ``t_s + duration_s``, recorded as a rest span from ``start_s``."""
        end_s = self.t_s + duration_s
        self.hold_until(end_s)
        self.rests.append(RestSpan(self.t_s - duration_s if start_s is None else start_s, end_s, posture))

    def drifting_rest(self, duration_s: float, set_point_uv: float, posture: Posture) -> None:
        """Rest whose amplitude wanders slowly around ``set_point_uv``, as a real set point does."""
        start_s = self.t_s
        n_steps = max(1, round(duration_s / _REST_DRIFT_STEP_S))
        for i in range(1, n_steps + 1):
            wander = 1.0 + _REST_DRIFT_SD * float(self.rng.standard_normal())
            self.level(start_s + duration_s * i / n_steps, set_point_uv * wander)
        self.hold_until(start_s + duration_s)
        self.rests.append(RestSpan(start_s, self.t_s, posture))

    def artifact(self, movement_start_s: float) -> None:
        """Maybe a motion artifact shortly after a movement starts (decided by the script's seed)."""
        if self.rng.random() >= _ARTIFACT_PROBABILITY:
            return
        time_s = movement_start_s + float(self.rng.uniform(0.0, 0.3))
        tau_s = float(self.rng.uniform(0.03, 0.08))
        sign = 1.0 if self.rng.random() < 0.5 else -1.0
        amplitude = sign * self.rng.uniform(20.0, 80.0, size=2)
        self.artifacts.append(MotionArtifact(time_s, tau_s, (float(amplitude[0]), float(amplitude[1]))))

    def pandiculation(
        self, kind: TrialKind, post_uv: float, posture: Posture, *, rebound_uv: float | None = None
    ) -> None:
        """One trial from the cursor, then rest until ``_REST_AFTER_RELEASE_S`` after its release.

        Contraction to 30-60 uV (rise 0.5 s, a fast first 80 ms), hold 2-3 s. Good and transient:
        straight release over 4-8 s, then settling to ``post_uv`` within ``_SETTLE_S``; transient
        rises again to ``rebound_uv`` between 40 and 60 s after the release. Poor: a drop in
        0.4-0.8 s, two re-bracing bursts of 30-50 % of the contraction, back to the old level.
        """
        pre_uv = self.level_uv
        thoracic0, sacral0 = self.angles_deg
        onset_s = self.t_s
        peak_uv = float(self.rng.uniform(30.0, 60.0))
        hold_s = float(self.rng.uniform(2.0, 3.0))
        top_s = onset_s + 0.5
        release_start_s = top_s + hold_s
        self.level(onset_s + 0.08, pre_uv + 0.6 * (peak_uv - pre_uv))
        self.level(top_s, peak_uv)
        self.level(release_start_s, peak_uv)
        self.angle(top_s, thoracic0 + _ARCH_THORACIC_DEG, sacral0 + _ARCH_SACRAL_DEG)
        self.angle(release_start_s, thoracic0 + _ARCH_THORACIC_DEG, sacral0 + _ARCH_SACRAL_DEG)
        rebursts: list[float] = []
        if kind == "poor":
            t_s = release_start_s + float(self.rng.uniform(0.4, 0.8))
            floor_uv = 1.3 * pre_uv
            self.level(t_s, floor_uv)
            for _ in range(2):
                t_s += float(self.rng.uniform(0.5, 1.0))
                self.level(t_s, floor_uv)
                t_s += 0.2
                self.level(t_s, pre_uv + float(self.rng.uniform(0.3, 0.5)) * (peak_uv - pre_uv))
                rebursts.append(t_s)
                t_s += 0.4
                self.level(t_s, floor_uv)
            release_end_s = t_s + 0.5
            self.level(release_end_s, pre_uv)
            post_uv = pre_uv
        else:
            release_end_s = release_start_s + float(self.rng.uniform(4.0, 8.0))
            self.level(release_end_s, pre_uv)
            self.level(release_end_s + _SETTLE_S, post_uv)
        self.angle(release_end_s, thoracic0, sacral0)
        self.trials.append(Trial(kind, onset_s, release_start_s, release_end_s, tuple(rebursts), posture))
        self.t_s = release_end_s + _SETTLE_S
        if kind == "transient" and rebound_uv is not None:
            self.rest(40.0 - _SETTLE_S, posture)
            self.level(release_end_s + 60.0, rebound_uv)
            self.angle(release_end_s + 60.0, thoracic0, sacral0)
            self.t_s = release_end_s + 60.0
        self.rest(release_end_s + _REST_AFTER_RELEASE_S - self.t_s, posture)

    def posture_change(self, thoracic_deg: float, sacral_deg: float, duration_s: float, rest_uv: float) -> None:
        """Move to new angles (minimum jerk) with the brief EMG burst a change of posture takes."""
        start_s = self.t_s
        self.artifact(start_s)
        self.level(start_s + duration_s / 2, float(self.rng.uniform(15.0, 25.0)))
        self.level(start_s + duration_s, rest_uv)
        self.angle(start_s + duration_s, thoracic_deg, sacral_deg)
        self.t_s = start_s + duration_s

    def flexion_cycle(self) -> None:
        """Standing (5 s), flexion (3-4 s) to 70-80 deg, full flexion (3-4 s), extension (3-4 s), standing.

        EMG (eccentric then silent): from standing level up to 25-40 uV at 40 % of the angle, down to
        silence at 65-80 % of the maximum angle, silent through full flexion, active again at 80-90 %
        of the maximum during extension, a 50-80 uV burst at 45 %, standing level 0.5 s after.
        """
        standing_start_s = self.t_s - _STANDING_BETWEEN_CYCLES_S
        flexion_start_s = self.t_s
        max_deg = float(self.rng.uniform(70.0, 80.0))
        flexion_s = float(self.rng.uniform(3.0, 4.0))
        full_s = float(self.rng.uniform(3.0, 4.0))
        extension_s = float(self.rng.uniform(3.0, 4.0))
        cessation_fraction = float(self.rng.uniform(0.65, 0.80))
        onset_fraction = float(self.rng.uniform(0.80, 0.90))
        flexion_end_s = flexion_start_s + flexion_s
        extension_start_s = flexion_end_s + full_s
        extension_end_s = extension_start_s + extension_s

        def rising(fraction: float) -> float:
            return flexion_start_s + flexion_s * minimum_jerk_fraction_time(fraction)

        def falling(fraction: float) -> float:
            return extension_start_s + extension_s * minimum_jerk_fraction_time(1.0 - fraction)

        self.artifact(flexion_start_s)
        self.level(rising(0.4), float(self.rng.uniform(25.0, 40.0)))
        silence_start_s = rising(cessation_fraction)
        self.level(silence_start_s, _SILENCE_UV)
        silence_end_s = falling(onset_fraction)
        self.level(silence_end_s, _SILENCE_UV)
        self.level(falling(0.45), float(self.rng.uniform(50.0, 80.0)))
        self.level(extension_end_s + 0.5, _STANDING_UV)
        self.angle(flexion_end_s, max_deg, _PELVIS_FRACTION * max_deg)
        self.angle(extension_start_s, max_deg, _PELVIS_FRACTION * max_deg)
        self.angle(extension_end_s, 0.0, 0.0)
        self.t_s = extension_end_s
        self.artifact(extension_start_s)
        standing_end_s = extension_end_s + _STANDING_BETWEEN_CYCLES_S
        self.cycles.append(
            FlexionCycle(
                standing_start_s,
                flexion_start_s,
                flexion_end_s,
                extension_start_s,
                extension_end_s,
                standing_end_s,
                max_deg,
                silence_start_s,
                silence_end_s,
            )
        )
        self.rest(_STANDING_BETWEEN_CYCLES_S, "standing", start_s=extension_end_s + 0.5)


def _rest(line: _Timeline, min_duration_s: float) -> None:
    line.drifting_rest(180.0, _REST_SET_POINT_UV, "lying_supine")


def _pandiculation(line: _Timeline, min_duration_s: float) -> None:
    line.rest(_INITIAL_REST_S, "lying_supine")
    for post_uv in _PANDICULATION_SET_POINTS_UV[1:]:
        line.pandiculation("good", post_uv, "lying_supine")


def _pandiculation_poor(line: _Timeline, min_duration_s: float) -> None:
    line.rest(_INITIAL_REST_S, "lying_supine")
    for _ in range(3):
        line.pandiculation("poor", _POOR_SET_POINT_UV, "lying_supine")


def _flexion_relaxation(line: _Timeline, min_duration_s: float) -> None:
    line.rest(2 * _STANDING_BETWEEN_CYCLES_S, "standing")
    n_cycles = 0
    # Another cycle only if more than a standing pause is left; a shorter remainder extends the last rest.
    while n_cycles < _N_FLEXION_CYCLES or line.t_s < min_duration_s - _STANDING_BETWEEN_CYCLES_S:
        line.flexion_cycle()
        n_cycles += 1


def _mixed(line: _Timeline, min_duration_s: float) -> None:
    line.rest(30.0, "standing")
    for _ in range(2):
        line.flexion_cycle()
    line.posture_change(_LYING_DEG, _LYING_DEG, 4.0, 5.0)
    line.rest(_INITIAL_REST_S, "lying_supine")
    line.pandiculation("poor", 5.0, "lying_supine")
    line.pandiculation("transient", 2.2, "lying_supine", rebound_uv=4.8)
    line.pandiculation("good", 2.0, "lying_supine")
    line.posture_change(0.0, 0.0, 4.0, _STANDING_UV)
    line.rest(30.0, "standing")


_BUILDERS = {
    "rest": (_rest, _REST_SET_POINT_UV, _LYING_DEG),
    "pandiculation": (_pandiculation, _PANDICULATION_SET_POINTS_UV[0], _LYING_DEG),
    "pandiculation-poor": (_pandiculation_poor, _POOR_SET_POINT_UV, _LYING_DEG),
    "flexion-relaxation": (_flexion_relaxation, _STANDING_UV, 0.0),
    "mixed": (_mixed, _STANDING_UV, 0.0),
}


def _clip_rests(rests: list[RestSpan], duration_s: float, script_duration_s: float) -> tuple[RestSpan, ...]:
    kept = [r for r in rests if r.start_s < duration_s]
    clipped = [RestSpan(r.start_s, min(r.end_s, duration_s), r.posture) for r in kept]
    if clipped and duration_s > script_duration_s and clipped[-1].end_s >= script_duration_s:
        # Beyond the script the tracks hold their last values: the last rest goes on.
        clipped[-1] = RestSpan(clipped[-1].start_s, duration_s, clipped[-1].posture)
    return tuple(clipped)


def build_scenario(name: str, *, seed: int, duration_s: float | None = None) -> ScenarioScript:
    """Write the script of scenario ``name``.

    Parameters
    ----------
    name : str
        One of :data:`SCENARIO_NAMES`.
    seed : int
        Non-negative seed; varies peaks, durations and angles within the scenario's ranges.
    duration_s : float or None
        Device seconds to run; None for the script's natural length.

    Raises
    ------
    ValueError
        Unknown scenario, negative seed or a non-positive duration.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown scenario {name!r}; allowed: {', '.join(SCENARIO_NAMES)}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative whole number, got {seed}")
    if duration_s is not None and not (np.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s must be a positive number of seconds, got {duration_s}")
    build, level_uv, angle_deg = _BUILDERS[name]
    rng = stream_rng(seed, RandomStream.SCRIPT)
    line = _Timeline(rng, level_uv, angle_deg, angle_deg)
    build(line, 0.0 if duration_s is None else duration_s)
    script_duration_s = line.t_s
    run_s = script_duration_s if duration_s is None else float(duration_s)
    levels = [t for t, _ in line.level_keys], [v for _, v in line.level_keys]
    angles = line.angle_keys
    return ScenarioScript(
        name=name,
        duration_s=run_s,
        script_duration_s=script_duration_s,
        emg_level_uv=(
            KeyframeTrack(levels[0], levels[1]),
            KeyframeTrack(levels[0], [RIGHT_TO_LEFT_RATIO * v for v in levels[1]]),
        ),
        thoracic_deg=KeyframeTrack([a[0] for a in angles], [a[1] for a in angles], interpolation="minimum_jerk"),
        sacral_deg=KeyframeTrack([a[0] for a in angles], [a[2] for a in angles], interpolation="minimum_jerk"),
        trials=tuple(t for t in line.trials if t.onset_s < run_s),
        rests=_clip_rests(line.rests, run_s, script_duration_s),
        cycles=tuple(c for c in line.cycles if c.standing_start_s < run_s),
        motion_artifacts=tuple(a for a in line.artifacts if a.time_s < run_s),
    )
