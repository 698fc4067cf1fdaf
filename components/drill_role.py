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
from regions.workloads import WORKLOADS

# Calls that take no narrower resource than "*" (Service Authorization Reference): GetMetricStatistics,
# GetMetricData (the replication probe's metrics) and DescribeScalableTargets define no resource type.
# DescribeAlarms does (alarm), but CloudWatch returns composite alarms, which a --stop-alarm may be, only to a
# cloudwatch:DescribeAlarms allowed on "*" (DescribeAlarms, CloudWatch API Reference): scoped, a composite stop
# alarm would silently never be found.
UNSCOPED = ("cloudwatch:GetMetricStatistics", "cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms",
            "application-autoscaling:DescribeScalableTargets")
# The one namespace and dimension the drill scales (drills/capacity.py), as Application Auto Scaling's
# condition keys for RegisterScalableTarget name them.
SCALING_NAMESPACE, SCALING_DIMENSION = "ecs", "ecs:service:DesiredCount"
# What Application Auto Scaling requires of its callers for ECS services besides ecs:DescribeServices and
# ecs:UpdateService (granted on the services) and cloudwatch:DescribeAlarms (above): the minimum its user guide
# gives for "actions on target services and CloudWatch". Scoped to the alarms of the services' target tracking
# policies, which it names TargetTracking-service/<cluster>/<service>-AlarmHigh-<uuid> and -AlarmLow-<uuid>
# (PutScalingPolicy's example in its API Reference); the drill itself creates and deletes no alarm.
TARGET_TRACKING_ALARM_ACTIONS = ("cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms")


@dataclass
class RegionResources:
    region: str
    cluster_name: pulumi.Input[str]
    service_names: pulumi.Input[Mapping[str, str]]
    # The database-credentials secret in this region, which the database probe reads, an evacuation points at the
    # promoted writer and a failback copies, and the key encrypting it.
    database_secret_arn: pulumi.Input[str]
    secret_key_arn: pulumi.Input[str]
    # The shared secrets in this region (their replicas in the backup's), which an evacuation makes standalone.
    shared_secret_arns: pulumi.Input[Sequence[str]]
    # The stack's `password_restarts` and `db_fence` outputs (docs/contracts.md).
    password_restarts: pulumi.Input[Mapping[str, str]]
    db_fence: pulumi.Input[Mapping[str, str]]


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
    # The password rotation function's name, the same in both regions: re-enabling a rotation invokes it.
    rotation_function_name: str
    # With cache.globalDatastore: the datastore whose primary a drill moves, and the caches' replication group id
    # (the same in both regions).
    cache_global_datastore: pulumi.Input[str] | None = None
    cache_replication_group_id: str | None = None


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
                account, cluster, names, secret, key, shared, restarts, fence = values
                prefix = f"{region.region}:{account}"
                rds = f"arn:aws:rds:{prefix}"
                scaled = sorted(service for workload, service in names.items()
                                if workload in WORKLOADS and WORKLOADS[workload].scale_on)
                return {"services": [f"arn:aws:ecs:{prefix}:service/{cluster}/{service}"
                                     for service in sorted(names.values())],
                        "secrets": [secret], "shared_secrets": list(shared), "keys": [key],
                        "instances": [f"{rds}:db:{args.db_identifier}"],
                        "restart_rules": [f"arn:aws:events:{prefix}:rule/{restarts['rule_name']}"],
                        "db_security_groups": [f"arn:aws:ec2:{prefix}:security-group/{fence['security_group_id']}"],
                        "rotation_functions": [f"arn:aws:lambda:{prefix}:function:{args.rotation_function_name}"],
                        "drill_snapshots": [f"{rds}:snapshot:{args.db_identifier}-drill-*"],
                        # Automated snapshots are named rds:<instance>-<date>.
                        "automated_snapshots": [f"{rds}:snapshot:rds:{args.db_identifier}-*"],
                        # The drill lists automated backups without an identifier (drills/preflight.py), so the
                        # request names no instance: an unfiltered RDS list is authorized on a wildcard of the
                        # region (DescribeDBInstances' on db:*). The reference gives this action two optional
                        # types and not which one an unfiltered call names: both, this account's, this region's.
                        "automated_backups": [f"{rds}:auto-backup:*", f"{rds}:db:*"],
                        # Scalable targets are named by generated ids: this account's, in this region.
                        "scalable_targets": [f"arn:aws:application-autoscaling:{prefix}:scalable-target/*"],
                        "target_tracking_alarms": [
                            f"arn:aws:cloudwatch:{prefix}:alarm:TargetTracking-service/{cluster}/{service}-*"
                            for service in scaled]}
            return pulumi.Output.all(args.account_id, region.cluster_name, region.service_names,
                                     region.database_secret_arn, region.secret_key_arn, region.shared_secret_arns,
                                     region.password_restarts, region.db_fence).apply(build)

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
            # Moves a scaled service's min and max (drills/capacity.py); only ECS desired counts.
            {"Sid": "BoundTheScaledServices", "Effect": "Allow",
             "Action": "application-autoscaling:RegisterScalableTarget", "Resource": joined("scalable_targets"),
             "Condition": {"StringEquals": {"application-autoscaling:service-namespace": SCALING_NAMESPACE,
                                            "application-autoscaling:scalable-dimension": SCALING_DIMENSION}}},
            {"Sid": "TheirTargetTrackingAlarms", "Effect": "Allow", "Action": list(TARGET_TRACKING_ALARM_ACTIONS),
             "Resource": joined("target_tracking_alarms")},
            {"Sid": "ListTheirAutomatedBackups", "Effect": "Allow",
             "Action": "rds:DescribeDBInstanceAutomatedBackups", "Resource": joined("automated_backups")},
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
            # The evacuation makes the backup's shared secrets standalone (StopReplicationToReplica, called in the
            # replica's region) and points its database-credentials at the promoted writer; the failback copies the
            # password back. Rotation stops in the old writer's region (and is re-enabled by an abort, which
            # invokes the function).
            {"Sid": "DetachTheSharedSecrets", "Effect": "Allow",
             "Action": ["secretsmanager:DescribeSecret", "secretsmanager:StopReplicationToReplica"],
             "Resource": joined("shared_secrets")},
            {"Sid": "WriteAndRotateTheDatabaseCredentials", "Effect": "Allow",
             "Action": ["secretsmanager:PutSecretValue", "secretsmanager:CancelRotateSecret",
                        "secretsmanager:RotateSecret"], "Resource": joined("secrets")},
            {"Sid": "ReenableTheRotation", "Effect": "Allow", "Action": "lambda:InvokeFunction",
             "Resource": joined("rotation_functions")},
            # Restarts heard from the old region's secret stop where they would land.
            {"Sid": "TheRestartRules", "Effect": "Allow",
             "Action": ["events:DescribeRule", "events:DisableRule", "events:EnableRule"],
             "Resource": joined("restart_rules")},
            # The fence at the database: its ingress from the app tasks revoked (and restored by an abort), and a
            # reboot that ends the sessions a revoked rule does not (security groups keep tracked connections).
            {"Sid": "FenceAtTheDatabase", "Effect": "Allow",
             "Action": ["ec2:RevokeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupIngress"],
             "Resource": joined("db_security_groups")},
            {"Sid": "EndTheOldWritersSessions", "Effect": "Allow", "Action": "rds:RebootDBInstance",
             "Resource": instances},
            *self._broker(args),
            {"Sid": "DecryptThemThroughSecretsManager", "Effect": "Allow",
             "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
             "Resource": joined("keys"), "Condition": {"StringEquals": {"kms:ViaService": [
                 f"secretsmanager.{r.region}.amazonaws.com" for r in args.regions]}}},
        ]), opts=child)
        self.register_outputs({"arn": self.role.arn})

    @staticmethod
    def _broker(args: DrillRoleArgs) -> list[dict]:
        """Moving the Global Datastore's primary with the writer (drills/handover.py): the datastore is global (no
        region in its ARN), FailoverGlobalReplicationGroup also names the member that becomes primary."""
        if args.cache_global_datastore is None:
            return []
        datastore = pulumi.Output.concat("arn:aws:elasticache::", args.account_id, ":globalreplicationgroup:",
                                         args.cache_global_datastore)
        members = [pulumi.Output.concat("arn:aws:elasticache:", r.region, ":", args.account_id, ":replicationgroup:",
                                        args.cache_replication_group_id) for r in args.regions]
        return [{"Sid": "ReadTheBroker", "Effect": "Allow", "Action": "elasticache:DescribeGlobalReplicationGroups",
                 "Resource": datastore},
                {"Sid": "MoveTheBroker", "Effect": "Allow", "Action": "elasticache:FailoverGlobalReplicationGroup",
                 "Resource": [datastore, *members]}]
