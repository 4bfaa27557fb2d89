"""``biofeed analyze``: a recording (or a foreign EMG file) into the analysis JSON and a text table.

A biofeed recording is decoded frame by frame and run through the same :class:`~biofeed.pipeline.Pipeline`
the live recorder ran, so the trials equal the ``trial`` events it wrote (docs/analysis-json.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from biofeed.blocks import Block, DeviceInfo
from biofeed.dsp.flexion_relaxation import analyze_flexion_relaxation_blocks
from biofeed.dsp.imu.trunk_motion import SACRAL_STREAM, THORACIC_STREAM
from biofeed.errors import RecordingError
from biofeed.pipeline import ANALYSIS_JSON_VERSION, BATCH_COALESCE_S, Pipeline
from biofeed.protocol.decoder import Decoder
from biofeed.record.reader import open_recording

__all__ = ["analyze_foreign_file", "analyze_path", "analyze_recording", "format_analysis"]

_FLEXION_STREAMS = frozenset({"emg", THORACIC_STREAM, SACRAL_STREAM})


def analyze_path(
    path: Path | str,
    *,
    fs_hz: float | None = None,
    unit: str | None = None,
    channels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Analyse a biofeed recording folder, or an EDF/BDF or CSV file made by another tool.

    Parameters
    ----------
    path : Path or str
        A recording folder, ``*.edf``, ``*.bdf`` or ``*.csv``.
    fs_hz : float, optional
        Sample rate of a CSV file without a ``time_s`` column.
    unit : {"uV", "mV", "V"}, optional
        Unit of a CSV file's samples (uV by default).
    channels : sequence of str, optional
        Only these channels.

    Returns
    -------
    dict
        The ``analyze --json`` object (docs/analysis-json.md).

    Raises
    ------
    RecordingError
        A path that is none of these, or that cannot be read.
    ValueError
        ``fs_hz`` or ``unit`` given for a file that carries its own.
    """
    target = Path(path)
    if target.is_dir():
        if fs_hz is not None or unit is not None:
            raise ValueError("--fs and --unit are for CSV files; a recording carries its own rates and units")
        return analyze_recording(target, channels=channels)
    if not target.exists():
        raise RecordingError(target, "no such file or folder")
    return analyze_foreign_file(target, fs_hz=fs_hz, unit=unit, channels=channels)


def analyze_foreign_file(
    path: Path, *, fs_hz: float | None = None, unit: str | None = None, channels: Sequence[str] | None = None
) -> dict[str, Any]:
    """Analyse the EMG channels of an EDF/BDF or CSV file with :func:`~biofeed.dsp.analyze.analyze_emg`.

    A foreign file has no live run to agree with, so the whole record is analysed at once (its
    noise floor from the whole record: docs/dsp.md).

    Raises
    ------
    RecordingError
        A file that cannot be read, with no EMG channel, or without the named channels.
    """
    from biofeed.dsp.analyze import analyze_emg
    from biofeed.record.foreign import read_foreign

    foreign = read_foreign(path, sample_rate_hz=fs_hz, unit=unit or "uV")
    names, rate_hz, data_uv = foreign.emg_channels()
    if channels:
        unknown = sorted(set(channels) - set(names))
        if unknown:
            raise RecordingError(path, f"no channel {', '.join(unknown)}; it has {', '.join(names)}")
        keep = [i for i, name in enumerate(names) if name in channels]
        names, data_uv = tuple(names[i] for i in keep), data_uv[keep]
    try:
        analysis = analyze_emg(data_uv, rate_hz, names)
    except ValueError as exc:  # a rate that cannot carry an EMG band, too short a record
        raise RecordingError(path, str(exc)) from None
    result = analysis.to_json()
    result["version"] = ANALYSIS_JSON_VERSION
    for channel in result["channels"]:
        channel.setdefault("stream", "emg")
    result["source"] = {"path": str(path), "format": foreign.file_format}
    return result


def analyze_recording(path: Path | str, *, channels: Sequence[str] | None = None) -> dict[str, Any]:
    """Analyse every EMG stream of a biofeed recording.

    Parameters
    ----------
    path : Path or str
        The recording folder.
    channels : sequence of str, optional
        Keep only these channels in the result (all are analysed: a stream is filtered as a whole).

    Returns
    -------
    dict
        The ``analyze --json`` object (docs/analysis-json.md).

    Raises
    ------
    RecordingError
        Not a recording, no EMG stream, or an unknown channel name.
    """
    recording = open_recording(path)
    decoder = Decoder()
    pipeline = Pipeline(coalesce_s=BATCH_COALESCE_S)
    # The blocks the flexion-relaxation test reads, kept from this one decoding pass (it holds them all
    # anyway), only while the device in force has a thoracic IMU: without one there is no test to run.
    kept: list[Block] = []
    keep = False
    for record in recording.frames():
        for item in decoder.decode_frame(record.frame, record.received_at):
            pipeline.process(item)
            if isinstance(item, DeviceInfo):
                keep = any(s.name == THORACIC_STREAM for s in item.streams)
            elif keep and isinstance(item, Block) and item.info.name in _FLEXION_STREAMS:
                kept.append(item)
    pipeline.finish()
    result = pipeline.analysis_json()
    if not result["channels"]:
        raise RecordingError(recording.path, "holds no EMG samples to analyse")
    result["source"] = {"path": str(recording.path), "format": "biofeed-recording"}
    if decoder.device_info is not None and any(s.name == THORACIC_STREAM for s in decoder.device_info.streams):
        result["flexion_relaxation"] = _flexion_relaxation(kept, result)
    return _keep_channels(result, channels, recording.path)


def _flexion_relaxation(blocks: list[Block], result: dict[str, Any]) -> dict[str, Any] | None:
    """The flexion-relaxation test over the recording's EMG and IMU blocks (docs/imu.md); None when not possible.

    The reason it is not possible (no quiet start to calibrate on, a gap) goes to the warnings.
    """
    emg = [c for c in result["channels"] if c["stream"] == "emg"]
    floors = [c["noise_floor_uv"] for c in emg]
    try:
        test = analyze_flexion_relaxation_blocks(blocks, noise_floor_uv=floors if None not in floors else None)
    except ValueError as exc:
        result.setdefault("warnings", []).append(f"flexion-relaxation test not run: {exc}")
        return None
    return test.to_json()


def _keep_channels(result: dict[str, Any], channels: Sequence[str] | None, path: Path) -> dict[str, Any]:
    if not channels:
        return result
    names = [c["name"] for c in result["channels"]]
    unknown = sorted(set(channels) - set(names))
    if unknown:
        raise RecordingError(path, f"no channel {', '.join(unknown)}; it has {', '.join(names)}")
    result["channels"] = [c for c in result["channels"] if c["name"] in channels]
    return result


def _number(value: float | None, fmt: str) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, fmt)


def format_analysis(result: dict[str, Any]) -> str:
    """A readable table per channel of an ``analyze --json`` object."""
    lines: list[str] = []
    for channel in result["channels"]:
        lines.append(
            f"{channel['name']}  {channel['fs_hz']:g} Hz  noise floor {_number(channel['noise_floor_uv'], '.2f')} uV"
            f" ({channel['noise_floor_source'] or '-'})  set point {_number(channel['set_point_uv'], '.2f')} uV"
        )
        header = (
            f"  {'onset s':>8} {'offset s':>8} {'peak uV':>8} {'release s':>9} {'monot.':>6} {'rebursts':>8}"
            f" {'pre uV':>7} {'post uV':>7} {'ratio':>6} {'95% CI':>13} {'later':>6} {'verdict':<15} {'score':>5}"
        )
        lines.append(header)
        for t in channel["contractions"]:
            ci = t["ratio_ci95"]
            ci_text = f"{ci[0]:.2f}-{ci[1]:.2f}" if ci else "-"
            lines.append(
                f"  {_number(t['onset_s'], '8.2f')} {_number(t['offset_s'], '8.2f')} {_number(t['peak_uv'], '8.1f')}"
                f" {_number(t['release_duration_s'], '9.2f')} {_number(t['monotonic_fraction'], '6.2f')}"
                f" {t['rebursts']:>8} {_number(t['pre_rest_uv'], '7.2f')} {_number(t['post_rest_uv'], '7.2f')}"
                f" {_number(t['ratio'], '6.2f')} {ci_text:>13} {_number(t['persistence_ratio'], '6.2f')}"
                f" {t['verdict']:<15} {_number(t['score'], '5.0f')}"
            )
        if not channel["contractions"]:
            lines.append("  (no contraction found)")
        lines.append("")
    return "\n".join(lines).rstrip()
