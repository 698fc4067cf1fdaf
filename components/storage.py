"""The S3 backups bucket (the guide's daily/weekly/monthly dumps) and its access-log bucket."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

S3 = aws.s3
DAY_NONCURRENT_EXPIRY = 30
ABORT_MULTIPART_DAYS = 7


@dataclass
class BackupBucketArgs:
    bucket_name: pulumi.Input[str]
    log_bucket_name: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    tags: Mapping[str, str]


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
            noncurrent_days=DAY_NONCURRENT_EXPIRY),
        abort_incomplete_multipart_upload=S3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
            days_after_initiation=ABORT_MULTIPART_DAYS))


class BackupBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    versioning: aws.s3.BucketVersioning

    def __init__(self, name: str, args: BackupBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:data:BackupBucket", name, None, opts)
        self._child = pulumi.ResourceOptions(parent=self)

        logs = S3.Bucket(f"{name}-logs", bucket=args.log_bucket_name, opts=self._child)
        self.bucket = S3.Bucket(name, bucket=args.bucket_name, tags=dict(args.tags), opts=self._child)
        # S3 server access logging cannot deliver into an SSE-KMS bucket: the log bucket uses SSE-S3.
        self._harden(f"{name}-logs", logs, kms_key_arn=None, extra_statements=[{
            "Sid": "S3ServerAccessLogsFromTheBackupsBucket",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": pulumi.Output.concat(logs.arn, "/", name, "/*"),
            "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id},
                          "ArnLike": {"aws:SourceArn": self.bucket.arn}},
        }])
        S3.BucketLifecycleConfiguration(f"{name}-logs", bucket=logs.id, rules=[_housekeeping(expire_days=365)],
                                        opts=self._child)

        self.versioning = self._harden(name, self.bucket, kms_key_arn=args.kms_key_arn)
        S3.BucketLifecycleConfiguration(name, bucket=self.bucket.id, rules=[*BACKUP_LIFECYCLE, _housekeeping()],
                                        opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]))
        S3.BucketLogging(name, bucket=self.bucket.id, target_bucket=logs.id, target_prefix=f"{name}/",
                         opts=self._child)
        self.register_outputs({"name": self.bucket.bucket, "arn": self.bucket.arn})

    def _harden(self, name: str, bucket: aws.s3.Bucket, kms_key_arn: pulumi.Input[str] | None,
                extra_statements: list[dict] | None = None) -> aws.s3.BucketVersioning:
        """Owner-enforced, never public, versioned, encrypted at rest and reachable over TLS only."""
        S3.BucketOwnershipControls(name, bucket=bucket.id, rule=S3.BucketOwnershipControlsRuleArgs(
            object_ownership="BucketOwnerEnforced"), opts=self._child)
        block = S3.BucketPublicAccessBlock(name, bucket=bucket.id, block_public_acls=True, block_public_policy=True,
                                           ignore_public_acls=True, restrict_public_buckets=True, opts=self._child)
        versioning = S3.BucketVersioning(name, bucket=bucket.id, versioning_configuration=(
            S3.BucketVersioningVersioningConfigurationArgs(status="Enabled")), opts=self._child)
        default = S3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
            sse_algorithm="aws:kms" if kms_key_arn else "AES256", kms_master_key_id=kms_key_arn)
        S3.BucketServerSideEncryptionConfiguration(name, bucket=bucket.id, rules=[
            S3.BucketServerSideEncryptionConfigurationRuleArgs(apply_server_side_encryption_by_default=default,
                                                               bucket_key_enabled=bool(kms_key_arn))],
            opts=self._child)
        S3.BucketPolicy(name, bucket=bucket.id, policy=pulumi.Output.json_dumps({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }, *(extra_statements or [])],
        }), opts=pulumi.ResourceOptions(parent=self, depends_on=[block]))
        return versioning
