"""The drill's reading of the replication probe's metrics (drills/replication.py) against moto's CloudWatch: which
acknowledgement came before the fence, whether it is final, and the lag and loss between the two halves."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from drills import replication
from drills.sandbox import BACKUP, PRIMARY, PROBE


def publish(cloudwatch, side, seq, written_at, at):
    prefix = {"acknowledged": "last_acknowledged", "replicated": "newest_replicated"}[side]
    cloudwatch.put_metric_data(Namespace=PROBE.namespace, MetricData=[
        {"MetricName": PROBE.metrics[f"{prefix}_{key}"], "Dimensions": PROBE.dimensions_for(PRIMARY),
         "Value": float(value), "StorageResolution": 1, "Timestamp": dt.datetime.fromtimestamp(at, dt.UTC)}
        for key, value in (("seq", seq), ("write", written_at))])


@pytest.fixture
def cloudwatch(moto):
    moto.reset()
    return moto.client("cloudwatch", BACKUP)


def test_the_last_acknowledgement_before_the_fence_and_when_it_is_final(cloudwatch):
    now = float(int(time.time()))
    for seq in range(1, 11):  # one a second, written a quarter second into it, the last 2 s ago
        publish(cloudwatch, "acknowledged", seq, now - 12 + seq + 0.25, now - 12 + seq)
    # Written before the fence (by the writer's clock), whatever second it was published in.
    acked = replication.acknowledged(cloudwatch, PROBE, PRIMARY, now - 60, now - 4.5, now)
    assert acked.last.seq == 7 and acked.final and acked.newest.seq == 10
    acked = replication.acknowledged(cloudwatch, PROBE, PRIMARY, now - 60, now - 4.8, now)
    assert acked.last.seq == 6
    # Nothing published a whole second after the moment yet: not final (one may still be on its way).
    acked = replication.acknowledged(cloudwatch, PROBE, PRIMARY, now - 60, now - 2.5, now)
    assert acked.last.seq == 9 and not acked.final
    # Another writer region's heartbeats are not these.
    assert replication.acknowledged(cloudwatch, PROBE, BACKUP, now - 60, now, now).last is None


def test_the_lag_and_the_loss_between_the_halves(cloudwatch):
    now = float(int(time.time()))
    for seq in range(1, 21):
        publish(cloudwatch, "acknowledged", seq, now - 30 + seq + 0.5, now - 30 + seq)
    for seq, at in ((10, now - 15), (12, now - 5)):  # the replica stopped at 12
        publish(cloudwatch, "replicated", seq, now - 30 + seq + 0.5, at)
    acked = replication.acknowledged(cloudwatch, PROBE, PRIMARY, now - 60, now, now)
    newest = replication.newest_replicated(cloudwatch, PROBE, PRIMARY, now - 60, now)
    assert newest.seq == 12
    measured = replication.behind(acked.last, newest, BACKUP)
    assert measured["rows_missing"] == 8 and measured["seconds"] == 8.0 and not measured["at_least"]
    # Read after the promotion: only a reading published since then counts.
    assert replication.newest_replicated(cloudwatch, PROBE, PRIMARY, now - 3, now) is None
    # A replica ahead of the acknowledgement (it kept receiving after the fence) lost nothing.
    early = replication.acknowledged(cloudwatch, PROBE, PRIMARY, now - 60, now - 25, now).last
    assert replication.behind(early, newest, BACKUP)["rows_missing"] == 0
    # None of the writer's heartbeats on the replica: the loss is unknown, not zero.
    unknown = replication.behind(acked.last, None, BACKUP)
    assert unknown["seconds"] is None and unknown["at_least"]
