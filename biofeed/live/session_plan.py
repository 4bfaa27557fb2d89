"""What ``biofeed live`` adds around a session: the board check, a client's calibration and filing, cues.

:class:`SessionPlan` is made before the source opens (so an unknown client or protocol is refused
first) and gives :func:`~biofeed.live.app.run_live`:

- the pipeline with the client's calibration applied (:func:`~biofeed.sessions.commands.record_pipeline_kwargs`,
  as ``record --client`` does);
- the sinks: the board check (:class:`~biofeed.sessions.board_notice.BoardNoticeSink`: said on stderr
  and, in the window, as a banner when the board cannot resolve true relaxation) and the exercise
  protocol's cues (:class:`~biofeed.live.cues.CueSink`, whose events go to the recording through the
  acquisition thread; a terminal prints each cue as it starts);
- the window's panels (:meth:`SessionPlan.add_panels`);
- the filing of each recording made as a session of the client, exactly as ``record --client``
  (:func:`~biofeed.sessions.commands.file_recorded_session`).

No Qt is imported unless a window is shown.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from biofeed.live.cues import CueSink, EventRecorder, cue_line
from biofeed.pipeline import Pipeline
from biofeed.runner import Sink
from biofeed.sessions.board_notice import BoardNoticeSink
from biofeed.sessions.protocol import Cue, load_exercise_protocol

if TYPE_CHECKING:
    from biofeed.live.window import LiveWindow

__all__ = ["SessionPlan"]


class SessionPlan:
    """A live session's client, exercise protocol and board check (module docstring).

    Parameters
    ----------
    client : str or None
        Client pseudonym: their calibration is applied and each recording is filed as their session.
    protocol : str or None
        Exercise protocol (``calibration/protocols/NAME.toml`` or a path) whose cues are shown.
    notices : TextIO or None
        Where the board check is written (default: ``sys.stderr`` as it is then).

    Raises
    ------
    CatalogueError
        When there is no such client.
    ValueError
        For an unknown or invalid protocol.
    """

    def __init__(self, client: str | None, protocol: str | None, *, notices: TextIO | None = None) -> None:
        self.client = client
        self.protocol = protocol
        self.schedule = load_exercise_protocol(protocol) if protocol is not None else None
        self.pipeline_kwargs: dict[str, Any] = {}
        if client is not None:
            from biofeed.sessions.commands import record_pipeline_kwargs

            self.pipeline_kwargs = record_pipeline_kwargs(client)  # refuses an unknown client
        self.board = BoardNoticeSink(notices if notices is not None else sys.stderr)
        self.cues: CueSink | None = None

    def pipeline(self) -> Pipeline:
        """The live pipeline (display blocks on), with the client's calibration."""
        return Pipeline(display=True, **self.pipeline_kwargs)

    def sinks(self, recorder: EventRecorder, *, terminal: bool) -> list[Sink]:
        """The board check, and the cues writing their events to ``recorder`` (printed when ``terminal``)."""
        sinks: list[Sink] = [self.board]
        if self.schedule is not None:
            n_trials = len(self.schedule.trials)

            def print_cue(cue: Cue) -> None:
                print(cue_line(cue, n_trials), flush=True)

            self.cues = CueSink(self.schedule, recorder, on_cue=print_cue if terminal else None)
            sinks.append(self.cues)
        return sinks

    def add_panels(self, window: LiveWindow) -> None:
        """The board banner and the cue panel above the window's signals."""
        from biofeed.live.board_banner import BoardBanner
        from biofeed.live.cue_panel import CuePanel

        banner = BoardBanner(self.board)
        window.add_panel(banner, banner.refresh)
        if self.cues is not None:
            panel = CuePanel(self.cues)
            window.add_panel(panel, panel.refresh)

    def file_recordings(self, paths: Sequence[Path], *, out: TextIO | None = None) -> None:
        """File each recording made as a session of the client (nothing without a client); says so on ``out``."""
        if self.client is None:
            return
        from biofeed.sessions.commands import file_recorded_session

        if not paths:
            print(f"nothing recorded: no session filed for {self.client}", file=out or sys.stdout)
        for path in paths:  # a path whose folder was never made is skipped by file_recorded_session
            file_recorded_session(self.client, path, protocol=self.protocol, out=out or sys.stdout)
