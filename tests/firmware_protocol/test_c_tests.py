"""`make -C firmware_protocol test`: the C encoder against the vectors and the firmware loop tests."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware_protocol"
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)


@pytest.fixture(scope="module")
def make_test(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run `make test` once into a fresh build directory; the result and that directory."""
    build_dir = tmp_path_factory.mktemp("firmware_build")
    result = subprocess.run(
        ["make", "-C", str(FIRMWARE_DIR), "test", f"BUILD_DIR={build_dir}"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    return result, build_dir


def test_make_test_builds_and_every_c_check_passes(make_test: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    result, build_dir = make_test
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    summaries = [(int(passed), int(failed)) for passed, failed in SUMMARY.findall(result.stdout)]
    # One summary line from test_vectors, one from test_firmware_loop.
    assert len(summaries) == 2, output
    assert all(failed == 0 and passed > 0 for passed, failed in summaries), output
    assert (build_dir / "biofeed-fw-host").is_file()


def test_c_vector_test_fails_on_a_wrong_vector(
    make_test: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    _, build_dir = make_test
    text = (FIRMWARE_DIR / "vectors" / "vectors.json").read_text(encoding="utf-8")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(text.replace("[-8388608, 8388607, 0, -1, 1, 123456]", "[-8388608, 8388607, 0, -1, 2, 123456]"))
    assert wrong.read_text() != text
    result = subprocess.run(
        [str(build_dir / "test_vectors"), str(wrong)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    ((_, failed),) = SUMMARY.findall(result.stdout)
    assert int(failed) >= 1
    assert "FAIL emg_int24_extremes: packet differs" in result.stdout
