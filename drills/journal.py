"""The drill journal: every step recorded before and after, written atomically, so a crash or Ctrl-C
resumes where it stopped."""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drills.outputs import InputError

# A drill in these states still holds changes: no second drill may start beside it.
OPEN = ("running", "failed", "interrupted", "halted", "aborting", "abort-failed")
# Of those, the ones `resume` continues (an abort in progress is finished by `abort`).
RESUMABLE = ("running", "failed", "interrupted", "halted")


def now() -> float:
    return time.time()


def iso(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


@dataclass
class Journal:
    path: Path
    data: dict[str, Any]

    @classmethod
    def create(cls, directory: Path, document: dict[str, Any]) -> Journal:
        directory.mkdir(parents=True, exist_ok=True)
        journal = cls(directory / f"drill-{document['id']}.json", document)
        journal.save()
        return journal

    @classmethod
    def load(cls, path: Path) -> Journal:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: no such journal") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: not a readable drill journal ({exc})") from None
        missing = [k for k in ("id", "scenario", "status", "outputs", "options", "steps", "probes")
                   if not isinstance(data, dict) or k not in data]
        if missing:
            raise InputError(f"{path}: not a drill journal (missing {', '.join(missing)})")
        return cls(path, data)

    def save(self) -> None:
        """Write to a temporary file, fsync, then rename over the journal: never half a journal on disk."""
        self.data["updated_at"] = iso(now())
        fd, tmp = tempfile.mkstemp(prefix=".journal-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.data, handle, indent=2, sort_keys=False)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @property
    def is_open(self) -> bool:
        return self.data.get("status") in OPEN

    def find(self, name: str) -> dict[str, Any] | None:
        """A step's entry, or None when the scenario has no such step."""
        return next((s for s in self.data["steps"] if s["name"] == name), None)

    def step(self, name: str) -> dict[str, Any]:
        entry = self.find(name)
        if entry is None:
            raise KeyError(f"{self.path}: no step {name}")
        return entry


def open_journals(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob("drill-*.json")):
        try:
            if json.loads(path.read_text(encoding="utf-8")).get("status") in OPEN:
                found.append(path)
        except (OSError, json.JSONDecodeError):
            found.append(path)  # unreadable: treat as open rather than start a second drill beside it
    return found
