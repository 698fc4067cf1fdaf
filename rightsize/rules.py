"""The right-sizing rules: measured usage -> changes to stack-file keys, each with its evidence.

Every threshold is in THRESHOLDS (overridable with --threshold NAME=VALUE); docs/rightsize.md explains each rule.
Only the active region's metrics size anything: the standby's sizes follow the active's (a promoted standby must
carry the active's load), so a standby's own near-idle metrics never shrink it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from regions.catalog import (
    cache_node_memory_gib,
    db_class_memory_gib,
    db_class_neighbour,
    larger_task,
    smaller_cache_node,
    smaller_task,
)
from regions.model import StackSettings
from regions.settings import PROJECT
from regions.tuning import scaled_memory_mib
from regions.workloads import WORKLOADS
from rightsize.metrics import GIB, Metric, Series, growth_per_day, metric


@dataclass(frozen=True)
class Threshold:
    default: float
    lowest: float
    highest: float
    meaning: str
    whole: bool = False


THRESHOLDS: dict[str, Threshold] = {
    "minDays": Threshold(7, 1, 455, "a resource with datapoints on fewer days of the window: insufficient data",
                         whole=True),
    "serviceLowPercent": Threshold(40, 1, 100, "p95 CPU and memory of a service under this: the next smaller Fargate "
                                               "size; at the smallest, a task count pinned at its minimum is lowered"),
    "serviceHighPercent": Threshold(80, 1, 100, "p95 CPU or memory over this: busy (the next larger size once "
                                                "autoscaling has reached its maximum); a lower minimum keeps p95 "
                                                "under it"),
    "databaseCpuLowPercent": Threshold(30, 1, 100, "p95 database CPU under this, with free memory (below): one class "
                                                   "smaller in the family"),
    "databaseFreeMemoryPercent": Threshold(50, 1, 100, "the lowest FreeableMemory over this share of the class's "
                                                       "memory: it has memory to spare"),
    "databaseFreeMemoryAfterPercent": Threshold(25, 1, 100, "the share a smaller class would keep free (the same "
                                                            "bytes in use): at least this"),
    "databaseCpuHighPercent": Threshold(80, 1, 100, "p95 database CPU over this: one class larger"),
    "databaseFreeMemoryLowPercent": Threshold(10, 1, 100, "the lowest FreeableMemory under this share of the "
                                                          "class's memory: one class larger"),
    "databaseConnectionsPercent": Threshold(80, 1, 100, "peak DatabaseConnections over this share of max_connections "
                                                        "(the services' budget, which no class raises): said, and "
                                                        "nothing made smaller"),
    "storageHorizonDays": Threshold(180, 1, 3650, "how far ahead the storage growth trend is projected", whole=True),
    "storageFillPercent": Threshold(80, 1, 100, "projected use over this share of maxAllocatedStorageGb: the ceiling "
                                                "is raised"),
    "cacheMemoryLowPercent": Threshold(30, 1, 100, "peak DatabaseMemoryUsagePercentage under this, with low CPU: a "
                                                   "smaller node type"),
    "cacheCpuLowPercent": Threshold(40, 1, 100, "p95 CPUUtilization and EngineCPUUtilization of the cache under this"),
    "cacheMemoryHighPercent": Threshold(80, 1, 100, "the most the smaller node's projected peak memory may be"),
}
# Each low threshold must stay under its high one, or a change could land where the opposite rule fires.
ORDERED = (("serviceLowPercent", "serviceHighPercent"), ("databaseCpuLowPercent", "databaseCpuHighPercent"),
           ("databaseFreeMemoryLowPercent", "databaseFreeMemoryPercent"),
           ("cacheMemoryLowPercent", "cacheMemoryHighPercent"))

CHANGE, NO_CHANGE, INSUFFICIENT = "change", "no change", "insufficient data"
# The guide runs api and web at two tasks at least while they take traffic; a worker at 0 never scales up on CPU.
ACTIVE_FLOOR = {"api": 2, "web": 2, "worker": 1}
# A rise of free storage by more than this between two periods is storage autoscaling adding space.
STORAGE_JUMP_BYTES = 5 * GIB
RDS_MAX_STORAGE_GB = 65536
ECS_SERVICE = "aws:ecs/service:Service"
RDS_INSTANCE = "aws:rds/instance:Instance"
CACHE_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"


@dataclass(frozen=True)
class Targets:
    """What the stack's outputs name: the dimensions of its metrics."""

    region: str
    role: str
    active_region: str
    cluster: str
    services: dict[str, str]
    db_instance_identifier: str
    alb_arn_suffix: str
    cache_member_clusters: tuple[str, ...]


@dataclass(frozen=True)
class DatabaseState:
    """What RDS says the instance is (DescribeDBInstances): the metrics were measured on this."""

    instance_class: str
    allocated_gb: int


@dataclass
class Change:
    file: str
    key: str
    current: Any
    proposed: Any

    def setting(self) -> dict[str, Any]:
        return {"file": self.file, "key": self.key, "value": self.proposed}


@dataclass
class Finding:
    resource: str
    rule: str
    status: str
    reason: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    # (name, type) of the synth cost items it changes: its saving is theirs, before minus after.
    cost_items: tuple[tuple[str, str], ...] = ()
    # The scaled PostgreSQL memory parameters a class change moves (MiB, current -> proposed).
    parameters: list[dict[str, Any]] = field(default_factory=list)
    monthly_saving_usd: float | None = None


def key(path: str) -> str:
    return f"{PROJECT}:{path}"


def current(settings: StackSettings, path: str) -> Any:
    """A validated setting by its stack-file path (defaults included)."""
    section, *members = path.split(".")
    if section == "database":
        return {"instanceClass": settings.database.instance_class,
                "maxAllocatedStorageGb": settings.database.max_allocated_storage_gb}[members[0]]
    if section == "cache":
        return {"nodeType": settings.cache.node_type}[members[0]]
    service = settings.services[members[0]]
    if members[1] in ("cpu", "memory"):
        return getattr(service, members[1])
    return getattr(service.active, members[1])


def shared_paths(name: str) -> tuple[str, ...]:
    """The settings a standby must have as the active has them, per resource."""
    if name == "database":
        return ("database.instanceClass", "database.maxAllocatedStorageGb")
    sizes = (f"services.{name}.cpu", f"services.{name}.memory")
    counts = () if WORKLOADS[name].singleton else tuple(f"services.{name}.{c}" for c in ("min", "max", "desired"))
    return (*sizes, *counts)


@dataclass(frozen=True)
class Subject:
    settings: StackSettings
    stack_file: str
    # The other stack of the pair (its file and settings), when its file is beside this one.
    peer_file: str | None
    peer: StackSettings | None
    targets: Targets
    series: dict[Metric, Series]
    thresholds: dict[str, float]
    # What RDS runs (None for a standby, which reads no metrics): the measurements are of this class.
    database: DatabaseState | None

    @property
    def standby(self) -> bool:
        return self.settings.services.sized_by_peer

    def changes(self, values: dict[str, Any]) -> list[Change]:
        """Changes to this stack file, and the same to the standby's while this one is active (the keys it shares)."""
        found = [Change(self.stack_file, key(p), current(self.settings, p), v) for p, v in values.items()
                 if current(self.settings, p) != v]
        if self.peer is not None and self.peer_file is not None and not self.standby:
            names = ("database", *(s.name for s in self.settings.services.services))
            shared = {p for name in names for p in shared_paths(name)}
            found += [Change(self.peer_file, key(p), current(self.peer, p), v) for p, v in values.items()
                      if p in shared and current(self.peer, p) != v]
        return found


# What each rule reads, by resource: the same Metric objects are asked for and looked up.

def service_metrics(t: Targets, name: str) -> dict[str, Metric]:
    d = {"ClusterName": t.cluster, "ServiceName": t.services[name]}
    return {"cpu": metric("AWS/ECS", "CPUUtilization", "Average", "Percent", **d),
            "cpu_peak": metric("AWS/ECS", "CPUUtilization", "Maximum", "Percent", **d),
            "memory": metric("AWS/ECS", "MemoryUtilization", "Average", "Percent", **d),
            "memory_peak": metric("AWS/ECS", "MemoryUtilization", "Maximum", "Percent", **d),
            "tasks": metric("ECS/ContainerInsights", "RunningTaskCount", "Maximum", "Count", **d),
            # What the running tasks reserve, per period: the task size the percentages above are of.
            "tasks_average": metric("ECS/ContainerInsights", "RunningTaskCount", "Average", "Count", **d),
            "cpu_reserved": metric("ECS/ContainerInsights", "CpuReserved", "Average", "CPU units", **d),
            "memory_reserved": metric("ECS/ContainerInsights", "MemoryReserved", "Average", "MiB", **d)}


def database_metrics(t: Targets) -> dict[str, Metric]:
    d = {"DBInstanceIdentifier": t.db_instance_identifier}
    return {"cpu": metric("AWS/RDS", "CPUUtilization", "Average", "Percent", **d),
            "cpu_peak": metric("AWS/RDS", "CPUUtilization", "Maximum", "Percent", **d),
            "free_memory": metric("AWS/RDS", "FreeableMemory", "Minimum", "Bytes", **d),
            "connections": metric("AWS/RDS", "DatabaseConnections", "Maximum", "Count", **d),
            "read_iops": metric("AWS/RDS", "ReadIOPS", "Average", "Count/Second", **d),
            "write_iops": metric("AWS/RDS", "WriteIOPS", "Average", "Count/Second", **d),
            "free_storage": metric("AWS/RDS", "FreeStorageSpace", "Minimum", "Bytes", **d)}


def cache_metrics(member: str) -> dict[str, Metric]:
    d = {"CacheClusterId": member, "CacheNodeId": "0001"}
    return {"cpu": metric("AWS/ElastiCache", "CPUUtilization", "Average", "Percent", **d),
            "engine_cpu": metric("AWS/ElastiCache", "EngineCPUUtilization", "Average", "Percent", **d),
            "memory_peak": metric("AWS/ElastiCache", "DatabaseMemoryUsagePercentage", "Maximum", "Percent", **d),
            "connections": metric("AWS/ElastiCache", "CurrConnections", "Maximum", "Count", **d)}


def traffic_metric(t: Targets) -> Metric:
    return metric("AWS/ApplicationELB", "RequestCount", "Sum", "Count", LoadBalancer=t.alb_arn_suffix)


def wanted(t: Targets, standby: bool, services: tuple[str, ...]) -> list[Metric]:
    """Every metric the rules read; a standby's sizes follow the active's, so it needs none."""
    if standby:
        return []
    found = [m for name in services for m in service_metrics(t, name).values()]
    found += list(database_metrics(t).values())
    found += [m for member in t.cache_member_clusters for m in cache_metrics(member).values()]
    return [*found, traffic_metric(t)]


def _lacking(subject: Subject, resource: str, *series: Series) -> Finding | None:
    need = subject.thresholds["minDays"]
    short = next((s for s in series if s.days() < need), None)
    if short is None:
        return None
    return Finding(resource, "", INSUFFICIENT,
                   f"{short.metric.label} has datapoints on {short.days()} of the {need:g} days the rules need"
                   + ("" if short.points else " (no datapoints at all)"))


def _pct(value: float) -> str:
    return f"{value:.1f} %"


# Services

def service(subject: Subject, name: str) -> Finding:
    s, t = subject.settings.services[name], subject.thresholds
    m = {k: subject.series[v] for k, v in service_metrics(subject.targets, name).items()}
    resource = f"service {name}"
    size = f"{s.cpu} CPU / {s.memory} MiB"
    lacking = _lacking(subject, resource, m["cpu"], m["memory"])
    if lacking:
        return lacking
    if not m["cpu_reserved"].points:
        return Finding(resource, "", INSUFFICIENT, "ECS/ContainerInsights CpuReserved has no datapoints: the task size "
                                                   "the metrics were measured at is unknown (Container Insights off?)")
    sized = _at_size(m, s.cpu, s.memory)
    measured = {k: v.only(sized) for k, v in m.items()}
    if _lacking(subject, resource, measured["cpu"], measured["memory"]):
        return Finding(resource, "", INSUFFICIENT,
                       f"{measured['cpu'].days()} of the {m['cpu'].days()} days measured ran {size}, what "
                       f"{subject.stack_file} says (the rules need {t['minDays']:g}): the others ran another size, so "
                       "measure again once this one has run long enough")
    m = measured
    cpu, memory = m["cpu"].percentile(95), m["memory"].percentile(95)
    evidence = [m["cpu"].evidence("p95", cpu), m["cpu_peak"].evidence("max", m["cpu_peak"].peak()),
                m["memory"].evidence("p95", memory), m["memory_peak"].evidence("max", m["memory_peak"].peak())]
    tasks = m["tasks"] if m["tasks"].days() >= t["minDays"] else None
    if tasks is not None:
        evidence.append(tasks.evidence("max", tasks.peak()))
    evidence.append(m["cpu_reserved"].evidence("periods at the stack file's size", len(sized), unit="periods"))
    items = ((name, ECS_SERVICE),)

    def resized(rule: str, to: tuple[int, int], why: str) -> Finding:
        values = {f"services.{name}.cpu": to[0], f"services.{name}.memory": to[1]}
        return Finding(resource, rule, CHANGE, why, evidence, subject.changes(values), items)

    if max(cpu, memory) >= t["serviceHighPercent"]:
        busy = f"p95 CPU {_pct(cpu)}, memory {_pct(memory)}: busy (over {t['serviceHighPercent']:g} %)"
        at_max = WORKLOADS[name].singleton or (tasks is not None and tasks.peak() >= s.active.max)
        if not at_max:
            room = ("its task count has too little data to tell whether autoscaling is at its maximum" if tasks is None
                    else f"autoscaling has room (at most {tasks.peak():g} of {s.active.max} tasks ran)")
            return Finding(resource, "service-busy", NO_CHANGE, f"{busy}, but {room}", evidence)
        larger = larger_task(s.cpu, s.memory)
        if larger is None:
            return Finding(resource, "service-busy", NO_CHANGE, f"{busy} at Fargate's largest size {size}", evidence)
        return resized("service-larger", larger, f"{busy} with no more tasks to add: {size} -> {larger[0]} CPU / "
                                                 f"{larger[1]} MiB")
    low = t["serviceLowPercent"]
    if max(cpu, memory) >= low:
        return Finding(resource, "", NO_CHANGE, f"p95 CPU {_pct(cpu)}, memory {_pct(memory)}: between {low:g} % and "
                                                f"{t['serviceHighPercent']:g} %", evidence)
    smaller = smaller_task(s.cpu, s.memory)
    projected = smaller and max(cpu * s.cpu / smaller[0], memory * s.memory / smaller[1])
    if smaller is not None and projected >= t["serviceHighPercent"]:
        return Finding(resource, "service-smaller", NO_CHANGE, f"p95 CPU {_pct(cpu)} and memory {_pct(memory)}: "
                       f"{smaller[0]} CPU / {smaller[1]} MiB would run at about {_pct(projected)}, over "
                       f"{t['serviceHighPercent']:g} %", evidence)
    if smaller is not None:
        return resized("service-smaller", smaller,
                       f"p95 CPU {_pct(cpu)} and memory {_pct(memory)} under {low:g} %: {size} -> {smaller[0]} CPU / "
                       f"{smaller[1]} MiB (p95 about {_pct(projected)} there)")
    return _fewer_tasks(subject, name, cpu, memory, tasks, evidence, items)


def _at_size(m: dict[str, Series], cpu: int, memory: int) -> set[datetime]:
    """The periods whose tasks reserved this size each (within 1 %): a deployment of another size, or the change
    from one to the other, is left out."""
    tasks = dict(m["tasks_average"].points)
    reserved = [dict(m[k].points) for k in ("cpu_reserved", "memory_reserved")]
    return {t for t, n in tasks.items() if n > 0 and all(t in r for r in reserved)
            and abs(reserved[0][t] / n - cpu) <= cpu / 100 and abs(reserved[1][t] / n - memory) <= memory / 100}


def _fewer_tasks(subject: Subject, name: str, cpu: float, memory: float, tasks: Series | None,
                 evidence: list[dict], items: tuple) -> Finding:
    """At Fargate's smallest size: a task count that never left its minimum can start lower."""
    s, resource = subject.settings.services[name], f"service {name}"
    smallest = f"{s.cpu} CPU / {s.memory} MiB is Fargate's smallest size"
    if name not in ACTIVE_FLOOR:
        return Finding(resource, "", NO_CHANGE, f"{smallest}; it runs exactly one task", evidence)
    if tasks is None:
        return Finding(resource, "service-minimum", INSUFFICIENT,
                       f"{smallest}; its task count (ECS/ContainerInsights RunningTaskCount) has datapoints on fewer "
                       f"than {subject.thresholds['minDays']:g} days")
    floor, low = ACTIVE_FLOOR[name], s.active.min
    if tasks.peak() > low:
        return Finding(resource, "", NO_CHANGE, f"{smallest}; autoscaling ran up to {tasks.peak():g} tasks", evidence)
    fewest = max(floor, math.ceil(low * max(cpu, memory) / subject.thresholds["serviceHighPercent"]))
    if fewest >= low:
        return Finding(resource, "", NO_CHANGE, f"{smallest}; its minimum {low} is the floor of {floor} for {name}",
                       evidence)
    values = {f"services.{name}.min": fewest}
    if s.active.desired > fewest:
        values[f"services.{name}.desired"] = fewest
    high = subject.thresholds["serviceHighPercent"]
    return Finding(resource, "service-minimum", CHANGE,
                   f"{smallest}, pinned at its minimum of {low} tasks with p95 CPU {_pct(cpu)} and memory "
                   f"{_pct(memory)}: {fewest} tasks would have kept p95 under {high:g} %",
                   evidence, subject.changes(values), items)


# Database

def database(subject: Subject) -> Finding:
    d, t, state = subject.settings.database, subject.thresholds, subject.database
    m = {k: subject.series[v] for k, v in database_metrics(subject.targets).items()}
    if state is not None and state.instance_class != d.instance_class:
        return Finding("database", "", NO_CHANGE,
                       f"the instance runs {state.instance_class}, but {subject.stack_file} says {d.instance_class}: "
                       "deploy the stack file first, these metrics are of the class that runs")
    lacking = _lacking(subject, "database", m["cpu"], m["free_memory"], m["connections"])
    if lacking:
        return lacking
    gib = db_class_memory_gib(d.instance_class)
    cpu, free, connections = m["cpu"].percentile(95), m["free_memory"].low(), m["connections"].peak()
    evidence = [m["cpu"].evidence("p95", cpu), m["cpu_peak"].evidence("max", m["cpu_peak"].peak()),
                m["free_memory"].evidence("min", free / GIB, unit="GiB"),
                m["connections"].evidence("max", connections, max_connections=d.max_connections)]
    evidence += [m[k].evidence("p95", m[k].percentile(95)) for k in ("read_iops", "write_iops") if m[k].points]
    if gib is None:
        return Finding("database", "", NO_CHANGE, f"{d.instance_class} is not in the class table "
                                                  "(regions/catalog.py): no neighbour to propose", evidence)
    free_share = 100 * free / (gib * GIB)
    connection_share = 100 * connections / d.max_connections
    measured = (f"p95 CPU {_pct(cpu)}, lowest free memory {_pct(free_share)} of {gib} GiB, peak connections "
                f"{connections:g} of max_connections {d.max_connections} ({_pct(connection_share)})")
    if cpu >= t["databaseCpuHighPercent"] or free_share < t["databaseFreeMemoryLowPercent"]:
        step, rule = 1, "database-larger"
    elif connection_share >= t["databaseConnectionsPercent"]:
        # max_connections is the services' budget (regions/tuning.py), not the class's: no class raises it.
        return Finding("database", "database-connections", NO_CHANGE,
                       f"{measured}: near the budget the services can open at their peak (each service's max, twice "
                       "while a deployment rolls, x processes x database.poolSize, + 20), which no class changes; "
                       "nothing is made smaller while it is", evidence)
    elif cpu < t["databaseCpuLowPercent"] and free_share > t["databaseFreeMemoryPercent"]:
        step, rule = -1, "database-smaller"
    else:
        return Finding("database", "", NO_CHANGE, measured, evidence)
    proposed = db_class_neighbour(d.instance_class, step)
    if proposed is None:
        end = "largest" if step > 0 else "smallest"
        return Finding("database", rule, NO_CHANGE, f"{measured}; {d.instance_class} is the {end} class of its family",
                       evidence)
    new_gib = db_class_memory_gib(proposed)
    # The same bytes in use on the other class: what stays free there.
    free_after = 100 * (free / GIB - gib + new_gib) / new_gib
    if step < 0 and free_after < t["databaseFreeMemoryAfterPercent"]:
        floor = t["databaseFreeMemoryAfterPercent"]
        return Finding("database", rule, NO_CHANGE, f"{measured}; {proposed} would keep only {_pct(free_after)} of "
                                                    f"its {new_gib} GiB free (under {floor:g} %)", evidence)
    why = f"{measured}: {d.instance_class} -> {proposed} (about {_pct(free_after)} of its {new_gib} GiB free there)"
    before = scaled_memory_mib(d.max_connections, gib * GIB)
    after = scaled_memory_mib(d.max_connections, new_gib * GIB)
    finding = Finding("database", rule, CHANGE, why, evidence,
                      subject.changes({"database.instanceClass": proposed}), (("database", RDS_INSTANCE),))
    finding.parameters = [{"name": k, "current_mib": round(before[k], 1), "proposed_mib": round(after[k], 1)}
                          for k in before]
    return finding


def storage(subject: Subject) -> Finding:
    d, t, state = subject.settings.database, subject.thresholds, subject.database
    free = subject.series[database_metrics(subject.targets)["free_storage"]]
    lacking = _lacking(subject, "database storage", free)
    if lacking or state is None:
        return lacking or Finding("database storage", "", INSUFFICIENT, "RDS did not describe the instance")
    used = state.allocated_gb - free.points[-1][1] / GIB
    growth = growth_per_day(free, STORAGE_JUMP_BYTES) / GIB
    horizon, ceiling = t["storageHorizonDays"], d.max_allocated_storage_gb
    projected = used + max(0.0, growth) * horizon
    evidence = [free.evidence("last", free.points[-1][1] / GIB, unit="GiB"),
                free.evidence("least-squares trend", -growth, unit="GiB/day", allocated_gb=state.allocated_gb)]
    trend = f"{used:.0f} GiB used, growing {growth:.2f} GiB a day: {projected:.0f} GiB in {horizon:g} days"
    fill = t["storageFillPercent"]
    if projected <= ceiling * fill / 100:
        return Finding("database storage", "", NO_CHANGE, f"{trend}, within {fill:g} % of the {ceiling} GiB ceiling",
                       evidence)
    proposed = min(RDS_MAX_STORAGE_GB, math.ceil(projected * 100 / fill / 100) * 100)
    if proposed <= ceiling:
        return Finding("database storage", "storage-ceiling", NO_CHANGE,
                       f"{trend}: the ceiling is already RDS's largest, {ceiling} GiB", evidence)
    return Finding("database storage", "storage-ceiling", CHANGE,
                   f"{trend}, over {fill:g} % of the {ceiling} GiB ceiling: raise it to {proposed} GiB (a ceiling "
                   "costs nothing until the storage grows into it)",
                   evidence, subject.changes({"database.maxAllocatedStorageGb": proposed}))


# Cache

def cache(subject: Subject) -> Finding:
    c, t = subject.settings.cache, subject.thresholds
    members = [{k: subject.series[v] for k, v in cache_metrics(member).items()}
               for member in subject.targets.cache_member_clusters]
    measured = [m for m in members if all(m[k].days() >= t["minDays"] for k in ("cpu", "engine_cpu", "memory_peak"))]
    if not measured:
        return _lacking(subject, "cache", *(s for m in members for s in m.values())) or Finding(
            "cache", "", INSUFFICIENT, "the stack's outputs name no cache member clusters")
    memory = max(m["memory_peak"].peak() for m in measured)
    cpu = max(max(m["cpu"].percentile(95), m["engine_cpu"].percentile(95)) for m in measured)
    evidence = [e for m in measured for e in (
        m["memory_peak"].evidence("max", m["memory_peak"].peak()), m["cpu"].evidence("p95", m["cpu"].percentile(95)),
        m["engine_cpu"].evidence("p95", m["engine_cpu"].percentile(95)))]
    evidence += [m["connections"].evidence("max", m["connections"].peak()) for m in measured if m["connections"].points]
    measured_on = f"peak memory {_pct(memory)}, p95 CPU {_pct(cpu)} on {len(measured)} of {len(members)} nodes"
    if memory >= t["cacheMemoryLowPercent"] or cpu >= t["cacheCpuLowPercent"]:
        return Finding("cache", "", NO_CHANGE, measured_on, evidence)
    proposed = smaller_cache_node(c.node_type)
    old_gib, new_gib = cache_node_memory_gib(c.node_type), proposed and cache_node_memory_gib(proposed)
    if proposed is None or not old_gib or not new_gib:
        return Finding("cache", "cache-smaller", NO_CHANGE, f"{measured_on}; no smaller node type of {c.node_type}'s "
                                                            "kind is known", evidence)
    projected = memory * old_gib / new_gib
    if projected >= t["cacheMemoryHighPercent"]:
        return Finding("cache", "cache-smaller", NO_CHANGE, f"{measured_on}; {proposed} ({new_gib:g} GiB) would peak "
                       f"at about {_pct(projected)}, over {t['cacheMemoryHighPercent']:g} %", evidence)
    return Finding("cache", "cache-smaller", CHANGE,
                   f"{measured_on}, under {t['cacheMemoryLowPercent']:g} % and {t['cacheCpuLowPercent']:g} %: "
                   f"{c.node_type} ({old_gib:g} GiB) -> {proposed} ({new_gib:g} GiB, peak about {_pct(projected)} "
                   "there)",
                   evidence, subject.changes({"cache.nodeType": proposed}), (("cache", CACHE_GROUP),))


# The standby

def follow(subject: Subject, name: str) -> Finding:
    """A standby's shared sizes are the active's: a difference is proposed away, with the active's file as evidence."""
    resource = "database" if name == "database" else f"service {name}"
    active = subject.peer
    if active is None or subject.peer_file is None:
        return Finding(resource, "follows-active", NO_CHANGE, "the standby follows the active stack, whose stack file "
                                                               "is not beside this one: nothing to compare")
    values = {p: current(active, p) for p in shared_paths(name)}
    changes = subject.changes(values)
    evidence = [{"file": subject.peer_file, "key": key(p), "value": v} for p, v in values.items()]
    items = (("database", RDS_INSTANCE),) if name == "database" else ((name, ECS_SERVICE),)
    if not changes:
        return Finding(resource, "follows-active", NO_CHANGE, f"sized as the active stack ({subject.peer_file}): "
                                                               "right-size that one, this follows", evidence)
    return Finding(resource, "follows-active", CHANGE,
                   f"the standby runs the active's load after a failover: as in {subject.peer_file}", evidence,
                   changes, items)


def evaluate(subject: Subject) -> list[Finding]:
    names = tuple(s.name for s in subject.settings.services.services)
    if subject.standby:
        return [*(follow(subject, name) for name in names), follow(subject, "database"),
                Finding("cache", "", NO_CHANGE, "a standby's cache takes its load with a failover: it is judged while "
                                                "its region is active")]
    return [*(service(subject, name) for name in names), database(subject), storage(subject), cache(subject)]
