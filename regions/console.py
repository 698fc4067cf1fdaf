"""How every command of the project ends: one line on Ctrl-C, nothing at all when its reader goes away."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

# As shells report a command stopped by SIGINT and SIGPIPE.
INTERRUPTED, READER_GONE = 130, 141


def run(main: Callable[[], int], name: str, *, stateless: bool = False) -> None:
    """Run a command's main and exit with its code: Ctrl-C prints one line (exit 130); a closed pipe (`| head`) ends it
    quietly (exit 141), with stdout pointed at /dev/null so the flush at exit cannot print a traceback either.

    A `stateless` command (it changes nothing, like synth) stops at once on Ctrl-C: a KeyboardInterrupt raised inside
    the Pulumi engine's threads or an import can be swallowed there, or leave threads that never end."""
    if stateless:
        signal.signal(signal.SIGINT, lambda *_: _interrupted(name, immediately=True))
    try:
        code = main()
        sys.stdout.flush()
    except KeyboardInterrupt:
        code = _interrupted(name)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = READER_GONE
    sys.exit(code)


def _interrupted(name: str, immediately: bool = False) -> int:
    print(f"{name}: interrupted", file=sys.stderr, flush=True)
    if immediately:
        os._exit(INTERRUPTED)
    return INTERRUPTED
