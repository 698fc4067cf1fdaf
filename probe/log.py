"""One JSON line per event on stdout (CloudWatch Logs through the task's log driver): state changes, not ticks."""

from __future__ import annotations

import json
import os
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO


def silence_stdout() -> None:
    """Point stdout at /dev/null: once its reader is gone, the flush at exit would print a BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass  # stdout is no file descriptor (replaced by a test): nothing will flush to a closed pipe


def first_line(exc: BaseException) -> str:
    """An error in one line (libpq's and botocore's messages span several)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Log:
    """Thread-safe JSON lines. Logs are incidental to the measurement: when the stream is gone (a closed pipe),
    logging stops and the probe goes on."""

    def __init__(self, stream: TextIO | None = None):
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()
        self._open = True

    def event(self, event: str, **fields: Any) -> None:
        line = json.dumps({"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": event, **fields},
                          default=str)
        with self._lock:
            if not self._open:
                return
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (BrokenPipeError, ValueError):  # ValueError: the stream was closed
                self._open = False
                if self._stream is sys.stdout:
                    silence_stdout()

    def close(self) -> None:
        """No more lines: a publisher thread still finishing a call must not write while the interpreter exits."""
        with self._lock:
            self._open = False


class State:
    """A state that logs its event only when it changes: a failure every tick is one line, not one a tick."""

    def __init__(self, log: Log, initial: str | None = None):
        self._log, self.current = log, initial

    def set(self, state: str, event: str, **fields: Any) -> bool:
        """Returns whether the state changed (and the event was logged)."""
        if state == self.current:
            return False
        self.current = state
        self._log.event(event, **fields)
        return True
