"""The drill operator role: exactly what `python -m drills` needs, on exactly these resources.

Created by the backup stack: IAM is global, and only the backup knows both regions' resources
(through its stack reference).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import policy_document

# Calls that cannot be scoped to a resource: GetMetricStatistics has no resource type; DescribeAlarms returns
# composite alarms (a stop alarm may be one) only when allowed on "*"; the drill lists automated backups
# without an identifier; Application Auto Scaling names scalable targets by generated ids.
UNSCOPED = ("cloudwatch:GetMetricStatistics", "cloudwatch:DescribeAlarms", "rds:DescribeDBInstanceAutomatedBackups",
            "application-autoscaling:DescribeScalableTargets", "application-autoscaling:RegisterScalableTarget")


@dataclass
class RegionResources:
    region: str
    cluster_name: pulumi.Input[str]
    service_names: pulumi.Input[Mapping[str, str]]
    # The database-credentials secret in this region, which the database probe reads, and the key encrypting it.
    database_secret_arn: pulumi.Input[str]
    secret_key_arn: pulumi.Input[str]


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
    # The primary's backups bucket, whose replication rule the preflight reads.
    replicated_bucket_arn: pulumi.Input[str]
    # The failover switch's metric namespace: the only one the role may write to.
    switch_namespace: str


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

        def arns(region: RegionResources) -> pulumi.Output[dict[str, list[str]]]:
            def build(values: list) -> dict[str, list[str]]:
                account, cluster, names, secret, key = values
                prefix = f"{region.region}:{account}"
                return {"services": [f"arn:aws:ecs:{prefix}:service/{cluster}/{service}"
                                     for service in sorted(names.values())],
                        "secrets": [secret], "keys": [key]}
            return pulumi.Output.all(args.account_id, region.cluster_name, region.service_names,
                                     region.database_secret_arn, region.secret_key_arn).apply(build)

        by_region = pulumi.Output.all(*(arns(r) for r in args.regions))

        def joined(kind: str) -> pulumi.Output[list[str]]:
            return by_region.apply(lambda found: [arn for region in found for arn in region[kind]])

        rds_prefix = pulumi.Output.concat("arn:aws:rds:", args.backup_region, ":", args.account_id)
        drill_snapshots = pulumi.Output.concat(rds_prefix, ":snapshot:", args.replica_identifier, "-drill-*")
        aws.iam.RolePolicy(name, role=self.role.id, policy=policy_document([
            {"Sid": "ReadServices", "Effect": "Allow", "Action": "ecs:DescribeServices",
             "Resource": joined("services")},
            {"Sid": "ScaleBothRegionsServices", "Effect": "Allow", "Action": "ecs:UpdateService",
             "Resource": joined("services")},
            {"Sid": "Unscopable", "Effect": "Allow", "Action": list(UNSCOPED), "Resource": "*"},
            # Moving traffic is one metric datapoint in the standby's region.
            {"Sid": "FlipTheFailoverSwitch", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
             "Resource": "*", "Condition": {"StringEquals": {"cloudwatch:namespace": args.switch_namespace}}},
            {"Sid": "ReadTheReplica", "Effect": "Allow", "Action": "rds:DescribeDBInstances",
             "Resource": args.replica_arn},
            # Automated snapshots are named rds:<instance>-<date>; replicated backups have generated ids.
            {"Sid": "ReadTheReplicasSnapshots", "Effect": "Allow", "Action": "rds:DescribeDBSnapshots",
             "Resource": [args.replica_arn, drill_snapshots,
                          pulumi.Output.concat(rds_prefix, ":snapshot:rds:", args.replica_identifier, "-*")]},
            {"Sid": "SnapshotTheReplica", "Effect": "Allow", "Action": "rds:CreateDBSnapshot",
             "Resource": [args.replica_arn, drill_snapshots]},
            # The instance copies its tags to the snapshot, which RDS authorizes as AddTagsToResource.
            {"Sid": "TagTheDrillSnapshot", "Effect": "Allow", "Action": "rds:AddTagsToResource",
             "Resource": drill_snapshots},
            {"Sid": "PromoteTheReplica", "Effect": "Allow", "Action": "rds:PromoteReadReplica",
             "Resource": args.replica_arn},
            {"Sid": "ReadBackupsReplication", "Effect": "Allow", "Action": "s3:GetReplicationConfiguration",
             "Resource": args.replicated_bucket_arn},
            # The database probe connects as the database-credentials secret's user, in each database's region.
            {"Sid": "ReadTheDatabaseCredentials", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": joined("secrets")},
            {"Sid": "DecryptThemThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt",
             "Resource": joined("keys"), "Condition": {"StringEquals": {"kms:ViaService": [
                 f"secretsmanager.{r.region}.amazonaws.com" for r in args.regions]}}},
        ]), opts=child)
        self.register_outputs({"arn": self.role.arn})
