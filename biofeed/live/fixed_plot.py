"""A pyqtgraph plot set up for the live view: fixed ranges the code sets, cheap to redraw 30 times a second.

Measured on the benchmark's window (docs/live.md, "Where the time goes"):

- no mouse, menu or auto-range: the ranges are set by the panels (a range that moves every frame
  costs an axis layout);
- clipping to the view on the *plot*: ``PlotItem.addItem`` gives each curve the plot's clipping and
  downsampling, whatever the curve was given before;
- the axes cached as pixmaps: a curve redrawn next to an axis repaints it, and drawing its ticks
  and text again took about 2 ms of every frame. The cache is redrawn when the axis changes.
"""

from __future__ import annotations

from biofeed.live.qt import QtWidgets, pg

__all__ = ["fix_plot"]


def fix_plot(plot: pg.PlotItem) -> None:
    """Make ``plot`` static for the user (no mouse, menu, buttons or auto-range), clipped, its axes cached."""
    plot.setMouseEnabled(x=False, y=False)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.disableAutoRange()
    plot.setClipToView(True)
    for name in ("left", "bottom", "right", "top"):
        plot.getAxis(name).setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
