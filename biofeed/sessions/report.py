"""Self-contained HTML reports a practitioner can hand to a client (``biofeed report``).

One file, no external resources: plots are PNGs drawn with matplotlib's Agg canvas (no display,
no global pyplot state) and embedded as ``data:`` URIs. A recording report shows the envelope with
its phases, cues and set point, then each trial (its before, after and persistence rests); a client
report adds the set point across sessions with its uncertainty and real trials beside sham trials.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from biofeed.sessions.session_analysis import POST_SESSION_DELAY_S

__all__ = [
    "MAX_DETAILED_SESSIONS",
    "client_report_html",
    "plot_envelope_png",
    "plot_set_points_png",
    "plot_trial_png",
    "recording_report_html",
    "write_private_text",
]

MAX_DETAILED_SESSIONS = 3
"""A client report draws the envelope and trials of this many latest sessions."""
_FLOOR_DISPLAY_UV = 0.3  # a log axis cannot show 0: noise-corrected levels below this are drawn at it
_PRE_S = 30.0
_POST_S = (10.0, 40.0)
_PERSISTENCE_S = (60.0, 120.0)
_CUE_COLOURS = {"contract": "#f4a259", "release": "#f7d488", "stay_relaxed": "#c9c9c9"}
_VERDICT_WORDS = {
    "true": "true relaxation: lower, near the noise floor, and lasting",
    "transient": "lower at first, but it did not last",
    "none": "no lasting drop to true relaxation",
    "not_measurable": "not measurable",
    "rejected": "rejected (the measurement could not be trusted)",
}
_CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 60em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0; } td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f2f2f2; text-align: left; } img { max-width: 100%; }
.warning { background: #fff3cd; border: 1px solid #e0c060; padding: 0.6em; }
.note { color: #555; font-size: 0.9em; }
"""


def _figure(width_in: float, height_in: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), dpi=100)
    # fixed margins: a layout engine draws every figure twice, which doubles a report's time
    figure.subplots_adjust(left=0.07, right=0.985, bottom=0.2, top=0.88)
    FigureCanvasAgg(figure)
    return figure


def _log_uv_axis(ax: Any) -> None:
    """A log uV axis labelled 0.5, 1, 2, 5, 10, 20, 50 ... rather than in powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _display(values: Sequence[float | None]) -> list[float]:
    return [max(v, _FLOOR_DISPLAY_UV) if v is not None and math.isfinite(v) else math.nan for v in values]


def _set_point_line(analysis: Mapping[str, Any], channel: str) -> tuple[list[float], list[float]]:
    w = analysis["windows"].get(channel, {})
    return list(w.get("end_s", [])), _display(w.get("set_point_uv", []))


def _floor(analysis: Mapping[str, Any], channel: str) -> float | None:
    for c in analysis["channels"]:
        if c["name"] == channel and c["noise_floor_uv"] is not None:
            return float(c["noise_floor_uv"])
    return None


def _shade_cues(ax: Any, analysis: Mapping[str, Any], start_s: float, end_s: float) -> None:
    protocol = analysis.get("protocol")
    if not protocol:
        return
    offset = protocol["start_s"]
    for cue in protocol["cues"]:
        colour = _CUE_COLOURS.get(cue["kind"])
        a, b = cue["start_s"] + offset, cue["end_s"] + offset
        if colour is not None and b > start_s and a < end_s:
            ax.axvspan(a, b, color=colour, alpha=0.35, lw=0)


def plot_envelope_png(analysis: Mapping[str, Any], channel: str) -> bytes:
    """The envelope of one channel with its contractions, cues, set point and noise floor, as PNG.

    Parameters
    ----------
    analysis : mapping
        A session analysis (:func:`~biofeed.sessions.session_analysis.analyse_session_recording`).
    channel : str
        The channel.

    Returns
    -------
    bytes
        PNG image.
    """
    figure = _figure(10.0, 3.4)
    ax = figure.add_subplot()
    envelope = analysis["envelope"].get(channel, {"time_s": [], "uv": []})
    times = envelope["time_s"]
    end_s = times[-1] if times else 1.0
    _shade_cues(ax, analysis, 0.0, end_s)
    for t in analysis["trials"]:
        if t["channel"] == channel and t.get("release_end_s") is not None:
            ax.axvspan(t["onset_s"], t["release_start_s"], color="#d1495b", alpha=0.18, lw=0)
            ax.axvspan(t["release_start_s"], t["release_end_s"], color="#2e86ab", alpha=0.18, lw=0)
    ax.plot(times, _display(envelope["uv"]), color="#333", lw=0.7, label="EMG envelope (250 ms RMS)")
    x, y = _set_point_line(analysis, channel)
    ax.step(x, y, where="post", color="#1b998b", lw=1.8, label="set point (resting tension)")
    floor = _floor(analysis, channel)
    if floor:
        ax.axhline(floor, color="#888", ls="--", lw=1.0, label=f"sensor noise floor {floor:.2f} uV")
    _log_uv_axis(ax)
    ax.set_xlim(0.0, end_s)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("uV (noise removed)")
    ax.set_title(f"{channel}: contraction (red), release (blue), cues (orange/yellow/grey)")
    ax.legend(loc="upper right", fontsize=8)
    return _png(figure)


def plot_trial_png(analysis: Mapping[str, Any], trial: Mapping[str, Any]) -> bytes:
    """One trial (real or sham): the envelope around it, its before, after and persistence rests, as PNG."""
    channel = trial["channel"]
    onset = trial["onset_s"]
    release_end = trial["release_end_s"]
    start_s, end_s = onset - _PRE_S - 5.0, release_end + _PERSISTENCE_S[1] + 5.0
    figure = _figure(10.0, 3.0)
    ax = figure.add_subplot()
    _shade_cues(ax, analysis, start_s, end_s)
    ax.axvspan(onset - _PRE_S, onset, color="#1b998b", alpha=0.12, lw=0, label="before (set point)")
    ax.axvspan(release_end + _POST_S[0], release_end + _POST_S[1], color="#2e86ab", alpha=0.15, lw=0, label="after")
    ax.axvspan(
        release_end + _PERSISTENCE_S[0],
        release_end + _PERSISTENCE_S[1],
        color="#8e7dbe",
        alpha=0.12,
        lw=0,
        label="a minute later",
    )
    envelope = analysis["envelope"].get(channel, {"time_s": [], "uv": []})
    pairs = [(t, v) for t, v in zip(envelope["time_s"], envelope["uv"], strict=True) if start_s <= t <= end_s]
    ax.plot([p[0] for p in pairs], _display([p[1] for p in pairs]), color="#333", lw=0.7)
    for key, colour, span in (
        ("pre_rest_uv", "#1b998b", (onset - _PRE_S, onset)),
        ("post_rest_uv", "#2e86ab", (release_end + _POST_S[0], release_end + _POST_S[1])),
    ):
        if trial.get(key) is not None:
            ax.hlines(max(trial[key], _FLOOR_DISPLAY_UV), *span, color=colour, lw=2.5)
    floor = trial.get("noise_floor_uv")
    if floor:
        ax.axhline(floor, color="#888", ls="--", lw=1.0)
    _log_uv_axis(ax)
    ax.set_xlim(start_s, end_s)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("uV (noise removed)")
    kind = "sham trial" if trial.get("sham") else "trial"
    score = "" if trial.get("score") is None else f", score {trial['score']:.0f}"
    ax.set_title(f"{kind} {trial.get('trial_index')} ({channel}): {trial['verdict']}{score}")
    ax.legend(loc="upper right", fontsize=8)
    return _png(figure)


def plot_set_points_png(history: Mapping[str, Any]) -> bytes:
    """Set point before and after each session, with 95 % CIs, per channel, as PNG."""
    sessions = history["sessions"]
    channels = sorted({ch for s in sessions for ch in s["set_point_before_uv"]})
    figure = _figure(10.0, 3.4)
    ax = figure.add_subplot()
    numbers = list(range(1, len(sessions) + 1))
    for k, channel in enumerate(channels):
        shift = (k - (len(channels) - 1) / 2) * 0.12
        for moment, marker, fill in (("before", "o", True), ("after", "s", False)):
            values, low, high = [], [], []
            for s in sessions:
                value = s[f"set_point_{moment}_uv"].get(channel)
                ci = s[f"set_point_{moment}_ci95_uv"].get(channel)
                values.append(math.nan if value is None else value)
                low.append(0.0 if value is None or ci is None else value - ci[0])
                high.append(0.0 if value is None or ci is None else ci[1] - value)
            offset = shift + (0.05 if moment == "after" else -0.05)
            ax.errorbar(
                [n + offset for n in numbers],
                values,
                yerr=[low, high],
                fmt=marker,
                mfc=None if fill else "white",
                capsize=3,
                label=f"{channel} {moment}",
            )
    ax.set_xticks(numbers, [f"{n}\n{s['started'][:10]}" for n, s in zip(numbers, sessions, strict=True)])
    ax.set_xlim(0.5, len(sessions) + 0.5)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("session")
    ax.set_ylabel("set point (uV, 95% CI)")
    ax.set_title("Resting tension before and after each session")
    ax.legend(fontsize=8, ncol=max(1, len(channels)))
    return _png(figure)


def _number(value: Any, fmt: str = ".2f") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, fmt)


def _board_html(analysis: Mapping[str, Any]) -> str:
    parts = []
    for stream, board in (analysis.get("board") or {}).items():
        if board is None:
            parts.append(f"<p class='note'>{html.escape(stream)}: no board profile; resolution not checked.</p>")
        elif board["resolves_true_relaxation"]:
            parts.append(f"<p class='note'>Board {html.escape(board['title'])}: {html.escape(board['reason'])}.</p>")
        else:
            parts.append(
                f"<p class='warning'>True relaxation is <b>not measurable with this board</b> "
                f"({html.escape(board['title'])}): {html.escape(board['reason'])}.</p>"
            )
    return "\n".join(parts)


def _trial_rows(trials: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for t in trials:
        ci = t.get("ratio_ci95")
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (
                    "sham" if t.get("sham") else "real",
                    t.get("trial_index"),
                    t["channel"],
                    _number(t.get("pre_rest_uv")),
                    _number(t.get("post_rest_uv")),
                    _number(t.get("ratio")),
                    f"{ci[0]:.2f}-{ci[1]:.2f}" if ci else "-",
                    t["verdict"],
                    _number(t.get("score"), ".0f"),
                    t.get("verdict_reason", ""),
                )
            )
            + "</tr>"
        )
    header = "".join(
        f"<th>{h}</th>"
        for h in ("kind", "trial", "channel", "before uV", "after uV", "ratio", "95% CI", "verdict", "score", "why")
    )
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def _session_html(analysis: Mapping[str, Any], heading: str) -> str:
    recording = analysis["recording"]
    parts = [f"<h2>{html.escape(heading)}</h2>", _board_html(analysis)]
    calibration = analysis["calibration"]
    applied = "yes" if calibration["applied"] else f"no ({html.escape(calibration['reason'])})"
    parts.append(
        f"<p class='note'>Recording {html.escape(str(recording['path']))}, started "
        f"{html.escape(str(recording['created']))}, {recording['duration_s']:.0f} s; "
        f"calibration applied: {applied}.</p>"
    )
    rows = []
    for channel in analysis["channels"]:
        name = channel["name"]
        before = analysis["set_points"]["before"].get(name, {})
        after = analysis["set_points"]["after"].get(name, {})
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{_number(channel['noise_floor_uv'])}</td>"
            f"<td>{_number(before.get('value_uv'))}</td><td>{_number(after.get('value_uv'))}</td></tr>"
        )
    parts.append(
        "<table><tr><th>channel</th><th>noise floor uV</th><th>set point before uV</th>"
        f"<th>set point after uV (from {POST_SESSION_DELAY_S:g} s after the last release)</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    for channel in analysis["channels"]:
        parts.append(_img(plot_envelope_png(analysis, channel["name"]), f"envelope of {channel['name']}"))
    trials = list(analysis["trials"]) + list(analysis["sham_trials"])
    if trials:
        parts.append(_trial_rows(trials))
    for trial in trials:
        if trial.get("onset_s") is not None and trial.get("release_end_s") is not None:
            parts.append(_img(plot_trial_png(analysis, trial), f"trial {trial.get('trial_index')} {trial['channel']}"))
    for warning in analysis.get("warnings", []):
        parts.append(f"<p class='note'>Note: {html.escape(warning)}</p>")
    return "\n".join(parts)


def _explanation() -> str:
    words = "".join(f"<li><b>{k}</b>: {html.escape(v)}</li>" for k, v in _VERDICT_WORDS.items())
    return (
        "<h2>How to read this</h2><p>The <b>set point</b> is the resting tension of the lower-back muscles, in "
        "microvolts (uV) with the sensor's own noise removed. A pandiculation is a gentle contraction, a slow "
        "release and full rest; the question is whether the rest after it is lower, close to the sensor's noise "
        "floor, and still lower a minute later. A <b>sham trial</b> is the same wait without a contraction: it "
        f"shows what rest alone does.</p><ul>{words}</ul>"
    )


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def recording_report_html(analysis: Mapping[str, Any], *, client: str | None = None) -> str:
    """The report of one recording (a session analysis), as one HTML document."""
    who = client or analysis["recording"].get("client")
    title = f"biofeed session report{f' for {who}' if who else ''}"
    return _page(title, _session_html(analysis, "Session") + _explanation())


def client_report_html(history: Mapping[str, Any], analyses: Sequence[Mapping[str, Any]]) -> str:
    """The report of a client: progress across sessions, then the latest sessions in detail.

    Parameters
    ----------
    history : mapping
        :func:`~biofeed.sessions.history.client_history`.
    analyses : sequence of mapping
        Session analyses of the sessions to show in detail (latest last).
    """
    client = history["client"]
    parts = [f"<p>{len(history['sessions'])} session(s).</p>"]
    if history["sessions"]:
        parts.append("<h2>Resting tension across sessions</h2>")
        parts.append(_img(plot_set_points_png(history), "set point across sessions"))
        rows = []
        for channel, trend in history["trend"]["set_point_before_uv"].items():
            ci = trend["change_ci95_uv"]
            rows.append(
                f"<tr><td>{html.escape(channel)}</td><td>{_number(trend['first_uv'])}</td><td>{_number(trend['last_uv'])}"
                f"</td><td>{_number(trend['change_uv'], '+.2f')}</td>"
                f"<td>{'-' if ci is None else f'{ci[0]:+.2f} to {ci[1]:+.2f}'}</td>"
                f"<td>{_number(trend['slope_uv_per_week'], '+.2f')}</td><td>{html.escape(trend['note'])}</td></tr>"
            )
        parts.append(
            "<table><tr><th>channel</th><th>first uV</th><th>last uV</th><th>change uV</th><th>95% CI</th>"
            "<th>uV per week</th><th>note</th></tr>" + "".join(rows) + "</table>"
        )
        verdicts = history["trend"]["verdicts"]
        kinds = sorted(set(verdicts["real"]) | set(verdicts["sham"]))
        parts.append(
            "<h2>Real trials beside sham trials</h2><table><tr><th>verdict</th><th>real</th><th>sham</th></tr>"
            + "".join(
                f"<tr><td>{html.escape(k)}</td><td>{verdicts['real'].get(k, 0)}</td>"
                f"<td>{verdicts['sham'].get(k, 0)}</td></tr>"
                for k in kinds
            )
            + "</table>"
        )
    for analysis in analyses:
        parts.append(_session_html(analysis, f"Session of {str(analysis['recording']['created'])[:19]}"))
    parts.append(_explanation())
    return _page(f"biofeed progress report for {client['pseudonym']}", "\n".join(parts))


def write_private_text(path: Path | str, text: str) -> Path:
    """Write a report readable by its owner only (0o600: it holds health data), replacing any old one."""
    target = Path(path)
    with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as file:
        os.fchmod(file.fileno(), 0o600)  # an old file keeps its mode through O_CREAT
        file.write(text)
    return target
