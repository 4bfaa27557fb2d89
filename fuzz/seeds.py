"""Seed inputs of the harnesses, built from the simulated board (deterministic by its seed).

A fuzzer mutates from these: a short real recording (its ``frames.bin``, ``recording.json`` and
``events.jsonl``), the raw wire bytes of the same run, its EDF+ and BDF+ exports and a CSV.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

__all__ = ["SEED_KIND", "build_seeds"]

SEED_KIND: dict[str, str] = {
    "decoder": "wire",
    "frames": "frames",
    "meta": "meta",
    "events": "events",
    "edf": "edf",
    "csv": "csv",
}
"""Which seeds of :func:`build_seeds` each harness of :mod:`fuzz.targets` starts from."""

_SECONDS = 1.0
_CSV_SEED = b"time_s,es_left_uV,es_right_uV\n0.000,1.5,-2.0\n0.0005,1.25,-1.75\n0.001,0.5,3.0\n"


def build_seeds() -> dict[str, list[bytes]]:
    """Seed inputs per kind of input: ``wire``, ``frames``, ``meta``, ``events``, ``edf``, ``csv``."""
    from biofeed.record.export import run_export
    from biofeed.sim.device import SimulatedDevice
    from biofeed.sim.outputs import write_recording

    with tempfile.TemporaryDirectory(prefix="biofeed-fuzz-seeds-") as tmp:
        folder = write_recording(SimulatedDevice("pandiculation", seed=1, duration_s=_SECONDS), Path(tmp) / "rec")
        wire = SimulatedDevice("pandiculation", seed=1, duration_s=_SECONDS).frames_until(_SECONDS)
        edf = run_export(folder, "edf", Path(tmp) / "rec.edf").read_bytes()
        bdf = run_export(folder, "bdf", Path(tmp) / "rec.bdf").read_bytes()
        frames = (folder / "frames.bin").read_bytes()
        return {
            "wire": [wire[:4096], wire[-4096:]],
            "frames": [frames[:8192]],
            "meta": [(folder / "recording.json").read_bytes()],
            "events": [(folder / "events.jsonl").read_bytes()[:8192] or b'{"type":"gap"}\n'],
            "edf": [edf, bdf],
            "csv": [_CSV_SEED],
        }
