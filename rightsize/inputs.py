"""The tool's inputs, checked before any AWS call: the stack's outputs, its stack file and the other one beside it,
the thresholds and the window. Every problem is an InputError (exit 2) naming the file, output or option."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drills.outputs import InputError, required
from regions.catalog import SERVICES
from regions.model import StackSettings
from regions.settings import PROJECT, load_settings, other_stacks
from regions.stackfile import StackFileError, given_stack_file, read_stack_file, stack_of
from rightsize.rules import ORDERED, THRESHOLDS, Targets
from synth.engine import REPO

# CloudWatch keeps 60-second data 15 days, 300-second data 63 days and hourly data 455 days; GetMetricData asks
# for a period that is a multiple of what the start of the window still has.
RETENTION = ((15, 60), (63, 300), (455, 3600))
NEW_OUTPUTS = ("alb_arn_suffix", "cache_member_clusters")


def targets(document: Any, source: str) -> Targets:
    if not isinstance(document, dict):
        raise InputError(f"{source}: expected a JSON object of stack outputs")
    for name in NEW_OUTPUTS:
        if name not in document:
            raise InputError(f"{source}: missing output '{name}' (exported since python -m rightsize exists: run "
                             "`pulumi up` with this version of the program first)")
    services = required(document, "ecs_services", dict, source)
    for name in SERVICES:
        required(services, name, str, source, "ecs_services.")
    members = required(document, "cache_member_clusters", list, source)
    if not all(isinstance(m, str) and m for m in members):
        raise InputError(f"{source}: output 'cache_member_clusters' must list the cache's cluster ids")
    return Targets(region=required(document, "region", str, source), role=required(document, "role", str, source),
                   active_region=required(document, "active_region", str, source),
                   cluster=required(document, "ecs_cluster_name", str, source),
                   services={name: services[name] for name in SERVICES},
                   db_instance_identifier=required(document, "db_instance_identifier", str, source),
                   alb_arn_suffix=required(document, "alb_arn_suffix", str, source),
                   cache_member_clusters=tuple(members))


def project_dir(start: Path) -> Path:
    """The nearest directory holding Pulumi.yaml, from `start` up; else this repository."""
    return next((d for d in (start, *start.parents) if (d / "Pulumi.yaml").is_file()), REPO)


def stack_file(given: Path | None, stack: str | None, role: str, cwd: Path) -> Path:
    """--stack-file; else Pulumi.<stack>.yaml, or the one stack file of the outputs' role, beside Pulumi.yaml."""
    if given is not None:
        try:
            return given_stack_file(given)
        except StackFileError as exc:
            raise InputError(str(exc)) from None
    project = project_dir(cwd)
    if stack is not None:
        path = project / f"Pulumi.{stack.rsplit('/', 1)[-1]}.yaml"
        if not path.is_file():
            raise InputError(f"{path}: no such stack file for --stack {stack} (--stack-file names another)")
        return path
    found = [project / name for name, raw in other_stacks(project, "") if raw.get(f"{PROJECT}:role") == role]
    if len(found) != 1:
        raise InputError(f"{project}: {len(found)} stack files with {PROJECT}:role {role} for the outputs' role: "
                         "name one with --stack-file")
    return found[0]


@dataclass(frozen=True)
class Stacks:
    settings: StackSettings
    file: str
    project_dir: Path
    peer: StackSettings | None
    peer_file: str | None

    @property
    def files(self) -> list[str]:
        return [self.file, *([self.peer_file] if self.peer_file else [])]


def _settings(project: Path, file: str) -> StackSettings:
    try:
        raw, secret_keys = read_stack_file(project / file)
    except StackFileError as exc:
        raise InputError(str(exc)) from None
    return load_settings(raw, stack_of(file), project, secret_keys=secret_keys)


def stacks(path: Path, targets: Targets, source: str) -> Stacks:
    """This stack's settings, checked against what its outputs say it is, and the other stack's beside it."""
    project = path.parent
    settings = _settings(project, path.name)
    for what, ours, theirs in (("region", settings.region.name, targets.region), ("role", settings.role, targets.role),
                               ("active_region", settings.active_region, targets.active_region)):
        if ours != theirs:
            raise InputError(f"{source}: output '{what}' is {theirs}, but {path.name} says {ours}: the outputs are of "
                             "another stack, or the stack file has not been deployed (`pulumi up` first)")
    peer_role = "backup" if settings.role == "primary" else "primary"
    peer_file = next((name for name, raw in other_stacks(project, path.name)
                      if raw.get(f"{PROJECT}:role") == peer_role), None)
    return Stacks(settings, path.name, project, _settings(project, peer_file) if peer_file else None, peer_file)


def thresholds(overrides: list[str]) -> dict[str, float]:
    values = {name: t.default for name, t in THRESHOLDS.items()}
    for item in overrides:
        name, _, text = item.partition("=")
        if name not in THRESHOLDS:
            raise InputError(f"--threshold {item}: unknown threshold '{name}' (one of {', '.join(THRESHOLDS)})")
        t = THRESHOLDS[name]
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        kind = "a whole number" if t.whole else "a number"
        if not t.lowest <= value <= t.highest or (t.whole and value != int(value)):
            raise InputError(f"--threshold {item}: '{text}' is not {kind} from {t.lowest:g} to {t.highest:g}")
        values[name] = value
    for low, high in ORDERED:
        if values[low] >= values[high]:
            raise InputError(f"--threshold: {low} {values[low]:g} must stay under {high} {values[high]:g}")
    return values


def period(days: int, given: int | None) -> int:
    """The period for a window of `days`: CloudWatch's finest resolution still kept at its start, or `given`."""
    if not 1 <= days <= RETENTION[-1][0]:
        raise InputError(f"--days {days}: CloudWatch keeps metrics for at most {RETENTION[-1][0]} days (1 to "
                         f"{RETENTION[-1][0]})")
    finest = next(step for limit, step in RETENTION if days <= limit)
    if given is None:
        return max(finest, 300)
    if given < finest or given % finest:
        raise InputError(f"--period {given}: a window starting {days} days ago takes a multiple of {finest} seconds "
                         "(what CloudWatch keeps for that long)")
    if given > days * 86400:
        raise InputError(f"--period {given}: longer than the --days {days} window")
    return given
