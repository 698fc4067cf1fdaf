"""The replication probe's measurement, read from CloudWatch in the region users go to.

The probe (probe/, one ECS task in each region's private subnets) writes a heartbeat row with a dense sequence
number into the writer and publishes its last acknowledged one (LastAcknowledgedSeq/Write) to both regions; the
probe beside the replica publishes the newest heartbeat it finds there (NewestReplicatedSeq/Write), also to
both regions. So the drill measures with no connection of its own to a database, and with the writer's region
gone: its last acknowledged heartbeat was published to the target region before it went away.

- lag before a promotion: the last acknowledged heartbeat - the newest on the replica;
- RPO after it: the last heartbeat acknowledged before the writes were fenced - the newest on the promoted
  writer (read by the probe there after the promotion); rows lost: the difference of their sequence numbers
  (the writer's are dense and physical replication keeps a prefix of them).

Both times are the writer's database clock (`written_at` replicates with the row). Which heartbeats came before
the fence is judged by `written_at` against the drill's clock; CloudWatch keeps one value a second (the
Maximum), so a heartbeat written in the fence's own second but before it may be left out: the measurement errs
by at most a second's heartbeats, towards less loss, and only when those did not replicate.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from drills.outputs import ReplicationProbe

# CloudWatch keeps 1-second datapoints for 3 hours: reads look back no further.
HIGH_RESOLUTION_KEPT = 3 * 3600 - 60
# A metric is fresh while its newest datapoint is at most this many intervals old (and at least FRESH_FLOOR s).
FRESH_INTERVALS, FRESH_FLOOR = 10, 15.0


@dataclass(frozen=True)
class Reading:
    """One heartbeat as the probe published it: its sequence number, when the writer wrote it (the writer's
    clock) and the second it was published in."""

    seq: int
    written_at: float
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "written_at": self.written_at, "published_at": self.at}


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def series(cloudwatch: Any, probe: ReplicationProbe, keys: tuple[str, ...], writer_region: str, start: float,
           end: float) -> dict[str, dict[float, float]]:
    """Each metric's (key of PROBE_METRICS) per-second Maximum in [start, end): {key: {second: value}}."""
    start = max(start, end - HIGH_RESOLUTION_KEPT)
    found: dict[str, dict[float, float]] = {key: {} for key in keys}
    if end - start < 1:
        return found
    # Query ids must start with a lower-case letter and hold only letters, digits and underscores.
    queries = [{"Id": key, "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": probe.namespace, "MetricName": probe.metrics[key],
                   "Dimensions": probe.dimensions_for(writer_region)},
        "Period": 1, "Stat": "Maximum"}} for key in keys]
    token = None
    while True:
        page = cloudwatch.get_metric_data(
            MetricDataQueries=queries, StartTime=_utc(math.floor(start)), EndTime=_utc(math.ceil(end)),
            ScanBy="TimestampAscending", **({"NextToken": token} if token else {}))
        for result in page["MetricDataResults"]:
            for at, value in zip(result["Timestamps"], result["Values"], strict=True):
                found[result["Id"]][at.timestamp()] = value
        token = page.get("NextToken")
        if not token:
            return found


def readings(cloudwatch: Any, probe: ReplicationProbe, side: str, writer_region: str, start: float,
             end: float) -> list[Reading]:
    """The probe's heartbeats of one side ("acknowledged" by the writer, "replicated" on the replica) in
    [start, end), oldest first. Sequence and time are published together, so they share their second."""
    prefix = {"acknowledged": "last_acknowledged", "replicated": "newest_replicated"}[side]
    found = series(cloudwatch, probe, (f"{prefix}_seq", f"{prefix}_write"), writer_region, start, end)
    seqs, writes = found[f"{prefix}_seq"], found[f"{prefix}_write"]
    return [Reading(int(seqs[at]), writes[at], at) for at in sorted(seqs) if at in writes]


def fresh_within(probe: ReplicationProbe) -> float:
    return max(FRESH_FLOOR, FRESH_INTERVALS * probe.interval_seconds)


@dataclass(frozen=True)
class Acknowledged:
    """The writer's last acknowledged heartbeat up to a moment, and whether that is final: a datapoint
    published after the moment has arrived (so none before it is still on its way), or none will."""

    last: Reading | None
    final: bool
    # The newest datapoint at all (after the moment too): when the writer was last heard of.
    newest: Reading | None


def acknowledged(cloudwatch: Any, probe: ReplicationProbe, writer_region: str, start: float, until: float,
                 now: float) -> Acknowledged:
    found = readings(cloudwatch, probe, "acknowledged", writer_region, start, now)
    # A second's datapoint is its last heartbeat: one written after `until` hides the others of that second, so
    # the last acknowledged by then is the newest of a second that ended before it (at most a second early).
    before = [r for r in found if r.written_at <= until]
    after = [r for r in found if r.at >= until + 1]
    return Acknowledged(before[-1] if before else None, bool(after), found[-1] if found else None)


def newest_replicated(cloudwatch: Any, probe: ReplicationProbe, writer_region: str, after: float,
                      now: float) -> Reading | None:
    """The newest heartbeat the replica's probe found, in a second that began at or after `after`: read after it."""
    found = [r for r in readings(cloudwatch, probe, "replicated", writer_region, after, now) if r.at >= after]
    return found[-1] if found else None


def behind(last: Reading, newest: Reading | None, target_region: str) -> dict[str, Any]:
    """How far the replica's (or promoted writer's) newest heartbeat is behind the writer's last acknowledged
    one, in seconds of the writer's clock and in heartbeats. The same keys as drills/heartbeat.py's `behind`,
    so the reports read either."""
    newest_seq = newest.seq if newest else 0
    return {"method": "replication-probe", "read_in": target_region,
            "seconds": round(max(0.0, last.written_at - newest.written_at), 3) if newest else None,
            "rows_missing": max(0, last.seq - newest_seq), "acknowledged": last.seq, "at_least": newest is None,
            "newest_present_written_at": newest.written_at if newest else None,
            "last_acknowledged_written_at": last.written_at,
            "last_acknowledged": last.to_dict(), "newest_present": newest.to_dict() if newest else None}
