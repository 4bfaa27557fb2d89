"""Sham trials measured exactly like real ones: same windows, same criteria, no contraction.

SCIENCE.md 1: every verdict must be falsifiable, against sham trials (same posture and wait, no
contraction). A sham trial's "before" is the set point at its first stay-relaxed cue; its "after"
and "persistence" rests are taken at the same offsets from the end of its release cue as a real
trial's from the end of its release. The verdict comes from the very code that judges real trials
(:class:`~biofeed.dsp.pandiculation.PandiculationTracker`), fed a stand-in contraction of zero
amplitude spanning the sham's cues, so a sham that "reaches true relaxation" shows how often
chance or drift alone would pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from biofeed.dsp.pandiculation import PandiculationTracker, RestWindow, TrialCriteria
from biofeed.dsp.phases import Contraction
from biofeed.dsp.tension import DEFAULT_N_WINDOWS

__all__ = ["SessionWindow", "evaluate_sham_trial"]

_SHAM_KEYS = (
    "pre_rest_uv",
    "post_rest_uv",
    "ratio",
    "ratio_ci95",
    "persistence_ratio",
    "n_pre_windows",
    "n_post_windows",
    "n_persistence_windows",
    "noise_floor_uv",
    "verdict",
    "verdict_reason",
)


@dataclass(frozen=True)
class SessionWindow:
    """One 1 s window of a channel, as the ``window`` events give it.

    Attributes
    ----------
    start_s, end_s : float
        Seconds from the EMG stream's first sample.
    level_uv : float
        Noise-corrected 1 s RMS (NaN when not computable).
    rest : bool
        Overlaps no contraction.
    usable : bool
        Counted in the set point (gated, no fault).
    """

    start_s: float
    end_s: float
    level_uv: float
    rest: bool
    usable: bool


def evaluate_sham_trial(
    windows: Sequence[SessionWindow],
    *,
    channel_index: int,
    sample_rate_hz: float,
    noise_floor_uv: float,
    onset_s: float,
    release_start_s: float,
    release_end_s: float,
    criteria: TrialCriteria | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Judge one sham trial of one channel.

    Parameters
    ----------
    windows : sequence of SessionWindow
        The channel's 1 s windows, in time order.
    channel_index : int
        Row of the channel (seeds the bootstrap as for a real trial).
    sample_rate_hz : float
        EMG rate (times become sample indices as the tracker counts them).
    noise_floor_uv : float
        The channel's noise floor.
    onset_s, release_start_s, release_end_s : float
        The sham's cues, seconds from the EMG stream's first sample.
    criteria : TrialCriteria, optional
        Verdict criteria (SCIENCE.md 6 by default).
    seed : int
        Bootstrap seed.

    Returns
    -------
    dict
        ``onset_s``, ``release_end_s``, the set points and ratio with its CI, the verdict and its
        reason, as in a real trial's JSON; ``sham: true`` and no score (a sham has no contraction
        to score).
    """
    fs = float(sample_rate_hz)
    onset_index = round(onset_s * fs)
    release_end_index = round(release_end_s * fs)
    stand_in = Contraction(
        channel_index=channel_index,
        sample_rate_hz=fs,
        onset_index=onset_index,
        offset_index=release_end_index,
        peak_index=onset_index,
        peak_uv=0.0,
        baseline_uv=0.0,
        baseline_sd_uv=0.0,
        plateau_start_index=onset_index,
        release_start_index=round(release_start_s * fs),
        release_end_index=release_end_index,
        monotonic_fraction=None,
        rebursts=0,
    )
    floors = np.zeros(channel_index + 1)
    floors[channel_index] = noise_floor_uv
    tracker = PandiculationTracker(floors, None, criteria, seed)
    before = [w.level_uv for w in windows if w.usable and w.end_s <= onset_s and math.isfinite(w.level_uv)]
    tracker.start(stand_in, np.asarray(before[-DEFAULT_N_WINDOWS:], dtype=np.float64))
    trial = None
    for w in windows:
        if w.start_s < onset_s:
            continue
        window = RestWindow(channel_index, round(w.start_s * fs), round(w.end_s * fs), w.level_uv, w.rest, w.usable)
        finals = [t for t in tracker.add_window(window) if t.final]
        if finals:
            trial = finals[0]
            break
    if trial is None:
        trial = tracker.finish()[0]
    result = trial.to_json()
    out: dict[str, Any] = {"onset_s": onset_s, "release_start_s": release_start_s, "release_end_s": release_end_s}
    out |= {key: result[key] for key in _SHAM_KEYS}
    out |= {"sham": True, "score": None}
    return out
