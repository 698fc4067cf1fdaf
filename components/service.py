"""One ECS Fargate service: its task definition, roles, log group, and autoscaling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.containers import container_definitions, task_volume_paths, volume_name
from components.iam import policy_document, service_role
from components.secrets import OPTIONAL_SECRETS
from regions.model import Capacity, ServiceSettings
from regions.workloads import DEPLOYMENT_MAXIMUM_PERCENT, SECRET_ENV, Workload

ECS = aws.ecs
SCALING = aws.appautoscaling
# Target tracking like the guide's HPA: CPU 70 %, memory 80 %.
SCALING_METRICS = {"cpu": ("ECSServiceAverageCPUUtilization", 70),
                   "memory": ("ECSServiceAverageMemoryUtilization", 80)}


@dataclass
class ServiceArgs:
    family: str
    settings: ServiceSettings
    workload: Workload
    running: Capacity
    region: str
    cluster_arn: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    image: pulumi.Input[str]
    # The ECR repository the image comes from, which the execution role may pull from.
    repository_arn: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    security_group_id: pulumi.Input[str]
    environment: Mapping[str, str]
    # Secret name (`jwt-secret`, `connection`, ...) -> its ARN in this region.
    secret_arns: pulumi.Input[Mapping[str, str]]
    # Keys the execution role may decrypt those secrets with (through Secrets Manager only).
    secret_key_arns: Sequence[pulumi.Input[str]]
    kms_key_arn: pulumi.Input[str]
    log_group_name: str
    log_retention_days: int
    log_level: str
    exec_enabled: bool
    # Where ECS Exec sessions are logged (the cluster's setting).
    exec_log_group_arn: pulumi.Input[str]
    # Secret -> the id of its current version (Secrets Manager's, new with every value Pulumi writes).
    secret_versions: pulumi.Input[Mapping[str, str]]
    # Database connections per process.
    db_pool_size: int
    target_group_arn: pulumi.Input[str] | None = None
    # For workers that write the guide's dumps: the bucket, and the key that encrypts it.
    backups_bucket_arn: pulumi.Input[str] | None = None
    # What must exist before the service is created (the listener its target group hangs on, the cluster's
    # capacity providers): a component's depends_on does not reach the resources inside it.
    depends_on: Sequence[pulumi.Resource] = ()


def injected_secrets(workload: Workload, arns: Mapping[str, str]) -> dict[str, tuple[str, str | None]]:
    """The secrets a workload's task gets; an optional secret that does not exist is not passed."""
    found = {}
    for env in workload.secrets:
        secret, key = SECRET_ENV[env]
        if secret in arns:
            found[env] = (arns[secret], key)
        elif secret not in OPTIONAL_SECRETS:
            raise KeyError(f"{workload.image}: the secret {secret} for {env} is not in this stack's secrets")
    return found


def image_and_log_statements(repository_arn: pulumi.Input[str], log_group_arn: pulumi.Input[str]) -> list[dict]:
    """What a task's execution role needs to start it: pull its image from its repository, write its own logs."""
    return [
        {"Sid": "PullThisImage", "Effect": "Allow",
         "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
         "Resource": repository_arn},
        # ECR's token call takes no resource.
        {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Sid": "WriteOwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": pulumi.Output.concat(log_group_arn, ":*")},
    ]


class Service(pulumi.ComponentResource):
    service: aws.ecs.Service

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:services:Service", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        w, s = args.workload, args.settings

        logs = aws.cloudwatch.LogGroup(name, name=args.log_group_name, retention_in_days=args.log_retention_days,
                                       kms_key_id=args.kms_key_arn, opts=child)
        # Environment variable -> the secret's ARN and the JSON key in it.
        injected = pulumi.Output.from_input(args.secret_arns).apply(lambda arns: injected_secrets(w, arns))
        secret_refs = injected.apply(lambda found: {env: arn + (f":{key}::" if key else "")
                                                    for env, (arn, key) in found.items()})
        used_secret_arns = injected.apply(lambda found: sorted({arn for arn, _ in found.values()}))

        execution = service_role(f"{name}-execution", "ecs-tasks.amazonaws.com", self)
        execution_statements = image_and_log_statements(args.repository_arn, logs.arn)
        if w.secrets:
            execution_statements += [
                {"Sid": "ReadOwnSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                 "Resource": used_secret_arns},
                {"Sid": "DecryptThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt",
                 "Resource": list(args.secret_key_arns),
                 "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{args.region}.amazonaws.com"}}},
            ]
        aws.iam.RolePolicy(f"{name}-execution", role=execution.id, policy=policy_document(execution_statements),
                           opts=child)

        task = service_role(f"{name}-task", "ecs-tasks.amazonaws.com", self)
        task_statements: list[dict] = []
        if args.backups_bucket_arn is not None:
            task_statements += [
                {"Sid": "ListBackups", "Effect": "Allow", "Action": "s3:ListBucket",
                 "Resource": args.backups_bucket_arn},
                {"Sid": "ReadWriteBackups", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                 "Resource": pulumi.Output.concat(args.backups_bucket_arn, "/*")},
                {"Sid": "BackupsKey", "Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                 "Resource": args.kms_key_arn,
                 "Condition": {"StringEquals": {"kms:ViaService": f"s3.{args.region}.amazonaws.com"}}},
            ]
        if args.exec_enabled:
            task_statements += [
                {"Sid": "EcsExecSessions", "Effect": "Allow", "Resource": "*",
                 "Action": ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                            "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"]},
                # The cluster encrypts exec sessions with the stack key.
                {"Sid": "EcsExecSessionKey", "Effect": "Allow", "Action": "kms:Decrypt",
                 "Resource": args.kms_key_arn},
                # The agent writes each session's transcript to the cluster's exec log group.
                {"Sid": "EcsExecSessionLogs", "Effect": "Allow",
                 "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                 "Resource": pulumi.Output.concat(args.exec_log_group_arn, ":*")},
                # The agent checks the group exists; the describe call cannot be narrowed to one group.
                {"Sid": "EcsExecFindLogGroup", "Effect": "Allow", "Action": "logs:DescribeLogGroups",
                 "Resource": "*"},
            ]
        if task_statements:
            aws.iam.RolePolicy(f"{name}-task", role=task.id, policy=policy_document(task_statements), opts=child)

        secrets = secret_refs.apply(lambda refs: [{"name": k, "valueFrom": v} for k, v in sorted(refs.items())])
        environment: dict[str, pulumi.Input[str]] = dict(args.environment)
        if w.db_processes:
            # Each process's pool, as max_connections counts it (no overflow beyond it).
            environment["DATABASE_POOL_SIZE"] = str(args.db_pool_size)
        if w.secrets:
            # Tasks read secrets only at start: a new value of one they read must start new tasks. Its version id
            # changes the definition, and says nothing of the value (`name:id`, no run the policy pack would take for
            # a secret: ecs-no-secrets-in-environment).
            environment["ROTATION_GENERATIONS"] = pulumi.Output.from_input(args.secret_versions).apply(
                lambda versions: ",".join(f"{secret}:{version}" for secret, version in sorted(versions.items())
                                          if secret in w.secret_names))
        containers = container_definitions(name, w, args.image, environment, secrets, logs.name, args.region,
                                           args.log_level, args.exec_enabled)
        definition = ECS.TaskDefinition(
            name, family=args.family,
            requires_compatibilities=["FARGATE"], network_mode="awsvpc", cpu=str(s.cpu), memory=str(s.memory),
            execution_role_arn=execution.arn, task_role_arn=task.arn,
            runtime_platform=ECS.TaskDefinitionRuntimePlatformArgs(operating_system_family="LINUX",
                                                                   cpu_architecture="X86_64"),
            volumes=[ECS.TaskDefinitionVolumeArgs(name=volume_name(p))
                     for p in task_volume_paths(w, args.exec_enabled)],
            container_definitions=pulumi.Output.json_dumps(containers),
            opts=child)

        self.service = ECS.Service(
            name, name=name, cluster=args.cluster_arn, task_definition=definition.arn,
            desired_count=args.running.desired,
            capacity_provider_strategies=[ECS.ServiceCapacityProviderStrategyArgs(
                capacity_provider="FARGATE_SPOT" if s.spot else "FARGATE", weight=1)],
            platform_version="LATEST",
            network_configuration=ECS.ServiceNetworkConfigurationArgs(
                subnets=args.subnet_ids, security_groups=[args.security_group_id], assign_public_ip=False),
            load_balancers=[ECS.ServiceLoadBalancerArgs(target_group_arn=args.target_group_arn, container_name=name,
                                                        container_port=w.port)] if args.target_group_arn else None,
            health_check_grace_period_seconds=60 if args.target_group_arn else None,
            deployment_circuit_breaker=ECS.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            # A singleton is stopped before its replacement starts: never two beats, not even while deploying.
            deployment_minimum_healthy_percent=0 if w.singleton else 100,
            deployment_maximum_percent=100 if w.singleton else DEPLOYMENT_MAXIMUM_PERCENT,
            propagate_tags="SERVICE", enable_ecs_managed_tags=True, enable_execute_command=args.exec_enabled,
            # Autoscaling owns the running count once the service exists; the scaling target's min and max
            # (from settings) are what a change of role moves.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["desiredCount"] if w.scale_on else None,
                                        depends_on=list(args.depends_on)))

        if w.scale_on:
            target = SCALING.Target(
                name, service_namespace="ecs", scalable_dimension="ecs:service:DesiredCount",
                resource_id=pulumi.Output.concat("service/", args.cluster_name, "/", self.service.name),
                min_capacity=args.running.min, max_capacity=args.running.max, opts=child)
            for label in w.scale_on:
                metric, value = SCALING_METRICS[label]
                SCALING.Policy(
                    f"{name}-{label}", policy_type="TargetTrackingScaling", service_namespace="ecs",
                    scalable_dimension=target.scalable_dimension, resource_id=target.resource_id,
                    target_tracking_scaling_policy_configuration=SCALING.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                        target_value=value, scale_in_cooldown=120, scale_out_cooldown=60,
                        predefined_metric_specification=(
                            SCALING.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                                predefined_metric_type=metric))),
                    opts=child)
        self.register_outputs({"name": self.service.name})
