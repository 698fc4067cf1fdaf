"""IAM helpers shared by the components."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


def service_role(name: str, service: str, parent: pulumi.Resource,
                 source_account: pulumi.Input[str] | None = None) -> aws.iam.Role:
    """A role only `service` (e.g. `backup.amazonaws.com`) may assume; with `source_account`, only on
    behalf of that account (the confused-deputy guard)."""
    statement: dict = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if source_account is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return aws.iam.Role(name, assume_role_policy=pulumi.Output.json_dumps({
        "Version": "2012-10-17", "Statement": [statement]}), opts=pulumi.ResourceOptions(parent=parent))


def policy_document(statements: list[dict]) -> pulumi.Output[str]:
    """An IAM policy document from statements whose values may be outputs."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})
