"""How every command of the project ends: one line on Ctrl-C, nothing at all when its reader goes away."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

# As shells report a command stopped by SIGINT and SIGPIPE.
INTERRUPTED, READER_GONE = 130, 141
# Inside interrupts_deferred(): how deep, and whether a stop came meanwhile.
_deferring = 0
_pending = False


def run(main: Callable[[], int], name: str, *, stateless: bool = False) -> None:
    """Run a command's main and exit with its code: Ctrl-C prints one line (exit 130); a closed pipe (`| head`) ends it
    quietly (exit 141), with stdout pointed at /dev/null so the flush at exit cannot print a traceback either.
    SIGTERM and SIGHUP (a closed terminal, `kill`, a CI timeout) stop it like Ctrl-C, so that what it started (servers,
    temporary folders) is stopped and removed on the way out, by the same `finally` blocks.

    A `stateless` command (it changes nothing, like synth) stops at once on Ctrl-C: a KeyboardInterrupt raised inside
    the Pulumi engine's threads or an import can be swallowed there, or leave threads that never end."""
    # The Pulumi SDK's mocks log a program's warnings on the root logger, once per evaluation: a run that evaluates
    # a stack several times says each once.
    logging.getLogger().addFilter(_Once())
    for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, _raise_interrupt)
    sys.unraisablehook = _stop_again
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


class _Once(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.levelno, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """A stop (run()'s signals) that comes inside is raised when the block ends: an evaluation of the program under the
    SDK's mocks swallows a KeyboardInterrupt raised in its imports and goes on half-imported (a traceback, exit 1)."""
    global _deferring
    _deferring += 1
    try:
        yield
    except BaseException:
        _deferring -= 1
        # A failure after the stop is taken for what the stop caused: the stop wins.
        _deliver()
        raise
    _deferring -= 1
    _deliver()


def _deliver() -> None:
    global _pending
    if not _deferring and _pending:
        _pending = False
        raise KeyboardInterrupt


def _raise_interrupt(*_: object) -> None:
    global _pending
    if _deferring:
        _pending = True
        return
    raise KeyboardInterrupt


def _stop_again(unraisable: Any) -> None:
    """A stop that lands in a finalizer (a __del__, a weakref callback), where Python ignores exceptions, would be lost
    and the command would run on: it is sent again to the main thread, from a thread, once the finalizer is over."""
    if not issubclass(unraisable.exc_type, KeyboardInterrupt):
        sys.__unraisablehook__(unraisable)
        return
    main = threading.main_thread().ident
    assert main is not None
    threading.Timer(0.01, signal.pthread_kill, (main, signal.SIGINT)).start()


def stop_at_once(name: str) -> None:
    """For a command's first lines, before its imports (pulumi, boto3: a second or more): a stop meanwhile ends it at
    once with run()'s one line and exit 130, where Python would print a KeyboardInterrupt traceback from the middle
    of an import. Nothing is started yet; run() installs the handlers that stop what it starts."""
    for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, lambda *_: _interrupted(name, immediately=True))


def _interrupted(name: str, immediately: bool = False) -> int:
    print(f"{name}: interrupted", file=sys.stderr, flush=True)
    if immediately:
        os._exit(INTERRUPTED)
    return INTERRUPTED


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written, and every option's default after its help unless the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: {action.default})".lstrip()


class Parser(argparse.ArgumentParser):
    """A usage error is one line, the reason first, and where the usage is: not seventeen lines of usage first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (--help lists the options)\n")


def describe_subcommands(parser: argparse.ArgumentParser) -> None:
    """A subcommand's --help opens with the line the command list shows for it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                sub.description = sub.description or helps.get(name)
                describe_subcommands(sub)
