"""docs/settings.md's table of settings, made from what the program enforces.

    python -m regions.settingsdoc          # rewrite the table in docs/settings.md
    python -m regions.settingsdoc --check  # exit 1 if docs/settings.md differs (tests/test_settings.py runs it)

The keys are the schema's (regions/settings.py, SCHEMA); what each allows and its default are what the typed reads
recorded while validating the repository's two stack files (regions/reader.py, Reader.rules). Only what it means is
written here, once per key, with the allowed values and default of the few keys those two files never make the
program read (an adopted network, a retired setting).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from regions.reader import MISSING, PROJECT, Schema
from regions.settings import SCHEMA, settings_rules
from regions.stackfile import read_stack_file, stack_file_name

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "settings.md"
ROLES = ("primary", "backup")
BEGIN = "<!-- settings table: made by `python -m regions.settingsdoc`; edit regions/settingsdoc.py, not here -->"
END = "<!-- end of the settings table -->"

# What each key means, in the table's order: a key, a `*` for any one name, or an object whose fields share a row.
# A tuple adds the allowed values and the default, only for keys the repository's stack files never read.
MEANINGS: dict[str, str | tuple[str, str, str]] = {
    "aws:region": ("the stack's region", "one of us-east-1, us-west-2 (the region catalog, regions/catalog.py)",
                   "required"),
    "role": "`primary` or `backup`; exactly one stack file per role",
    "environment": "the environment's name in every resource name (bucket names must fit 63 characters); equal in "
                   "both files",
    "peerStack": "backup only: the primary's fully qualified stack name, for its StackReference",
    "activeRegion": "the region that serves and writes; **equal in both files** (design.md, \"Active region\")",
    "domain.zoneName": "the Route53 zone the app's failover records live in",
    "domain.appRecord": "the app's record in that zone: `appRecord.zoneName`",
    "tags.costCenter": "the CostCenter cost-allocation tag",
    "tags.owner": "the Owner cost-allocation tag",
    "network.cidr": "the VPC's range, disjoint from the other stack's",
    "network.azCount": "how many availability zones the VPC spans",
    "network.availabilityZoneIds": ("pin the zones by **AZ ID**; `azCount` follows their number",
                                    "AZ IDs of the region, never use1-az3 (it lacks the Graviton classes)",
                                    "the catalog's first `azCount`: use1-az1, -az2, -az4; usw2-az1, -az2"),
    "network.natGateways": "NAT gateways while this region is active; **equal in both files** unless a network is "
                           "adopted",
    "network.standbyNatGateways": "NAT gateways while another region is active; not `perAz` when `natGateways` is "
                                  "`single`",
    "network.flowLogRetentionDays": "VPC flow logs' retention",
    "network.source": "`create` the VPC, or adopt one from Terraform state (docs/terraform.md)",
    "network.terraformState": ("with `source: terraform`: where the state is",
                               "`backend` local (`path`, relative to the project) or s3 (`bucket`, `key`, `region`, "
                               "`workspace`)", "required with source: terraform"),
    "network.terraformOutputs": ("with `source: terraform`: the state's output names for vpcId, vpcCidr, "
                                 "publicSubnets, privateSubnets, databaseSubnets, privateRouteTables, "
                                 "databaseRouteTables", "Terraform output names",
                                 "vpc_id, vpc_cidr_block, public_subnets, private_subnets, database_subnets, "
                                 "private_route_table_ids, database_route_table_ids"),
    "database.engineVersion": "PostgreSQL `MAJOR` or `MAJOR.MINOR`",
    "database.instanceClass": "the writer's and the replica's class; the backup follows the primary's",
    "database.allocatedStorageGb": "gp3 storage",
    "database.maxAllocatedStorageGb": "storage autoscaling's ceiling",
    "database.backupRetentionDays": "automated backups' retention",
    "database.multiAz": "the writer's Multi-AZ while this region is active; **equal in both files**",
    "database.standbyMultiAz": "the replica's Multi-AZ while another region is active (twice the price); not true "
                               "when `multiAz` is false",
    "database.applyImmediately": "the writer's changes at `pulumi up` (true) or in the maintenance window, Sunday "
                                 "05:00-06:00 UTC; **equal in both files**",
    "database.detached": "while the other region is active: this region's database is the former writer, kept as it "
                         "is until rebuilt as a replica",
    "database.retireWithSnapshot": ("with `detached`: deletion protection off and this final snapshot name, so the "
                                    "next `up` may replace the former writer with a replica",
                                    "an RDS snapshot identifier", "none"),
    "database.promoted": ("retired: `activeRegion` decides; refused by name", "not set", "none"),
    "database.logMinDurationMs": "slow-statement log threshold (-1: off)",
    "database.logRetentionDays": "the PostgreSQL log's retention",
    "database.passwordRotationDays": "Secrets Manager rotates the master password this often",
    "database.poolSize": "connections per application process (`DATABASE_POOL_SIZE`); equal in both files",
    "database.name": "the database",
    "database.username": "the master user",
    "cache.engine": "the cache engine",
    "cache.engineVersion": "its version",
    "cache.nodeType": "node type while this region is active; right-sizing writes it",
    "cache.nodes": "nodes while active (2+: automatic failover and Multi-AZ)",
    "cache.standbyNodeType": "node type while another region is active",
    "cache.standbyNodes": "nodes while another region is active (1: no failover, no Multi-AZ)",
    "cache.snapshotRetentionDays": "daily snapshots' retention",
    "cache.authTokenVersion": "raise it in **both** files to rotate the auth token (the new works beside the old)",
    "cache.authTokenSoleVersion": ("once every task runs the new token: the same number, in both files (only the "
                                   "new works)", "an integer from 1 to `authTokenVersion`", "none"),
    "cache.globalDatastore": "equal in both files: a Global Datastore replicates the primary's cache to the "
                             "backup's (needs equal node types, `standbyNodes` 2+)",
    "backups.vaultName": "the AWS Backup vault (the primary copies into the backup's)",
    "backups.replicateToPeer": "primary only: replicate the backups bucket to the backup's (false for the very "
                               "first deployment, before that bucket exists)",
    "backups.dailyRetentionDays": "the guide's schedule: daily recovery points",
    "backups.weeklyRetentionDays": "weekly recovery points",
    "backups.monthlyRetentionDays": "monthly recovery points",
    "backups.coldStorageAfterDays": "when monthly points move to cold storage",
    "services.standby": ("retired: `activeRegion` decides; refused by name", "not set", "none"),
    "services.logLevel": "the tasks' LOG_LEVEL",
    "services.logRetentionDays": "the tasks' log retention",
    "services.execEnabled": "ECS Exec into running tasks",
    "services.*.cpu": "task CPU units while active (a valid Fargate pair with memory)",
    "services.*.memory": "task memory (MiB) while active",
    "services.*.min": "autoscaling's floor while active",
    "services.*.max": "autoscaling's ceiling; `api.max` and `worker.max` equal in both files (they size "
                      "max_connections)",
    "services.*.desired": "tasks at deployment while active",
    "services.*.standbyMin": "autoscaling's floor while another region is active",
    "services.*.standbyDesired": "tasks while another region is active",
    "services.worker.spot": "the worker on Fargate Spot",
    "images.tag": "primary only: the release; a new tag per build (ECR tags are immutable)",
    "images.keep": "primary only: images kept per repository",
    "images.*.context": "primary only: the build context, relative to the project directory",
    "images.*.dockerfile": "primary only: the Dockerfile in that context",
    "images.*.uri": ("primary only, instead of `context`: a pushed image (ECR ones pinned by digest)",
                     "REGISTRY/REPOSITORY@sha256:DIGEST or :TAG", "none"),
    "images.probe": ("primary only: the probe's image; refused while `probe.enabled` is false",
                     "{context, dockerfile} or {uri}", "this repository's `probe/`, `Dockerfile`"),
    "dns.createZone": "primary only: create the hosted zone",
    "monitoring.alarmEmail": "where alarms go",
    "monitoring.*": "an alarm threshold (docs/design.md, \"Monitoring\")",
    "budget.monthlyUsd": "this stack's monthly budget",
    "budget.actualPercent": "alert at this share of the budget spent",
    "budget.forecastPercent": "alert at this share forecast",
    "budget.activateCostTags": "primary only: activate the cost-allocation tags; only once billing has seen them, "
                               "from the payer account",
    "drill.principals": ("backup only: who may assume the drill role", "IAM role, user or root ARNs",
                         "this account"),
    "drill.requireMfa": "backup only: the drill role needs MFA",
    "probe.enabled": "run the replication probe (docs/probe.md); false: none of it exists, not even its image",
    "probe.intervalSeconds": "seconds between heartbeats",
    "probe.maxReplicationAgeSeconds": "the standby's alarm threshold (at least twice the interval)",
    "probe.silentMinutes": "the active region's \"no heartbeat\" alarm (at least two intervals)",
    "usage.*": "monthly usage for the cost estimate, which the resources do not tell",
    "jwtSecret": ("primary: `secure:`; a new value restarts the tasks that read it", "a secure: value",
                  "generated"),
    "googleClientId": ("primary: `secure:`; absent: the api runs without Google sign-in (synth warns)",
                       "a secure: value", "none"),
}


def leaves(schema: Mapping[str, Schema | None], prefix: str = "") -> Iterator[str]:
    for name, fields in schema.items():
        path = prefix + name
        if fields is None:
            yield path
        elif isinstance(fields, tuple):
            yield from (f"{path}.{field}" for field in fields)
        else:
            yield from leaves(fields, f"{path}.")


def _matches(pattern: str, path: str) -> bool:
    """`pattern` names `path`, with `*` for one name, or an object `path` is a field of."""
    wanted, parts = pattern.split("."), path.split(".")
    return len(wanted) <= len(parts) and all(w in ("*", p) for w, p in zip(wanted, parts, strict=False)) and (
        len(wanted) == len(parts) or "*" not in wanted)


Rules = Mapping[str, Mapping[str, tuple[str, Any]]]


def _paths() -> list[str]:
    return ["aws:region", *leaves(SCHEMA)]


def _owner(path: str, written: bool) -> str | None:
    """The most specific pattern naming `path` whose meaning is text (`written` False) or a tuple (True)."""
    named = [p for p, meaning in MEANINGS.items() if isinstance(meaning, tuple) == written and _matches(p, path)]
    return max(named, key=lambda p: (len(p.split(".")), -p.count("*")), default=None)


def rows(rules: Rules) -> list[tuple[str, str, str, str]]:
    """(key, meaning, allowed, default) in MEANINGS' order; `rules` by role, as settings_rules recorded them."""
    recorded = set().union(*rules.values())
    found = []
    for pattern, meaning in MEANINGS.items():
        if isinstance(meaning, tuple):
            found.append((pattern, *meaning))
            continue
        found.extend((path, meaning, *_recorded(path, rules)) for path in _paths()
                     if path in recorded and _owner(path, written=False) == pattern)
    return found


def problems(rules: Rules) -> list[str]:
    """Where MEANINGS and the schema disagree: every key has one row, the code's rules wherever it has them."""
    recorded = set().union(*rules.values())
    found = [f"{pattern}: names no setting" for pattern in MEANINGS if not any(_matches(pattern, p)
                                                                               for p in _paths())]
    for path in _paths():
        if path in recorded and _owner(path, written=False) is None:
            found.append(f"{path}: no meaning")
        elif path not in recorded and _owner(path, written=True) is None:
            found.append(f"{path}: never read from the repository's stack files: give allowed and default by hand")
    found.extend(f"{path}: read, but not in the schema" for path in sorted(recorded - set(_paths())))
    return found


def _recorded(path: str, rules: Mapping[str, Mapping[str, tuple[str, Any]]]) -> tuple[str, str]:
    by_role = {role: rules[role][path] for role in ROLES if path in rules[role]}
    return (_per_role({role: allowed for role, (allowed, _) in by_role.items()}),
            _per_role({role: _shown(default) for role, (_, default) in by_role.items()}))


def _per_role(values: Mapping[str, str]) -> str:
    if len(values) == 2 and len(set(values.values())) == 1:
        return next(iter(values.values()))
    return "; ".join(f"{role}: {value}" for role, value in values.items())


def _shown(value: Any) -> str:
    if value is MISSING:
        return "required"
    if value is None:
        return "none"
    return f"`{value if isinstance(value, str) else json.dumps(value)}`"


def _rules(project_dir: Path = REPO) -> dict[str, dict[str, tuple[str, Any]]]:
    rules = {}
    for role in ROLES:
        raw, secret_keys = read_stack_file(project_dir / stack_file_name(role))
        rules[role] = settings_rules(raw, role, project_dir, secret_keys)
    return rules


def table(rules: Rules) -> str:
    lines = ["| key | meaning | allowed | default |", "|---|---|---|---|"]
    for key, meaning, allowed, default in rows(rules):
        shown = key if ":" in key else f"{PROJECT}:{key}"
        lines.append(f"| `{shown}` | {meaning} | {allowed} | {default} |".replace("<", "&lt;"))
    return "\n".join([BEGIN, *lines, END])


def with_table(document: str, made: str) -> str:
    before, _, rest = document.partition(BEGIN)
    _, _, after = rest.partition(END)
    return before + made + after


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m regions.settingsdoc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/settings.md's table is not current")
    args = parser.parse_args(argv)
    rules = _rules()
    if trouble := problems(rules):
        print("\n".join(f"regions/settingsdoc.py: MEANINGS: {line}" for line in trouble), file=sys.stderr)
        return 1
    document = DOC.read_text(encoding="utf-8")
    if BEGIN not in document or END not in document:
        print(f"{DOC}: the table's markers are missing: {BEGIN} ... {END}", file=sys.stderr)
        return 1
    current = with_table(document, table(rules))
    if args.check:
        if current != document:
            print(f"{DOC} is not current: run python -m regions.settingsdoc", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(current, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
