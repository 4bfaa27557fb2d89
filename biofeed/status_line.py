"""Terminal status of a running acquisition and its end-of-run summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from biofeed.protocol.decoder import DecoderStats

__all__ = ["format_status", "format_summary", "write_devices_status", "write_status"]


def _seconds(stats: DecoderStats) -> float:
    spans = [
        (s.end_index - s.first_index) / s.sample_rate_hz
        for s in stats.streams.values()
        if s.first_index is not None and s.end_index is not None
    ]
    return min(spans, default=0.0)


def format_status(stats: DecoderStats) -> str:
    """One line: device seconds, samples per stream, gaps, corrupt frames."""
    parts = [f"{_seconds(stats):7.1f} s"]
    parts += [f"{name} {s.n_samples}" for name, s in stats.streams.items()]
    lost = sum(s.samples_lost for s in stats.streams.values())
    gaps = sum(s.gaps for s in stats.streams.values())
    parts.append(f"gaps {gaps} ({lost} samples)")
    parts.append(f"corrupt {stats.corrupt_frames}")
    if not stats.streams:
        parts.append("waiting for the device's INFO")
    return " | ".join(parts)


def format_summary(stats: DecoderStats) -> str:
    """A few lines for the end of a run: per stream samples, rate, gaps and losses."""
    lines = [f"{'stream':<14} {'samples':>9} {'rate Hz':>8} {'gaps':>5} {'lost':>7}"]
    for name, s in stats.streams.items():
        lines.append(f"{name:<14} {s.n_samples:>9} {s.sample_rate_hz:>8g} {s.gaps:>5} {s.samples_lost:>7}")
    lines.append(
        f"frames {stats.frames}, corrupt {stats.corrupt_frames}, packets lost {stats.lost_packets}, "
        f"duplicates {stats.duplicates}"
    )
    return "\n".join(lines)


def write_status(stats: DecoderStats, stream: TextIO) -> None:
    """Overwrite the current terminal line with :func:`format_status`."""
    _overwrite_line(format_status(stats), stream)


def write_devices_status(stats_by_label: Mapping[str, DecoderStats], stream: TextIO) -> None:
    """Overwrite the current terminal line with :func:`format_status` of each device, labelled."""
    _overwrite_line(" || ".join(f"{label}: {format_status(stats)}" for label, stats in stats_by_label.items()), stream)


def _overwrite_line(text: str, stream: TextIO) -> None:
    stream.write("\r" + text.ljust(100))
    stream.flush()
