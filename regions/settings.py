"""Stack settings: read once from the stack's config, validated, frozen, passed down.

Every problem stops the program before any resource registers, with one message naming the
stack file, the key, the value found and what is allowed.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi

from regions.addressing import MAX_VPC_PREFIX, MIN_VPC_PREFIX
from regions.catalog import (
    ACTIVE_SHAPE,
    CACHE_VERSIONS,
    DEFAULT_DB_INSTANCE_CLASS,
    FARGATE_MEMORY,
    GLOBAL_DATASTORE_FAMILIES,
    NAT_MODES,
    PROFILES,
    REGIONS,
    ROLES,
    SERVICE_PROFILES,
    SERVICES,
    STANDBY_SHAPE,
    RegionInfo,
    Role,
    cache_node_memory_gib,
    db_class_memory_gib,
    supports_global_datastore,
)
from regions.model import (
    NOTHING_RUNS,
    AppSecrets,
    BackupSettings,
    BudgetSettings,
    CacheSettings,
    Capacity,
    DatabaseSettings,
    DomainSettings,
    DrillSettings,
    ImageSettings,
    ImageSource,
    MonitoringSettings,
    NetworkSettings,
    ProbeSettings,
    ServiceSettings,
    ServicesSettings,
    StackSettings,
    TagSettings,
    TerraformState,
    UsageSettings,
)
from regions.reader import MISSING, PROJECT, Reader, Schema, SettingsError, show
from regions.stackfile import StackFileError, read_stack_file, stack_file_name
from regions.tuning import RDS_BYTES_PER_CONNECTION, connection_budget
from regions.workloads import APP_IMAGES, IMAGES, PROBE_IMAGE, WORKLOADS, peak_tasks

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653)
_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
# Short enough that bucket names (project-environment-purpose-region-account) stay within 63.
# It names buckets (trading-platform-<env>-access-logs-<region>-<account>, at most 63 characters), the RDS
# identifier and the ElastiCache group: so at most 11 characters, no trailing or doubled hyphen.
_ENVIRONMENT = re.compile(r"(?=.{1,11}$)[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_PG_VERSION = re.compile(r"1[3-7](?:\.\d{1,2})?")
_DB_CLASS = re.compile(r"db\.[a-z0-9]+\.[a-z0-9]+")
_CACHE_NODE = re.compile(r"cache\.[a-z0-9]+\.[a-z0-9]+")
_PG_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]{0,62}")
_VAULT_NAME = re.compile(r"[A-Za-z0-9_.-]{2,50}")
# RDS snapshot identifiers: a letter first, letters, digits and single hyphens, no hyphen last.
_SNAPSHOT_ID = re.compile(r"(?=.{1,255}$)[A-Za-z](?:-?[A-Za-z0-9])*")
_STACK_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
# What AWS accepts in a tag value.
_TAG_VALUE = re.compile(r"[\w\s.:/=+\-@]{1,256}")
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))

# What the adopted network needs from a Terraform state -> terraform-aws-modules/vpc's output names.
TERRAFORM_OUTPUTS = {
    "vpcId": "vpc_id",
    "vpcCidr": "vpc_cidr_block",
    "publicSubnets": "public_subnets",
    "privateSubnets": "private_subnets",
    "databaseSubnets": "database_subnets",
    "privateRouteTables": "private_route_table_ids",
    "databaseRouteTables": "database_route_table_ids",
}


_CAPACITY = ("cpu", "memory", "min", "max", "desired")
_IMAGE = ("context", "dockerfile", "uri")
# Top-level keys under the project namespace: a scalar (None) or an object with these fields.
SCHEMA: dict[str, Schema | None] = {
    "environment": None,
    "role": None,
    "activeRegion": None,
    "peerStack": None,
    "domain": ("zoneName", "appRecord"),
    "tags": ("costCenter", "owner"),
    "network": {"cidr": None, "azCount": None, "availabilityZoneIds": None, "natGateways": None,
                "standbyNatGateways": None, "flowLogRetentionDays": None, "source": None,
                "terraformState": ("backend", "path", "bucket", "key", "region", "workspace"),
                "terraformOutputs": tuple(TERRAFORM_OUTPUTS)},
    "database": ("engineVersion", "instanceClass", "allocatedStorageGb", "maxAllocatedStorageGb",
                 "backupRetentionDays", "multiAz", "standbyMultiAz", "applyImmediately", "detached",
                 "retireWithSnapshot", "logMinDurationMs", "logRetentionDays", "promoted",
                 "passwordRotationDays", "name", "username", "poolSize"),
    "cache": ("engine", "engineVersion", "nodeType", "nodes", "standbyNodeType", "standbyNodes",
              "snapshotRetentionDays", "authTokenVersion", "authTokenSoleVersion", "globalDatastore"),
    "backups": ("vaultName", "dailyRetentionDays", "weeklyRetentionDays", "monthlyRetentionDays",
                "coldStorageAfterDays", "replicateToPeer"),
    # services.standby and database.promoted are retired (activeRegion decides): known, to be refused by name.
    "services": {"standby": None, "logLevel": None, "logRetentionDays": None, "execEnabled": None,
                 "api": (*_CAPACITY, "standbyMin", "standbyDesired"),
                 "web": (*_CAPACITY, "standbyMin", "standbyDesired"),
                 "worker": (*_CAPACITY, "spot"), "beat": ("cpu", "memory")},
    "images": {"tag": None, "keep": None, **{name: _IMAGE for name in IMAGES}},
    "dns": ("createZone",),
    "monitoring": ("alarmEmail", "alb5xxPercent", "p95LatencySeconds", "ecsCpuPercent", "ecsMemoryPercent",
                   "rdsCpuPercent", "rdsFreeStorageGb", "rdsConnections", "replicaLagSeconds", "redisCpuPercent",
                   "redisMemoryPercent"),
    "budget": ("monthlyUsd", "actualPercent", "forecastPercent", "activateCostTags"),
    "drill": ("principals", "requireMfa"),
    # The replication probe (components/probe.py); the same in both stack files.
    "probe": ("enabled", "intervalSeconds", "maxReplicationAgeSeconds", "silentMinutes"),
    # Usage the cost estimate cannot read from the resources (monthly figures).
    "usage": ("s3StorageGb", "replicationGbPerMonth", "natGbPerMonth", "albLcu", "wafMillionRequests",
              "logsGbPerMonth", "ecrStorageGb", "backupStorageGb", "globalDatastoreGbPerMonth"),
    # secure: values (`pulumi config set --secret`); generated or left for operators when absent.
    "jwtSecret": None,
    "googleClientId": None,
}
# The only keys that may hold secure: values; the primary's file only.
SECRET_SETTINGS = ("jwtSecret", "googleClientId")


def _parse_cidr(reader: Reader, path: str, default: str) -> str:
    allowed = (f"an RFC 1918 IPv4 network from /{MIN_VPC_PREFIX} to /{MAX_VPC_PREFIX} "
               f"with no host bits, e.g. {default}")
    value = reader.read(path, allowed, default)
    try:
        network = ipaddress.ip_network(value) if isinstance(value, str) else None
    except ValueError:
        network = None
    if (network is None or network.version != 4
            or not MIN_VPC_PREFIX <= network.prefixlen <= MAX_VPC_PREFIX
            or not any(network.subnet_of(block) for block in _RFC1918)):
        raise reader.fail(reader.key(path), value, allowed)
    return str(network)


def _peek(raw: Mapping[str, str], key: str, *members: str) -> Any:
    """A value of another stack file's raw config: `_peek(raw, "trading-platform:services", "api", "max")`."""
    value = raw.get(key)
    if not members or value is None:
        return value
    try:
        obj = json.loads(value)
    except json.JSONDecodeError:
        return None
    for member in members:
        obj = obj.get(member) if isinstance(obj, dict) else None
    return obj


def _mismatch(reader: Reader, key: str, ours: Any, theirs: Any, default: Any, peer_file: str, why: str,
              problem: str = "differs from the other stack's") -> SettingsError:
    """Two stack files disagree: blame the one whose value was changed from the default (the other is as it
    ships); when neither or both were, the backup's, naming both values, since the primary anchors the pair."""
    peer_changed = theirs != default and ours == default
    ours_changed = ours != default and theirs == default
    blame_peer = peer_changed or (not ours_changed and reader.role == "primary")
    if blame_peer:
        return SettingsError(peer_file, key, theirs, f"{show(ours)}, the value in {reader.stack_file} ({why})", problem)
    return reader.fail(key, ours, f"{show(theirs)}, the value in {peer_file} ({why})", problem)


def _same_as_peer(reader: Reader, path: str, value: Any, default: Any, peer: Mapping[str, str],
                  peer_file: str | None, why: str) -> Any:
    """Values the two stacks must agree on: the error names the file whose value differs from the default."""
    if peer_file:
        section, *members = path.split(".")
        theirs = _peek(peer, f"{PROJECT}:{section}", *members)
        theirs = default if theirs is None else theirs
        if theirs != value:
            raise _mismatch(reader, reader.key(path), value, theirs, default, peer_file, why)
    return value


def _active_default(role: Role, peer: Mapping[str, str], path: str, default: Any, valid: Any) -> Any:
    """A key of the active shape left out: the backup's follows the primary's file (whichever region is active runs
    alike), the primary's is the catalog's ACTIVE_SHAPE."""
    if role != "backup":
        return default
    section, member = path.split(".")
    theirs = _peek(peer, f"{PROJECT}:{section}", member)
    return theirs if theirs is not None and valid(theirs) else default


def other_stacks(project_dir: Path, own_file: str) -> list[tuple[str, dict[str, str]]]:
    """The other stack files beside this one, as (file name, raw config); unreadable ones are
    skipped here, since that stack reports its own file when it runs."""
    others = []
    for path in sorted(project_dir.glob("Pulumi.*.yaml")):
        if path.name != own_file:
            try:
                others.append((path.name, read_stack_file(path)[0]))
            except StackFileError:
                continue
    return others


def _check_other_stacks(reader: Reader, others: list[tuple[str, dict[str, str]]], role: Role,
                        region: RegionInfo, cidr: str | None, environment: str) -> None:
    """The stack files are a pair: one per role, peer regions, disjoint address ranges (an adopted
    network's range is in its Terraform state, checked there)."""
    own = ipaddress.ip_network(cidr) if cidr else None
    for name, raw in others:
        other_role = _peek(raw, f"{PROJECT}:role")
        other_region = REGIONS.get(_peek(raw, "aws:region") or "")
        if other_role == role:
            # The file named after the role keeps it: the other one claims a role that is not its own.
            if reader.stack_file == f"Pulumi.{role}.yaml" and name != reader.stack_file:
                raise SettingsError(name, reader.key("role"), role, f"exactly one stack file per role "
                                    f"({', '.join(ROLES)})", f"is already the role of {reader.stack_file}")
            raise reader.fail(reader.key("role"), role,
                              f"exactly one stack file per role ({', '.join(ROLES)})",
                              f"is already the role of {name}")
        other_environment = _peek(raw, f"{PROJECT}:environment")
        if other_role in ROLES and other_environment and other_environment != environment:
            raise _mismatch(reader, reader.key("environment"), environment, other_environment, None, name,
                            "the pair shares secrets and vault names")
        if other_role in ROLES and other_region is not None and region.name != other_region.peer:
            # The primary's region anchors the pair: the backup's is the one that does not pair.
            if role == "primary":
                raise SettingsError(name, "aws:region", other_region.name,
                                    f"{region.peer} (the catalog's peer of {region.name}, the primary stack's "
                                    f"region in {reader.stack_file})", "does not pair with the other stack")
            raise reader.fail("aws:region", region.name,
                              f"{other_region.peer} (the catalog's peer of {other_region.name}, "
                              f"the {other_role} stack's region in {name})",
                              "does not pair with the other stack")
        other_cidr = _peek(raw, f"{PROJECT}:network", "cidr") or (other_region.default_cidr if other_region else None)
        try:
            other = ipaddress.ip_network(other_cidr) if isinstance(other_cidr, str) else None
        except ValueError:
            other = None
        if other is not None and own is not None and own.overlaps(other):
            # Blame the range that was changed from its region's default, else this file's.
            if str(own) == region.default_cidr and other_region and str(other) != other_region.default_cidr:
                raise SettingsError(name, reader.key("network.cidr"), str(other),
                                    f"a range disjoint from {own} (the peer VPCs must stay routable to each other)",
                                    f"overlaps the {role} stack's {own} ({reader.stack_file})")
            raise reader.fail(reader.key("network.cidr"), cidr,
                              f"a range disjoint from {other} (the peer VPCs must stay routable to each other)",
                              f"overlaps the {other_role or name} stack's {other} ({name})")


def _zone_ids(reader: Reader, region: RegionInfo, default_count: int) -> tuple[str, ...]:
    """`network.availabilityZoneIds` pins the zones; otherwise the catalog's first `azCount`."""
    usable = region.availability_zone_ids
    count = reader.integer("network.azCount", 2, len(usable), default_count,
                           f" (the usable AZs of {region.name} in the region catalog)")
    pinned = reader.get("network.availabilityZoneIds", None)
    if pinned is None:
        return usable[:count]
    allowed = (f"a list of 2 to {len(usable)} distinct AZ IDs of {region.name} from {', '.join(usable)}"
               + (f" ({', '.join(region.constrained_zone_ids)} lacks the instance families used)"
                  if region.constrained_zone_ids else ""))
    key = reader.key("network.availabilityZoneIds")
    # Membership first: anything but a catalog ID (a number, a mapping) is refused before it is hashed.
    if (not isinstance(pinned, list) or not all(zone in usable for zone in pinned)
            or not 2 <= len(pinned) <= len(usable) or len(set(pinned)) != len(pinned)):
        raise reader.fail(key, pinned, allowed)
    if reader.get("network.azCount", None) not in (None, len(pinned)):
        raise reader.fail(reader.key("network.azCount"), count, f"{len(pinned)}, the number of availabilityZoneIds",
                          "disagrees with availabilityZoneIds")
    return tuple(pinned)


def check_zone_ids(settings: StackSettings, offered: Sequence[str]) -> tuple[str, ...]:
    """At deploy time: the account must offer every chosen zone (an account may lack a newer one)."""
    missing = [zone for zone in settings.network.availability_zone_ids if zone not in offered]
    if missing:
        raise SettingsError(settings.stack_file, f"{PROJECT}:network.availabilityZoneIds",
                            list(settings.network.availability_zone_ids),
                            f"AZ IDs this account offers in {settings.region.name}: {', '.join(sorted(offered))}",
                            f"names {', '.join(missing)}, which this account does not offer")
    return settings.network.availability_zone_ids


def _network(reader: Reader, region: RegionInfo, profile: Any, role: Role,
             peer: Mapping[str, str]) -> NetworkSettings:
    source = reader.choice("network.source", ("create", "terraform"), "create")
    retention = _retention(reader, "network.flowLogRetentionDays", 90)
    if source == "create":
        for unused in ("terraformState", "terraformOutputs"):
            if reader.get(f"network.{unused}", None) is not None:
                raise reader.fail(reader.key(f"network.{unused}"), reader.get(f"network.{unused}"),
                                  "only with network.source terraform", "is set but not used")
        cidr = _parse_cidr(reader, "network.cidr", region.default_cidr)
        zone_ids = _zone_ids(reader, region, profile.az_count)
        nat = reader.choice("network.natGateways", NAT_MODES,
                            _active_default(role, peer, "network.natGateways", ACTIVE_SHAPE.nat_gateways,
                                            lambda v: v in NAT_MODES))
        standby = reader.choice("network.standbyNatGateways", NAT_MODES, STANDBY_SHAPE.nat_gateways)
        if standby == "perAz" and nat == "single":
            raise reader.fail(reader.key("network.standbyNatGateways"), standby,
                              "single while network.natGateways is single (a standby runs no more than the active "
                              "region)")
        return NetworkSettings(cidr=cidr, availability_zone_ids=zone_ids, nat_gateways=nat,
                               standby_nat_gateways=standby, flow_log_retention_days=retention)
    # The adopted VPC's shape is Terraform's: settings that would shape ours must not linger unnoticed.
    for unused in ("cidr", "azCount", "availabilityZoneIds", "natGateways", "standbyNatGateways"):
        if reader.get(f"network.{unused}", None) is not None:
            raise reader.fail(reader.key(f"network.{unused}"), reader.get(f"network.{unused}"),
                              "not set when network.source is terraform (the state decides)", "is set but not used")
    if reader.get("network.terraformState", None) is None:
        raise reader.fail(reader.key("network.terraformState"), MISSING,
                          "{backend: local, path} or {backend: s3, bucket, key, region, workspace?}")
    backend = reader.choice("network.terraformState.backend", ("local", "s3"))
    text = re.compile(r"\S+")

    def field(name: str) -> str | None:
        return reader.string(f"network.terraformState.{name}", text, f"the {name} of the {backend} state")

    outputs = {ours: reader.string(f"network.terraformOutputs.{ours}", re.compile(r"[A-Za-z0-9_.-]+"),
                                   "a Terraform output name", theirs)
               for ours, theirs in TERRAFORM_OUTPUTS.items()}
    if backend == "local":
        path = field("path")
        if not (reader.project_dir / path).is_file():
            raise reader.fail(reader.key("network.terraformState.path"), path,
                              "a Terraform state file, relative to the project directory", "does not exist")
        state = TerraformState("local", path, None, None, None, None, outputs)
    else:
        region_name = reader.string("network.terraformState.region", re.compile(r"[a-z]{2}(-[a-z]+)+-\d"),
                                    "the state bucket's AWS region, e.g. us-east-1", region.name)
        state = TerraformState("s3", None, field("bucket"), field("key"), region_name,
                               reader.get("network.terraformState.workspace", None), outputs)
    return NetworkSettings(cidr="", availability_zone_ids=(), nat_gateways="", standby_nat_gateways="",
                           flow_log_retention_days=retention, source="terraform", terraform=state)


def _former_writer(reader: Reader, active: bool) -> tuple[bool, str | None]:
    """`database.detached` and `database.retireWithSnapshot`: the steps that turn a former writer into a replica
    again (regions/roles.py)."""
    detached = reader.boolean("database.detached", False)
    if detached and active:
        raise reader.fail(reader.key("database.detached"), True,
                          "false while this stack's region is the activeRegion (its database is the writer)")
    retire = reader.get("database.retireWithSnapshot", None)
    if retire is not None:
        retire = reader.string("database.retireWithSnapshot", _SNAPSHOT_ID,
                               "an RDS snapshot identifier: a letter, then letters, digits and single hyphens")
        if not detached:
            raise reader.fail(reader.key("database.retireWithSnapshot"), retire,
                              "set only with database.detached: true (it retires a former writer)")
    return detached, retire


def _database(reader: Reader, role: Role, peer: Mapping[str, str], peer_file: str | None,
              services: ServicesSettings, former_writer: tuple[bool, str | None]) -> DatabaseSettings:
    # A replica defaults to the primary's class: once promoted it carries the primary's load.
    class_default = DEFAULT_DB_INSTANCE_CLASS
    if role == "backup":
        class_default = _peek(peer, f"{PROJECT}:database", "instanceClass") or class_default
    allocated = reader.integer("database.allocatedStorageGb", 20, 65536, 100)
    detached, retire_snapshot = former_writer
    instance_class = reader.string("database.instanceClass", _DB_CLASS, "an RDS instance class such as db.r6g.large",
                                   class_default)
    pool_size = _same_as_peer(reader, "database.poolSize",
                              reader.integer("database.poolSize", 1, 50, 5, " (connections per application process)"),
                              5, peer, peer_file, "the replica's max_connections must be at least the writer's")
    max_connections = _max_connections(reader, services, pool_size, instance_class, peer, peer_file)
    multi_az = _same_as_peer(
        reader, "database.multiAz",
        reader.boolean("database.multiAz", _active_default(role, peer, "database.multiAz", ACTIVE_SHAPE.db_multi_az,
                                                           lambda v: isinstance(v, bool))),
        ACTIVE_SHAPE.db_multi_az, peer, peer_file,
        "whichever region is active runs its writer alike; a standby's replica is database.standbyMultiAz")
    # RDS creates and runs a read replica Multi-AZ if asked (CreateDBInstanceReadReplica, MultiAZ), at twice the price.
    standby_multi_az = reader.boolean("database.standbyMultiAz", STANDBY_SHAPE.db_multi_az)
    if standby_multi_az and not multi_az:
        raise reader.fail(reader.key("database.standbyMultiAz"), True,
                          "false while database.multiAz is false (a standby runs no more than the active region)")
    # The writer's (regions/roles.py): false by default, so that a class change's outage comes in the maintenance
    # window, not in the middle of trading.
    apply_immediately = _same_as_peer(reader, "database.applyImmediately",
                                      reader.boolean("database.applyImmediately", False), False, peer, peer_file,
                                      "whichever region is active runs its writer alike")
    return DatabaseSettings(
        engine_version=reader.string("database.engineVersion", _PG_VERSION,
                                     "a PostgreSQL version 13 to 17 as MAJOR or MAJOR.MINOR, e.g. 16.9", "16.9"),
        instance_class=instance_class,
        allocated_storage_gb=allocated,
        max_allocated_storage_gb=reader.integer("database.maxAllocatedStorageGb", -(-allocated * 11 // 10), 65536,
                                                500, " (RDS takes an autoscaling ceiling at least 10% above "
                                                     "allocatedStorageGb)"),
        backup_retention_days=reader.integer("database.backupRetentionDays", 7, 35, 14,
                                             " (at least a week of point-in-time recovery)"),
        multi_az=multi_az,
        standby_multi_az=standby_multi_az,
        apply_immediately=apply_immediately,
        detached=detached,
        retire_snapshot=retire_snapshot,
        log_min_duration_ms=reader.integer("database.logMinDurationMs", -1, 3_600_000, 500,
                                           " (-1 turns slow-statement logging off)"),
        log_retention_days=_retention(reader, "database.logRetentionDays", 90),
        password_rotation_days=reader.integer("database.passwordRotationDays", 1, 1000, 30,
                                              " (Secrets Manager's rotation schedule)"),
        name=reader.string("database.name", _PG_IDENTIFIER, "a lowercase PostgreSQL identifier", "trading_platform"),
        username=reader.string("database.username", _PG_IDENTIFIER, "a lowercase PostgreSQL identifier",
                               "trading_admin"),
        pool_size=pool_size,
        max_connections=max_connections,
    )


def _max_connections(reader: Reader, services: ServicesSettings, pool_size: int, instance_class: str,
                     peer: Mapping[str, str], peer_file: str | None) -> int:
    """What the services open at their peak. A hot standby refuses to run with fewer max_connections than its
    writer, so the counts that make it must be equal in both stack files."""
    for name in SERVICES:
        if WORKLOADS[name].db_processes:
            _same_as_peer(reader, f"services.{name}.max", services[name].active.max, SERVICE_PROFILES[name].max,
                          peer, peer_file, "the replica's max_connections must be at least the writer's")
    budget = connection_budget(((peak_tasks(WORKLOADS[name], services[name].active.max), WORKLOADS[name].db_processes)
                                for name in SERVICES), pool_size)
    memory = db_class_memory_gib(instance_class)
    if memory is not None and budget > memory * 1024 ** 3 // RDS_BYTES_PER_CONNECTION:
        raise reader.fail(reader.key("database.instanceClass"), instance_class,
                          f"a class with memory for {budget} connections (RDS allows about 9 MiB each: "
                          f"{memory} GiB holds {memory * 1024 ** 3 // RDS_BYTES_PER_CONNECTION}), or fewer "
                          "services.*.max or database.poolSize",
                          f"cannot hold max_connections {budget}")
    return budget


def _cache(reader: Reader, role: Role, peer: Mapping[str, str], peer_file: str | None) -> CacheSettings:
    engine = reader.choice("cache.engine", tuple(CACHE_VERSIONS), "valkey")
    versions = tuple(CACHE_VERSIONS[engine])
    node_type = reader.string("cache.nodeType", _CACHE_NODE, "an ElastiCache node type such as cache.r7g.large",
                              _active_default(role, peer, "cache.nodeType", ACTIVE_SHAPE.cache_node_type,
                                              lambda v: isinstance(v, str) and bool(_CACHE_NODE.fullmatch(v))))
    # Whichever region is active, its cache is also the Celery broker: it must survive a node loss, with automatic
    # failover to another AZ. ElastiCache refuses automatic failover below 2 nodes (CreateReplicationGroup's
    # NumCacheClusters) and Multi-AZ without automatic failover: both follow the node count (components/cache.py).
    nodes = reader.integer("cache.nodes", 2, 6,
                           _active_default(role, peer, "cache.nodes", ACTIVE_SHAPE.cache_nodes,
                                           lambda v: isinstance(v, int) and not isinstance(v, bool) and 2 <= v <= 6),
                           " (the active region's cache needs automatic failover, which ElastiCache allows only "
                           "with 2 or more nodes; a standby's count is cache.standbyNodes)")
    standby_type = reader.string("cache.standbyNodeType", _CACHE_NODE,
                                 "an ElastiCache node type such as cache.t4g.medium", STANDBY_SHAPE.cache_node_type)
    if cache_node_memory_gib(standby_type) is None:
        raise reader.fail(reader.key("cache.standbyNodeType"), standby_type,
                          "a node type of the catalog (regions/catalog.py: cache.t3 and cache.t4g micro to medium, "
                          "cache.m6g, cache.m7g, cache.r6g and cache.r7g large to 16xlarge), e.g. cache.t4g.medium",
                          "is not in the node-type catalog")
    standby_nodes = reader.integer("cache.standbyNodes", 1, nodes, STANDBY_SHAPE.cache_nodes,
                                   f" (at most cache.nodes {nodes}; 2 or more fail over automatically and run "
                                   "Multi-AZ, 1 does neither)")
    engine_version = reader.choice("cache.engineVersion", versions, versions[-1])
    # One stack creates the Global Datastore and the other joins it (components/cache.py): both files say so.
    global_datastore = _same_as_peer(reader, "cache.globalDatastore", reader.boolean("cache.globalDatastore", False),
                                     False, peer, peer_file, "the primary creates the Global Datastore, the backup's "
                                                             "cache joins it")
    if global_datastore:
        _global_datastore_cache(reader, role, peer, peer_file, engine, engine_version, node_type, standby_type,
                                standby_nodes)
    # Each region has its own token, but the pair rotates them in the same steps (and a Global Datastore's share one).
    version = _same_as_peer(
        reader, "cache.authTokenVersion",
        reader.integer("cache.authTokenVersion", 1, 1_000_000, 1, " (raise it in both stack files to rotate the auth "
                                                                   "tokens)"),
        1, peer, peer_file, "one version rotates both stacks")
    return CacheSettings(
        engine=engine,
        engine_version=engine_version,
        node_type=node_type,
        nodes=nodes,
        standby_node_type=standby_type,
        standby_nodes=standby_nodes,
        snapshot_retention_days=reader.integer("cache.snapshotRetentionDays", 1, 35, 7),
        auth_token_version=version,
        auth_token_sole=_auth_token_sole(reader, version, peer, peer_file),
        global_datastore=global_datastore,
    )


def _auth_token_sole(reader: Reader, version: int, peer: Mapping[str, str], peer_file: str | None) -> bool:
    """cache.authTokenSoleVersion: the second step of a rotation. Naming the current version makes its token the
    only one the caches accept (SET) once every task runs it; left out, or an older version (the last rotation's),
    the previous token still works beside it (ROTATE), so raising authTokenVersion alone never locks a running task
    out. Both files agree, as on the version: a Global Datastore's caches share the primary's token."""
    path = "cache.authTokenSoleVersion"
    sole = reader.get(path, None)
    if sole is not None:
        sole = reader.integer(path, 1, version, why=f" (at most cache.authTokenVersion {version}: the version whose "
                                                    "token alone the caches accept, once every task runs it)")
    _same_as_peer(reader, path, sole, None, peer, peer_file, "the pair rotates its tokens in the same steps")
    return sole == version


def _global_datastore_cache(reader: Reader, role: Role, peer: Mapping[str, str], peer_file: str | None, engine: str,
                            version: str, node_type: str, standby_type: str, standby_nodes: int) -> None:
    """What ElastiCache requires of a Global Datastore's clusters (User Guide, global datastores, "Prerequisites and
    limitations"): one engine, version and node type in all of them, of a family it supports in size large or above;
    and a secondary of 2 or more nodes, since it inherits the primary's automatic failover. Either region's cluster is
    the primary or the secondary by turns (an evacuation promotes us-west-2's), so both shapes must qualify."""
    why = "every cluster of a Global Datastore runs one engine, version and node type"
    if not supports_global_datastore(node_type):
        raise reader.fail(reader.key("cache.nodeType"), node_type,
                          f"cache.<{'|'.join(GLOBAL_DATASTORE_FAMILIES)}>.<large or larger> while "
                          "cache.globalDatastore is true", "is a node type Global Datastore does not support")
    if standby_type != node_type:
        raise reader.fail(reader.key("cache.standbyNodeType"), standby_type,
                          f"{show(node_type)}, cache.nodeType, while cache.globalDatastore is true ({why}; burstable "
                          "nodes are not supported)")
    if standby_nodes < 2:
        raise reader.fail(reader.key("cache.standbyNodes"), standby_nodes,
                          "2 or more while cache.globalDatastore is true (a secondary inherits the primary's automatic "
                          "failover, and ElastiCache refuses a single-node secondary then)")
    _same_as_peer(reader, "cache.engine", engine, "valkey", peer, peer_file, why)
    _same_as_peer(reader, "cache.engineVersion", version, tuple(CACHE_VERSIONS[engine])[-1], peer, peer_file, why)
    # The backup's nodeType left out is the primary's (_active_default): only one it sets can differ.
    _same_as_peer(reader, "cache.nodeType", node_type, node_type if role == "primary" else ACTIVE_SHAPE.cache_node_type,
                  peer, peer_file, why)


def _backups(reader: Reader, resource_prefix: str, peer: Mapping[str, str], role: Role) -> BackupSettings:
    vault_name = reader.string("backups.vaultName", _VAULT_NAME, "2 to 50 letters, digits, '-', '_' or '.'",
                               resource_prefix)
    peer_vault = _peek(peer, f"{PROJECT}:backups", "vaultName")
    monthly = reader.integer("backups.monthlyRetentionDays", 1, 36500, 2557)
    return BackupSettings(
        vault_name=vault_name,
        peer_vault_name=peer_vault if isinstance(peer_vault, str) and _VAULT_NAME.fullmatch(peer_vault)
        else vault_name,
        daily_retention_days=reader.integer("backups.dailyRetentionDays", 1, 36500, 35),
        weekly_retention_days=reader.integer("backups.weeklyRetentionDays", 1, 36500, 180),
        monthly_retention_days=monthly,
        cold_storage_after_days=_cold_storage(reader, monthly),
        replicate_to_peer=_replicate_to_peer(reader, role),
    )


def _replicate_to_peer(reader: Reader, role: Role) -> bool:
    path = "backups.replicateToPeer"
    if role != "primary" and reader.get(path, None) is not None:
        raise reader.fail(reader.key(path), reader.get(path), "not set in the backup stack",
                          "is set, but the replication rule lives on the primary's bucket")
    return role == "primary" and reader.boolean(path, True)


def _cold_storage(reader: Reader, monthly: int) -> int | None:
    """AWS Backup keeps a recovery point in cold storage for at least 90 days: with monthly recovery
    points kept 90 days or less there is no cold tier (None); `coldStorageAfterDays: 0` turns it off."""
    path = "backups.coldStorageAfterDays"
    if monthly <= 90:
        if reader.get(path, 0) != 0:
            raise reader.fail(reader.key(path), reader.get(path),
                              "0 (off) while monthlyRetentionDays is 90 or less")
        return None
    days = reader.integer(path, 0, monthly - 90, 90, " (0 turns cold storage off; at least 90 days before "
                                                     "monthlyRetentionDays)")
    return days or None


_IMAGE_URI = re.compile(r"[\w.-]+(?::\d+)?/[\w./-]+(?:@sha256:[0-9a-f]{64}|:[\w][\w.-]{0,127})")
_IMAGE_TAG = re.compile(r"[\w][\w.-]{0,127}")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _service(reader: Reader, name: str) -> ServiceSettings:
    profile = SERVICE_PROFILES[name]
    path = f"services.{name}"
    cpu = reader.choice_int(f"{path}.cpu", tuple(FARGATE_MEMORY), profile.cpu, "Fargate CPU units")
    memory = reader.choice_int(f"{path}.memory", FARGATE_MEMORY[cpu], profile.memory,
                               f"the memory sizes (MiB) Fargate pairs with {cpu} CPU units")
    if name == "beat":
        # Exactly one scheduler in the active region, none in the standby: the profile's, not a setting.
        return ServiceSettings(name, cpu, memory, active=Capacity(profile.min, profile.max, profile.desired),
                               standby=NOTHING_RUNS, spot=False)
    floor = 0 if name == "worker" else 1
    high = reader.integer(f"{path}.max", 1, 100, profile.max)
    low = reader.integer(f"{path}.min", floor, high, profile.min, f" (at least {floor} and at most max {high})")
    desired = reader.integer(f"{path}.desired", low, high, max(low, profile.desired), " (between min and max)")
    if name == "worker":
        # The standby's database is read-only until promoted: a maximum of 0, so target tracking cannot start one.
        standby = NOTHING_RUNS
    else:
        s_low = reader.integer(f"{path}.standbyMin", 1, high, profile.standby_min, f" (at most max {high})")
        s_desired = reader.integer(f"{path}.standbyDesired", s_low, high, max(s_low, profile.standby_desired),
                                   " (between standbyMin and max)")
        standby = Capacity(s_low, high, s_desired)
    return ServiceSettings(name, cpu, memory, active=Capacity(low, high, desired), standby=standby,
                           spot=reader.boolean(f"{path}.spot", True) if name == "worker" else False)


def _active_region(reader: Reader, region: RegionInfo, role: Role, peer: Mapping[str, str],
                   peer_file: str | None) -> str:
    """One region serves and writes; both stack files say which, so two active regions cannot happen."""
    primary_region = region.name if role == "primary" else region.peer
    for old, now in (("services.standby", "the standby follows"), ("database.promoted", "the writer follows")):
        if reader.get(old, None) is not None:
            raise reader.fail(reader.key(old), reader.get(old, None), f"not set: {now} from {PROJECT}:activeRegion",
                              "is no longer a setting")
    active = reader.choice("activeRegion", (primary_region, region.peer if role == "primary" else region.name),
                           primary_region)
    return _same_as_peer(reader, "activeRegion", active, primary_region, peer, peer_file,
                         "one region serves and writes at a time")


def _services(reader: Reader, active_region: str, region: RegionInfo, detached: bool) -> ServicesSettings:
    return ServicesSettings(
        standby=active_region != region.name,
        idle=detached,
        log_level=reader.choice("services.logLevel", _LOG_LEVELS, "INFO"),
        log_retention_days=_retention(reader, "services.logRetentionDays", 90),
        exec_enabled=reader.boolean("services.execEnabled", False),
        services=tuple(_service(reader, name) for name in SERVICES),
    )


_ECR_URI = re.compile(r"\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/([^@:]+)(@sha256:[0-9a-f]{64})?.*")
# What an image is built from when its setting is left out: the probe from this repository (relative to the project
# directory, where the engine runs the program).
_DEFAULT_SOURCES = {PROBE_IMAGE: ImageSource(context="probe", dockerfile="Dockerfile", uri=None)}
_EXAMPLE_CONTEXTS = {"api": "../backend", "web": "../frontend"}


def _images(reader: Reader, role: Role, region: RegionInfo, repository_prefix: str,
            probe: ProbeSettings) -> ImageSettings:
    names = IMAGES if probe.enabled else APP_IMAGES
    if role == "backup":
        if reader.get("images", None) is not None:
            raise reader.fail(reader.key("images"), reader.get("images"), "not set in the backup stack",
                              "is set, but the primary builds the images and ECR replicates them to this region")
        return ImageSettings(tag=None, keep=0, sources={}, names=names)
    sources = {}
    for name in IMAGES:
        path = f"images.{name}"
        default = _DEFAULT_SOURCES.get(name)
        if name not in names:
            if reader.get(path, None) is not None:
                raise reader.fail(reader.key(path), reader.get(path), "not set while probe.enabled is false",
                                  "is set, but no probe runs")
            continue
        if default is not None:
            allowed = (f"{{context, dockerfile}} to build (by default context: {default.context}, dockerfile: "
                       f"{default.dockerfile}, this repository's) or {{uri}} of a pushed image")
        else:
            allowed = (f"{{context, dockerfile}} to build (e.g. context: {_EXAMPLE_CONTEXTS.get(name, '../' + name)}) "
                       "or {uri} of a pushed image")
        if reader.get(path, None) is None:
            if default is not None:
                sources[name] = default
                continue
            raise reader.fail(reader.key(path), MISSING, allowed)
        uri = reader.get(f"{path}.uri", None)
        context = reader.get(f"{path}.context", None)
        if (uri is None) == (context is None):
            raise reader.fail(reader.key(path), reader.get(path), allowed, "needs exactly one of context and uri")
        if uri is not None:
            uri = reader.string(f"{path}.uri", _IMAGE_URI, "REGISTRY/REPOSITORY@sha256:DIGEST or :TAG")
            ecr = _ECR_URI.fullmatch(uri)
            # ECR replicates only this stack's prefix, and the backup pulls the replica by digest in its region.
            if ecr and (ecr.group(1) != region.name or not ecr.group(2).startswith(f"{repository_prefix}/")
                        or not ecr.group(3)):
                raise reader.fail(reader.key(f"{path}.uri"), uri,
                                  f"an ECR image in {region.name} under {repository_prefix}/ pinned by @sha256 digest "
                                  "(what ECR replicates to the peer region), or an image in another registry",
                                  "would not reach the backup region")
        else:
            context = reader.string(f"{path}.context", re.compile(r"[^\0]+"), "a directory path")
        sources[name] = ImageSource(context=context, uri=uri,
                                    dockerfile=reader.string(f"{path}.dockerfile", re.compile(r"[^\0]+"),
                                                             "a file name in the context", "Dockerfile"))
    builds = any(source.context for source in sources.values())
    tag = reader.get("images.tag", None)
    if builds:
        # ECR tags are immutable: every build needs a new tag (a release or commit id).
        tag = reader.string("images.tag", _IMAGE_TAG, "a new tag per build, such as a commit id")
    return ImageSettings(tag=tag, keep=reader.integer("images.keep", 1, 1000, 30), sources=sources, names=names)


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}")
_IAM_PRINCIPAL = re.compile(r"arn:aws:iam::\d{12}:(?:root|role/[\w+=,.@/-]+|user/[\w+=,.@/-]+)")


def _monitoring(reader: Reader, max_connections: int) -> MonitoringSettings:
    def percent(field: str, default: float) -> float:
        return reader.number(f"monitoring.{field}", 1, 100, default)

    return MonitoringSettings(
        alarm_email=reader.string("monitoring.alarmEmail", _EMAIL, "the e-mail address alarms go to"),
        alb_5xx_percent=percent("alb5xxPercent", 5),
        p95_latency_seconds=reader.number("monitoring.p95LatencySeconds", 0.01, 60, 1.0),
        ecs_cpu_percent=percent("ecsCpuPercent", 85),
        ecs_memory_percent=percent("ecsMemoryPercent", 85),
        rds_cpu_percent=percent("rdsCpuPercent", 80),
        rds_free_storage_gb=reader.number("monitoring.rdsFreeStorageGb", 1, 65536, 10),
        rds_connections=reader.integer("monitoring.rdsConnections", 1, max_connections, max_connections * 4 // 5,
                                       f" (max_connections is {max_connections})"),
        # An idle PostgreSQL replica reports up to five minutes of lag: alarm above that.
        replica_lag_seconds=reader.integer("monitoring.replicaLagSeconds", 60, 86400, 900),
        redis_cpu_percent=percent("redisCpuPercent", 75),
        redis_memory_percent=percent("redisMemoryPercent", 80),
    )


def _probe(reader: Reader, peer: Mapping[str, str], peer_file: str | None) -> ProbeSettings:
    """The replication probe: one writes in the active region, the other reads in the standby, so both stack files
    must say the same (the active's interval is what the standby's thresholds are judged against)."""
    why = "the active region's probe writes the heartbeats the standby's looks for and alarms on"

    def same(path: str, value: Any, default: Any) -> Any:
        return _same_as_peer(reader, path, value, default, peer, peer_file, why)

    enabled = same("probe.enabled", reader.boolean("probe.enabled", True), True)
    interval = same("probe.intervalSeconds", reader.number("probe.intervalSeconds", 0.1, 60, 1), 1)
    # Younger than two heartbeats cannot be told from a heartbeat on its way.
    shortest = max(1, math.ceil(2 * interval))
    age_default = max(60, shortest)
    max_age = same("probe.maxReplicationAgeSeconds",
                   reader.integer("probe.maxReplicationAgeSeconds", shortest, 86_400, age_default,
                                  f" (at least twice probe.intervalSeconds {interval:g}; the standby's alarm)"),
                   age_default)
    # Each minute the alarm judges must hold a heartbeat or two: at least two intervals of silence.
    fewest = max(1, math.ceil(2 * interval / 60))
    silent = same("probe.silentMinutes",
                  reader.integer("probe.silentMinutes", fewest, 60, max(5, fewest),
                                 f" (at least two probe.intervalSeconds of {interval:g} s; the active region's "
                                 "alarm)"),
                  max(5, fewest))
    return ProbeSettings(enabled=enabled, interval_seconds=interval, max_replication_age_seconds=max_age,
                         silent_minutes=silent)


def _drill(reader: Reader, role: Role) -> DrillSettings:
    if role != "backup" and reader.get("drill", None) is not None:
        raise reader.fail(reader.key("drill"), reader.get("drill"), "not set in a primary stack",
                          "is set, but the drill operator role belongs to the backup stack")
    principals = reader.get("drill.principals", [])
    if not isinstance(principals, list) or not all(isinstance(p, str) and _IAM_PRINCIPAL.fullmatch(p)
                                                   for p in principals):
        raise reader.fail(reader.key("drill.principals"), principals,
                          "a list of IAM role, user or account-root ARNs")
    return DrillSettings(principals=tuple(principals), require_mfa=reader.boolean("drill.requireMfa", True))


def load_settings(raw: Mapping[str, str], stack: str, project_dir: Path, project: str = PROJECT,
                  secret_keys: Collection[str] = ()) -> StackSettings:
    """Validate one stack's config (`raw`, as the engine passes it, with the keys it marks secret) against
    the stack files beside it."""
    return _settings(Reader(stack_file_name(stack), raw, secret_keys, project_dir), stack, project)


def settings_rules(raw: Mapping[str, str], stack: str, project_dir: Path,
                   secret_keys: Collection[str] = ()) -> dict[str, tuple[str, Any]]:
    """What each setting this stack file reads allows, and its default (docs/settings.md)."""
    reader = Reader(stack_file_name(stack), raw, secret_keys, project_dir)
    _settings(reader, stack, PROJECT)
    return reader.rules


def _settings(reader: Reader, stack: str, project: str) -> StackSettings:
    region_name = reader.get("aws:region")
    if region_name is MISSING:
        raise reader.fail("aws:region", MISSING, "one of " + ", ".join(REGIONS))
    if region_name not in REGIONS:
        raise reader.fail("aws:region", region_name, "one of " + ", ".join(REGIONS), "is not in the region catalog")
    region = REGIONS[region_name]
    reader.check_known_keys(SCHEMA)
    for key in sorted(reader.secret_keys):
        if key.startswith(f"{PROJECT}:") and key.split(":", 1)[1] not in SECRET_SETTINGS:
            raise reader.fail(key, "(hidden)", "a plain value (only " + ", ".join(
                f"{PROJECT}:{name}" for name in SECRET_SETTINGS) + " are secrets)",
                              "holds a secure: value, but this setting cannot be a secret")

    role: Role = reader.choice("role", ROLES)  # type: ignore[assignment]
    reader.role = role
    if role == "backup":
        for name in SECRET_SETTINGS:
            if reader.get(name, None) is not None:
                raise reader.fail(reader.key(name), "(hidden)", "set in the primary's stack file only",
                                  "is set, but the primary creates the shared secrets and the backup reads them "
                                  "(this value would be ignored)")
    profile = PROFILES[role]
    others = other_stacks(reader.project_dir, reader.stack_file)
    peer_role = "backup" if role == "primary" else "primary"
    peer_file, peer = next(((name, raw) for name, raw in others if _peek(raw, f"{PROJECT}:role") == peer_role),
                           (None, {}))
    environment = reader.string("environment", _ENVIRONMENT,
                                "a lowercase name of letters, digits and single '-' inside, up to 11 characters, "
                                "e.g. production")

    peer_stack = reader.get("peerStack", None)
    if role == "backup":
        peer_stack = reader.string("peerStack", _STACK_NAME,
                                   f"the primary stack's fully qualified name, e.g. organization/{project}/primary")
    elif peer_stack is not None:
        raise reader.fail(reader.key("peerStack"), peer_stack, "not set in a primary stack",
                          "is set, but only the backup stack references its peer")

    domain = DomainSettings(
        zone_name=reader.string("domain.zoneName", re.compile(rf"(?:{_DNS_LABEL}\.)+{_DNS_LABEL}"),
                                "a lowercase DNS zone name, e.g. trading.example.com"),
        app_record=reader.string("domain.appRecord", re.compile(_DNS_LABEL),
                                 "a single lowercase DNS label, e.g. app"),
    )
    tag_allowed = "1 to 256 letters, digits, spaces and _ . : / = + - @"
    tags = TagSettings(
        cost_center=reader.string("tags.costCenter", _TAG_VALUE, tag_allowed),
        owner=reader.string("tags.owner", _TAG_VALUE, tag_allowed),
    )

    network = _network(reader, region, profile, role, peer)
    # The pairing comes first: a stack file that claims the other's role fails on that, not on its values.
    _check_other_stacks(reader, others, role, region, network.cidr if network.source == "create" else None,
                        environment)
    # An adopted VPC's NAT gateways are Terraform's: nothing to compare with.
    if network.source == "create" and _peek(peer, f"{PROJECT}:network", "source") in (None, "create"):
        _same_as_peer(reader, "network.natGateways", network.nat_gateways, ACTIVE_SHAPE.nat_gateways, peer, peer_file,
                      "whichever region is active serves through the same NAT gateways; a standby's are "
                      "network.standbyNatGateways")
    active_region = _active_region(reader, region, role, peer, peer_file)
    former_writer = _former_writer(reader, active_region == region.name)
    services = _services(reader, active_region, region, former_writer[0])
    database = _database(reader, role, peer, peer_file, services, former_writer)
    cache = _cache(reader, role, peer, peer_file)
    backups = _backups(reader, f"{project}-{environment}", peer, role)
    probe = _probe(reader, peer, peer_file)
    images = _images(reader, role, region, f"{project}/{environment}", probe)
    create_zone = reader.boolean("dns.createZone", False)
    if create_zone and role != "primary":
        raise reader.fail(reader.key("dns.createZone"), True, "false in the backup stack (it reads the primary's zone)")
    monitoring = _monitoring(reader, database.max_connections)
    budget = BudgetSettings(
        monthly_usd=reader.integer("budget.monthlyUsd", 1, 10_000_000, why=" (this stack's monthly cost limit)"),
        actual_percent=reader.integer("budget.actualPercent", 1, 1000, 80),
        forecast_percent=reader.integer("budget.forecastPercent", 1, 1000, 100),
        activate_cost_tags=reader.boolean("budget.activateCostTags", False),
    )
    if budget.activate_cost_tags and role != "primary":
        raise reader.fail(reader.key("budget.activateCostTags"), True,
                          "false in the backup stack (an account-wide switch, owned by the primary)")
    drill = _drill(reader, role)
    usage = UsageSettings(*(reader.number(f"usage.{name}", 0, 10_000_000, default) for name, default in (
        ("s3StorageGb", 500), ("replicationGbPerMonth", 300), ("natGbPerMonth", 200), ("albLcu", 1),
        ("wafMillionRequests", 10), ("logsGbPerMonth", 50), ("ecrStorageGb", 20), ("backupStorageGb", 300),
        ("globalDatastoreGbPerMonth", 100))))
    secrets = AppSecrets(jwt_secret=reader.secret("jwtSecret"), google_client_id=reader.secret("googleClientId"))

    return StackSettings(
        project=project, stack=stack, stack_file=reader.stack_file, environment=environment, role=role,
        region=region, active_region=active_region, peer_stack=peer_stack, domain=domain, tags=tags,
        network=network, database=database, cache=cache, backups=backups, services=services, images=images,
        create_zone=create_zone, monitoring=monitoring, budget=budget, drill=drill, usage=usage, probe=probe,
        secrets=secrets,
    )


def _retention(reader: Reader, path: str, default: int) -> int:
    return reader.choice_int(path, LOG_RETENTION_DAYS, default, "the CloudWatch Logs retention periods")


def raw_config() -> dict[str, str]:
    """All config the engine gave this program: the PULUMI_CONFIG bag overlaid by explicit values."""
    return {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}


# Set by synth's engine: the stack files' example.com placeholders are its fixtures, not a deployment's values.
OFFLINE = "TRADING_PLATFORM_OFFLINE"
# Domains reserved for documentation (RFC 2606) and AWS's documentation account: a placeholder left in.
_PLACEHOLDER = re.compile(r"(^|[.@])example\.(com|org|net)$|(^|\.)example$|123456789012")


def from_pulumi(project_dir: Path) -> StackSettings:
    raw = raw_config()
    secret_keys = [key for key in raw if pulumi.runtime.is_config_secret(key)]
    settings = load_settings(raw, pulumi.get_stack(), project_dir, pulumi.get_project(), secret_keys)
    if not os.environ.get(OFFLINE):
        refuse_placeholders(settings)
    return settings


def refuse_placeholders(settings: StackSettings) -> None:
    """`pulumi preview` and `pulumi up` refuse the stack files' placeholders (docs/deploy.md, step 3), naming the
    first left in: a zone, an e-mail or an account id nobody owns."""
    found = [(f"{PROJECT}:domain.zoneName", settings.domain.zone_name),
             (f"{PROJECT}:tags.owner", settings.tags.owner),
             (f"{PROJECT}:monitoring.alarmEmail", settings.monitoring.alarm_email),
             *((f"{PROJECT}:drill.principals", p) for p in settings.drill.principals)]
    for key, value in found:
        if _PLACEHOLDER.search(value.lower()):
            raise SettingsError(settings.stack_file, key, value, "your own (the stack files ship with placeholders)",
                                "is a placeholder")


def check_peer_region(settings: StackSettings, found: Any) -> str:
    """The backup's StackReference must lead to a stack in the catalog's peer region."""
    if found != settings.region.peer:
        raise SettingsError(settings.stack_file, f"{PROJECT}:peerStack", settings.peer_stack,
                            f"the primary stack, whose region is {settings.region.peer}",
                            f"leads to a stack whose region output is {show(found)}")
    return found
