"""Recordings: a crash-safe folder of raw frames and events, its reader and its summary.

A recording is a folder (docs/recording-format.md): ``recording.json`` (device INFO, client
pseudonym, software version, start time), ``frames.bin`` (every frame as received, each record with
its own CRC-32) and ``events.jsonl`` (one JSON object per line). Replaying ``frames.bin`` through the
decoder reproduces what the live run saw.
"""

from biofeed.record.reader import FrameRecord, Recording, open_recording
from biofeed.record.summary import RecordingSummary, StreamSummary, summarize_recording
from biofeed.record.writer import RecordingWriter

__all__ = [
    "FrameRecord",
    "Recording",
    "RecordingSummary",
    "RecordingWriter",
    "StreamSummary",
    "open_recording",
    "summarize_recording",
]
