"""The scenarios as ordered steps: the exact AWS calls, their targets, and how to undo the reversible ones.

Every step is idempotent: run again after a crash, it finds what it already did and goes on.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import botocore.config

from drills import fences, handover, heartbeat, replication, switch
from drills.capacity import Capacities, plan_calls, restore_capacity, set_capacity
from drills.endpoints import unreachable
from drills.outputs import SERVICES, FailoverSwitch, ReplicationProbe, StackOutputs
from drills.probe import Answer, probe_once, wait_for_region
from drills.progress import Ticker
from regions.sessions import AWS_ERRORS, new_session

SCENARIOS = ("dns-failover", "region-evacuation", "failback")
# The scenarios that move the writer: the database probe measures what they lose.
PROMOTING = ("region-evacuation", "failback")
# The scenarios that go back to the primary's region: source and target swap.
RETURNING = ("failback",)
_CONFIG = botocore.config.Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
# The region being evacuated may hang rather than refuse: its calls are best effort, so they give up fast
# (a hung endpoint would otherwise hold every step for minutes).
_BEST_EFFORT_CONFIG = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=3,
                                             read_timeout=10)
# The primary's services that write to its database: api, and the worker and beat behind it.
WRITERS = ("api", "worker", "beat")


class SwitchDidNotHold(Exception):
    """Users went back to the primary while the switch was on."""


class StopCondition(Exception):
    """A stop condition fired: abort and roll back (exit 5)."""


class Refused(Exception):
    """A step will not go on without the operator's decision: the drill stops with its journal open for
    `resume` (with the decision given) or `abort` (exit 4)."""


@dataclass
class Context:
    # The stack whose region users and writes leave, and the one they go to: primary -> backup for an
    # evacuation, backup -> primary for a failback.
    source: StackOutputs
    target: StackOutputs
    # The primary's failover switch, and the value that sends users to the target (1: to the standby region).
    switch: FailoverSwitch
    drill_id: str
    switch_to_target: int = 1
    # A planned switchover: promote only once every acknowledged heartbeat is on the replica.
    no_loss: bool = False
    hold: float = 60
    probe_url: str = ""
    probe_timeout: float = 600
    probe_interval: float = 1
    max_lag: float = 300
    # Promote even when CloudWatch has no ReplicaLag to tell how much data would be lost.
    accept_data_loss: bool = False
    # An evacuation's manual snapshot of the replica before promoting it (a failback always takes one).
    snapshot_replica: bool = False
    # Whether the scenario promotes the replica (region-evacuation, failback).
    promotes: bool = True
    # The command as the operator gave it (the preflight names it, with the option that accepts a refusal).
    command: list[str] = field(default_factory=list)
    stop_alarms: tuple[str, ...] = ()
    wait_timeout: float = 1800
    # AWS drops the replica's source link when a promotion completes; moto keeps it. Only an emulation
    # may accept the link as done (the sandbox and the tests say so).
    promotion_keeps_source_link: bool = False
    # The replication probe inside the VPCs (drills/replication.py): its metrics in the target region measure
    # the lag and the RPO. The default; None without it (or with --db-probe, which measures instead).
    replication: ReplicationProbe | None = None
    # When nothing wrote to the old writer any more (its fence ran or was skipped): the RPO counts the writes
    # acknowledged before it.
    writes_ended_at: float | None = None
    # Where the probe's metrics are read from: a little before the drill began.
    since: float = 0
    # The drill's own database probe (drills/heartbeat.py, --db-probe: it needs a network path to both
    # databases): heartbeats on the writer until the fence, looked for on the replica before the promotion and
    # on the promoted writer after it.
    db_probe: bool = False
    db_probe_interval: float = 1
    # RDS's CA bundle: the probe then verifies the servers (sslmode=verify-full).
    db_ca_bundle: str | None = None
    heartbeat_record: heartbeat.Record | None = None
    writer_heartbeat: heartbeat.Heartbeat | None = None
    # {region: endpoint URL} overriding AWS_ENDPOINT_URL for that region's clients (--endpoint-url).
    endpoints: dict[str, str] = field(default_factory=dict)
    record_probe: Callable[[Answer], None] = lambda answer: None
    # Progress lines on long waits (the CLI prints them).
    say: Callable[[str], None] = lambda text: None
    # Saves the running step's detail to the journal: called before each side effect, so a resume or an
    # abort knows what a half-done step already did.
    checkpoint: Callable[[], None] = lambda: None
    # An earlier step's journaled detail, by step name.
    detail_of: Callable[[str], dict] = lambda name: {}
    _clients: dict = field(default_factory=dict)
    # Regions found out during this run: their best-effort reads are not tried again until a resume.
    unreachable_regions: set[str] = field(default_factory=set)

    def client(self, service: str, region: str) -> Any:
        """boto3 honours AWS_PROFILE, AWS_ENDPOINT_URL and the rest of its environment as usual."""
        key = (service, region)
        if key not in self._clients:
            # The region being evacuated may be out; a planned switchover's source is the live writer.
            config = _BEST_EFFORT_CONFIG if region == self.source.region and not self.no_loss else _CONFIG
            self._clients[key] = new_session().client(service, region_name=region, config=config,
                                                                endpoint_url=self.endpoints.get(region))
        return self._clients[key]

    @property
    def snapshot_id(self) -> str:
        # RDS keeps identifiers in lower case and answers with them so.
        return f"{self.target.db_instance_identifier}-drill-{self.drill_id}".lower()

    def check_stop_conditions(self) -> None:
        for name in self.stop_alarms:
            for region in (self.target.region, self.source.region):
                if region in self.unreachable_regions:
                    continue
                try:
                    found = self.client("cloudwatch", region).describe_alarms(
                        AlarmNames=[name], AlarmTypes=["MetricAlarm", "CompositeAlarm"])
                except AWS_ERRORS as exc:
                    if region == self.source.region and unreachable(exc) and not self.no_loss:
                        # The region being evacuated may be out; its alarms cannot be read then.
                        self.unreachable_regions.add(region)
                        continue
                    raise
                alarms = found.get("MetricAlarms", []) + found.get("CompositeAlarms", [])
                if any(a["StateValue"] == "ALARM" for a in alarms):
                    raise StopCondition(f"stop alarm {name} is in ALARM in {region}")

    def replica_lag(self) -> float | None:
        """The replica's latest ReplicaLag in the last 5 minutes; None without datapoints, or when it is
        negative (RDS reports -1 while replication is not running): unknown either way."""
        end = dt.datetime.now(dt.UTC)
        points = self.client("cloudwatch", self.target.region).get_metric_statistics(
            Namespace="AWS/RDS", MetricName="ReplicaLag",
            Dimensions=[{"Name": "DBInstanceIdentifier", "Value": self.target.db_instance_identifier}],
            StartTime=end - dt.timedelta(minutes=5), EndTime=end + dt.timedelta(minutes=1), Period=60,
            Statistics=["Maximum"])["Datapoints"]
        if not points:
            return None
        lag = max(points, key=lambda p: p["Timestamp"])["Maximum"]
        return lag if lag >= 0 else None

    def database(self, outputs: StackOutputs) -> heartbeat.Target:
        """A stack's database as the probe reaches it: its endpoint, and the credentials from the
        database-credentials secret in the stack's own region (the backup's is a replica of the primary's)."""
        arn = outputs.secret_arns.get("database-credentials")
        if not arn:
            raise heartbeat.DatabaseError(f"{outputs.source}: no 'database-credentials' in output 'secret_arns'")
        value = self.client("secretsmanager", outputs.region).get_secret_value(SecretId=arn).get("SecretString")
        if value is None:
            raise heartbeat.DatabaseError(f"secret {arn} has no SecretString (a binary secret)")
        return heartbeat.target(value, outputs.db_endpoint, f"secret {arn}", self.db_ca_bundle)

    def start_heartbeat(self) -> None:
        assert self.heartbeat_record is not None, "the CLI sets the record beside the journal"
        self.writer_heartbeat = heartbeat.Heartbeat(self.database(self.source), self.drill_id,
                                                    self.db_probe_interval, self.heartbeat_record)
        self.writer_heartbeat.start()

    def stop_heartbeat(self) -> str | None:
        """Stop the heartbeat; returns why it had stopped by itself, if it had."""
        beat, self.writer_heartbeat = self.writer_heartbeat, None
        if beat is None:
            return None
        beat.stop()
        return beat.failure

    def heartbeat_behind(self, outputs: StackOutputs) -> dict | None:
        """How far a database is behind the last acknowledged heartbeat; None before any was acknowledged."""
        assert self.heartbeat_record is not None
        return heartbeat.behind(self.heartbeat_record.summary(), heartbeat.present(self.database(outputs),
                                                                                  self.drill_id))

    @property
    def measures(self) -> bool:
        """Whether heartbeats measure the lag and the RPO (the probe's metrics, or the drill's own probe)."""
        return self.db_probe or self.replication is not None

    def probe_lag(self, until: float | None) -> tuple[dict | None, dict | None, bool]:
        """By the replication probe's metrics in the target region: how far the replica is behind the last
        heartbeat acknowledged up to `until` (now when None); the writer gone (no acknowledgement published for
        a while) or None; and whether that last acknowledgement is final."""
        probe, source = self.replication, self.source.region
        assert probe is not None
        now = time.time()
        cloudwatch = self.client("cloudwatch", self.target.region)
        acked = replication.acknowledged(cloudwatch, probe, source, self.since, until or now, now)
        if acked.last is None:
            return None, None, False
        newest = replication.newest_replicated(cloudwatch, probe, source, self.since, now)
        gone = None
        if acked.newest is not None and now - acked.newest.at > replication.fresh_within(probe):
            gone = {"at": acked.newest.at, "error": f"no {probe.metrics['last_acknowledged_seq']} from the probe in "
                                                    f"{source} published to {self.target.region} since then"}
        return replication.behind(acked.last, newest, self.target.region), gone, acked.final or gone is not None

    def measure_lag(self) -> tuple[dict | None, dict | None, bool]:
        """(how far behind, the writer gone, final) by whichever heartbeat runs; (None, None, True) without."""
        if self.db_probe:
            measured = self.heartbeat_behind(self.target)
            assert self.heartbeat_record is not None
            return measured, self.heartbeat_record.summary()["writer_gone"] if measured is not None else None, True
        if self.replication is not None:
            return self.probe_lag(self.writes_ended_at)
        return None, None, True

    def wait(self, what: str, done: Callable[[], bool], interval: float = 5, timeout: float | None = None) -> None:
        limit = self.wait_timeout if timeout is None else timeout
        deadline = time.time() + limit
        ticker = Ticker(self.say, f"waiting for {what}", limit)
        while not done():
            ticker.tick()
            if time.time() > deadline:
                raise TimeoutError(f"{what}: not done within {limit:g} s")
            self.check_stop_conditions()
            time.sleep(min(interval, max(0.0, deadline - time.time())))


@dataclass
class Step:
    name: str
    description: str
    # The AWS calls it makes, as a reader checks them in `plan`.
    calls: list[str]
    run: Callable[[Context, dict], dict]
    undo: Callable[[Context, dict], None] | None = None
    # Changes what users get: the first such step starts the RTO clock.
    fault: bool = False
    # Works on the region being evacuated: when that region cannot be reached the step is skipped, not failed.
    best_effort: bool = False
    # Nothing writes to the old writer once it ran (or was skipped): the database probe stops there.
    ends_writes: bool = False


# --- the operations


def _switch_calls(ctx: Context, value: int) -> list[str]:
    s = ctx.switch
    dimensions = ", ".join(f"{k}={v}" for k, v in s.dimensions.items())
    return [f"cloudwatch[{s.region}].put_metric_data(Namespace={s.namespace}, MetricName={s.metric_name}, "
            f"Dimensions={dimensions}, Value={value}, Unit=Count)"]


def _switch_on(ctx: Context, detail: dict) -> dict:
    """Send users to the target: 1 for the standby region, 0 back to the primary's."""
    s = ctx.switch
    detail["on_at"] = time.time()
    ctx.checkpoint()  # an abort then knows when it went on, to date the undoing datapoint after it
    switch.put(ctx.client("cloudwatch", s.region), s, ctx.switch_to_target, detail["on_at"])
    return {"switch": "on" if ctx.switch_to_target else "off"}


def _switch_off(ctx: Context, on_at: float | None) -> dict:
    """Send users back to the source, with a datapoint the alarm sees after the one that moved them."""
    s = ctx.switch
    cloudwatch = ctx.client("cloudwatch", s.region)
    alarm = switch.alarm(cloudwatch, s) or {}
    at = switch.off_time(on_at, alarm.get("Period", switch.DEFAULT_PERIOD), time.time())
    value = 1 - ctx.switch_to_target
    switch.put(cloudwatch, s, value, at)
    return {"switch": "on" if value else "off", "off_at": at}


def _switch_off_step(ctx: Context, detail: dict) -> dict:
    return _switch_off(ctx, ctx.detail_of("switch-on").get("on_at"))


def _undo_switch_on(ctx: Context, detail: dict) -> None:
    _switch_off(ctx, detail.get("on_at"))


def _probe_until(outputs: StackOutputs) -> Callable[[Context, dict], dict]:
    def run(ctx: Context, detail: dict) -> dict:
        answer = wait_for_region(ctx.probe_url, outputs.region, ctx.probe_timeout, ctx.probe_interval,
                                 ctx.record_probe, ctx.check_stop_conditions,
                                 Ticker(ctx.say, f"probing {ctx.probe_url} until {outputs.region} answers",
                                        ctx.probe_timeout))
        return {"answered_by": answer.region, "answered_at": answer.at}
    return run


def _hold(ctx: Context, detail: dict) -> dict:
    """Serve from the backup for the hold, probing all along: the primary answering means the switch did not
    hold (Route53 judges the switch's data, which ages out), which is what a drill is there to find."""
    end = time.time() + ctx.hold
    ticker = Ticker(ctx.say, f"holding on {ctx.target.region}", ctx.hold)
    while time.time() < end:
        ctx.check_stop_conditions()
        answer = probe_once(ctx.probe_url)
        ctx.record_probe(answer)
        ticker.tick(f"last answer from {answer.region or 'nobody'} ({answer.status or answer.error})")
        if answer.region == ctx.source.region:
            raise SwitchDidNotHold(f"{ctx.source.region} answered {ctx.probe_url} during the hold, "
                                   f"{ctx.hold - (end - time.time()):.0f} s after it began: the switch did not hold")
        time.sleep(min(ctx.probe_interval, max(0.0, end - time.time())))
    return {"held_seconds": ctx.hold}


def _replica_caught_up(ctx: Context, detail: dict) -> dict:
    """The heartbeat, when it ran, measures the lag through the database and decides; CloudWatch's ReplicaLag
    is read beside it (and decides alone without the probe)."""
    b = ctx.target

    def caught_up() -> bool:
        detail["replica_lag_seconds"] = ctx.replica_lag()
        measured, gone, final = ctx.measure_lag()
        if measured is not None:
            detail["heartbeat"], detail["writer_gone"] = measured, gone
        if ctx.no_loss:
            return _nothing_missing(ctx, measured, gone) and final
        lag, source = detail["replica_lag_seconds"], "ReplicaLag"
        if measured is not None and measured["seconds"] is not None:
            by = "heartbeat" if ctx.db_probe else "replication probe"
            # Once the probe lost the writer, the application may have written after its last heartbeat: the
            # larger of the two readings then.
            lag, source = ((measured["seconds"], by) if not gone or lag is None or lag <= measured["seconds"]
                           else (lag, f"ReplicaLag, larger than the {by}'s reading after the writer went away"))
        detail["lag_seconds"], detail["lag_source"] = lag, source
        cannot_catch_up = ctx.source.region in ctx.unreachable_regions or gone is not None
        if lag is not None and lag > ctx.max_lag and cannot_catch_up:
            # With its source out the replica cannot catch up: waiting only delays the decision.
            why = (f"{ctx.source.region} is unreachable" if ctx.source.region in ctx.unreachable_regions else
                   "the old writer stopped acknowledging heartbeats")
            raise Refused(f"{b.db_instance_identifier} is {lag:g} s behind ({detail['lag_source']}), over --max-lag "
                          f"{ctx.max_lag:g} s, and {why}, so it cannot catch up: `resume --max-lag N` to accept that "
                          "loss, `abort` to undo")
        return lag is None or lag <= ctx.max_lag

    try:
        ctx.wait(f"replica lag of {b.db_instance_identifier}", caught_up, interval=1 if ctx.no_loss else 10)
    except TimeoutError:
        if ctx.no_loss:
            raise TimeoutError(f"{b.db_instance_identifier} still lacks {detail['heartbeat']['rows_missing']} "
                               f"acknowledged heartbeats after {ctx.wait_timeout:g} s: not promoting") from None
        raise TimeoutError(f"{b.db_instance_identifier} is still {detail['lag_seconds']:g} s behind "
                           f"({detail['lag_source']}) after {ctx.wait_timeout:g} s, over --max-lag {ctx.max_lag:g} s: "
                           "not promoting") from None
    if ctx.no_loss:
        return {"data_loss_accepted": False, "nothing_missing": True}
    lag = detail["lag_seconds"]
    if lag is None and not ctx.accept_data_loss:
        raise Refused(f"no ReplicaLag datapoints for {b.db_instance_identifier} in {b.region} and no heartbeat "
                      "reading: the data loss is unknown, so not promoting; `resume --accept-data-loss` promotes "
                      "anyway, `abort` undoes")
    return {"max_lag_seconds": ctx.max_lag, "data_loss_accepted": lag is None}


def _nothing_missing(ctx: Context, measured: dict | None, gone: dict | None) -> bool:
    """A planned switchover promotes only when every acknowledged heartbeat is on the replica: RPO 0 by
    measurement, not by assumption."""
    if measured is None:
        raise Refused("a planned switchover promotes only once the heartbeat shows nothing would be lost: run it "
                      "with the replication probe's metrics or the database probe (and at least one acknowledged "
                      "heartbeat)")
    if gone is not None:
        raise Refused(f"the writer stopped acknowledging heartbeats ({gone['error']}): a planned switchover "
                      "needs it; `abort` undoes, or evacuate instead")
    return measured["rows_missing"] == 0 and not measured["at_least"]


def _snapshot_replica(ctx: Context, detail: dict) -> dict:
    rds = ctx.client("rds", ctx.target.region)
    existing = rds.describe_db_snapshots(DBInstanceIdentifier=ctx.target.db_instance_identifier,
                                         SnapshotType="manual")["DBSnapshots"]
    if not any(s["DBSnapshotIdentifier"] == ctx.snapshot_id for s in existing):
        rds.create_db_snapshot(DBSnapshotIdentifier=ctx.snapshot_id,
                               DBInstanceIdentifier=ctx.target.db_instance_identifier)

    def available() -> bool:
        snapshot = rds.describe_db_snapshots(DBSnapshotIdentifier=ctx.snapshot_id)["DBSnapshots"][0]
        return snapshot["Status"] == "available"

    ctx.wait(f"snapshot {ctx.snapshot_id}", available)
    return {"snapshot": ctx.snapshot_id}


def _describe_replica(ctx: Context) -> dict:
    rds = ctx.client("rds", ctx.target.region)
    return rds.describe_db_instances(DBInstanceIdentifier=ctx.target.db_instance_identifier)["DBInstances"][0]


def _promote_replica(ctx: Context, detail: dict) -> dict:
    """Decided from the instance, not from what an earlier run meant to do: a refused call (the replica was
    still backing up) is made again on resume, a completed one never twice (AWS refuses a non-replica)."""
    rds = ctx.client("rds", ctx.target.region)
    # AWS refuses to promote an instance that is not available (e.g. still backing up after the snapshot).
    ctx.wait(f"{ctx.target.db_instance_identifier} available",
             lambda: _describe_replica(ctx)["DBInstanceStatus"] == "available")
    replica = _describe_replica(ctx)
    emulated_done = ctx.promotion_keeps_source_link and detail.get("promote_called")
    if replica.get("ReadReplicaSourceDBInstanceIdentifier") and not emulated_done:
        detail["promote_requested_at"] = time.time()
        ctx.checkpoint()
        # Without it PromoteReadReplica sets a 1-day retention until the next `pulumi up`.
        rds.promote_read_replica(DBInstanceIdentifier=ctx.target.db_instance_identifier,
                                 BackupRetentionPeriod=max(replica.get("BackupRetentionPeriod") or 0, 1))
        detail["promote_called"] = True
        ctx.checkpoint()

    def promoted() -> bool:
        current = _describe_replica(ctx)
        standalone = not current.get("ReadReplicaSourceDBInstanceIdentifier") or ctx.promotion_keeps_source_link
        return current["DBInstanceStatus"] == "available" and standalone

    ctx.wait("replica promoted to a standalone writer and available", promoted)
    # The RPO reads the promoted writer's heartbeats as the probe finds them from this moment on.
    return {"promote_called": True, "promoted_at": time.time()}


def _measure_data_loss(ctx: Context, detail: dict) -> dict:
    """RPO through the database: the last acknowledged heartbeat on the old writer against the newest on the
    promoted one, and the acknowledged rows that are not there. A failed read is recorded, not fatal: the
    evacuation is done by then, and the lag gate's measurement on the replica stands in."""
    if not ctx.db_probe:
        return _measure_from_metrics(ctx)
    assert ctx.heartbeat_record is not None
    summary = ctx.heartbeat_record.summary()
    found = {"acknowledged": summary["acknowledged"], "last_acknowledged_id": summary["last_id"],
             "last_acknowledged_written_at": summary["last_written_at"], "writer_gone": summary["writer_gone"],
             "write_failures": summary["failures"]}
    try:
        return {**found, "measured": ctx.heartbeat_behind(ctx.target), "error": None}
    except (heartbeat.DatabaseError, *AWS_ERRORS) as exc:
        return {**found, "measured": None, "error": str(exc)}


def _measure_from_metrics(ctx: Context) -> dict:
    """The same measurement from the probes' metrics in the target region: the last heartbeat acknowledged before
    the writes ended, against the newest the probe beside the promoted writer publishes after the promotion."""
    probe, source = ctx.replication, ctx.source.region
    assert probe is not None
    cloudwatch = ctx.client("cloudwatch", ctx.target.region)
    promoted_at = ctx.detail_of("promote-replica").get("promoted_at") or time.time()
    found: dict[str, Any] = {}

    def published() -> bool:
        now = time.time()
        found["newest"] = replication.newest_replicated(cloudwatch, probe, source, promoted_at, now)
        found["acked"] = replication.acknowledged(cloudwatch, probe, source, ctx.since,
                                                  ctx.writes_ended_at or promoted_at, now)
        return found["newest"] is not None and found["acked"].last is not None

    settle = replication.fresh_within(probe) * 2
    try:
        ctx.wait(f"the probe's reading of the promoted {ctx.target.db_instance_identifier}", published, interval=1,
                 timeout=settle)
    except TimeoutError:
        acked = found.get("acked")
        what = ("no acknowledged heartbeat of the old writer" if acked is None or acked.last is None else
                f"no {probe.metrics['newest_replicated_seq']} published after the promotion")
        return {"measured": None, "error": f"{what} in {probe.namespace} in {ctx.target.region} within {settle:g} s"}
    acked: replication.Acknowledged = found["acked"]
    assert acked.last is not None
    gone = None
    if acked.newest is not None and acked.newest.at < (ctx.writes_ended_at or promoted_at):
        gone = {"at": acked.newest.at, "error": f"its probe's last acknowledgement reached {ctx.target.region} then"}
    return {"acknowledged": acked.last.seq, "last_acknowledged_id": acked.last.seq,
            "last_acknowledged_written_at": acked.last.written_at, "writer_gone": gone,
            "measured": replication.behind(acked.last, found["newest"], ctx.target.region), "error": None}


def _fenced(ctx: Context) -> Capacities:
    return {s: {"min": 0, "max": 0, "desired": 0} for s in WRITERS}


def _serving(ctx: Context) -> Capacities:
    """api and web at the active capacity: they serve (read-only until the promotion) from the moment users come."""
    return {s: dict(ctx.target.ecs_capacity[s]) for s in ("api", "web")}


def _active(ctx: Context) -> Capacities:
    """What a region runs while active (the same in both stacks); one beat, never more."""
    capacities = {s: dict(ctx.target.ecs_capacity[s]) for s in SERVICES}
    capacities["beat"] = {"min": 1, "max": 1, "desired": 1}
    return capacities


# --- the scenarios


def _switch_on_step(ctx: Context) -> Step:
    s = ctx.switch
    if ctx.switch_to_target:
        what = (f"Turn the failover switch on in {s.region}: Route53 stops answering with {ctx.source.region} and "
                f"sends users to {ctx.target.region}")
    else:
        what = (f"Turn the failover switch off in {s.region}: Route53 answers with {ctx.target.region} again "
                f"(users are served read-only there until its replica is promoted)")
    return Step("switch-on" if ctx.switch_to_target else "switch-back", what,
                _switch_calls(ctx, ctx.switch_to_target), _switch_on, _undo_switch_on, fault=True)


def _probe_step(ctx: Context, outputs: StackOutputs) -> Step:
    return Step(f"probe-until-{outputs.role}-answers", f"GET {ctx.probe_url} until {outputs.region} answers",
                [f"GET {ctx.probe_url} every {ctx.probe_interval:g} s"], _probe_until(outputs))


def dns_failover(ctx: Context) -> list[Step]:
    p, b = ctx.source, ctx.target
    return [
        _switch_on_step(ctx),
        _probe_step(ctx, b),
        Step("hold", f"Serve from {b.region} for {ctx.hold:g} s: users are served READ-ONLY by the standby during "
             "the hold (its database is a replica; writes fail until the switch is off)",
             [f"sleep {ctx.hold:g} s"], _hold),
        Step("switch-off", f"Turn the failover switch off: Route53 answers with {p.region} again",
             _switch_calls(ctx, 0), _switch_off_step),
        _probe_step(ctx, p),
    ]


def _heartbeat_reads(ctx: Context, outputs: StackOutputs) -> list[str]:
    if not ctx.db_probe:
        probe = ctx.replication
        if probe is None:
            return []
        names = ", ".join(probe.metrics[k] for k in ("last_acknowledged_seq", "last_acknowledged_write",
                                                     "newest_replicated_seq", "newest_replicated_write"))
        return [f"cloudwatch[{ctx.target.region}].get_metric_data({probe.namespace} {names}, "
                f"{probe.writer_dimension}={ctx.source.region}, Period=1)"]
    return [f"secretsmanager[{outputs.region}].get_secret_value({outputs.secret_arns.get('database-credentials')})",
            f"postgres {outputs.db_endpoint}: SELECT id, written_at FROM {heartbeat.TABLE} "
            f"WHERE drill_id = '{ctx.drill_id}'"]


def _move_writer(ctx: Context, planned: bool) -> list[Step]:
    """Fence first: users leave the source, its writers stop, and only then is the target's replica promoted
    and its writers started: never two writers' workers, never two beats. An evacuation calls nothing in the
    source's region that moves traffic or data, and its steps there are best effort; a planned switchover
    (a failback) needs the source and promotes only once the heartbeat shows nothing would be lost."""
    p, b = ctx.source, ctx.target
    gate = ("until every acknowledged heartbeat is on it (RPO 0, measured)" if planned else
            f"until it is at most {ctx.max_lag:g} s behind: "
            + ("measured by the database probe's heartbeat, ReplicaLag read beside it" if ctx.db_probe else
               "measured by the replication probe's heartbeats (CloudWatch), ReplicaLag read beside it"
               if ctx.replication else "by ReplicaLag; with no datapoints, refuse unless --accept-data-loss"))
    switch_on = _switch_on_step(ctx)
    fence = Step(fence_step(p), f"Scale {p.region}'s api, worker and beat to 0 (scalable targets 0/0): "
                 "nothing writes to the old writer", plan_calls(p, _fenced(ctx)), set_capacity(p, _fenced),
                 restore_capacity(p), best_effort=not planned)
    fence_database = Step(database_fence_step(p), f"Fence {p.db_instance_identifier} in {p.region} at the database: "
                          "revoke its ingress from the app tasks, and reboot it to end the sessions still open",
                          fences.database_calls(p), fences.fence_database(p), fences.restore_ingress(p),
                          best_effort=not planned, ends_writes=True)
    stop_rotation = Step(f"stop-{p.role}-rotation", f"Stop the password's rotation in {p.region} and the restarts "
                         "its rule starts (and forwards): the old writer's password holds still",
                         handover.stop_rotation_calls(p), handover.stop_rotation(p), handover.restore_rotation(p),
                         best_effort=not planned)
    wait = Step("wait-for-replica-lag", f"Wait on {b.db_instance_identifier} in {b.region} {gate}",
                [f"cloudwatch[{b.region}].get_metric_statistics(AWS/RDS ReplicaLag, "
                 f"DBInstanceIdentifier={b.db_instance_identifier})"] + _heartbeat_reads(ctx, b), _replica_caught_up)
    snapshot = Step("snapshot-replica", f"Snapshot the replica {b.db_instance_identifier} before promoting it",
                    [f"rds[{b.region}].create_db_snapshot(DBSnapshotIdentifier={ctx.snapshot_id}, "
                     f"DBInstanceIdentifier={b.db_instance_identifier})"], _snapshot_replica)
    # Users move only to a region that serves at full size: Route53 answers with the primary whenever the
    # SECONDARY is unhealthy, so one restarting standby task would send them back to the fenced primary.
    serving = Step(f"prepare-{b.role}-serving", f"Raise {b.region}'s api and web to the active capacity and wait "
                   "until they run it, before users come (read-only until the promotion)",
                   plan_calls(b, _serving(ctx)), set_capacity(b, _serving), restore_capacity(b))
    # Planned, the slow parts come before users move: the target serves at full size and its replica's
    # snapshot (a first, full one after a rebuild) is taken, so the read-only window is the fence and promotion.
    # An evacuation snapshots only when asked: the replica's automated backups cover the moment before the
    # promotion without a snapshot on the RTO path.
    # Planned, the password moves before anything else: the target's secret holds the one its replica has.
    copy = Step(f"copy-credentials-to-{b.role}", f"Copy the database password from {p.region}'s secret to "
                f"{b.region}'s, pointed at {b.db_instance_identifier}", handover.copy_credentials_calls(p, b),
                handover.copy_credentials)
    before = ([stop_rotation, copy, serving, snapshot, switch_on, fence, fence_database, wait] if planned else
              [serving, switch_on, fence, fence_database, stop_rotation, wait,
               *([snapshot] if ctx.snapshot_replica else [])])
    # The Celery broker moves with the writer when the caches share a Global Datastore: before any worker starts.
    broker = [Step(f"promote-{b.role}-broker", f"Make {b.region}'s cache the primary of the Global Datastore "
                   f"{b.cache_global_datastore} (called in {b.region}): its workers find the queued tasks there",
                   handover.broker_calls(b), handover.promote_broker)] if b.cache_global_datastore else []
    after = broker if planned else [*broker,
        Step(f"detach-{b.role}-secrets", f"Make {b.region}'s shared secrets standalone (called in {b.region}), point "
             f"its database credentials at the promoted writer, and disable the restarts it heard from "
             f"{p.region}'s secret: nothing in {p.region} can change them or restart {b.region}'s services",
             handover.detach_calls(b, p), handover.detach)]
    return [
        *before,
        Step("promote-replica", f"Promote {b.db_instance_identifier} in {b.region} to a standalone writer "
             "(irreversible)", [f"rds[{b.region}].promote_read_replica(DBInstanceIdentifier="
                                f"{b.db_instance_identifier})"], _promote_replica),
        *after,
        Step(f"raise-{b.role}-capacity", f"Raise {b.region}'s services to the active capacity (scalable targets "
             "first, so target tracking cannot scale them back); worker and beat start only now, after the fence "
             "and the promotion", plan_calls(b, _active(ctx)), set_capacity(b, _active), restore_capacity(b)),
        _probe_step(ctx, b),
        *([Step("measure-data-loss", f"Read the heartbeats on the promoted {b.db_instance_identifier}: RPO = the "
                "last acknowledged on the old writer - the newest there, and the acknowledged rows missing (a "
                "failed read is recorded; the lag gate's reading on the replica stands in)",
                _heartbeat_reads(ctx, b), _measure_data_loss)] if ctx.measures else []),
    ]


def fence_step(source: StackOutputs) -> str:
    return f"fence-{source.role}-writers"


def database_fence_step(source: StackOutputs) -> str:
    return f"fence-{source.role}-database"


def region_evacuation(ctx: Context) -> list[Step]:
    return _move_writer(ctx, planned=False)


def failback(ctx: Context) -> list[Step]:
    """The planned switchover back to the primary's region, once its replica is rebuilt and caught up."""
    return _move_writer(ctx, planned=True)


BUILDERS = {"dns-failover": dns_failover, "region-evacuation": region_evacuation, "failback": failback}
