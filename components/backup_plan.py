"""AWS Backup: a vault on the stack key and the guide's daily/weekly/monthly plan, selected by tag."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import service_role
from regions.model import BackupSettings

BACKUP = aws.backup
MANAGED_POLICIES = (
    "service-role/AWSBackupServiceRolePolicyForBackup",
    "service-role/AWSBackupServiceRolePolicyForRestores",
    "AWSBackupServiceRolePolicyForS3Backup",
    "AWSBackupServiceRolePolicyForS3Restore",
)


@dataclass
class BackupPlanArgs:
    settings: BackupSettings
    kms_key_arn: pulumi.Input[str]
    # Resources carrying this tag are backed up.
    selection_tag: tuple[str, str]
    # The peer region's vault to copy every recovery point into (primary stack), or None.
    copy_to_vault_arn: pulumi.Input[str] | None = None


class BackupPlan(pulumi.ComponentResource):
    vault: aws.backup.Vault

    def __init__(self, name: str, args: BackupPlanArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:data:BackupPlan", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        self.vault = BACKUP.Vault(name, name=s.vault_name, kms_key_arn=args.kms_key_arn, opts=child)

        def lifecycle(delete_after: int, cold_after: int | None = None) -> dict:
            return {"delete_after": delete_after, "cold_storage_after": cold_after}

        # The guide's schedule (UTC): daily 02:00, weekly Sunday 01:00, monthly on the 1st at 00:00.
        schedules = [
            ("daily", "cron(0 2 * * ? *)", lifecycle(s.daily_retention_days)),
            ("weekly", "cron(0 1 ? * SUN *)", lifecycle(s.weekly_retention_days)),
            # Cold storage applies to the resource types AWS Backup supports it for; others stay warm.
            ("monthly", "cron(0 0 1 * ? *)", lifecycle(s.monthly_retention_days, s.cold_storage_after_days)),
        ]
        rules = []
        for rule_name, schedule, life in schedules:
            copies = None
            if args.copy_to_vault_arn is not None:
                copies = [BACKUP.PlanRuleCopyActionArgs(destination_vault_arn=args.copy_to_vault_arn,
                                                        lifecycle=BACKUP.PlanRuleCopyActionLifecycleArgs(**life))]
            rules.append(BACKUP.PlanRuleArgs(
                rule_name=rule_name, target_vault_name=self.vault.name, schedule=schedule,
                start_window=60, completion_window=360,
                lifecycle=BACKUP.PlanRuleLifecycleArgs(**life), copy_actions=copies))
        plan = BACKUP.Plan(name, name=s.vault_name, rules=rules, opts=child)

        role = service_role(f"{name}-service", "backup.amazonaws.com", self)
        attachments = [aws.iam.RolePolicyAttachment(f"{name}-{policy.rsplit('/', 1)[-1]}", role=role.name,
                                                    policy_arn=f"arn:aws:iam::aws:policy/{policy}", opts=child)
                       for policy in MANAGED_POLICIES]
        tag_key, tag_value = args.selection_tag
        BACKUP.Selection(name, name=f"{s.vault_name}-tagged", plan_id=plan.id, iam_role_arn=role.arn,
                         selection_tags=[BACKUP.SelectionSelectionTagArgs(type="STRINGEQUALS", key=tag_key,
                                                                          value=tag_value)],
                         opts=pulumi.ResourceOptions(parent=self, depends_on=attachments))
        self.register_outputs({"vault_name": self.vault.name, "vault_arn": self.vault.arn})
