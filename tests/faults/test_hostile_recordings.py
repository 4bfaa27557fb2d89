"""Corrupt or hostile recording folders: ``info``, ``analyze`` and ``export`` refuse them with one clear line.

Exit code 1, exactly one ``biofeed: error: ...`` line naming what is wrong, no traceback, and
nothing outside the folder read: links out of it, FIFOs and devices are refused before reading,
device folders of a recording of several devices cannot be ``..`` or absolute paths. Damage
inside ``frames.bin`` (a huge length field) is not refused: it is skipped and counted.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from biofeed import cli
from biofeed.sim.device import SimulatedDevice
from biofeed.sim.outputs import write_recording

COMMANDS = ["info", "analyze", "export"]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_recording(SimulatedDevice("rest", seed=8, duration_s=2.0), tmp_path_factory.mktemp("base") / "rec")


def _meta(folder: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((folder / "recording.json").read_text())
    return document


def _put_meta(folder: Path, document: object) -> None:
    (folder / "recording.json").write_text(json.dumps(document))


def _link_out(name: str) -> Callable[[Path], str]:
    def make(folder: Path) -> str:
        outside = folder.parent / f"outside-{name}"
        shutil.copy(folder / name, outside)
        (folder / name).unlink()
        (folder / name).symlink_to(outside)
        return f"{name} is a link to {outside}, outside the recording: refused"

    return make


def _replace_with_link(name: str, target: str) -> Callable[[Path], str]:
    def make(folder: Path) -> str:
        (folder / name).unlink()
        (folder / name).symlink_to(target)
        return f"{name} is a link to {target}, outside the recording: refused"

    return make


def _fifo(folder: Path) -> str:
    (folder / "frames.bin").unlink()
    os.mkfifo(folder / "frames.bin")
    return "frames.bin is not a regular file: refused"


def _not_json(folder: Path) -> str:
    (folder / "recording.json").write_bytes(b'{"format": "biofeed-recording", "format_version": 1,')
    return "recording.json is damaged (not JSON)"


def _deeply_nested(folder: Path) -> str:
    (folder / "recording.json").write_bytes(b"[" * 200_000 + b"]" * 200_000)
    return "recording.json is damaged (not JSON)"


def _a_list(folder: Path) -> str:
    _put_meta(folder, [1, 2, 3])
    return "recording.json is not a biofeed recording description"


def _newer(folder: Path) -> str:
    _put_meta(folder, {**_meta(folder), "format_version": 99})
    return "recording format 99 is newer than this biofeed reads"


def _over_16_mib(folder: Path) -> str:
    os.truncate(folder / "recording.json", 17 << 20)  # sparse: costs no disk
    return "recording.json is over 16 MiB: not ours"


def _streams_not_a_list(folder: Path) -> str:
    meta = _meta(folder)
    meta["device"]["streams"] = "emg"
    _put_meta(folder, meta)
    return "recording.json"


def _huge_rate(folder: Path) -> str:
    meta = _meta(folder)
    meta["device"]["streams"][0]["sample_rate_hz"] = 1e308
    meta["device"]["streams"][0]["channels"] = meta["device"]["streams"][0]["channels"] * 10_000
    _put_meta(folder, meta)
    return "recording.json"


def _wrong_magic(folder: Path) -> str:
    with (folder / "frames.bin").open("r+b") as frames:
        frames.write(b"NOTOURS!")
    return "frames.bin is not a biofeed frames file"


def _devices(entries: list[dict[str, str]]) -> Callable[[Path], str]:
    def make(folder: Path) -> str:
        _put_meta(folder, {"format": "biofeed-recording", "format_version": 2, "devices": entries})
        return "recording.json holds an invalid device list"

    return make


def _device_folder_link_out(folder: Path) -> str:
    outside = folder.parent / "outside-device"
    shutil.copytree(folder, outside)
    (folder / "left").symlink_to(outside)
    _put_meta(
        folder,
        {
            "format": "biofeed-recording",
            "format_version": 2,
            "devices": [{"label": "left", "folder": "left", "source_url": "sim://rest"}],
        },
    )
    return f"left is a link to {outside}, outside the recording: refused"


REFUSED: dict[str, Callable[[Path], str]] = {
    "recording.json not JSON": _not_json,
    "recording.json nested 200000 deep": _deeply_nested,
    "recording.json a list": _a_list,
    "recording.json from a newer format": _newer,
    "recording.json of 17 MiB": _over_16_mib,
    "recording.json streams not a list": _streams_not_a_list,
    "recording.json a link out": _link_out("recording.json"),
    "frames.bin a link out": _link_out("frames.bin"),
    "frames.bin a link to /dev/zero": _replace_with_link("frames.bin", "/dev/zero"),
    "frames.bin a FIFO": _fifo,
    "frames.bin of another format": _wrong_magic,
    "events.jsonl a link to /etc/passwd": _replace_with_link("events.jsonl", "/etc/passwd"),
    "device folder ..": _devices([{"label": "..", "folder": "..", "source_url": "sim://rest"}]),
    "device folder ../other": _devices([{"label": "left", "folder": "../other", "source_url": "sim://rest"}]),
    "device folder absolute": _devices([{"label": "etc", "folder": "/etc", "source_url": "sim://rest"}]),
    "device folder a link out": _device_folder_link_out,
}


def _run(command: str, folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    argv = [command, str(folder)]
    if command == "export":
        argv += ["--to", "edf", "--out", str(folder.parent / "out.edf")]
    capsys.readouterr()
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", list(REFUSED))
def test_a_hostile_recording_is_refused_with_one_clear_line(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, command: str
) -> None:
    folder = tmp_path / "rec"
    shutil.copytree(base, folder)
    reason = REFUSED[case](folder)
    code, _, err = _run(command, folder, capsys)
    assert "Traceback" not in err and "internal error" not in err
    if case.startswith("events.jsonl") and command == "analyze":
        assert code == 0, err  # analyze re-runs the frames and never opens events.jsonl
        return
    errors = [line for line in err.splitlines() if line.startswith("biofeed:")]
    assert code == 1 and len(errors) == 1, err
    assert errors[0].startswith("biofeed: error: ") and reason in errors[0], errors[0]


def test_unknown_keys_naming_outside_files_are_never_followed(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "rec"
    shutil.copytree(base, folder)
    code, clean, _ = _run("info", folder, capsys)
    _put_meta(folder, {**_meta(folder), "frames": "/etc/passwd", "streams": {"emg": "/dev/zero"}, "events": "../x"})
    assert _run("info", folder, capsys)[:2] == (code, clean) == (0, clean)


def test_a_huge_length_field_is_damage_skipped_and_counted_not_an_allocation(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "rec"
    shutil.copytree(base, folder)
    hostile = struct.pack("<Id", 0xFFFFFFFF, 1.0) + b"\x11" * 40
    data = (folder / "frames.bin").read_bytes()
    (folder / "frames.bin").write_bytes(data[:8] + hostile + data[8:])
    code, out, err = _run("info", folder, capsys)
    assert code == 0, err
    assert "52 bytes skipped" in out
    code, out, err = _run("analyze", folder, capsys)
    assert code == 0, err
