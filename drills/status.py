"""`python -m drills status`: is the standby ready to take over, answered from one region's APIs alone.

Every call goes to one region (by default the failover switch's, us-west-2), so it answers with us-east-1 down:
the switch lives there, and the replication probes publish both halves of their measurement to both regions.
What it cannot see from there (the other region's services and database) it names as not checked.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import botocore.config

from drills import replication, switch
from drills.outputs import StackOutputs
from regions.sessions import AWS_ERRORS

READY, NOT_READY = 0, 3
# An answer at 3 a.m. in seconds, not after minutes of retries against a region that hangs.
CONFIG = botocore.config.Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=15)
# How far back the metrics are read.
WINDOW = 300


@dataclass
class Status:
    region: str
    lines: list[str] = field(default_factory=list)
    # Why the standby is not ready; none: ready.
    blockers: list[str] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)

    def say(self, label: str, text: str) -> None:
        self.lines.append(f"{label:<19}{text}")

    @property
    def ready(self) -> bool:
        return not self.blockers


def _clock(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%H:%M:%S UTC")


def _switch(status: Status, primary: StackOutputs, cloudwatch: Any, now: float) -> bool | None:
    """Whether the switch sends users to the standby region; None when it cannot be read from here."""
    s = primary.failover_switch
    assert s is not None
    if s.region != status.region:
        status.say("switch", f"not read: it lives in {s.region}")
        return None
    alarm = switch.alarm(cloudwatch, s)
    period = (alarm or {}).get("Period", switch.DEFAULT_PERIOD)
    # CloudWatch's EndTime excludes the second it names: the current second's datapoint needs the next one.
    found = switch.reading(cloudwatch, s, period, now + 1)
    on = found is not None and found[0] >= 1
    alarm_state = alarm["StateValue"] if alarm else f"no alarm {s.alarm_name}: the switch moves nobody"
    status.say("switch", f"{'ON' if on else 'off'} ({s.metric_name} "
                         f"{'no data' if found is None else f'{found[0]:g} at {found[1]:%H:%M:%S} UTC'}; "
                         f"alarm {alarm_state})")
    status.document["switch"] = {"on": on, "alarm_state": alarm["StateValue"] if alarm else None}
    if alarm is None:
        status.blockers.append(f"the switch's alarm {s.alarm_name} does not exist in {s.region}")
    return on


def _replication(status: Status, active: StackOutputs, standby: StackOutputs, cloudwatch: Any, now: float) -> None:
    probe = standby.replication_probe or active.replication_probe
    if probe is None:
        status.say("replication", "no replication probe in the stacks (probe.enabled false): not measured")
        status.blockers.append("nothing measures the replication (the stacks run no replication probe)")
        return
    writer = active.region
    acked = replication.acknowledged(cloudwatch, probe, writer, now - WINDOW, now, now).newest
    newest = replication.newest_replicated(cloudwatch, probe, writer, now - WINDOW, now)
    ages = replication.series(cloudwatch, probe, ("replication_age",), writer, now - WINDOW, now)["replication_age"]
    age = (ages[max(ages)], max(ages)) if ages else None
    fresh = replication.fresh_within(probe)
    status.say("last acknowledged", "none in the last 5 minutes" if acked is None else
               f"heartbeat {acked.seq} written {_clock(acked.written_at)} by {writer}'s writer, published "
               f"{now - acked.at:.0f} s ago")
    status.say("replicated", "none in the last 5 minutes" if newest is None else
               f"heartbeat {newest.seq} on {standby.region}'s replica, read {now - newest.at:.0f} s ago"
               + (f", {max(0, acked.seq - newest.seq)} behind" if acked else ""))
    status.say("replication age", "unknown" if age is None else
               f"{age[0]:.1f} s (limit {probe.max_replication_age_seconds:g} s), read {now - age[1]:.0f} s ago")
    status.document["replication"] = {
        "writer_region": writer, "last_acknowledged": acked.to_dict() if acked else None,
        "newest_replicated": newest.to_dict() if newest else None,
        "replication_age_seconds": age[0] if age else None,
        "max_replication_age_seconds": probe.max_replication_age_seconds}
    if acked is None or now - acked.at > fresh:
        status.blockers.append(f"the writer's probe in {writer} has published no acknowledged heartbeat to "
                               f"{status.region} for more than {fresh:g} s")
    if newest is None or now - newest.at > fresh:
        status.blockers.append(f"the replica's probe in {standby.region} has published no reading to {status.region} "
                               f"for more than {fresh:g} s")
    elif age is not None and age[0] > probe.max_replication_age_seconds:
        status.blockers.append(f"the replica is {age[0]:.1f} s behind, over {probe.max_replication_age_seconds:g} s")


def _standby_here(status: Status, standby: StackOutputs, client: Callable[[str], Any]) -> None:
    """The standby's database and serving capacity, when the standby is the region asked."""
    if standby.region != status.region:
        status.say("standby", f"{standby.region}'s database and services: not checked from {status.region}")
        return
    db = client("rds").describe_db_instances(DBInstanceIdentifier=standby.db_instance_identifier)["DBInstances"][0]
    source = db.get("ReadReplicaSourceDBInstanceIdentifier")
    status.say("standby database", f"{standby.db_instance_identifier}: {db['DBInstanceStatus']}, "
                                   + (f"replica of {source}" if source else "NOT a replica (a standalone writer)"))
    if db["DBInstanceStatus"] != "available" or not source:
        status.blockers.append(f"{standby.db_instance_identifier} in {standby.region} is "
                               f"{db['DBInstanceStatus']}{'' if source else ' and not a replica'}")
    names = [standby.ecs_services[s] for s in ("api", "web")]
    services = client("ecs").describe_services(cluster=standby.ecs_cluster_name, services=names)["services"]
    running = {s["serviceName"]: s["runningCount"] for s in services}
    status.say("standby serving", ", ".join(f"{n} {running.get(n, 0)} running" for n in names))
    idle = [n for n in names if not running.get(n)]
    if idle:
        status.blockers.append(f"nothing serves {', '.join(idle)} in {standby.region}")


def check(primary: StackOutputs, backup: StackOutputs, region: str, client: Callable[[str], Any]) -> Status:
    """`client(service)` gives a client in `region`, the only region called."""
    status = Status(region)
    named = {o.active_region for o in (primary, backup)} - {None}
    if len(named) > 1:
        status.blockers.append(f"the stacks disagree on the active region ({primary.source}: "
                               f"{primary.active_region}, {backup.source}: {backup.active_region}): reconcile first")
    active, standby = (backup, primary) if backup.region in named else (primary, backup)
    now = time.time()
    status.say("asked", f"{region} only, at {_clock(now)}")
    status.say("active region", f"{active.region} (the stack files' activeRegion: its database is the writer)")
    status.document.update(region=region, active_region=active.region, standby_region=standby.region)
    try:
        cloudwatch = client("cloudwatch")
        on = _switch(status, primary, cloudwatch, now)
        if on is not None:
            users = backup.region if on else primary.region
            status.say("users go to", users + ("" if on else " (while its health check passes)"))
            if users != active.region:
                status.blockers.append(f"the switch sends users to {users} but the writer is in {active.region} "
                                       "(a drill or a failover in progress?)")
        _replication(status, active, standby, cloudwatch, now)
        _standby_here(status, standby, client)
    except AWS_ERRORS as exc:
        status.blockers.append(f"{region} did not answer: {exc}")
    status.document.update(ready=status.ready, not_ready_because=status.blockers)
    return status
