"""Scripted exercise protocols: timed cues (contract, release slowly, rest) and sham trials.

A protocol file (``calibration/protocols/<name>.toml``, ``kind = "exercise"``) lists trials; each is
a contraction cue, a slow-release cue and a rest long enough for the persistence window of
SCIENCE.md 6.3 (60-120 s after the release). A **sham** trial (SCIENCE.md 1) keeps the same waits
but cues the person to stay relaxed instead of contracting, so its "before" and "after" rests are
measured exactly like a real trial's and tell what chance alone produces.

:class:`CueSchedule` is pure: given seconds since the protocol started it says which cue is due,
how long it has left and what comes next, so a live window shows it and a person exercising alone
knows what to do. :func:`cue_event` is the line a recorder keeps for each cue (``type: "cue"``),
so trials found later line up with the cues (:meth:`CueSchedule.trial_for_onset`).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

__all__ = [
    "EARLY_ONSET_S",
    "PROTOCOLS_FOLDER",
    "Cue",
    "CueKind",
    "CueSchedule",
    "CueState",
    "ScheduledTrial",
    "cue_event",
    "load_exercise_protocol",
    "protocol_path",
    "read_protocol_file",
    "schedule_offset_from_events",
]

PROTOCOLS_FOLDER = Path(__file__).resolve().parent.parent / "calibration" / "protocols"
"""The protocols shipped with biofeed (package data; ``biofeed/calibration`` links to the top-level folder)."""

EARLY_ONSET_S = 5.0
"""A contraction may start this long before its cue (a person who anticipates) and still belong to it."""


class CueKind(StrEnum):
    """What a cue asks for."""

    REST = "rest"
    CONTRACT = "contract"
    RELEASE = "release"
    STAY_RELAXED = "stay_relaxed"
    """A sham trial's contraction time and release time (two cues): keep resting."""


_DEFAULT_TEXT = {
    CueKind.REST: "Rest. Let the lower back go heavy and stay still.",
    CueKind.CONTRACT: "Contract: gently arch the lower back, about a third of your strength, and hold.",
    CueKind.RELEASE: "Release slowly and evenly, all the way down, without letting go at once.",
    CueKind.STAY_RELAXED: "No contraction this time: stay relaxed and still.",
}


@dataclass(frozen=True)
class Cue:
    """One timed instruction.

    Attributes
    ----------
    index : int
        Position in the schedule.
    kind : CueKind
        What it asks for.
    start_s, end_s : float
        When it is due, seconds since the protocol started.
    text : str
        Words to show.
    trial_index : int or None
        The trial it belongs to; None for the lead-in rest.
    sham : bool
        Part of a sham trial.
    """

    index: int
    kind: CueKind
    start_s: float
    end_s: float
    text: str
    trial_index: int | None
    sham: bool

    @property
    def duration_s(self) -> float:
        """How long it lasts, seconds."""
        return self.end_s - self.start_s

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "index": self.index,
            "kind": self.kind.value,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "text": self.text,
            "trial_index": self.trial_index,
            "sham": self.sham,
        }


@dataclass(frozen=True)
class ScheduledTrial:
    """A trial as scheduled (seconds since the protocol started).

    Attributes
    ----------
    index : int
        Trial number, from 0.
    sham : bool
        Same waits, no contraction.
    onset_s : float
        Start of the contraction cue (of the first stay-relaxed cue for a sham).
    release_start_s, release_end_s : float
        The slow-release cue (for a sham: its second stay-relaxed cue).
    end_s : float
        End of the rest that follows.
    """

    index: int
    sham: bool
    onset_s: float
    release_start_s: float
    release_end_s: float
    end_s: float

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "index": self.index,
            "sham": self.sham,
            "onset_s": self.onset_s,
            "release_start_s": self.release_start_s,
            "release_end_s": self.release_end_s,
            "end_s": self.end_s,
        }


@dataclass(frozen=True)
class CueState:
    """Where a person is in the schedule at one moment.

    Attributes
    ----------
    cue : Cue
        The cue due now.
    elapsed_s, remaining_s : float
        Time into it and left of it.
    fraction : float
        ``elapsed / duration``, 0..1 (for a progress bar).
    next_cue : Cue or None
        What follows; None at the last cue.
    """

    cue: Cue
    elapsed_s: float
    remaining_s: float
    fraction: float
    next_cue: Cue | None


class CueSchedule:
    """A protocol's cues on a time line starting at 0 (the protocol's start).

    Parameters
    ----------
    cues : sequence of Cue
        Back to back, in order, the first starting at 0.
    name : str
        Protocol name.
    posture : str
        Posture the protocol is done in (``lying_supine``, ``standing``...), or "".

    Raises
    ------
    ValueError
        When the cues are not back to back from 0 or a cue has no duration.
    """

    def __init__(self, cues: Sequence[Cue], *, name: str = "", posture: str = "") -> None:
        expected_s = 0.0
        for k, cue in enumerate(cues):
            if cue.index != k or not math.isclose(cue.start_s, expected_s, abs_tol=1e-9) or not cue.end_s > cue.start_s:
                raise ValueError(f"cue {k} must start at {expected_s:g} s and last > 0 s, got {cue}")
            expected_s = cue.end_s
        self.cues = tuple(cues)
        self.name = name
        self.posture = posture
        self.trials = tuple(self._trials())

    def _trials(self) -> Iterable[ScheduledTrial]:
        by_trial: dict[int, list[Cue]] = {}
        for cue in self.cues:
            if cue.trial_index is not None:
                by_trial.setdefault(cue.trial_index, []).append(cue)
        for index, cues in sorted(by_trial.items()):
            sham = cues[0].sham
            onset_s = cues[0].start_s
            # contraction (or stay relaxed), release (or stay relaxed), rest: the second active cue is
            # the release, so a sham's "release" spans the same seconds a real trial's would
            active = [c for c in cues if c.kind is not CueKind.REST]
            release = active[-1]
            yield ScheduledTrial(index, sham, onset_s, release.start_s, release.end_s, cues[-1].end_s)

    @property
    def duration_s(self) -> float:
        """Length of the whole protocol, seconds."""
        return self.cues[-1].end_s if self.cues else 0.0

    def cue_at(self, t_s: float) -> Cue | None:
        """The cue due at ``t_s`` seconds since the start; None before the start or after the end."""
        for cue in self.cues:
            if cue.start_s <= t_s < cue.end_s:
                return cue
        return None

    def state_at(self, t_s: float) -> CueState | None:
        """What to show at ``t_s``: the cue, its countdown and the next one (None outside the protocol)."""
        cue = self.cue_at(t_s)
        if cue is None:
            return None
        elapsed = t_s - cue.start_s
        following = self.cues[cue.index + 1] if cue.index + 1 < len(self.cues) else None
        return CueState(cue, elapsed, cue.end_s - t_s, min(max(elapsed / cue.duration_s, 0.0), 1.0), following)

    def cues_starting(self, after_s: float, until_s: float) -> list[Cue]:
        """Cues whose start lies in ``(after_s, until_s]``: the ones to announce since the last tick.

        A window ticking at any rate calls this with its previous and current time and misses no
        cue; pass ``after_s < 0`` on the first tick so the first cue (at 0) is announced.
        """
        return [c for c in self.cues if after_s < c.start_s <= until_s]

    def trial_for_onset(self, onset_s: float) -> ScheduledTrial | None:
        """The scheduled trial a contraction starting at ``onset_s`` belongs to, or None.

        A contraction belongs to a trial when it starts from :data:`EARLY_ONSET_S` before its cue
        until the end of its release cue. Sham trials are returned too: a contraction inside a sham
        trial spoils it (the caller says so).
        """
        for trial in self.trials:
            if trial.onset_s - EARLY_ONSET_S <= onset_s < trial.release_end_s:
                return trial
        return None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (cues and trials)."""
        return {
            "name": self.name,
            "posture": self.posture,
            "duration_s": self.duration_s,
            "cues": [c.to_json() for c in self.cues],
            "trials": [t.to_json() for t in self.trials],
        }


def protocol_path(name: str, folder: Path | str | None = None) -> Path:
    """The file of a protocol given by name (in ``folder``, default :data:`PROTOCOLS_FOLDER`) or by path.

    Raises
    ------
    ValueError
        When there is no such protocol; the message lists the known ones.
    """
    candidate = Path(name)
    if candidate.suffix == ".toml" and candidate.is_file():
        return candidate
    base = Path(folder or PROTOCOLS_FOLDER)
    path = base / f"{name}.toml"
    if path.is_file():
        return path
    known = ", ".join(sorted(p.stem for p in base.glob("*.toml")))
    raise ValueError(f"no protocol {name!r}; known: {known or '(none)'} (or give a path to a .toml file)")


def read_protocol_file(path: Path, kind: str) -> dict[str, Any]:
    """Parse a protocol file and check its ``kind`` (``exercise`` or ``calibration``).

    Raises
    ------
    ValueError
        For invalid TOML or another kind of protocol.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    if data.get("kind") != kind:
        raise ValueError(f"{path}: kind must be {kind!r} for this use, got {data.get('kind')!r}")
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise ValueError(f"{path}: name must be non-empty text")
    return data


def _seconds(table: Mapping[str, Any], key: str, default: float | None, path: Path) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{path}: {key} must be a positive number of seconds, got {value!r}")
    return float(value)


def load_exercise_protocol(name: str, folder: Path | str | None = None) -> CueSchedule:
    """Read an exercise protocol into its :class:`CueSchedule`.

    Parameters
    ----------
    name : str
        A protocol name in ``folder`` (default :data:`PROTOCOLS_FOLDER`) or a path to a ``.toml``.
    folder : Path or str, optional
        Where named protocols live.

    Returns
    -------
    CueSchedule

    Raises
    ------
    ValueError
        Unknown protocol, invalid file, a trial kind other than ``real`` or ``sham``, or no trial.
    """
    path = protocol_path(name, folder)
    data = read_protocol_file(path, "exercise")
    timing = data.get("timing", {})
    text = {kind: str(data.get("text", {}).get(kind.value, default)) for kind, default in _DEFAULT_TEXT.items()}
    trials = data.get("trial", [])
    if not isinstance(trials, list) or not trials:
        raise ValueError(f"{path}: a protocol needs at least one [[trial]]")
    protocol_name = str(data["name"])
    cues: list[Cue] = []
    t_s = 0.0

    def add(kind: CueKind, duration_s: float, trial_index: int | None, sham: bool) -> None:
        nonlocal t_s
        cues.append(Cue(len(cues), kind, t_s, t_s + duration_s, text[kind], trial_index, sham))
        t_s += duration_s

    add(CueKind.REST, _seconds(data, "lead_in_s", None, path), None, False)
    for index, trial in enumerate(trials):
        kind = trial.get("kind", "real")
        if kind not in ("real", "sham"):
            raise ValueError(f"{path}: trial {index} kind must be 'real' or 'sham', got {kind!r}")
        contract_s = _seconds(trial, "contract_s", timing.get("contract_s"), path)
        release_s = _seconds(trial, "release_s", timing.get("release_s"), path)
        rest_s = _seconds(trial, "rest_s", timing.get("rest_s"), path)
        if kind == "sham":
            # the same cadence as a real trial: two cues where it has contract and release
            add(CueKind.STAY_RELAXED, contract_s, index, True)
            add(CueKind.STAY_RELAXED, release_s, index, True)
        else:
            add(CueKind.CONTRACT, contract_s, index, False)
            add(CueKind.RELEASE, release_s, index, False)
        add(CueKind.REST, rest_s, index, kind == "sham")
    return CueSchedule(cues, name=protocol_name, posture=str(data.get("posture", "")))


def cue_event(
    cue: Cue, time_s: float, sample_index: int | None = None, protocol: str = "", stream: str | None = None
) -> dict[str, Any]:
    """The ``events.jsonl`` line for a cue shown at ``time_s`` (seconds from the EMG stream's first sample).

    ``sample_index`` (the device's sample counter of ``stream`` where the cue starts) places the cue
    exactly in any recording of the stream, also one started after the stream's first sample
    (:func:`schedule_offset_from_events`).

    Returns
    -------
    dict
        ``type: "cue"``, ``stream``, ``time_s``, ``sample_index``, ``protocol``, ``cue`` (kind),
        ``cue_index``, ``protocol_time_s`` (the cue's start in the schedule), ``trial_index``, ``sham``.
    """
    return {
        "type": "cue",
        "stream": stream,
        "channel": None,
        "sample_index": sample_index,
        "time_s": float(time_s),
        "protocol": protocol,
        "cue": cue.kind.value,
        "cue_index": cue.index,
        "protocol_time_s": cue.start_s,
        "trial_index": cue.trial_index,
        "sham": cue.sham,
    }


def schedule_offset_from_events(
    events: Iterable[Mapping[str, Any]], stream_origins: Mapping[str, tuple[int, float]] | None = None
) -> float | None:
    """Where the protocol's time 0 lies in a recording (seconds from the EMG stream's first sample).

    Taken from the first ``cue`` event: its time minus its ``protocol_time_s``. Its time is its
    ``sample_index`` counted from the recording's first sample of its ``stream`` when
    ``stream_origins`` gives that stream as ``(first sample index, sample rate in Hz)``, else its
    ``time_s``. None when the recording holds no cue.
    """
    origins = stream_origins or {}
    for event in events:
        if event.get("type") == "cue":
            time_s, protocol_s = event.get("time_s"), event.get("protocol_time_s")
            origin = origins.get(str(event.get("stream")))
            index = event.get("sample_index")
            if origin is not None and isinstance(index, int):
                time_s = (index - origin[0]) / origin[1]
            if isinstance(time_s, int | float) and isinstance(protocol_s, int | float):
                return float(time_s) - float(protocol_s)
    return None
