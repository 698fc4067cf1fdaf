"""Cost tags: one tagged provider per stack, and every AWS resource created through it."""

from __future__ import annotations

import json

CONTRACT_KEYS = {"Project", "Environment", "CostCenter", "Owner", "Stack", "Region", "Role", "ManagedBy"}


def test_the_provider_carries_the_cost_tags(stack):
    (provider,) = stack.of_type("pulumi:providers:aws")
    assert provider.inputs["region"] == stack.region
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    assert set(tags) == CONTRACT_KEYS
    assert tags == {
        "Project": "trading-platform",
        "Environment": "production",
        "CostCenter": "CC-4410-trading",
        "Owner": "platform-team@example.com",
        "Stack": stack.stack,
        "Region": {"primary": "us-east-1", "backup": "us-west-2"}[stack.stack],
        "Role": stack.stack,
        "ManagedBy": "pulumi",
    }


def test_every_aws_resource_goes_through_the_tagged_provider(stack):
    (provider,) = stack.of_type("pulumi:providers:aws")
    aws_resources = [r for r in stack.resources if r.custom and r.type.startswith("aws:")]
    assert len(aws_resources) > 40
    strays = [r.name for r in aws_resources if (r.provider or "").split("::")[0:4] != provider.urn.split("::")]
    assert strays == []


def test_every_child_has_a_component_parent(stack):
    components = {r.urn for r in stack.resources if not r.custom}
    top_level = {"pulumi:providers:aws", "pulumi:pulumi:StackReference"}
    orphans = [r.name for r in stack.resources
               if r.custom and r.type not in top_level and r.parent not in components]
    assert orphans == []
