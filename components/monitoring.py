"""Alarms to an encrypted SNS topic, and one dashboard per region showing the same metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from regions.model import MonitoringSettings

CW = aws.cloudwatch
GB = 1024 ** 3


@dataclass
class Metric:
    namespace: str
    name: str
    dimensions: Mapping[str, pulumi.Input[str]]
    stat: str = "Average"


@dataclass
class AlarmSpec:
    label: str
    description: str
    threshold: float
    # One metric, or several combined by `expression` (metric math over their ids m0, m1, ...).
    metrics: list[Metric]
    expression: str | None = None
    comparison: str = "GreaterThanThreshold"
    evaluation_periods: int = 5
    treat_missing_data: str = "notBreaching"


@dataclass
class MonitoringArgs:
    region: str
    settings: MonitoringSettings
    kms_key_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    dashboard_name: str
    alb_arn_suffix: pulumi.Input[str]
    target_group_arn_suffixes: Mapping[str, pulumi.Input[str]]
    cluster_name: pulumi.Input[str]
    service_names: Sequence[str]
    db_identifier: str
    # Watch ReplicaLag (the backup stack).
    db_is_replica: bool
    # Every node of the replication group: after a Multi-AZ failover any of them may be the primary.
    cache_node_ids: Sequence[str]
    # Graphs of metrics alarmed on elsewhere (the replication probe's, components/probe.py), after the alarms'.
    extra_widgets: Sequence[dict] = ()


def alarm_specs(args: MonitoringArgs) -> list[AlarmSpec]:
    s = args.settings
    alb = {"LoadBalancer": args.alb_arn_suffix}
    db = {"DBInstanceIdentifier": args.db_identifier}
    specs = [
        AlarmSpec("alb-5xx-rate", f"More than {s.alb_5xx_percent:g}% of requests end in a target 5xx",
                  s.alb_5xx_percent,
                  [Metric("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, "Sum"),
                   Metric("AWS/ApplicationELB", "RequestCount", alb, "Sum")],
                  expression="IF(m1 > 0, 100 * m0 / m1, 0)"),
        AlarmSpec("alb-p95-latency", f"p95 target response time above {s.p95_latency_seconds:g} s",
                  s.p95_latency_seconds, [Metric("AWS/ApplicationELB", "TargetResponseTime", alb, "p95")]),
    ]
    for service, suffix in args.target_group_arn_suffixes.items():
        specs.append(AlarmSpec(f"{service}-unhealthy-hosts", f"{service} has unhealthy targets", 0,
                               [Metric("AWS/ApplicationELB", "UnHealthyHostCount",
                                       {**alb, "TargetGroup": suffix}, "Maximum")], evaluation_periods=3))
        # Watched from the stack's own region: the standby's readiness must not depend on us-east-1, where
        # Route53's health-check metrics live. No data means no target at all.
        specs.append(AlarmSpec(f"{service}-no-healthy-hosts", f"{service} has no healthy target", 1,
                               [Metric("AWS/ApplicationELB", "HealthyHostCount",
                                       {**alb, "TargetGroup": suffix}, "Minimum")], comparison="LessThanThreshold",
                               evaluation_periods=3, treat_missing_data="breaching"))
    for service in args.service_names:
        dims = {"ClusterName": args.cluster_name, "ServiceName": service}
        specs.append(AlarmSpec(f"{service}-cpu", f"{service} CPU above {s.ecs_cpu_percent:g}%", s.ecs_cpu_percent,
                               [Metric("AWS/ECS", "CPUUtilization", dims)]))
        specs.append(AlarmSpec(f"{service}-memory", f"{service} memory above {s.ecs_memory_percent:g}%",
                               s.ecs_memory_percent, [Metric("AWS/ECS", "MemoryUtilization", dims)]))
    specs += [
        AlarmSpec("rds-cpu", f"Database CPU above {s.rds_cpu_percent:g}%", s.rds_cpu_percent,
                  [Metric("AWS/RDS", "CPUUtilization", db)]),
        AlarmSpec("rds-free-storage", f"Database free storage below {s.rds_free_storage_gb:g} GB",
                  s.rds_free_storage_gb * GB, [Metric("AWS/RDS", "FreeStorageSpace", db, "Minimum")],
                  comparison="LessThanThreshold"),
        AlarmSpec("rds-connections", f"Database connections above {s.rds_connections}", s.rds_connections,
                  [Metric("AWS/RDS", "DatabaseConnections", db, "Maximum")]),
    ]
    if args.db_is_replica:
        specs.append(AlarmSpec("rds-replica-lag", f"Replica more than {s.replica_lag_seconds} s behind the primary",
                               s.replica_lag_seconds, [Metric("AWS/RDS", "ReplicaLag", db, "Maximum")]))
    specs += [
        _every_node(args.cache_node_ids, "redis-cpu", f"Redis engine CPU above {s.redis_cpu_percent:g}% on a node",
                    s.redis_cpu_percent, "EngineCPUUtilization", "Average"),
        _every_node(args.cache_node_ids, "redis-memory", f"Redis memory above {s.redis_memory_percent:g}% on a node",
                    s.redis_memory_percent, "DatabaseMemoryUsagePercentage", "Maximum"),
        # noeviction is set, so any eviction means the policy was changed or the broker is losing keys.
        _every_node(args.cache_node_ids, "redis-evictions", "Redis evicted keys (the Celery broker must not)", 0,
                    "Evictions", "Sum", evaluation_periods=1),
    ]
    return specs


def _every_node(node_ids: Sequence[str], label: str, description: str, threshold: float, metric: str, stat: str,
                evaluation_periods: int = 5) -> AlarmSpec:
    """ElastiCache reports per node only, and no metric follows the primary role: alarm on the highest node."""
    metrics = [Metric("AWS/ElastiCache", metric, {"CacheClusterId": node}, stat) for node in node_ids]
    expression = None if len(metrics) == 1 else f"MAX([{', '.join(f'm{i}' for i in range(len(metrics)))}])"
    return AlarmSpec(label, description, threshold, metrics, expression=expression,
                     evaluation_periods=evaluation_periods)


def _query(index: int, metric: Metric, returned: bool) -> CW.MetricAlarmMetricQueryArgs:
    return CW.MetricAlarmMetricQueryArgs(
        id=f"m{index}", return_data=returned, metric=CW.MetricAlarmMetricQueryMetricArgs(
            namespace=metric.namespace, metric_name=metric.name, dimensions=dict(metric.dimensions), period=60,
            stat=metric.stat))


def _widget(spec: AlarmSpec, region: str) -> dict:
    metrics: list = []
    for index, metric in enumerate(spec.metrics):
        row: list = [metric.namespace, metric.name]
        for key, value in metric.dimensions.items():
            row += [key, value]
        row.append({"id": f"m{index}", "stat": metric.stat, "visible": spec.expression is None})
        metrics.append(row)
    if spec.expression:
        metrics.append([{"expression": spec.expression, "label": spec.label, "id": "e0"}])
    return {"type": "metric", "width": 8, "height": 6, "properties": {
        "title": spec.description, "region": region, "metrics": metrics, "period": 60,
        "annotations": {"horizontal": [{"value": spec.threshold, "label": "alarm"}]}}}


class Monitoring(pulumi.ComponentResource):
    topic: aws.sns.Topic

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:monitoring:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.topic = aws.sns.Topic(name, kms_master_key_id=args.kms_key_arn, opts=child)
        aws.sns.TopicPolicy(name, arn=self.topic.arn, policy=pulumi.Output.json_dumps({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "AccountManages", "Effect": "Allow",
                 "Principal": {"AWS": pulumi.Output.concat("arn:aws:iam::", args.account_id, ":root")},
                 "Action": ["sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:Subscribe",
                            "sns:ListSubscriptionsByTopic", "sns:Publish"],
                 "Resource": self.topic.arn},
                {"Sid": "AlarmsAndBudgetsPublish", "Effect": "Allow",
                 "Principal": {"Service": ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]},
                 "Action": "sns:Publish", "Resource": self.topic.arn,
                 "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}}},
            ],
        }), opts=child)
        aws.sns.TopicSubscription(name, topic=self.topic.arn, protocol="email",
                                  endpoint=args.settings.alarm_email, opts=child)

        specs = alarm_specs(args)
        for spec in specs:
            single = spec.expression is None
            metric = spec.metrics[0]
            stat = {"extended_statistic": metric.stat} if metric.stat.startswith("p") else {"statistic": metric.stat}
            CW.MetricAlarm(
                f"{name}-{spec.label}", alarm_description=spec.description, threshold=spec.threshold,
                comparison_operator=spec.comparison, evaluation_periods=spec.evaluation_periods,
                datapoints_to_alarm=spec.evaluation_periods, treat_missing_data=spec.treat_missing_data,
                alarm_actions=[self.topic.arn], ok_actions=[self.topic.arn],
                **({"namespace": metric.namespace, "metric_name": metric.name, "dimensions": dict(metric.dimensions),
                    "period": 60, **stat} if single else {"metric_queries": [
                        *(_query(i, m, False) for i, m in enumerate(spec.metrics)),
                        CW.MetricAlarmMetricQueryArgs(id="e0", expression=spec.expression, label=spec.label,
                                                      return_data=True)]}),
                opts=child)
        CW.Dashboard(name, dashboard_name=args.dashboard_name, dashboard_body=pulumi.Output.json_dumps(
            {"widgets": [*(_widget(spec, args.region) for spec in specs), *args.extra_widgets]}), opts=child)
        self.register_outputs({"alarm_topic_arn": self.topic.arn})
