"""S3: the backups bucket (the guide's daily/weekly/monthly dumps) and the access-log bucket."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

S3 = aws.s3
NONCURRENT_EXPIRY_DAYS = 30
ABORT_MULTIPART_DAYS = 7
ACCESS_LOG_DAYS = 365
ALB_LOG_PREFIX = "alb"


def _rule(rule_id: str, prefix: str, **kwargs) -> S3.BucketLifecycleConfigurationRuleArgs:
    return S3.BucketLifecycleConfigurationRuleArgs(
        id=rule_id, status="Enabled", filter=S3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix), **kwargs)


def _days(days: int) -> S3.BucketLifecycleConfigurationRuleExpirationArgs:
    return S3.BucketLifecycleConfigurationRuleExpirationArgs(days=days)


def _to(storage_class: str, days: int) -> S3.BucketLifecycleConfigurationRuleTransitionArgs:
    return S3.BucketLifecycleConfigurationRuleTransitionArgs(days=days, storage_class=storage_class)


# The guide's backup strategy: daily dumps, weekly full backups, monthly archives kept seven years.
BACKUP_LIFECYCLE = [
    _rule("daily", "daily/", expiration=_days(35)),
    _rule("weekly", "weekly/", transitions=[_to("STANDARD_IA", 30)], expiration=_days(180)),
    _rule("monthly", "monthly/", transitions=[_to("GLACIER", 30), _to("DEEP_ARCHIVE", 180)],
          expiration=_days(2557)),
]


def _housekeeping(expire_days: int | None = None) -> S3.BucketLifecycleConfigurationRuleArgs:
    return _rule(
        "housekeeping", "",
        expiration=_days(expire_days) if expire_days else None,
        noncurrent_version_expiration=S3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
            noncurrent_days=NONCURRENT_EXPIRY_DAYS),
        abort_incomplete_multipart_upload=S3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
            days_after_initiation=ABORT_MULTIPART_DAYS))


@dataclass
class HardenedBucket:
    bucket: aws.s3.Bucket
    versioning: aws.s3.BucketVersioning
    policy: aws.s3.BucketPolicy


def hardened_bucket(name: str, bucket_name: pulumi.Input[str], parent: pulumi.Resource,
                    kms_key_arn: pulumi.Input[str] | None, tags: Mapping[str, str] | None = None,
                    extra_statements: list[dict] | None = None) -> HardenedBucket:
    """Owner-enforced, never public, versioned, encrypted at rest (SSE-KMS with a key, else SSE-S3)
    and reachable over TLS only."""
    child = pulumi.ResourceOptions(parent=parent)
    bucket = S3.Bucket(name, bucket=bucket_name, tags=dict(tags) if tags else None, opts=child)
    S3.BucketOwnershipControls(name, bucket=bucket.id, rule=S3.BucketOwnershipControlsRuleArgs(
        object_ownership="BucketOwnerEnforced"), opts=child)
    block = S3.BucketPublicAccessBlock(name, bucket=bucket.id, block_public_acls=True, block_public_policy=True,
                                       ignore_public_acls=True, restrict_public_buckets=True, opts=child)
    versioning = S3.BucketVersioning(name, bucket=bucket.id, versioning_configuration=(
        S3.BucketVersioningVersioningConfigurationArgs(status="Enabled")), opts=child)
    default = S3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
        sse_algorithm="aws:kms" if kms_key_arn else "AES256", kms_master_key_id=kms_key_arn)
    S3.BucketServerSideEncryptionConfiguration(name, bucket=bucket.id, rules=[
        S3.BucketServerSideEncryptionConfigurationRuleArgs(apply_server_side_encryption_by_default=default,
                                                           bucket_key_enabled=bool(kms_key_arn))], opts=child)
    policy = S3.BucketPolicy(name, bucket=bucket.id, policy=pulumi.Output.json_dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }, *(extra_statements or [])],
    }), opts=pulumi.ResourceOptions(parent=parent, depends_on=[block]))
    return HardenedBucket(bucket, versioning, policy)


@dataclass
class LogBucketArgs:
    bucket_name: pulumi.Input[str]
    account_id: pulumi.Input[str]
    # The Elastic Load Balancing account that delivers ALB access logs in this region.
    elb_account_id: str
    # Log prefix -> ARN of the bucket whose S3 server access logs land there.
    s3_log_sources: Mapping[str, pulumi.Input[str]]


class LogBucket(pulumi.ComponentResource):
    """Access logs of the backups bucket and the load balancer. S3 server access logging and ALB
    access logs can only write into an SSE-S3 bucket, so this one does not use the stack key."""

    bucket: aws.s3.Bucket
    policy: aws.s3.BucketPolicy

    def __init__(self, name: str, args: LogBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:data:LogBucket", name, None, opts)
        statements: list[dict] = []
        arn = pulumi.Output.concat("arn:aws:s3:::", args.bucket_name)
        for prefix, source_arn in args.s3_log_sources.items():
            statements.append({
                "Sid": f"S3ServerAccessLogs{prefix.title()}",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": pulumi.Output.concat(arn, "/", prefix, "/*"),
                "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id},
                              "ArnLike": {"aws:SourceArn": source_arn}},
            })
        statements.append({
            "Sid": "LoadBalancerAccessLogs",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{args.elb_account_id}:root"},
            "Action": "s3:PutObject",
            "Resource": pulumi.Output.concat(arn, f"/{ALB_LOG_PREFIX}/AWSLogs/", args.account_id, "/*"),
        })
        hardened = hardened_bucket(name, args.bucket_name, self, kms_key_arn=None, extra_statements=statements)
        S3.BucketLifecycleConfiguration(name, bucket=hardened.bucket.id,
                                        rules=[_housekeeping(expire_days=ACCESS_LOG_DAYS)],
                                        opts=pulumi.ResourceOptions(parent=self, depends_on=[hardened.versioning]))
        self.bucket, self.policy = hardened.bucket, hardened.policy
        self.register_outputs({"name": self.bucket.bucket})


@dataclass
class BackupBucketArgs:
    bucket_name: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    tags: Mapping[str, str]
    log_bucket: pulumi.Input[str]
    log_prefix: str


class BackupBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    versioning: aws.s3.BucketVersioning

    def __init__(self, name: str, args: BackupBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:data:BackupBucket", name, None, opts)
        hardened = hardened_bucket(name, args.bucket_name, self, kms_key_arn=args.kms_key_arn, tags=args.tags)
        self.bucket, self.versioning = hardened.bucket, hardened.versioning
        S3.BucketLifecycleConfiguration(name, bucket=self.bucket.id, rules=[*BACKUP_LIFECYCLE, _housekeeping()],
                                        opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]))
        S3.BucketLogging(name, bucket=self.bucket.id, target_bucket=args.log_bucket,
                         target_prefix=f"{args.log_prefix}/", opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"name": self.bucket.bucket, "arn": self.bucket.arn})
