"""A customer-managed KMS key: one per region, since replicas and copies need a key in their own region."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass
class StackKeyArgs:
    alias: str
    account_id: pulumi.Input[str]
    region: str
    partition: str
    # Let CloudWatch Logs (encrypted log groups) and CloudWatch alarms (encrypted SNS topics) use the key.
    for_logs_and_alarms: bool = True
    # The key of secret replicas: Secrets Manager re-encrypts every new version (a rotation's too) with it, with
    # the identity of whoever wrote the version, which may be a role this program cannot name (the rotation
    # function's, created by its CloudFormation stack).
    for_secret_replicas: bool = False
    deletion_window_days: int = 30


class StackKey(pulumi.ComponentResource):
    key: aws.kms.Key
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: StackKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:security:StackKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        statements: list[dict] = [{
            # Key administration and use stay with the account's IAM policies, as AWS's default policy does;
            # RDS, ElastiCache, S3, Secrets Manager and AWS Backup act with their callers' permissions.
            "Sid": "AccountIamPoliciesGovern",
            "Effect": "Allow",
            "Principal": {"AWS": pulumi.Output.concat("arn:", args.partition, ":iam::", args.account_id, ":root")},
            "Action": "kms:*",
            "Resource": "*",
        }]
        if args.for_logs_and_alarms:
            statements += [
                {
                    # CloudWatch Logs may use the key only for this account's log groups in this region.
                    "Sid": "CloudWatchLogsInThisRegion",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{args.region}.amazonaws.com"},
                    "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                               "kms:Describe*"],
                    "Resource": "*",
                    "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": pulumi.Output.concat(
                        "arn:", args.partition, ":logs:", args.region, ":", args.account_id, ":*")}},
                },
                {
                    # Alarms and budget alerts publish to the stack's encrypted SNS topic.
                    "Sid": "AlarmsAndBudgetsToEncryptedTopics",
                    "Effect": "Allow",
                    "Principal": {"Service": ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}},
                },
            ]
        if args.for_secret_replicas:
            statements.append({
                # Encrypt only, only through Secrets Manager in this region, only for this account: reading a
                # replica still needs kms:Decrypt granted by IAM.
                "Sid": "SecretsManagerReplicatesNewVersions",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Encrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": args.account_id,
                                               "kms:ViaService": f"secretsmanager.{args.region}.amazonaws.com"}},
            })
        self.key = aws.kms.Key(
            name,
            region=args.region,
            description=f"{args.alias}: encrypts this stack's data stores, secrets, backups and logs",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements}),
            opts=child,
        )
        aws.kms.Alias(name, region=args.region, name=f"alias/{args.alias}", target_key_id=self.key.key_id,
                      opts=child)
        self.arn = self.key.arn
        self.register_outputs({"arn": self.arn})
