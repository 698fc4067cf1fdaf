"""The ECS cluster: Container Insights, Fargate and Fargate Spot capacity."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass
class ClusterArgs:
    name: str
    kms_key_arn: pulumi.Input[str]
    exec_log_group_name: str
    log_retention_days: int


class Cluster(pulumi.ComponentResource):
    cluster: aws.ecs.Cluster
    capacity_providers: aws.ecs.ClusterCapacityProviders
    exec_logs: aws.cloudwatch.LogGroup

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:services:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # ECS Exec sessions (off unless a stack enables them) are encrypted with the stack key and every
        # session's commands and output are logged; ECS requires a customer-managed key on the group.
        self.exec_logs = aws.cloudwatch.LogGroup(f"{name}-exec", name=args.exec_log_group_name,
                                                 retention_in_days=args.log_retention_days,
                                                 kms_key_id=args.kms_key_arn, opts=child)
        self.cluster = aws.ecs.Cluster(
            name, name=args.name,
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enhanced")],
            configuration=aws.ecs.ClusterConfigurationArgs(
                execute_command_configuration=aws.ecs.ClusterConfigurationExecuteCommandConfigurationArgs(
                    kms_key_id=args.kms_key_arn, logging="OVERRIDE",
                    log_configuration=aws.ecs.ClusterConfigurationExecuteCommandConfigurationLogConfigurationArgs(
                        cloud_watch_log_group_name=self.exec_logs.name, cloud_watch_encryption_enabled=True))),
            opts=child)
        self.capacity_providers = aws.ecs.ClusterCapacityProviders(
            name, cluster_name=self.cluster.name, capacity_providers=["FARGATE", "FARGATE_SPOT"],
            default_capacity_provider_strategies=[aws.ecs.ClusterCapacityProvidersDefaultCapacityProviderStrategyArgs(
                capacity_provider="FARGATE", weight=1)],
            opts=child)
        self.register_outputs({"name": self.cluster.name})
