"""After a completed region evacuation or failback: the stack-file settings that record the new state, and the
Pulumi commands that bring the stacks in line (after an evacuation, in an order whose first part works while
us-east-1 is down), then the phases that rebuild the other region's replica.

The failover switch is a metric, not a setting: no `pulumi up` changes it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from yaml import YAMLError as PyYAMLError

from drills import phases
from drills.outputs import InputError
from regions.catalog import DB_MAINTENANCE_WINDOW
from regions.stackfile import load_yaml, where

PROJECT = "trading-platform"
DATABASE_URN = "urn:pulumi:{stack}::" + PROJECT + "::trading-platform:data:Database$aws:rds/instance:Instance::database"


MOVES_THE_WRITER = {"region-evacuation": "backup", "failback": "primary"}


def check_evacuated(data: dict[str, Any], path: Path) -> None:
    if data["scenario"] not in MOVES_THE_WRITER:
        raise InputError(f"{path}: a {data['scenario']} drill changes no stack settings; reconcile follows a "
                         "region evacuation or a failback")
    if data["status"] != "done":
        raise InputError(f"{path}: the {data['scenario']} is {data['status']}, not done: nothing to reconcile until "
                         "it is")


def _stacks(data: dict[str, Any]) -> dict[str, str]:
    """The stacks as the drill read them (--primary-stack, --backup-stack), else the stack files' names."""
    given = data.get("stacks") or {}
    return {role: given.get(role) or role for role in ("primary", "backup")}


def _short(stack: str) -> str:
    """`organization/trading-platform/backup` -> `backup`: the name in URNs and stack file names."""
    return stack.rsplit("/", 1)[-1]


def plan(data: dict[str, Any]) -> dict[str, list]:
    """{"settings": [{"file", "key", "value"}], "commands": [...]} for the journal, the reports and the CLI."""
    stacks = _stacks(data)
    writer = MOVES_THE_WRITER[data["scenario"]]
    former = phases.other(writer)
    regions = {role: data["outputs"][role]["region"] for role in ("primary", "backup")}
    new, old = stacks[writer], stacks[former]
    refresh = ["# records that the instance no longer replicates; otherwise `up` would call PromoteReadReplica "
               "again, which AWS refuses",
               f"pulumi refresh -s {new} --target '{DATABASE_URN.format(stack=_short(new))}' --yes",
               f"pulumi up -s {new}",
               # That `up` also makes the promoted replica the active shape's writer, a change RDS queues like any
               # of a writer's (regions/roles.py); the plan cannot read the stack files' setting, so it says both.
               f"# it converts the new writer to Multi-AZ (database.multiAz; no outage) at once only with "
               f"database.applyImmediately: true, else in the maintenance window {DB_MAINTENANCE_WINDOW} UTC; to "
               f"convert it now: aws rds modify-db-instance --region {regions[writer]} --db-instance-identifier "
               f"{data['outputs'][writer]['db_instance_identifier']} --multi-az --apply-immediately"]
    # The new writer's stack no longer copies the former writer's automated backups, and leaves the copy
    # running rather than call RDS in a region a failover may have lost: stopped here once both answer.
    stop_copy = (f"aws rds stop-db-instance-automated-backups-replication --source-db-instance-arn "
                 f"'{data['outputs'][former]['db_instance_arn']}' --region {regions[writer]}")
    # The drill changed the old region outside Pulumi (secrets' replication, rotation, the restart rule, the
    # database's ingress): the state learns it before `up` declares the region's standby shape.
    old_up = [f"pulumi refresh -s {old} --yes", f"pulumi up -s {old}"]
    if writer == "backup":
        commands = [f"# these two work while {regions['primary']} is down:", *refresh,
                    f"# only once {regions['primary']} is back, before anything else there:", *_old_region_first(data),
                    stop_copy, *old_up]
    else:
        commands = [*refresh, stop_copy, *old_up]
    commands += [f"# then rebuild {regions[former]}'s replica (python -m drills failback phase):",
                 *rebuild_commands(former, old)]
    return {"settings": files(phases.switched_to(writer, regions), stacks), "commands": commands}


def rebuild_commands(role: str, stack: str) -> list[str]:
    return [f"python -m drills failback phase retire --role {role} --write",
            f"pulumi up -s {stack}   # deletion protection off, the final snapshot named: nothing replaced",
            f"python -m drills failback phase rebuild --role {role} --write   # deletes the former writer, leaving "
            "that snapshot",
            f"pulumi refresh -s {stack} --target '{DATABASE_URN.format(stack=_short(stack))}' --yes   # the state "
            "forgets it",
            f"pulumi up -s {stack}   # creates the replica"]


def files(settings: list[dict], stacks: dict[str, str]) -> list[dict]:
    """Phase settings by stack role -> by stack file."""
    return [{"file": f"Pulumi.{_short(stacks[s['role']])}.yaml", "key": s["key"], "value": s["value"]}
            for s in settings]


def _skipped(data: dict[str, Any], name: str) -> bool:
    return next((s for s in data["steps"] if s["name"] == name), {}).get("status") == "skipped"


def _old_region_first(data: dict[str, Any]) -> list[str]:
    """What the evacuation could not do in the old region, to do the moment it answers: writers the fence could not
    reach would restart against the old writer (two Celery beats) until `pulumi up` makes it the standby, and
    its rotation would change a password nobody uses any more (the backup's secrets are standalone by then)."""
    p = data["outputs"]["primary"]
    secret = p["secret_arns"].get("database-credentials")
    commands = []
    if secret and _skipped(data, "stop-primary-rotation"):
        commands.append(f"aws secretsmanager cancel-rotate-secret --secret-id '{secret}' --region {p['region']}")
    fence = p.get("db_fence")
    if fence and _skipped(data, "fence-primary-database"):
        commands += [f"aws ec2 revoke-security-group-ingress --region {p['region']} --group-id "
                     f"{fence['security_group_id']} --protocol tcp --port {fence['port']} --source-group "
                     f"{fence['app_security_group_id']}",
                     f"aws rds reboot-db-instance --region {p['region']} --db-instance-identifier "
                     f"{p['db_instance_identifier']}"]
    if _skipped(data, "fence-primary-writers"):
        cluster = p["ecs_cluster_name"]
        for service in ("api", "worker"):
            commands.append(f"aws application-autoscaling register-scalable-target --region {p['region']} "
                            f"--service-namespace ecs --scalable-dimension ecs:service:DesiredCount "
                            f"--resource-id service/{cluster}/{p['ecs_services'][service]} --min-capacity 0 "
                            "--max-capacity 0")
        for service in ("api", "worker", "beat"):
            commands.append(f"aws ecs update-service --region {p['region']} --cluster {cluster} "
                            f"--service {p['ecs_services'][service]} --desired-count 0")
    return commands


def _yaml() -> YAML:
    yaml = YAML()  # round trip: comments, key order, flow mappings and quotes stay as written
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long flow mapping onto two lines
    return yaml


def _load(yaml: YAML, path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
        # Read as synth reads it first (one reader, one verdict: a key written twice is refused with its line), then
        # round trip for the edit.
        load_yaml(text)
        document = yaml.load(text)
    except FileNotFoundError:
        raise InputError(f"{path}: no such stack file (--project-dir names the directory of the stack files)") from None
    except (YAMLError, PyYAMLError) as exc:
        raise InputError(f"{path}: not valid YAML{where(exc)}") from None
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise InputError(f"{path}: 'config' must be a mapping of keys to values")
    return document


def _shown(value: Any) -> str:
    return "absent" if value is None else json.dumps(value, default=str)


def line(setting: dict) -> str:
    return f"{setting['file']}: {setting['key']}: {_shown(setting['value'])}"


def _same(old: Any, new: Any) -> bool:
    # `True == 1` in Python, but not in a stack file.
    return type(old) is type(new) and old == new


def _set(config: dict, key: str, value: Any, path: Path) -> Any:
    """Set `namespace:section.member` in config, or remove it for None; returns the value it had (None when
    absent)."""
    top, *members = key.split(".")
    parent, name = config, top
    for member in members:
        child = parent.get(name) if value is None else parent.setdefault(name, CommentedMap())
        if child is None:
            return None  # nothing to remove
        if not isinstance(child, dict):
            raise InputError(f"{path}: '{name}' must be a mapping to hold '{key}', found {_shown(child)}")
        parent, name = child, member
    old = parent.get(name)
    if value is None:
        parent.pop(name, None)
    elif not _same(old, value):
        parent[name] = value
    return old


def write(project_dir: Path, settings: list[dict]) -> list[str]:
    """Apply the settings to the stack files in project_dir; a file whose values are already right is not
    rewritten. Returns one line per setting: what changed, or that it was already set."""
    yaml = _yaml()
    lines = []
    for file in dict.fromkeys(s["file"] for s in settings):
        path = project_dir / file
        document = _load(yaml, path)
        changed = False
        for setting in (s for s in settings if s["file"] == file):
            old = _set(document["config"], setting["key"], setting["value"], path)
            unchanged = _same(old, setting["value"])
            changed |= not unchanged
            lines.append(f"{line(setting)} (already set)" if unchanged else f"{line(setting)} (was {_shown(old)})")
        if changed:
            out = io.StringIO()
            yaml.dump(document, out)
            path.write_text(out.getvalue(), encoding="utf-8")
    return lines


def current(project_dir: Path, file: str, key: str) -> Any:
    """A stack file's value of `namespace:section.member`, or None."""
    config = _load(_yaml(), project_dir / file)["config"]
    top, *members = key.split(".")
    value = config.get(top)
    for member in members:
        value = value.get(member) if isinstance(value, dict) else None
    return value
