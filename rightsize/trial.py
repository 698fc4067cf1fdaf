"""Stack files with changes applied, in a scratch copy of the project: validated, evaluated and priced exactly as
`python -m synth --cost` prices the files `--write` leaves behind."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from drills import reconcile
from regions.settings import SettingsError, load_settings
from regions.stackfile import StackFileError, read_stack_file, stack_file_name
from rightsize.rules import CHANGE, NO_CHANGE, Finding
from synth.cost import estimate, usage_of
from synth.engine import evaluate


def stack_of(file: str) -> str:
    """`Pulumi.primary.yaml` -> `primary`."""
    return file[len("Pulumi."):-len(".yaml")]


@contextmanager
def scratch(project_dir: Path, settings: list[dict[str, Any]]) -> Iterator[Path]:
    """A copy of the project's stack files with `settings` written by the same writer `--write` uses; everything
    else in the project (Pulumi.yaml, state files the settings name) is linked, not copied."""
    with tempfile.TemporaryDirectory(prefix="rightsize-") as name:
        copy = Path(name)
        for entry in project_dir.iterdir():
            if entry.name.startswith("Pulumi.") and entry.name.endswith(".yaml") and entry.name != "Pulumi.yaml":
                shutil.copyfile(entry, copy / entry.name)
            else:
                (copy / entry.name).symlink_to(entry.resolve())
        if settings:
            reconcile.write(copy, settings)
        yield copy


def validate(project_dir: Path, files: list[str]) -> None:
    """Load each stack file's settings as the program would; raises SettingsError (or StackFileError)."""
    for file in files:
        raw, secret_keys = read_stack_file(project_dir / file)
        load_settings(raw, stack_of(file), project_dir, secret_keys=secret_keys)


def costs(project_dir: Path, files: list[str]) -> dict[str, dict[str, Any]]:
    """synth's cost object of each stack file, by file."""
    cache: dict = {}
    return {file: estimate(evaluate(stack_of(file), project_dir, cache), usage_of(project_dir, stack_of(file)))
            for file in files if (project_dir / stack_file_name(stack_of(file))).is_file()}


def settle(findings: list[Finding], project_dir: Path, files: list[str]) -> dict[str, dict[str, Any]]:
    """Drop the changes the stack files would refuse (each tried alone, with its reason kept), price the stack files
    before and after the rest, and give each finding its saving: its cost items' before minus after."""
    for f in (f for f in findings if f.status == CHANGE):
        with scratch(project_dir, [c.setting() for c in f.changes]) as copy:
            try:
                validate(copy, files)
            except (SettingsError, StackFileError) as exc:
                f.status, f.changes = NO_CHANGE, []
                f.reason += f"; not proposed: the stack files would not validate ({exc})"
    before = costs(project_dir, files)
    settings = [c.setting() for f in findings for c in f.changes]
    if settings:
        with scratch(project_dir, settings) as copy:
            after = costs(copy, files)
    else:
        after = before
    items = {(when, file): {(i["resource"], i["type"]): i["monthly_usd"] for i in cost["items"]}
             for when, found in (("before", before), ("after", after)) for file, cost in found.items()}
    for f in (f for f in findings if f.status == CHANGE):
        deltas = [(items["before", file].get(item), items["after", file].get(item))
                  for file in before for item in f.cost_items]
        known = all(None not in pair for pair in deltas)
        f.monthly_saving_usd = round(sum((b or 0) - (a or 0) for b, a in deltas), 2) if known else None
    return {file: {"before": before[file]["monthly_usd"], "after": after[file]["monthly_usd"],
                   "saving": round(before[file]["monthly_usd"] - after[file]["monthly_usd"], 2)
                   if before[file]["complete"] and after[file]["complete"] else None,
                   "complete": before[file]["complete"] and after[file]["complete"]}
            for file in before}
