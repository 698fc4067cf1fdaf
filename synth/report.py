"""Presenting evaluations: the JSON contract, a readable table per component, and a stack diff."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from synth.engine import Evaluation, Registration

# The inputs worth a glance, per resource type; the JSON output carries all of them.
KEY_INPUTS: dict[str, tuple[str, ...]] = {
    "pulumi:providers:aws": ("region",),
    "pulumi:pulumi:StackReference": ("name",),
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("availabilityZoneId", "cidrBlock"),
    "aws:ec2/natGateway:NatGateway": ("subnetId",),
    "aws:ec2/route:Route": ("destinationCidrBlock", "gatewayId", "natGatewayId"),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("subnetId",),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("serviceName", "vpcEndpointType"),
    "aws:ec2/securityGroup:SecurityGroup": ("description",),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        ("securityGroupId", "fromPort", "cidrIpv4", "referencedSecurityGroupId"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule":
        ("securityGroupId", "fromPort", "cidrIpv4", "referencedSecurityGroupId"),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "retentionInDays", "kmsKeyId"),
    "aws:ec2/flowLog:FlowLog": ("trafficType", "logDestination"),
    "aws:kms/key:Key": ("enableKeyRotation", "deletionWindowInDays"),
    "aws:kms/alias:Alias": ("name",),
    "aws:rds/instance:Instance": ("identifier", "instanceClass", "engineVersion", "multiAz", "replicateSourceDb"),
    "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication": ("sourceDbInstanceArn",),
    "aws:rds/parameterGroup:ParameterGroup": ("family",),
    "aws:elasticache/replicationGroup:ReplicationGroup":
        ("engine", "engineVersion", "nodeType", "numCacheClusters", "automaticFailoverEnabled"),
    "aws:elasticache/parameterGroup:ParameterGroup": ("family",),
    "aws:secretsmanager/secret:Secret": ("name",),
    "aws:s3/bucket:Bucket": ("bucket",),
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": ("region", "bucket"),
    "aws:backup/vault:Vault": ("name",),
    "aws:backup/plan:Plan": ("name",),
}


SECRET_MASK = "[secret]"


def masked(value: Any, secret_paths: tuple[str, ...], path: str = "") -> Any:
    """`value` with what sits at a secret path shown as [secret], as `pulumi preview` shows it."""
    if path in secret_paths:
        return SECRET_MASK
    if isinstance(value, dict):
        return {k: masked(v, secret_paths, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, secret_paths, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def to_json(evaluation: Evaluation, cost: dict | None = None, findings: list | None = None) -> dict[str, Any]:
    """The DESIGN.md synth contract; `cost` stays null until something computes it."""
    return {
        "stack": evaluation.stack,
        "region": evaluation.region,
        "resources": [
            {"type": r.type, "name": r.name, "urn": r.urn, "parent": r.parent, "provider": r.provider,
             "inputs": masked(r.inputs, r.secret_paths)}
            for r in evaluation.resources
        ],
        "outputs": evaluation.outputs,
        "cost": cost,
        "findings": findings,
    }


class Symbols:
    """Replaces physical ids and ARNs in values by the logical names they belong to, so values read
    (and compare across stacks) as `network-private-a.id` rather than a hash."""

    def __init__(self, evaluation: Evaluation):
        pairs: dict[str, str] = {}
        named = [r for r in evaluation.resources if r.custom and not r.type.startswith("pulumi:")]
        counts = Counter(r.name for r in named)
        for r in named:
            # Qualify a name that several types share (a VPC and its flow log may both be `network`).
            label = r.name if counts[r.name] == 1 else f"{r.type.rsplit(':', 1)[1]}:{r.name}"
            # An id that is also one of the resource's own inputs is a chosen name, not a physical id.
            if r.id and r.id not in r.inputs.values():
                pairs[r.id] = f"{label}.id"
            arn = r.state.get("arn")
            if isinstance(arn, str):
                pairs[arn] = f"{label}.arn"
        # Longest first, so an ARN is replaced before an id that it contains.
        self._pairs = sorted(pairs.items(), key=lambda kv: -len(kv[0]))

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            for physical, symbol in self._pairs:
                if physical in value:
                    value = value.replace(physical, symbol)
            return value
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        return value


def top_component(resource: Registration, by_urn: dict[str, Registration]) -> Registration | None:
    """The top-level component a resource belongs to, or None for resources directly in the stack."""
    current: Registration | None = resource
    top: Registration | None = None
    while current is not None and current.parent in by_urn:
        current = by_urn[current.parent]
        top = current
    if top is None and not resource.custom:
        return resource
    return top


def _short_type(typ: str) -> str:
    package, module, name = (typ.split(":") + ["", ""])[:3]
    return f"{package}:{module.split('/')[0]}:{name}"


def _format_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def summary_line(evaluation: Evaluation) -> str:
    return f"stack {evaluation.stack} ({evaluation.region}): {sum(r.custom for r in evaluation.resources)} resources"


def table(evaluation: Evaluation) -> str:
    symbols = Symbols(evaluation)
    by_urn = {r.urn: r for r in evaluation.resources}
    groups: dict[str, list[Registration]] = defaultdict(list)
    headers: dict[str, str] = {}
    for r in evaluation.resources:
        top = top_component(r, by_urn)
        key = top.urn if top else ""
        headers[key] = f"{top.name} ({top.type})" if top else "stack"
        if r.custom:
            groups[key].append(r)
    lines = [summary_line(evaluation)]
    for key in sorted(groups, key=lambda k: headers[k]):
        members = groups[key]
        lines.append("")
        lines.append(f"{headers[key]}: {len(members)}")
        type_width = max(len(_short_type(r.type)) for r in members)
        name_width = max(len(r.name) for r in members)
        for r in sorted(members, key=lambda m: (m.type, m.name)):
            inputs = masked(r.inputs, r.secret_paths)
            shown = [f"{k}={_format_value(symbols(inputs[k]))}" for k in KEY_INPUTS.get(r.type, ())
                     if r.inputs.get(k) not in (None, "", [])]
            lines.append(f"  {_short_type(r.type):<{type_width}}  {r.name:<{name_width}}  {' '.join(shown)}".rstrip())
    lines.append("")
    lines.append("outputs:")
    for k, v in sorted(evaluation.outputs.items()):
        lines.append(f"  {k} = {_format_value(v)}")
    return "\n".join(lines)


def _stack_relative(urn: str) -> str:
    # urn:pulumi:<stack>::<project>::<type path>::<name>: drop the stack so both stacks line up.
    return urn.split("::", 2)[2]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else k))
        return out
    return {prefix: value}


def diff(a: Evaluation, b: Evaluation, region_renames: bool = False) -> dict[str, Any]:
    """What differs between two stacks: resources only in one, and inputs that differ; not, unless
    `region_renames`, an input that differs only by the region's name (an ARN, an endpoint), which every
    regional resource has: it hides the differences that matter. Their count is reported."""
    sym_a, sym_b = Symbols(a), Symbols(b)
    res_a = {_stack_relative(r.urn): r for r in a.resources}
    res_b = {_stack_relative(r.urn): r for r in b.resources}
    changed = []
    renames = 0
    for key in sorted(res_a.keys() & res_b.keys()):
        ra, rb = res_a[key], res_b[key]
        flat_a = _flatten(_decode(sym_a(masked(ra.inputs, ra.secret_paths))))
        flat_b = _flatten(_decode(sym_b(masked(rb.inputs, rb.secret_paths))))
        for field in sorted(flat_a.keys() | flat_b.keys()):
            va, vb = flat_a.get(field), flat_b.get(field)
            if va == vb:
                continue
            if not region_renames and _renamed(va, a.region) == _renamed(vb, b.region):
                renames += 1
                continue
            changed.append({"type": ra.type, "name": ra.name, "input": field,
                                a.stack: flat_a.get(field), b.stack: flat_b.get(field)})
    def only(mine: dict[str, Registration], theirs: dict[str, Registration]) -> list[dict[str, str]]:
        return [{"type": mine[k].type, "name": mine[k].name} for k in sorted(mine.keys() - theirs.keys())]

    return {
        "stacks": [a.stack, b.stack],
        f"only_in_{a.stack}": only(res_a, res_b),
        f"only_in_{b.stack}": only(res_b, res_a),
        "changed": changed,
        # None when they are listed in `changed`.
        "region_renames": None if region_renames else renames,
    }


def _renamed(value: Any, region: str) -> Any:
    return value.replace(region, "<region>") if isinstance(value, str) and region else value


def _decode(value: Any) -> Any:
    """Policies and provider settings arrive as JSON strings; compare them field by field."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return _decode(json.loads(value))
        except json.JSONDecodeError:
            return value
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return {str(i): _decode(v) for i, v in enumerate(value)}
    return value


def diff_text(d: dict[str, Any]) -> str:
    a, b = d["stacks"]
    lines = [f"{a} vs {b}"]
    for stack in (a, b):
        only = d[f"only_in_{stack}"]
        lines.append(f"\nonly in {stack}: {len(only)}")
        lines.extend(f"  {_short_type(r['type'])}  {r['name']}" for r in only)
    renames = d.get("region_renames")
    lines.append(f"\ninputs that differ: {len(d['changed'])}"
                 + (f" (and {renames} by the region's name only: --region-renames lists them)" if renames else ""))
    for c in d["changed"]:
        lines.append(f"  {_short_type(c['type'])}  {c['name']}  {c['input']}: {_format_value(c[a])} -> "
                     f"{_format_value(c[b])}")
    return "\n".join(lines)


def findings_text(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return "policy findings: none"
    lines = [f"policy findings: {len(findings)}"]
    for f in sorted(findings, key=lambda f: (f["level"] != "mandatory", f["policy"])):
        lines.append(f"  [{f['level']}] {f['policy']}: {f['resource'].rsplit('::', 1)[-1]}: {f['message']}")
    return "\n".join(lines)
