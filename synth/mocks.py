"""Pulumi mocks that answer like AWS would: stable ids, ARNs and endpoints derived from the inputs.

The SDK's mocks echo inputs; anything the program reads that AWS computes (arn, id, dns_name, ...)
is synthesized here, deterministically, so two runs of synth give the same output.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import pulumi

ACCOUNT_ID = "123456789012"

# Physical id prefixes AWS gives these resources.
_ID_PREFIX = {
    "aws:ec2/vpc:Vpc": "vpc-",
    "aws:ec2/subnet:Subnet": "subnet-",
    "aws:ec2/securityGroup:SecurityGroup": "sg-",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg-",
    "aws:ec2/internetGateway:InternetGateway": "igw-",
    "aws:ec2/natGateway:NatGateway": "nat-",
    "aws:ec2/eip:Eip": "eipalloc-",
    "aws:ec2/routeTable:RouteTable": "rtb-",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc-",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce-",
    "aws:ec2/flowLog:FlowLog": "fl-",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr-",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr-",
}

# Resources whose physical name the provider generates from the logical name when none is given.
_AUTONAMED = {"aws:iam/role:Role", "aws:cloudwatch/logGroup:LogGroup", "aws:iam/policy:Policy"}


def _digest(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


@dataclass
class Registration:
    """One resource as the program registered it."""

    type: str
    name: str
    urn: str
    id: str | None
    parent: str | None
    provider: str | None
    custom: bool
    inputs: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)


class AwsMocks(pulumi.runtime.Mocks):
    def __init__(self, stack: str, region: str, stack_outputs: dict[str, dict[str, Any]] | None = None):
        self.stack = stack
        self.region = region
        # StackReference name -> that stack's outputs.
        self.stack_outputs = stack_outputs or {}

    def _arn(self, typ: str, region: str, rid: str, state: dict[str, Any]) -> str:
        module = typ.split(":")[1].split("/")[0]
        if typ == "aws:kms/key:Key":
            return f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/{rid}"
        if typ == "aws:iam/role:Role":
            return f"arn:aws:iam::{ACCOUNT_ID}:role/{state['name']}"
        if typ == "aws:cloudwatch/logGroup:LogGroup":
            return f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{state['name']}"
        resource = typ.rsplit(":", 1)[1].lower()
        return f"arn:aws:{module}:{region}:{ACCOUNT_ID}:{resource}/{rid}"

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        if args.typ == "pulumi:pulumi:StackReference":
            name = args.inputs.get("name") or args.name
            if name not in self.stack_outputs:
                raise LookupError(f"synth has no outputs for the stack reference {name!r}")
            return name, {"name": name, "outputs": self.stack_outputs[name], "secretOutputNames": []}
        if args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-provider-id", dict(args.inputs)

        state = dict(args.inputs)
        region = state.get("region") or self.region
        digest = _digest(self.stack, args.typ, args.name)
        if args.typ == "aws:kms/key:Key":
            rid = str(uuid.UUID(_digest(self.stack, args.typ, args.name, length=32)))
            state["keyId"] = rid
        else:
            rid = _ID_PREFIX.get(args.typ, "") + digest
        if args.typ in _AUTONAMED and not state.get("name"):
            state["name"] = f"{args.name}-{digest[:7]}"
        state.setdefault("arn", self._arn(args.typ, region, rid, state))
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/synth",
                    "userId": "AIDASYNTH", "id": ACCOUNT_ID}, []
        raise NotImplementedError(f"synth does not mock the function {args.token}; add it to synth/mocks.py")
