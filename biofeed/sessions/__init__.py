"""Practitioner sessions: clients, guided calibration, sessions, progress over weeks, reports (docs/sessions.md).

- :mod:`~biofeed.sessions.catalogue`: the SQLite catalogue of clients, sessions, recordings,
  calibrations, trials, verdicts and notes;
- :mod:`~biofeed.sessions.calibrate`: guided calibration as a state machine driven by decoded items;
- :mod:`~biofeed.sessions.protocol`: exercise protocols with timed cues and sham trials (:class:`CueSchedule`);
- :mod:`~biofeed.sessions.session_analysis` and :mod:`~biofeed.sessions.sham`: a recording analysed as a
  session; :mod:`~biofeed.sessions.filing`: filing it;
- :mod:`~biofeed.sessions.history`: progress and trend; :mod:`~biofeed.sessions.report`: HTML reports;
- :mod:`~biofeed.sessions.commands`: the CLI commands.

Import the modules themselves; the package imports nothing, so ``import biofeed`` stays light.
"""

__all__: list[str] = []
