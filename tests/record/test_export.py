"""run_export: paths, refusals, anonymization across every format, torn and re-described recordings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import edfio
import numpy as np
import pytest

from biofeed.blocks import ChannelKind
from biofeed.errors import RecordingError
from biofeed.protocol import (
    ChannelFormat,
    InfoPayload,
    Packet,
    PacketType,
    SampleFormat,
    StreamFormat,
    encode_frame,
    encode_samples,
)
from biofeed.record import open_recording
from biofeed.record.export import EXPORT_FORMATS, default_export_path, run_export
from biofeed.record.writer import RecordingWriter
from tests.record.export_session import IDENTITY, PSEUDONYM, SECRETS, expected_streams, make_session

pd = pytest.importorskip("pandas")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_session(tmp_path_factory.mktemp("export"))


def _all_bytes(path: Path) -> bytes:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return b"".join(p.read_bytes() for p in files).lower()


def _parquet_text(folder: Path) -> str:
    """Every string value and metadata entry of every table, decompressed."""
    parts = []
    for file in folder.glob("*.parquet"):
        table = pq.read_table(file)
        parts += [repr(table.schema.metadata)]
        parts += [repr(table[name].to_pylist()) for name in table.column_names if str(table[name].type) == "string"]
    return "\n".join(parts).lower()


def test_default_paths_sit_next_to_the_recording(tmp_path: Path) -> None:
    folder = tmp_path / "2025-01-31T09-15-02"
    assert default_export_path(folder, "edf") == tmp_path / "2025-01-31T09-15-02.edf"
    assert default_export_path(folder, "bdf") == tmp_path / "2025-01-31T09-15-02.bdf"
    assert default_export_path(folder, "csv") == tmp_path / "2025-01-31T09-15-02-csv"
    assert default_export_path(folder, "parquet") == tmp_path / "2025-01-31T09-15-02-parquet"
    with pytest.raises(ValueError, match="edf, bdf, csv, parquet"):
        default_export_path(folder, "xlsx")


def test_refuses_to_overwrite_and_unknown_formats(session: Path, tmp_path: Path) -> None:
    taken = tmp_path / "taken.edf"
    taken.write_bytes(b"keep me")
    with pytest.raises(RecordingError, match="never overwrites"):
        run_export(session, "edf", taken)
    assert taken.read_bytes() == b"keep me"
    with pytest.raises(ValueError, match="unknown export format 'mat'"):
        run_export(session, "mat", tmp_path / "x")
    with pytest.raises(RecordingError, match="does not exist"):
        run_export(session, "csv", tmp_path / "missing" / "out")
    with pytest.raises(RecordingError, match="not a biofeed recording"):
        run_export(tmp_path, "csv", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.edf"], "nothing half-written is left"


def test_a_recording_without_samples_is_refused_for_edf(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "empty", source_url="test://") as writer:
        writer.append_event({"type": "note", "text": "nothing came"})
    with pytest.raises(RecordingError, match="no samples to export"):
        run_export(tmp_path / "empty", "bdf", tmp_path / "empty.bdf")
    assert not (tmp_path / "empty.bdf").exists() and not (tmp_path / "empty.bdf.partial").exists()
    events = pd.read_csv(run_export(tmp_path / "empty", "csv", tmp_path / "csv") / "events.csv")
    assert list(events["type"]) == ["note"]


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_anonymize_leaves_no_name_birth_date_or_pseudonym_in_any_output(
    session: Path, tmp_path: Path, fmt: str
) -> None:
    plain = _all_bytes(run_export(session, fmt, tmp_path / f"plain.{fmt}", identity=IDENTITY))
    anonymous_path = run_export(session, fmt, tmp_path / f"anonymous.{fmt}", identity=IDENTITY, anonymize=True)
    anonymous = _all_bytes(anonymous_path)
    for secret in SECRETS:
        assert secret.lower().encode() not in anonymous, f"{secret!r} in the anonymized {fmt} export"
    if fmt == "parquet":
        text = _parquet_text(anonymous_path)
        assert not [s for s in SECRETS if s.lower() in text]
        assert PSEUDONYM in _parquet_text(tmp_path / f"plain.{fmt}")
    else:
        assert b"annabelle" in plain, "the plain export names the client (the check can fail)"
    if fmt in ("edf", "bdf"):
        reader = edfio.read_edf if fmt == "edf" else edfio.read_bdf
        assert reader(anonymous_path).local_patient_identification == "X X X X"
        assert b"03-feb-1980" in plain


def test_anonymize_also_reads_the_identity_from_recording_json(session: Path, tmp_path: Path) -> None:
    meta = open_recording(session).meta
    assert meta["client"] == PSEUDONYM and meta["patient"]["name"] == "Annabelle Zwieback"
    plain = edfio.read_edf(run_export(session, "edf", tmp_path / "plain.edf"))
    assert plain.local_patient_identification == "client-7q3x F 03-FEB-1980 Annabelle_Zwieback"
    anonymous = _all_bytes(run_export(session, "edf", tmp_path / "anonymous.edf", anonymize=True))
    assert not [s for s in SECRETS if s.lower().encode() in anonymous]


def test_a_torn_recording_exports_what_it_has(session: Path, tmp_path: Path) -> None:
    torn = tmp_path / "torn"
    shutil.copytree(session, torn)
    frames = torn / "frames.bin"
    frames.write_bytes(frames.read_bytes()[: frames.stat().st_size // 2 - 7])
    expected = expected_streams(torn)
    n_emg = expected["emg"].data.shape[1]
    assert 15_000 < n_emg < 25_000
    edf = edfio.read_bdf(run_export(torn, "bdf", tmp_path / "torn.bdf"))
    end_s = edf.duration
    torn_notes = [a for a in edf.annotations if a.text.startswith("recording_damage torn tail of")]
    assert len(torn_notes) == 1 and torn_notes[0].onset == pytest.approx(end_s, abs=1.0)
    verdict = next(a for a in edf.annotations if a.text.startswith("verdict"))
    assert verdict.onset == end_s and verdict.text.endswith("[at 14 s, outside the data]")
    assert np.count_nonzero(edf.get_signal("emg.es_left").data) >= n_emg - 200  # the rest is fill
    csv = pd.read_csv(run_export(torn, "csv", tmp_path / "torn-csv") / "emg.csv")
    assert len(csv) == n_emg


def _redescribed_recording(path: Path) -> Path:
    """EMG at one scale, then an INFO with another scale for the same stream, then more EMG."""

    def info(scale: float) -> bytes:
        emg = StreamFormat(1, "emg", SampleFormat.INT24, 1_000_000, (ChannelFormat(ChannelKind.EMG, scale, "es_left"),))
        imu = StreamFormat(2, "imu", SampleFormat.INT16, 100_000, (ChannelFormat(ChannelKind.ACC, 1 / 4096, "acc_z"),))
        return InfoPayload((1, 0, 0), "redo-1", "ads1292r", (emg, imu)).to_payload()

    seq = 0

    def frame(ptype: PacketType, stream_id: int, index: int, payload: bytes) -> bytes:
        nonlocal seq
        seq += 1
        return encode_frame(Packet(ptype, stream_id, seq, index, payload))[:-1]

    with RecordingWriter(path, source_url="test://redo") as writer:
        writer.append_frame(frame(PacketType.INFO, 0, 0, info(0.02)), 100.0)
        for k in range(50):  # 1 s of EMG at 1 kHz, and IMU all along
            writer.append_frame(frame(PacketType.EMG, 1, 20 * k, encode_samples([[k] * 20], SampleFormat.INT24)), 100.0)
            writer.append_frame(
                frame(PacketType.IMU, 2, 2 * k, encode_samples([[4096, 4096]], SampleFormat.INT16)), 100
            )
        writer.append_frame(frame(PacketType.INFO, 0, 0, info(0.04)), 101.0)
        for k in range(50, 100):
            writer.append_frame(frame(PacketType.EMG, 1, 20 * k, encode_samples([[k] * 20], SampleFormat.INT24)), 101.0)
            writer.append_frame(
                frame(PacketType.IMU, 2, 2 * k, encode_samples([[4096, 4096]], SampleFormat.INT16)), 101
            )
    return path


def test_a_stream_described_anew_becomes_a_second_signal(tmp_path: Path) -> None:
    recording = _redescribed_recording(tmp_path / "redo")
    edf = edfio.read_edf(run_export(recording, "edf", tmp_path / "redo.edf"))
    assert edf.labels == ("emg.es_left", "imu.acc_z", "emg_2.es_left")
    first, second = edf.get_signal("emg.es_left").data, edf.get_signal("emg_2.es_left").data
    np.testing.assert_allclose(first[:1000], np.repeat(np.arange(50) * 0.02, 20), atol=1e-4)
    np.testing.assert_allclose(second[1000:], np.repeat(np.arange(50, 100) * 0.04, 20), atol=1e-4)
    assert np.all(np.abs(first[1000:]) < 1e-9) and np.all(np.abs(second[:1000]) < 1e-9)
    no_data = sorted((a.onset, a.duration, a.text.split(":")[0]) for a in edf.annotations if "no_data" in a.text)
    assert no_data == [(0.0, 1.0, "no_data emg_2"), (1.0, 1.0, "no_data emg")]
    folder = run_export(recording, "csv", tmp_path / "redo-csv")
    assert len(pd.read_csv(folder / "emg.csv")) == len(pd.read_csv(folder / "emg_2.csv")) == 1000


def test_every_event_the_pipeline_wrote_becomes_an_annotation(tmp_path: Path) -> None:
    from biofeed.sim.device import SimulatedDevice
    from biofeed.sim.outputs import write_recording

    recording = write_recording(SimulatedDevice("pandiculation", seed=2, duration_s=12), tmp_path / "sim")
    events = [json.loads(line) for line in (recording / "events.jsonl").read_text().splitlines()]
    assert events, "the simulated recording carries the pipeline's events"
    edf = edfio.read_edf(run_export(recording, "edf", tmp_path / "sim.edf"))
    assert len(edf.annotations) == len(events)
    assert sorted(a.text.split()[0] for a in edf.annotations) == sorted(e["type"] for e in events)
