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

# Calls that cannot be scoped to a resource: GetMetricStatistics and GetMetricData (the replication probe's
# metrics) have no resource type; DescribeAlarms returns
# composite alarms (a stop alarm may be one) only when allowed on "*"; the drill lists automated backups
# without an identifier; Application Auto Scaling names scalable targets by generated ids.
UNSCOPED = ("cloudwatch:GetMetricStatistics", "cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms",
            "rds:DescribeDBInstanceAutomatedBackups",
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
    # The database's identifier, the same in both regions: a failover promotes one, a failback the other.
    db_identifier: str
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
                rds = f"arn:aws:rds:{prefix}"
                return {"services": [f"arn:aws:ecs:{prefix}:service/{cluster}/{service}"
                                     for service in sorted(names.values())],
                        "secrets": [secret], "keys": [key], "instances": [f"{rds}:db:{args.db_identifier}"],
                        "drill_snapshots": [f"{rds}:snapshot:{args.db_identifier}-drill-*"],
                        # Automated snapshots are named rds:<instance>-<date>.
                        "automated_snapshots": [f"{rds}:snapshot:rds:{args.db_identifier}-*"]}
            return pulumi.Output.all(args.account_id, region.cluster_name, region.service_names,
                                     region.database_secret_arn, region.secret_key_arn).apply(build)

        by_region = pulumi.Output.all(*(arns(r) for r in args.regions))

        def joined(kind: str) -> pulumi.Output[list[str]]:
            return by_region.apply(lambda found: [arn for region in found for arn in region[kind]])

        instances, drill_snapshots = joined("instances"), joined("drill_snapshots")
        both = pulumi.Output.all(instances, drill_snapshots).apply(lambda found: found[0] + found[1])
        aws.iam.RolePolicy(name, role=self.role.id, policy=policy_document([
            {"Sid": "ReadServices", "Effect": "Allow", "Action": "ecs:DescribeServices",
             "Resource": joined("services")},
            {"Sid": "ScaleBothRegionsServices", "Effect": "Allow", "Action": "ecs:UpdateService",
             "Resource": joined("services")},
            {"Sid": "Unscopable", "Effect": "Allow", "Action": list(UNSCOPED), "Resource": "*"},
            # Moving traffic is one metric datapoint in the standby's region.
            {"Sid": "FlipTheFailoverSwitch", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
             "Resource": "*", "Condition": {"StringEquals": {"cloudwatch:namespace": args.switch_namespace}}},
            # The replica is the backup's for an evacuation and the primary's for a failback.
            {"Sid": "ReadTheInstances", "Effect": "Allow", "Action": "rds:DescribeDBInstances",
             "Resource": instances},
            {"Sid": "ReadTheirSnapshots", "Effect": "Allow", "Action": "rds:DescribeDBSnapshots",
             "Resource": pulumi.Output.all(both, joined("automated_snapshots")).apply(
                 lambda found: found[0] + found[1])},
            {"Sid": "SnapshotTheReplica", "Effect": "Allow", "Action": "rds:CreateDBSnapshot", "Resource": both},
            # The instance copies its tags to the snapshot, which RDS authorizes as AddTagsToResource.
            {"Sid": "TagTheDrillSnapshot", "Effect": "Allow", "Action": "rds:AddTagsToResource",
             "Resource": drill_snapshots},
            {"Sid": "PromoteTheReplica", "Effect": "Allow", "Action": "rds:PromoteReadReplica",
             "Resource": instances},
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
