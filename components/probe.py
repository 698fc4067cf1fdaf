"""The replication probe: one small task of the platform's own in each region, inside the VPC, that measures
replication through the database itself and reports it to CloudWatch in both regions.

In the active region (`writer` mode) it writes a heartbeat row to the writer every `probe.intervalSeconds` and
publishes the last one the database acknowledged; in the standby (`reader` mode) it reads the newest heartbeat that
reached its replica and publishes it with its age. Each datapoint goes to its own region's CloudWatch and to the
peer's, so the drill (and `drills status`) read both sides from the region users go to, with the other one down.

An ECS service rather than a scheduled Lambda in the VPC: it writes one heartbeat a second, continuously, over one
connection it keeps, and EventBridge schedules fire at most once a minute (a Lambda would also reconnect and read
the secret on every run). One task, on FARGATE rather than Spot (a reclaimed probe misses heartbeats), never two at
once (minimum healthy 0 %, maximum 100 %: two writers would interleave their sequence numbers), no load balancer and
no autoscaling. It reads the database-credentials secret itself, with its task role, and reads it again when the
password has rotated, so no secret is injected into its container and no rotation restarts it.

The process is probe/ (its own image, built by the primary like the application's); what it is given is the
contract below (`environment`), the names it publishes are METRICS (probe/__init__.py names the same).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.containers import container_definitions
from components.iam import policy_document, service_role
from components.service import image_and_log_statements
from regions.catalog import FARGATE_MEMORY
from regions.model import ProbeSettings
from regions.workloads import PROBE_WORKLOAD

CW = aws.cloudwatch
ECS = aws.ecs

NAMESPACE = "TradingPlatform/ReplicationProbe"
ENVIRONMENT_DIMENSION = "Environment"
WRITER_DIMENSION = "WriterRegion"
# The probe's metrics, by the keys of the `replication_probe` stack output (docs/contracts.md).
METRICS: dict[str, str] = {
    # writer: epoch seconds of its last acknowledged heartbeat, and that heartbeat's sequence number (Count)
    "last_acknowledged_write": "LastAcknowledgedWrite",
    "last_acknowledged_seq": "LastAcknowledgedSeq",
    # reader: the newest heartbeat on its replica (epoch seconds, Count), and its age (Seconds)
    "newest_replicated_write": "NewestReplicatedWrite",
    "newest_replicated_seq": "NewestReplicatedSeq",
    "replication_age": "ReplicationAge",
}
Mode = Literal["writer", "reader"]
MODE_METRICS: dict[str, tuple[str, ...]] = {
    "writer": ("last_acknowledged_write", "last_acknowledged_seq"),
    "reader": ("newest_replicated_write", "newest_replicated_seq", "replication_age"),
}
# Published with StorageResolution 1 (high resolution).
STORAGE_RESOLUTION_SECONDS = 1
# RDS's CA bundle for verify-full, baked into the image.
CA_BUNDLE = "/etc/ssl/certs/rds-global-bundle.pem"
TASK_CPU, TASK_MEMORY = 256, 512
# Both alarms judge whole minutes: a standard-resolution alarm (its price), and a period CloudWatch takes for any
# metric. Replication age: two minutes in a row above the threshold (one slow minute, a replica restart or a
# replay conflict, is not a page; the Maximum of each minute already catches every second of it).
ALARM_PERIOD_SECONDS = 60
REPLICATION_AGE_EVALUATION_PERIODS = 2
# ECS deployments of the probe: the old task stops before the new one starts.
DEPLOYMENT_MINIMUM_HEALTHY_PERCENT, DEPLOYMENT_MAXIMUM_PERCENT = 0, 100


def alarm_window_problems(period: int, evaluation_periods: int, datapoints_to_alarm: int,
                          storage_resolution: int) -> list[str]:
    """What PutMetricAlarm refuses (or silently misjudges) in an alarm's window; [] when CloudWatch takes it.

    From the PutMetricAlarm API reference (Period, EvaluationPeriods, DatapointsToAlarm): the period is 10, 20, 30
    or a multiple of 60, and 10, 20 or 30 only for a metric stored at 1-second resolution (else the alarm lapses
    into INSUFFICIENT_DATA); period x evaluation periods is at most one day for a period under an hour, seven days
    otherwise; at least one evaluation period, and DatapointsToAlarm between 1 and EvaluationPeriods."""
    problems = []
    if period in (10, 20, 30):
        if storage_resolution != 1:
            problems.append(f"a period of {period} s needs a high-resolution metric (StorageResolution 1)")
    elif period <= 0 or period % 60:
        problems.append(f"period {period} s is not 10, 20, 30 or a multiple of 60")
    if evaluation_periods < 1:
        problems.append(f"evaluation periods {evaluation_periods} is below 1")
    if not 1 <= datapoints_to_alarm <= max(evaluation_periods, 1):
        problems.append(f"datapoints to alarm {datapoints_to_alarm} is not between 1 and the evaluation periods")
    window, limit = period * evaluation_periods, 86_400 if period < 3_600 else 604_800
    if window > limit:
        problems.append(f"period x evaluation periods is {window} s, above {limit} s")
    return problems


def deployment_problems(desired: int, minimum_healthy_percent: int, maximum_percent: int) -> list[str]:
    """A one-task service that must never run two tasks, and must still be able to replace its task.

    From the ECS DeploymentConfiguration API reference: the tasks allowed RUNNING or PENDING during a deployment
    are desiredCount x maximumPercent rounded down, those that must stay RUNNING desiredCount x
    minimumHealthyPercent rounded up; ECS replaces a task only when the first exceeds the second."""
    if desired == 0:
        return []
    most, least = desired * maximum_percent // 100, math.ceil(desired * minimum_healthy_percent / 100)
    problems = []
    if most > desired:
        problems.append(f"maximumPercent {maximum_percent} lets {most} tasks run at once during a deployment")
    if most <= least:
        problems.append(f"{least} task(s) must stay running and at most {most} may run: a deployment cannot "
                        "replace the task")
    return problems


def fargate_size_problems(cpu: int, memory: int) -> list[str]:
    """Fargate takes only certain memory sizes with each CPU size (the task definition reference's table)."""
    if memory in FARGATE_MEMORY.get(cpu, ()):
        return []
    return [f"Fargate does not run {cpu} CPU units with {memory} MiB"]


def mode(region: str, writer_region: str) -> Mode:
    return "writer" if region == writer_region else "reader"


def dimensions(environment: str, writer_region: str) -> dict[str, str]:
    """Every metric's dimensions: the environment, and the region whose writer the heartbeats come from."""
    return {ENVIRONMENT_DIMENSION: environment, WRITER_DIMENSION: writer_region}


def environment(*, region: str, peer_region: str, writer_region: str, environment_name: str, settings: ProbeSettings,
                database_host: pulumi.Input[str], database_port: int, database_name: str,
                database_secret_arn: pulumi.Input[str]) -> dict[str, pulumi.Input[str]]:
    """What the process reads from its environment (probe/): the contract between the stacks and the probe."""
    return {
        "PROBE_MODE": mode(region, writer_region),
        "PROBE_REGION": region,
        "PROBE_PEER_REGION": peer_region,
        "PROBE_WRITER_REGION": writer_region,
        "PROBE_NAMESPACE": NAMESPACE,
        "PROBE_ENVIRONMENT": environment_name,
        "PROBE_INTERVAL_SECONDS": f"{settings.interval_seconds:g}",
        "DATABASE_HOST": database_host,
        "DATABASE_PORT": str(database_port),
        "DATABASE_NAME": database_name,
        # The secret's ARN, not its value: the process reads it with its task role.
        "DATABASE_SECRET_ARN": database_secret_arn,
        "DATABASE_CA_BUNDLE": CA_BUNDLE,
    }


def dashboard_widgets(environment_name: str, writer_region: str, region: str,
                      max_replication_age_seconds: int) -> list[dict]:
    """The probe's graphs on the region's dashboard: both probes publish to both regions, so either shows both."""
    dims: list[str] = []
    for key, value in dimensions(environment_name, writer_region).items():
        dims += [key, value]

    def metric(key: str, label: str) -> list:
        return [NAMESPACE, METRICS[key], *dims, {"stat": "Maximum", "label": label}]

    return [
        {"type": "metric", "width": 8, "height": 6, "properties": {
            "title": f"Replication age of the standby's replica behind the writer in {writer_region} (s)",
            "region": region, "period": ALARM_PERIOD_SECONDS,
            "metrics": [metric("replication_age", "replication age")],
            "annotations": {"horizontal": [{"value": max_replication_age_seconds, "label": "alarm"}]}}},
        {"type": "metric", "width": 8, "height": 6, "properties": {
            "title": "Heartbeats: last acknowledged by the writer, newest replicated to the standby",
            "region": region, "period": ALARM_PERIOD_SECONDS,
            "metrics": [metric("last_acknowledged_seq", "last acknowledged"),
                        metric("newest_replicated_seq", "newest replicated")]}},
    ]


@dataclass
class ReplicationProbeArgs:
    environment: str
    region: str
    peer_region: str
    # The activeRegion: the probe there writes, the other reads.
    writer_region: str
    settings: ProbeSettings
    # False while this region's database is a detached former writer: the service stays, at 0 tasks.
    running: bool
    family: str
    service_name: str
    cluster_arn: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    image: pulumi.Input[str]
    # The ECR repository the image comes from, which the execution role may pull from.
    repository_arn: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    security_group_id: pulumi.Input[str]
    database_host: pulumi.Input[str]
    database_port: int
    database_name: str
    # The database-credentials secret in this region (the backup's is the replica), and the key(s) encrypting it.
    database_secret_arn: pulumi.Input[str]
    database_secret_key_arns: Sequence[pulumi.Input[str]]
    kms_key_arn: pulumi.Input[str]
    log_group_name: str
    log_retention_days: int
    # Where the alarms tell (the stack's monitoring topic), and what their names start with.
    alarm_topic_arn: pulumi.Input[str]
    alarm_name_prefix: str
    # What must exist before the service (the cluster's capacity providers).
    depends_on: Sequence[pulumi.Resource] = ()


class ReplicationProbe(pulumi.ComponentResource):
    service: aws.ecs.Service
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    # The `replication_probe` stack output.
    description: pulumi.Output[dict]

    def __init__(self, name: str, args: ReplicationProbeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:services:ReplicationProbe", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        probe_mode = mode(args.region, args.writer_region)
        desired = 1 if args.running else 0
        for problem in (fargate_size_problems(TASK_CPU, TASK_MEMORY)
                        + deployment_problems(desired, DEPLOYMENT_MINIMUM_HEALTHY_PERCENT, DEPLOYMENT_MAXIMUM_PERCENT)):
            raise ValueError(f"{name}: {problem}")

        logs = aws.cloudwatch.LogGroup(name, name=args.log_group_name, retention_in_days=args.log_retention_days,
                                       kms_key_id=args.kms_key_arn, opts=child)
        # Pull its image and write its logs: no secret (the process reads its own, with the task role).
        execution = service_role(f"{name}-execution", "ecs-tasks.amazonaws.com", self)
        aws.iam.RolePolicy(f"{name}-execution", role=execution.id,
                           policy=policy_document(image_and_log_statements(args.repository_arn, logs.arn)),
                           opts=child)
        task = service_role(f"{name}-task", "ecs-tasks.amazonaws.com", self)
        aws.iam.RolePolicy(f"{name}-task", role=task.id, policy=policy_document([
            {"Sid": "ReadTheDatabaseCredentials", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": args.database_secret_arn},
            {"Sid": "DecryptThemThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt",
             "Resource": list(args.database_secret_key_arns),
             "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{args.region}.amazonaws.com"}}},
            # PutMetricData has no resource type: the namespace condition is what scopes it (in any region, so
            # the peer's CloudWatch too).
            {"Sid": "PublishProbeMetrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
             "Condition": {"StringEquals": {"cloudwatch:namespace": NAMESPACE}}},
        ]), opts=child)

        variables = environment(region=args.region, peer_region=args.peer_region, writer_region=args.writer_region,
                                environment_name=args.environment, settings=s, database_host=args.database_host,
                                database_port=args.database_port, database_name=args.database_name,
                                database_secret_arn=args.database_secret_arn)
        # No command to format (the image's own) and no ECS Exec: its task role holds nothing else.
        containers = container_definitions(name, PROBE_WORKLOAD, args.image, variables, None, logs.name, args.region,
                                           log_level="INFO", exec_enabled=False)
        definition = ECS.TaskDefinition(
            name, family=args.family,
            requires_compatibilities=["FARGATE"], network_mode="awsvpc", cpu=str(TASK_CPU), memory=str(TASK_MEMORY),
            execution_role_arn=execution.arn, task_role_arn=task.arn,
            runtime_platform=ECS.TaskDefinitionRuntimePlatformArgs(operating_system_family="LINUX",
                                                                   cpu_architecture="X86_64"),
            container_definitions=pulumi.Output.json_dumps(containers), opts=child)
        self.service = ECS.Service(
            name, name=args.service_name, cluster=args.cluster_arn, task_definition=definition.arn,
            desired_count=desired,
            capacity_provider_strategies=[ECS.ServiceCapacityProviderStrategyArgs(capacity_provider="FARGATE",
                                                                                  weight=1)],
            platform_version="LATEST",
            network_configuration=ECS.ServiceNetworkConfigurationArgs(
                subnets=args.subnet_ids, security_groups=[args.security_group_id], assign_public_ip=False),
            deployment_circuit_breaker=ECS.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            deployment_minimum_healthy_percent=DEPLOYMENT_MINIMUM_HEALTHY_PERCENT,
            deployment_maximum_percent=DEPLOYMENT_MAXIMUM_PERCENT,
            propagate_tags="SERVICE", enable_ecs_managed_tags=True, enable_execute_command=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)))

        self.alarms = self._alarms(name, args, probe_mode)
        alarm_names = {label: alarm.name for label, alarm in self.alarms.items()}
        self.description = pulumi.Output.all(self.service.name, args.cluster_name,
                                             alarm_names.get("heartbeat_silent"),
                                             alarm_names.get("replication_age")).apply(lambda found: {
            "namespace": NAMESPACE,
            "metrics": dict(METRICS),
            "dimensions": {ENVIRONMENT_DIMENSION: args.environment},
            "writer_dimension": WRITER_DIMENSION,
            "mode": probe_mode,
            "interval_seconds": s.interval_seconds,
            "max_replication_age_seconds": s.max_replication_age_seconds,
            "alarms": {"heartbeat_silent": found[2], "replication_age": found[3]},
            "service": found[0],
            "cluster": found[1],
        })
        self.register_outputs({"service_name": self.service.name, "description": self.description})

    def _alarms(self, name: str, args: ReplicationProbeArgs, probe_mode: Mode) -> dict[str, CW.MetricAlarm]:
        """The active region's: no heartbeat acknowledged for `silentMinutes`. The standby's: its replica's newest
        heartbeat older than `maxReplicationAgeSeconds` two minutes running. No data breaches both: a probe that
        stopped reporting knows nothing (while this region's database is a detached former writer, nothing
        replicates here and the standby's alarm stays in ALARM until the replica is rebuilt)."""
        s = args.settings
        common: Mapping = dict(namespace=NAMESPACE, period=ALARM_PERIOD_SECONDS, treat_missing_data="breaching",
                               alarm_actions=[args.alarm_topic_arn], ok_actions=[args.alarm_topic_arn],
                               opts=pulumi.ResourceOptions(parent=self))
        if probe_mode == "writer":
            periods, label = s.silent_minutes, "heartbeat_silent"
            spec = dict(name=f"{args.alarm_name_prefix}-probe-heartbeat-silent",
                        alarm_description=f"No heartbeat acknowledged by the writer in {args.region} for "
                                          f"{s.silent_minutes} min (the replication probe writes every "
                                          f"{s.interval_seconds:g} s)",
                        metric_name=METRICS["last_acknowledged_seq"], statistic="SampleCount",
                        dimensions=dimensions(args.environment, args.region),
                        threshold=1, comparison_operator="LessThanThreshold")
        else:
            periods, label = REPLICATION_AGE_EVALUATION_PERIODS, "replication_age"
            spec = dict(name=f"{args.alarm_name_prefix}-replication-age",
                        alarm_description=f"The replica in {args.region} is more than "
                                          f"{s.max_replication_age_seconds} s behind the writer in "
                                          f"{args.writer_region} (or its probe reports nothing)",
                        metric_name=METRICS["replication_age"], statistic="Maximum",
                        dimensions=dimensions(args.environment, args.writer_region),
                        threshold=s.max_replication_age_seconds, comparison_operator="GreaterThanThreshold")
        problems = alarm_window_problems(ALARM_PERIOD_SECONDS, periods, periods, STORAGE_RESOLUTION_SECONDS)
        if problems:
            raise ValueError(f"{name}: {'; '.join(problems)}")
        alarm = CW.MetricAlarm(f"{name}-{label.replace('_', '-')}", evaluation_periods=periods,
                               datapoints_to_alarm=periods, **spec, **common)
        return {label: alarm}
