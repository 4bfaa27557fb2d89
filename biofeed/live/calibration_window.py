"""``biofeed calibrate`` with a display: the live window with the guided calibration's panel.

The device is shown live (signals, envelope, trunk angles) while a
:class:`~biofeed.live.calibration_panel.CalibrationPanel` walks the person through the calibration
protocol, one confirmed step at a time; everything is recorded to the calibration's folder. The
calibration is stored with the client exactly as the headless path stores it
(:func:`~biofeed.sessions.commands.store_calibration`): when Finish is pressed after the last step,
when the device stops, or when the window is closed (the steps not ended then fail, and the result
is stored all the same). The same lines as headless are printed on stdout at the end.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import TextIO

from biofeed.errors import CalibrationError
from biofeed.live.app import DEFAULT_WINDOW_S
from biofeed.live.recording_switch import RecordingSwitch
from biofeed.live.session import LiveSession
from biofeed.runner import AcquisitionResult
from biofeed.sessions.board_notice import BoardNoticeSink
from biofeed.sessions.calibrate import CalibrationProtocol, CalibrationRun
from biofeed.sessions.calibration_sink import CalibrationSink
from biofeed.sessions.commands import store_calibration
from biofeed.sources import open_source

__all__ = ["run_calibration_window"]

_STORE_POLL_MS = 200


class _Storing:
    """Stores the calibration once, when acquisition has ended; keeps what to print and return."""

    def __init__(self, client: str, sink: CalibrationSink, recording: RecordingSwitch, folder: Path) -> None:
        self.client = client
        self.sink = sink
        self.recording = recording
        self.folder = folder
        self.text: str | None = None
        self.complete = False
        self.result: AcquisitionResult | None = None

    def store(self, result: AcquisitionResult) -> str:
        """Close the recording and store the calibration (the first time only); the lines it printed."""
        if self.text is None:
            self.result = result
            error = str(result.error) if result.error else None
            self.recording.close(summary={"error": error, "calibration": self.sink.run.protocol.name})
            out = io.StringIO()
            self.complete = store_calibration(self.client, self.sink, self.folder, out=out)
            self.text = out.getvalue()
        return self.text


def run_calibration_window(
    device_url: str,
    client: str,
    protocol: CalibrationProtocol,
    folder: Path,
    *,
    out: TextIO = sys.stdout,
    window_s: float = DEFAULT_WINDOW_S,
) -> int:
    """Run the guided calibration in the live window and store it with ``client``; returns the exit code.

    Parameters
    ----------
    device_url : str
        Any source URL.
    client : str
        The client's pseudonym (the client exists).
    protocol : CalibrationProtocol
        The steps.
    folder : Path
        The recording of the calibration (a new folder).
    out : TextIO
        Where the calibration's steps, results and storage are printed at the end.
    window_s : float
        Seconds of signal shown.

    Returns
    -------
    int
        0 when every required step passed, 1 otherwise (the result is stored all the same).

    Raises
    ------
    CalibrationError
        When the device stopped with an error (the result is stored first).
    """
    from biofeed.live.board_banner import BoardBanner
    from biofeed.live.calibration_panel import CalibrationPanel
    from biofeed.live.qt import QtCore
    from biofeed.live.window import LiveWindow, run_window

    sink = CalibrationSink(CalibrationRun(protocol, auto_advance=False))
    notice = BoardNoticeSink(None)  # the window's banner shows it
    source = open_source(device_url)
    recording = RecordingSwitch(device_url, client=client)
    storing = _Storing(client, sink, recording, folder)
    failure: list[BaseException] = []
    try:
        recording.start(folder)
        session = LiveSession(source, recording, sinks=[sink, notice])

        def setup(window: LiveWindow) -> None:
            window.record_action.setEnabled(False)  # the calibration records into its own folder throughout
            banner = BoardBanner(notice)
            window.add_panel(banner, banner.refresh)
            panel = CalibrationPanel(sink)
            window.add_panel(panel, panel.refresh)
            panel.finish_requested.connect(session.stop)
            panel.refresh()

            def store_when_ended() -> None:
                if storing.text is not None or not session.finished:
                    return
                try:
                    text = storing.store(session.wait())
                except BaseException as exc:  # handed to the caller after the event loop ends
                    failure.append(exc)
                    panel.show_outcome(f"the calibration could not be stored: {exc}", ok=False)
                    return
                lines = text.strip().splitlines()
                stored = next((k for k, line in enumerate(lines) if " stored with " in line), 0)
                panel.show_outcome("\n".join(lines[stored:]), ok=storing.complete)
                window.statusBar().showMessage("calibration stored: close the window when you like")

            watcher = QtCore.QTimer(window)
            watcher.setInterval(_STORE_POLL_MS)
            watcher.timeout.connect(store_when_ended)
            watcher.start()

        result = run_window(session, window_s=window_s, setup=setup)
    except BaseException:
        recording.close(summary={"error": "the calibration window failed", "calibration": protocol.name})
        raise
    finally:
        source.close()
    if failure:
        raise failure[0]
    out.write(storing.store(result))
    if result.error is not None:
        raise CalibrationError(f"the device stopped during calibration: {result.error}")
    return 0 if storing.complete else 1
