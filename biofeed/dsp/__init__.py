"""The sEMG filtering core: pure numpy/scipy, streaming, chunk-invariant (docs/dsp.md).

Raw blocks -> :class:`FiniteSplitter` -> :class:`BandPassFilter` -> :class:`MainsNotch` ->
:class:`EcgRemover` -> :class:`PhaseDetector` and :class:`MovingRms` (1 s) -> :class:`RestingTension`
and :class:`PandiculationTracker`; :class:`EmgAnalyzer` chains them and :func:`analyze_emg` runs the
same chain over a whole recording.
"""

from biofeed.dsp.analyze import AnalyzerUpdate, EmgAnalysis, EmgAnalyzer, EmgChannelAnalysis, analyze_emg
from biofeed.dsp.ecg import EcgDecision, EcgRemover
from biofeed.dsp.envelope import MovingRms
from biofeed.dsp.filters import BandPassFilter, EmgBand, design_emg_band
from biofeed.dsp.mains import MainsDecision, MainsNotch
from biofeed.dsp.noise import correct_for_noise, noise_floor_from_high_band, noise_floor_from_rest
from biofeed.dsp.pandiculation import (
    PandiculationTracker,
    PandiculationTrial,
    RestWindow,
    ScoreComponents,
    TrialCriteria,
    Verdict,
)
from biofeed.dsp.phases import Contraction, Phase, PhaseDetector, PhaseEvent, PhaseSettings
from biofeed.dsp.quality import FaultKind, FiniteSplitter, SignalFault, SignalFaultDetector
from biofeed.dsp.stage import Stage
from biofeed.dsp.tension import RestingTension, WindowGate

__all__ = [
    "AnalyzerUpdate",
    "BandPassFilter",
    "Contraction",
    "EcgDecision",
    "EcgRemover",
    "EmgAnalysis",
    "EmgAnalyzer",
    "EmgBand",
    "EmgChannelAnalysis",
    "FaultKind",
    "FiniteSplitter",
    "MainsDecision",
    "MainsNotch",
    "MovingRms",
    "PandiculationTracker",
    "PandiculationTrial",
    "Phase",
    "PhaseDetector",
    "PhaseEvent",
    "PhaseSettings",
    "RestWindow",
    "RestingTension",
    "ScoreComponents",
    "SignalFault",
    "SignalFaultDetector",
    "Stage",
    "TrialCriteria",
    "Verdict",
    "WindowGate",
    "analyze_emg",
    "correct_for_noise",
    "design_emg_band",
    "noise_floor_from_high_band",
    "noise_floor_from_rest",
]
