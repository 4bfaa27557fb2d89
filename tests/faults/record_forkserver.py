"""A process that has imported ``biofeed record``'s whole code path and forks a run of it on request.

``python -m tests.faults.record_forkserver``: each stdin line is a JSON object ``{"argv": [...],
"log": PATH}``; it forks a child that runs ``biofeed.cli.main(argv)`` with stdout and stderr in
``log`` and answers ``{"pid": N}``. A line ``{"reap": N}`` waits for that child and answers
``{"status": S}`` (``os.waitpid``'s). Forking skips the second or more of imports per run, so the
kill test can afford 20 real ``record`` processes; the child runs exactly what the console script runs.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    """Serve fork requests until stdin closes."""
    from biofeed import cli

    cli._load_acquisition_modules()
    import biofeed.sessions.board_notice
    import biofeed.sources.sim
    import biofeed.status_line
    import biofeed.timesync  # noqa: F401

    for line in sys.stdin:
        request = json.loads(line)
        if "reap" in request:
            _, status = os.waitpid(int(request["reap"]), 0)
            answer: dict[str, int] = {"status": status}
        else:
            pid = os.fork()
            if pid == 0:
                fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os._exit(cli.main(request["argv"]))
            answer = {"pid": pid}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
