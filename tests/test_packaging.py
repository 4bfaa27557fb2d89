"""A wheel carries the board profiles and protocols of the top-level ``calibration/`` folder.

The wheel is built from a copy of the source (pip, no build isolation: offline, with the test
extra's setuptools and wheel), then unpacked as an installer would and imported in a fresh
interpreter that sees the unpacked package before the editable checkout.
"""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "calibration").glob("*/*.toml"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "calibration", source / "calibration")
    # symlinks=True keeps biofeed/calibration a link, as in the checkout
    shutil.copytree(REPO / "biofeed", source / "biofeed", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    out = root / "dist"
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    done = subprocess.run(
        [*command, "--wheel-dir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "HOME": str(root)},
    )
    assert done.returncode == 0, done.stderr
    (built,) = out.glob("biofeed-*.whl")
    return built


def test_the_checkout_links_the_package_folder_to_the_one_calibration_folder() -> None:
    link = REPO / "biofeed" / "calibration"
    assert link.is_symlink() and link.resolve() == (REPO / "calibration").resolve()
    assert len(SHIPPED) >= 9  # six boards, three protocols at the time of writing


def test_the_wheel_holds_every_profile_and_protocol_byte_for_byte(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        missing = [name for name in SHIPPED if f"biofeed/{name}" not in names]
        assert not missing, f"not in the wheel: {missing}"
        for name in SHIPPED:
            assert archive.read(f"biofeed/{name}") == (REPO / name).read_bytes()
        # one copy: nothing of calibration/ outside the package
        assert not [n for n in names if n.startswith("calibration/")]


def test_an_installed_wheel_finds_its_board_profiles(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(site)!r})\n"
        "import biofeed\n"
        "from biofeed.boards import BOARDS_FOLDER, board_profiles, find_board_profile\n"
        "from biofeed.sessions.protocol import load_exercise_protocol\n"
        "print(json.dumps({'package': biofeed.__file__, 'folder': str(BOARDS_FOLDER),\n"
        "    'boards': [p.name for p in board_profiles()], 'sim': find_board_profile('simulator') is not None,\n"
        "    'protocol': load_exercise_protocol('pandiculation').name}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert Path(found["package"]).is_relative_to(site)  # the installed copy, not the checkout
    assert Path(found["folder"]).is_relative_to(site) and not Path(found["folder"]).is_symlink()
    assert found["boards"] == sorted(Path(n).stem for n in SHIPPED if n.startswith("calibration/boards/"))
    assert found["sim"]
    assert found["protocol"] == "pandiculation"
