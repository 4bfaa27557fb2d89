"""One live run, without Qt: acquisition into the ring buffer, recording on demand, markers.

:class:`LiveSession` wires what the window and the terminal status both drive: a source, the
acquisition's worker thread (decoder, pipeline with display blocks, recorder), the
:class:`~biofeed.sinks.ring_buffer.RingBufferSink` the view polls, the trunk angles
(:class:`~biofeed.live.trunk.TrunkAngleSink`), and a :class:`~biofeed.live.recording_switch.RecordingSwitch`
so recording can start and stop while acquisition goes on. The worker never waits for a view:
a slow or frozen view loses samples only from the ring buffer, never from the recording.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from biofeed.blocks import Marker
from biofeed.live.recording_switch import RecordingSwitch
from biofeed.live.trunk import TrunkAngleSink
from biofeed.pipeline import Pipeline
from biofeed.protocol.decoder import DecoderStats
from biofeed.record.writer import RecordingWriter
from biofeed.runner import Acquisition, AcquisitionResult, Sink
from biofeed.sinks.ring_buffer import RingBufferSink
from biofeed.sources.base import Source

__all__ = ["HOST_MARKER_CODES", "MAX_MARKER_LABEL", "LiveSession"]

HOST_MARKER_CODES = range(128, 256)
"""Marker codes the host may use (PROTOCOL.md: 1 device button, 2-127 firmware, 128-255 host)."""
MAX_MARKER_LABEL = 64
"""Longest marker label, characters."""


class LiveSession:
    """A source acquired in a worker thread into a ring buffer, with recording and markers.

    Parameters
    ----------
    source : Source
        Where the bytes come from.
    recording : RecordingSwitch
        The recorder the acquisition writes through (start it before :meth:`start` to record from
        the first frame).
    ring : RingBufferSink, optional
        What the view polls (default: a new one).
    pipeline : Pipeline or None, optional
        The analysis; default ``Pipeline(display=True)``, the live configuration.
    duration_s : float or None
        Stop after this many device seconds (None: until stopped or the source ends).
    sinks : sequence of Sink
        More sinks (an LSL outlet).
    trunk_angles : bool
        Compute trunk angles from the IMUs for the view.
    """

    def __init__(
        self,
        source: Source,
        recording: RecordingSwitch,
        *,
        ring: RingBufferSink | None = None,
        pipeline: Pipeline | None = None,
        duration_s: float | None = None,
        sinks: Sequence[Sink] = (),
        trunk_angles: bool = True,
    ) -> None:
        self.source = source
        self.recording = recording
        self.ring = ring if ring is not None else RingBufferSink()
        all_sinks: list[Sink] = [self.ring]
        if trunk_angles:
            all_sinks.append(TrunkAngleSink(self.ring))
        all_sinks += list(sinks)
        self.acquisition = Acquisition(
            source,
            # RecordingSwitch has RecordingWriter's appending interface (the runner types it narrowly)
            recorder=cast(RecordingWriter, recording),
            sinks=all_sinks,
            duration_s=duration_s,
            pipeline=pipeline if pipeline is not None else Pipeline(display=True),
        )
        self._started = False

    # -- running -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start acquiring in the worker thread."""
        self.acquisition.start()
        self._started = True

    def stop(self) -> None:
        """Ask acquisition to end (any thread)."""
        self.acquisition.stop()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait up to ``timeout_s`` for the worker; True once it has ended."""
        return self.acquisition.join(timeout_s)

    @property
    def finished(self) -> bool:
        """True once the acquisition has ended (or was never started)."""
        return not self._started or self.acquisition.join(0.0)

    def wait(self) -> AcquisitionResult:
        """Wait for the worker to end; how acquisition ended."""
        return self.acquisition.wait()

    def stats(self) -> DecoderStats:
        """The decoder's counts so far (packets lost, corrupt frames)."""
        return self.acquisition.snapshot()

    def close(self, result: AcquisitionResult | None) -> list[Path]:
        """Close the open recording with a summary of how acquisition ended; every recording made."""
        error = result.error if result is not None else None
        self.recording.close(summary={"error": str(error) if error else None})
        return list(self.recording.paths)

    # -- what the practitioner does ------------------------------------------------------------

    @property
    def is_recording(self) -> bool:
        """True while recording."""
        return self.recording.recording

    @property
    def recording_path(self) -> Path | None:
        """Folder of the open recording."""
        return self.recording.path

    def start_recording(self, path: Path | None = None) -> Path:
        """Start a new recording (a new folder unless ``path``); returns its folder."""
        return self.recording.start(path)

    def stop_recording(self) -> Path | None:
        """Stop recording; returns the folder closed (None when not recording)."""
        return self.recording.stop({"error": None})

    def add_marker(self, label: str = "", code: int = HOST_MARKER_CODES[0]) -> dict[str, Any] | None:
        """Place a marker at the newest sample received: in the recording's events and on the view.

        Parameters
        ----------
        label : str
            Short text, at most :data:`MAX_MARKER_LABEL` characters.
        code : int
            128-255 (host markers).

        Returns
        -------
        dict or None
            The ``marker`` event (also written to ``events.jsonl`` while recording); None before any
            sample has arrived.

        Raises
        ------
        ValueError
            For a code outside 128-255 or a label that is too long.
        """
        if code not in HOST_MARKER_CODES:
            raise ValueError(f"a host marker code must be 128-255, got {code}")
        label = label.strip()
        if len(label) > MAX_MARKER_LABEL:
            raise ValueError(f"a marker label has at most {MAX_MARKER_LABEL} characters, got {len(label)}")
        state = self.ring.state
        streams = [s.name for s in state.device.streams] if state.device is not None else []
        emg = [s.name for s in state.device.streams if s.is_emg] if state.device is not None else []
        stream = next((name for name in [*emg, *streams, *state.latest_index] if name in state.latest_index), None)
        info = self.ring.stream_info(stream) if stream is not None else None
        if stream is None or info is None:
            return None
        sample_index = state.latest_index[stream]
        origin_s = state.time_origin_s or 0.0
        host_time = time.time()
        event = {
            "type": "marker",
            "stream": stream,
            "channel": None,
            "code": code,
            "label": label,
            "sample_index": sample_index,
            "time_s": sample_index / info.sample_rate_hz - origin_s,
            "host_time": host_time,
        }
        self.recording.append_event(event)
        self.ring.write(Marker(stream, sample_index, code, label, host_time))
        return event
