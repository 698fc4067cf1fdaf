"""Readiness checks before a drill. Changes nothing.

Checks of the source region (the one users leave) are best effort for an evacuation: that region may be out,
which is the very case an evacuation is for, so a check there that cannot reach it warns instead of
blocking. A failback's source is the live writer: there they block.
"""

from __future__ import annotations

import datetime as dt
import math
import shlex
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from drills import handover, heartbeat, replication, switch
from drills.endpoints import unreachable
from drills.journal import open_journals
from drills.scenarios import Context
from regions.sessions import AWS_ERRORS

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
    b, p = ctx.target, ctx.source
    db = ctx.client("rds", b.region).describe_db_instances(DBInstanceIdentifier=b.db_instance_identifier)[
        "DBInstances"][0]
    source = db.get("ReadReplicaSourceDBInstanceIdentifier")
    ok = db["DBInstanceStatus"] == "available" and source == p.db_instance_arn
    return Check("replica", ok, True, f"{b.db_instance_identifier} in {b.region}: status {db['DBInstanceStatus']}, "
                                      f"replicates from {source or 'nothing'} (expected {p.db_instance_arn})")


def _lag(ctx: Context) -> Check:
    lag = ctx.replica_lag()
    if lag is None:
        consequence = ("the heartbeats measure the lag instead" if ctx.measures else
                       "see the data-loss check")
        return Check("replica-lag", True, False,
                     f"no ReplicaLag datapoints in the last 5 minutes ({consequence}); note that an idle PostgreSQL "
                     "replica reports up to 5 minutes of lag, so low traffic reads high")
    # A warning: while the primary's region is out the lag only grows, and the evacuation's own lag gate
    # decides (with --max-lag) before the promotion.
    return Check("replica-lag", lag <= ctx.max_lag, False,
                 f"latest ReplicaLag {lag:g} s (limit --max-lag {ctx.max_lag:g} s)")


def _recent_backup(ctx: Context) -> Check:
    b = ctx.target
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


def _backup_services(ctx: Context) -> list[dict]:
    b = ctx.target
    return ctx.client("ecs", b.region).describe_services(cluster=b.ecs_cluster_name,
                                                         services=list(b.ecs_services.values()))["services"]


def _services(ctx: Context) -> Check:
    b = ctx.target
    services = {s["serviceName"]: s for s in _backup_services(ctx)}
    missing = [n for n in b.ecs_services.values() if n not in services or services[n]["status"] != "ACTIVE"]
    unsteady = [f"{n} {s['runningCount']}/{s['desiredCount']}" for n, s in services.items()
                if s["runningCount"] != s["desiredCount"] or len(s.get("deployments", [])) > 1]
    evidence = ", ".join(f"{n} {s['runningCount']}/{s['desiredCount']}" for n, s in sorted(services.items()))
    if missing:
        evidence += f"; missing: {', '.join(missing)}"
    if unsteady:
        evidence += f"; not steady: {', '.join(unsteady)}"
    return Check(f"{b.role}-services", not missing and not unsteady, True,
                 f"{b.region} {b.ecs_cluster_name}: {evidence}")


def _standby_capacity(ctx: Context) -> Check:
    """A backup that runs more than its standby capacity was raised by hand or by an unreconciled drill."""
    b = ctx.target
    desired = {s["serviceName"]: s["desiredCount"] for s in _backup_services(ctx)}
    off = [f"{name} {desired.get(b.ecs_services[name])} (standby {counts['desired']})"
           for name, counts in b.ecs_standby_capacity.items() if desired.get(b.ecs_services[name]) != counts["desired"]]
    return Check(f"{b.role}-standby-capacity", not off, False,
                 f"desired counts differ from ecs_standby_capacity: {', '.join(off)}" if off else
                 f"{b.region} runs its standby capacity (ecs_standby_capacity)")


def _switch_alarm(ctx: Context) -> Check:
    s = ctx.switch
    alarm = switch.alarm(ctx.client("cloudwatch", s.region), s)
    return Check("failover-switch-alarm", alarm is not None, True,
                 f"{s.alarm_name} in {s.region}: state {alarm['StateValue']}, period {alarm['Period']} s"
                 if alarm else f"no alarm {s.alarm_name} in {s.region}: the switch would move no traffic")


def _switch_off(ctx: Context) -> Check:
    """Users are where the drill starts from: the switch off before an evacuation, on before a failback."""
    s = ctx.switch
    expected = 1 - ctx.switch_to_target
    name = f"failover-switch-{'on' if expected else 'off'}"
    cloudwatch = ctx.client("cloudwatch", s.region)
    period = (switch.alarm(cloudwatch, s) or {}).get("Period", switch.DEFAULT_PERIOD)
    found = switch.reading(cloudwatch, s, period, time.time())
    if found is None:
        return Check(name, not expected, False, f"{s.namespace} {s.metric_name}: no data (off)")
    value, at = found
    # A warning: an operator may well have switched users away first; the drill's switch step is idempotent.
    return Check(name, (value >= 1) == bool(expected), False,
                 f"{s.namespace} {s.metric_name}: {value:g} at {at.isoformat()} ({'on' if value >= 1 else 'off'})")


def _replication(ctx: Context) -> Check:
    p, b = ctx.source, ctx.target
    if p.role != "primary":
        return Check("s3-replication", True, False, "a failback: the primary's bucket replicates to the backup's, "
                                                    "whichever region is active; not needed for it")
    rules = ctx.client("s3", p.region).get_bucket_replication(Bucket=p.backup_bucket_name)[
        "ReplicationConfiguration"]["Rules"]
    enabled = [r for r in rules if r["Status"] == "Enabled" and r["Destination"]["Bucket"] == b.backup_bucket_arn]
    return Check("s3-replication", bool(enabled), True,
                 f"{p.backup_bucket_name}: {len(enabled)} enabled rule(s) to {b.backup_bucket_arn}")


def _database_probe(ctx: Context) -> Check:
    """The probe's databases answer as what they should be, over TLS, with the secrets' credentials. With the
    source region out an evacuation turns the probe off (it is for that very case); a failback cannot go on
    without it; any other failure blocks: a drill that was meant to measure its data loss would not."""
    p, b = ctx.source, ctx.target
    try:
        try:
            writer = ctx.database(p)
        except AWS_ERRORS as exc:
            if not unreachable(exc) or ctx.no_loss:
                raise
            ctx.db_probe = False
            return Check("database-probe", False, False, f"{p.region} unreachable, so no heartbeat: the RPO will be "
                                                         f"ReplicaLag's estimate ({exc})")
        # The backup's secret is read in its own region: a failure there blocks (_run), whatever it is.
        replica = ctx.database(b)
        found = [(heartbeat.check(writer), False, p), (heartbeat.check(replica), True, b)]
    except heartbeat.DatabaseError as exc:
        return Check("database-probe", False, True, f"{exc}; --no-db-probe runs the drill without measuring its "
                                                    "data loss")
    wrong = [f"{o.db_endpoint} ({o.role}) is {'not ' if replica else ''}in recovery" for (text, in_recovery), replica, o
             in found if in_recovery != replica]
    evidence = "; ".join(text for (text, _), _, _ in found)
    return Check("database-probe", not wrong, True, evidence + (f"; expected otherwise: {', '.join(wrong)}"
                                                                if wrong else ""))


def _age(now: float, reading: replication.Reading | None) -> str:
    return "none in the last 5 minutes" if reading is None else (
        f"seq {reading.seq}, written {dt.datetime.fromtimestamp(reading.written_at, dt.UTC):%H:%M:%S}, "
        f"published {now - reading.at:.0f} s ago")


def _replication_probe(ctx: Context) -> Check:
    """Both halves of the probe publish to the target region: the writer's acknowledgements and the replica's
    newest heartbeat. The replica's half is this drill's measurement: without it a failback cannot promote and
    an evacuation's RPO falls back to ReplicaLag's estimate. The writer's half is stale when its region is out,
    which an evacuation is for."""
    probe, source, target = ctx.replication, ctx.source.region, ctx.target.region
    assert probe is not None
    now = time.time()
    cloudwatch = ctx.client("cloudwatch", target)
    acked = replication.acknowledged(cloudwatch, probe, source, now - 300, now, now).newest
    newest = replication.newest_replicated(cloudwatch, probe, source, now - 300, now)
    fresh = replication.fresh_within(probe)
    acked_fresh = acked is not None and now - acked.at <= fresh
    newest_fresh = newest is not None and now - newest.at <= fresh
    evidence = (f"{probe.namespace} in {target}, {probe.writer_dimension}={source} (fresh: within {fresh:g} s): "
                f"{probe.metrics['last_acknowledged_seq']} {_age(now, acked)}; "
                f"{probe.metrics['newest_replicated_seq']} {_age(now, newest)}")
    if acked is not None and newest is not None:
        behind = max(0, acked.seq - newest.seq)
        evidence += f"; {behind} heartbeat{'' if behind == 1 else 's'} behind"
    if not newest_fresh:
        consequence = ("a failback cannot promote without it" if ctx.no_loss else
                       "the RPO falls back to ReplicaLag's estimate")
        evidence += (f"; the probe beside {ctx.target.db_instance_identifier} in {target} is not publishing: "
                     f"{consequence} (its ECS service, then its log group)")
    if not acked_fresh:
        evidence += (f"; the writer's probe in {source} is not publishing to {target}" +
                     ("" if ctx.no_loss else f" (expected while {source} is out: its last acknowledgement stands)"))
    # A failback needs both halves; an evacuation needs the replica's and outlives a silent writer.
    passed = newest_fresh and (acked_fresh or not ctx.no_loss)
    return Check("replication-probe", passed, ctx.no_loss, evidence)


def _replica_backups(ctx: Context) -> Check:
    """An evacuation promotes without a snapshot of its own unless asked: the replica's automated backups must
    cover the moment before the promotion."""
    b = ctx.target
    db = ctx.client("rds", b.region).describe_db_instances(DBInstanceIdentifier=b.db_instance_identifier)[
        "DBInstances"][0]
    retention = db.get("BackupRetentionPeriod") or 0
    if not ctx.promotes or ctx.no_loss or ctx.snapshot_replica:
        return Check("replica-backups", True, True, f"automated backups kept {retention} days; " + (
            "a snapshot is taken before the promotion" if ctx.promotes else "nothing is promoted"))
    return Check("replica-backups", retention > 0, True,
                 f"{b.db_instance_identifier} keeps automated backups {retention} days: they cover the moment before "
                 "the promotion, so no snapshot on the RTO path" if retention else
                 f"{b.db_instance_identifier} has no automated backups (retention 0): nothing would cover the moment "
                 f"before the promotion; run with a snapshot: {_command(ctx, '--snapshot-replica')}")


def _command(ctx: Context, option: str, value: str | None = None) -> str:
    """The operator's command with `option` (and its value) given, replacing an earlier value of it."""
    if not ctx.command:
        return f"the same command with {option}{' ' + value if value else ''}"
    names = {option, *(("--max-replica-lag",) if option == "--max-lag" else ())}
    words, skip = [], False
    for word in ctx.command:
        if skip:
            skip = False
        elif word in names:
            skip = value is not None
        elif word.split("=", 1)[0] not in names:
            words.append(word)
    return shlex.join([*words, option, *([value] if value is not None else [])])


def _data_loss(ctx: Context) -> Check:
    """What the lag gate will decide on, decided before the first change: an evacuation that could only turn the
    switch on and then refuse to promote would leave users on a read-only standby."""
    lag, by, gone = None, "", False
    if ctx.replication is not None:
        probe, now = ctx.replication, time.time()
        cloudwatch = ctx.client("cloudwatch", ctx.target.region)
        acked = replication.acknowledged(cloudwatch, probe, ctx.source.region, ctx.since, now, now).newest
        newest = replication.newest_replicated(cloudwatch, probe, ctx.source.region, ctx.since, now)
        if acked is not None and newest is not None:
            lag, by = max(0.0, acked.written_at - newest.written_at), "the replication probe"
            gone = now - acked.at > replication.fresh_within(probe)
    elif ctx.db_probe:
        return Check("data-loss", True, True, "measured by the drill's database probe while it runs")
    if lag is None:
        lag, by = ctx.replica_lag(), "ReplicaLag"
    if lag is None:
        if ctx.accept_data_loss:
            return Check("data-loss", True, True, "unknown (no heartbeat reading, no ReplicaLag): promoting anyway, "
                                                  "as --accept-data-loss says (recorded in the reports)")
        return Check("data-loss", False, True, "unknown: no heartbeat reading and no ReplicaLag datapoints, so the "
                                               "evacuation would turn the switch on and then refuse to promote. To "
                                               "promote with an unknown loss: "
                     + _command(ctx, "--accept-data-loss"))
    if lag > ctx.max_lag and gone:
        return Check("data-loss", False, True,
                     f"{lag:.1f} s behind by {by}, over --max-lag {ctx.max_lag:g} s, and the writer in "
                     f"{ctx.source.region} stopped publishing acknowledgements, so the replica cannot catch up. To "
                     f"accept that loss: {_command(ctx, '--max-lag', str(math.ceil(lag)))}")
    return Check("data-loss", True, True, f"{lag:.1f} s behind by {by} (--max-lag {ctx.max_lag:g} s"
                                          + ("; the gate waits for it" if lag > ctx.max_lag else "") + ")")


def _alarm_exists(ctx: Context, region: str, name: str) -> bool:
    found = ctx.client("cloudwatch", region).describe_alarms(AlarmNames=[name],
                                                             AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    return bool(found.get("MetricAlarms") or found.get("CompositeAlarms"))


def _handover(ctx: Context) -> Check:
    """What moves with the writer is there to move, read in the target's region: each shared secret (an evacuation
    makes the target's standalone), and with a Global Datastore the target's cache as one of its members."""
    b = ctx.target
    secrets = ctx.client("secretsmanager", b.region)
    found = []
    for name, arn in handover.shared(b).items():
        primary = secrets.describe_secret(SecretId=arn).get("PrimaryRegion")
        found.append(f"{name} {'replica of ' + primary if primary and primary != b.region else 'standalone'}")
    evidence = f"{b.region}: " + ", ".join(found)
    if not b.cache_global_datastore:
        return Check("handover", True, True, evidence + "; no Global Datastore: queued Celery tasks stay in "
                     f"{ctx.source.region}'s cache")
    primary = handover.broker_primary(ctx.client("elasticache", b.region), b.cache_global_datastore)
    return Check("handover", primary is not None, True, evidence + f"; Global Datastore {b.cache_global_datastore}, "
                 f"primary in {primary or 'no region'}")


def _stop_alarm(name: str) -> Callable[[Context], Check]:
    """A misspelt stop alarm would never fire: it must exist in one of the regions."""
    def check(ctx: Context) -> Check:
        # The backup's region first: it answers when the primary's is out.
        for region in (ctx.target.region, ctx.source.region):
            if _alarm_exists(ctx, region, name):
                return Check(f"stop-alarm {name}", True, True, f"found in {region}")
        return Check(f"stop-alarm {name}", False, True, "exists in neither region")
    return check


# name -> (check, whether it reads the primary's region)
CHECKS: dict[str, tuple[Callable[[Context], Check], bool]] = {
    "replica": (_replica, False), "replica-lag": (_lag, False), "recent-backup": (_recent_backup, False),
    "backup-services": (_services, False), "backup-standby-capacity": (_standby_capacity, False),
    "failover-switch-alarm": (_switch_alarm, False), "failover-switch-off": (_switch_off, False),
    "replica-backups": (_replica_backups, False),
    "s3-replication": (_replication, True)}


def _run(name: str, check: Callable[[Context], Check], primary_side: bool, ctx: Context) -> Check:
    try:
        return check(ctx)
    except (*AWS_ERRORS, IndexError, KeyError) as exc:
        if primary_side and unreachable(exc) and not ctx.no_loss:
            return Check(name, False, False, f"{ctx.source.region} unreachable, not checked: {exc}")
        return Check(name, False, True, f"could not check: {exc}")


def run_checks(ctx: Context, journal_dir: Path) -> list[Check]:
    checks = [_run(name, check, primary_side, ctx) for name, (check, primary_side) in CHECKS.items()]
    if ctx.db_probe:
        checks.append(_run("database-probe", _database_probe, False, ctx))
    if ctx.replication is not None:
        checks.append(_run("replication-probe", _replication_probe, False, ctx))
    if ctx.promotes and not ctx.no_loss:
        checks.append(_run("data-loss", _data_loss, False, ctx))
    if ctx.promotes:
        checks.append(_run("handover", _handover, False, ctx))
    checks += [_run(f"stop-alarm {name}", _stop_alarm(name), True, ctx) for name in ctx.stop_alarms]
    open_ones = open_journals(journal_dir)
    checks.append(Check("no-drill-in-progress", not open_ones, True,
                        f"open journals: {', '.join(map(str, open_ones))}" if open_ones else
                        f"no open journal in {journal_dir}"))
    return checks
