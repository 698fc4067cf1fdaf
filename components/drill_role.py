"""The drill operator role: exactly what `python -m drills` needs, on exactly these resources.

Created by the backup stack: IAM is global, and only the backup knows both regions' resources
(through its stack reference).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# Read-only calls the drill makes; AWS does not scope these to resources.
DESCRIBE_ACTIONS = (
    "ecs:DescribeServices", "ecs:DescribeClusters", "ecs:ListTasks", "ecs:DescribeTasks",
    "rds:DescribeDBInstances", "rds:DescribeDBSnapshots", "rds:DescribeDBInstanceAutomatedBackups",
    "route53:GetHealthCheck", "route53:GetHealthCheckStatus", "route53:ListHealthChecks",
    "cloudwatch:DescribeAlarms", "cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics",
    "s3:GetReplicationConfiguration", "elasticloadbalancing:DescribeTargetHealth",
)


@dataclass
class RegionResources:
    region: str
    cluster_name: pulumi.Input[str]
    service_names: pulumi.Input[Mapping[str, str]]
    health_check_id: pulumi.Input[str]


@dataclass
class DrillRoleArgs:
    account_id: pulumi.Input[str]
    # Who may assume it; empty: the account's own principals (each still needs sts:AssumeRole on it).
    principals: Sequence[str]
    require_mfa: bool
    regions: Sequence[RegionResources]
    replica_arn: pulumi.Input[str]
    replica_identifier: str
    backup_region: str


class DrillRole(pulumi.ComponentResource):
    role: aws.iam.Role

    def __init__(self, name: str, args: DrillRoleArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:drills:DrillRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        principals = list(args.principals) or [pulumi.Output.concat("arn:aws:iam::", args.account_id, ":root")]
        trust: dict = {"Effect": "Allow", "Principal": {"AWS": principals}, "Action": "sts:AssumeRole"}
        if args.require_mfa:
            trust["Condition"] = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
        self.role = aws.iam.Role(name, max_session_duration=4 * 3600, assume_role_policy=pulumi.Output.json_dumps(
            {"Version": "2012-10-17", "Statement": [trust]}), opts=child)

        def services(region: RegionResources) -> pulumi.Output[list[str]]:
            return pulumi.Output.all(args.account_id, region.cluster_name, region.service_names).apply(
                lambda v: [f"arn:aws:ecs:{region.region}:{v[0]}:service/{v[1]}/{service}"
                           for service in sorted(v[2].values())])

        service_arns = pulumi.Output.all(*(services(r) for r in args.regions)).apply(
            lambda lists: [arn for arns in lists for arn in arns])
        health_checks = [pulumi.Output.concat("arn:aws:route53:::healthcheck/", r.health_check_id)
                         for r in args.regions]
        snapshots = pulumi.Output.concat("arn:aws:rds:", args.backup_region, ":", args.account_id,
                                         ":snapshot:", args.replica_identifier, "-drill-*")
        aws.iam.RolePolicy(name, role=self.role.id, policy=pulumi.Output.json_dumps({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Describe", "Effect": "Allow", "Action": list(DESCRIBE_ACTIONS), "Resource": "*"},
                {"Sid": "ScaleBothRegionsServices", "Effect": "Allow", "Action": "ecs:UpdateService",
                 "Resource": service_arns},
                {"Sid": "SnapshotTheReplica", "Effect": "Allow", "Action": "rds:CreateDBSnapshot",
                 "Resource": [args.replica_arn, snapshots]},
                {"Sid": "PromoteTheReplica", "Effect": "Allow", "Action": "rds:PromoteReadReplica",
                 "Resource": args.replica_arn},
                {"Sid": "InvertHealthChecks", "Effect": "Allow", "Action": "route53:UpdateHealthCheck",
                 "Resource": health_checks},
            ],
        }), opts=child)
        self.register_outputs({"arn": self.role.arn})
