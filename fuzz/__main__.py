"""``python -m fuzz (NAME | --all) [--seconds N | --runs N] [--seed S] [--corpus DIR] [-- LIBFUZZER_ARGS]``.

Runs one harness of :mod:`fuzz.targets` under atheris (libFuzzer), starting from the seeds of
:mod:`fuzz.seeds`. New inputs go to ``--corpus`` (default ``/tmp/biofeed-fuzz/NAME``; seeded when
empty), a crashing input to ``crash-*`` in the current folder; ``python -m fuzz NAME -- FILE``
replays one input. libFuzzer prints its statistics (``stat::number_of_executed_units``,
``stat::average_exec_per_sec``) at the end.

``--all`` runs every harness in turn, each in a process forked after the one import, with
``--corpus`` (default ``/tmp/biofeed-fuzz``) holding a folder and a ``NAME.log`` per harness; it
prints one line per harness and exits 1 when any of them found something.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

_RSS_LIMIT_MB = 2048
_TIMEOUT_S = 30
_NOT_INSTRUMENTED = ["biofeed.record.reader", "biofeed.record.summary", "biofeed.timesync", "biofeed.device_alignment"]
"""Run but not coverage-guided: atheris 3.0 leaks the result of every instrumented comparison that
is not a bool (a numpy array: ``b == 0`` over the reader's 1 MiB scan window), about 250 kB per input."""


@functools.cache
def _seeds() -> dict[str, list[bytes]]:
    from fuzz.seeds import build_seeds

    return build_seeds()


def _seed_corpus(name: str, corpus: Path) -> None:
    from fuzz.seeds import SEED_KIND

    corpus.mkdir(parents=True, exist_ok=True)
    if not any(corpus.iterdir()):  # a corpus kept from an earlier run already holds the seeds
        for seed in _seeds()[SEED_KIND[name]]:
            (corpus / f"seed-{hashlib.sha1(seed).hexdigest()[:12]}").write_bytes(seed)


def _fuzz(target: Callable[[bytes], None], flags: list[str], inputs: list[str]) -> None:
    import atheris

    atheris.Setup([sys.argv[0], *flags, *inputs], target)
    atheris.Fuzz()  # exits the process


def _fuzz_all(targets: dict[str, Callable[[bytes], None]], flags: list[str], root: Path) -> int:
    failed = []
    for name, target in targets.items():
        _seed_corpus(name, root / name)
        log = root / f"{name}.log"
        pid = os.fork()
        if pid == 0:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.chdir(root)  # crash-* files land next to the logs
            _fuzz(target, flags, [str(root / name)])
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        stats = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("Done ")]
        print(f"{name}: exit status {os.waitstatus_to_exitcode(status)}; {stats[-1] if stats else 'see ' + str(log)}")
        failed += [name] * (status != 0)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Run the harness named on the command line, or all of them."""
    import atheris

    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?")
    parser.add_argument("--list", action="store_true", help="name the harnesses")
    parser.add_argument("--all", action="store_true", help="run every harness in turn")
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument("--seconds", type=int, default=None, help="run this long (per harness)")
    limit.add_argument("--runs", type=int, default=None, help="run this many inputs (per harness)")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer's random seed")
    parser.add_argument("--corpus", type=Path, default=None, help="folder of inputs kept between runs")
    parser.add_argument("libfuzzer", nargs="*", help="after --: arguments passed to libFuzzer")
    args = parser.parse_args(argv)

    with atheris.instrument_imports(include=["biofeed", "edfio"], exclude=_NOT_INSTRUMENTED):
        from fuzz.targets import TARGETS
    if args.list or (args.name is None and not args.all):
        print("\n".join(TARGETS))
        return 0
    flags = [f"-seed={args.seed}", f"-rss_limit_mb={_RSS_LIMIT_MB}", f"-timeout={_TIMEOUT_S}", "-print_final_stats=1"]
    if args.seconds is not None:
        flags.append(f"-max_total_time={args.seconds}")
    if args.runs is not None:
        flags.append(f"-runs={args.runs}")
    if args.all:
        return _fuzz_all(TARGETS, flags, args.corpus or Path("/tmp/biofeed-fuzz"))
    if args.name not in TARGETS:
        parser.error(f"unknown harness {args.name!r}; allowed: {', '.join(TARGETS)}")
    corpus = args.corpus or Path("/tmp/biofeed-fuzz") / args.name
    _seed_corpus(args.name, corpus)
    _fuzz(TARGETS[args.name], flags, args.libfuzzer or [str(corpus)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
