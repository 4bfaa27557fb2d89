"""The notebooks in notebooks/ run headless on recordings the suite makes, and are committed without outputs."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from biofeed.sim.device import SimulatedDevice
from biofeed.sim.outputs import write_recording

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
CELL_TIMEOUT_S = 120
SESSION_S = 100.0  # 60 s of rest, a pandiculation at 60 s, and its 10-40 s post-rest window


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("notebook-recordings")
    return [
        write_recording(SimulatedDevice(scenario, seed=seed, duration_s=SESSION_S), folder / scenario)
        for scenario, seed in (("pandiculation", 0), ("pandiculation-poor", 1))
    ]


def execute(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Run a notebook in a fresh kernel (which inherits these variables); a failing cell raises."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("BIOFEED_NOTEBOOK_OUT", str(tmp_path))
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        book, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    return book


def text_of(book: nbformat.NotebookNode) -> str:
    parts = []
    for cell in book.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_load_export_runs_on_a_recording(
    recordings: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIOFEED_RECORDING", str(recordings[0]))
    text = text_of(execute("01_load_export.ipynb", tmp_path, monkeypatch))
    assert f"recording: {recordings[0]}" in text
    assert "largest CSV/EDF difference" in text  # the notebook asserts the readers agree
    assert "es_left" in text and "es_right" in text
    exports = [p.name for p in tmp_path.glob("biofeed-notebook-*/*")]
    assert sorted(exports) == ["export-csv", "export.edf"]


def test_compare_sessions_runs_on_two_recordings(
    recordings: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIOFEED_RECORDINGS", os.pathsep.join(str(r) for r in recordings))
    text = text_of(execute("02_compare_sessions.ipynb", tmp_path, monkeypatch))
    assert "pandiculation-poor / pandiculation" in text  # the ratio column of the comparison
    for recording in recordings:
        assert recording.name in text


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_notebooks_have_no_outputs(path: Path) -> None:
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a cell keeps its outputs; strip them before committing"
            assert cell.execution_count is None, f"{path.name}: a cell keeps its execution count"
    assert set(book.metadata) <= {"kernelspec", "language_info"}, f"{path.name}: extra metadata {set(book.metadata)}"


def test_there_are_notebooks() -> None:
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} >= {"01_load_export.ipynb", "02_compare_sessions.ipynb"}
