"""A network adopted from Terraform state (often terraform-aws-modules/vpc): nothing of it is created here.

The rest of the program uses its ids exactly as it uses those of `Network`; security groups and endpoints
are still created, inside the adopted VPC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_terraform as terraform

from regions.model import TerraformState
from regions.reader import PROJECT, SettingsError


@dataclass
class AdoptedNetworkArgs:
    state: TerraformState
    # For error messages: the stack file that points at the state.
    stack_file: str


def require_outputs(state: TerraformState, stack_file: str, outputs: dict[str, Any] | None) -> dict[str, Any]:
    """Our names -> the state's values; a missing output stops the program naming it and the state."""
    found = outputs or {}
    values = {}
    for ours, theirs in state.outputs.items():
        if theirs not in found:
            raise SettingsError(stack_file, f"{PROJECT}:network.terraformOutputs.{ours}", theirs,
                                f"an output of {state.location} (it has: {', '.join(sorted(found)) or 'none'})",
                                f"is not an output of {state.location}")
        values[ours] = found[theirs]
    return values


class AdoptedNetwork(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]
    isolated_subnet_ids: pulumi.Output[list[str]]
    endpoint_route_table_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: AdoptedNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:network:AdoptedNetwork", name, None, opts)
        s = args.state
        invoke = pulumi.InvokeOutputOptions(parent=self)
        if s.backend == "local":
            reference = terraform.state.get_local_reference_output(path=s.path, opts=invoke)
        else:
            reference = terraform.state.get_s3_reference_output(bucket=s.bucket, key=s.key, region=s.region,
                                                                 workspace=s.workspace, opts=invoke)
        outputs = reference.outputs.apply(lambda found: require_outputs(s, args.stack_file, found))
        self.vpc_id = outputs.apply(lambda o: o["vpcId"])
        self.public_subnet_ids = outputs.apply(lambda o: list(o["publicSubnets"]))
        self.private_subnet_ids = outputs.apply(lambda o: list(o["privateSubnets"]))
        # terraform-aws-modules' database subnets are the isolated (data) tier.
        self.isolated_subnet_ids = outputs.apply(lambda o: list(o["databaseSubnets"]))
        self.endpoint_route_table_ids = outputs.apply(
            lambda o: [*o["privateRouteTables"], *o["databaseRouteTables"]])
        self.register_outputs({"vpc_id": self.vpc_id, "vpc_cidr": outputs.apply(lambda o: o["vpcCidr"])})
