from __future__ import annotations

from pathlib import Path

import pytest

from biofeed.live.app import display_available, run_demo, run_live


@pytest.mark.parametrize(
    ("environ", "platform", "available"),
    [
        ({}, "linux", False),
        ({"DISPLAY": ":0"}, "linux", True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", True),
        ({"QT_QPA_PLATFORM": "xcb"}, "linux", False),
        ({}, "darwin", True),
        ({}, "win32", True),
    ],
)
def test_display_available(environ: dict[str, str], platform: str, available: bool) -> None:
    assert display_available(environ, platform) is available


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"screenshot": Path("x.png")}, "needs --duration"),
        ({"screenshot": Path("x.png"), "duration_s": 1.0, "headless": True}, "leave out --headless"),
        ({"window_s": 400.0}, "--window"),
    ],
)
def test_conflicting_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_live("sim://rest?speed=0", **options)  # type: ignore[arg-type]


def test_screenshot_renders_the_window_offscreen(qapp, tmp_path: Path, capsys) -> None:
    from biofeed.live.qt import QtGui

    shot = tmp_path / "live.png"
    assert run_live("sim://pandiculation?speed=0", screenshot=shot, duration_s=12.0) == 0
    image = QtGui.QImage(str(shot))
    assert (image.width(), image.height()) == (1500, 950)
    colours = {image.pixel(x, y) for x in range(0, 1500, 50) for y in range(0, 950, 50)}
    assert len(colours) > 5
    assert f"screenshot: {shot}" in capsys.readouterr().out


def test_without_a_display_live_says_so_and_shows_the_terminal_status(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("biofeed.live.app.sys.platform", "linux")
    monkeypatch.setenv("BIOFEED_HOME", str(tmp_path))
    assert run_demo("rest", duration_s=2.0, speed=0.0) == 0
    captured = capsys.readouterr()
    assert "no display" in captured.err and "terminal status" in captured.err
    recordings = list((tmp_path / "recordings").glob("demo-*"))
    assert len(recordings) == 1
    assert f"recording: {recordings[0]}" in captured.out


def test_the_terminal_view_imports_no_qt() -> None:
    import subprocess
    import sys

    code = (
        "import sys, biofeed.live, biofeed.live.terminal, biofeed.sinks.ring_buffer; "
        "print(any(m.split('.')[0] in ('PySide6', 'pyqtgraph') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
