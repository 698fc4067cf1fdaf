"""Evaluations of this repository's stack files kept on disk, for the processes of one test run.

The tests evaluate the same stack files dozens of times, in four workers and in the processes they start
(`python -m synth`, the drills' emulated `pulumi up`), in the repository and in copies of it: the same inputs, the
same result, over half a second each. With `SYNTH_EVALUATIONS=DIR` set (tests/conftest.py sets it for a run) an
evaluation of this repository's program is read from DIR when one with the same inputs was stored there: every
source file the program runs, and what the caller names as everything else it reads (synth/engine.py: the config,
the peer's outputs, every stack file beside it, the image contexts and a Terraform state). An evaluation does not
depend on where its project directory is, only on what is in it. The warnings the program logged are logged again
on a hit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

VARIABLE = "SYNTH_EVALUATIONS"
# What the program runs, beside the stack files: its sources and the probe image's build context.
_SOURCES = ("__main__.py", "components", "regions", "synth", "probe")


@cache
def _sources_digest(repo: Path) -> str:
    digest = hashlib.sha256()
    for entry in _SOURCES:
        path = repo / entry
        for file in sorted([path] if path.is_file() else path.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(str(file.relative_to(repo)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def _key(repo: Path, inputs: Any) -> str:
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256((_sources_digest(repo) + text).encode()).hexdigest()


@contextmanager
def _logged() -> Iterator[list[tuple[int, str]]]:
    """The records the program logs on the root logger (the SDK's mocks log its warnings there)."""
    records: list[tuple[int, str]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append((record.levelno, record.getMessage()))
            # Alone on the root logger, this handler would silence Python's last resort, which prints warnings.
            if logging.getLogger().handlers == [self] and logging.lastResort is not None:
                logging.lastResort.handle(record)

    handler = Keep()
    logging.getLogger().addHandler(handler)
    try:
        yield records
    finally:
        logging.getLogger().removeHandler(handler)


def stored(repo: Path, inputs: Any, run: Callable[[], Any]) -> Any:
    """`run()`'s evaluation of `repo`'s program, or the one stored for the same `inputs` (JSON-able: all the program
    reads beside its sources) when SYNTH_EVALUATIONS names a directory."""
    directory = os.environ.get(VARIABLE)
    if not directory:
        return run()
    path = Path(directory) / f"{_key(repo, inputs)}.pickle"
    try:
        evaluation, records = pickle.loads(path.read_bytes())
    except (OSError, pickle.PickleError, EOFError, ValueError):
        with _logged() as records:
            evaluation = run()
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole or not at all: another process may read it at any moment.
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as out:
            out.write(pickle.dumps((evaluation, records)))
        os.replace(out.name, path)
        return evaluation
    for level, message in records:
        logging.getLogger().log(level, message)
    return evaluation
