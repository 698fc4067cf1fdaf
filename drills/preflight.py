"""Readiness checks before a drill. Changes nothing."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from drills.journal import open_journals
from drills.scenarios import Context

MAX_BACKUP_AGE = dt.timedelta(hours=24)


@dataclass
class Check:
    name: str
    passed: bool
    blocking: bool
    evidence: str

    def to_dict(self) -> dict:
        return asdict(self)


def _replica(ctx: Context) -> Check:
    b, p = ctx.backup, ctx.primary
    db = ctx.client("rds", b.region).describe_db_instances(DBInstanceIdentifier=b.db_instance_identifier)[
        "DBInstances"][0]
    source = db.get("ReadReplicaSourceDBInstanceIdentifier")
    ok = db["DBInstanceStatus"] == "available" and source == p.db_instance_arn
    return Check("replica", ok, True, f"{b.db_instance_identifier} in {b.region}: status {db['DBInstanceStatus']}, "
                                      f"replicates from {source or 'nothing'} (expected {p.db_instance_arn})")


def _lag(ctx: Context) -> Check:
    lag = ctx.replica_lag()
    if lag is None:
        return Check("replica-lag", True, False,
                     "no ReplicaLag datapoints in the last 5 minutes; note that an idle PostgreSQL replica "
                     "reports up to 5 minutes of lag, so low traffic reads high")
    return Check("replica-lag", lag <= ctx.max_replica_lag, True,
                 f"ReplicaLag maximum {lag:g} s over 5 minutes (limit --max-replica-lag {ctx.max_replica_lag:g} s)")


def _recent_backup(ctx: Context) -> Check:
    b = ctx.backup
    rds = ctx.client("rds", b.region)
    times = [s["SnapshotCreateTime"] for s in rds.describe_db_snapshots(
        DBInstanceIdentifier=b.db_instance_identifier)["DBSnapshots"] if s.get("SnapshotCreateTime")]
    for backup in rds.describe_db_instance_automated_backups()["DBInstanceAutomatedBackups"]:
        latest = (backup.get("RestoreWindow") or {}).get("LatestTime")
        if latest:
            times.append(latest)
    if not times:
        return Check("recent-backup", False, True, f"no automated backup or snapshot in {b.region}")
    newest = max(times)
    age = dt.datetime.now(dt.UTC) - newest
    return Check("recent-backup", age <= MAX_BACKUP_AGE, True,
                 f"newest automated backup or snapshot in {b.region}: {newest.isoformat()} "
                 f"({age.total_seconds() / 3600:.1f} h old; limit 24 h)")


def _services(ctx: Context) -> Check:
    b = ctx.backup
    found = ctx.client("ecs", b.region).describe_services(cluster=b.ecs_cluster_name,
                                                          services=list(b.ecs_services.values()))
    services = {s["serviceName"]: s for s in found["services"]}
    missing = [n for n in b.ecs_services.values() if n not in services or services[n]["status"] != "ACTIVE"]
    unsteady = [f"{n} {s['runningCount']}/{s['desiredCount']}" for n, s in services.items()
                if s["runningCount"] != s["desiredCount"] or len(s.get("deployments", [])) > 1]
    evidence = ", ".join(f"{n} {s['runningCount']}/{s['desiredCount']}" for n, s in sorted(services.items()))
    if missing:
        evidence += f"; missing: {', '.join(missing)}"
    if unsteady:
        evidence += f"; not steady: {', '.join(unsteady)}"
    return Check("backup-services", not missing and not unsteady, True, f"{b.region} {b.ecs_cluster_name}: {evidence}")


def _health_checks(ctx: Context) -> Check:
    route53 = ctx.client("route53", "us-east-1")
    parts = []
    for outputs in (ctx.primary, ctx.backup):
        config = route53.get_health_check(HealthCheckId=outputs.health_check_id)["HealthCheck"]["HealthCheckConfig"]
        observations = route53.get_health_check_status(HealthCheckId=outputs.health_check_id)[
            "HealthCheckObservations"]
        healthy = sum(o["StatusReport"]["Status"].startswith("Success") for o in observations)
        flags = "".join(f", {flag.upper()}" for flag in ("Inverted", "Disabled") if config.get(flag))
        parts.append(f"{outputs.region} {outputs.health_check_id}: {healthy}/{len(observations)} checkers healthy"
                     f"{flags}")
    primary_config = route53.get_health_check(HealthCheckId=ctx.primary.health_check_id)["HealthCheck"][
        "HealthCheckConfig"]
    ok = not primary_config.get("Inverted") and not primary_config.get("Disabled")
    return Check("health-checks", ok, True, "; ".join(parts))


def _replication(ctx: Context) -> Check:
    p, b = ctx.primary, ctx.backup
    rules = ctx.client("s3", p.region).get_bucket_replication(Bucket=p.backup_bucket_name)[
        "ReplicationConfiguration"]["Rules"]
    enabled = [r for r in rules if r["Status"] == "Enabled" and r["Destination"]["Bucket"] == b.backup_bucket_arn]
    return Check("s3-replication", bool(enabled), True,
                 f"{p.backup_bucket_name}: {len(enabled)} enabled rule(s) to {b.backup_bucket_arn}")


def _alarm_exists(ctx: Context, region: str, name: str) -> bool:
    found = ctx.client("cloudwatch", region).describe_alarms(AlarmNames=[name],
                                                             AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    return bool(found.get("MetricAlarms") or found.get("CompositeAlarms"))


CHECKS = {"replica": _replica, "replica-lag": _lag, "recent-backup": _recent_backup,
          "backup-services": _services, "health-checks": _health_checks, "s3-replication": _replication}


def run_checks(ctx: Context, journal_dir: Path) -> list[Check]:
    checks = []
    for name, check in CHECKS.items():
        try:
            checks.append(check(ctx))
        except (ClientError, BotoCoreError, IndexError, KeyError) as exc:
            checks.append(Check(name, False, True, f"could not check: {exc}"))
    for name in ctx.stop_alarms:
        # A misspelt stop alarm would never fire: it must exist in one of the regions.
        regions = [region for region in (ctx.backup.region, ctx.primary.region)
                   if _alarm_exists(ctx, region, name)]
        checks.append(Check(f"stop-alarm {name}", bool(regions), True,
                            f"found in {', '.join(regions)}" if regions else "exists in neither region"))
    open_ones = open_journals(journal_dir)
    checks.append(Check("no-drill-in-progress", not open_ones, True,
                        f"open journals: {', '.join(map(str, open_ones))}" if open_ones else
                        f"no open journal in {journal_dir}"))
    return checks
