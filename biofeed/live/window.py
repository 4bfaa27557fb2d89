"""The live biofeedback window: it polls the ring buffer from a QTimer and draws what changed.

Layout: a toolbar (record, marker label and button, pause, time window, channels), a line of
signal-quality warnings, one :class:`~biofeed.live.channel_panel.ChannelPanel` per EMG channel (left
and right side by side when both exist), and beside them the session's trials and the trunk angles;
a status bar with sample rates, lost packets, latency, battery, link and recording.

Keys: Space pauses the display (acquisition and recording go on), M places a marker with the label
typed in the toolbar (code 128), 1-9 place markers with codes 128-136, + and - change the time
window, Ctrl+R starts or stops recording.

Threads: the worker fills the ring buffer; this window only copies from it (:meth:`LiveWindow.refresh`,
called by the timer, or directly by tests) and draws. It never filters.
"""

from __future__ import annotations

import functools
import math
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from biofeed.live.app import DEFAULT_WINDOW_S
from biofeed.live.channel_panel import ChannelPanel
from biofeed.live.qt import QtCore, QtGui, QtWidgets, application
from biofeed.live.session import HOST_MARKER_CODES, MAX_MARKER_LABEL, LiveSession
from biofeed.live.trial_cards import TrialHistory
from biofeed.live.trunk_panel import TrunkPanel
from biofeed.live.wording import channel_warnings, device_warnings, posture_match, status_line
from biofeed.protocol.decoder import DecoderStats
from biofeed.runner import AcquisitionResult
from biofeed.sinks.ring_buffer import ChannelState, LiveState, RingBufferSink, StreamWindow

__all__ = ["DEFAULT_WINDOW_S", "WINDOW_CHOICES_S", "LiveControls", "LiveWindow", "pair_channels", "run_window"]

WINDOW_CHOICES_S: tuple[float, ...] = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
"""Time windows the toolbar offers, seconds."""
_TRUNK_STREAM = "trunk_angles"  # what TrunkAngles names its output

_POLL_INTERVAL_MS = 33  # about 30 frames per second
_STATUS_INTERVAL_S = 0.5  # the status bar asks the acquisition for its counts this often
_HOST_MARKER_CODE = HOST_MARKER_CODES[0]


class LiveControls(Protocol):
    """What the window asks of the session it shows (:class:`~biofeed.live.session.LiveSession`)."""

    @property
    def is_recording(self) -> bool:
        """True while recording."""
        ...

    @property
    def recording_path(self) -> Path | None:
        """Folder of the open recording."""
        ...

    def start_recording(self, path: Path | None = None) -> Path:
        """Start a new recording."""
        ...

    def stop_recording(self) -> Path | None:
        """Stop recording."""
        ...

    def add_marker(self, label: str = "", code: int = _HOST_MARKER_CODE) -> dict[str, Any] | None:
        """Place a marker at the newest sample."""
        ...

    def stats(self) -> DecoderStats:
        """The decoder's counts."""
        ...


def _side(channel: ChannelState) -> str:
    name, site = channel.channel.lower(), channel.site.lower()
    for side in ("left", "right"):
        if name.endswith(f"_{side}") or site.endswith(side) or f" {side} " in f" {site} ":
            return side
    return ""


def _base_name(channel: ChannelState) -> str:
    name = channel.channel
    for suffix in ("_left", "_right"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def pair_channels(channels: tuple[ChannelState, ...]) -> list[tuple[ChannelState | None, ChannelState | None]]:
    """Rows of the grid: (left, right) pairs of the same muscle side by side, others alone.

    A channel that is neither left nor right, or whose partner is missing, gets a row of its own
    (in the left slot; a lone right channel in the right slot).
    """
    rows: list[tuple[ChannelState | None, ChannelState | None]] = []
    used: set[str] = set()
    for channel in channels:
        if channel.key in used:
            continue
        used.add(channel.key)
        side = _side(channel)
        partner = None
        if side:
            wanted = "right" if side == "left" else "left"
            partner = next(
                (
                    c
                    for c in channels
                    if c.key not in used
                    and c.stream == channel.stream
                    and _side(c) == wanted
                    and _base_name(c) == _base_name(channel)
                ),
                None,
            )
        if partner is not None:
            used.add(partner.key)
            rows.append((channel, partner) if side == "left" else (partner, channel))
        else:
            rows.append((None, channel) if side == "right" else (channel, None))
    return rows


class LiveWindow(QtWidgets.QMainWindow):
    """The live view of one ring buffer.

    Parameters
    ----------
    ring : RingBufferSink
        What the acquisition fills.
    controls : LiveControls or None
        The session (recording, markers, counts); None disables those controls.
    window_s : float
        Seconds of signal shown.
    poll_interval_ms : int
        Timer period of :meth:`refresh` once :meth:`start_polling` is called.

    Attributes
    ----------
    panels : dict of str to ChannelPanel
        By ``stream/channel``.
    history : TrialHistory
    trunk : TrunkPanel
    paused : bool
    window_s : float
    closed : Signal
        Emitted when the window closes.
    """

    closed = QtCore.Signal()

    def __init__(
        self,
        ring: RingBufferSink,
        *,
        controls: LiveControls | None = None,
        window_s: float = DEFAULT_WINDOW_S,
        poll_interval_ms: int = _POLL_INTERVAL_MS,
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        if not (math.isfinite(window_s) and 0 < window_s <= ring.capacity_s):
            raise ValueError(
                f"window_s must be in (0, {ring.capacity_s:g}] seconds (the ring's capacity), got {window_s}"
            )
        self.ring = ring
        self.controls = controls
        self.window_s = float(window_s)
        self.paused = False
        self.panels: dict[str, ChannelPanel] = {}
        self._hidden: set[str] = set()  # panels the practitioner switched off
        self._versions: dict[str, int] = {}
        self._state: LiveState | None = None
        self._state_version = -1
        self._display_now_s: float | None = None
        self._windows: dict[str, tuple[StreamWindow, npt.NDArray[np.float64]]] = {}  # last copy of each stream
        self._status_at = -math.inf
        self._stats: DecoderStats | None = None
        self._rows: dict[str, dict[str, int]] = {}  # stream -> channel name -> row
        self.setWindowTitle("biofeed live")
        self._build_toolbar()
        self._build_body()
        self._status = QtWidgets.QLabel("waiting for data")
        # text that changes every half second must not ask for a new layout: that repaints the whole
        # window (measured: the slow frames of the benchmark, docs/live.md)
        self._status.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        self.statusBar().addWidget(self._status, 1)
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(poll_interval_ms)
        self._timer.timeout.connect(self.refresh)
        self._build_shortcuts()

    # -- construction ----------------------------------------------------------------------------

    def _build_toolbar(self) -> None:
        bar = self.addToolBar("controls")
        bar.setMovable(False)
        self.record_action = QtGui.QAction("\u25cf Record", self)
        self.record_action.setCheckable(True)
        self.record_action.setToolTip("start or stop recording (Ctrl+R)")
        self.record_action.triggered.connect(self.toggle_recording)
        bar.addAction(self.record_action)
        bar.addSeparator()
        self.marker_label = QtWidgets.QLineEdit()
        self.marker_label.setPlaceholderText("marker label")
        self.marker_label.setMaxLength(MAX_MARKER_LABEL)
        self.marker_label.setFixedWidth(160)
        self.marker_label.returnPressed.connect(lambda: self.place_marker(_HOST_MARKER_CODE))
        bar.addWidget(self.marker_label)
        marker = QtGui.QAction("Marker (M)", self)
        marker.triggered.connect(lambda: self.place_marker(_HOST_MARKER_CODE))
        bar.addAction(marker)
        bar.addSeparator()
        self.pause_action = QtGui.QAction("Pause display (Space)", self)
        self.pause_action.setCheckable(True)
        self.pause_action.toggled.connect(self.set_paused)
        bar.addAction(self.pause_action)
        bar.addSeparator()
        bar.addWidget(QtWidgets.QLabel(" window "))
        self.window_choice = QtWidgets.QComboBox()
        for seconds in WINDOW_CHOICES_S:
            if seconds <= self.ring.capacity_s:
                self.window_choice.addItem(f"{seconds:g} s", seconds)
        if self.window_choice.findData(self.window_s) < 0:
            self.window_choice.addItem(f"{self.window_s:g} s", self.window_s)
        self.window_choice.setCurrentIndex(self.window_choice.findData(self.window_s))
        self.window_choice.currentIndexChanged.connect(
            lambda index: self.set_window_s(float(self.window_choice.itemData(index)))
        )
        bar.addWidget(self.window_choice)
        bar.addSeparator()
        self.channels_button = QtWidgets.QToolButton()
        self.channels_button.setText("Channels")
        self.channels_button.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        self.channels_menu = QtWidgets.QMenu(self.channels_button)
        self.channels_button.setMenu(self.channels_menu)
        bar.addWidget(self.channels_button)
        self.record_action.setEnabled(self.controls is not None)

    def _build_body(self) -> None:
        self.warnings_label = QtWidgets.QLabel("")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setStyleSheet("background: #fff3cd; color: #7a4b00; padding: 3px;")
        self.warnings_label.setVisible(False)
        self._grid_widget = QtWidgets.QWidget()
        self._grid = QtWidgets.QGridLayout(self._grid_widget)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(4)
        self._waiting = QtWidgets.QLabel("waiting for the device's INFO")
        self._grid.addWidget(self._waiting, 0, 0)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._grid_widget)
        side = QtWidgets.QWidget()
        side_layout = QtWidgets.QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(QtWidgets.QLabel("<b>Trials of this session</b>"))
        self.history = TrialHistory()
        side_layout.addWidget(self.history, 2)
        self.trunk = TrunkPanel()
        self.trunk.set_window(self.window_s)
        self.trunk.setVisible(False)
        side_layout.addWidget(self.trunk, 1)
        splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([1050, 450])
        central = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.warnings_label)
        layout.addWidget(splitter, 1)
        self.setCentralWidget(central)

    def _build_shortcuts(self) -> None:
        def key(sequence: str | QtGui.QKeySequence, slot: Callable[[], object]) -> None:
            shortcut = QtGui.QShortcut(QtGui.QKeySequence(sequence), self)
            shortcut.activated.connect(slot)

        key("Space", self.pause_action.toggle)
        key("M", lambda: self.place_marker(_HOST_MARKER_CODE))
        for n in range(1, 10):
            key(str(n), functools.partial(self.place_marker, _HOST_MARKER_CODE + n - 1))
        key("+", lambda: self._step_window(+1))
        key("=", lambda: self._step_window(+1))
        key("-", lambda: self._step_window(-1))
        key("Ctrl+R", self.record_action.trigger)

    def _build_panels(self, channels: tuple[ChannelState, ...]) -> None:
        self._waiting.setVisible(False)
        for panel in self.panels.values():
            self._grid.removeWidget(panel)
            panel.deleteLater()
        self.panels = {}
        self.channels_menu.clear()
        for row, (left, right) in enumerate(pair_channels(channels)):
            for column, channel in ((0, left), (1, right)):
                if channel is None:
                    continue
                panel = ChannelPanel(channel)
                panel.set_window(self.window_s)
                self.panels[channel.key] = panel
                alone = (left is None) != (right is None)
                self._grid.addWidget(panel, row, 0 if alone else column, 1, 2 if alone else 1)
                panel.show()  # a widget added to a shown window would appear only after the event loop ran
        for channel in channels:
            action = self.channels_menu.addAction(channel.channel)
            action.setCheckable(True)
            action.setChecked(True)
            action.toggled.connect(lambda on, key=channel.key: self.set_channel_visible(key, on))
        self._versions = {}
        self._windows = {}

    # -- the practitioner's controls -------------------------------------------------------------

    def set_paused(self, paused: bool) -> None:
        """Freeze the display (acquisition and recording go on)."""
        self.paused = paused
        if self.pause_action.isChecked() != paused:
            self.pause_action.setChecked(paused)
        if not paused:
            self._versions = {}
            self._state_version = -1
        self._update_status(force=True)

    def set_window_s(self, window_s: float) -> None:
        """Show ``window_s`` seconds of signal."""
        if not (0 < window_s <= self.ring.capacity_s):
            raise ValueError(f"window_s must be in (0, {self.ring.capacity_s:g}] seconds, got {window_s}")
        self.window_s = float(window_s)
        index = self.window_choice.findData(self.window_s)
        if index >= 0 and index != self.window_choice.currentIndex():
            self.window_choice.setCurrentIndex(index)
        for panel in self.panels.values():
            panel.set_window(self.window_s)
        self.trunk.set_window(self.window_s)
        self._versions = {}

    def _step_window(self, step: int) -> None:
        index = min(max(self.window_choice.currentIndex() + step, 0), self.window_choice.count() - 1)
        self.window_choice.setCurrentIndex(index)

    def set_channel_visible(self, key: str, visible: bool) -> None:
        """Show or hide one channel's panel."""
        panel = self.panels.get(key)
        if panel is not None:
            panel.setVisible(visible)
            if visible:
                self._hidden.discard(key)
            else:
                self._hidden.add(key)
            self._versions = {}

    def place_marker(self, code: int = _HOST_MARKER_CODE) -> dict[str, Any] | None:
        """Place a marker with the toolbar's label; returns the marker event (None when impossible)."""
        if self.controls is None:
            return None
        event = self.controls.add_marker(self.marker_label.text(), code)
        if event is None:
            self.statusBar().showMessage("no data yet: marker not placed", 3000)
            return None
        where = "recorded" if self.controls.is_recording else "not recorded: recording is off"
        label = f" '{event['label']}'" if event["label"] else ""
        self.statusBar().showMessage(f"marker {code}{label} at {event['time_s']:.1f} s ({where})", 4000)
        self._state_version = -1
        return event

    def toggle_recording(self) -> None:
        """Start recording into a new folder, or stop the current recording."""
        if self.controls is None:
            return
        if self.controls.is_recording:
            path = self.controls.stop_recording()
            self.statusBar().showMessage(f"recording stopped: {path}", 5000)
        else:
            path = self.controls.start_recording()
            self.statusBar().showMessage(f"recording to {path}", 5000)
        self._sync_record_action()
        self._update_status(force=True)

    def _sync_record_action(self) -> None:
        recording = self.controls is not None and self.controls.is_recording
        self.record_action.setChecked(recording)
        self.record_action.setText("\u25a0 Stop recording" if recording else "\u25cf Record")

    # -- polling ---------------------------------------------------------------------------------

    def start_polling(self) -> None:
        """Refresh on the timer from now on."""
        self._timer.start()

    def stop_polling(self) -> None:
        """Stop the timer."""
        self._timer.stop()

    def _wanted_streams(self, state: LiveState) -> tuple[str, ...]:
        streams = sorted({c.stream for c in state.channels})
        return (*(f"{s}.filtered" for s in streams), *(f"{s}.envelope" for s in streams), _TRUNK_STREAM)

    def refresh(self) -> bool:
        """Copy what changed from the ring buffer and redraw it; False when paused or nothing changed.

        The newest display sample is "now", at 0 on the time axis: when it moves, every curve is
        drawn again, shifted (the samples themselves are copied from the ring only when they changed).
        """
        if self.paused:
            self._update_status()
            return False
        state = self.ring.state
        keys = [c.key for c in state.channels]
        if keys != list(self.panels):
            self._build_panels(state.channels)
        snapshot = self.ring.poll(self.window_s + 1.0, self._wanted_streams(state), self._versions)
        state = snapshot.state
        origin = state.time_origin_s
        changed = bool(snapshot.streams) and origin is not None
        if origin is not None:
            for name, window in snapshot.streams.items():
                self._versions[name] = window.version
                if window.index.size:
                    self._windows[name] = (window, window.times_s(origin))
        if changed and self._windows:
            now_s = max(float(times[-1]) for _, times in self._windows.values())
            for name, (window, times) in self._windows.items():
                self._draw_stream(name, window, times - now_s)
            for key, panel in self.panels.items():
                if key not in self._hidden:
                    panel.show_time(now_s)
            if self.trunk.isVisible():
                self.trunk.show_time(now_s)
            self._display_now_s = now_s
        if state.version != self._state_version:
            self._state_version = state.version
            self._draw_state(state)
            changed = True
        self._state = state
        self._update_status()
        return changed

    def _draw_stream(self, name: str, window: StreamWindow, times_s: npt.NDArray[np.float64]) -> None:
        if name == _TRUNK_STREAM:
            if self.trunk.isHidden():
                self.trunk.setVisible(True)
            self.trunk.show_angles(window, times_s)
            return
        stream, _, kind = name.rpartition(".")
        for row, channel in enumerate(window.info.channels):
            panel = self.panels.get(f"{stream}/{channel.name}")
            if panel is None or panel.key in self._hidden:
                continue
            if kind == "filtered":
                panel.show_trace(times_s, window.data[row])
            else:
                panel.show_envelope(times_s, window.data[row])

    def _draw_state(self, state: LiveState) -> None:
        numbers = {id(trial): k for k, trial in enumerate(state.trials, start=1)}
        for channel in state.channels:
            panel = self.panels.get(channel.key)
            if panel is not None:
                number = numbers.get(id(channel.trials[-1]), len(channel.trials)) if channel.trials else 0
                panel.show_state(channel, state.markers, number)
                panel.meter.set_posture(posture_match(channel, state))
        self.history.set_trials(state.trials)
        self.trunk.show_flexion_phase(state.flexion_phase, state.flexion_phases)
        warnings = device_warnings(state)
        for channel in state.channels:
            warnings += channel_warnings(channel, state.now_s)
        text = "\u26a0 " + "  \u00b7  ".join(warnings) if warnings else ""
        if text != self.warnings_label.text():
            self.warnings_label.setText(text)
            self.warnings_label.setVisible(bool(warnings))

    def _update_status(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._status_at < _STATUS_INTERVAL_S:
            return
        self._status_at = now
        state = self._state or self.ring.state
        if self.controls is not None:
            self._stats = self.controls.stats()
        recording = self.controls.recording_path if self.controls is not None else None
        text = status_line(state, self._stats, recording)
        if self.paused:
            text += " | DISPLAY PAUSED (acquisition goes on)"
        self._status.setText(text)
        self._sync_record_action()

    def add_panel(self, panel: QtWidgets.QWidget, refresh: Callable[[], object] | None = None) -> None:
        """Show ``panel`` above the signals (exercise cues, guided calibration), ``refresh`` on the poll timer."""
        central = self.centralWidget()
        layout = central.layout() if central is not None else None
        if isinstance(layout, QtWidgets.QBoxLayout):
            layout.insertWidget(layout.count() - 1, panel)
        if refresh is not None:
            self._timer.timeout.connect(refresh)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802  (Qt's name)
        """Stop polling and say so."""
        self.stop_polling()
        self.closed.emit()
        super().closeEvent(event)

    # -- what a test or a screenshot reads --------------------------------------------------------

    @property
    def now_s(self) -> float | None:
        """The time at 0 on the axes: the newest sample drawn, seconds from the time origin."""
        return self._display_now_s

    @property
    def status_text(self) -> str:
        """The status bar's text."""
        return self._status.text()

    @property
    def warnings_text(self) -> str:
        """The warnings line ("" when none)."""
        return self.warnings_label.text()

    def save_screenshot(self, path: Path) -> None:
        """Render the window to an image file (PNG by the name's ending).

        Raises
        ------
        ValueError
            When the image cannot be written there.
        """
        self._update_status(force=True)
        if not self.grab().save(str(path)):
            raise ValueError(f"cannot write the screenshot to {path} (a .png in a folder that exists)")


def run_window(
    session: LiveSession,
    *,
    window_s: float = DEFAULT_WINDOW_S,
    screenshot: Path | None = None,
    size: tuple[int, int] = (1500, 950),
    setup: Callable[[LiveWindow], object] | None = None,
) -> AcquisitionResult:
    """Run a live session in the window; returns how acquisition ended.

    The window stays until it is closed (Ctrl-C closes it too); with ``screenshot``, until
    acquisition ends and the picture is saved.

    Parameters
    ----------
    session : LiveSession
        Not yet started.
    window_s : float
        Seconds of signal shown.
    screenshot : Path or None
        Save the window there once acquisition has ended, then close.
    size : tuple of int
        Window size in pixels.
    setup : callable, optional
        Called with the window before acquisition starts (to add panels, :meth:`LiveWindow.add_panel`).
    """
    app = application()
    window = LiveWindow(session.ring, controls=session, window_s=window_s)
    window.resize(*size)
    window.closed.connect(app.quit)
    if setup is not None:
        setup(window)
    window.show()
    failure: list[BaseException] = []

    def finish_screenshot() -> None:
        if not session.finished:
            return
        try:
            window.refresh()
            app.processEvents()
            window.refresh()
            if screenshot is not None:
                window.save_screenshot(screenshot)
        except BaseException as exc:  # handed to the caller after the event loop ends
            failure.append(exc)
        window.close()

    watcher = QtCore.QTimer(window)
    if screenshot is not None:
        watcher.setInterval(100)
        watcher.timeout.connect(finish_screenshot)
        watcher.start()
    previous = signal.signal(signal.SIGINT, lambda *_: window.close())
    session.start()
    window.start_polling()
    try:
        app.exec()
    finally:
        signal.signal(signal.SIGINT, previous)
        window.stop_polling()
        watcher.stop()
        session.stop()
    result = session.wait()
    if failure:
        raise failure[0]
    return result
