"""`python -m probe`: the replication probe as a process (the image's entrypoint).

Exit 0 when stopped by SIGTERM or SIGINT, 2 for a bad setting (one line on stderr, no traceback).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence

from probe.config import ConfigError, load
from probe.log import Log, silence_stdout


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    return stop


def main(argv: Sequence[str] | None = None) -> int:
    # First: a signal while the rest imports (boto3 takes a moment) stops the probe cleanly too.
    stop = _stop_on_signals()
    try:
        config = load(argv)
    except ConfigError as exc:
        print(f"probe: {exc}", file=sys.stderr)
        return 2
    from probe.loop import run  # after the handlers, see above

    log = Log()
    run(config, stop, log)
    log.close()
    return 0


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # `--help | head`: the reader left
        silence_stdout()


if __name__ == "__main__":
    try:
        code = main()
    except SystemExit as exc:  # --help
        code = exc.code if isinstance(exc.code, int) else 0
    _flush_stdout()
    sys.exit(code)
