"""S3 replication of the primary's backups bucket into the backup region's bucket.

Owned by the primary stack, whose bucket carries the rule: the backup stack then has nothing in us-east-1
and can be updated while that region is down. The destination's bucket and key are named by derivation
(bucket name, key alias), so the primary needs no reference to the backup stack.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import service_role

S3 = aws.s3
# S3 Replication Time Control: 15 minutes is the only value AWS offers.
RTC_MINUTES = 15


@dataclass
class BucketReplicationArgs:
    source_region: str
    source_bucket_name: pulumi.Input[str]
    source_bucket_arn: pulumi.Input[str]
    source_kms_key_arn: pulumi.Input[str]
    # S3 refuses a replication rule on an unversioned bucket.
    source_versioning: pulumi.Resource
    destination_region: str
    destination_bucket_arn: pulumi.Input[str]
    # `alias/...`: S3 takes an alias ARN for the replicas' key.
    destination_kms_key_alias: str
    account_id: pulumi.Input[str]


class BucketReplication(pulumi.ComponentResource):
    def __init__(self, name: str, args: BucketReplicationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:data:BucketReplication", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = service_role(name, "s3.amazonaws.com", self)
        aws.iam.RolePolicy(name, role=role.id, policy=pulumi.Output.json_dumps({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "ReadSourceConfiguration", "Effect": "Allow",
                 "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                 "Resource": args.source_bucket_arn},
                {"Sid": "ReadSourceVersions", "Effect": "Allow",
                 "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl",
                            "s3:GetObjectVersionTagging"],
                 "Resource": pulumi.Output.concat(args.source_bucket_arn, "/*")},
                {"Sid": "WriteReplicas", "Effect": "Allow",
                 "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                 "Resource": pulumi.Output.concat(args.destination_bucket_arn, "/*")},
                {"Sid": "DecryptSourceObjects", "Effect": "Allow", "Action": "kms:Decrypt",
                 "Resource": args.source_kms_key_arn,
                 "Condition": {"StringEquals": {"kms:ViaService": f"s3.{args.source_region}.amazonaws.com"}}},
                # IAM authorizes a key by its ARN, which only the backup stack knows: match it by its alias.
                {"Sid": "EncryptReplicas", "Effect": "Allow", "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
                 "Resource": pulumi.Output.concat("arn:aws:kms:", args.destination_region, ":", args.account_id,
                                                  ":key/*"),
                 "Condition": {"StringEquals": {"kms:ViaService": f"s3.{args.destination_region}.amazonaws.com"},
                               "ForAnyValue:StringEquals": {"kms:ResourceAliases": args.destination_kms_key_alias}}},
            ],
        }), opts=child)
        minutes = S3.BucketReplicationConfigRuleDestinationReplicationTimeTimeArgs(minutes=RTC_MINUTES)
        S3.BucketReplicationConfig(
            name,
            bucket=args.source_bucket_name,
            role=role.arn,
            rules=[S3.BucketReplicationConfigRuleArgs(
                id="backups-to-peer-region",
                status="Enabled",
                priority=1,
                filter=S3.BucketReplicationConfigRuleFilterArgs(prefix=""),
                delete_marker_replication=S3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(
                    status="Enabled"),
                source_selection_criteria=S3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
                    sse_kms_encrypted_objects=S3.BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(
                        status="Enabled")),
                destination=S3.BucketReplicationConfigRuleDestinationArgs(
                    bucket=args.destination_bucket_arn,
                    storage_class="STANDARD",
                    encryption_configuration=S3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                        replica_kms_key_id=pulumi.Output.concat(
                            "arn:aws:kms:", args.destination_region, ":", args.account_id, ":",
                            args.destination_kms_key_alias)),
                    replication_time=S3.BucketReplicationConfigRuleDestinationReplicationTimeArgs(
                        status="Enabled", time=minutes),
                    metrics=S3.BucketReplicationConfigRuleDestinationMetricsArgs(
                        status="Enabled",
                        event_threshold=S3.BucketReplicationConfigRuleDestinationMetricsEventThresholdArgs(
                            minutes=RTC_MINUTES)),
                ),
            )],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.source_versioning]),
        )
        self.register_outputs({"role_arn": role.arn})
