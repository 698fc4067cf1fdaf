"""Cost controls: a monthly budget on the stack's own resources, and cost-allocation tag activation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from regions.model import BudgetSettings


@dataclass
class CostArgs:
    budget_name: str
    settings: BudgetSettings
    stack_tag: tuple[str, str]
    alert_topic_arn: pulumi.Input[str]
    # Cost-allocation tag keys to activate; an account-wide switch, so only one stack passes them.
    activate_tags: Sequence[str] = ()


class Cost(pulumi.ComponentResource):
    def __init__(self, name: str, args: CostArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:cost:Cost", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        key, value = args.stack_tag

        def alert(kind: str, percent: int) -> aws.budgets.BudgetNotificationArgs:
            return aws.budgets.BudgetNotificationArgs(
                notification_type=kind, comparison_operator="GREATER_THAN", threshold=percent,
                threshold_type="PERCENTAGE", subscriber_sns_topic_arns=[args.alert_topic_arn])

        aws.budgets.Budget(
            name, name=args.budget_name, budget_type="COST", time_unit="MONTHLY",
            limit_amount=str(args.settings.monthly_usd), limit_unit="USD",
            # Only what this stack created: its resources carry Stack=<stack> through the provider's tags.
            cost_filters=[aws.budgets.BudgetCostFilterArgs(name="TagKeyValue", values=[f"user:{key}${value}"])],
            notifications=[alert("ACTUAL", args.settings.actual_percent),
                           alert("FORECASTED", args.settings.forecast_percent)],
            opts=child)
        for tag in args.activate_tags:
            aws.costexplorer.CostAllocationTag(f"{name}-{tag.lower()}", tag_key=tag, status="Active", opts=child)
        self.register_outputs({})
