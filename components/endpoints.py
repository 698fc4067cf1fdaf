"""VPC endpoints so tasks reach S3, ECR, CloudWatch Logs and Secrets Manager without the NAT."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

INTERFACE_SERVICES = ("ecr.api", "ecr.dkr", "logs", "secretsmanager")


@dataclass
class EndpointsArgs:
    region: str
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    route_table_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    security_group_id: pulumi.Input[str]


class Endpoints(pulumi.ComponentResource):
    def __init__(self, name: str, args: EndpointsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:network:Endpoints", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # ECR image layers are served from S3, so the gateway endpoint also carries image pulls.
        s3 = aws.ec2.VpcEndpoint(f"{name}-s3", vpc_id=args.vpc_id, vpc_endpoint_type="Gateway",
                                 service_name=f"com.amazonaws.{args.region}.s3",
                                 route_table_ids=args.route_table_ids, tags={"Name": f"{name}-s3"},
                                 opts=child)
        ids = {"s3": s3.id}
        for service in INTERFACE_SERVICES:
            label = f"{name}-{service.replace('.', '-')}"
            endpoint = aws.ec2.VpcEndpoint(label, vpc_id=args.vpc_id, vpc_endpoint_type="Interface",
                                           service_name=f"com.amazonaws.{args.region}.{service}",
                                           private_dns_enabled=True, subnet_ids=args.subnet_ids,
                                           security_group_ids=[args.security_group_id], tags={"Name": label},
                                           opts=child)
            ids[service] = endpoint.id
        self.register_outputs({"endpoint_ids": ids})
