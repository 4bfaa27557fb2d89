"""An exercise protocol's cues followed live on the device's sample counter, in the acquisition thread.

:class:`CueSink` is a :class:`~biofeed.runner.Sink`. The protocol's time 0 is the first sample of the
device's first EMG stream (the live view's time origin, ``RingBufferSink.state.time_origin_s``), and
every raw block of that stream moves it on: no wall clock, so a replay or a fast simulator shows the
same cues at the same samples. When a cue's start is passed, its ``cue`` event
(:func:`~biofeed.sessions.protocol.cue_event`) goes to the recorder in that same thread, stamped with
the sample index where the cue starts, so trials found in the recording line up with the cues
whatever the block sizes and whenever the recording started. A view reads :attr:`CueSink.state` (the
:class:`~biofeed.sessions.protocol.CueState` at the newest sample) from any thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from biofeed.blocks import Block, DeviceInfo
from biofeed.sessions.protocol import Cue, CueKind, CueSchedule, CueState, cue_event

__all__ = ["CUE_TITLES", "CueSink", "EventRecorder", "cue_line"]

CUE_TITLES = {
    CueKind.REST: "REST",
    CueKind.CONTRACT: "CONTRACT",
    CueKind.RELEASE: "RELEASE SLOWLY",
    CueKind.STAY_RELAXED: "STAY RELAXED",
}
"""The cue's name as the window shows it, large."""


class EventRecorder(Protocol):
    """Where cue events go (a :class:`~biofeed.live.recording_switch.RecordingSwitch`)."""

    def append_event(self, event: Mapping[str, Any]) -> None:
        """Keep one ``events.jsonl`` line."""
        ...


def cue_line(cue: Cue, n_trials: int) -> str:
    """One line for a terminal when a cue starts, e.g. ``cue: CONTRACT (3 s), trial 1/3: Contract: ...``."""
    where = ""
    if cue.trial_index is not None:
        where = f", {'sham ' if cue.sham else ''}trial {cue.trial_index + 1}/{n_trials}"
    return f"cue: {CUE_TITLES[cue.kind]} ({cue.duration_s:g} s){where}: {cue.text}"


class CueSink:
    """Follows a :class:`~biofeed.sessions.protocol.CueSchedule` on the device's samples (module docstring).

    Parameters
    ----------
    schedule : CueSchedule
        The protocol's cues.
    recorder : EventRecorder or None
        Gets each cue's event as it starts (None: no events).
    on_cue : callable, optional
        Called with each cue as it starts, in the acquisition thread (a terminal prints it).

    Attributes
    ----------
    state : CueState or None
        The cue due at the newest sample; None before the first sample and after the protocol.
    now_s : float or None
        Protocol seconds at the newest sample (the end of the newest block).
    events : list of dict
        Every cue event written, in order.
    """

    def __init__(
        self,
        schedule: CueSchedule,
        recorder: EventRecorder | None = None,
        *,
        on_cue: Callable[[Cue], object] | None = None,
    ) -> None:
        self.schedule = schedule
        self.recorder = recorder
        self.on_cue = on_cue
        self.state: CueState | None = None
        self.now_s: float | None = None
        self.events: list[dict[str, Any]] = []
        self._stream: str | None = None
        self._origin_index: int | None = None

    @property
    def finished(self) -> bool:
        """True once the newest sample lies past the protocol's end."""
        return self.now_s is not None and self.now_s >= self.schedule.duration_s

    def write(self, item: Any) -> None:
        """Take one item (acquisition thread): the INFO names the EMG stream, its blocks move time on."""
        if isinstance(item, DeviceInfo) and self._stream is None:
            self._stream = next((s.name for s in item.streams if s.is_emg), None)
        elif isinstance(item, Block) and item.info.name == self._stream and item.n_samples:
            rate_hz = item.info.sample_rate_hz
            if self._origin_index is None:
                self._origin_index = item.first_index
            origin = self._origin_index
            before_s = self.now_s if self.now_s is not None else -1.0  # the cue at 0 is announced too
            now_s = (item.end_index - origin) / rate_hz
            for cue in self.schedule.cues_starting(before_s, now_s):
                sample_index = origin + round(cue.start_s * rate_hz)
                event = cue_event(
                    cue, (sample_index - origin) / rate_hz, sample_index, self.schedule.name, stream=self._stream
                )
                self.events.append(event)
                if self.recorder is not None:
                    self.recorder.append_event(event)
                if self.on_cue is not None:
                    self.on_cue(cue)
            self.now_s = now_s
            self.state = self.schedule.state_at(now_s)

    def close(self) -> None:
        """Nothing to release."""
