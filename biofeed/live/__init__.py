"""The live view: the biofeedback window (Qt, imported only when a window opens) or a terminal status.

``biofeed live --device URL`` and ``biofeed demo`` call :func:`run_live` / :func:`run_demo`
(docs/live.md). Importing this package imports no Qt.
"""

from biofeed.live.app import display_available, run_demo, run_live

__all__ = ["display_available", "run_demo", "run_live"]
