"""Health data stays with its owner (issue 10, item 4).

- Every file and folder biofeed creates in a practitioner's session (client, calibration, recording
  filed as a session, exports, reports, the catalogue and SQLite's journal files) is readable by its
  owner only, even under a umask of 0 that would leave anything not set explicitly world-readable.
- ``--anonymize`` exports hold no name, birth date or pseudonym in any byte (EDF+/BDF+ header and
  annotations, CSV, Parquet data and metadata, decompressed), including the spellings a note may use
  and the name only the catalogue knows.
- ``record`` and ``live --headless`` open no network socket at all unless ``--lsl`` is given.
- Over BLE, a device is connected only when it advertises biofeed's service or the user named its
  address: a stranger advertising the same name is passed over.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import edfio
import psutil
import pytest

from biofeed.cli import main
from biofeed.errors import DeviceNotFoundError, SourceError
from biofeed.record.export import ClientIdentity, run_export
from biofeed.record.reader import open_recording
from biofeed.sessions.catalogue import CATALOGUE_FILE, Catalogue, export_identity
from biofeed.sim.device import SimulatedDevice
from biofeed.sim.outputs import write_recording

NAME = "Zoë Müller-Smith"
BIRTH_DATE = "1980-02-03"
PSEUDONYM = "anna-7q"
# Spellings a practitioner's note may use; each must be gone from an anonymized export.
NOTES = (
    f"{NAME} says the back feels lighter",
    "ZOË MÜLLER-SMITH stretched",
    "Zoe Muller-Smith (typed without accents)",
    "Mrs Mueller, born 03.02.1980",
    "date of birth 3 Feb 1980; also written February 3, 1980 and 02/03/1980",
    f"session for {PSEUDONYM}",
)
FORBIDDEN = (
    NAME,
    "Zoë",
    "Zoe",
    "Müller",
    "Muller",
    "Mueller",
    "Smith",
    PSEUDONYM,
    BIRTH_DATE,
    "03-FEB-1980",
    "03.02.1980",
    "3 Feb 1980",
    "February 3, 1980",
    "02/03/1980",
    "19800203",
)

SHORT_CALIBRATION = """
kind = "calibration"
name = "calibration-quick"
[[step]]
kind = "signal_check"
duration_s = 4.0
instruction = "Lie still."
posture = "lying_supine"
[[step]]
kind = "noise_floor"
duration_s = 10.0
instruction = "Stay relaxed."
posture = "lying_supine"
[[step]]
kind = "set_point"
duration_s = 6.0
instruction = "Keep resting."
posture = "lying_supine"
"""


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _loose(paths: list[Path]) -> list[str]:
    """Paths whose mode is not 0o700 (folders) or 0o600 (files)."""
    return [f"{p} {_mode(p):o}" for p in paths if _mode(p) != (0o700 if p.is_dir() and not p.is_symlink() else 0o600)]


# --- owner-only files --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def practice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A client, a calibration, a session recorded with --client, exports and reports; under umask 0."""
    root = tmp_path_factory.mktemp("practice")
    protocol = root / "calibration-quick.toml"
    protocol.write_text(SHORT_CALIBRATION)
    home, work = root / "home", root / "work"
    work.mkdir()
    rec = work / "rec"
    with pytest.MonkeyPatch.context() as patch, _umask(0):
        patch.setenv("BIOFEED_HOME", str(home))
        assert main(["clients", "add", PSEUDONYM, "--name", NAME, "--birth-date", BIRTH_DATE]) == 0
        device = "sim://rest?speed=0&seed=4&duration=25"
        main(["calibrate", "--device", device, "--client", PSEUDONYM, "--headless", "--protocol", str(protocol)])
        device = "sim://pandiculation?speed=0&seed=1&duration=20"
        assert main(["record", "--device", device, "--client", PSEUDONYM, "--out", str(rec)]) == 0
        for fmt in ("edf", "csv", "parquet"):
            assert main(["export", str(rec), "--to", fmt]) == 0
        assert main(["export", str(rec), "--to", "bdf", "--anonymize", "--out", str(work / "anonymous.bdf")]) == 0
        assert main(["report", PSEUDONYM, "--out", str(work / "client.html")]) == 0
        assert main(["report", str(rec), "--out", str(work / "rec.html")]) == 0
    yield {"home": home, "work": work, "rec": rec}


def test_every_file_of_a_session_is_readable_by_its_owner_only(practice: dict[str, Path]) -> None:
    home, work = practice["home"], practice["work"]
    created = [home, *home.rglob("*"), *work.rglob("*")]
    names = {p.relative_to(home.parent).as_posix() for p in created}
    # the walk covers every kind of file the session made
    for expected in (
        "home/catalogue.sqlite",
        "work/rec/frames.bin",
        "work/rec/recording.json",
        "work/rec/events.jsonl",
        "work/rec.edf",
        "work/rec-csv/emg.csv",
        "work/rec-parquet/emg.parquet",
        "work/anonymous.bdf",
        "work/client.html",
        "work/rec.html",
    ):
        assert expected in names, f"{expected} was not made"
    calibrations = [p for p in (home / "recordings").iterdir() if (p / "frames.bin").is_file()]
    assert calibrations, "the calibration's recording is kept under BIOFEED_HOME/recordings"
    assert not _loose(created), "\n".join(_loose(created))
    assert len(created) >= 20


def test_the_catalogues_journal_and_wal_files_are_owner_only_too(tmp_path: Path) -> None:
    path = tmp_path / "home" / CATALOGUE_FILE
    with _umask(0), Catalogue(path) as catalogue:
        with catalogue.transaction():
            catalogue.add_client("anna", name=NAME)
            journal = path.with_name(path.name + "-journal")
            assert journal.exists() and _mode(journal) == 0o600
        # a catalogue someone switched to write-ahead logging keeps its -wal and -shm private as well
        catalogue._db.execute("PRAGMA journal_mode=WAL")
        catalogue.add_client("ben", birth_date=BIRTH_DATE)
        side_files = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
        assert all(p.exists() for p in side_files)
        assert not _loose([path.parent, path, *side_files])


# --- anonymized exports ------------------------------------------------------------------------


def _exported_text(path: Path) -> str:
    """Every byte of an export as text, plus what compression hides: Parquet values and metadata, EDF annotations."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    parts = []
    for file in files:
        parts.append(file.read_bytes().decode("utf-8", "replace"))
        if file.suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(file)
            parts.append(json.dumps(table.to_pylist(), default=str, ensure_ascii=False))
            metadata = table.schema.metadata or {}
            parts += [k.decode("utf-8", "replace") + v.decode("utf-8", "replace") for k, v in metadata.items()]
        if file.suffix in (".edf", ".bdf"):
            edf = (edfio.read_edf if file.suffix == ".edf" else edfio.read_bdf)(file)
            parts += [edf.local_patient_identification, edf.local_recording_identification]
            parts += [a.text for a in edf.annotations]
    return "\n".join(parts).casefold()


def _leaks(path: Path) -> list[str]:
    text = _exported_text(path)
    return [secret for secret in FORBIDDEN if secret.casefold() in text]


def _add_notes(recording: Path, notes: tuple[str, ...]) -> None:
    with (recording / "events.jsonl").open("a", encoding="utf-8") as events:
        for k, text in enumerate(notes):
            events.write(json.dumps({"type": "note", "time_s": 1.0 + k, "text": text}, ensure_ascii=False) + "\n")


@pytest.fixture(scope="module")
def named_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recording that names its client everywhere it can: folder, source, recording.json, notes."""
    folder = tmp_path_factory.mktemp("named") / f"{NAME} {BIRTH_DATE}"
    write_recording(SimulatedDevice("rest", seed=5, duration_s=8.0), folder)
    meta = json.loads((folder / "recording.json").read_text())
    meta["client"] = PSEUDONYM
    meta["source_url"] = f"replay:///clients/{NAME}/monday"
    meta["patient"] = {"name": NAME, "birth_date": BIRTH_DATE, "sex": "F"}
    (folder / "recording.json").write_text(json.dumps(meta, ensure_ascii=False))
    _add_notes(folder, NOTES)
    return folder


@pytest.mark.parametrize("fmt", ["edf", "bdf", "csv", "parquet"])
def test_an_anonymized_export_holds_no_name_birth_date_or_pseudonym(
    named_recording: Path, tmp_path: Path, fmt: str
) -> None:
    plain = run_export(named_recording, fmt, tmp_path / f"plain.{fmt}")
    assert len(_leaks(plain)) >= 10, "the plain export names the client (the check can fail)"
    anonymous = run_export(named_recording, fmt, tmp_path / f"anonymous.{fmt}", anonymize=True)
    assert _leaks(anonymous) == []
    if fmt == "csv":  # the notes are kept, only the identity is gone
        assert "says the back feels lighter" in (anonymous / "events.csv").read_text()


def test_the_name_only_the_catalogue_knows_is_redacted_too(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    write_recording(SimulatedDevice("rest", seed=6, duration_s=6.0), folder)
    meta = json.loads((folder / "recording.json").read_text())
    meta["client"] = PSEUDONYM  # what `record --client` stores: the pseudonym, never the name
    (folder / "recording.json").write_text(json.dumps(meta))
    _add_notes(folder, NOTES)
    catalogue_path = tmp_path / "home" / CATALOGUE_FILE
    with Catalogue(catalogue_path) as catalogue:
        catalogue.add_client(PSEUDONYM, name=NAME, birth_date=BIRTH_DATE)
    identity = export_identity(open_recording(folder).meta, catalogue_path)
    assert identity == ClientIdentity(PSEUDONYM, NAME, datetime.date(1980, 2, 3))
    from_recording_only = run_export(folder, "csv", tmp_path / "partial", anonymize=True)
    assert "müller" in _exported_text(from_recording_only)  # recording.json alone does not know the name
    assert _leaks(run_export(folder, "csv", tmp_path / "csv", anonymize=True, identity=identity)) == []
    # no catalogue, or a client it does not know: the recording's own identity, and no catalogue is created
    elsewhere = tmp_path / "nowhere" / CATALOGUE_FILE
    assert export_identity(meta, elsewhere) == ClientIdentity(PSEUDONYM) and not elsewhere.parent.exists()
    assert export_identity(meta | {"client": "ben"}, catalogue_path) == ClientIdentity("ben")


# --- no listening socket unless asked ----------------------------------------------------------


def _sockets(process: psutil.Process) -> set[tuple[str, str, int, str]]:
    """The IPv4 and IPv6 sockets a process holds now: (type, local address, local port, status)."""
    with contextlib.suppress(psutil.Error):
        return {
            (c.type.name, c.laddr.ip if c.laddr else "", c.laddr.port if c.laddr else 0, c.status)
            for c in process.net_connections(kind="inet")
        }
    return set()


def _watch(processes: list[subprocess.Popen[str]]) -> tuple[set[tuple[str, str, int, str]], int]:
    """Every socket the processes hold, sampled until they all exit; and how many samples were taken."""
    watched = [psutil.Process(p.pid) for p in processes]
    seen: set[tuple[str, str, int, str]] = set()
    n_samples = 0
    while any(p.poll() is None for p in processes):
        for process in watched:
            seen |= _sockets(process)
        n_samples += 1
        with contextlib.suppress(subprocess.TimeoutExpired):
            processes[0].wait(timeout=0.05)
    return seen, n_samples


def _biofeed(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "biofeed", *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def test_the_socket_watch_sees_a_listening_socket() -> None:
    script = (
        "import socket, sys\n"
        "s = socket.socket()\n"
        "s.bind(('127.0.0.1', 0))\n"
        "s.listen()\n"
        "print(s.getsockname()[1], flush=True)\n"
        "sys.stdin.read()\n"
    )
    server = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdin is not None and server.stdout is not None
    port = int(server.stdout.readline())  # listening from here until its stdin closes
    seen = _sockets(psutil.Process(server.pid))
    server.stdin.close()
    server.wait(timeout=30)
    assert ("SOCK_STREAM", "127.0.0.1", port, psutil.CONN_LISTEN) in seen


def test_record_and_live_open_no_network_socket_without_lsl(tmp_path: Path) -> None:
    device = "sim://rest?speed=1&duration=3"
    processes = [
        _biofeed("record", "--device", device, "--out", str(tmp_path / "rec"), cwd=tmp_path),
        _biofeed("live", "--headless", "--device", device, cwd=tmp_path),
    ]
    seen, n_samples = _watch(processes)
    for process in processes:
        _, err = process.communicate()
        assert process.returncode == 0, err
    assert n_samples >= 10  # the processes were watched while they ran
    assert seen == set(), f"sockets opened without --lsl: {sorted(seen)}"


@pytest.mark.slow
def test_with_lsl_the_outlets_listen(tmp_path: Path) -> None:
    pytest.importorskip("pylsl")
    device = "sim://rest?speed=1&duration=3"
    process = _biofeed("record", "--lsl", "--device", device, "--out", str(tmp_path / "rec"), cwd=tmp_path)
    seen, _ = _watch([process])
    process.communicate()
    assert any(status == psutil.CONN_LISTEN for *_, status in seen)


# --- BLE: biofeed devices or the one the user named ----------------------------------------------

REAL_ADDRESS = "B1:0F:EE:D0:00:01"
STRANGER_ADDRESS = "C0:FF:EE:00:00:09"


@pytest.fixture(scope="module")
def bluez_bus() -> Iterator[str]:
    if shutil.which("dbus-daemon") is None:
        pytest.skip("needs dbus-daemon (apt install dbus-daemon)")
    from biofeed.sim.bluez_bus import PrivateBus

    with PrivateBus() as bus, pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)  # where bleak looks for BlueZ
        yield bus.address


@contextlib.contextmanager
def _bluez(bus_address: str, *, name: str, stranger_name: str) -> Iterator[list[str]]:
    """A fake BlueZ with the biofeed device and a stranger (heart-rate service only); yields the addresses connected."""
    from biofeed.sim.bluez import FakeBluez

    fake = FakeBluez(
        SimulatedDevice("rest", duration_s=30),
        bus_address=bus_address,
        name=name,
        address=REAL_ADDRESS,
        speed=4.0,
        bystander=(stranger_name, STRANGER_ADDRESS),
    )
    connected: list[str] = []
    connect = fake.connect

    def recorded_connect(device):  # type: ignore[no-untyped-def]
        connected.append(device.device_address)
        connect(device)

    fake.connect = recorded_connect  # type: ignore[method-assign]
    fake.start()
    try:
        yield connected
    finally:
        fake.stop()


def test_a_stranger_advertising_the_same_name_is_passed_over(bluez_bus: str) -> None:
    from biofeed.sources.ble import BleSource

    with _bluez(bluez_bus, name="biofeed-box", stranger_name="biofeed-box") as connected:
        source = BleSource("biofeed-box", scan_timeout_s=5.0)
        source.close()
    assert connected == [REAL_ADDRESS]


def test_a_stranger_alone_with_the_name_is_not_connected(bluez_bus: str) -> None:
    from biofeed.sources.ble import BleSource

    with (
        _bluez(bluez_bus, name="biofeed-other", stranger_name="biofeed-box") as connected,
        pytest.raises(DeviceNotFoundError, match="'biofeed-box'"),
    ):
        BleSource("biofeed-box", scan_timeout_s=0.5)
    assert connected == []


def test_a_device_the_user_names_by_address_is_connected_even_without_the_service(bluez_bus: str) -> None:
    from biofeed.sources.ble import BleSource

    with (
        _bluez(bluez_bus, name="biofeed-box", stranger_name="biofeed-box") as connected,
        pytest.raises(SourceError, match="no biofeed data characteristic"),
    ):
        BleSource(STRANGER_ADDRESS, scan_timeout_s=5.0, max_reconnects=0)
    assert connected == [STRANGER_ADDRESS]  # the user asked for it: connected, then refused for lacking biofeed
