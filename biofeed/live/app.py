"""``biofeed live`` and ``biofeed demo``: the window, the terminal status, or a screenshot.

:func:`run_live` opens a source, optionally starts recording at once, and shows the session in the
window (Qt is imported here, before the source opens: a serial port nobody reads overflows) or, with
``headless`` or when no display is available (saying so on stderr), as a terminal status.
``screenshot`` renders the window offscreen to a PNG once acquisition ends (``duration_s`` is then
required). At the end it prints each recording's folder and the decoder's summary, like ``record``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console

from biofeed.home import new_recording_path
from biofeed.live.recording_switch import RecordingSwitch
from biofeed.live.session import LiveSession
from biofeed.live.terminal import run_terminal
from biofeed.runner import AcquisitionResult, Sink
from biofeed.sinks.ring_buffer import DEFAULT_CAPACITY_S, RingBufferSink
from biofeed.sources import open_source
from biofeed.status_line import format_summary

__all__ = ["DEFAULT_WINDOW_S", "display_available", "run_demo", "run_live"]

DEFAULT_WINDOW_S = 10.0
"""Seconds of signal the window shows at first."""

_EXIT_OK = 0
_EXIT_ERROR = 1


def display_available(environ: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether a window can be shown: a display server, or Qt's offscreen platform asked for.

    Parameters
    ----------
    environ : mapping, optional
        The environment (default ``os.environ``).
    platform : str, optional
        ``sys.platform`` (the default); macOS and Windows always have a display.
    """
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if env.get("QT_QPA_PLATFORM", "").startswith("offscreen"):
        return True
    if platform in ("darwin", "win32"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def run_live(
    device_url: str,
    *,
    record_dir: Path | None = None,
    client: str | None = None,
    headless: bool = False,
    screenshot: Path | None = None,
    duration_s: float | None = None,
    window_s: float = DEFAULT_WINDOW_S,
    lsl: bool = False,
    protocol: str | None = None,
) -> int:
    """Show a device live; returns the exit code.

    Parameters
    ----------
    device_url : str
        Any source URL (``serial://``, ``ble://``, ``sim://``, ``replay://``, ``lsl://``, ``brainflow://``).
    record_dir : Path or None
        Record from the first frame into this folder (else the window's Record button starts a
        recording in a new folder under ``BIOFEED_HOME``).
    client : str or None
        Client pseudonym: their calibration is applied, and each recording is stored with it and
        filed as their session (:class:`~biofeed.live.session_plan.SessionPlan`).
    headless : bool
        The terminal status instead of the window.
    screenshot : Path or None
        Render the window offscreen to this PNG when acquisition ends (needs ``duration_s``).
    duration_s : float or None
        Device seconds to acquire (None: until the window closes, Ctrl-C, or the source ends).
    window_s : float
        Seconds of signal shown.
    lsl : bool
        Also publish on Lab Streaming Layer.
    protocol : str or None
        An exercise protocol (``calibration/protocols/NAME.toml``) whose cues are shown, and written
        to the recording as they start.

    Raises
    ------
    ValueError
        For conflicting options or a bad URL.
    BiofeedError
        When the source or the recording cannot be opened.
    """
    if screenshot is not None and duration_s is None:
        raise ValueError("--screenshot needs --duration S: the picture is taken when acquisition ends")
    if screenshot is not None and headless:
        raise ValueError("--screenshot renders the window; leave out --headless")
    if not 0 < window_s <= DEFAULT_CAPACITY_S:
        raise ValueError(f"--window must be in (0, {DEFAULT_CAPACITY_S:g}] seconds, got {window_s:g}")
    use_window = not headless
    if screenshot is not None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # rendered to a file, never on a screen
    elif use_window and not display_available():
        print(
            "biofeed: no display (DISPLAY and WAYLAND_DISPLAY are unset): showing the terminal status", file=sys.stderr
        )
        use_window = False
    if use_window:
        import biofeed.live.window  # noqa: F401  (Qt loads before the port opens)
    from biofeed.live.session_plan import SessionPlan

    plan = SessionPlan(client, protocol)  # an unknown client or protocol is refused before the port opens
    source = open_source(device_url)
    recording = RecordingSwitch(device_url, client=client)
    sinks: list[Sink] = plan.sinks(recording, terminal=not use_window)
    result: AcquisitionResult | None = None
    try:
        if record_dir is not None:
            recording.start(record_dir)
        if lsl:  # nothing listens on the network unless asked
            from biofeed.sinks.lsl_outlet import LslOutletSink

            sinks.append(LslOutletSink())
        session = LiveSession(
            source, recording, ring=RingBufferSink(), pipeline=plan.pipeline(), duration_s=duration_s, sinks=sinks
        )
        if use_window:
            from biofeed.live.window import run_window

            result = run_window(session, window_s=window_s, screenshot=screenshot, setup=plan.add_panels)
        else:
            result = run_terminal(session, Console(highlight=False, soft_wrap=True))
    finally:
        source.close()
        error = result.error if result is not None else None
        recording.close(summary={"error": str(error) if error else None})
    if result is None:
        raise RuntimeError("the live view ended without a result")
    for path in recording.paths:
        print(f"recording: {path}")
    if screenshot is not None:
        print(f"screenshot: {screenshot}")
    print(format_summary(result.stats))
    plan.file_recordings(recording.paths)
    if result.error is not None:
        print(f"biofeed: error: {result.error} (everything received before it is recorded)", file=sys.stderr)
        return _EXIT_ERROR
    return _EXIT_OK


def run_demo(
    scenario: str = "pandiculation",
    *,
    seed: int = 0,
    duration_s: float | None = None,
    out_dir: Path | None = None,
    headless: bool = False,
    speed: float = 1.0,
) -> int:
    """The live view on the built-in simulator, recording to a new folder; returns the exit code.

    Parameters
    ----------
    scenario : str
        A simulator scenario (docs/simulator.md).
    seed : int
        The simulation's seed.
    duration_s : float or None
        Device seconds (None: the scenario's whole script, about 460 s for ``pandiculation``).
    out_dir : Path or None
        Recording folder (default: a new ``demo-<time>`` folder under ``BIOFEED_HOME/recordings``).
    headless : bool
        The terminal status instead of the window (also when no display is available).
    speed : float
        1 real time, 0 as fast as possible.
    """
    url = f"sim://{scenario}?seed={seed}&speed={speed:g}"
    out = out_dir if out_dir is not None else new_recording_path("demo")
    print(f"demo: simulated '{scenario}' board ({url}), recording to {out}", flush=True)
    return run_live(url, record_dir=out, headless=headless, duration_s=duration_s)
