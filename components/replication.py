"""S3 replication of the primary's backups bucket into the backup region's bucket.

Owned by the backup stack (the destination exists only then) and applied to the primary bucket through
the v7 per-resource `region` argument rather than a second provider.
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
    destination_region: str
    destination_bucket_arn: pulumi.Input[str]
    destination_kms_key_arn: pulumi.Input[str]
    # S3 refuses a replication rule until the destination is versioned.
    destination_versioning: pulumi.Resource


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
                {"Sid": "EncryptReplicas", "Effect": "Allow", "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
                 "Resource": args.destination_kms_key_arn,
                 "Condition": {"StringEquals": {"kms:ViaService": f"s3.{args.destination_region}.amazonaws.com"}}},
            ],
        }), opts=child)
        minutes = S3.BucketReplicationConfigRuleDestinationReplicationTimeTimeArgs(minutes=RTC_MINUTES)
        S3.BucketReplicationConfig(
            name,
            region=args.source_region,
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
                        replica_kms_key_id=args.destination_kms_key_arn),
                    replication_time=S3.BucketReplicationConfigRuleDestinationReplicationTimeArgs(
                        status="Enabled", time=minutes),
                    metrics=S3.BucketReplicationConfigRuleDestinationMetricsArgs(
                        status="Enabled",
                        event_threshold=S3.BucketReplicationConfigRuleDestinationMetricsEventThresholdArgs(
                            minutes=RTC_MINUTES)),
                ),
            )],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.destination_versioning]),
        )
        self.register_outputs({"role_arn": role.arn})
