"""The ``biofeed`` command: argument parsing and wiring only.

Every :class:`~biofeed.errors.BiofeedError` and bad argument becomes one line on stderr and a
non-zero exit code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from biofeed.errors import BiofeedError

if TYPE_CHECKING:
    from biofeed.multi_device import DeviceSpec
    from biofeed.runner import Sink
    from biofeed.sources.base import Source

__all__ = ["main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70

_SCENARIO_HELP = "rest, pandiculation, pandiculation-poor, flexion-relaxation or mixed"
_STATUS_INTERVAL_S = 0.5
_DEVICE_HELP = "serial://PATH, ble://ADDRESS|NAME, sim://SCENARIO, replay://DIR, lsl://NAME, brainflow://BOARD"


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _whole_positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="biofeed", description="Wearable sEMG/IMU biofeedback of the lower back.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sim = sub.add_parser("sim", help="run the built-in simulated sensor board")
    sim.add_argument("--scenario", default="pandiculation", help=_SCENARIO_HELP)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--duration", type=_positive, default=None, metavar="S", help="device seconds")
    sim.add_argument("--clock-ppm", type=float, default=0.0, metavar="P", help="device crystal error in ppm")
    out = sim.add_mutually_exclusive_group(required=True)
    out.add_argument("--pty", action="store_true", help="stream in real time through a new pseudo-terminal")
    out.add_argument("--stdout", action="store_true", help="write raw frames to stdout")
    out.add_argument("--out", type=Path, metavar="DIR", help="write a recording folder")
    out.add_argument("--bluez", action="store_true", help="serve over BLE via a fake BlueZ on a private D-Bus")
    sim.add_argument("--realtime", action="store_true", help="with --stdout: pace output to the device clock")
    sim.add_argument("--drop-every", type=_positive, default=None, metavar="S", help="with --bluez: drop the link")
    sim.add_argument("--truth", type=Path, metavar="FILE", help="write the ground truth as JSON")
    sim.set_defaults(handler=_sim)

    scan = sub.add_parser("scan", help="list serial ports and biofeed BLE devices")
    scan.add_argument("--ble-timeout", type=float, default=5.0, metavar="S", help="seconds to listen (0 skips BLE)")
    scan.set_defaults(handler=_scan)

    rec = sub.add_parser("record", help="record a device to a folder (headless, with a status line)")
    rec.add_argument(
        "--device",
        required=True,
        action="append",
        metavar="[LABEL=]URL",
        help=_DEVICE_HELP + "; repeat for several devices in one recording: --device left=URL --device right=URL",
    )
    rec.add_argument("--out", required=True, type=Path, metavar="DIR")
    rec.add_argument("--duration", type=_positive, default=None, metavar="S", help="device seconds")
    rec.add_argument("--client", default=None, metavar="NAME", help="client pseudonym stored with the recording")
    rec.add_argument("--lsl", action="store_true", help="publish streams and events on Lab Streaming Layer")
    rec.set_defaults(handler=_record)

    info = sub.add_parser("info", help="summarise a recording")
    info.add_argument("path", type=Path)
    info.add_argument("--json", action="store_true", help="one JSON object (docs/info-json.md)")
    info.set_defaults(handler=_info)

    exp = sub.add_parser("export", help="export a recording to EDF+/BDF+, CSV or Parquet (docs/export.md)")
    exp.add_argument("path", type=Path, metavar="PATH", help="recording folder")
    exp.add_argument("--to", required=True, choices=("edf", "bdf", "csv", "parquet"))
    exp.add_argument(
        "--out", type=Path, default=None, metavar="FILE", help="file or folder to create (default: by PATH)"
    )
    exp.add_argument("--anonymize", action="store_true", help="remove the client's name, birth date and pseudonym")
    exp.set_defaults(handler=_export)

    analyze = sub.add_parser("analyze", help="resting tension, contractions and pandiculation verdicts")
    analyze.add_argument("path", type=Path, help="a biofeed recording folder, an EDF/BDF file or a CSV file")
    analyze.add_argument("--json", action="store_true", help="one JSON object (docs/analysis-json.md)")
    analyze.add_argument("--fs", type=_positive, default=None, metavar="HZ", help="CSV without a time_s column")
    analyze.add_argument("--unit", choices=("uV", "mV", "V"), default=None, help="CSV sample unit (default uV)")
    analyze.add_argument("--channels", nargs="+", default=None, metavar="NAME", help="only these channels")
    analyze.add_argument(
        "--jobs", type=_whole_positive, default=None, metavar="N", help="PATH is a folder of recordings: N processes"
    )
    analyze.add_argument(
        "--table", type=Path, default=None, metavar="FILE", help="folder of recordings: the trials to .parquet or .csv"
    )
    analyze.add_argument(
        "--dask", default=None, metavar="SCHEDULER", help="folder of recordings on Dask: an address, or 'local'"
    )
    analyze.set_defaults(handler=_analyze)

    live = sub.add_parser("live", help="the live biofeedback window for any device")
    live.add_argument("--device", required=True, metavar="URL", help=_DEVICE_HELP)
    live.add_argument("--record", type=Path, default=None, metavar="DIR", help="record from the start into DIR")
    live.add_argument(
        "--client", default=None, metavar="NAME", help="apply the client's calibration; file recordings as sessions"
    )
    live.add_argument(
        "--protocol", default=None, metavar="NAME", help="show the cues of calibration/protocols/NAME.toml"
    )
    live.add_argument("--headless", action="store_true", help="the terminal status instead of the window")
    live.add_argument("--screenshot", type=Path, default=None, metavar="FILE", help="render the window to a PNG")
    live.add_argument("--duration", type=_positive, default=None, metavar="S", help="device seconds")
    live.add_argument("--window", type=_positive, default=10.0, metavar="S", help="seconds shown (default 10)")
    live.add_argument("--lsl", action="store_true", help="publish streams and events on Lab Streaming Layer")
    live.set_defaults(handler=_live)

    demo = sub.add_parser("demo", help="the live window on the simulated board, through a pseudo-terminal")
    demo.add_argument("--scenario", default="pandiculation", help=_SCENARIO_HELP)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--duration", type=_positive, default=None, metavar="S", help="device seconds (default: all)")
    demo.add_argument("--out", type=Path, default=None, metavar="DIR", help="default: a new folder in BIOFEED_HOME")
    demo.add_argument("--headless", action="store_true", help="the terminal status instead of the window")
    demo.set_defaults(handler=_demo)
    # --- practitioner sessions (biofeed/sessions, docs/sessions.md) ---
    rec.add_argument("--protocol", default=None, metavar="NAME", help="with --client: the exercise protocol followed")

    clients = sub.add_parser("clients", help="the practitioner's clients (pseudonyms)")
    clients_sub = clients.add_subparsers(dest="clients_command", required=True, metavar="ACTION")
    clients_add = clients_sub.add_parser("add", help="add a client; a pseudonym is generated when none is given")
    clients_add.add_argument("pseudonym", nargs="?", default=None, metavar="PSEUDONYM")
    clients_add.add_argument("--name", default=None, help="real name, stored only when given")
    clients_add.add_argument("--birth-date", default=None, metavar="YYYY-MM-DD", help="stored only when given")
    clients_add.set_defaults(handler=_clients_add)
    clients_list = clients_sub.add_parser("list", help="every client")
    clients_list.add_argument("--json", action="store_true")
    clients_list.set_defaults(handler=_clients_list)
    clients_show = clients_sub.add_parser("show", help="a client's calibrations, sessions and notes")
    clients_show.add_argument("client", metavar="CLIENT")
    clients_show.add_argument("--json", action="store_true")
    clients_show.set_defaults(handler=_clients_show)
    clients_note = clients_sub.add_parser("note", help="keep a practitioner's note about a client")
    clients_note.add_argument("client", metavar="CLIENT")
    clients_note.add_argument("text", metavar="TEXT")
    clients_note.add_argument("--session", type=int, default=None, metavar="ID", help="about this session")
    clients_note.set_defaults(handler=_clients_note)

    sessions = sub.add_parser("sessions", help="clients' sessions (recordings filed in the catalogue)")
    sessions_sub = sessions.add_subparsers(dest="sessions_command", required=True, metavar="ACTION")
    sessions_list = sessions_sub.add_parser("list", help="sessions, of one client or all")
    sessions_list.add_argument("--client", default=None, metavar="CLIENT")
    sessions_list.add_argument("--json", action="store_true")
    sessions_list.set_defaults(handler=_sessions_list)
    sessions_add = sessions_sub.add_parser("add", help="file a recording as a session of a client")
    sessions_add.add_argument("client", metavar="CLIENT")
    sessions_add.add_argument("recording", type=Path, metavar="RECORDING")
    sessions_add.add_argument("--protocol", default=None, metavar="NAME", help="the exercise protocol followed")
    sessions_add.add_argument(
        "--protocol-start", type=float, default=None, metavar="S", help="seconds into the recording it started"
    )
    sessions_add.add_argument("--posture", default=None, help="lying_supine, standing ... (default: the protocol's)")
    sessions_add.set_defaults(handler=_sessions_add)
    sessions_show = sessions_sub.add_parser("show", help="a session's set points and trials")
    sessions_show.add_argument("session_id", type=int, metavar="ID")
    sessions_show.add_argument("--json", action="store_true")
    sessions_show.set_defaults(handler=_sessions_show)

    calibrate = sub.add_parser("calibrate", help="guided calibration of a client on a device")
    calibrate.add_argument("--device", required=True, metavar="URL", help=_DEVICE_HELP)
    calibrate.add_argument("--client", required=True, metavar="NAME")
    calibrate.add_argument(
        "--headless",
        action="store_true",
        help="in the terminal, each step after the last (default: the live window with Confirm/Retry/Skip)",
    )
    calibrate.add_argument("--protocol", default="calibration", metavar="NAME", help="calibration/protocols/NAME.toml")
    calibrate.add_argument("--out", type=Path, default=None, metavar="DIR", help="default: a folder in BIOFEED_HOME")
    calibrate.set_defaults(handler=_calibrate)

    history = sub.add_parser("history", help="a client's progress across sessions")
    history.add_argument("client", metavar="CLIENT")
    history.add_argument("--json", action="store_true", help='{"client": ..., "sessions": [...], "trend": {...}}')
    history.set_defaults(handler=_history)

    report = sub.add_parser("report", help="a self-contained HTML report of a recording or a client")
    report.add_argument("target", metavar="RECORDING|CLIENT")
    report.add_argument("--out", required=True, type=Path, metavar="FILE.html")
    report.set_defaults(handler=_report)

    boards = sub.add_parser("boards", help="board profiles, and whether each can resolve true relaxation")
    boards.add_argument("name", nargs="?", default=None, metavar="NAME")
    boards.add_argument("--json", action="store_true")
    boards.set_defaults(handler=_boards)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="biofeed: %(message)s")
    try:
        code: int = args.handler(args)
        return code
    except KeyboardInterrupt:
        print("biofeed: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (`biofeed analyze ... | head`): a normal end. Point
        # stdout at /dev/null so the interpreter's final flush does not complain again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (BiofeedError, ValueError) as exc:
        if args.debug:
            raise
        print(f"biofeed: error: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ValueError) else EXIT_ERROR
    except Exception as exc:
        if args.debug:
            raise
        print(f"biofeed: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return EXIT_INTERNAL


def _sim(args: argparse.Namespace) -> int:
    from biofeed.sim.device import SimulatedDevice
    from biofeed.sim.outputs import open_pty, stream_to_fd, write_recording, write_truth

    if args.drop_every is not None and not args.bluez:
        raise ValueError("--drop-every works only with --bluez")
    device = SimulatedDevice(args.scenario, seed=args.seed, duration_s=args.duration, clock_ppm=args.clock_ppm)
    if args.truth is not None:
        write_truth(device, args.truth)
    if args.bluez:
        from biofeed.sim.bluez import serve_bluez

        return serve_bluez(device, drop_every_s=args.drop_every, out=sys.stdout)
    if args.out is not None:
        path = write_recording(device, args.out)
        print(f"recording: {path}")
    elif args.stdout:
        stream_to_fd(device, sys.stdout.fileno(), realtime=args.realtime)
    else:
        master_fd, slave_path = open_pty()
        print(f"pty: {slave_path}", flush=True)
        try:
            stream_to_fd(device, master_fd, realtime=True)
        finally:
            os.close(master_fd)
    return EXIT_OK


def _scan(args: argparse.Namespace) -> int:
    from serial.tools import list_ports

    ports = sorted(list_ports.comports(), key=lambda p: p.device)
    if not ports:
        print("no serial ports found")
    for port in ports:
        print(f"serial://{port.device}\t{port.description}\t{port.hwid}")
    if args.ble_timeout > 0:
        from biofeed.ble_scan import ble_scan_lines

        for line in ble_scan_lines(args.ble_timeout):
            print(line)
    return EXIT_OK


def _record(args: argparse.Namespace) -> int:
    from biofeed.multi_device import parse_device_specs
    from biofeed.sources import open_source

    specs = parse_device_specs(args.device)
    _load_acquisition_modules()  # before the port opens: a port nobody reads overflows
    pipeline_kwargs: dict[str, Any] = {}
    if args.client is not None:
        from biofeed.sessions.commands import record_pipeline_kwargs

        pipeline_kwargs = record_pipeline_kwargs(args.client)  # also refuses an unknown client before recording
    if len(specs) > 1:
        code = _record_devices(specs, args, pipeline_kwargs)
    else:
        code = _acquire(
            open_source(specs[0].url),
            specs[0].url,
            args.out,
            args.duration,
            args.client,
            lsl=args.lsl,
            pipeline_kwargs=pipeline_kwargs,
        )
    if args.client is not None:
        from biofeed.sessions.commands import file_recorded_session

        file_recorded_session(args.client, args.out, protocol=args.protocol)
    return code


def _record_devices(specs: Sequence[DeviceSpec], args: argparse.Namespace, pipeline_kwargs: dict[str, Any]) -> int:
    from biofeed.multi_device import MultiDeviceAcquisition, record_devices
    from biofeed.pipeline import Pipeline
    from biofeed.sources import open_source
    from biofeed.status_line import format_summary, write_devices_status

    sources: list[Source] = []
    try:
        for spec in specs:
            sources.append(open_source(spec.url))
    except BaseException:
        for source in sources:
            source.close()
        raise
    sinks: list[Sink] = []
    if args.lsl:  # nothing listens on the network unless asked
        from biofeed.sinks.lsl_outlet import LslOutletSink

        sinks.append(LslOutletSink())
    interactive = sys.stderr.isatty()

    def show_status(group: MultiDeviceAcquisition) -> None:
        write_devices_status(group.snapshot(), sys.stderr)

    result = record_devices(
        specs,
        sources,
        args.out,
        duration_s=args.duration,
        client=args.client,
        sinks=sinks,
        pipeline_factory=lambda: Pipeline(**pipeline_kwargs),
        on_tick=show_status if interactive else None,
        tick_s=_STATUS_INTERVAL_S,
    )
    if interactive:
        sys.stderr.write("\n")
    print(f"recording: {args.out}")
    for label, device_result in result.results.items():
        print(f"== {label}")
        print(format_summary(device_result.stats))
    for offset in result.alignment.offsets[1:]:
        print(f"alignment {offset.label}: {offset.offset_s * 1e3:+.2f} ms after the clock fits ({offset.method})")
    for label, error in result.errors.items():
        print(
            f"biofeed: error: {label}: {error} (everything received before it is in {args.out / label})",
            file=sys.stderr,
        )
    return EXIT_ERROR if result.errors else EXIT_OK


def _load_acquisition_modules() -> None:
    """Import the acquisition path (scipy, the DSP) now, not while a device fills an unread port."""
    import biofeed.pipeline
    import biofeed.record.writer
    import biofeed.runner  # noqa: F401


def _acquire(
    source: Source,
    url: str,
    out: Path,
    duration_s: float | None,
    client: str | None,
    *,
    lsl: bool = False,
    pipeline_kwargs: dict[str, Any] | None = None,
) -> int:
    from biofeed.pipeline import Pipeline
    from biofeed.record.writer import RecordingWriter
    from biofeed.runner import Acquisition
    from biofeed.sessions.board_notice import BoardNoticeSink
    from biofeed.status_line import format_summary, write_status
    from biofeed.timesync import ClockTracker

    interactive = sys.stderr.isatty()
    clocks = ClockTracker()  # the device clock against the host's, stored with the recording
    sinks: list[Sink] = [BoardNoticeSink(sys.stderr), clocks]  # the notice: can the board resolve relaxation
    if lsl:  # nothing listens on the network unless asked
        from biofeed.sinks.lsl_outlet import LslOutletSink

        sinks.append(LslOutletSink())
    with RecordingWriter(out, source_url=url, client=client) as recorder:
        pipeline = Pipeline(**(pipeline_kwargs or {}))
        acquisition = Acquisition(source, recorder=recorder, duration_s=duration_s, pipeline=pipeline, sinks=sinks)
        acquisition.start()
        try:
            while not acquisition.join(_STATUS_INTERVAL_S):
                if interactive:
                    write_status(acquisition.snapshot(), sys.stderr)
        except KeyboardInterrupt:
            acquisition.stop()
        result = acquisition.wait()
        if interactive:
            sys.stderr.write("\n")
        recorder.close(summary={"error": str(result.error) if result.error else None, "clock": clocks.to_json()})
    print(f"recording: {out}")
    print(format_summary(result.stats))
    if result.error is not None:
        print(f"biofeed: error: {result.error} (everything received before it is in {out})", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _info(args: argparse.Namespace) -> int:
    from biofeed.record.reader import is_multi_device_recording
    from biofeed.record.summary import summarize_multi_device_recording, summarize_recording

    summary = (
        summarize_multi_device_recording(args.path)
        if is_multi_device_recording(args.path)
        else summarize_recording(args.path)
    )
    print(json.dumps(summary.to_json(), indent=2) if args.json else summary.to_text())
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from biofeed.record.export import run_export

    identity = None
    if args.anonymize:  # the catalogue knows the name and birth date that recording.json leaves out
        from biofeed.record.reader import open_recording
        from biofeed.sessions.catalogue import export_identity

        identity = export_identity(open_recording(args.path).meta)
    print(f"export: {run_export(args.path, args.to, args.out, args.anonymize, identity=identity)}")
    return EXIT_OK


def _analyze(args: argparse.Namespace) -> int:
    from biofeed.analysis import analyze_path, format_analysis
    from biofeed.record.meta import META_FILE

    many = args.jobs is not None or args.table is not None or args.dask is not None
    if many or (args.path.is_dir() and not (args.path / META_FILE).is_file()):
        return _analyze_many(args)
    result = analyze_path(args.path, fs_hz=args.fs, unit=args.unit, channels=args.channels)
    print(json.dumps(result, indent=2, allow_nan=False) if args.json else format_analysis(result))
    return EXIT_OK


def _analyze_many(args: argparse.Namespace) -> int:
    from biofeed.batch_analysis import analyze_many, check_table_path, find_recordings, write_csv, write_table

    if args.fs is not None or args.unit is not None or args.channels:
        raise ValueError("--fs, --unit and --channels are for one recording or file, not a folder of recordings")
    if args.table is not None:
        check_table_path(args.table)
    recordings = find_recordings(args.path)
    result = analyze_many(recordings, jobs=args.jobs or 1, dask_scheduler=args.dask)
    for recording, reason in result.errors:
        print(f"biofeed: {recording}: {reason}", file=sys.stderr)
    rows = result.rows
    if args.table is not None:
        write_table(rows, args.table)
        n_trials = sum(row["error"] is None for row in rows)
        print(
            f"{n_trials} trials from {len(recordings) - len(result.errors)} of {len(recordings)} recordings"
            f" -> {args.table}"
        )
    elif args.json:
        for row in rows:
            print(json.dumps(row, allow_nan=False))
    else:
        write_csv(rows, sys.stdout)
    return EXIT_ERROR if result.errors else EXIT_OK


def _live(args: argparse.Namespace) -> int:
    from biofeed.live.app import run_live

    return run_live(
        args.device,
        record_dir=args.record,
        client=args.client,
        headless=args.headless,
        screenshot=args.screenshot,
        duration_s=args.duration,
        window_s=args.window,
        lsl=args.lsl,
        protocol=args.protocol,
    )


def _demo(args: argparse.Namespace) -> int:
    """The simulated board on a real pseudo-terminal, read by the serial source, shown live and recorded."""
    from biofeed.home import new_recording_path
    from biofeed.live.app import run_live
    from biofeed.sim.device import SimulatedDevice
    from biofeed.sim.outputs import open_pty, stream_to_fd, wait_for_request

    device = SimulatedDevice(args.scenario, seed=args.seed, duration_s=args.duration)
    duration_s = device.duration_s
    master_fd, slave_path = open_pty()
    stop = threading.Event()

    def feed() -> None:
        # Stream only once the serial source has opened the port (it asks for INFO on opening):
        # pyserial flushes what arrived before, and the recording would miss the start.
        if wait_for_request(master_fd, stop):
            stream_to_fd(device, master_fd, realtime=True, wait=stop.wait)

    feeder = threading.Thread(target=feed, daemon=True)
    out = args.out or new_recording_path("demo")
    print(f"demo: simulated '{args.scenario}' board on {slave_path} ({duration_s:g} s), recording to {out}")
    _load_acquisition_modules()
    feeder.start()
    try:
        return run_live(f"serial://{slave_path}", record_dir=out, headless=args.headless, duration_s=duration_s)
    finally:
        stop.set()
        feeder.join(timeout=2.0)
        os.close(master_fd)


def _clients_add(args: argparse.Namespace) -> int:
    from biofeed.sessions.commands import clients_add

    return clients_add(args.pseudonym, name=args.name, birth_date=args.birth_date)


def _clients_list(args: argparse.Namespace) -> int:
    from biofeed.sessions.commands import clients_list

    return clients_list(as_json=args.json)


def _clients_show(args: argparse.Namespace) -> int:
    from biofeed.sessions.commands import clients_show

    return clients_show(args.client, as_json=args.json)


def _clients_note(args: argparse.Namespace) -> int:
    from biofeed.sessions.commands import clients_note

    return clients_note(args.client, args.text, session_id=args.session)


def _sessions_list(args: argparse.Namespace) -> int:
    from biofeed.sessions.commands import sessions_list

    return sessions_list(args.client, as_json=args.json)


def _sessions_add(args: argparse.Namespace) -> int:
    from biofeed.sessions.commands import sessions_add

    return sessions_add(
        args.client, args.recording, protocol=args.protocol, protocol_start_s=args.protocol_start, posture=args.posture
    )


def _sessions_show(args: argparse.Namespace) -> int:
    from biofeed.sessions.commands import sessions_show

    return sessions_show(args.session_id, as_json=args.json)


def _calibrate(args: argparse.Namespace) -> int:
    from biofeed.sessions.commands import calibrate

    _load_acquisition_modules()  # before the port opens: a port nobody reads overflows
    return calibrate(args.device, args.client, headless=args.headless, protocol=args.protocol, out_dir=args.out)


def _history(args: argparse.Namespace) -> int:
    from biofeed.sessions.commands import history

    return history(args.client, as_json=args.json)


def _report(args: argparse.Namespace) -> int:
    from biofeed.sessions.commands import report

    return report(args.target, args.out)


def _boards(args: argparse.Namespace) -> int:
    from biofeed.sessions.commands import boards

    return boards(args.name, as_json=args.json)
