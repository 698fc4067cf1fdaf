"""CloudWatch series for the rules: what to ask for, one batched GetMetricData, and the statistics the rules read.

A percentile here is taken over the per-period values CloudWatch returns (p95 of the 300-second averages), so one
query per metric and statistic answers every rule, and the evidence says exactly which values it came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

DAY = 86400
GIB = 1024 ** 3
# GetMetricData takes at most 500 queries a call; longer lists are split.
QUERIES_PER_CALL = 500


@dataclass(frozen=True)
class Metric:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    # CloudWatch's statistic for each period: Average, Maximum, Minimum or Sum.
    stat: str
    unit: str

    @property
    def label(self) -> str:
        return f"{self.namespace} {self.name}"


def metric(namespace: str, name: str, stat: str, unit: str, **dimensions: str) -> Metric:
    return Metric(namespace, name, tuple(dimensions.items()), stat, unit)


@dataclass
class Series:
    metric: Metric
    period: int
    start: datetime
    points: list[tuple[datetime, float]] = field(default_factory=list)

    @property
    def values(self) -> list[float]:
        return [v for _, v in self.points]

    def days(self) -> int:
        """Days of the window (24-hour slices from its start) with at least one datapoint."""
        return len({int((t - self.start).total_seconds() // DAY) for t, _ in self.points})

    def only(self, times: set[datetime]) -> Series:
        """The datapoints of these periods."""
        return Series(self.metric, self.period, self.start, [(t, v) for t, v in self.points if t in times])

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the per-period values."""
        ordered = sorted(self.values)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    def peak(self) -> float:
        return max(self.values)

    def low(self) -> float:
        return min(self.values)

    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    def evidence(self, statistic: str, value: float, **extra: Any) -> dict[str, Any]:
        """One evidence entry: which metric, which statistic of which per-period values, and what it came to."""
        return {"metric": self.metric.label, "dimensions": dict(self.metric.dimensions),
                "statistic": f"{statistic} of {self.period}-second {self.metric.stat}", "period_seconds": self.period,
                "value": round(value, 2), "unit": self.metric.unit, "datapoints": len(self.points),
                "days": self.days(), **extra}


def fetch(client: Any, metrics: list[Metric], start: datetime, end: datetime, period: int) -> dict[Metric, Series]:
    """Every metric's per-period values between start and end, in as few GetMetricData calls as CloudWatch allows
    (500 queries a call, pages of at most 100,800 datapoints)."""
    series = {m: Series(m, period, start) for m in metrics}
    for first in range(0, len(metrics), QUERIES_PER_CALL):
        batch = metrics[first:first + QUERIES_PER_CALL]
        queries = [{"Id": f"m{first + i}", "ReturnData": True,
                    "MetricStat": {"Metric": {"Namespace": m.namespace, "MetricName": m.name,
                                              "Dimensions": [{"Name": k, "Value": v} for k, v in m.dimensions]},
                                   "Period": period, "Stat": m.stat}}
                   for i, m in enumerate(batch)]
        by_id = {q["Id"]: m for q, m in zip(queries, batch, strict=True)}
        pages = client.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending")
        for page in pages:
            for result in page["MetricDataResults"]:
                points = series[by_id[result["Id"]]].points
                points.extend((t, float(v)) for t, v in zip(result["Timestamps"], result["Values"], strict=True)
                              if v is not None)
    for s in series.values():
        s.points.sort()
    return series


def window(end: datetime, days: int, period: int) -> tuple[datetime, datetime]:
    """[start, end) of `days` whole days ending at the last period boundary before `end`."""
    epoch = int(end.timestamp())
    last = datetime.fromtimestamp(epoch - epoch % period, tz=end.tzinfo)
    return last - timedelta(days=days), last


def growth_per_day(series: Series, jump: float) -> float:
    """How fast a free-space series falls, in its unit a day (positive: it is being used up), by least squares.
    A rise of more than `jump` between two periods is storage being added (autoscaling), not data deleted: the
    series is taken as if it had not happened."""
    offset, previous, adjusted = 0.0, None, []
    for t, v in series.points:
        if previous is not None and v - previous > jump:
            offset -= v - previous
        previous = v
        adjusted.append(((t - series.start).total_seconds() / DAY, v + offset))
    n = len(adjusted)
    mean_t = sum(t for t, _ in adjusted) / n
    mean_v = sum(v for _, v in adjusted) / n
    spread = sum((t - mean_t) ** 2 for t, _ in adjusted)
    if spread == 0:
        return 0.0
    return -sum((t - mean_t) * (v - mean_v) for t, v in adjusted) / spread
