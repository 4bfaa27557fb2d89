"""The live view for machines without a display: the same information as a terminal status (no Qt).

On a terminal a table (one row per EMG channel: phase, level, set point, floor, true-relaxation zone,
last verdict) is redrawn a few times a second under a status line (rates, lost packets, latency,
battery, link, recording), and each trial's card and each new warning is printed above it as it
comes. Written to a file or a pipe, the cards and warnings are printed as they come and the channel
lines every ``status_interval_s`` device seconds. At the end, the session's trials as a table.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from biofeed.live.session import LiveSession
from biofeed.live.wording import (
    channel_warnings,
    device_warnings,
    flexion_phase_words,
    format_uv,
    phase_words,
    posture_match,
    status_line,
    summarize_trial,
    zone_limit_uv,
)
from biofeed.protocol.decoder import DecoderStats
from biofeed.runner import AcquisitionResult
from biofeed.sinks.ring_buffer import ChannelState, LiveState

__all__ = ["TerminalStatus", "channel_line", "run_terminal", "trial_card_lines", "trunk_line"]

_VERDICT_STYLE = {
    "true": "bold green",
    "transient": "bold yellow",
    "none": "bold red",
    "not_measurable": "bold magenta",
    "rejected": "bold red",
}


def channel_line(channel: ChannelState, state: LiveState | None = None) -> str:
    """One channel: phase, live level, set point before the trial, floor, zone, last verdict.

    With the session's ``state`` and an IMU, also the posture-match indicator (the posture, or
    whether the trunk is still in the posture the open trial began in).
    """
    parts = [f"{channel.channel:<10}", f"{phase_words(channel):<12}"]
    parts.append(f"level {format_uv(channel.envelope_corrected_uv)}")
    parts.append(f"set point {format_uv(channel.set_point_uv)}")
    if channel.n_contractions:
        parts.append(f"before trial {format_uv(channel.trial_reference_uv)}")
    if channel.noise_floor_uv is not None:
        parts.append(f"floor {format_uv(channel.noise_floor_uv)}")
        parts.append(f"zone \u2264 {format_uv(zone_limit_uv(channel.noise_floor_uv))}")
    if channel.trials:
        parts.append(f"last: {summarize_trial(channel.trials[-1]).verdict}")
    posture = posture_match(channel, state) if state is not None else None
    if posture is not None:
        parts.append(posture.short)
    return "  ".join(parts)


def trunk_line(state: LiveState) -> str | None:
    """The phase of a flexion-relaxation cycle, when the trunk angles show one (else None)."""
    words = flexion_phase_words(state)
    return None if words is None else f"trunk      flexion-relaxation: {words}"


def trial_card_lines(trial: dict[str, object], number: int) -> list[str]:
    """A trial's card as lines of text."""
    s = summarize_trial(trial)
    return [
        f"trial {number} on {s.channel} at {s.time}: {s.verdict}",
        f"  release {s.release}, {s.smoothness}",
        f"  set point {s.levels}, ratio {s.ratio}, at 60-120 s {s.persistence}",
        f"  score {s.score}; {s.reason}",
    ]


def _history_table(state: LiveState) -> Table:
    table = Table(title="trials of this session", expand=False)
    for column in ("#", "channel", "at", "release", "smoothness", "ratio (95% CI)", "score", "verdict"):
        table.add_column(column)
    for number, trial in enumerate(state.trials, start=1):
        s = summarize_trial(trial)
        verdict = Text(s.verdict, style=_VERDICT_STYLE.get(s.verdict_kind, ""))
        table.add_row(str(number), s.channel, s.time, s.release, s.smoothness, s.ratio, s.score, verdict)
    return table


class TerminalStatus:
    """Shows a live session's state on a console.

    Parameters
    ----------
    console : rich.console.Console
    status_interval_s : float
        Device seconds between channel lines when the console is not a terminal.
    """

    def __init__(self, console: Console, *, status_interval_s: float = 5.0) -> None:
        self.console = console
        self.status_interval_s = status_interval_s
        self._n_trials = 0
        self._warnings: set[str] = set()
        self._next_status_s = 0.0
        self._live: Live | None = None

    def __enter__(self) -> TerminalStatus:
        if self.console.is_terminal:
            self._live = Live(console=self.console, refresh_per_second=4, transient=True)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def update(self, state: LiveState, stats: DecoderStats | None, recording_path: Path | None) -> None:
        """Print what is new (trials, warnings) and refresh or print the status."""
        for number, trial in enumerate(state.trials[self._n_trials :], start=self._n_trials + 1):
            for k, line in enumerate(trial_card_lines(trial, number)):
                style = _VERDICT_STYLE.get(str(trial.get("verdict")), "") if k == 0 else ""
                self.console.print(Text(line, style=style))
        self._n_trials = len(state.trials)
        warnings = device_warnings(state)
        for channel in state.channels:
            warnings += channel_warnings(channel, state.now_s)
        for warning in warnings:
            if warning not in self._warnings:
                self.console.print(Text(f"warning: {warning}", style="yellow"))
        self._warnings = set(warnings)
        lines = [status_line(state, stats, recording_path), *(channel_line(c, state) for c in state.channels)]
        trunk = trunk_line(state)
        if trunk is not None:
            lines.append(trunk)
        if self._live is not None:
            self._live.update(Group(*(Text(line) for line in lines)))
        elif state.now_s is not None and state.now_s >= self._next_status_s:
            for line in lines:
                self.console.print(line, highlight=False)
            self._next_status_s = state.now_s + self.status_interval_s

    def finish(self, state: LiveState, stats: DecoderStats | None, recording_path: Path | None) -> None:
        """The last status and the session's trials."""
        self.update(state, stats, recording_path)
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.console.print(status_line(state, stats, recording_path), highlight=False)
        for channel in state.channels:
            self.console.print(channel_line(channel, state), highlight=False)
        if state.trials:
            self.console.print(_history_table(state))
        else:
            self.console.print("no trials in this session")


def run_terminal(session: LiveSession, console: Console, *, poll_interval_s: float = 0.25) -> AcquisitionResult:
    """Run a session with the terminal status until it ends or Ctrl-C; returns how it ended.

    Parameters
    ----------
    session : LiveSession
        Not yet started.
    console : rich.console.Console
        Where to show it.
    poll_interval_s : float
        Host seconds between refreshes.
    """
    with TerminalStatus(console) as view:
        session.start()
        try:
            while not session.join(poll_interval_s):
                view.update(session.ring.state, session.stats(), session.recording_path)
        except KeyboardInterrupt:
            session.stop()
        result = session.wait()
        view.finish(session.ring.state, session.stats(), session.recording_path)
    return result
