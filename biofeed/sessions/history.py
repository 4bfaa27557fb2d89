"""A client's progress across sessions: set point before and after each, trial verdicts and scores, the trend.

The question a practitioner asks is whether the resting set point drops and stays down across
weeks. Per channel, :func:`client_history` gives

- each session's set point before (at its first trial) and after (10 s past its last release),
  each with a 95 % bootstrap CI of the median over its 1 s windows, and as % of the calibration's
  reference contraction when one was measured (SCIENCE.md 8, RVC);
- ``change_uv``: last session's "before" minus the first's, with a 95 % CI from resampling each
  session's windows (meaningful from two sessions on);
- ``slope_uv_per_week``: a Theil-Sen slope of "before" over time, with a 95 % CI from a two-level
  bootstrap (sessions, then each session's windows), from :data:`TREND_MIN_SESSIONS` sessions spread
  over at least a day;
- verdict counts of real trials beside sham trials (SCIENCE.md 1: what chance alone produces).

Bootstraps are seeded, so a history is the same every time it is asked for.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from biofeed.sessions.catalogue import Catalogue, Client, SessionRecord

__all__ = [
    "HISTORY_JSON_VERSION",
    "N_BOOTSTRAP",
    "TREND_MIN_SESSIONS",
    "client_history",
    "format_history",
    "format_session",
    "median_ci95",
    "set_point_trend",
]

HISTORY_JSON_VERSION = 1
N_BOOTSTRAP = 2000
TREND_MIN_SESSIONS = 3
"""A slope through two points has no spread to estimate its uncertainty from."""
_MIN_SPAN_DAYS = 1.0
_DAYS_PER_WEEK = 7.0
_TRIAL_KEYS = (
    "onset_s",
    "release_end_s",
    "score",
    "ratio",
    "ratio_ci95",
    "pre_rest_uv",
    "post_rest_uv",
    "persistence_ratio",
)


def median_ci95(
    windows_uv: Sequence[float], rng: np.random.Generator, n_bootstrap: int = N_BOOTSTRAP
) -> list[float] | None:
    """95 % percentile-bootstrap CI of the median of 1 s windows; None with fewer than two."""
    values = np.asarray(windows_uv, dtype=np.float64)
    if values.size < 2:
        return None
    medians = np.median(values[rng.integers(0, values.size, size=(n_bootstrap, values.size))], axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    return [float(low), float(high)]


def _theil_sen_slope(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> float:
    """Median of the slopes between every two points at different x (Theil-Sen)."""
    i, j = np.triu_indices(x.size, k=1)
    dx = x[j] - x[i]
    keep = dx != 0
    return float(np.median((y[j] - y[i])[keep] / dx[keep]))


def _resampled_medians(windows: npt.NDArray[np.float64], rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    return np.asarray(np.median(windows[rng.integers(0, windows.size, size=(n, windows.size))], axis=1))


def set_point_trend(
    days: Sequence[float],
    values_uv: Sequence[float],
    windows_uv: Sequence[Sequence[float]],
    rng: np.random.Generator,
    n_bootstrap: int = N_BOOTSTRAP,
) -> dict[str, Any]:
    """The trend of one channel's set point across sessions (module docstring).

    Parameters
    ----------
    days : sequence of float
        Each session's time, days since the first.
    values_uv : sequence of float
        Each session's set point (the median of its windows), uV.
    windows_uv : sequence of sequence of float
        Each session's 1 s windows behind that set point, uV.
    rng : numpy.random.Generator
        Seeded generator.
    n_bootstrap : int
        Resamples.

    Returns
    -------
    dict
        ``n_sessions``, ``first_uv``, ``last_uv``, ``change_uv``, ``change_ci95_uv``,
        ``slope_uv_per_week``, ``slope_ci95_uv_per_week``, ``method`` and ``note`` (why a part is missing).
    """
    n = len(values_uv)
    out: dict[str, Any] = {
        "n_sessions": n,
        "first_uv": values_uv[0] if n else None,
        "last_uv": values_uv[-1] if n else None,
        "change_uv": None,
        "change_ci95_uv": None,
        "slope_uv_per_week": None,
        "slope_ci95_uv_per_week": None,
        "method": "change: last - first session, CI from resampling each session's 1 s windows; slope: Theil-Sen "
        "over sessions, CI from a two-level bootstrap (sessions, then windows)",
        "note": "",
    }
    if n < 2:
        out["note"] = "a trend needs at least two sessions"
        return out
    first = np.asarray(windows_uv[0], dtype=np.float64)
    last = np.asarray(windows_uv[-1], dtype=np.float64)
    out["change_uv"] = float(values_uv[-1] - values_uv[0])
    if first.size >= 2 and last.size >= 2:
        diff = _resampled_medians(last, rng, n_bootstrap) - _resampled_medians(first, rng, n_bootstrap)
        low, high = np.percentile(diff, [2.5, 97.5])
        out["change_ci95_uv"] = [float(low), float(high)]
    x = np.asarray(days, dtype=np.float64)
    if float(x.max() - x.min()) < _MIN_SPAN_DAYS:
        out["note"] = f"the sessions span less than {_MIN_SPAN_DAYS:g} day: no slope per week"
        return out
    weeks = x / _DAYS_PER_WEEK
    out["slope_uv_per_week"] = _theil_sen_slope(weeks, np.asarray(values_uv, dtype=np.float64))
    if n < TREND_MIN_SESSIONS:
        out["note"] = f"a CI of the slope needs at least {TREND_MIN_SESSIONS} sessions"
        return out
    arrays = [np.asarray(w, dtype=np.float64) for w in windows_uv]
    medians = np.column_stack(
        [
            _resampled_medians(w, rng, n_bootstrap) if w.size else np.full(n_bootstrap, v)
            for w, v in zip(arrays, values_uv, strict=True)
        ]
    )
    slopes = []
    for b in range(n_bootstrap):
        pick = rng.integers(0, n, size=n)
        if np.ptp(weeks[pick]) == 0:
            continue  # every draw the same session: no slope
        slopes.append(_theil_sen_slope(weeks[pick], medians[b, pick]))
    low, high = np.percentile(slopes, [2.5, 97.5])
    out["slope_ci95_uv_per_week"] = [float(low), float(high)]
    return out


def _days(started: Sequence[str]) -> list[float]:
    times = [datetime.fromisoformat(s.replace("Z", "+00:00")) for s in started]
    return [(t - times[0]).total_seconds() / 86400.0 for t in times]


def _trial_json(record: Any) -> dict[str, Any]:
    trial = record.trial
    out = {"channel": record.channel, "trial_index": record.trial_index, "sham": record.sham}
    out |= {key: trial.get(key) for key in _TRIAL_KEYS}
    out |= {"verdict": record.verdict, "verdict_reason": record.verdict_reason, "verdict_source": record.verdict_source}
    return out


def _session_json(
    catalogue: Catalogue,
    session: SessionRecord,
    set_points: dict[str, dict[str, dict[str, Any]]],
    rng: np.random.Generator,
) -> dict[str, Any]:
    trials = catalogue.trials(session)
    recordings = catalogue.recordings(session)
    analysis = catalogue.analysis(recordings[0]) if recordings else {}
    out: dict[str, Any] = {
        "id": session.id,
        "started": session.started,
        "protocol": session.protocol,
        "posture": session.posture,
        "board_profile": session.board_profile,
        "board": analysis.get("board"),
        "calibration_id": session.calibration_id,
        "recordings": [r.path for r in recordings],
    }
    # SCIENCE.md 8: the secondary unit, % of the calibration's pain-free reference contraction (RVC)
    # (a recording of several devices names its channels label.channel, each device with its own calibration)
    reference: dict[str, float] = {}
    if session.calibration_id is not None:
        reference |= catalogue.calibration(session.calibration_id).result.get("reference_contraction_uv") or {}
    for recording in recordings:
        if recording.device_label is not None and recording.calibration_id is not None:
            result = catalogue.calibration(recording.calibration_id).result
            for channel, value_uv in (result.get("reference_contraction_uv") or {}).items():
                reference[f"{recording.device_label}.{channel}"] = value_uv
    for moment in ("before", "after"):
        by_channel = set_points[moment]
        out[f"set_point_{moment}_uv"] = {ch: v["value_uv"] for ch, v in by_channel.items()}
        out[f"set_point_{moment}_rvc_pct"] = {
            ch: 100.0 * v["value_uv"] / reference[ch] if v["value_uv"] is not None and reference.get(ch) else None
            for ch, v in by_channel.items()
        }
        out[f"set_point_{moment}_ci95_uv"] = {
            ch: median_ci95(v["windows_uv"], rng) if v["value_uv"] is not None else None for ch, v in by_channel.items()
        }
    out["trials"] = [_trial_json(t) for t in trials if not t.sham]
    out["sham_trials"] = [_trial_json(t) for t in trials if t.sham]
    real_scores = [t.trial["score"] for t in trials if not t.sham and t.trial.get("score") is not None]
    out["mean_score"] = float(np.mean(real_scores)) if real_scores else None
    return out


def client_history(catalogue: Catalogue, client: Client, *, seed: int = 0) -> dict[str, Any]:
    """A client's sessions and the trend across them.

    Parameters
    ----------
    catalogue : Catalogue
        The catalogue.
    client : Client
        Whose history.
    seed : int
        Seed of the bootstraps.

    Returns
    -------
    dict
        ``{"version", "client": {...}, "sessions": [...], "trend": {...}}`` (docs/sessions.md).
    """
    rng = np.random.default_rng(seed)
    sessions = catalogue.sessions(client)
    points = {s.id: catalogue.set_points(s) for s in sessions}
    rows = [_session_json(catalogue, s, points[s.id], rng) for s in sessions]
    notes = catalogue.notes(client)
    for row in rows:
        row["notes"] = [{"created": n.created, "text": n.text} for n in notes if n.session_id == row["id"]]
    trend: dict[str, Any] = {"set_point_before_uv": {}, "set_point_after_uv": {}}
    for moment in ("before", "after"):
        channels = sorted({ch for s in sessions for ch in points[s.id][moment]})
        for channel in channels:
            usable = []
            for session in sessions:
                value = points[session.id][moment].get(channel)
                if value is not None and value["value_uv"] is not None:
                    usable.append((session.started, value["value_uv"], value["windows_uv"]))
            days = _days([u[0] for u in usable]) if usable else []
            trend[f"set_point_{moment}_uv"][channel] = set_point_trend(
                days, [u[1] for u in usable], [u[2] for u in usable], rng
            )
    real = Counter(t["verdict"] for row in rows for t in row["trials"])
    sham = Counter(t["verdict"] for row in rows for t in row["sham_trials"])
    trend["verdicts"] = {"real": dict(real), "sham": dict(sham)}
    trend["true_fraction"] = {
        "real": real["true"] / sum(real.values()) if real else None,
        "sham": sham["true"] / sum(sham.values()) if sham else None,
    }
    trend["mean_score"] = [row["mean_score"] for row in rows]
    return {
        "version": HISTORY_JSON_VERSION,
        "client": client.to_json() | {"general_notes": [n.text for n in notes if n.session_id is None]},
        "sessions": rows,
        "trend": trend,
    }


def _uv(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.2f}"


def format_session(session: dict[str, Any]) -> list[str]:
    """Readable lines of one session of :func:`client_history`."""
    s = session
    lines = [f"session {s['id']}  {s['started']}  protocol {s['protocol'] or '-'}  board {s['board_profile']}"]
    for channel, before in s["set_point_before_uv"].items():
        after = s["set_point_after_uv"].get(channel)
        lines.append(f"  {channel}: set point before {_uv(before)} uV, after {_uv(after)} uV")
    for t in s["trials"] + s["sham_trials"]:
        kind = "sham " if t["sham"] else "trial"
        score = "-" if t["score"] is None else f"{t['score']:.0f}"
        lines.append(
            f"  {kind} {t['trial_index']} {t['channel']}: {t['verdict']} (score {score}, ratio {_uv(t['ratio'])})"
            f" - {t['verdict_reason']}"
        )
    return lines


def format_history(history: dict[str, Any]) -> str:
    """A readable summary of :func:`client_history`."""
    client = history["client"]
    lines = [f"client {client['pseudonym']}: {len(history['sessions'])} session(s)"]
    for s in history["sessions"]:
        lines += format_session(s)
    for channel, trend in history["trend"]["set_point_before_uv"].items():
        change = trend["change_uv"]
        ci = trend["change_ci95_uv"]
        text = f"trend {channel}: set point before {_uv(trend['first_uv'])} -> {_uv(trend['last_uv'])} uV"
        if change is not None:
            text += f", change {change:+.2f} uV"
            if ci is not None:
                text += f" (95% CI {ci[0]:+.2f} to {ci[1]:+.2f})"
        if trend["slope_uv_per_week"] is not None:
            text += f", {trend['slope_uv_per_week']:+.2f} uV/week"
        if trend["note"]:
            text += f"; {trend['note']}"
        lines.append(text)
    verdicts = history["trend"]["verdicts"]
    lines.append(f"verdicts: real {verdicts['real'] or '-'}, sham {verdicts['sham'] or '-'}")
    return "\n".join(lines)
