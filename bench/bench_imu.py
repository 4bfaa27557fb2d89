"""Accuracy of the trunk and lumbar angles against trajectories with known truth, and of the FR test.

Three measurements (docs/imu.md reports them):

1. **Angle RMSE** on a synthetic session whose truth is known exactly: 10 s quiet standing, three
   forward bends (the functional calibration), then random trunk movements (lumbar flexion 0-80 deg,
   lateral bend +-20, axial rotation +-25, pelvis tilt 0.54 x flexion, whole-body turns +-90 deg)
   with holds. The two sensors ride on the back 0.10 and 0.45 m above the hip (their true linear
   acceleration enters the accelerometer), with bumps of 0.1-0.3 g (a step, a knock), each mounted
   5-10 deg off the body axes, with a constant gyro bias of 0.5-1 deg/s per axis and white noise
   (0.003 g, 0.05 deg/s). Compared: the pipeline (bias from still windows, imufusion, upright and
   functional calibration, :func:`~biofeed.dsp.imu.trunk_motion.track_trunk`); the same with ahrs's
   Madgwick filter (default gain) in place of imufusion; the accelerometer alone (inclination of each
   sensor; lumbar flexion as their difference).
2. **FR onset angle error**: the flexion-relaxation analysis of simulated sessions against the
   simulator's truth (cessation and onset angles of silence, FRR).
3. **Drift** over 10 minutes of quiet standing (sway of +-0.5 deg), same sensors: the largest angle
   error in the last minute, with and without the gyro bias correction.

``--quick`` shortens everything (60 s session, 2 FR seeds, 2 minutes of standing).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from ahrs.filters import Madgwick
from scipy.spatial.transform import Rotation

from biofeed.blocks import Block, ChannelInfo, ChannelKind, StreamInfo
from biofeed.dsp.flexion_relaxation import analyze_flexion_relaxation
from biofeed.dsp.imu.angles import lumbar_angles_deg, segment_inclination_deg
from biofeed.dsp.imu.bias import GyroBiasTracker, StillnessCriteria, estimate_gyro_bias
from biofeed.dsp.imu.calibration import (
    SensorMounting,
    calibrate_upright,
    functional_mediolateral_axis,
    mounting_from_upright,
)
from biofeed.dsp.imu.fusion import initial_quaternion
from biofeed.dsp.imu.rotations import matrix_from_cardan_yzx_deg, quaternion_from_two_vectors, rotation_about_axis
from biofeed.dsp.imu.trunk_motion import IMU_CHANNEL_NAMES, track_trunk
from biofeed.sim.device import SimulatedDevice
from biofeed.sim.emg import EmgGenerator
from biofeed.sim.imu import ImuGenerator
from biofeed.sim.keyframes import KeyframeTrack

__all__ = ["Session", "run", "synthetic_session"]

_Array = npt.NDArray[np.float64]
RATE_HZ = 100.0
FINE_RATE_HZ = 500.0  # trajectories are differentiated on this grid, then sampled at RATE_HZ
GRAVITY_M_S2 = 9.80665
ACC_NOISE_G = 0.003
GYRO_NOISE_DPS = 0.05
STILL_S = 10.0
CALIBRATION_S = (1.0, 6.0)
BENDS_S = 12.0  # three functional-calibration bends after the still start
UPRIGHT = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # body axes in earth coordinates
PELVIS_PER_LUMBAR = 0.35 / 0.65  # as the simulator: the pelvis takes 35 % of trunk flexion


class Session:
    """A synthetic recording and its truth."""

    def __init__(self, imus: tuple[_Array, _Array], truth: dict[str, _Array]) -> None:
        self.imus = imus  # thoracic, sacral: (6, n) acc g, gyro deg/s
        self.truth = truth  # the three lumbar angles, thoracic_inclination, speed_dps of lumbar flexion


def _tracks(duration_s: float, rng: np.random.Generator, moving: bool) -> dict[str, KeyframeTrack]:
    keys: dict[str, list[tuple[float, float]]] = {k: [(0.0, 0.0)] for k in ("flexion", "lateral", "axial", "heading")}
    for k in range(3 if moving else 0):  # functional calibration: three forward bends, 4 s apart
        t = STILL_S + 4.0 * k
        keys["flexion"] += [(t, 0.0), (t + 1.0, 40.0), (t + 2.0, 0.0)]
    t = STILL_S + BENDS_S
    while moving and t < duration_s - 5.0:
        move_s, hold_s = float(rng.uniform(1.5, 3.0)), float(rng.uniform(1.0, 4.0))
        neutral = rng.random() < 0.3
        targets = {
            "flexion": 0.0 if neutral else float(rng.uniform(0.0, 80.0)),
            "lateral": 0.0 if neutral else float(rng.uniform(-20.0, 20.0)),
            "axial": 0.0 if neutral else float(rng.uniform(-25.0, 25.0)),
        }
        for name, value in targets.items():
            keys[name] += [(t, keys[name][-1][1]), (t + move_s, value)]
        if rng.random() < 0.2:
            keys["heading"] += [(t, keys["heading"][-1][1]), (t + move_s, float(rng.uniform(-90.0, 90.0)))]
        t += move_s + hold_s
    tracks = {}
    for name, points in keys.items():
        cleaned = [points[0]]
        for time_s, value in points[1:]:
            if time_s > cleaned[-1][0]:
                cleaned.append((time_s, value))
        cleaned.append((duration_s + 1.0, cleaned[-1][1]))
        tracks[name] = KeyframeTrack([p[0] for p in cleaned], [p[1] for p in cleaned], interpolation="minimum_jerk")
    return tracks


def _bumps(t: _Array, rng: np.random.Generator) -> _Array:
    """Linear acceleration of bumps in earth coordinates, m/s^2, shape (n, 3)."""
    out = np.zeros((t.shape[0], 3))
    start = STILL_S + BENDS_S + float(rng.uniform(0, 5))
    while start < t[-1]:
        length_s = float(rng.uniform(0.1, 0.3))
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        inside = (t >= start) & (t < start + length_s)
        out[inside] += np.outer(np.sin(np.pi * (t[inside] - start) / length_s), direction) * rng.uniform(0.1, 0.3)
        start += float(rng.uniform(5.0, 15.0))
    return out * GRAVITY_M_S2


def _misalignment(rng: np.random.Generator) -> _Array:
    axis = rng.normal(size=3)
    angle = np.radians(rng.uniform(5.0, 10.0))
    return np.asarray(Rotation.from_rotvec(angle * axis / np.linalg.norm(axis)).as_matrix(), dtype=np.float64)


def synthetic_session(duration_s: float, seed: int, moving: bool = True) -> Session:
    """A recording of two back sensors along a random trajectory (module docstring), with its truth."""
    rng = np.random.default_rng(seed)
    tracks = _tracks(duration_s, rng, moving)
    t = np.arange(round(duration_s * FINE_RATE_HZ)) / FINE_RATE_HZ
    flexion, lateral, axial = (tracks[k].value_at(t) for k in ("flexion", "lateral", "axial"))
    if not moving:  # quiet standing: slow sway
        flexion = flexion + 0.5 * np.sin(2 * np.pi * 0.2 * t)
        lateral = lateral + 0.3 * np.sin(2 * np.pi * 0.13 * t + 1.0)
    sacral_body = (
        rotation_about_axis(2, tracks["heading"].value_at(t))
        @ UPRIGHT
        @ rotation_about_axis(1, PELVIS_PER_LUMBAR * flexion)
    )
    thoracic_body = sacral_body @ matrix_from_cardan_yzx_deg(flexion, lateral, axial)
    lumbar_joint = sacral_body @ np.array([0.15, 0.0, 0.0])
    positions = {
        "sacral": sacral_body @ np.array([0.10, 0.0, 0.05]),
        "thoracic": lumbar_joint + thoracic_body @ np.array([0.30, 0.0, 0.05]),
    }
    bumps = _bumps(t, rng) if moving else np.zeros((t.shape[0], 3))
    step = round(FINE_RATE_HZ / RATE_HZ)
    imus = []
    for site, body in (("thoracic", thoracic_body), ("sacral", sacral_body)):
        sensor = body @ _misalignment(rng).T  # sensor -> earth
        linear = np.gradient(np.gradient(positions[site], axis=0), axis=0) * FINE_RATE_HZ**2 + bumps
        specific_force = np.einsum("nji,nj->ni", sensor, linear / GRAVITY_M_S2 + [0.0, 0.0, 1.0])
        turn = np.swapaxes(sensor[:-2], 1, 2) @ sensor[2:]  # rotation over two fine steps, sensor frame
        gyro = np.degrees(Rotation.from_matrix(turn).as_rotvec()) * FINE_RATE_HZ / 2.0
        gyro = np.vstack([gyro[:1], gyro, gyro[-1:]])
        bias = rng.uniform(0.5, 1.0, 3) * rng.choice([-1.0, 1.0], 3)
        n = t[::step].shape[0]
        imu = np.vstack([specific_force[::step].T, (gyro[::step] + bias).T])
        imu[:3] += rng.normal(0, ACC_NOISE_G, (3, n))
        imu[3:] += rng.normal(0, GYRO_NOISE_DPS, (3, n))
        imus.append(imu)
    speed = np.abs(np.gradient(flexion[::step])) * RATE_HZ
    thoracic_quaternions = np.roll(Rotation.from_matrix(thoracic_body[::step]).as_quat(), 1, axis=1)
    truth = {
        "lumbar_flexion": flexion[::step],
        "lumbar_lateral_bend": lateral[::step],
        "lumbar_axial_rotation": axial[::step],
        # The body frame is its own sensor here: identity mounting.
        "thoracic_inclination": segment_inclination_deg(thoracic_quaternions, SensorMounting(np.eye(3), "sensor_y"))[0],
        "speed_dps": speed,
    }
    return Session((imus[0], imus[1]), truth)


def _info(name: str) -> StreamInfo:
    channels = tuple(
        ChannelInfo(n, ChannelKind.ACC, "g") if n.startswith("acc") else ChannelInfo(n, ChannelKind.GYRO, "deg/s")
        for n in IMU_CHANNEL_NAMES
    )
    return StreamInfo(name, RATE_HZ, channels)


def _pipeline(session: Session, bias_correction: bool = True) -> dict[str, _Array]:
    # Without bias correction: the same chain with no window ever still, so the bias stays 0.
    stillness = None if bias_correction else StillnessCriteria(max_gyro_sd_dps=1e-9)
    trunk = track_trunk(
        *session.imus,
        RATE_HZ,
        calibration_s=CALIBRATION_S,
        functional_s=(STILL_S, STILL_S + BENDS_S),
        stillness=stillness,
    )
    return {name: trunk.angle(name) for name in trunk.angle_names}


def _madgwick(session: Session) -> dict[str, _Array]:
    """The pipeline's bias correction and calibration around ahrs's Madgwick filter instead of imufusion."""
    quaternions, corrected = [], []
    for name, imu in zip(("imu_thoracic", "imu_sacral"), session.imus, strict=True):
        bias = GyroBiasTracker(RATE_HZ, initial_bias_dps=estimate_gyro_bias(imu[:3], imu[3:], RATE_HZ))
        data = bias.process(Block(_info(name), imu, 0)).data
        corrected.append(data)
        filt = Madgwick(
            gyr=np.radians(data[3:].T), acc=data[:3].T, frequency=RATE_HZ, q0=initial_quaternion(data[:3, 0])
        )
        quaternions.append(filt.Q)
    span = slice(*(round(t * RATE_HZ) for t in CALIBRATION_S))
    bends = slice(round(STILL_S * RATE_HZ), round((STILL_S + BENDS_S) * RATE_HZ))
    calibration = calibrate_upright(
        corrected[0][:3, span],
        quaternions[0][span],
        corrected[1][:3, span],
        quaternions[1][span],
        thoracic_mediolateral=functional_mediolateral_axis(corrected[0][3:, bends]),
        sacral_mediolateral=functional_mediolateral_axis(corrected[1][3:, bends]),
    )
    lumbar = lumbar_angles_deg(quaternions[0], quaternions[1], calibration)
    return {
        "lumbar_flexion": lumbar[0],
        "lumbar_lateral_bend": lumbar[1],
        "lumbar_axial_rotation": lumbar[2],
        "thoracic_inclination": segment_inclination_deg(quaternions[0], calibration.thoracic)[0],
    }


def _accelerometer_only(session: Session) -> dict[str, _Array]:
    """Each sensor's inclination from its accelerometer alone; lumbar flexion as their difference."""
    span = slice(*(round(t * RATE_HZ) for t in CALIBRATION_S))
    thoracic, sacral = (
        segment_inclination_deg(
            np.array([quaternion_from_two_vectors(a, [0.0, 0.0, 1.0]) for a in imu[:3].T]),
            mounting_from_upright(imu[:3, span].mean(axis=1)),
        )
        for imu in session.imus
    )
    return {"lumbar_flexion": thoracic[0] - sacral[0], "thoracic_inclination": thoracic[0]}


def _error(estimate: _Array, truth: _Array) -> _Array:
    """Angle error wrapped to [-180, 180) deg."""
    return np.asarray((estimate - truth + 180.0) % 360.0 - 180.0, dtype=np.float64)


def _rmse(estimate: _Array, truth: _Array, mask: npt.NDArray[np.bool_] | None = None) -> float:
    error = _error(estimate, truth)
    if mask is not None:
        error = error[mask]
    return float(np.sqrt(np.mean(error**2)))


def _angle_figures(label: str, estimate: dict[str, _Array], truth: dict[str, _Array]) -> dict[str, float]:
    out: dict[str, float] = {}
    still = truth["speed_dps"] < 5.0
    for name in ("lumbar_flexion", "lumbar_lateral_bend", "lumbar_axial_rotation", "thoracic_inclination"):
        if name in estimate:
            out[f"{label}{name}_rmse_deg"] = _rmse(estimate[name], truth[name])
    out[f"{label}lumbar_flexion_static_rmse_deg"] = _rmse(estimate["lumbar_flexion"], truth["lumbar_flexion"], still)
    out[f"{label}lumbar_flexion_dynamic_rmse_deg"] = _rmse(estimate["lumbar_flexion"], truth["lumbar_flexion"], ~still)
    out[f"{label}lumbar_flexion_max_error_deg"] = float(
        np.abs(_error(estimate["lumbar_flexion"], truth["lumbar_flexion"])).max()
    )
    return out


def _drift(label: str, estimate: dict[str, _Array], truth: dict[str, _Array], minutes: float) -> dict[str, float]:
    last = slice(-round(60.0 * RATE_HZ), None)
    return {
        f"{label}drift_{minutes:g}min_{name}_deg": float(np.abs(_error(estimate[name][last], truth[name][last])).max())
        for name in ("lumbar_flexion", "lumbar_lateral_bend", "lumbar_axial_rotation")
        if name in estimate
    }


def _fr_errors(seeds: range) -> dict[str, float]:
    angle_errors: dict[str, list[float]] = {
        "cessation_lumbar_deg": [],
        "onset_lumbar_deg": [],
        "cessation_thoracic_deg": [],
    }
    frr_errors: list[float] = []
    for seed in seeds:
        device = SimulatedDevice("flexion-relaxation", seed=seed)
        n = round(device.duration_s * RATE_HZ)
        imus = [
            np.hstack([ImuGenerator(device.script, site, seed=seed).segment(i) for i in range(math.ceil(n / 100))])[
                :, :n
            ]
            for site in ("thoracic", "sacral")
        ]
        generator = EmgGenerator(device.script, seed=seed, noise_floor_uv=device.noise_floor_uv)
        emg = np.hstack([generator.segment(i) for i in range(math.ceil(n / 100))])[:, : n * 20]
        result = analyze_flexion_relaxation(
            emg, 2000.0, track_trunk(imus[0], imus[1], RATE_HZ), ("es_left", "es_right")
        ).to_json()
        truth = device.truth()["flexion_relaxation"]
        for side in ("es_left", "es_right"):
            for found, true in zip(
                result["silence"][side]["per_cycle"], truth["silence"][side]["per_cycle"], strict=True
            ):
                for key, errors in angle_errors.items():
                    errors.append(abs(found[key] - true[key]))
            frr = np.array(result["frr"][side]["per_cycle"]) / np.array(truth["frr"][side]["per_cycle"]) - 1.0
            frr_errors += np.abs(frr).tolist()
    out = {f"fr_{key}_mae": float(np.mean(v)) for key, v in angle_errors.items()}
    out |= {f"fr_{key}_max_error": float(np.max(v)) for key, v in angle_errors.items()}
    out["fr_frr_median_relative_error"] = float(np.median(frr_errors))
    out["fr_frr_p95_relative_error"] = float(np.percentile(frr_errors, 95))
    out["fr_seeds"] = len(seeds)
    return out


def run(quick: bool) -> dict[str, Any]:
    """Measure angle accuracy, FR angle error and drift; ``quick`` takes a few seconds."""
    session_s, fr_seeds, standing_s = (60.0, range(2), 120.0) if quick else (300.0, range(10), 600.0)
    session = synthetic_session(session_s, seed=1)
    figures: dict[str, Any] = {"session_s": session_s}
    peers: dict[str, Any] = {}
    figures |= _angle_figures("", _pipeline(session), session.truth)
    peers |= _angle_figures("madgwick_", _madgwick(session), session.truth)
    accelerometer = _accelerometer_only(session)
    peers["accel_only_lumbar_flexion_rmse_deg"] = _rmse(
        accelerometer["lumbar_flexion"], session.truth["lumbar_flexion"]
    )
    peers["accel_only_thoracic_inclination_rmse_deg"] = _rmse(
        accelerometer["thoracic_inclination"], session.truth["thoracic_inclination"]
    )
    figures |= _fr_errors(fr_seeds)
    standing = synthetic_session(standing_s, seed=2, moving=False)
    minutes = standing_s / 60.0
    figures |= _drift("", _pipeline(standing), standing.truth, minutes)
    figures |= _drift("no_bias_correction_", _pipeline(standing, bias_correction=False), standing.truth, minutes)
    peers |= _drift("madgwick_", _madgwick(standing), standing.truth, minutes)
    peers |= _drift("accel_only_", _accelerometer_only(standing), standing.truth, minutes)
    return {"name": "imu", "figures": figures, "peers": peers}
