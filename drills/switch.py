"""The failover switch (the primary's `failover_switch` output): a metric in the standby's region whose
alarm, through a Route53 health check, takes the PRIMARY record out of DNS answers. 1 is on (users go to
the standby), 0 is off. Setting it needs CloudWatch in the standby's region only: no Route53 call and no
endpoint in the primary's region.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from drills.outputs import FailoverSwitch

# CloudWatch's standard resolution, should the alarm not say.
DEFAULT_PERIOD = 60
# How far back a reading looks, in the alarm's periods: 3 hours at 60 s (GetMetricStatistics returns at
# most 1440 datapoints).
READ_PERIODS = 180


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def put(cloudwatch: Any, switch: FailoverSwitch, value: int, at: float) -> None:
    cloudwatch.put_metric_data(Namespace=switch.namespace, MetricData=[{
        "MetricName": switch.metric_name, "Dimensions": switch.cloudwatch_dimensions, "Value": float(value),
        "Unit": "Count", "Timestamp": _utc(at)}])


def alarm(cloudwatch: Any, switch: FailoverSwitch) -> dict | None:
    found = cloudwatch.describe_alarms(AlarmNames=[switch.alarm_name], AlarmTypes=["MetricAlarm"])["MetricAlarms"]
    return found[0] if found else None


def off_time(on_at: float | None, period: int, now: float) -> float:
    """When to date the off datapoint: a whole period after the on one. The alarm reads the Maximum of each
    period and keeps its state without data, so an off in the same period as the on would leave the switch
    on for good. A datapoint dated ahead counts once its period comes (CloudWatch takes up to 2 hours ahead)."""
    return now if on_at is None else max(now, on_at + period)


def reading(cloudwatch: Any, switch: FailoverSwitch, period: int, now: float,
            periods: int = READ_PERIODS) -> tuple[float, dt.datetime] | None:
    """The switch as its alarm sees it: the Maximum of the latest period with data in the last `periods`, or
    None without data (which the health check takes as off)."""
    end = _utc(now)
    points = cloudwatch.get_metric_statistics(
        Namespace=switch.namespace, MetricName=switch.metric_name, Dimensions=switch.cloudwatch_dimensions,
        StartTime=end - dt.timedelta(seconds=period * periods), EndTime=end, Period=period,
        Statistics=["Maximum"])["Datapoints"]
    if not points:
        return None
    latest = max(points, key=lambda p: p["Timestamp"])
    return latest["Maximum"], latest["Timestamp"]
