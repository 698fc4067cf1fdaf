"""The policy pack's own functions, run offline against the mock-registered resources."""

from __future__ import annotations

from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)

from policies.rules import POLICIES
from synth.engine import Evaluation, Registration


def _options(r: Registration) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect=False, ignore_changes=list(r.ignore_changes), delete_before_replace=None,
                                 aliases=[], custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
                                 additional_secret_outputs=[], parent=r.parent)


def evaluate_policies(evaluation: Evaluation, policies: list | None = None) -> list[dict[str, Any]]:
    """Findings as [{policy, level, resource, message}], the way `pulumi preview --policy-pack` reports them."""
    by_urn = {r.urn: r for r in evaluation.resources}
    providers = {r.urn: PolicyProviderResource(r.type, r.inputs, r.urn, r.name)
                 for r in evaluation.resources if r.type.startswith("pulumi:providers:")}

    def provider_of(r: Registration) -> PolicyProviderResource | None:
        return providers.get((r.provider or "").rsplit("::", 1)[0]) if r.provider else None

    resources = {r.urn: PolicyResource(r.type, r.inputs, r.urn, r.name, _options(r), provider_of(r), None, [], {})
                 for r in evaluation.resources}
    for urn, resource in resources.items():
        resource.parent = resources.get(by_urn[urn].parent or "")
    findings: list[dict[str, Any]] = []
    for policy in policies if policies is not None else POLICIES:
        if isinstance(policy, ResourceValidationPolicy):
            for r in evaluation.resources:
                if r.custom:
                    args = ResourceValidationArgs(r.type, r.inputs, r.urn, r.name, _options(r), provider_of(r))
                    policy.validate(args, _reporter(findings, policy, r.urn))
        else:
            policy.validate(StackValidationArgs(list(resources.values())), _reporter(findings, policy, "stack"))
    return findings


def _reporter(findings: list[dict[str, Any]], policy: Any, subject: str):
    def report(message: str, urn: str | None = None) -> None:
        findings.append({"policy": policy.name, "level": policy.enforcement_level.value,
                         "resource": urn or subject, "message": message})
    return report


def mandatory(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in findings if f["level"] == "mandatory"]
