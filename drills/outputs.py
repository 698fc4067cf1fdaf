"""The two stacks' outputs (docs/contracts.md), from the Pulumi CLI or from files."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from regions.textfile import UnreadableFile, read_text

SERVICES = ("api", "web", "worker", "beat")
COUNTS = ("min", "max", "desired")
SWITCH_KEYS = ("region", "namespace", "metric_name", "alarm_name")
# The replication probe's metrics, by the keys of its output's `metrics`.
PROBE_METRICS = ("last_acknowledged_write", "last_acknowledged_seq", "newest_replicated_write",
                 "newest_replicated_seq", "replication_age")


class InputError(Exception):
    """Bad or missing input: exit 2."""


@dataclass(frozen=True)
class FailoverSwitch:
    """The primary's `failover_switch`: a metric in the standby's region whose alarm takes the PRIMARY
    record out of Route53's answers (1 on, 0 off)."""

    region: str
    namespace: str
    metric_name: str
    dimensions: dict[str, str]
    alarm_name: str

    @property
    def cloudwatch_dimensions(self) -> list[dict[str, str]]:
        return [{"Name": k, "Value": v} for k, v in self.dimensions.items()]


@dataclass(frozen=True)
class ReplicationProbe:
    """A stack's `replication_probe`: where the probe inside the VPCs publishes its heartbeats' metrics (to both
    regions, so either region's CloudWatch answers for both)."""

    namespace: str
    # Key (PROBE_METRICS) -> metric name.
    metrics: dict[str, str]
    # Fixed dimensions (Environment); the writer's region is the `writer_dimension` beside them.
    dimensions: dict[str, str]
    writer_dimension: str
    interval_seconds: float
    max_replication_age_seconds: float

    def dimensions_for(self, writer_region: str) -> list[dict[str, str]]:
        return [{"Name": k, "Value": v} for k, v in {**self.dimensions, self.writer_dimension: writer_region}.items()]


@dataclass(frozen=True)
class StackOutputs:
    source: str
    region: str
    role: str
    app_domain: str
    db_instance_identifier: str
    db_instance_arn: str
    # host:port of the instance (the drill's database probe connects to it).
    db_endpoint: str
    db_is_replica: bool
    ecs_cluster_name: str
    ecs_services: dict[str, str]
    # What each service runs while this region is active, and while it is the standby.
    ecs_capacity: dict[str, dict[str, int]]
    ecs_standby_capacity: dict[str, dict[str, int]]
    backup_bucket_name: str
    backup_bucket_arn: str
    # The primary's only.
    failover_switch: FailoverSwitch | None
    # Secret name -> ARN in this region (reconcile names the rotated one).
    secret_arns: dict[str, str]
    # None where the stacks run no probe (`probe.enabled: false`, or outputs from before it).
    replication_probe: ReplicationProbe | None = None
    # The stack files' activeRegion when this stack was last deployed (None in outputs from before it).
    active_region: str | None = None
    # {rule_name, secret_arn}: the rule restarting this region's services on a new password, and whose.
    password_restarts: dict[str, str] | None = None
    # {security_group_id, app_security_group_id, port}: what fences the database from the app tasks.
    db_fence: dict[str, Any] | None = None
    # The cache's replication group, and the Global Datastore it belongs to (None without cache.globalDatastore).
    cache_replication_group_id: str | None = None
    cache_global_datastore: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def required(within: dict, key: str, kind: type, source: str, prefix: str = "") -> Any:
    """`within[key]`, which must be a `kind` (a non-empty one for str); the error names the output and its source."""
    if key not in within:
        raise InputError(f"{source}: missing output '{prefix}{key}'")
    value = within[key]
    if not isinstance(value, kind) or (kind is str and not value) or (kind is not bool and isinstance(value, bool)):
        wanted = "non-empty string" if kind is str else getattr(kind, "__name__", "number")
        raise InputError(f"{source}: output '{prefix}{key}' must be a {wanted}, found {json.dumps(value)}")
    return value


def parse(document: Any, source: str, expected_role: str) -> StackOutputs:
    """Validate one stack's outputs; every problem names the key and where it came from."""
    if not isinstance(document, dict):
        raise InputError(f"{source}: expected a JSON object of stack outputs")

    def need(key: str, kind: type, within: dict = document, prefix: str = "") -> Any:
        return required(within, key, kind, source, prefix)

    def capacities(key: str) -> dict[str, dict[str, int]]:
        found = need(key, dict)
        for name in SERVICES:
            counts = found.get(name)
            if not isinstance(counts, dict) or not all(isinstance(counts.get(k), int) for k in COUNTS):
                raise InputError(f"{source}: output '{key}.{name}' must be {{min, max, desired}} integers")
        return {name: {c: found[name][c] for c in COUNTS} for name in SERVICES}

    def switch() -> FailoverSwitch:
        found = need("failover_switch", dict)
        values = {k: need(k, str, found, "failover_switch.") for k in SWITCH_KEYS}
        dimensions = need("dimensions", dict, found, "failover_switch.")
        if not dimensions or not all(isinstance(v, str) for v in dimensions.values()):
            raise InputError(f"{source}: output 'failover_switch.dimensions' must map names to strings, "
                             f"found {json.dumps(dimensions)}")
        return FailoverSwitch(dimensions=dict(dimensions), **values)

    def probe() -> ReplicationProbe | None:
        found = document.get("replication_probe")
        if found is None:
            return None
        found = need("replication_probe", dict)
        metrics = need("metrics", dict, found, "replication_probe.")
        names = {k: need(k, str, metrics, "replication_probe.metrics.") for k in PROBE_METRICS}
        dimensions = need("dimensions", dict, found, "replication_probe.")
        if not all(isinstance(v, str) for v in dimensions.values()):
            raise InputError(f"{source}: output 'replication_probe.dimensions' must map names to strings, "
                             f"found {json.dumps(dimensions)}")
        numbers = {k: need(k, int | float, found, "replication_probe.")
                   for k in ("interval_seconds", "max_replication_age_seconds")}
        return ReplicationProbe(namespace=need("namespace", str, found, "replication_probe."), metrics=names,
                                dimensions=dict(dimensions),
                                writer_dimension=need("writer_dimension", str, found, "replication_probe."),
                                **{k: float(v) for k, v in numbers.items()})

    def optional(key: str, fields: dict[str, type]) -> dict[str, Any] | None:
        """An output added after the first release: None in outputs from before it, else every field checked."""
        if document.get(key) is None:
            return None
        found = need(key, dict)
        return {field: need(field, kind, found, f"{key}.") for field, kind in fields.items()}

    role = need("role", str)
    if role != expected_role:
        raise InputError(f"{source}: output 'role' is '{role}', expected '{expected_role}'")
    services = need("ecs_services", dict)
    for name in SERVICES:
        if not isinstance(services.get(name), str):
            raise InputError(f"{source}: output 'ecs_services.{name}' must name the {name} service")
    return StackOutputs(
        source=source, region=need("region", str), role=role, app_domain=need("app_domain", str),
        db_instance_identifier=need("db_instance_identifier", str),
        db_instance_arn=need("db_instance_arn", str), db_endpoint=need("db_endpoint", str),
        db_is_replica=need("db_is_replica", bool),
        ecs_cluster_name=need("ecs_cluster_name", str), ecs_services={k: services[k] for k in SERVICES},
        ecs_capacity=capacities("ecs_capacity"), ecs_standby_capacity=capacities("ecs_standby_capacity"),
        backup_bucket_name=need("backup_bucket_name", str), backup_bucket_arn=need("backup_bucket_arn", str),
        failover_switch=switch() if role == "primary" else None,
        secret_arns=dict(need("secret_arns", dict)),
        replication_probe=probe(),
        active_region=need("active_region", str) if "active_region" in document else None,
        password_restarts=optional("password_restarts", {"rule_name": str, "secret_arn": str}),
        db_fence=optional("db_fence", {"security_group_id": str, "app_security_group_id": str, "port": int}),
        cache_replication_group_id=need("cache_replication_group_id", str)
        if document.get("cache_global_datastore") else document.get("cache_replication_group_id"),
        cache_global_datastore=need("cache_global_datastore", str) if document.get("cache_global_datastore") else None,
    )


def read_document(path: Path) -> Any:
    """A stack outputs file (`pulumi stack output --json > FILE`) as JSON."""
    try:
        return json.loads(read_text(path))
    except UnreadableFile as exc:
        raise InputError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None


def stack_document(name: str, files_hint: str, show_secrets: bool = True) -> Any:
    """`pulumi stack output --json [--show-secrets] -s NAME` as JSON; `files_hint` says which options take files
    instead."""
    command = ["pulumi", "stack", "output", "--json", *(["--show-secrets"] if show_secrets else []), "-s", name]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        raise InputError(f"the Pulumi CLI is not installed: pass {files_hint}") from None
    if done.returncode != 0:
        raise InputError(f"stack {name}: `{' '.join(command)}` failed: {done.stderr.strip()}")
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise InputError(f"stack {name}: its outputs are not JSON ({exc})") from None


def from_file(path: Path, expected_role: str) -> StackOutputs:
    return parse(read_document(path), str(path), expected_role)


def from_stack(name: str, expected_role: str) -> StackOutputs:
    return parse(stack_document(name, "--primary-outputs/--backup-outputs files"), f"stack {name}", expected_role)
