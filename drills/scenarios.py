"""The scenarios as ordered steps: the exact AWS calls, their targets, and how to undo the reversible ones.

Every step is idempotent: run again after a crash, it finds what it already did and goes on.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.config

from drills.outputs import StackOutputs
from drills.probe import Answer, wait_for_region

SCENARIOS = ("dns-failover", "region-evacuation")
_CONFIG = botocore.config.Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)


class StopCondition(Exception):
    """A stop condition fired: abort and roll back (exit 5)."""


@dataclass
class Context:
    primary: StackOutputs
    backup: StackOutputs
    drill_id: str
    hold: float = 60
    probe_url: str = ""
    probe_timeout: float = 600
    probe_interval: float = 1
    max_replica_lag: float = 300
    stop_alarms: tuple[str, ...] = ()
    wait_timeout: float = 1800
    # AWS drops the replica's source link when a promotion completes; moto keeps it. Only an emulation
    # may accept the link as done (the sandbox and the tests say so).
    promotion_keeps_source_link: bool = False
    record_probe: Callable[[Answer], None] = lambda answer: None
    # Saves the running step's detail to the journal: called before each side effect, so a resume or an
    # abort knows what a half-done step already did.
    checkpoint: Callable[[], None] = lambda: None
    _clients: dict = field(default_factory=dict)

    def client(self, service: str, region: str) -> Any:
        """boto3 honours AWS_PROFILE, AWS_ENDPOINT_URL and the rest of its environment as usual."""
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = boto3.session.Session().client(service, region_name=region, config=_CONFIG)
        return self._clients[key]

    @property
    def snapshot_id(self) -> str:
        # RDS keeps identifiers in lower case and answers with them so.
        return f"{self.backup.db_instance_identifier}-drill-{self.drill_id}".lower()

    def check_stop_conditions(self) -> None:
        for name in self.stop_alarms:
            for region in (self.backup.region, self.primary.region):
                found = self.client("cloudwatch", region).describe_alarms(
                    AlarmNames=[name], AlarmTypes=["MetricAlarm", "CompositeAlarm"])
                alarms = found.get("MetricAlarms", []) + found.get("CompositeAlarms", [])
                if any(a["StateValue"] == "ALARM" for a in alarms):
                    raise StopCondition(f"stop alarm {name} is in ALARM in {region}")

    def replica_lag(self) -> float | None:
        """The replica's highest ReplicaLag over the last 5 minutes, or None with no datapoints."""
        end = dt.datetime.now(dt.UTC)
        points = self.client("cloudwatch", self.backup.region).get_metric_statistics(
            Namespace="AWS/RDS", MetricName="ReplicaLag",
            Dimensions=[{"Name": "DBInstanceIdentifier", "Value": self.backup.db_instance_identifier}],
            StartTime=end - dt.timedelta(minutes=5), EndTime=end + dt.timedelta(minutes=1), Period=60,
            Statistics=["Maximum"])["Datapoints"]
        return max(p["Maximum"] for p in points) if points else None

    def wait(self, what: str, done: Callable[[], bool], interval: float = 5) -> None:
        deadline = time.time() + self.wait_timeout
        while not done():
            if time.time() > deadline:
                raise TimeoutError(f"{what}: not done within {self.wait_timeout:g} s")
            self.check_stop_conditions()
            time.sleep(interval)


@dataclass
class Step:
    name: str
    description: str
    # The AWS calls it makes, as a reader checks them in `plan`.
    calls: list[str]
    run: Callable[[Context, dict], dict]
    undo: Callable[[Context, dict], None] | None = None
    # Counts towards RTO: the first fault step starts the clock.
    fault: bool = False


# --- the operations


def _set_inverted(outputs: StackOutputs, inverted: bool) -> Callable[[Context, dict], dict]:
    def run(ctx: Context, detail: dict) -> dict:
        ctx.client("route53", "us-east-1").update_health_check(HealthCheckId=outputs.health_check_id,
                                                               Inverted=inverted)
        return {"health_check_id": outputs.health_check_id, "inverted": inverted}
    return run


def _undo_inversion(outputs: StackOutputs) -> Callable[[Context, dict], None]:
    def undo(ctx: Context, detail: dict) -> None:
        _set_inverted(outputs, False)(ctx, {})
    return undo


def _probe_until(outputs: StackOutputs) -> Callable[[Context, dict], dict]:
    def run(ctx: Context, detail: dict) -> dict:
        answer = wait_for_region(ctx.probe_url, outputs.region, ctx.probe_timeout, ctx.probe_interval,
                                 ctx.record_probe, ctx.check_stop_conditions)
        return {"answered_by": answer.region, "answered_at": answer.at}
    return run


def _hold(ctx: Context, detail: dict) -> dict:
    end = time.time() + ctx.hold
    while time.time() < end:
        ctx.check_stop_conditions()
        time.sleep(min(1.0, max(0.0, end - time.time())))
    return {"held_seconds": ctx.hold}


def _scale(outputs: StackOutputs, targets: Callable[[Context], dict[str, int]]) -> Callable[[Context, dict], dict]:
    """Set desired counts, remembering the previous ones (kept from the first attempt on a resume)."""
    def run(ctx: Context, detail: dict) -> dict:
        ecs = ctx.client("ecs", outputs.region)
        wanted = targets(ctx)
        names = [outputs.ecs_services[s] for s in wanted]
        if "previous" not in detail:  # the counts before the first attempt, kept through resumes
            described = ecs.describe_services(cluster=outputs.ecs_cluster_name, services=names)["services"]
            detail["previous"] = {s["serviceName"]: s["desiredCount"] for s in described}
            ctx.checkpoint()
        previous = detail["previous"]
        for service, count in wanted.items():
            ecs.update_service(cluster=outputs.ecs_cluster_name, service=outputs.ecs_services[service],
                               desiredCount=count)

        def steady() -> bool:
            current = ecs.describe_services(cluster=outputs.ecs_cluster_name, services=names)["services"]
            return all(s["runningCount"] == s["desiredCount"] and len(s.get("deployments", [])) <= 1
                       for s in current)

        ctx.wait(f"services in {outputs.region} steady", steady)
        return {"previous": previous, "desired": {outputs.ecs_services[s]: c for s, c in wanted.items()}}
    return run


def _unscale(outputs: StackOutputs) -> Callable[[Context, dict], None]:
    def undo(ctx: Context, detail: dict) -> None:
        ecs = ctx.client("ecs", outputs.region)
        for name, count in (detail.get("previous") or {}).items():
            ecs.update_service(cluster=outputs.ecs_cluster_name, service=name, desiredCount=count)
    return undo


def _snapshot_replica(ctx: Context, detail: dict) -> dict:
    rds = ctx.client("rds", ctx.backup.region)
    existing = rds.describe_db_snapshots(DBInstanceIdentifier=ctx.backup.db_instance_identifier,
                                         SnapshotType="manual")["DBSnapshots"]
    if not any(s["DBSnapshotIdentifier"] == ctx.snapshot_id for s in existing):
        rds.create_db_snapshot(DBSnapshotIdentifier=ctx.snapshot_id,
                               DBInstanceIdentifier=ctx.backup.db_instance_identifier)

    def available() -> bool:
        snapshot = rds.describe_db_snapshots(DBSnapshotIdentifier=ctx.snapshot_id)["DBSnapshots"][0]
        return snapshot["Status"] == "available"

    ctx.wait(f"snapshot {ctx.snapshot_id}", available)
    return {"snapshot": ctx.snapshot_id}


def _describe_replica(ctx: Context) -> dict:
    rds = ctx.client("rds", ctx.backup.region)
    return rds.describe_db_instances(DBInstanceIdentifier=ctx.backup.db_instance_identifier)["DBInstances"][0]


def _promote_replica(ctx: Context, detail: dict) -> dict:
    if not detail.get("promote_called"):
        lag = ctx.replica_lag()
        if lag is not None and lag > ctx.max_replica_lag:
            raise StopCondition(f"replica lag {lag:g} s is over --max-replica-lag {ctx.max_replica_lag:g} s: "
                                "not promoting")
        # Recorded before the call: a resume must neither promote twice (AWS refuses a non-replica) nor
        # measure the lag again after the fact.
        detail.update(promote_called=True, replica_lag_seconds=lag)
        ctx.checkpoint()
        if _describe_replica(ctx).get("ReadReplicaSourceDBInstanceIdentifier"):
            ctx.client("rds", ctx.backup.region).promote_read_replica(
                DBInstanceIdentifier=ctx.backup.db_instance_identifier)
    lag = detail.get("replica_lag_seconds")
    def promoted() -> bool:
        replica = _describe_replica(ctx)
        standalone = not replica.get("ReadReplicaSourceDBInstanceIdentifier") or ctx.promotion_keeps_source_link
        return replica["DBInstanceStatus"] == "available" and standalone

    ctx.wait("replica promoted to a standalone writer and available", promoted)
    return {"promote_called": True, "replica_lag_seconds": lag}


# --- the scenarios


def dns_failover(ctx: Context) -> list[Step]:
    p, b = ctx.primary, ctx.backup
    return [
        Step("invert-primary-health-check", f"Make Route53 see {p.region} as unhealthy",
             [f"route53.update_health_check(HealthCheckId={p.health_check_id}, Inverted=True)"],
             _set_inverted(p, True), _undo_inversion(p), fault=True),
        Step("probe-until-backup-answers", f"GET {ctx.probe_url} until {b.region} answers",
             [f"GET {ctx.probe_url} every {ctx.probe_interval:g} s"], _probe_until(b)),
        Step("hold", f"Serve from {b.region} for {ctx.hold:g} s", [f"sleep {ctx.hold:g} s"], _hold),
        Step("revert-primary-health-check", f"Let Route53 see {p.region} as healthy again",
             [f"route53.update_health_check(HealthCheckId={p.health_check_id}, Inverted=False)"],
             _set_inverted(p, False)),
        Step("probe-until-primary-answers", f"GET {ctx.probe_url} until {p.region} answers",
             [f"GET {ctx.probe_url} every {ctx.probe_interval:g} s"], _probe_until(p)),
    ]


def _active_counts(ctx: Context, services: tuple[str, ...]) -> dict[str, int]:
    counts = {s: ctx.primary.ecs_capacity[s]["desired"] for s in services}
    if "beat" in counts:
        counts["beat"] = 1  # one scheduler, never more
    return counts


def _ecs_calls(outputs: StackOutputs, counts: dict[str, int]) -> list[str]:
    return [f"ecs[{outputs.region}].update_service(cluster={outputs.ecs_cluster_name}, "
            f"service={outputs.ecs_services[s]}, desiredCount={n})" for s, n in counts.items()]


def region_evacuation(ctx: Context) -> list[Step]:
    """The readers (api, web) scale up before promotion; the writers (worker, beat) start in the backup only
    after the primary's are stopped and the database is writable: never two beats, never a worker against a
    read-only replica."""
    p, b = ctx.primary, ctx.backup
    readers, writers = ("api", "web"), ("worker", "beat")
    return [
        Step("snapshot-replica", f"Snapshot the replica {b.db_instance_identifier} before anything changes",
             [f"rds[{b.region}].create_db_snapshot(DBSnapshotIdentifier={ctx.snapshot_id}, "
              f"DBInstanceIdentifier={b.db_instance_identifier})"], _snapshot_replica),
        Step("scale-backup-readers", f"Scale {b.region}'s api and web to the primary's capacity, wait until steady",
             _ecs_calls(b, _active_counts(ctx, readers)), _scale(b, lambda c: _active_counts(c, readers)),
             _unscale(b)),
        Step("promote-replica", f"Promote {b.db_instance_identifier} to a standalone writer (irreversible)",
             [f"cloudwatch[{b.region}].get_metric_statistics(AWS/RDS ReplicaLag) <= {ctx.max_replica_lag:g} s",
              f"rds[{b.region}].promote_read_replica(DBInstanceIdentifier={b.db_instance_identifier})"],
             _promote_replica, fault=True),
        Step("invert-primary-health-check", f"Make Route53 see {p.region} as unhealthy",
             [f"route53.update_health_check(HealthCheckId={p.health_check_id}, Inverted=True)"],
             _set_inverted(p, True), _undo_inversion(p), fault=True),
        Step("stop-primary-writers", f"Scale {p.region}'s worker and beat to 0: no writes to the old writer",
             _ecs_calls(p, {"worker": 0, "beat": 0}), _scale(p, lambda _c: {"worker": 0, "beat": 0}),
             _unscale(p), fault=True),
        Step("start-backup-writers", f"Scale {b.region}'s worker to the primary's capacity and beat to 1",
             _ecs_calls(b, _active_counts(ctx, writers)), _scale(b, lambda c: _active_counts(c, writers)),
             _unscale(b)),
        Step("probe-until-backup-answers", f"GET {ctx.probe_url} until {b.region} answers",
             [f"GET {ctx.probe_url} every {ctx.probe_interval:g} s"], _probe_until(b)),
    ]


BUILDERS = {"dns-failover": dns_failover, "region-evacuation": region_evacuation}


def reconcile_commands(ctx: Context) -> list[str]:
    """What brings the code in line with the region the drill left active."""
    return [
        "pulumi config set --path trading-platform:database.promoted true -s backup",
        "pulumi config set --path trading-platform:services.standby false -s backup",
        "pulumi config set --path trading-platform:services.standby true -s primary",
        "pulumi up -s backup   # the promoted writer stays in place; the standby's scaling minimums rise",
        "pulumi up -s primary  # once us-east-1 is reachable: worker and beat stay at 0 there",
        "# the primary's health check stays inverted until failback: python -m drills failback plan",
    ]


def failback_steps(ctx: Context) -> list[str]:
    p, b = ctx.primary, ctx.backup
    return [
        f"1. Confirm {p.region} is healthy again and nothing writes to the old writer {p.db_instance_identifier}.",
        f"2. Keep the old writer as evidence: snapshot it ({p.db_instance_identifier}-pre-failback), then retire it.",
        f"3. Rebuild the primary as a replica of the promoted writer {b.db_instance_arn}: change the primary "
        "stack's settings so its database replicates from the backup (swap roles in the stack files: "
        "Pulumi.primary.yaml role backup with peerStack pointing at the backup stack, and the reverse), "
        "then `pulumi up` the new primary region first.",
        f"4. Wait until the new replica in {p.region} is available and its ReplicaLag is low.",
        f"5. Scale {p.region} to the active capacity: `pulumi config set --path trading-platform:services.standby "
        "false` on its stack, `pulumi up`.",
        f"6. Revert the health check: route53.update_health_check(HealthCheckId={p.health_check_id}, "
        f"Inverted=False); probe until {p.region} answers.",
        f"7. Promote the {p.region} replica, stop {b.region}'s worker and beat, set its services.standby true, "
        "and restore database.promoted / roles in the stack files; `pulumi up` both stacks.",
        "8. Run `python -m drills preflight` to confirm the pairing is whole again.",
    ]
