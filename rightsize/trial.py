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
from drills.outputs import InputError
from regions.settings import SettingsError, load_settings
from regions.stackfile import StackFileError, read_stack_file, stack_of
from rightsize.rules import CHANGE, NO_CHANGE, Finding
from synth.cost import estimate, usage_of
from synth.engine import evaluate


@contextmanager
def scratch(project_dir: Path, settings: list[dict[str, Any]]) -> Iterator[Path]:
    """A copy of the project's stack files with `settings` written by the same writer `--write` uses; everything
    else in the project (Pulumi.yaml, state files the settings name) is linked, not copied."""
    # Beside the project, so that a path the settings give relative to it (../infra/terraform.tfstate) still resolves.
    try:
        scratch_dir = tempfile.TemporaryDirectory(prefix=f".{project_dir.name}-rightsize-", dir=project_dir.parent)
    except OSError as exc:
        raise InputError(f"{project_dir.parent}: cannot hold a scratch copy of the stack files "
                         f"({exc.strerror})") from None
    with scratch_dir as name:
        copy = Path(name)
        for entry in project_dir.iterdir():
            if stack_of(entry.name):
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


def costs(project_dir: Path, files: list[str]) -> dict[str, dict[str, Any] | str]:
    """synth's cost object of each stack file, by file, or why synth cannot price it offline (an S3 Terraform
    state, a backup without its primary's file beside it)."""
    cache: dict = {}
    found: dict[str, dict[str, Any] | str] = {}
    for file in files:
        try:
            found[file] = estimate(evaluate(stack_of(file), project_dir, cache), usage_of(project_dir, stack_of(file)))
        except (SettingsError, StackFileError) as exc:
            found[file] = f"not priced: {exc}"
    return found


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
    after = before
    if settings:
        with scratch(project_dir, settings) as copy:
            try:
                validate(copy, files)
            except (SettingsError, StackFileError) as exc:
                raise InputError(f"the recommendations together would leave stack files that do not validate ({exc}); "
                                 "nothing written") from None
            after = costs(copy, files)

    def items(cost: dict[str, Any] | str) -> dict[tuple[str, str], float | None]:
        return {} if isinstance(cost, str) else {(i["resource"], i["type"]): i["monthly_usd"] for i in cost["items"]}

    for f in (f for f in findings if f.status == CHANGE):
        deltas = [(items(before[file]).get(item), items(after[file]).get(item))
                  for file in files for item in f.cost_items]
        known = all(None not in pair for pair in deltas)
        f.monthly_saving_usd = round(sum(b - a for b, a in deltas), 2) if known else None
    return {file: _totals(before[file], after[file]) for file in files}


def _totals(before: dict[str, Any] | str, after: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(before, str) or isinstance(after, str):
        return {"before": None, "after": None, "saving": None, "complete": False,
                "error": before if isinstance(before, str) else after}
    complete = before["complete"] and after["complete"]
    return {"before": before["monthly_usd"], "after": after["monthly_usd"], "complete": complete,
            "saving": round(before["monthly_usd"] - after["monthly_usd"], 2) if complete else None}
