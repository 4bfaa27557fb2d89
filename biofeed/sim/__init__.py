"""The built-in simulated sensor board (docs/simulator.md).

:class:`SimulatedDevice` plays a named scenario (:data:`SCENARIO_NAMES`) as the wire bytes of the
reference device, with its ground truth; :mod:`biofeed.sim.outputs` sends them to a pseudo-terminal,
a pipe or a recording folder, and :class:`biofeed.sources.sim.SimSource` makes them a source.
"""

from biofeed.sim.device import SimulatedDevice
from biofeed.sim.scenarios import SCENARIO_NAMES

__all__ = ["SCENARIO_NAMES", "SimulatedDevice"]
